//! The time range a page shows: the last N (follows "now" on refresh) or a
//! fixed from–to (after a zoom or an absolute pick), and the query step.

/// Relative choices offered by the picker, in seconds.
pub const RELATIVE: [(&str, f64); 9] = [
    ("5m", 300.0),
    ("15m", 900.0),
    ("1h", 3600.0),
    ("3h", 10800.0),
    ("6h", 21600.0),
    ("12h", 43200.0),
    ("24h", 86400.0),
    ("2d", 172800.0),
    ("7d", 604800.0),
];

#[derive(Clone, Debug, PartialEq)]
pub enum TimeRange {
    /// The last `seconds`, written as `text` (`1h`) in the URL.
    Last { text: String, seconds: f64 },
    /// Fixed unix seconds.
    Fixed { from: f64, to: f64 },
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange::Last {
            text: "1h".into(),
            seconds: 3600.0,
        }
    }
}

/// Parses `30s`, `5m`, `1h30m`, `2d`, `1w`.
pub fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0.0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86400.0,
            'w' => 604800.0,
            _ => return None,
        };
    }
    if !num.is_empty() {
        return None;
    }
    (total > 0.0).then_some(total)
}

impl TimeRange {
    pub fn from_params(range: Option<&str>, from: Option<&str>, to: Option<&str>) -> TimeRange {
        if let (Some(f), Some(t)) = (from, to) {
            if let (Ok(f), Ok(t)) = (f.parse::<f64>(), t.parse::<f64>()) {
                if t > f {
                    return TimeRange::Fixed { from: f, to: t };
                }
            }
        }
        range
            .and_then(|r| {
                parse_duration(r).map(|seconds| TimeRange::Last {
                    text: r.to_string(),
                    seconds,
                })
            })
            .unwrap_or_default()
    }

    /// (range, from, to) URL values; empty ones are left out.
    pub fn to_params(&self) -> (String, String, String) {
        match self {
            TimeRange::Last { text, .. } => (text.clone(), String::new(), String::new()),
            TimeRange::Fixed { from, to } => {
                (String::new(), format!("{from:.0}"), format!("{to:.0}"))
            }
        }
    }

    /// (start, end) in unix seconds, given "now".
    pub fn resolve(&self, now: f64) -> (f64, f64) {
        match self {
            TimeRange::Last { seconds, .. } => (now - seconds, now),
            TimeRange::Fixed { from, to } => (*from, *to),
        }
    }

    /// A query step giving about `points` points over the range, in whole
    /// milliseconds (at least 1 s: finer than a scrape shows nothing new).
    pub fn step(&self, now: f64, points: f64) -> f64 {
        let (s, e) = self.resolve(now);
        (((e - s) / points * 1000.0).round() / 1000.0).max(1.0)
    }

    pub fn label(&self) -> String {
        match self {
            TimeRange::Last { text, .. } => format!("Last {text}"),
            TimeRange::Fixed { from, to } => {
                format!(
                    "{} to {}",
                    crate::time::format_datetime(*from),
                    crate::time::format_datetime(*to)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Some(300.0));
        assert_eq!(parse_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_duration("2d"), Some(172800.0));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("0s"), None);
    }

    #[test]
    fn ranges_from_params() {
        let r = TimeRange::from_params(Some("6h"), None, None);
        assert_eq!(r.resolve(100_000.0), (100_000.0 - 21600.0, 100_000.0));
        let f = TimeRange::from_params(Some("6h"), Some("100"), Some("200"));
        assert_eq!(
            f,
            TimeRange::Fixed {
                from: 100.0,
                to: 200.0
            }
        );
        assert_eq!(f.to_params(), (String::new(), "100".into(), "200".into()));
        // An inverted or unreadable range falls back to the default.
        assert_eq!(
            TimeRange::from_params(Some("bad"), Some("200"), Some("100")),
            TimeRange::default()
        );
        assert_eq!(TimeRange::default().step(0.0, 1000.0), 3.6);
        assert_eq!(
            TimeRange::from_params(Some("5m"), None, None).step(0.0, 1000.0),
            1.0
        );
    }
}
