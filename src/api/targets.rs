//! `/api/v1/targets` as Prometheus serves it, from what agents report to
//! `POST /api/vigil/agent/targets` (`collector::report`). Reports live in
//! memory: an agent that stops reporting is forgotten after its TTL.

use super::error::ApiError;
use super::params::Params;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::Json;
use collector::report::TargetsReport;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The latest report of every agent.
#[derive(Default)]
pub struct TargetsRegistry {
    reports: Mutex<HashMap<String, (Instant, TargetsReport)>>,
}

impl TargetsRegistry {
    fn store(&self, report: TargetsReport) {
        let mut r = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        if report.active.is_empty() && report.dropped.is_empty() {
            r.remove(&report.agent);
        } else {
            r.insert(report.agent.clone(), (Instant::now(), report));
        }
    }

    /// Every live report, oldest agent name first.
    fn live(&self) -> Vec<TargetsReport> {
        let mut r = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|_, (at, rep)| {
            at.elapsed() < Duration::from_secs_f64(rep.ttl_seconds.clamp(1.0, 86_400.0))
        });
        let mut out: Vec<TargetsReport> = r.values().map(|(_, rep)| rep.clone()).collect();
        out.sort_by(|a, b| a.agent.cmp(&b.agent));
        out
    }
}

/// An agent's report. The body is JSON; a bad one is a 400 naming what is
/// wrong.
pub async fn report(State(st): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let report: TargetsReport = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadData(format!("invalid targets report: {e}")))?;
    if report.agent.is_empty() {
        return Err(ApiError::BadData(
            "invalid targets report: agent is empty".into(),
        ));
    }
    st.targets.store(report);
    Ok(Json(json!({"status": "success"})))
}

fn labels(m: &std::collections::BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<String, Value>>(),
    )
}

/// Prometheus prints a never-scraped target's time as Go's zero time.
fn scrape_time(ms: i64) -> String {
    if ms <= 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// `GET /api/v1/targets?state=active|dropped|any&scrapePool=JOB`.
pub async fn targets(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(q.as_deref(), Some(&body));
    let state = params.get("state").unwrap_or("any");
    let (active_wanted, dropped_wanted) = match state {
        "" | "any" => (true, true),
        "active" => (true, false),
        "dropped" => (false, true),
        other => {
            return Err(ApiError::BadData(format!(
                "invalid parameter \"state\": {other:?} (want active, dropped or any)"
            )))
        }
    };
    let pool = params.get("scrapePool").filter(|p| !p.is_empty());
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut dropped_counts: HashMap<String, u64> = HashMap::new();
    for rep in st.targets.live() {
        for t in &rep.active {
            if !active_wanted || pool.is_some_and(|p| p != t.job) {
                continue;
            }
            active.push(json!({
                "discoveredLabels": labels(&t.discovered_labels),
                "labels": labels(&t.labels),
                "scrapePool": t.job,
                "scrapeUrl": t.scrape_url,
                "globalUrl": t.scrape_url,
                "lastError": t.last_error,
                "lastScrape": scrape_time(t.last_scrape_ms),
                "lastScrapeDuration": t.last_scrape_duration_seconds,
                "health": t.health,
                "scrapeInterval": t.scrape_interval,
                "scrapeTimeout": t.scrape_timeout,
                // Not in Prometheus's shape: which agent scrapes it.
                "agent": rep.agent,
            }));
        }
        for d in &rep.dropped {
            *dropped_counts.entry(d.job.clone()).or_default() += 1;
            if !dropped_wanted || pool.is_some_and(|p| p != d.job) {
                continue;
            }
            dropped.push(json!({"discoveredLabels": labels(&d.discovered_labels)}));
        }
    }
    let mut data = Map::new();
    if active_wanted {
        data.insert("activeTargets".into(), Value::Array(active));
    }
    if dropped_wanted {
        data.insert("droppedTargets".into(), Value::Array(dropped));
        data.insert("droppedTargetCounts".into(), json!(dropped_counts));
    }
    Ok(Json(json!({"status": "success", "data": data})))
}
