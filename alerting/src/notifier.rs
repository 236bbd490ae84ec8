//! Sending alerts to Alertmanagers through their API v2
//! (`POST /api/v2/alerts`), as Prometheus's notifier does: external labels
//! added and `alert_relabel_configs` applied as alerts are queued, a bounded
//! queue (the oldest alerts dropped and counted when it overflows), batches
//! of 64 to every Alertmanager of every set (each set with its own
//! discovery, credentials and relabeling), failures counted and logged and
//! the batch dropped (the next resend carries the alerts again).
//!
//! How a set finds its Alertmanagers and authenticates is the caller's
//! ([`AlertmanagerSet`]): this module knows nothing of service discovery,
//! TLS files or relabel rules.

use crate::clock::lock;
use crate::group::{Alert, AlertState};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

const QUEUE_CAPACITY: usize = 10_000;
const MAX_BATCH: usize = 64;

/// One alert as Alertmanager's API v2 takes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutgoingAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub generator_url: String,
}

impl OutgoingAlert {
    /// What Prometheus sends for `a` of the rule with `expr`: starts when it
    /// fired, ends when resolved or (still firing) at `valid_until`.
    pub fn from_alert(a: &Alert, expr: &str, external_url: &str, valid_until: i64) -> Self {
        OutgoingAlert {
            labels: a
                .labels
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect(),
            annotations: a.annotations.clone(),
            starts_at: a.fired_at.unwrap_or(a.active_at),
            ends_at: match (a.state, a.resolved_at) {
                (AlertState::Inactive, Some(t)) => t,
                _ => valid_until,
            },
            generator_url: format!(
                "{}/graph?g0.expr={}&g0.tab=1",
                external_url.trim_end_matches('/'),
                query_escape(expr)
            ),
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
            "generatorURL": self.generator_url,
        })
    }
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Milliseconds since the epoch as RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = vigil_config::civil::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Rewrites an alert's labels in place (`alert_relabel_configs`); false
/// drops the alert.
pub type AlertRelabel = Arc<dyn Fn(&mut BTreeMap<String, String>) -> bool + Send + Sync>;

/// The Alertmanagers one set's discovery found, as `/api/v1/alertmanagers`
/// shows them: each an `/api/v2/alerts` URL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovered {
    pub active: Vec<String>,
    /// Found but dropped by the set's `relabel_configs`.
    pub dropped: Vec<String>,
}

/// One `alerting.alertmanagers` entry: where its Alertmanagers are now,
/// how to reach and authenticate with them, and what it sends them.
pub trait AlertmanagerSet: Send + Sync {
    /// The set's Alertmanagers now (discovery may have changed them).
    fn discover(&self) -> Discovered;
    /// The HTTP client: TLS and timeout already set.
    fn agent(&self) -> &ureq::Agent;
    /// The `Authorization` header, read per request so rotated secrets apply.
    fn authorization(&self) -> Result<Option<String>, String>;
    /// The set's own `alert_relabel_configs`; false drops the alert.
    fn relabel(&self, labels: &mut BTreeMap<String, String>) -> bool;
}

/// A set of fixed Alertmanager URLs without credentials or relabeling.
pub struct StaticAlertmanagers {
    pub urls: Vec<String>,
    pub agent: ureq::Agent,
}

impl AlertmanagerSet for StaticAlertmanagers {
    fn discover(&self) -> Discovered {
        Discovered {
            active: self.urls.clone(),
            dropped: Vec::new(),
        }
    }
    fn agent(&self) -> &ureq::Agent {
        &self.agent
    }
    fn authorization(&self) -> Result<Option<String>, String> {
        Ok(None)
    }
    fn relabel(&self, _: &mut BTreeMap<String, String>) -> bool {
        true
    }
}

/// Where alerts go and how they are labeled on the way.
pub struct NotifierOptions {
    pub sets: Vec<Box<dyn AlertmanagerSet>>,
    pub external_labels: BTreeMap<String, String>,
    /// `alerting.alert_relabel_configs`, after the external labels.
    pub alert_relabel: Option<AlertRelabel>,
}

#[derive(Debug, Default)]
pub struct NotifierCounters {
    pub sent: AtomicU64,
    pub errors: AtomicU64,
    pub dropped: AtomicU64,
    pub queue_length: AtomicU64,
}

struct Shared {
    queue: Mutex<(VecDeque<OutgoingAlert>, bool)>,
    wake: Condvar,
    counters: NotifierCounters,
    opts: NotifierOptions,
}

