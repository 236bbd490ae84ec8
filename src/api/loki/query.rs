//! `/loki/api/v1/query_range` and `/loki/api/v1/query`: LogQL evaluated
//! over the log store, answered in Loki's shapes (`streams`, `matrix`,
//! `vector`, `scalar`) with a `stats.summary` Grafana reads.

use super::{log_store, now_ns, params, parse_time, time_range, LokiError};
use crate::api::params::{parse_duration, Params};
use crate::api::query_json::{write_point, write_str};
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use logstore::logql::{
    self, Direction, EvalError, Labels, QueryParams, QueryResult, QueryStats, Stop,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Series one metric query may return (Loki's `max_query_series`).
const MAX_SERIES: usize = 500;
/// Most entries one log query may return (Loki's `max_entries_limit_per_query`).
const MAX_LIMIT: usize = 5000;

fn limit(p: &Params) -> Result<usize, LokiError> {
    match p.get("limit") {
        None => Ok(100),
        Some(v) => {
            let n: usize = v.parse().map_err(|_| {
                LokiError::bad(format!("invalid limit {v:?}: want a positive integer"))
            })?;
            if n == 0 {
                return Err(LokiError::bad("limit must be a positive value"));
            }
            if n > MAX_LIMIT {
                return Err(LokiError::bad(format!(
                    "max entries limit per query exceeded, limit > max_entries_limit_per_query ({n} > {MAX_LIMIT})"
                )));
            }
            Ok(n)
        }
    }
}

fn direction(p: &Params) -> Result<Direction, LokiError> {
    match p.get("direction").map(str::to_ascii_lowercase).as_deref() {
        None | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(other) => Err(LokiError::bad(format!(
            "invalid direction {other:?}: want forward or backward"
        ))),
    }
}

/// `step` as a duration (`15s`) or float seconds; by default Loki's:
/// the range over 250 points, at least a second.
fn step(p: &Params, start: i64, end: i64) -> Result<i64, LokiError> {
    match p.get("step") {
        None => Ok(((end - start) / 250 / 1_000_000_000).max(1) * 1_000_000_000),
        Some(v) => {
            let ns = match v.parse::<f64>() {
                Ok(s) if s.is_finite() => (s * 1e9) as i64,
                _ => parse_duration(v)
                    .map_err(|e| LokiError::bad(format!("invalid step {v:?}: {e}")))?
                    .saturating_mul(1_000_000),
            };
            if ns <= 0 {
                return Err(LokiError::bad(
                    "zero or negative query resolution step widths are not accepted. Try a positive integer",
                ));
            }
            Ok(ns)
        }
    }
}

fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (n, v)) in labels.0.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, n);
        out.push(':');
        write_str(out, v);
    }
    out.push('}');
}

fn write_stats(out: &mut String, stats: &QueryStats, took: Duration) {
    let secs = took.as_secs_f64().max(1e-9);
    out.push_str(&format!(
        "{{\"summary\":{{\"bytesProcessedPerSecond\":{},\"linesProcessedPerSecond\":{},\"totalBytesProcessed\":{},\"totalLinesProcessed\":{},\"execTime\":{},\"totalEntriesReturned\":0}},\"querier\":{{\"store\":{{\"totalChunksRef\":{}}}}}}}",
        (stats.bytes_scanned as f64 / secs) as u64,
        (stats.entries_scanned as f64 / secs) as u64,
        stats.bytes_scanned,
        stats.entries_scanned,
        took.as_secs_f64(),
        stats.blocks
    ));
}

fn render(
    result: &QueryResult,
    instant: Option<i64>,
    stats: &QueryStats,
    took: Duration,
) -> String {
    let mut out = String::from("{\"status\":\"success\",\"data\":{\"resultType\":");
    match result {
        QueryResult::Streams(streams) => {
            out.push_str("\"streams\",\"result\":[");
            for (i, s) in streams.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"stream\":");
                write_labels(&mut out, &s.labels);
                out.push_str(",\"values\":[");
                for (j, e) in s.entries.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    out.push_str("[\"");
                    out.push_str(itoa::Buffer::new().format(e.ts));
                    out.push_str("\",");
                    write_str(&mut out, &e.line);
                    out.push(']');
                }
                out.push_str("]}");
            }
        }
        QueryResult::Matrix(series) => match instant {
            Some(_) => {
                out.push_str("\"vector\",\"result\":[");
                let mut first = true;
                for s in series {
                    let Some(&(t, v)) = s.points.last() else {
                        continue;
                    };
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str("{\"metric\":");
                    write_labels(&mut out, &s.labels);
                    out.push_str(",\"value\":");
                    write_point(&mut out, t / 1_000_000, v);
                    out.push('}');
                }
            }
            None => {
                out.push_str("\"matrix\",\"result\":[");
                for (i, s) in series.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"metric\":");
                    write_labels(&mut out, &s.labels);
                    out.push_str(",\"values\":[");
                    for (j, &(t, v)) in s.points.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_point(&mut out, t / 1_000_000, v);
                    }
                    out.push_str("]}");
                }
            }
        },
        QueryResult::Scalar(v) => {
            out.push_str("\"scalar\",\"result\":");
            let mut p = String::new();
            write_point(&mut p, instant.unwrap_or(0) / 1_000_000, *v);
            out.push_str(&p);
            out.push_str(",\"stats\":");
            write_stats(&mut out, stats, took);
            out.push_str("}}");
            return out;
        }
    }
    out.push_str("],\"stats\":");
    write_stats(&mut out, stats, took);
    out.push_str("}}");
    out
}

