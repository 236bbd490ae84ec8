//! `/api/v1/export`: raw samples as JSON lines, in the format
//! VictoriaMetrics's export uses, so backups and migrations can read them:
//! `{"metric":{..},"values":[..],"timestamps":[..]}` per series.

use super::error::ApiError;
use super::metadata::label_map;
use super::params::Params;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use tsdb::{LabelSet, Querier, Series};

/// Finite values as JSON numbers; NaN and infinities as the strings
/// Prometheus uses, since JSON has no spelling for them.
fn value_json(v: f64) -> Value {
    if v.is_nan() {
        Value::String("NaN".into())
    } else if v == f64::INFINITY {
        Value::String("+Inf".into())
    } else if v == f64::NEG_INFINITY {
        Value::String("-Inf".into())
    } else {
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

pub async fn export(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let db = st.db()?;
    let p = Params::parse(q.as_deref(), Some(&body));
    let selectors = p.required_selectors()?;
    let range = p.time_range()?;
    let out = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        // Union of selectors, each series once.
        let mut series: BTreeMap<LabelSet, Series> = BTreeMap::new();
        for sel in &selectors {
            for alt in &sel.0 {
                for s in db.select(alt, range)? {
                    series.entry(s.labels.clone()).or_insert(s);
                }
            }
        }
        let mut out = String::new();
        for (labels, s) in series {
            let (mut values, mut timestamps) = (Vec::new(), Vec::new());
            for sample in s.samples()? {
                values.push(value_json(sample.v));
                timestamps.push(Value::from(sample.t));
            }
            let mut line = Map::new();
            line.insert("metric".into(), label_map(&labels));
            line.insert("values".into(), Value::Array(values));
            line.insert("timestamps".into(), Value::Array(timestamps));
            out.push_str(&Value::Object(line).to_string());
            out.push('\n');
        }
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("export task failed: {e}")))??;
    Ok(([(header::CONTENT_TYPE, "application/stream+json")], out).into_response())
}
