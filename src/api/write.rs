//! Write endpoints: Prometheus remote_write and the text import.

use crate::api::error::{clip, MAX_QUOTED};
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

/// A write's response, sent once: as soon as the write is logged, or when
/// it ends if it never got that far.
struct Reply(Option<tokio::sync::oneshot::Sender<Response>>);

impl Reply {
    fn send_with(&mut self, make: impl FnOnce() -> Response) {
        if let Some(tx) = self.0.take() {
            // The client may have gone; the write stands either way.
            let _ = tx.send(make());
        }
    }
}

fn storage_error(st: &AppState, protocol: &'static str, e: &tsdb::TsdbError) -> Response {
    tracing::error!(error = %e, protocol, "write failed");
    st.metrics.write_request(protocol, "error");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("storage error: {e}\n"),
    )
        .into_response()
}

/// Syncs if configured and turns a logged write's outcome into a response.
fn respond(
    st: &AppState,
    db: &Db,
    protocol: &'static str,
    prefix: Vec<String>,
    outcome: &AppendOutcome,
) -> Response {
    if st.sync_every_write {
        if let Err(e) = db.sync() {
            return storage_error(st, protocol, &e);
        }
    }
    st.metrics
        .samples_ingested(protocol, outcome.appended as u64);
    let total = prefix.len() + outcome.errors.len();
    if total == 0 {
        st.metrics.write_request(protocol, "success");
        return StatusCode::NO_CONTENT.into_response();
    }
    st.metrics.write_request(protocol, "partial");
    let listed: Vec<String> = prefix
        .iter()
        .map(String::as_str)
        .chain(outcome.errors.iter().map(|e| e.message.as_str()))
        .take(MAX_LISTED_ERRORS)
        .map(|m| clip(m, MAX_QUOTED).into_owned())
        .collect();
    let mut msg = format!(
        "{} samples stored, {total} problem(s) refused: {}",
        outcome.appended,
        listed.join("; ")
    );
    if total > MAX_LISTED_ERRORS {
        msg.push_str(&format!("; and {} more", total - MAX_LISTED_ERRORS));
    }
    bad_request(msg)
}

/// How long a write waits for room in the decode budget before its 429.
pub(crate) const DECODE_BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Memory to decode a body of `decompressed` bytes, or the response that
/// refuses it (400 over the per-request limit, 429 while others hold the
/// budget).
fn reserve<'a>(
    st: &'a AppState,
    protocol: &'static str,
    compressed: usize,
    decompressed: usize,
) -> Result<crate::ingest::budget::Reservation<'a>, Box<Response>> {
    use crate::ingest::budget::BudgetError;
    st.decode_budget
        .reserve(compressed, decompressed, DECODE_BUDGET_WAIT)
        .map_err(|e| {
            Box::new(match e {
                BudgetError::TooLarge { .. } => malformed(st, protocol, e.to_string()),
                BudgetError::Busy { .. } => {
                    st.metrics.write_request(protocol, "busy");
                    (StatusCode::TOO_MANY_REQUESTS, e.to_string() + "\n").into_response()
                }
            })
        })
}

/// Runs a write on the blocking pool, holding a write slot until it is
/// fully applied, and answers with the response it sends through its
/// [`Reply`] (which may come before the task ends).
async fn run_write(st: &AppState, f: impl FnOnce(&mut Reply) + Send + 'static) -> Response {
    let failed = |what: &str| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("write task failed: {what}\n"),
        )
            .into_response()
    };
    let Ok(permit) = st.write_slots.clone().acquire_owned().await else {
        return failed("the server is shutting down");
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        // A task that ends (or panics) without answering drops the sender,
        // which the await below turns into a 500.
        f(&mut Reply(Some(tx)));
    });
    rx.await
        .unwrap_or_else(|_| failed("it stopped before answering"))
}

pub async fn remote_write(
    axum::extract::State(st): axum::extract::State<AppState>,
    body: Bytes,
) -> Response {
    let db: Arc<Db> = match st.db() {
        Ok(db) => db,
        Err(e) => return e.into_response(),
    };
    let task_st = st.clone();
    run_write(&st, move |reply| {
        let st = task_st;
        let protocol = "remote_write";
        let len = match snap::raw::decompress_len(&body) {
            Ok(n) => n,
            Err(e) => {
                let msg = remote_write::RemoteWriteError::Snappy(e.to_string()).to_string();
                return reply.send_with(|| malformed(&st, protocol, msg));
            }
        };
        let _memory = match reserve(&st, protocol, body.len(), len) {
            Ok(r) => r,
            Err(refused) => return reply.send_with(|| *refused),
        };
        let buf = match remote_write::decompress(&body) {
            Ok(b) => b,
            Err(e) => return reply.send_with(|| malformed(&st, protocol, e.to_string())),
        };
        let d = match remote_write::decode_uncompressed(&buf) {
            Ok(d) => d,
            Err(e) => return reply.send_with(|| malformed(&st, protocol, e.to_string())),
        };
        for m in &d.metadata {
            st.metric_metadata.record(
                m.metric_family_name,
                metric_metadata::type_name(m.kind),
                m.help,
                m.unit,
            );
        }
        let inputs = remote_write::inputs(&d);
        let result = db.append_inputs_then(&inputs, AppendMode::Live, now_ms(), |o| {
            reply.send_with(|| respond(&st, &db, protocol, Vec::new(), o))
        });
        match result {
            Ok(o) => reply.send_with(|| respond(&st, &db, protocol, Vec::new(), &o)),
            Err(e) => reply.send_with(|| storage_error(&st, protocol, &e)),
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
    let task_st = st.clone();
    run_write(&st, move |reply| {
        let st = task_st;
        let protocol = "import";
        let _memory = match reserve(&st, protocol, 0, body.len()) {
            Ok(r) => r,
            Err(refused) => return reply.send_with(|| *refused),
        };
        let text = match std::str::from_utf8(&body) {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("body is not valid UTF-8 at byte {}", e.valid_up_to());
                return reply.send_with(|| malformed(&st, protocol, msg));
            }
        };
        let parsed = import_text::parse(text, now_ms());
        if !parsed.errors.is_empty() {
            st.metrics
                .malformed_lines(protocol, parsed.errors.len() as u64);
        }
        let prefix: Vec<String> = parsed.errors.iter().map(|e| e.to_string()).collect();
        match db.append(&parsed.series, AppendMode::Backfill, now_ms()) {
            Ok(o) => reply.send_with(|| respond(&st, &db, protocol, prefix, &o)),
            Err(e) => reply.send_with(|| storage_error(&st, protocol, &e)),
        }
    })
    .await
}
