//! `/api/vigil/dashboards`: list, read, save and delete dashboards, and
//! convert Grafana dashboard JSON (`POST /api/vigil/dashboards/import`,
//! which answers the converted dashboard and what was left out, without
//! saving it). Errors are `{"error": ...}` naming what is wrong.

use crate::dashboard_store::StoreError;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": msg.to_string()}))).into_response()
}

fn store_error(e: StoreError) -> Response {
    let status = match &e {
        StoreError::Invalid(_)
        | StoreError::UidMismatch { .. }
        | StoreError::TooLarge { .. }
        | StoreError::TooMany { .. } => StatusCode::BAD_REQUEST,
        StoreError::Builtin(_) => StatusCode::CONFLICT,
        StoreError::NotFound(_) => StatusCode::NOT_FOUND,
        StoreError::Io { .. } => {
            tracing::error!(error = %e, "dashboard store");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, e)
}

fn text(body: &Bytes) -> Result<&str, String> {
    std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))
}

pub async fn list(State(st): State<AppState>) -> Response {
    let store = st.dashboards.clone();
    match tokio::task::spawn_blocking(move || store.list()).await {
        Ok((dashboards, errors)) => {
            Json(json!({"dashboards": dashboards, "errors": errors})).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

pub async fn get(State(st): State<AppState>, Path(uid): Path<String>) -> Response {
    match st.dashboards.get(&uid) {
        Ok((d, builtin)) => Json(json!({"dashboard": d, "builtin": builtin})).into_response(),
        Err(e) => store_error(e),
    }
}

pub async fn put(State(st): State<AppState>, Path(uid): Path<String>, body: Bytes) -> Response {
    let body = match text(&body) {
        Ok(t) => t.to_string(),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let store = st.dashboards.clone();
    let u = uid.clone();
    match tokio::task::spawn_blocking(move || store.put(&u, &body)).await {
        Ok(Ok(created)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(json!({"uid": uid}))).into_response()
        }
        Ok(Err(e)) => store_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

pub async fn delete(State(st): State<AppState>, Path(uid): Path<String>) -> Response {
    match st.dashboards.delete(&uid) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => store_error(e),
    }
}

pub async fn import(body: Bytes) -> Response {
    let body = match text(&body) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match dashboards::grafana::import(body) {
        Ok(i) => {
            Json(json!({"dashboard": i.dashboard, "unsupported": i.unsupported})).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}
