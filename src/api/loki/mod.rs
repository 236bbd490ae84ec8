//! Loki's HTTP API: push, and the stream metadata endpoints (labels,
//! label values, series). Errors are plain text with Loki's status codes.

pub mod labels;
pub mod push;
pub mod query;
pub mod tail;

use crate::server::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use logstore::LogStore;
use std::sync::Arc;

/// A plain-text error response, as Loki sends them.
pub(crate) fn text_error(code: StatusCode, msg: impl Into<String>) -> Response {
    let mut msg = msg.into();
    // Errors may quote the request: never all of it.
    if msg.len() > 4096 {
        msg = crate::api::error::clip(&msg, 4096).into_owned();
    }
    if !msg.ends_with('\n') {
        msg.push('\n');
    }
    (code, msg).into_response()
}

/// An error answer: status code and plain-text message.
#[derive(Debug)]
pub(crate) struct LokiError {
    pub code: StatusCode,
    pub msg: String,
}

impl LokiError {
    pub fn bad(msg: impl Into<String>) -> Self {
        LokiError {
            code: StatusCode::BAD_REQUEST,
            msg: msg.into(),
        }
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        LokiError {
            code: StatusCode::INTERNAL_SERVER_ERROR,
            msg: msg.into(),
        }
    }
}

impl IntoResponse for LokiError {
    fn into_response(self) -> Response {
        text_error(self.code, self.msg)
    }
}

/// A request's parameters: the query string and a form body (POST).
pub(crate) fn params(
    query: Option<String>,
    body: &axum::body::Bytes,
) -> crate::api::params::Params {
    crate::api::params::Params::parse(query.as_deref(), (!body.is_empty()).then_some(&body[..]))
}

pub(crate) fn log_store(st: &AppState) -> Result<Arc<LogStore>, LokiError> {
    st.logs().ok_or_else(|| LokiError {
        code: StatusCode::SERVICE_UNAVAILABLE,
        msg: "the log store is starting (replaying its WAL)".into(),
    })
}

pub(crate) fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// A time parameter as Loki reads it: float seconds when it has a `.`,
/// an integer (seconds when at most 10 digits, else nanoseconds), or
/// RFC 3339.
pub(crate) fn parse_time(name: &str, value: &str) -> Result<i64, String> {
    let bad = || {
        format!("invalid {name} {value:?}: want a Unix time (seconds or nanoseconds) or RFC 3339")
    };
    if value.contains('.') {
        if let Ok(f) = value.parse::<f64>() {
            if f.is_finite() && f.abs() < 9.2e9 {
                return Ok((f * 1e9).round() as i64);
            }
            return Err(bad());
        }
    }
    if let Ok(n) = value.parse::<i64>() {
        let digits = value.trim_start_matches('-').len();
        return if digits <= 10 {
            n.checked_mul(1_000_000_000).ok_or_else(bad)
        } else {
            Ok(n)
        };
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(bad)
}

/// `start` and `end` (inclusive nanoseconds) from a request, defaulting to
/// `default_since` before now (or before `end`), or `since` when given.
pub(crate) fn time_range(
    params: &crate::api::params::Params,
    default_since: std::time::Duration,
) -> Result<(i64, i64), String> {
    let end = match params.get("end") {
        Some(v) => parse_time("end", v)?,
        None => now_ns(),
    };
    let since = match params.get("since") {
        Some(v) => crate::api::params::parse_duration(v)
            .map_err(|e| format!("invalid since {v:?}: {e}"))?
            .saturating_mul(1_000_000),
        None => i64::try_from(default_since.as_nanos()).unwrap_or(i64::MAX),
    };
    let start = match params.get("start") {
        Some(v) => parse_time("start", v)?,
        None => end.saturating_sub(since),
    };
    if end < start {
        return Err("end timestamp must not be before start time".into());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_loki_reads_them() {
        assert_eq!(
            parse_time("t", "1700000000").unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            parse_time("t", "1700000000000000001").unwrap(),
            1_700_000_000_000_000_001
        );
        assert_eq!(
            parse_time("t", "1700000000.5").unwrap(),
            1_700_000_000_500_000_000
        );
        assert_eq!(
            parse_time("t", "2023-11-14T22:13:20.000000001Z").unwrap(),
            1_700_000_000_000_000_001
        );
        let e = parse_time("start", "yesterday").unwrap_err();
        assert!(e.contains("invalid start \"yesterday\""), "{e}");
    }
}
