//! The built-in notifier for clusters without an Alertmanager: alerts are
//! routed through an alertmanager.yml-shaped tree, grouped per route and
//! `group_by` labels, and each group notifies its receiver after
//! `group_wait`, then every `group_interval` when it changed, and again
//! every `repeat_interval` while it fires. Receivers get Alertmanager's
//! webhook payload (version 4); failed sends are retried with exponential
//! backoff.

pub mod config;
pub mod silences;
pub mod time_intervals;

use crate::clock::{lock, now_ms};
use crate::notifier::{rfc3339, OutgoingAlert};
use config::{DispatchConfig, GroupBy, Integration, IntegrationKind, Route};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Labels = BTreeMap<String, String>;

#[derive(Debug, Default)]
pub struct DispatchCounters {
    pub notifications: AtomicU64,
    pub failed: AtomicU64,
    pub retries: AtomicU64,
}

struct Group {
    route: Route,
    group_labels: Labels,
    alerts: BTreeMap<Labels, OutgoingAlert>,
    next_flush: Instant,
    /// What the last notification held: each alert's labels and whether
    /// it was firing.
    last_sent: BTreeSet<(Labels, bool)>,
    last_notified: Option<Instant>,
}

struct State {
    /// Swapped whole on reload, under the same lock as the groups.
    config: Arc<DispatchConfig>,
    groups: BTreeMap<String, Group>,
    stop: bool,
}

/// The notification log: what each group last told its receiver, kept on
/// disk so a restart neither repeats a notification nor loses a pending
/// resolution (a group's alerts come back with their end times).
#[derive(serde::Serialize, serde::Deserialize)]
struct LogEntry {
    route_key: String,
    group_labels: Labels,
    alerts: Vec<OutgoingAlert>,
    last_sent: Vec<(Labels, bool)>,
    /// Wall-clock ms of the last notification.
    last_notified: Option<i64>,
}

fn find_route<'a>(r: &'a Route, key: &str) -> Option<&'a Route> {
    if r.key == key {
        return Some(r);
    }
    r.routes.iter().find_map(|c| find_route(c, key))
}

fn save_log(path: &std::path::Path, groups: &BTreeMap<String, Group>, now: Instant, wall: i64) {
    let entries: BTreeMap<&String, LogEntry> = groups
        .iter()
        .map(|(k, g)| {
            (
                k,
                LogEntry {
                    route_key: g.route.key.clone(),
                    group_labels: g.group_labels.clone(),
                    alerts: g.alerts.values().cloned().collect(),
                    last_sent: g.last_sent.iter().cloned().collect(),
                    last_notified: g
                        .last_notified
                        .map(|t| wall - now.duration_since(t).as_millis() as i64),
                },
            )
        })
        .collect();
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(
            serde_json::to_string(&entries)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        tracing::error!(path = %path.display(), error = %e, "cannot save the notification log; a restart may repeat notifications");
    }
}

fn load_log(
    path: &std::path::Path,
    config: &DispatchConfig,
    now: Instant,
    wall: i64,
) -> BTreeMap<String, Group> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    let entries: BTreeMap<String, LogEntry> = match serde_json::from_str(&text) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the notification log is unreadable; starting without it");
            return BTreeMap::new();
        }
    };
    let mut out = BTreeMap::new();
    for (key, e) in entries {
        // A route that is gone after a config change takes its groups along.
        let Some(route) = find_route(&config.route, &e.route_key) else {
            continue;
        };
        let ago = |ms: i64| Duration::from_millis(u64::try_from(wall - ms).unwrap_or(0));
        out.insert(
            key,
            Group {
                route: leaf(route),
                group_labels: e.group_labels,
                alerts: e
                    .alerts
                    .into_iter()
                    .map(|a| (a.labels.clone(), a))
                    .collect(),
                next_flush: now + route.group_interval,
                last_sent: e.last_sent.into_iter().collect(),
                last_notified: e.last_notified.and_then(|t| now.checked_sub(ago(t))),
            },
        );
    }
    out
}

