//! The grammars of values another program reads, checked offline with that program's own rules:
//! Kubernetes resource quantities (as the API server parses them) and Prometheus durations.

/// The value of a Kubernetes quantity (`250m`, `1.5`, `512Mi`, `1e3`, `2G`), in base units (cores,
/// bytes), with the API server's grammar:
/// `<sign><digits>[.<digits>]` then a binary suffix (`Ki Mi Gi Ti Pi Ei`), a decimal one
/// (`n u m "" k M G T P E`) or an exponent (`e3`, `E-2`).
///
/// ```
/// use fabric::k8s::values::quantity;
/// assert_eq!(quantity("250m").unwrap(), 0.25);
/// assert_eq!(quantity("1Gi").unwrap(), 1073741824.0);
/// assert!(quantity("2 cores").is_err() && quantity("1GB").is_err());
/// ```
pub fn quantity(s: &str) -> Result<f64, String> {
    let bad = |why: &str| Err(format!("`{s}` is not a Kubernetes quantity: {why}"));
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let number_end = body.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(body.len());
    let (number, suffix) = body.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return bad("it does not start with a number");
    }
    let value: f64 = number.parse().map_err(|_| format!("`{s}` is not a Kubernetes quantity"))?;
    let scale = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp if exp.starts_with(['e', 'E']) => {
            let e = &exp[1..];
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return bad("the exponent is not a whole number");
            }
            10f64.powi(e.parse::<i32>().map_err(|_| format!("`{s}`: exponent out of range"))?)
        }
        _ => return bad("use a suffix of Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024), m, k, M, G, T, P, E, or none"),
    };
    let sign = if s.starts_with('-') { -1.0 } else { 1.0 };
    Ok(sign * value * scale)
}

/// A Prometheus duration (`30s`, `1h30m`, `15d`, `2w`) in milliseconds, with Prometheus's own
/// grammar: units `y w d h m s ms`, largest first, each at most once, whole numbers, no spaces.
///
/// ```
/// use fabric::k8s::values::prometheus_duration;
/// assert_eq!(prometheus_duration("1h30m").unwrap(), 5_400_000);
/// assert!(prometheus_duration("2 hours").is_err() && prometheus_duration("forever").is_err());
/// ```
pub fn prometheus_duration(s: &str) -> Result<u64, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let bad = || {
        Err(format!(
            "`{s}` is not a Prometheus duration: write whole numbers with units y, w, d, h, m, s, ms, largest first (`15d`, `1h30m`, `30s`)"
        ))
    };
    if s.is_empty() || s == "0" {
        return bad();
    }
    let mut rest = s;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return bad();
        }
        let n: u64 = rest[..digits].parse().map_err(|_| "number out of range".to_string())?;
        rest = &rest[digits..];
        // `ms` before `m`: the longer unit first.
        let unit = UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len());
        let Some((i, (u, ms))) = unit else { return bad() };
        total = total.saturating_add(n.saturating_mul(*ms));
        rest = &rest[u.len()..];
        next_unit = i + 1;
    }
    if total == 0 {
        return bad();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_follow_the_api_servers_grammar() {
        for (q, v) in [("1", 1.0), ("0.5", 0.5), ("250m", 0.25), ("128Mi", 134217728.0), ("1e3", 1000.0), ("2G", 2e9)] {
            assert_eq!(quantity(q).unwrap(), v, "{q}");
        }
        for q in ["", "m", "1.2.3", "two", "1GB", "1 Gi", "1gi", "1e", "1e1.5", "Gi"] {
            assert!(quantity(q).is_err(), "{q} should be refused");
        }
        assert!(quantity("-1").unwrap() < 0.0);
    }

    #[test]
    fn durations_follow_prometheus() {
        assert_eq!(prometheus_duration("30s").unwrap(), 30_000);
        assert_eq!(
            prometheus_duration("1y2w3d4h5m6s7ms").unwrap(),
            31_536_000_000 + 1_209_600_000 + 259_200_000 + 14_400_000 + 300_000 + 6_000 + 7
        );
        assert_eq!(prometheus_duration("500ms").unwrap(), 500);
        for d in ["", "0", "0s", "forever", "2 hours", "1.5h", "30m1h", "1h1h", "-5m", "10"] {
            assert!(prometheus_duration(d).is_err(), "{d} should be refused");
        }
    }
}
