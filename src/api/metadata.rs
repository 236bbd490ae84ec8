//! `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/<name>/values`.

use super::error::ApiError;
use super::params::Params;
use crate::selector::SelectorSet;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use tsdb::labels::is_valid_label_name;
use tsdb::{LabelSet, Querier, TimeRange};

fn success(data: Value, truncated: bool) -> Json<Value> {
    let mut body = json!({"status": "success", "data": data});
    if truncated {
        body["warnings"] = json!(["results truncated due to limit"]);
    }
    Json(body)
}

/// Applies `limit` (0 = none); says whether anything was cut.
fn apply_limit<T>(v: &mut Vec<T>, limit: usize) -> bool {
    if limit > 0 && v.len() > limit {
        v.truncate(limit);
        true
    } else {
        false
    }
}

/// Runs a store read off the async executor.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("query task failed: {e}")))?
}

/// Union over selectors (and their `or` alternatives) of a per-matcher-list answer.
fn union_over<T: Ord>(
    selectors: &[SelectorSet],
    mut f: impl FnMut(&[tsdb::Matcher]) -> Result<Vec<T>, tsdb::TsdbError>,
) -> Result<Vec<T>, ApiError> {
    let mut out = BTreeSet::new();
    for sel in selectors {
        for alt in &sel.0 {
            out.extend(f(alt)?);
        }
    }
    Ok(out.into_iter().collect())
}

/// A label set as the JSON object Prometheus returns.
pub(super) fn label_map(ls: &LabelSet) -> Value {
    let m: Map<String, Value> = ls
        .iter()
        .map(|l| (l.name.to_string(), Value::String(l.value.to_string())))
        .collect();
    Value::Object(m)
}

pub async fn series(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let db = st.db()?;
    let p = Params::parse(q.as_deref(), Some(&body));
    let selectors = p.required_selectors()?;
    let range = p.time_range()?;
    let limit = p.limit()?;
    let mut series = blocking(move || union_over(&selectors, |m| db.series(m, range))).await?;
    let truncated = apply_limit(&mut series, limit);
    let data = series.iter().map(label_map).collect();
    Ok(success(Value::Array(data), truncated))
}

pub async fn label_names(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let db = st.db()?;
    let p = Params::parse(q.as_deref(), Some(&body));
    let selectors = p.selectors()?;
    let range = p.time_range()?;
    let limit = p.limit()?;
    let mut names = blocking(move || {
        if selectors.is_empty() {
            Ok(db.label_names(&[], range)?)
        } else {
            union_over(&selectors, |m| db.label_names(m, range))
        }
    })
    .await?;
    let truncated = apply_limit(&mut names, limit);
    Ok(success(json!(names), truncated))
}

pub async fn label_values(
    State(st): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let db = st.db()?;
    if !is_valid_label_name(&name) {
        return Err(ApiError::BadData(format!("invalid label name: {name:?}")));
    }
    let p = Params::parse(q.as_deref(), None);
    let selectors = p.selectors()?;
    let range: TimeRange = p.time_range()?;
    let limit = p.limit()?;
    let mut values = blocking(move || {
        if selectors.is_empty() {
            Ok(db.label_values(&name, &[], range)?)
        } else {
            union_over(&selectors, |m| db.label_values(&name, m, range))
        }
    })
    .await?;
    let truncated = apply_limit(&mut values, limit);
    Ok(success(json!(values), truncated))
}