/// What the built-in notifier starts from.
pub struct DispatcherOptions {
    pub config: DispatchConfig,
    /// Where `config` came from, read again on reload.
    pub config_path: Option<std::path::PathBuf>,
    pub silences: Arc<silences::Silences>,
    /// The notification log's file, if kept.
    pub log_path: Option<std::path::PathBuf>,
    pub external_url: String,
    pub external_labels: Labels,
    /// `alerting.alert_relabel_configs`: the built-in notifier stands in
    /// for an Alertmanager, so it gets alerts relabeled as one would.
    pub alert_relabel: Option<crate::notifier::AlertRelabel>,
}

struct Shared {
    config_path: Option<std::path::PathBuf>,
    /// The notification log's file, if kept.
    log_path: Option<std::path::PathBuf>,
    silences: Arc<silences::Silences>,
    external_url: String,
    external_labels: Labels,
    alert_relabel: Option<crate::notifier::AlertRelabel>,
    state: Mutex<State>,
    wake: Condvar,
    counters: DispatchCounters,
    senders: Mutex<Vec<JoinHandle<()>>>,
}

pub struct Dispatcher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn group_key(route: &Route, group_labels: &Labels) -> String {
    let shown: Vec<String> = group_labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{}:{{{}}}", route.key, shown.join(","))
}

/// A route without its children (a group only needs its own settings).
fn leaf(r: &Route) -> Route {
    Route {
        routes: Vec::new(),
        ..r.clone()
    }
}

