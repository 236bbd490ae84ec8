//! `POST /loki/api/v1/push`: snappy protobuf (Promtail, Vigil's agent) or
//! JSON, optionally gzip-encoded, into the log store. 204 when all was
//! stored; 400 (429 for the stream limit) naming what was refused, the
//! rest stored, as Loki does.

use super::{log_store, text_error};
use crate::ingest::loki_push::{self, PushedStream, MAX_DECOMPRESSED_BYTES};
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use logstore::{Entry, PushStream};
use std::io::Read;
use tsdb::{Label, LabelSet};

const PROTOCOL: &str = "loki_push";

fn gunzip(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(body).take(MAX_DECOMPRESSED_BYTES as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| format!("body is not valid gzip: {e}"))?;
    if out.len() > MAX_DECOMPRESSED_BYTES {
        return Err(format!(
            "gunzipped body is over the limit of {MAX_DECOMPRESSED_BYTES} bytes"
        ));
    }
    Ok(out)
}

fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Vec<PushedStream>, String> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let encoding = header(header::CONTENT_ENCODING);
    let unzipped;
    let body = match encoding.trim() {
        "" | "identity" => body,
        "gzip" | "x-gzip" => {
            unzipped = gunzip(body)?;
            &unzipped
        }
        other => {
            return Err(format!(
                "unsupported Content-Encoding {other:?} (gzip or none)"
            ))
        }
    };
    let json = header(header::CONTENT_TYPE).starts_with("application/json");
    let decoded = if json {
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

pub async fn push(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let store = match log_store(&st) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let streams = match decode(&headers, &body) {
        Ok(s) => s,
        Err(msg) => {
            st.metrics.write_request(PROTOCOL, "bad_request");
            st.metrics.malformed_request(PROTOCOL);
            return text_error(StatusCode::BAD_REQUEST, msg);
        }
    };
    let (streams, total) = to_store(streams);
    let stored = tokio::task::spawn_blocking(move || store.push(streams)).await;
    let outcome = match stored {
        Ok(Ok(o)) => o,
        Ok(Err(e @ logstore::LogStoreError::Backlog)) => {
            st.metrics.write_request(PROTOCOL, "backlog");
            return text_error(StatusCode::TOO_MANY_REQUESTS, e.to_string());
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "log push failed");
            st.metrics.write_request(PROTOCOL, "error");
            return text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storage error: {e}"),
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
            text_error(code, msg)
        }
    }
}
