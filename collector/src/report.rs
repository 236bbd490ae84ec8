//! Agents tell the server what they scrape: every `report_interval` (and
//! once, empty, when stopping) the agent POSTs its targets' health to the
//! server's `/api/vigil/agent/targets`, which merges every agent's report
//! into Prometheus's `/api/v1/targets`.

use crate::pipeline::StopSignal;
use crate::scrape_config::VigilServerConfig;
use crate::target_status::{dropped_list, DroppedMap, DroppedTarget, StatusMap, TargetStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The report's wire format (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetsReport {
    /// Which agent (by default its host's name); a newer report from the
    /// same agent replaces the older.
    pub agent: String,
    /// Seconds until the server may forget this report.
    pub ttl_seconds: f64,
    pub active: Vec<ActiveTarget>,
    pub dropped: Vec<DroppedEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActiveTarget {
    pub job: String,
    pub scrape_url: String,
    pub labels: BTreeMap<String, String>,
    pub discovered_labels: BTreeMap<String, String>,
    /// `up`, `down` or `unknown`.
    pub health: String,
    pub last_error: String,
    /// Unix milliseconds of the last scrape's start; 0 before the first.
    pub last_scrape_ms: i64,
    pub last_scrape_duration_seconds: f64,
    /// As Prometheus prints durations (`15s`).
    pub scrape_interval: String,
    pub scrape_timeout: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DroppedEntry {
    pub job: String,
    pub discovered_labels: BTreeMap<String, String>,
}

fn map(l: &crate::labels::Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

impl TargetsReport {
    pub fn new(
        agent: &str,
        ttl_seconds: f64,
        active: &[TargetStatus],
        dropped: &[DroppedTarget],
    ) -> Self {
        TargetsReport {
            agent: agent.to_string(),
            ttl_seconds,
            active: active
                .iter()
                .map(|t| ActiveTarget {
                    job: t.job.clone(),
                    scrape_url: t.scrape_url.clone(),
                    labels: map(&t.labels),
                    discovered_labels: map(&t.discovered),
                    health: t.health.as_str().to_string(),
                    last_error: t.last_error.clone(),
                    last_scrape_ms: t.last_scrape_ms,
                    last_scrape_duration_seconds: t.last_duration.as_secs_f64(),
                    scrape_interval: crate::units::format_duration(t.interval),
                    scrape_timeout: crate::units::format_duration(t.timeout),
                })
                .collect(),
            dropped: dropped
                .iter()
                .map(|d| DroppedEntry {
                    job: d.job.clone(),
                    discovered_labels: map(&d.discovered),
                })
                .collect(),
        }
    }

    /// POSTs the report to `server` (a Vigil base URL).
    pub fn send(&self, agent: &ureq::Agent, server: &str) -> Result<(), String> {
        let body = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        let url = format!("{}/api/vigil/agent/targets", server.trim_end_matches('/'));
        agent
            .post(&url)
            .set("Content-Type", "application/json")
            .send_bytes(&body)
            .map(|_| ())
            .map_err(|e| format!("reporting targets to {url}: {e}"))
    }
}

/// Reports the targets to the Vigil server every interval, and an empty
/// report when the agent stops (its targets are gone).
pub fn start_reporter(
    cfg: &VigilServerConfig,
    stop: Arc<StopSignal>,
    status: StatusMap,
    dropped: DroppedMap,
) -> std::io::Result<JoinHandle<()>> {
    let name = cfg
        .agent_name
        .clone()
        .or_else(crate::node::hostname)
        .unwrap_or_else(|| "agent".into());
    let url = cfg.url.clone();
    let interval = cfg.report_interval;
    let http = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    // Three missed reports and the server forgets this agent.
    let ttl = interval.as_secs_f64() * 3.0;
    std::thread::Builder::new()
        .name("report-targets".into())
        .spawn(move || {
            let mut next = Instant::now();
            loop {
                let stopped = stop.wait_until(next);
                let active: Vec<TargetStatus> = if stopped {
                    Vec::new()
                } else {
                    status
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .values()
                        .cloned()
                        .collect()
                };
                let dropped = if stopped {
                    Vec::new()
                } else {
                    dropped_list(&dropped)
                };
                let report = TargetsReport::new(&name, ttl, &active, &dropped);
                if let Err(e) = report.send(&http, &url) {
                    tracing::debug!("{e}");
                }
                if stopped {
                    return;
                }
                next += interval;
            }
        })
}
