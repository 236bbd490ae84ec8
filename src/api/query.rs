//! `/api/v1/query` and `/api/v1/query_range`: PromQL over HTTP with the
//! JSON shapes, error types and status codes Prometheus uses.

use super::error::ApiError;
use super::params::{parse_duration, parse_time, Params};
use super::query_json::QueryAnswer;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use promql::{Engine, EngineOptions, QueryStats, QueryValue};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn respond(
    value: &QueryValue,
    stats: &QueryStats,
    params: &Params,
    elapsed: Duration,
) -> Result<Response, ApiError> {
    let answer = QueryAnswer {
        value,
        stats,
        limit: params.limit()?,
        elapsed: params
            .get("stats")
            .is_some_and(|s| !s.is_empty())
            .then_some(elapsed),
    };
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_json(),
    )
        .into_response())
}

fn engine(st: &AppState, params: &Params) -> Result<Engine, ApiError> {
    let mut opts: EngineOptions = (*st.query).clone();
    if let Some(t) = params.get("timeout").filter(|t| !t.is_empty()) {
        let ms = parse_duration(t)
            .map_err(|e| ApiError::BadData(format!("invalid parameter \"timeout\": {e}")))?;
        if ms > 0 {
            opts.timeout = opts.timeout.min(Duration::from_millis(ms as u64));
        }
    }
    Ok(Engine::new(opts))
}

fn query_text(params: &Params) -> Result<String, ApiError> {
    match params.get("query") {
        Some(q) if !q.trim().is_empty() => Ok(q.to_string()),
        _ => Err(ApiError::BadData(
            "invalid parameter \"query\": unknown position: parse error: no expression found in input".into(),
        )),
    }
}

fn time_param(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse_time(s)
                .map_err(|e| ApiError::BadData(format!("invalid parameter \"{name}\": {e}")))
        })
        .transpose()
}

/// Waits for a query slot (up to the query's timeout), evaluates outside
/// the async executor's scheduling with the request's engine, and builds
/// the response.
async fn answer(
    st: &AppState,
    params: &Params,
    f: impl FnOnce(&Engine) -> Result<(QueryValue, QueryStats), promql::QueryError> + Send + 'static,
) -> Result<Response, ApiError> {
    let engine = engine(st, params)?;
    let started = Instant::now();
    let _slot = tokio::time::timeout(engine.opts.timeout, st.query_slots.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::Timeout("query timed out in query queue".into()))?
        .map_err(|_| ApiError::Unavailable("the server is shutting down".into()))?;
    // Evaluate on this worker thread, handing its other tasks to another
    // (`block_in_place`): a query starts at once, where a `spawn_blocking`
    // hop waits for a pool thread to wake and costs two thread switches.
    let (value, stats) = tokio::task::block_in_place(move || f(&engine))?;
    respond(&value, &stats, params, started.elapsed())
}

/// `nocache=1` (VictoriaMetrics's parameter): read blocks without the
/// shared row-group cache, neither using nor filling it.
fn bypass_cache(params: &Params) -> Result<bool, ApiError> {
    match params.get("nocache").unwrap_or("") {
        "" | "0" | "false" => Ok(false),
        "1" | "true" => Ok(true),
        other => Err(ApiError::BadData(format!(
            "invalid parameter \"nocache\": {:?} is not one of 0, 1, false, true",
            super::error::clip(other, 64)
        ))),
    }
}

pub async fn query(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref(), Some(&body));
    let db = st.db()?;
    let text = query_text(&params)?;
    let t = time_param(&params, "time")?.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    let uncached = bypass_cache(&params)?;
    answer(&st, &params, move |engine| {
        if uncached {
            engine.instant(&db.uncached(), &text, t)
        } else {
            engine.instant(&*db, &text, t)
        }
    })
    .await
}

pub async fn query_range(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref(), Some(&body));
    let db = st.db()?;
    let text = query_text(&params)?;
    let start = time_param(&params, "start")?.ok_or_else(|| {
        ApiError::BadData(
            "invalid parameter \"start\": cannot parse \"\" to a valid timestamp".into(),
        )
    })?;
    let end = time_param(&params, "end")?.ok_or_else(|| {
        ApiError::BadData(
            "invalid parameter \"end\": cannot parse \"\" to a valid timestamp".into(),
        )
    })?;
    if end < start {
        return Err(ApiError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    let step = match params.get("step").filter(|s| !s.is_empty()) {
        Some(s) => parse_duration(s)
            .map_err(|e| ApiError::BadData(format!("invalid parameter \"step\": {e}")))?,
        None => {
            return Err(ApiError::BadData(
                "invalid parameter \"step\": cannot parse \"\" to a valid duration".into(),
            ))
        }
    };
    if step <= 0 {
        return Err(ApiError::BadData(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    let uncached = bypass_cache(&params)?;
    answer(&st, &params, move |engine| {
        if uncached {
            engine.range(&db.uncached(), &text, start, end, step)
        } else {
            engine.range(&*db, &text, start, end, step)
        }
    })
    .await
}

/// `/api/v1/format_query`: the query pretty-printed as Prometheus does.
pub async fn format_query(RawQuery(q): RawQuery, body: Bytes) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(q.as_deref(), Some(&body));
    let text = query_text(&params)?;
    let expr = promql::syntax_error::parse(&text)
        .map_err(|e| ApiError::BadData(format!("invalid parameter \"query\": {e}")))?;
    Ok(Json(json!({"status": "success", "data": expr.prettify()})))
}

/// `/api/v1/parse_query`: the query's syntax tree as JSON.
pub async fn parse_query(RawQuery(q): RawQuery, body: Bytes) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(q.as_deref(), Some(&body));
    let text = query_text(&params)?;
    let expr = promql::syntax_error::parse(&text)
        .map_err(|e| ApiError::BadData(format!("invalid parameter \"query\": {e}")))?;
    let tree = serde_json::to_value(&expr).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({"status": "success", "data": tree})))
}
