//! Units of a panel's values and their human formatting (`1.5 GiB`,
//! `250 ms`, `42%`, `3.2k/s`).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Plain numbers with SI suffixes.
    #[default]
    None,
    Bytes,
    BytesPerSecond,
    Seconds,
    /// 0–100.
    Percent,
    /// 0–1, shown as 0–100 %.
    Ratio,
    /// Events per second.
    PerSecond,
}

impl Unit {
    pub const ALL: [Unit; 7] = [
        Unit::None,
        Unit::Bytes,
        Unit::BytesPerSecond,
        Unit::Seconds,
        Unit::Percent,
        Unit::Ratio,
        Unit::PerSecond,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Unit::None => "none",
            Unit::Bytes => "bytes",
            Unit::BytesPerSecond => "bytes_per_second",
            Unit::Seconds => "seconds",
            Unit::Percent => "percent",
            Unit::Ratio => "percent_unit",
            Unit::PerSecond => "per_second",
        }
    }

    pub fn from_id(s: &str) -> Unit {
        Unit::ALL
            .into_iter()
            .find(|u| u.id() == s)
            .unwrap_or_default()
    }

    pub fn format(self, v: f64) -> String {
        if v.is_nan() {
            return "NaN".into();
        }
        if v.is_infinite() {
            return if v > 0.0 {
                "+Inf".into()
            } else {
                "-Inf".into()
            };
        }
        match self {
            Unit::None => si(v, ""),
            Unit::Bytes => binary(v, "B"),
            Unit::BytesPerSecond => binary(v, "B/s"),
            Unit::Seconds => duration(v),
            Unit::Percent => format!("{}%", trim(v, 1)),
            Unit::Ratio => format!("{}%", trim(v * 100.0, 1)),
            Unit::PerSecond => si(v, "/s"),
        }
    }
}

/// Up to `decimals` decimals, trailing zeros dropped.
fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn significant(v: f64) -> String {
    let a = v.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else {
        2
    };
    trim(v, decimals)
}

fn si(v: f64, suffix: &str) -> String {
    const UP: [&str; 6] = ["", "k", "M", "G", "T", "P"];
    const DOWN: [&str; 4] = ["", "m", "µ", "n"];
    let a = v.abs();
    if a == 0.0 {
        return format!("0{suffix}");
    }
    if a >= 1.0 {
        let mut i = 0;
        let mut x = v;
        while x.abs() >= 1000.0 && i + 1 < UP.len() {
            x /= 1000.0;
            i += 1;
        }
        format!("{}{}{suffix}", significant(x), UP[i])
    } else {
        let mut i = 0;
        let mut x = v;
        while x.abs() < 1.0 && i + 1 < DOWN.len() {
            x *= 1000.0;
            i += 1;
        }
        format!("{}{}{suffix}", significant(x), DOWN[i])
    }
}

fn binary(v: f64, suffix: &str) -> String {
    const UP: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut i = 0;
    let mut x = v;
    while x.abs() >= 1024.0 && i + 1 < UP.len() {
        x /= 1024.0;
        i += 1;
    }
    format!("{} {}{suffix}", significant(x), UP[i])
}

fn duration(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0 s".into()
    } else if a < 1e-6 {
        format!("{} ns", significant(v * 1e9))
    } else if a < 1e-3 {
        format!("{} µs", significant(v * 1e6))
    } else if a < 1.0 {
        format!("{} ms", significant(v * 1e3))
    } else if a < 60.0 {
        format!("{} s", significant(v))
    } else if a < 3600.0 {
        format!("{} min", significant(v / 60.0))
    } else if a < 86400.0 {
        format!("{} h", significant(v / 3600.0))
    } else {
        format!("{} d", significant(v / 86400.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_each_unit() {
        assert_eq!(Unit::None.format(1234.0), "1.23k");
        assert_eq!(Unit::None.format(0.005), "5m");
        assert_eq!(Unit::None.format(0.0), "0");
        assert_eq!(Unit::None.format(42.0), "42");
        assert_eq!(Unit::Bytes.format(1536.0), "1.5 KiB");
        assert_eq!(Unit::Bytes.format(3.0 * 1024.0 * 1024.0 * 1024.0), "3 GiB");
        assert_eq!(Unit::Bytes.format(512.0), "512 B");
        assert_eq!(Unit::BytesPerSecond.format(2048.0), "2 KiB/s");
        assert_eq!(Unit::Seconds.format(0.25), "250 ms");
        assert_eq!(Unit::Seconds.format(90.0), "1.5 min");
        assert_eq!(Unit::Seconds.format(7200.0), "2 h");
        assert_eq!(Unit::Percent.format(42.04), "42%");
        assert_eq!(Unit::Ratio.format(0.425), "42.5%");
        assert_eq!(Unit::PerSecond.format(3200.0), "3.2k/s");
        assert_eq!(Unit::None.format(f64::NAN), "NaN");
        assert_eq!(Unit::None.format(f64::NEG_INFINITY), "-Inf");
        assert_eq!(Unit::None.format(-2500.0), "-2.5k");
    }

    #[test]
    fn ids_round_trip() {
        for u in Unit::ALL {
            assert_eq!(Unit::from_id(u.id()), u);
        }
        assert_eq!(Unit::from_id("furlongs"), Unit::None);
    }
}
