//! `/loki/api/v1/labels`, `/loki/api/v1/label/<name>/values` and
//! `/loki/api/v1/series`, answered from the partitions' stream registries
//! without opening an index.

use super::{log_store, params, time_range, LokiError};
use crate::api::params::Params;
use crate::selector::parse_selector;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use tsdb::{LabelSet, Matcher};

/// Labels and series look back this far by default, as in Loki.
const DEFAULT_SINCE: Duration = Duration::from_secs(6 * 3600);

fn success(data: Value) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

/// Streams matching any of `selectors` (all streams when there are none).
async fn streams(
    st: &AppState,
    params: &Params,
    selectors: Vec<&str>,
) -> Result<Vec<LabelSet>, LokiError> {
    let store = log_store(st)?;
    let (start, end) = time_range(params, DEFAULT_SINCE).map_err(LokiError::bad)?;
    let mut alternatives: Vec<Vec<Matcher>> = Vec::new();
    for s in &selectors {
        let set = parse_selector(s).map_err(LokiError::bad)?;
        alternatives.extend(set.0);
    }
    if alternatives.is_empty() {
        alternatives.push(Vec::new());
    }
    let found = tokio::task::spawn_blocking(move || {
        let mut out = BTreeSet::new();
        for m in &alternatives {
            out.extend(store.series(m, start, end));
        }
        out
    })
    .await
    .map_err(|e| LokiError::internal(format!("query task failed: {e}")))?;
    Ok(found.into_iter().collect())
}

pub async fn labels(State(st): State<AppState>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = params(q, &body);
    let selectors: Vec<&str> = p.get("query").into_iter().collect();
    match streams(&st, &p, selectors).await {
        Ok(found) => {
            let names: BTreeSet<&str> = found
                .iter()
                .flat_map(|l| l.iter().map(|l| l.name))
                .collect();
            success(json!(names))
        }
        Err(e) => e.into_response(),
    }
}

pub async fn label_values(
    State(st): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(q, &body);
    let selectors: Vec<&str> = p.get("query").into_iter().collect();
    match streams(&st, &p, selectors).await {
        Ok(found) => {
            let values: BTreeSet<&str> = found.iter().filter_map(|l| l.get(&name)).collect();
            success(json!(values))
        }
        Err(e) => e.into_response(),
    }
}

pub async fn series(State(st): State<AppState>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = params(q, &body);
    let selectors: Vec<&str> = p.all("match[]").chain(p.all("match")).collect();
    if selectors.is_empty() {
        return LokiError::bad("at least one match[] argument must be provided").into_response();
    }
    match streams(&st, &p, selectors).await {
        Ok(found) => {
            let data: Vec<Value> = found
                .iter()
                .map(|l| {
                    let m: Map<String, Value> = l
                        .iter()
                        .map(|l| (l.name.to_string(), Value::String(l.value.to_string())))
                        .collect();
                    Value::Object(m)
                })
                .collect();
            success(Value::Array(data))
        }
        Err(e) => e.into_response(),
    }
}

/// `/loki/api/v1/index/stats?query={...}`: streams, blocks (Loki's
/// "chunks"), entries and bytes the selector covers in the range, read
/// from stream registries and block fast fields without decoding lines.
pub async fn index_stats(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(q, &body);
    let answer = async {
        let store = log_store(&st)?;
        let query = p
            .get("query")
            .ok_or_else(|| LokiError::bad("missing query parameter"))?;
        let matchers =
            match logstore::logql::parse(query).map_err(|e| LokiError::bad(e.to_string()))? {
                logstore::logql::ast::Expr::Log(l) => l.matchers,
                logstore::logql::ast::Expr::Metric(_) => {
                    return Err(LokiError::bad(
                        "index stats take a stream selector, not a metric query",
                    ))
                }
            };
        let (start, end) = time_range(&p, Duration::from_secs(3600)).map_err(LokiError::bad)?;
        tokio::task::spawn_blocking(move || {
            let sel = logstore::Selection {
                matchers: &matchers,
                start,
                end,
                contains: &[],
            };
            let blocks = store.select(&sel).map_err(|e| LokiError::internal(e.to_string()))?;
            let streams = store.series(&matchers, start, end).len();
            let entries: u64 = blocks.iter().map(|b| b.entries).sum();
            let bytes: u64 = blocks.iter().map(|b| b.bytes).sum();
            Ok::<_, LokiError>(
                Json(json!({"streams": streams, "chunks": blocks.len(), "entries": entries, "bytes": bytes}))
                    .into_response(),
            )
        })
        .await
        .map_err(|e| LokiError::internal(format!("query task failed: {e}")))?
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}
