//! `POST /loki/api/v1/push`: snappy protobuf (Promtail, Vigil's agent) or
//! JSON, optionally gzip-encoded, into the log store. 204 when all was
//! stored; 400 (429 for the stream limit) naming what was refused, the
//! rest stored, as Loki does.

use super::{log_store, text_error};
use crate::api::error::clip;
use crate::ingest::budget;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use logstore::{Entry, PushStream};
use std::io::Read;
use tsdb::{Label, LabelSet};
use vigil_wire::loki_push::{self, PushedStream};

const PROTOCOL: &str = "loki_push";

/// Inflates a gzip body into at most `max` bytes.
fn gunzip(body: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(body).take(max as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| format!("body is not valid gzip: {e}"))?;
    if out.len() > max {
        return Err(format!(
            "gunzipped body is larger than its gzip trailer says ({max} bytes)"
        ));
    }
    Ok(out)
}

/// How the body is encoded, from its headers.
struct Encoding {
    gzip: bool,
    json: bool,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, String> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let gzip = match header(header::CONTENT_ENCODING).trim() {
        "" | "identity" => false,
        "gzip" | "x-gzip" => true,
        other => {
            return Err(format!(
                "unsupported Content-Encoding {:?} (gzip or none)",
                clip(other, 64)
            ))
        }
    };
    let json = header(header::CONTENT_TYPE).starts_with("application/json");
    Ok(Encoding { gzip, json })
}

/// The size the body decodes from: gzip's trailer, snappy's header, or the
/// body itself (JSON).
fn decoded_size(enc: &Encoding, body: &[u8]) -> Result<usize, String> {
    if enc.gzip {
        return budget::gzip_claimed_size(body)
            .ok_or_else(|| "body is not valid gzip: too short".to_string());
    }
    if enc.json {
        return Ok(body.len());
    }
    snap::raw::decompress_len(body)
        .map_err(|e| loki_push::PushError::Snappy(e.to_string()).to_string())
}

fn decode(enc: &Encoding, body: &[u8], size: usize) -> Result<Vec<PushedStream>, String> {
    let unzipped;
    let body = if enc.gzip {
        unzipped = gunzip(body, size)?;
        &unzipped[..]
    } else {
        body
    };
    let decoded = if enc.json {
        loki_push::decode_json(body)
    } else {
        loki_push::decode_protobuf(body)
    };
    decoded.map_err(|e| e.to_string())
}

fn to_store(streams: Vec<PushedStream>) -> (Vec<PushStream>, u64) {
    let mut total = 0;
    let out = streams
        .into_iter()
        .map(|s| {
            total += s.entries.len() as u64;
            PushStream {
                labels: LabelSet::from_labels(
                    s.labels
                        .into_iter()
                        .map(|(n, v)| Label::new(n, v))
                        .collect(),
                ),
                entries: s
                    .entries
                    .into_iter()
                    .map(|(ts, line)| Entry { ts, line })
                    .collect(),
            }
        })
        .collect();
    (out, total)
}

/// Why a push was not stored at all.
enum Refused {
    Malformed(String),
    Busy(String),
    Backlog(String),
    Storage(String),
}

pub async fn push(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let store = match log_store(&st) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    // Decompressing, decoding and storing run on a blocking thread, under
    // the shared decode budget held until the entries are stored.
    let budget = st.decode_budget.clone();
    let work = move || -> Result<(logstore::PushOutcome, u64), Refused> {
        let enc = encoding(&headers).map_err(Refused::Malformed)?;
        let size = decoded_size(&enc, &body).map_err(Refused::Malformed)?;
        let _memory = budget
            .reserve(body.len(), size, crate::api::write::DECODE_BUDGET_WAIT)
            .map_err(|e| match e {
                budget::BudgetError::TooLarge { .. } => Refused::Malformed(e.to_string()),
                budget::BudgetError::Busy { .. } => Refused::Busy(e.to_string()),
            })?;
        let streams = decode(&enc, &body, size).map_err(Refused::Malformed)?;
        drop(body);
        let (streams, total) = to_store(streams);
        match store.push(streams) {
            Ok(o) => Ok((o, total)),
            Err(e @ logstore::LogStoreError::Backlog) => Err(Refused::Backlog(e.to_string())),
            Err(e) => Err(Refused::Storage(e.to_string())),
        }
    };
    let (outcome, total) = match tokio::task::spawn_blocking(work).await {
        Ok(Ok(done)) => done,
        Ok(Err(Refused::Malformed(msg))) => {
            st.metrics.write_request(PROTOCOL, "bad_request");
            st.metrics.malformed_request(PROTOCOL);
            return text_error(StatusCode::BAD_REQUEST, msg);
        }
        Ok(Err(Refused::Busy(msg))) => {
            st.metrics.write_request(PROTOCOL, "busy");
            return text_error(StatusCode::TOO_MANY_REQUESTS, msg);
        }
        Ok(Err(Refused::Backlog(msg))) => {
            st.metrics.write_request(PROTOCOL, "backlog");
            return text_error(StatusCode::TOO_MANY_REQUESTS, msg);
        }
        Ok(Err(Refused::Storage(msg))) => {
            tracing::error!(error = %msg, "log push failed");
            st.metrics.write_request(PROTOCOL, "error");
            return text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storage error: {msg}"),
            );
        }
        Err(e) => {
            st.metrics.write_request(PROTOCOL, "error");
            return text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("push task failed: {e}"),
            );
        }
    };
    st.metrics
        .samples_ingested(PROTOCOL, outcome.accepted_entries);
    match outcome.error_message(total) {
        None => {
            st.metrics.write_request(PROTOCOL, "success");
            StatusCode::NO_CONTENT.into_response()
        }
        Some(msg) => {
            st.metrics.write_request(PROTOCOL, "partial");
            let code = if outcome.rejections.iter().all(|r| r.is_rate_limit()) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::BAD_REQUEST
            };
            text_error(code, clip(&msg, 4096))
        }
    }
}
