//! Prometheus-style API errors: `{"status":"error","errorType":..,"error":..}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// At most `max` bytes of `s` (cut on a character boundary), marked when
/// cut: errors quote the input they refuse, and a 1 MB label value must not
/// come back whole in the answer.
pub fn clip(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    format!(
        "{}… ({} bytes in all)",
        tsdb::quote::prefix(s, max),
        s.len()
    )
    .into()
}

/// How much of one refused item an error answer quotes.
pub const MAX_QUOTED: usize = 512;

#[derive(Debug)]
pub enum ApiError {
    /// 400 `bad_data`: the request is malformed.
    BadData(String),
    /// 503 `unavailable`: the store is still starting.
    Unavailable(String),
    /// 500 `internal`.
    Internal(String),
    /// 422 `execution`: a valid query that cannot be evaluated.
    Execution(String),
    /// 503 `timeout`: the query ran past its deadline.
    Timeout(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &str) {
        match self {
            ApiError::BadData(m) => (StatusCode::BAD_REQUEST, "bad_data", m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
            ApiError::Execution(m) => (StatusCode::UNPROCESSABLE_ENTITY, "execution", m),
            ApiError::Timeout(m) => (StatusCode::SERVICE_UNAVAILABLE, "timeout", m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, ty, msg) = self.parts();
        // Errors may quote the request (a query, a matcher): never all of it.
        let body = json!({"status": "error", "errorType": ty, "error": clip(msg, 4096)});
        (code, Json(body)).into_response()
    }
}

impl From<tsdb::TsdbError> for ApiError {
    fn from(e: tsdb::TsdbError) -> Self {
        match e {
            tsdb::TsdbError::InvalidMatcher { .. } => ApiError::BadData(e.to_string()),
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<promql::QueryError> for ApiError {
    fn from(e: promql::QueryError) -> Self {
        use promql::QueryError as Q;
        let msg = e.to_string();
        match e {
            Q::BadData(_) => ApiError::BadData(msg),
            Q::Execution(_) | Q::TooManySamples(_) => ApiError::Execution(msg),
            Q::Timeout(_) => ApiError::Timeout(msg),
            Q::MemoryBudget => ApiError::Unavailable(msg),
            Q::Storage(inner) => inner.into(),
        }
    }
}
