//! Prometheus's status and metadata endpoints: `/api/v1/status/*`,
//! `/api/v1/metadata`, `/api/v1/query_exemplars`.

use super::error::ApiError;
use super::params::Params;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use tsdb::{Matcher, Querier, TimeRange, METRIC_NAME};

fn success(data: Value) -> Json<Value> {
    Json(json!({"status": "success", "data": data}))
}

pub async fn buildinfo() -> Json<Value> {
    success(json!({
        "version": crate::build_info::VERSION,
        "revision": crate::build_info::GIT_COMMIT,
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

pub async fn runtimeinfo(State(st): State<AppState>) -> Json<Value> {
    let retention = st
        .flags
        .iter()
        .find(|(k, _)| k == "storage.tsdb.retention.time")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let (reload_ok, last_config) = st.reload.get();
    success(json!({
        "startTime": st.started_at.to_rfc3339(),
        "CWD": cwd,
        "reloadConfigSuccess": reload_ok,
        "lastConfigTime": last_config.to_rfc3339(),
        "corruptionCount": 0,
        "goroutineCount": 0,
        "GOMAXPROCS": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "GOMEMLIMIT": 0,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": retention,
    }))
}

pub async fn flags(State(st): State<AppState>) -> Json<Value> {
    let m: Map<String, Value> = st
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    success(Value::Object(m))
}

/// `/api/v1/metadata`: what remote_write senders reported per metric, with
/// Prometheus's `metric`, `limit` (negative or absent: all) and
/// `limit_per_metric` (0, negative or absent: all).
pub async fn metadata(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(q.as_deref(), None);
    let int = |key: &str| -> Result<Option<i64>, ApiError> {
        match params.get(key) {
            None | Some("") => Ok(None),
            Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
                ApiError::BadData(format!(
                    "invalid parameter {key:?}: cannot parse {s:?} to an integer"
                ))
            }),
        }
    };
    let limit = int("limit")?.and_then(|n| usize::try_from(n).ok());
    let per_metric = int("limit_per_metric")?
        .filter(|n| *n > 0)
        .and_then(|n| usize::try_from(n).ok());
    let metric = params.get("metric").filter(|m| !m.is_empty());
    let data = st.metric_metadata.query(metric, limit, per_metric);
    let data = serde_json::to_value(data).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(success(data))
}

pub async fn query_exemplars() -> Json<Value> {
    success(json!([]))
}

/// The `n` largest counts, as `{name, value}` objects.
fn top(counts: HashMap<String, u64>, n: usize) -> Value {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    Value::Array(
        v.into_iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect(),
    )
}

/// `/api/v1/status/tsdb`: cardinality of the head, as Prometheus reports it.
pub async fn tsdb_status(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(q.as_deref(), Some(&body));
    let limit = match params.limit()? {
        0 => 10,
        n => n,
    };
    let db = st.db()?;
    let data = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        let stats = db.stats();
        let chunks = db.head_chunk_stats();
        let range = match (stats.min_time, stats.max_time) {
            (Some(a), Some(b)) => TimeRange::new(a, b),
            _ => TimeRange::new(0, -1),
        };
        let all = Matcher::new(tsdb::MatchOp::RegexMatch, METRIC_NAME, ".+")?;
        let series = db.series(&[all], range)?;
        let mut by_metric: HashMap<String, u64> = HashMap::new();
        let mut values_by_name: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
        let mut bytes_by_name: HashMap<String, u64> = HashMap::new();
        let mut by_pair: HashMap<String, u64> = HashMap::new();
        for s in &series {
            if let Some(n) = s.metric_name() {
                *by_metric.entry(n.to_string()).or_default() += 1;
            }
            for l in s.iter() {
                let fresh = values_by_name
                    .entry(l.name.to_string())
                    .or_default()
                    .insert(l.value.to_string());
                if fresh {
                    *bytes_by_name.entry(l.name.to_string()).or_default() += l.value.len() as u64;
                }
                *by_pair
                    .entry(format!("{}={}", l.name, l.value))
                    .or_default() += 1;
            }
        }
        let label_pairs: usize = values_by_name.values().map(|v| v.len()).sum();
        let value_counts: HashMap<String, u64> = values_by_name
            .into_iter()
            .map(|(k, v)| (k, v.len() as u64))
            .collect();
        Ok(json!({
            "headStats": {
                "numSeries": stats.head_series,
                "numLabelPairs": label_pairs,
                "chunkCount": chunks.chunks,
                "minTime": stats.min_time.unwrap_or(0),
                "maxTime": stats.max_time.unwrap_or(0),
            },
            "seriesCountByMetricName": top(by_metric, limit),
            "labelValueCountByLabelName": top(value_counts, limit),
            "memoryInBytesByLabelName": top(bytes_by_name, limit),
            "seriesCountByLabelValuePair": top(by_pair, limit),
        }))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("status task failed: {e}")))??;
    Ok(success(data))
}
