//! Durations as Prometheus writes them in its YAML and rule files (`1h30m`,
//! `15s`, `500ms`, `2d`, `1w`, `1y`): integers, units from the largest to the
//! smallest, each at most once (Prometheus's `model.ParseDuration`); `0`
//! alone. The one parser and printer the server's config, the agent's
//! config, rule files, the notifier's config and the query APIs share.

use std::time::Duration;

/// Units from the largest to the smallest, in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration string")]
    Empty,
    /// Prometheus's own message for a malformed duration.
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    #[error("unknown unit {unit:?} in duration {text:?} (use ms, s, m, h, d, w, y)")]
    Unit { unit: String, text: String },
    #[error("duration {0:?} is too large")]
    TooLarge(String),
}

/// Parses a Prometheus duration.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let invalid = || DurationError::Invalid(s.to_string());
    let mut rest = s;
    let mut ms: u64 = 0;
    // Units must come from the largest to the smallest, each once.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::TooLarge(s.to_string()))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        let Some(i) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(if unit.is_empty() {
                invalid()
            } else {
                DurationError::Unit {
                    unit: unit.to_string(),
                    text: s.to_string(),
                }
            });
        };
        if i < next_unit {
            return Err(invalid());
        }
        ms = n
            .checked_mul(UNITS[i].1)
            .and_then(|v| ms.checked_add(v))
            .ok_or_else(|| DurationError::TooLarge(s.to_string()))?;
        rest = &rest[unit_len..];
        next_unit = i + 1;
    }
    Ok(Duration::from_millis(ms))
}

/// `d` as Prometheus prints it (`15s`, `1m30s`, `90d`, `2w`, `0s`): years
/// and weeks only when they divide evenly.
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, mult) in UNITS {
        let exact_only = unit == "y" || unit == "w";
        if exact_only && !ms.is_multiple_of(mult) {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
            ms -= v * mult;
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
        assert_eq!(parse("1m500ms"), Ok(Duration::from_millis(60_500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        for bad in ["abc", "30", "1.5m", "5m1h", "1m1m", "-1m", "m"] {
            assert_eq!(parse(bad), Err(DurationError::Invalid(bad.into())), "{bad}");
        }
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert!(parse("5x")
            .unwrap_err()
            .to_string()
            .contains("unknown unit \"x\""));
        assert!(matches!(
            parse("99999999999999999999y"),
            Err(DurationError::TooLarge(_))
        ));
        for (text, back) in [
            ("15s", "15s"),
            ("90s", "1m30s"),
            ("90d", "90d"),
            ("14d", "2w"),
            ("1500ms", "1s500ms"),
            ("0", "0s"),
            ("1h30m", "1h30m"),
        ] {
            assert_eq!(format(parse(text).unwrap()), back);
        }
    }
}
