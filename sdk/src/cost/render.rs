//! The estimate as text: the `cost` breakdown, and the lines under a plan.

use super::{ASSUMPTIONS, CostDiff, Estimate, Line, Money, prices};

/// `$1,234.56`.
pub(crate) fn dollars(x: f64) -> String {
    let cents = (x.abs() * 100.0).round() as u64;
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}${grouped}.{:02}", if x < -0.004 { "-" } else { "" }, cents % 100)
}

fn signed(x: f64) -> String {
    if x >= 0.0 { format!("+{}", dollars(x)) } else { dollars(x) }
}

fn range(low: f64, high: f64) -> String {
    if (high - low).abs() < 0.005 { dollars(low) } else { format!("{}–{}", dollars(low), dollars(high)) }
}

fn money(m: &Money) -> String {
    match m {
        Money::Known(x) => dollars(*x),
        Money::Range(a, b) => range(*a, *b),
        Money::Unknown(_) => "unknown".into(),
    }
}

fn header(e: &Estimate) -> String {
    format!("{}, on demand, {} prices of {}", e.region, e.currency, e.prices_date)
}

fn assumptions(e: &Estimate, out: &mut String) {
    if e.assumptions.is_empty() {
        return;
    }
    out.push_str("  assumes (override with `Stack::assume`):\n");
    for (name, value) in &e.assumptions {
        let a = ASSUMPTIONS.iter().find(|a| a.name == name);
        let (unit, what) = a.map(|a| (a.unit, a.what)).unwrap_or(("", ""));
        let default = a.is_some_and(|a| a.default == *value);
        out.push_str(&format!(
            "    {name} = {value} {unit}: {what}{}\n",
            if default { "" } else { " (the stack's own figure)" }
        ));
    }
}

fn unknown_lines<'a>(lines: impl Iterator<Item = &'a Line>, out: &mut String) {
    for l in lines {
        if let Money::Unknown(why) = &l.monthly {
            out.push_str(&format!("  unknown: {}: {why} (not counted in the total)\n", l.urn.display_short()));
        }
    }
}

/// The whole estimate: one line per priced resource, the total, what is unknown and assumed.
pub fn render_breakdown(e: &Estimate) -> String {
    let mut out = format!("Monthly cost ({}):\n", header(e));
    let width = e.lines.iter().map(|l| l.urn.display_short().len()).max().unwrap_or(0);
    for l in e.lines.iter().filter(|l| !matches!(l.monthly, Money::Unknown(_))) {
        out.push_str(&format!("  {:<width$}  {:>21}  {}\n", l.urn.display_short(), money(&l.monthly), l.what));
    }
    out.push_str(&format!("  {:<width$}  {:>21}\n", "total", range(e.low, e.high)));
    unknown_lines(e.lines.iter(), &mut out);
    assumptions(e, &mut out);
    out.push_str(&format!("  prices: {}\n", prices().source));
    out
}

/// The lines under a plan: the total before and after, the difference, and each resource whose
/// cost changes.
pub fn render_diff(d: &CostDiff) -> String {
    let (dl, dh) = d.delta();
    let delta = if (dh - dl).abs() < 0.005 { signed(dl) } else { format!("{}–{}", signed(dl), signed(dh)) };
    let mut out = format!(
        "Cost ({}): {}/month → {}/month ({delta}/month)\n",
        header(&d.after),
        range(d.before.low, d.before.high),
        range(d.after.low, d.after.high)
    );
    for (urn, before, after) in d.changed() {
        let shown = |l: Option<&Line>| l.map(|l| money(&l.monthly)).unwrap_or_else(|| "-".into());
        let what = after.or(before).map(|l| l.what.as_str()).unwrap_or_default();
        out.push_str(&format!("  {}: {} → {}  {what}\n", urn.display_short(), shown(before), shown(after)));
    }
    unknown_lines(d.after.lines.iter(), &mut out);
    assumptions(&d.after, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_are_grouped_and_signed() {
        assert_eq!(dollars(1234567.891), "$1,234,567.89");
        assert_eq!(dollars(0.5), "$0.50");
        assert_eq!(signed(-12.0), "-$12.00");
        assert_eq!(signed(412.3), "+$412.30");
        assert_eq!(range(1.0, 1.0), "$1.00");
        assert_eq!(range(1.0, 2.0), "$1.00–$2.00");
    }
}