async fn run(
    st: &AppState,
    query: &str,
    params: QueryParams,
    instant: Option<i64>,
) -> Result<Response, LokiError> {
    let store = log_store(st)?;
    let expr = logql::parse(query).map_err(|e| LokiError::bad(e.to_string()))?;
    if instant.is_some() && matches!(expr, logql::ast::Expr::Log(_)) {
        return Err(LokiError::bad(
            "log queries are not supported as an instant query type, please change your query to a range query type",
        ));
    }
    let started = Instant::now();
    let evaluated = evaluate_in_slot(st, move |stop| {
        let params = QueryParams { stop, ..params };
        logql::evaluate(&store, &expr, &params)
    })
    .await?;
    let (result, stats) = evaluated.map_err(eval_error)?;
    let body = render(&result, instant, &stats, started.elapsed());
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// An evaluation error as Loki answers it.
pub(crate) fn eval_error(e: EvalError) -> LokiError {
    match e {
        EvalError::Store(s) => LokiError::internal(s.to_string()),
        EvalError::Limit(m) | EvalError::Invalid(m) => LokiError::bad(m),
        EvalError::Timeout => LokiError {
            code: StatusCode::SERVICE_UNAVAILABLE,
            msg: "query timed out: the query ran longer than query.timeout".into(),
        },
        // Nobody reads this answer: the client has gone.
        EvalError::Cancelled => LokiError {
            code: StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            msg: "query cancelled: the client went away".into(),
        },
    }
}

/// Sets its flag when dropped: the request future is dropped when the
/// client goes away, and the evaluation on its blocking thread sees it.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs a LogQL evaluation as PromQL queries run: it waits for one of
/// the query slots (`query.max_concurrency`, shared with PromQL) at most
/// `query.timeout`, evaluates on a blocking thread holding its slot until
/// the evaluation really ends, and stops at the deadline or when the
/// client goes away.
pub(crate) async fn evaluate_in_slot<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(Stop) -> T + Send + 'static,
) -> Result<T, LokiError> {
    let timeout = st.query.timeout;
    let deadline = Instant::now() + timeout;
    let slot = tokio::time::timeout(timeout, st.query_slots.clone().acquire_owned())
        .await
        .map_err(|_| LokiError {
            code: StatusCode::SERVICE_UNAVAILABLE,
            msg: "query timed out in query queue".into(),
        })?
        .map_err(|_| LokiError {
            code: StatusCode::SERVICE_UNAVAILABLE,
            msg: "the server is shutting down".into(),
        })?;
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(cancelled.clone());
    let stop = Stop {
        deadline: Some(deadline),
        cancelled: Some(cancelled),
    };
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        f(stop)
    })
    .await
    .map_err(|e| LokiError::internal(format!("query task failed: {e}")))
}

fn required_query(p: &Params) -> Result<String, LokiError> {
    p.get("query")
        .map(str::to_string)
        .ok_or_else(|| LokiError::bad("missing query parameter"))
}

pub async fn query_range(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(q, &body);
    let answer = async {
        let query = required_query(&p)?;
        let (start, end) = time_range(&p, Duration::from_secs(3600)).map_err(LokiError::bad)?;
        let params = QueryParams {
            start,
            end,
            step_ns: step(&p, start, end)?,
            limit: limit(&p)?,
            direction: direction(&p)?,
            max_series: MAX_SERIES,
            stop: Stop::default(),
        };
        run(&st, &query, params, None).await
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn query(State(st): State<AppState>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = params(q, &body);
    let answer = async {
        let query = required_query(&p)?;
        let time = match p.get("time") {
            Some(v) => parse_time("time", v).map_err(LokiError::bad)?,
            None => now_ns(),
        };
        let params = QueryParams {
            start: time,
            end: time,
            step_ns: 1_000_000_000,
            limit: limit(&p)?,
            direction: direction(&p)?,
            max_series: MAX_SERIES,
            stop: Stop::default(),
        };
        run(&st, &query, params, Some(time)).await
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}
