//! Durations as Prometheus writes them in rule files (`5m`, `1h30m`,
//! `1d`, `100ms`; units y w d h m s ms in that order, integers only).

use std::time::Duration;

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses `s`; the error is Prometheus's message.
pub fn parse(s: &str) -> Result<Duration, String> {
    let bad = || format!("not a valid duration string: {s:?}");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut ms: u64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        // "ms" before "m": the longest unit that matches.
        let unit = UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())
            .ok_or_else(bad)?;
        let (i, (u, mult)) = unit;
        ms = n
            .checked_mul(*mult)
            .and_then(|v| ms.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[u.len()..];
        next_unit = i + 1;
    }
    Ok(Duration::from_millis(ms))
}

/// `d` as Prometheus prints it (`1h30m`, `0s`).
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (u, mult) in UNITS {
        if ms >= mult {
            out.push_str(&format!("{}{u}", ms / mult));
            ms %= mult;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_durations() {
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("1d2h"), Ok(Duration::from_secs(26 * 3600)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        for bad in ["", "abc", "30", "1.5m", "5m1h", "1mm", "-1m"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_millis(1500)), "1s500ms");
    }
}
