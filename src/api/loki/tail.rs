//! `/loki/api/v1/tail`: a WebSocket that sends a log query's new entries
//! as they arrive, in Loki's tail message shape
//! (`{"streams":[{"stream":{...},"values":[["<ns>","<line>"]]}]}`).
//! Entries since `start` (default: one hour ago, at most `limit`) come
//! first; then the store is read every second for newer ones.

use super::{log_store, now_ns, parse_time, LokiError};
use crate::api::params::Params;
use crate::api::query_json::write_str;
use crate::server::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use logstore::logql::{self, ast::Expr, Direction, QueryParams, QueryResult};
use logstore::LogStore;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const POLL: Duration = Duration::from_secs(1);
const MAX_LIMIT: usize = 5000;

pub async fn tail(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let p = Params::parse(q.as_deref(), None);
    let setup = (|| {
        let store = log_store(&st)?;
        let query = p
            .get("query")
            .ok_or_else(|| LokiError::bad("missing query parameter"))?;
        let expr = logql::parse(query).map_err(|e| LokiError::bad(e.to_string()))?;
        if !matches!(expr, Expr::Log(_)) {
            return Err(LokiError::bad("tail takes a log query, not a metric query"));
        }
        let limit = match p.get("limit") {
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    LokiError::bad(format!("invalid limit {v:?}: want 1 to {MAX_LIMIT}"))
                })?,
            None => 100,
        };
        let start = match p.get("start") {
            Some(v) => parse_time("start", v).map_err(LokiError::bad)?,
            None => now_ns() - 3_600_000_000_000,
        };
        // A tail holds its slot for as long as its socket is open.
        let slot = st.tail_slots.clone().try_acquire_owned().map_err(|_| {
            let max = st.tail_limit;
            LokiError {
                code: StatusCode::TOO_MANY_REQUESTS,
                msg: format!(
                    "max concurrent tail requests limit exceeded, count > limit ({} > {max}) (logs.max_concurrent_tail_requests)",
                    max + 1
                ),
            }
        })?;
        Ok((store, expr, limit, start, slot))
    })();
    let timeout = st.query.timeout;
    match setup {
        Ok((store, expr, limit, start, slot)) => ws.on_upgrade(move |socket| async move {
            follow(socket, store, expr, limit, start, timeout).await;
            drop(slot);
        }),
        Err(e) => e.into_response(),
    }
}

/// Entries of `[from, now]`, oldest first; `Err` ends the tail.
async fn read(
    store: &Arc<LogStore>,
    expr: &Expr,
    from: i64,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<(String, logql::Stream)>, String> {
    let store = store.clone();
    let expr = expr.clone();
    let params = QueryParams {
        start: from,
        end: now_ns().saturating_add(1),
        step_ns: 1_000_000_000,
        limit,
        direction: Direction::Forward,
        max_series: 500,
        stop: logql::Stop {
            deadline: Some(std::time::Instant::now() + timeout),
            cancelled: None,
        },
    };
    let r = tokio::task::spawn_blocking(move || logql::evaluate(&store, &expr, &params))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let QueryResult::Streams(streams) = r.0 else {
        return Ok(Vec::new());
    };
    Ok(streams
        .into_iter()
        .map(|s| {
            let mut key = String::new();
            for (n, v) in &s.labels.0 {
                key.push_str(n);
                key.push('=');
                key.push_str(v);
                key.push('\u{1}');
            }
            (key, s)
        })
        .collect())
}

async fn follow(
    mut socket: WebSocket,
    store: Arc<LogStore>,
    expr: Expr,
    limit: usize,
    start: i64,
    timeout: Duration,
) {
    let mut from = start;
    // Entries already sent at time `from`, by stream key and line.
    let mut sent_at_from: HashSet<(String, String)> = HashSet::new();
    let mut first = true;
    loop {
        let streams = match read(
            &store,
            &expr,
            from,
            if first { limit } else { MAX_LIMIT },
            timeout,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                let _ = socket.send(Message::Close(None)).await;
                tracing::warn!(error = %e, "tail query failed");
                return;
            }
        };
        first = false;
        let mut msg = String::from("{\"streams\":[");
        let mut any = false;
        let mut newest = from;
        let mut at_newest: Vec<(String, String)> = Vec::new();
        for (key, s) in &streams {
            let fresh: Vec<_> = s
                .entries
                .iter()
                .filter(|e| {
                    !(e.ts == from && sent_at_from.contains(&(key.clone(), e.line.clone())))
                })
                .collect();
            if fresh.is_empty() {
                continue;
            }
            if any {
                msg.push(',');
            }
            any = true;
            msg.push_str("{\"stream\":{");
            for (i, (n, v)) in s.labels.0.iter().enumerate() {
                if i > 0 {
                    msg.push(',');
                }
                write_str(&mut msg, n);
                msg.push(':');
                write_str(&mut msg, v);
            }
            msg.push_str("},\"values\":[");
            for (i, e) in fresh.iter().enumerate() {
                if i > 0 {
                    msg.push(',');
                }
                msg.push_str(&format!("[\"{}\",", e.ts));
                write_str(&mut msg, &e.line);
                msg.push(']');
                if e.ts > newest {
                    newest = e.ts;
                    at_newest.clear();
                }
                if e.ts == newest {
                    at_newest.push((key.clone(), e.line.clone()));
                }
            }
            msg.push_str("]}");
        }
        msg.push_str("]}");
        if any {
            if newest > from {
                sent_at_from.clear();
                from = newest;
            }
            sent_at_from.extend(at_newest);
            if socket.send(Message::Text(msg.into())).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
