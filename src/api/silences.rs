//! Alertmanager's silences API v2 for the built-in notifier:
//! `GET/POST /api/v2/silences`, `GET/DELETE /api/v2/silence/{id}`.

use crate::server::AppState;
use alerting::dispatch::silences::{Silence, SilenceMatcher, Silences};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

fn silences(st: &AppState) -> Option<Arc<Silences>> {
    st.rules()
        .and_then(|m| m.dispatcher().map(|d| d.silences().clone()))
}

fn no_notifier() -> Response {
    (
        StatusCode::NOT_FOUND,
        "silences need the built-in notifier (alerting.notifier_config_file)\n",
    )
        .into_response()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn silence_json(s: &Silence, now: i64) -> Value {
    json!({
        "id": s.id,
        "matchers": s.matchers,
        "startsAt": rfc3339(s.starts_at),
        "endsAt": rfc3339(s.ends_at),
        "updatedAt": rfc3339(s.updated_at),
        "createdBy": s.created_by,
        "comment": s.comment,
        "status": {"state": s.state(now)},
    })
}

pub async fn list(State(st): State<AppState>) -> Response {
    let Some(s) = silences(&st) else {
        return no_notifier();
    };
    let now = now_ms();
    let all: Vec<Value> = s.list().iter().map(|x| silence_json(x, now)).collect();
    Json(Value::Array(all)).into_response()
}

pub async fn get_one(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(s) = silences(&st) else {
        return no_notifier();
    };
    match s.get(&id) {
        Some(x) => Json(silence_json(&x, now_ms())).into_response(),
        None => (StatusCode::NOT_FOUND, format!("silence {id} not found\n")).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<SilenceMatcher>,
    starts_at: String,
    ends_at: String,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

fn parse_time(what: &str, s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{what} {s:?} is not an RFC 3339 time: {e}"))
}

pub async fn create(State(st): State<AppState>, body: axum::body::Bytes) -> Response {
    let Some(s) = silences(&st) else {
        return no_notifier();
    };
    let bad = |m: String| (StatusCode::BAD_REQUEST, format!("{m}\n")).into_response();
    let p: PostableSilence = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad(format!("invalid silence: {e}")),
    };
    let (starts_at, ends_at) = match (
        parse_time("startsAt", &p.starts_at),
        parse_time("endsAt", &p.ends_at),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad(e),
    };
    let silence = Silence {
        id: p.id.unwrap_or_default(),
        matchers: p.matchers,
        starts_at,
        ends_at,
        updated_at: 0,
        created_by: p.created_by,
        comment: p.comment,
    };
    match tokio::task::spawn_blocking(move || s.put(silence, now_ms())).await {
        Ok(Ok(id)) => Json(json!({"silenceID": id})).into_response(),
        Ok(Err(e)) => bad(e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

pub async fn expire(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(s) = silences(&st) else {
        return no_notifier();
    };
    match tokio::task::spawn_blocking(move || s.expire(&id, now_ms())).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) if e.contains("not found") => {
            (StatusCode::NOT_FOUND, format!("{e}\n")).into_response()
        }
        Ok(Err(e)) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