pub struct Notifier {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Notifier {
    pub fn start(opts: NotifierOptions) -> std::io::Result<Notifier> {
        let shared = Arc::new(Shared {
            queue: Mutex::new((VecDeque::new(), false)),
            wake: Condvar::new(),
            counters: NotifierCounters::default(),
            opts,
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("notifier".into())
            .spawn(move || run(&s))?;
        Ok(Notifier {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn counters(&self) -> &NotifierCounters {
        &self.shared.counters
    }

    /// Every set's Alertmanagers now, for `/api/v1/alertmanagers`.
    pub fn alertmanagers(&self) -> Discovered {
        let mut all = Discovered::default();
        for set in &self.shared.opts.sets {
            let d = set.discover();
            all.active.extend(d.active);
            all.dropped.extend(d.dropped);
        }
        all
    }

    /// Queues alerts with the external labels added and the global
    /// relabeling applied (as Prometheus does on send); when the queue is
    /// full the oldest are dropped.
    pub fn send(&self, alerts: Vec<OutgoingAlert>) {
        let opts = &self.shared.opts;
        let alerts: Vec<OutgoingAlert> = alerts
            .into_iter()
            .filter_map(|mut a| {
                for (k, v) in &opts.external_labels {
                    a.labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                match &opts.alert_relabel {
                    Some(r) if !r(&mut a.labels) => None,
                    _ => Some(a),
                }
            })
            .collect();
        if alerts.is_empty() {
            return;
        }
        let mut q = lock(&self.shared.queue);
        q.0.extend(alerts);
        let over = q.0.len().saturating_sub(QUEUE_CAPACITY);
        if over > 0 {
            q.0.drain(..over);
            self.shared
                .counters
                .dropped
                .fetch_add(over as u64, Ordering::Relaxed);
            tracing::warn!(dropped = over, "alert queue full; oldest alerts dropped");
        }
        self.shared
            .counters
            .queue_length
            .store(q.0.len() as u64, Ordering::Relaxed);
        self.shared.wake.notify_all();
    }

    /// Sends what is queued, then stops.
    pub fn stop(&self) {
        lock(&self.shared.queue).1 = true;
        self.shared.wake.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared) {
    loop {
        let batch: Vec<OutgoingAlert> = {
            let mut q = lock(&shared.queue);
            while q.0.is_empty() && !q.1 {
                q = shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
            if q.0.is_empty() {
                return;
            }
            let n = q.0.len().min(MAX_BATCH);
            let b = q.0.drain(..n).collect();
            shared
                .counters
                .queue_length
                .store(q.0.len() as u64, Ordering::Relaxed);
            b
        };
        for set in &shared.opts.sets {
            send_to_set(shared, set.as_ref(), &batch);
        }
    }
}

/// One batch to every Alertmanager of `set`, after the set's relabeling.
fn send_to_set(shared: &Shared, set: &dyn AlertmanagerSet, batch: &[OutgoingAlert]) {
    let urls = set.discover().active;
    if urls.is_empty() {
        return;
    }
    let body: Vec<serde_json::Value> = batch
        .iter()
        .filter_map(|a| {
            let mut a = a.clone();
            set.relabel(&mut a.labels).then(|| a.json())
        })
        .collect();
    if body.is_empty() {
        return;
    }
    let count = body.len() as u64;
    let body = serde_json::Value::Array(body).to_string();
    let auth = match set.authorization() {
        Ok(a) => a,
        Err(e) => {
            shared
                .counters
                .errors
                .fetch_add(urls.len() as u64, Ordering::Relaxed);
            tracing::warn!(error = %e, "sending alerts failed: no credentials");
            return;
        }
    };
    for url in &urls {
        let mut req = set
            .agent()
            .post(url)
            .set("Content-Type", "application/json")
            .set("User-Agent", concat!("Vigil/", env!("CARGO_PKG_VERSION")));
        if let Some(h) = &auth {
            req = req.set("Authorization", h);
        }
        match req.send_string(&body) {
            Ok(_) => {
                shared.counters.sent.fetch_add(count, Ordering::Relaxed);
            }
            Err(e) => {
                shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                let detail = match e {
                    ureq::Error::Status(code, resp) => {
                        format!(
                            "HTTP {code}: {}",
                            resp.into_string().unwrap_or_default().trim()
                        )
                    }
                    other => other.to_string(),
                };
                tracing::warn!(alertmanager = %url, alerts = count, error = %detail, "sending alerts failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_links_as_prometheus_writes_them() {
        assert_eq!(rfc3339(1_764_756_000_123), "2025-12-03T10:00:00.123Z");
        assert_eq!(
            query_escape("up{job=\"a b\"} == 0"),
            "up%7Bjob%3D%22a+b%22%7D+%3D%3D+0"
        );
    }
}
