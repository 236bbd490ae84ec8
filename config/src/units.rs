//! Durations and byte sizes as Prometheus's YAML writes them (`1h30m`,
//! `15s`, `512MB`), and serde helpers that read them into config structs.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("{0}")]
    Duration(#[from] crate::duration::DurationError),
    #[error("not a valid size: {0:?} (want e.g. 512MB, 10GB)")]
    BadSize(String),
    #[error("unknown unit {unit:?} in size {text:?} (use B, KB, MB, GB, TB, PB)")]
    SizeUnit { unit: String, text: String },
    #[error("size {0:?} is too large")]
    SizeTooLarge(String),
}

/// Prometheus durations: `1h30m`, `15s`, `500ms`, `2d`, `1w`, `1y`; `0`
/// alone is allowed (the one parser, [`crate::duration`]).
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    crate::duration::parse(s).map_err(UnitError::Duration)
}

/// A duration as Prometheus prints one (`15s`, `1m30s`, `90d`, `0s`): the
/// text of the `__scrape_interval__` label relabeling sees.
pub fn format_duration(d: Duration) -> String {
    crate::duration::format(d)
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
    fn durations_are_prometheus_durations() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(format_duration(Duration::from_secs(14 * 86_400)), "2w");
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
