//! Kubernetes `Status` objects: every error this API answers is one, as
//! the API machinery writes them (`kind`, `apiVersion`, `metadata`,
//! `status: Failure`, `message`, `reason`, `details`, `code`), never a bare
//! string.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub fn status(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    (code, axum::Json(body)).into_response()
}

pub fn bad_request(message: &str) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

/// `<resource>.<group> "<name>" not found`, with the details the API
/// machinery gives.
pub fn not_found(resource: &str, group: &str, name: &str) -> Response {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let mut details = json!({"name": name, "kind": resource});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{qualified} {name:?} not found"),
        Some(details),
    )
}

/// A path this server does not serve.
pub fn no_route() -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

pub fn unavailable(message: &str) -> Response {
    status(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        message,
        None,
    )
}

pub fn internal(message: &str) -> Response {
    status(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        &format!("Internal error occurred: {message}"),
        Some(json!({"causes": [{"message": message}]})),
    )
}
