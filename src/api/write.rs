//! Write endpoints: Prometheus remote_write and the text import.

use crate::ingest::{import_text, remote_write};
use crate::metric_metadata;
use crate::server::AppState;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tsdb::{AppendMode, AppendOutcome, Db};

/// How many individual refusals one error response lists.
const MAX_LISTED_ERRORS: usize = 10;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A write refused whole because its body could not be decoded.
fn malformed(st: &AppState, protocol: &'static str, msg: String) -> Response {
    st.metrics.write_request(protocol, "bad_request");
    st.metrics.malformed_request(protocol);
    bad_request(msg)
}

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, msg + "\n").into_response()
}

/// Appends, syncs if configured, and turns the outcome into a response.
fn store(
    st: &AppState,
    db: &Db,
    protocol: &'static str,
    prefix: Vec<String>,
    append: impl FnOnce(&Db) -> Result<AppendOutcome, tsdb::TsdbError>,
) -> Response {
    let outcome: AppendOutcome = match append(db) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, protocol, "write failed");
            st.metrics.write_request(protocol, "error");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storage error: {e}\n"),
            )
                .into_response();
        }
    };
    if st.sync_every_write {
        if let Err(e) = db.sync() {
            st.metrics.write_request(protocol, "error");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storage error: {e}\n"),
            )
                .into_response();
        }
    }
    st.metrics
        .samples_ingested(protocol, outcome.appended as u64);
    let mut problems = prefix;
    problems.extend(outcome.errors.iter().map(|e| e.message.clone()));
    if problems.is_empty() {
        st.metrics.write_request(protocol, "success");
        return StatusCode::NO_CONTENT.into_response();
    }
    st.metrics.write_request(protocol, "partial");
    let total = problems.len();
    let mut msg = format!(
        "{} samples stored, {total} problem(s) refused: ",
        outcome.appended
    );
    msg.push_str(
        &problems
            .iter()
            .take(MAX_LISTED_ERRORS)
            .cloned()
            .collect::<Vec<_>>()
            .join("; "),
    );
    if total > MAX_LISTED_ERRORS {
        msg.push_str(&format!("; and {} more", total - MAX_LISTED_ERRORS));
    }
    bad_request(msg)
}

async fn run_blocking(f: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("write task failed: {e}\n"),
        )
            .into_response()
    })
}

pub async fn remote_write(
    axum::extract::State(st): axum::extract::State<AppState>,
    body: Bytes,
) -> Response {
    let db: Arc<Db> = match st.db() {
        Ok(db) => db,
        Err(e) => return e.into_response(),
    };
    run_blocking(move || {
        let decoded = remote_write::decompress(&body).and_then(|buf| {
            let d = remote_write::decode_uncompressed(&buf)?;
            for m in &d.metadata {
                st.metric_metadata.record(
                    m.metric_family_name,
                    metric_metadata::type_name(m.kind),
                    m.help,
                    m.unit,
                );
            }
            let inputs = d.inputs();
            Ok(store(&st, &db, "remote_write", Vec::new(), |db| {
                db.append_inputs(&inputs, AppendMode::Live, now_ms())
            }))
        });
        match decoded {
            Ok(resp) => resp,
            Err(e) => malformed(&st, "remote_write", e.to_string()),
        }
    })
    .await
}

pub async fn import_prometheus(
    axum::extract::State(st): axum::extract::State<AppState>,
    body: Bytes,
) -> Response {
    let db: Arc<Db> = match st.db() {
        Ok(db) => db,
        Err(e) => return e.into_response(),
    };
    run_blocking(move || {
        let text = match std::str::from_utf8(&body) {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("body is not valid UTF-8 at byte {}", e.valid_up_to());
                return malformed(&st, "import", msg);
            }
        };
        let parsed = import_text::parse(text, now_ms());
        if !parsed.errors.is_empty() {
            st.metrics
                .malformed_lines("import", parsed.errors.len() as u64);
        }
        let prefix = parsed.errors.iter().map(|e| e.to_string()).collect();
        store(&st, &db, "import", prefix, |db| {
            db.append(&parsed.series, AppendMode::Backfill, now_ms())
        })
    })
    .await
}
