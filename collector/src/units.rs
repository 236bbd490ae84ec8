//! Durations and byte sizes as Prometheus's YAML writes them (`1h30m`,
//! `15s`, `512MB`), and serde helpers that read them into config structs.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("empty duration string")]
    EmptyDuration,
    #[error("not a valid duration string: {0:?} (want e.g. 30s, 5m, 1h30m)")]
    BadDuration(String),
    #[error("unknown unit {unit:?} in duration {text:?} (use ms, s, m, h, d, w, y)")]
    DurationUnit { unit: String, text: String },
    #[error("duration {0:?} is too large")]
    DurationTooLarge(String),
    #[error("not a valid size: {0:?} (want e.g. 512MB, 10GB)")]
    BadSize(String),
    #[error("unknown unit {unit:?} in size {text:?} (use B, KB, MB, GB, TB, PB)")]
    SizeUnit { unit: String, text: String },
    #[error("size {0:?} is too large")]
    SizeTooLarge(String),
}

/// Prometheus durations: `1h30m`, `15s`, `500ms`, `2d`, `1w`, `1y`; `0`
/// alone is allowed.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(UnitError::EmptyDuration);
    }
    let too_large = || UnitError::DurationTooLarge(s.to_string());
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(UnitError::BadDuration(s.to_string()));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| too_large())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            u => {
                return Err(UnitError::DurationUnit {
                    unit: u.to_string(),
                    text: s.to_string(),
                })
            }
        };
        rest = &rest[unit_len..];
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|x| total_ms.checked_add(x))
            .ok_or_else(too_large)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// A duration as Prometheus prints one (`15s`, `1m30s`, `90d`, `0s`): the
/// text of the `__scrape_interval__` label relabeling sees.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    // Years and weeks only when they divide evenly: `90d` reads better
    // than `12w6d`.
    for (unit, mult, exact) in [
        ("y", 365 * 86_400_000, true),
        ("w", 7 * 86_400_000, true),
        ("d", 86_400_000, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1_000, false),
        ("ms", 1, false),
    ] {
        if exact && ms % mult != 0 {
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

/// Prometheus byte sizes (base 2): `512MB`, `10GB`, `1TB`; `0` alone is
/// allowed.
pub fn parse_bytes(s: &str) -> Result<u64, UnitError> {
    if s == "0" {
        return Ok(0);
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(UnitError::BadSize(s.to_string()));
    }
    let too_large = || UnitError::SizeTooLarge(s.to_string());
    let n: u64 = s[..digits].parse().map_err(|_| too_large())?;
    let mult: u64 = match &s[digits..] {
        "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        "PB" => 1 << 50,
        u => {
            return Err(UnitError::SizeUnit {
                unit: u.to_string(),
                text: s.to_string(),
            })
        }
    };
    n.checked_mul(mult).ok_or_else(too_large)
}

/// serde: a duration field (`deserialize_with`).
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

/// serde: an optional duration field; absent means "inherit".
pub fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// serde: a byte-size field.
pub fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = String::deserialize(d)?;
    parse_bytes(&s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for (text, back) in [
            ("15s", "15s"),
            ("90s", "1m30s"),
            ("90d", "90d"),
            ("14d", "2w"),
            ("1500ms", "1s500ms"),
            ("0", "0s"),
        ] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), back);
        }
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999y").is_err());
        let e = parse_duration("5x").unwrap_err().to_string();
        assert!(e.contains("unknown unit \"x\""), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert!(parse_bytes("10G").is_err());
        assert!(parse_bytes("GB").is_err());
        assert!(parse_bytes("99999999PB").is_err());
    }
}
