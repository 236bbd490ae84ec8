//! Request parameters as Prometheus reads them: from the query string and,
//! for POST, from a form-encoded body; `match[]` may repeat.

use super::error::ApiError;
use crate::selector::{parse_selector, SelectorSet};
use tsdb::{TimeRange, Timestamp};

/// All parameters of a request, in order, repeated keys kept.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>, form_body: Option<&[u8]>) -> Self {
        let mut v: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            v.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        if let Some(b) = form_body {
            v.extend(form_urlencoded::parse(b).into_owned());
        }
        Params(v)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every `match[]` selector, parsed.
    pub fn selectors(&self) -> Result<Vec<SelectorSet>, ApiError> {
        self.all("match[]")
            .map(|s| parse_selector(s).map_err(ApiError::BadData))
            .collect()
    }

    /// Every `match[]` selector, at least one required (series, export).
    pub fn required_selectors(&self) -> Result<Vec<SelectorSet>, ApiError> {
        let selectors = self.selectors()?;
        if selectors.is_empty() {
            return Err(ApiError::BadData("no match[] parameter provided".into()));
        }
        Ok(selectors)
    }

    /// `start`/`end` as an inclusive range; absent bounds are open.
    pub fn time_range(&self) -> Result<TimeRange, ApiError> {
        let start = match self.get("start") {
            Some(s) => parse_time(s)
                .map_err(|e| ApiError::BadData(format!("invalid parameter \"start\": {e}")))?,
            None => Timestamp::MIN,
        };
        let end = match self.get("end") {
            Some(s) => parse_time(s)
                .map_err(|e| ApiError::BadData(format!("invalid parameter \"end\": {e}")))?,
            None => Timestamp::MAX,
        };
        if end < start {
            return Err(ApiError::BadData(
                "invalid parameter \"end\": end timestamp must not be before start time".into(),
            ));
        }
        Ok(TimeRange::new(start, end))
    }

    /// `limit`: 0 or absent means no limit.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None | Some("") => Ok(0),
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(|n| n as usize)
                .ok_or_else(|| {
                    ApiError::BadData(format!(
                        "invalid parameter \"limit\": cannot parse {s:?} to a non-negative integer"
                    ))
                }),
        }
    }
}

/// Prometheus duration parameters (`step`, `timeout`): float seconds or a
/// duration such as `1m30s`; returned in milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        let ms = (secs * 1000.0).round();
        if !ms.is_finite() || ms > i64::MAX as f64 || ms < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms as i64);
    }
    let d = vigil_config::duration::parse(s)
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))?;
    i64::try_from(d.as_millis()).map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

/// Prometheus time parameters: Unix seconds (with decimals) or RFC 3339.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        let ms = (secs * 1000.0).round();
        if ms < Timestamp::MIN as f64 || ms > Timestamp::MAX as f64 {
            return Err(format!("timestamp {s:?} is out of range"));
        }
        return Ok(ms as Timestamp);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000.5"), Ok(1_700_000_000_500));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("NaN").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15"), Ok(15_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        assert_eq!(parse_duration("1m30s"), Ok(90_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn repeated_keys_from_query_and_body() {
        let p = Params::parse(
            Some("match[]=up&start=1"),
            Some(b"match[]=%7Bjob%3D%22a%22%7D"),
        );
        assert_eq!(p.all("match[]").collect::<Vec<_>>(), ["up", "{job=\"a\"}"]);
        assert_eq!(
            p.time_range().unwrap(),
            TimeRange::new(1000, Timestamp::MAX)
        );
    }
}