impl Dispatcher {
    pub fn start(o: DispatcherOptions) -> std::io::Result<Dispatcher> {
        let groups = match &o.log_path {
            Some(p) => load_log(p, &o.config, Instant::now(), now_ms()),
            None => BTreeMap::new(),
        };
        let shared = Arc::new(Shared {
            config_path: o.config_path,
            log_path: o.log_path,
            silences: o.silences,
            external_url: o.external_url,
            external_labels: o.external_labels,
            alert_relabel: o.alert_relabel,
            state: Mutex::new(State {
                config: Arc::new(o.config),
                groups,
                stop: false,
            }),
            wake: Condvar::new(),
            counters: DispatchCounters::default(),
            senders: Mutex::new(Vec::new()),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("dispatcher".into())
            .spawn(move || run(&s))?;
        Ok(Dispatcher {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn counters(&self) -> &DispatchCounters {
        &self.shared.counters
    }

    pub fn silences(&self) -> &Arc<silences::Silences> {
        &self.shared.silences
    }

    /// The file the configuration came from, if any.
    pub fn config_path(&self) -> Option<&std::path::Path> {
        self.shared.config_path.as_deref()
    }

    /// Takes alerts from the rules (new, still firing or resolved).
    pub fn send(&self, alerts: Vec<OutgoingAlert>) {
        if alerts.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut st = lock(&self.shared.state);
        for mut a in alerts {
            for (k, v) in &self.shared.external_labels {
                a.labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
            if let Some(r) = &self.shared.alert_relabel {
                if !r(&mut a.labels) {
                    continue;
                }
            }
            route_alert(&mut st, a, now);
        }
        self.shared.wake.notify_all();
    }

    /// Swaps in a new configuration, as Alertmanager does on reload: every
    /// alert is routed again by the new tree, and a group whose key
    /// survives keeps what it had told (so nothing unchanged is re-sent)
    /// and its timers; new groups wait their group_wait.
    pub fn reload(&self, config: DispatchConfig) {
        let now = Instant::now();
        let mut st = lock(&self.shared.state);
        let old = std::mem::take(&mut st.groups);
        st.config = Arc::new(config);
        let mut alerts: BTreeMap<&Labels, &OutgoingAlert> = BTreeMap::new();
        for g in old.values() {
            for a in g.alerts.values() {
                alerts.entry(&a.labels).or_insert(a);
            }
        }
        for a in alerts.into_values() {
            route_alert(&mut st, a.clone(), now);
        }
        for (key, g) in st.groups.iter_mut() {
            if let Some(o) = old.get(key) {
                g.last_sent = o.last_sent.clone();
                g.last_notified = o.last_notified;
                g.next_flush = o.next_flush;
            }
        }
        self.shared.wake.notify_all();
    }

    pub fn stop(&self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
        let senders: Vec<JoinHandle<()>> = lock(&self.shared.senders).drain(..).collect();
        for s in senders {
            let _ = s.join();
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Puts an alert into the group of every route it matches.
fn route_alert(st: &mut State, a: OutgoingAlert, now: Instant) {
    let config = Arc::clone(&st.config);
    for route in config.route.matching(&a.labels) {
        let group_labels: Labels = match &route.group_by {
            GroupBy::All => a.labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|n| a.labels.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        };
        let key = group_key(route, &group_labels);
        let g = st.groups.entry(key).or_insert_with(|| Group {
            route: leaf(route),
            group_labels,
            alerts: BTreeMap::new(),
            next_flush: now + route.group_wait,
            last_sent: BTreeSet::new(),
            last_notified: None,
        });
        g.alerts.insert(a.labels.clone(), a.clone());
    }
}

fn run(shared: &Arc<Shared>) {
    loop {
        let mut st = lock(&shared.state);
        if st.stop {
            return;
        }
        let now = Instant::now();
        let next = st.groups.values().map(|g| g.next_flush).min();
        match next {
            Some(t) if t > now => {
                st = shared
                    .wake
                    .wait_timeout(st, t - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            None => {
                st = shared.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            Some(_) => {}
        }
        if st.stop {
            return;
        }
        let now = Instant::now();
        let wall = now_ms();
        let due: Vec<String> = st
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush <= now)
            .map(|(k, _)| k.clone())
            .collect();
        // Firing alerts that may inhibit others.
        let config = Arc::clone(&st.config);
        let firing: Vec<Labels> = if config.inhibit_rules.is_empty() {
            Vec::new()
        } else {
            st.groups
                .values()
                .flat_map(|g| g.alerts.values())
                .filter(|a| a.ends_at > wall)
                .map(|a| a.labels.clone())
                .collect()
        };
        let muted = |labels: &Labels| {
            shared.silences.silenced(labels, wall)
                || config.inhibit_rules.iter().any(|r| {
                    firing
                        .iter()
                        .any(|src| src != labels && r.inhibits(src, labels))
                })
        };
        // Every flush changes what the log must hold (sent state,
        // resolved alerts dropped), whether or not anything went out.
        let had_due = !due.is_empty();
        for key in due {
            let Some(g) = st.groups.get_mut(&key) else {
                continue;
            };
            g.next_flush = now + g.route.group_interval;
            // Silenced and inhibited alerts are left out (and told when
            // that ends, as a change).
            let shown: Vec<OutgoingAlert> = g
                .alerts
                .values()
                .filter(|a| !muted(&a.labels))
                .cloned()
                .collect();
            let current: BTreeSet<(Labels, bool)> = shown
                .iter()
                .map(|a| (a.labels.clone(), a.ends_at > wall))
                .collect();
            let any_firing = current.iter().any(|(_, f)| *f);
            let repeat_due = any_firing
                && g.last_notified
                    .is_none_or(|t| now.duration_since(t) >= g.route.repeat_interval);
            let changed = current != g.last_sent;
            // Inside a mute interval (or outside the active ones) nothing
            // goes out and nothing is marked sent, as in Alertmanager: the
            // first flush after the interval tells what is current then.
            let active = config.route_is_active(&g.route, wall);
            if active && (changed || repeat_due) && !shown.is_empty() {
                let alerts = shown;
                let receiver = config.receivers.get(&g.route.receiver).cloned();
                if let Some(r) = receiver {
                    for w in r.integrations {
                        if !any_firing && !w.send_resolved {
                            continue;
                        }
                        let n = Notification {
                            group_key: &key,
                            receiver: &r.name,
                            group_labels: &g.group_labels,
                            alerts: &alerts,
                            now: wall,
                        };
                        let payload = n.payload(shared, &w);
                        spawn_send(shared, w.url.clone(), payload);
                    }
                }
                g.last_sent = current;
                g.last_notified = Some(now);
            }
            // Resolved alerts have been told; a group with nothing left goes.
            g.alerts.retain(|_, a| a.ends_at > wall);
            g.last_sent.retain(|(_, firing)| *firing);
            if g.alerts.is_empty() {
                st.groups.remove(&key);
            }
        }
        if had_due {
            if let Some(p) = &shared.log_path {
                save_log(p, &st.groups, now, wall);
            }
        }
    }
}

fn fingerprint(labels: &Labels) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// One group's notification, in each receiver's shape.
struct Notification<'a> {
    group_key: &'a str,
    receiver: &'a str,
    group_labels: &'a Labels,
    alerts: &'a [OutgoingAlert],
    now: i64,
}

impl Notification<'_> {
    fn firing(&self) -> impl Iterator<Item = &OutgoingAlert> {
        self.alerts.iter().filter(move |a| a.ends_at > self.now)
    }

    fn common(&self, get: &dyn Fn(&OutgoingAlert) -> &Labels) -> Labels {
        let mut it = self.alerts.iter();
        let Some(first) = it.next() else {
            return Labels::new();
        };
        let mut c = get(first).clone();
        for a in it {
            c.retain(|k, v| get(a).get(k) == Some(v));
        }
        c
    }

    /// `[FIRING:2] TargetDown` (Alertmanager's default title).
    fn title(&self) -> String {
        let n = self.firing().count();
        let name = self
            .common(&|a| &a.labels)
            .get("alertname")
            .cloned()
            .unwrap_or_default();
        if n > 0 {
            format!("[FIRING:{n}] {name}")
        } else {
            format!("[RESOLVED] {name}")
        }
    }

    /// One line per alert: its summary (or labels) and state.
    fn text(&self) -> String {
        let lines: Vec<String> = self
            .alerts
            .iter()
            .map(|a| {
                let state = if a.ends_at > self.now {
                    "firing"
                } else {
                    "resolved"
                };
                let what = a
                    .annotations
                    .get("summary")
                    .or_else(|| a.annotations.get("description"))
                    .cloned()
                    .unwrap_or_else(|| {
                        let l: Vec<String> =
                            a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        l.join(" ")
                    });
                format!("• {what} ({state})")
            })
            .collect();
        lines.join("\n")
    }

    /// The worst `severity` among firing alerts.
    fn severity(&self) -> Option<&str> {
        let rank = |s: &str| match s {
            "critical" | "page" => 3,
            "error" => 2,
            "warning" => 1,
            _ => 0,
        };
        self.firing()
            .filter_map(|a| a.labels.get("severity").map(String::as_str))
            .max_by_key(|s| rank(s))
    }

    fn payload(&self, shared: &Shared, w: &Integration) -> String {
        let firing = self.firing().next().is_some();
        match &w.kind {
            IntegrationKind::Webhook { max_alerts } => {
                self.webhook(shared, w.send_resolved, *max_alerts)
            }
            IntegrationKind::Slack { channel, username } => {
                let color = match (firing, self.severity()) {
                    (false, _) => "good",
                    (true, Some("warning")) => "warning",
                    _ => "danger",
                };
                let mut body = serde_json::json!({
                    "attachments": [{
                        "title": self.title(),
                        "title_link": shared.external_url,
                        "text": self.text(),
                        "fallback": self.title(),
                        "color": color,
                    }],
                });
                if let (Some(c), Some(o)) = (channel, body.as_object_mut()) {
                    o.insert("channel".into(), c.clone().into());
                }
                if let (Some(u), Some(o)) = (username, body.as_object_mut()) {
                    o.insert("username".into(), u.clone().into());
                }
                body.to_string()
            }
            IntegrationKind::PagerDuty {
                routing_key,
                severity,
            } => {
                let sev = severity.clone().unwrap_or_else(|| {
                    match self.severity() {
                        Some("critical" | "page") => "critical",
                        Some("warning") => "warning",
                        Some("info") => "info",
                        _ => "error",
                    }
                    .to_string()
                });
                let summary: String = self.title().chars().take(1024).collect();
                serde_json::json!({
                    "routing_key": routing_key,
                    "event_action": if firing { "trigger" } else { "resolve" },
                    "dedup_key": fingerprint(&Labels::from([("groupKey".to_string(), self.group_key.to_string())])),
                    "client": "Vigil",
                    "client_url": shared.external_url,
                    "payload": {
                        "summary": summary,
                        "source": shared.external_url,
                        "severity": sev,
                        "custom_details": {
                            "firing": self.text(),
                            "num_firing": self.firing().count(),
                            "num_resolved": self.alerts.len() - self.firing().count(),
                        },
                    },
                })
                .to_string()
            }
            IntegrationKind::Discord => serde_json::json!({
                "embeds": [{
                    "title": self.title(),
                    "description": self.text(),
                    "color": if firing { 0x00ED_4245 } else { 0x0057_F287 },
                }],
            })
            .to_string(),
        }
    }

    /// Alertmanager's webhook payload, version 4.
    fn webhook(&self, shared: &Shared, send_resolved: bool, max_alerts: usize) -> String {
        let now = self.now;
        let mut shown: Vec<&OutgoingAlert> = self
            .alerts
            .iter()
            .filter(|a| send_resolved || a.ends_at > now)
            .collect();
        let truncated = if max_alerts > 0 && shown.len() > max_alerts {
            let t = shown.len() - max_alerts;
            shown.truncate(max_alerts);
            t
        } else {
            0
        };
        let firing = self.firing().next().is_some();
        let items: Vec<serde_json::Value> = shown
            .iter()
            .map(|a| {
                let is_firing = a.ends_at > now;
                serde_json::json!({
                    "status": if is_firing { "firing" } else { "resolved" },
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339(a.starts_at),
                    "endsAt": if is_firing { "0001-01-01T00:00:00Z".to_string() } else { rfc3339(a.ends_at) },
                    "generatorURL": a.generator_url,
                    "fingerprint": fingerprint(&a.labels),
                })
            })
            .collect();
        serde_json::json!({
            "version": "4",
            "groupKey": self.group_key,
            "truncatedAlerts": truncated,
            "status": if firing { "firing" } else { "resolved" },
            "receiver": self.receiver,
            "groupLabels": self.group_labels,
            "commonLabels": self.common(&|a| &a.labels),
            "commonAnnotations": self.common(&|a| &a.annotations),
            "externalURL": shared.external_url,
            "alerts": items,
        })
        .to_string()
    }
}

/// Sends on its own thread, retrying with exponential backoff (1 s
/// doubling to 1 min, for up to 10 minutes) so a receiver that is down
/// for a while still gets the notification.
fn spawn_send(shared: &Arc<Shared>, url: String, payload: String) {
    let s = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("webhook".into())
        .spawn(move || {
            let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
            let started = Instant::now();
            let mut backoff = Duration::from_secs(1);
            loop {
                let r = agent
                    .post(&url)
                    .set("Content-Type", "application/json")
                    .send_string(&payload);
                match r {
                    Ok(_) => {
                        s.counters.notifications.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => {
                        // The URL may hold a secret (a token in the path): not logged.
                        let detail = match e {
                            ureq::Error::Status(code, _) => format!("HTTP {code}"),
                            ureq::Error::Transport(t) => t.kind().to_string(),
                        };
                        if started.elapsed() > Duration::from_secs(600) || lock(&s.state).stop {
                            s.counters.failed.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(error = %detail, "webhook notification failed; giving up after retries");
                            return;
                        }
                        s.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %detail, retry_in = ?backoff, "webhook notification failed; retrying");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                    }
                }
            }
        });
    match spawned {
        Ok(h) => {
            let mut senders = lock(&shared.senders);
            senders.retain(|h| !h.is_finished());
            senders.push(h);
        }
        Err(e) => tracing::error!(error = %e, "cannot start a webhook sender"),
    }
}
