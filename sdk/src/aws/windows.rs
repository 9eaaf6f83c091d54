//! Maintenance and backup windows, as RDS and ElastiCache write them: a weekly
//! `ddd:hh24:mi-ddd:hh24:mi` and a daily `hh24:mi-hh24:mi`, both UTC, which must not overlap.

use crate::model::Checker;

/// `hh24:mi` → minutes since midnight.
fn clock(t: &str) -> Option<u32> {
    let (h, m) = t.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const WEEK: u32 = 7 * 24 * 60;

/// `ddd:hh24:mi-ddd:hh24:mi` → (start, end) in minutes since Sunday 00:00.
fn weekly_window(w: &str) -> Option<(u32, u32)> {
    let at = |part: &str| -> Option<u32> {
        let (day, time) = part.split_once(':')?;
        let d = DAYS.iter().position(|x| *x == day.to_ascii_lowercase())? as u32;
        Some(d * 24 * 60 + clock(time)?)
    };
    let (a, b) = w.split_once('-')?;
    Some((at(a)?, at(b)?))
}

/// `hh24:mi-hh24:mi` → (start, end) in minutes since midnight.
fn daily_window(w: &str) -> Option<(u32, u32)> {
    let (a, b) = w.split_once('-')?;
    Some((clock(a)?, clock(b)?))
}

/// Length of a window that may wrap round its period.
fn span((start, end): (u32, u32), period: u32) -> u32 {
    (end + period - start) % period
}

/// Whether the daily snapshot window meets the weekly maintenance window on any day.
fn overlap(weekly: (u32, u32), daily: (u32, u32)) -> bool {
    let inside = |t: u32, (s, e): (u32, u32), p: u32| (t + p - s) % p < span((s, e), p);
    (0..7).any(|day| {
        let (s, e) = (daily.0 + day * 24 * 60, daily.1 + day * 24 * 60);
        let snapshot = (s % WEEK, e % WEEK);
        inside(snapshot.0, weekly, WEEK) || inside(weekly.0, snapshot, WEEK)
    })
}

/// Refuses a weekly window (`weekly`: field, text) or daily window (`daily`) that does not
/// parse or is shorter than `minutes`, and a daily window that meets the weekly one on any day.
pub fn check(c: &mut Checker, weekly: (&str, &str), daily: (&str, &str), minutes: u32) {
    let (weekly_field, weekly_text) = weekly;
    let (daily_field, daily_text) = daily;
    let maintenance = weekly_window(weekly_text);
    let snapshot = daily_window(daily_text);
    let long = |m| if minutes == 60 { "an hour".to_string() } else { format!("{m} minutes") };
    match maintenance {
        None => c.error(
            weekly_field,
            format!("`{weekly_text}` is not a weekly window"),
            "write `ddd:hh24:mi-ddd:hh24:mi` in UTC, such as `sun:05:00-sun:06:00`",
        ),
        Some(w) if span(w, WEEK) < minutes => c.error(
            weekly_field,
            format!("`{weekly_text}` is shorter than {}", long(minutes)),
            format!("give the window at least {minutes} minutes"),
        ),
        Some(_) => {}
    }
    match snapshot {
        None => c.error(
            daily_field,
            format!("`{daily_text}` is not a daily window"),
            "write `hh24:mi-hh24:mi` in UTC, such as `03:00-04:00`",
        ),
        Some(w) if span(w, 24 * 60) < minutes => c.error(
            daily_field,
            format!("`{daily_text}` is shorter than {}", long(minutes)),
            format!("give the window at least {minutes} minutes"),
        ),
        Some(_) => {}
    }
    if let (Some(m), Some(d)) = (maintenance, snapshot) {
        c.require(
            !overlap(m, d),
            daily_field,
            format!(
                "the {} `{daily_text}` overlaps the maintenance window `{weekly_text}`",
                daily_field.replace('_', " ")
            ),
            "move one of them (the defaults are `03:00-04:00` and `sun:05:00-sun:06:00`)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_overlaps_are_found_across_midnight_and_the_week() {
        assert_eq!(weekly_window("sun:05:00-sun:06:00"), Some((300, 360)));
        assert_eq!(weekly_window("sat:23:30-sun:00:30").map(|w| span(w, WEEK)), Some(60));
        assert_eq!(daily_window("23:30-00:30").map(|w| span(w, 1440)), Some(60));
        assert_eq!(weekly_window("sun:25:00-sun:26:00"), None);
        assert_eq!(daily_window("3:00-4:00"), None);
        assert!(!overlap(weekly_window("sun:05:00-sun:06:00").unwrap(), daily_window("03:00-04:00").unwrap()));
        assert!(overlap(weekly_window("sun:05:00-sun:06:00").unwrap(), daily_window("05:30-06:30").unwrap()));
        // Wednesday's snapshot meets a Wednesday maintenance window.
        assert!(overlap(weekly_window("wed:03:30-wed:04:30").unwrap(), daily_window("03:00-04:00").unwrap()));
        // A maintenance window across Saturday midnight meets a snapshot just after midnight.
        assert!(overlap(weekly_window("sat:23:30-sun:00:30").unwrap(), daily_window("00:00-01:00").unwrap()));
    }
}
