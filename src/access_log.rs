//! The request log: one structured line per write or admin request
//! (method, route, status, request size, duration, client address), so a
//! silence that mutes everything or a deleted dashboard leaves a trace.
//!
//! High-volume ingest routes (remote_write, Loki push, import, agents'
//! target reports) are left out unless `access_log: all`; reads are logged
//! only then too. Query strings, headers and bodies are never logged: they
//! can carry credentials.

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Instant;

/// Which requests are logged (`access_log:` in the server config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLog {
    /// Nothing.
    Off,
    /// Requests that change something (POST, PUT, DELETE, PATCH), but not
    /// the ingest routes.
    #[default]
    Writes,
    /// Every request, ingest and reads included.
    All,
}

/// Routes every sender calls many times a second.
const INGEST_ROUTES: [&str; 4] = [
    "/api/v1/write",
    "/loki/api/v1/push",
    "/api/v1/import/prometheus",
    "/api/vigil/agent/targets",
];

/// Reads that take a POST form (queries) rather than change anything.
const READ_POSTS: [&str; 10] = [
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/format_query",
    "/api/v1/parse_query",
    "/api/v1/export",
    "/loki/api/v1/query",
    "/loki/api/v1/query_range",
    "/loki/api/v1/series",
];

fn wanted(mode: AccessLog, method: &axum::http::Method, route: &str) -> bool {
    use axum::http::Method;
    match mode {
        AccessLog::Off => false,
        AccessLog::All => true,
        AccessLog::Writes => {
            matches!(
                *method,
                Method::POST | Method::PUT | Method::DELETE | Method::PATCH
            ) && !INGEST_ROUTES.contains(&route)
                && !READ_POSTS.contains(&route)
                && !route.starts_with("/loki/api/v1/label")
                && route != "/loki/api/v1/index/stats"
                && route != "/api/vigil/dashboards/import"
        }
    }
}

/// The middleware: times the request and logs it once answered.
pub async fn log_request(State(mode): State<AccessLog>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    if !wanted(mode, req.method(), &route) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    // The concrete path names the object (a dashboard uid, a silence id);
    // the query string is left out.
    let path = req.uri().path().to_string();
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let size = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let started = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(
        target: "vigil::access",
        %method,
        route,
        path,
        status = resp.status().as_u16(),
        request_bytes = size,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        client,
        "request"
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn writes_mode_logs_changes_not_ingest_or_queries() {
        let m = AccessLog::Writes;
        assert!(wanted(m, &Method::POST, "/api/v2/silences"));
        assert!(wanted(m, &Method::DELETE, "/api/v2/silence/{id}"));
        assert!(wanted(m, &Method::PUT, "/api/vigil/dashboards/{uid}"));
        assert!(wanted(m, &Method::POST, "/-/reload"));
        assert!(wanted(m, &Method::POST, "/api/vigil/flush"));
        assert!(!wanted(m, &Method::POST, "/api/v1/write"));
        assert!(!wanted(m, &Method::POST, "/loki/api/v1/push"));
        assert!(!wanted(m, &Method::POST, "/api/v1/query"));
        assert!(!wanted(m, &Method::GET, "/api/v2/silences"));
        assert!(wanted(AccessLog::All, &Method::GET, "/api/v1/query"));
        assert!(!wanted(AccessLog::Off, &Method::POST, "/api/v2/silences"));
    }
}
