//! Evaluating one rule group at one timestamp, as Prometheus does: rules
//! in order (a recording rule's output is visible to the rules after
//! it), recording rules' results written back, the alert state machine
//! (inactive → pending → firing → resolved, with `for` and
//! `keep_firing_for`), `ALERTS` and `ALERTS_FOR_STATE` series, stale
//! markers for series a rule stopped producing, and `limit`.

use crate::rule_file::{Lang, Rule, RuleGroup, RuleKind};
use crate::template::{AlertData, QueryFn, Template, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use tsdb::{LabelSet, Sample, SeriesSamples, METRIC_NAME, STALE_NAN_BITS};

/// What rule evaluation needs from the server.
pub trait Backend: Send + Sync {
    /// A PromQL instant query at `t` (ms): a vector (a scalar as one
    /// sample without labels).
    fn query(&self, expr: &str, t: i64) -> Result<Vec<(LabelSet, f64)>, String>;
    /// The newest sample of the series with exactly `labels` in `[start, end]`.
    fn last_sample(
        &self,
        labels: &LabelSet,
        start: i64,
        end: i64,
    ) -> Result<Option<(i64, f64)>, String>;
    /// Writes rule output (recording rules, `ALERTS`, stale markers).
    fn append(&self, series: Vec<SeriesSamples>) -> Result<(), String>;
    /// A LogQL metric query at `t` (ms), for log-based rules.
    fn query_logs(&self, expr: &str, t: i64) -> Result<Vec<(LabelSet, f64)>, String> {
        let _ = (expr, t);
        Err("log-based rules need the log store".into())
    }
}

/// Runs a rule's expression in its language.
fn run_query(
    backend: &dyn Backend,
    lang: Lang,
    expr: &str,
    t: i64,
) -> Result<Vec<(LabelSet, f64)>, String> {
    match lang {
        Lang::PromQL => backend.query(expr, t),
        Lang::LogQL => backend.query_logs(expr, t),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Pending,
    Firing,
    /// Resolved, kept a while so notifiers can send the resolution.
    Inactive,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Inactive => "inactive",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub labels: LabelSet,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: f64,
    /// When it became pending (ms).
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// Since when the expression has stopped returning it while
    /// `keep_firing_for` keeps it firing.
    pub keep_firing_since: Option<i64>,
    /// When a notifier last sent it (ms); notifiers set this.
    pub last_sent_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// A rule with what its evaluations left.
#[derive(Debug, Clone)]
pub struct RuleState {
    pub rule: Rule,
    pub health: Health,
    pub last_error: Option<String>,
    /// Wall-clock time of the last evaluation (ms) and how long it took.
    pub last_evaluation: Option<i64>,
    pub evaluation_time: Duration,
    /// Alerts by label set (alerting rules).
    pub alerts: BTreeMap<LabelSet, Alert>,
    /// Series written at the last evaluation, to mark stale when gone.
    written: HashSet<LabelSet>,
}

impl RuleState {
    pub fn new(rule: Rule) -> Self {
        RuleState {
            rule,
            health: Health::Unknown,
            last_error: None,
            last_evaluation: None,
            evaluation_time: Duration::ZERO,
            alerts: BTreeMap::new(),
            written: HashSet::new(),
        }
    }

    /// A reloaded rule keeps the state of the rule it replaces.
    pub fn take_state_from(&mut self, old: RuleState) {
        self.alerts = old.alerts;
        self.written = old.written;
        self.health = old.health;
        self.last_error = old.last_error;
        self.last_evaluation = old.last_evaluation;
        self.evaluation_time = old.evaluation_time;
    }
}

/// Settings shared by every group.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub default_interval: Duration,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    /// How far back `ALERTS_FOR_STATE` is looked for after a restart.
    pub outage_tolerance: Duration,
    /// Least time a restored pending alert waits before it may fire.
    pub for_grace_period: Duration,
    /// How long a resolved alert is kept (for notifiers).
    pub resolved_retention: Duration,
    /// Least time between two sends of an unchanged alert.
    pub resend_delay: Duration,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            default_interval: Duration::from_secs(60),
            external_labels: BTreeMap::new(),
            external_url: String::new(),
            outage_tolerance: Duration::from_secs(3600),
            for_grace_period: Duration::from_secs(600),
            resolved_retention: Duration::from_secs(900),
            resend_delay: Duration::from_secs(60),
        }
    }
}

pub struct GroupState {
    pub group: RuleGroup,
    pub interval: Duration,
    pub rules: Vec<RuleState>,
    pub last_evaluation: Option<i64>,
    pub evaluation_time: Duration,
    /// Evaluations that started later than their slot by a full interval.
    pub missed: u64,
    /// `ALERTS_FOR_STATE` is read once, after the first evaluation.
    restored: bool,
}

fn labelset(pairs: &[(String, String)]) -> LabelSet {
    LabelSet::from_labels(
        pairs
            .iter()
            .map(|(n, v)| tsdb::Label::new(n.as_str(), v.as_str()))
            .collect(),
    )
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

fn to_value_map(labels: &LabelSet) -> Value {
    Value::Map(
        labels
            .iter()
            .map(|l| (l.name.to_string(), Value::Str(l.value.to_string())))
            .collect(),
    )
}

fn with_name(labels: &LabelSet, name: &str) -> LabelSet {
    let mut pairs: Vec<(String, String)> = labels
        .iter()
        .filter(|l| l.name != METRIC_NAME)
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    pairs.push((METRIC_NAME.to_string(), name.to_string()));
    labelset(&pairs)
}

impl GroupState {
    pub fn new(group: RuleGroup, opts: &EvalOptions) -> Self {
        let interval = group
            .interval
            .filter(|d| !d.is_zero())
            .unwrap_or(opts.default_interval)
            .max(Duration::from_millis(1));
        GroupState {
            rules: group.rules.iter().cloned().map(RuleState::new).collect(),
            group,
            interval,
            last_evaluation: None,
            evaluation_time: Duration::ZERO,
            missed: 0,
            restored: false,
        }
    }

    /// The group's identity across reloads: file and name.
    pub fn key(&self) -> String {
        format!("{};{}", self.group.file.display(), self.group.name)
    }

    /// This group's evaluation slots: every interval, shifted by a stable
    /// offset from its key (so groups spread out, as in Prometheus).
    pub fn slot_at_or_before(&self, now: i64) -> i64 {
        let iv = ms(self.interval).max(1);
        let offset = (fnv1a(self.key().as_bytes()) % iv as u64) as i64;
        (now - offset).div_euclid(iv) * iv + offset
    }

    /// Keeps the state of the rules of `old` that this group still has
    /// (same kind, name, expression and labels).
    pub fn take_state_from(&mut self, old: GroupState) {
        let mut pool: Vec<RuleState> = old.rules;
        for r in &mut self.rules {
            let same = |o: &RuleState| {
                o.rule.name() == r.rule.name()
                    && o.rule.expr == r.rule.expr
                    && std::mem::discriminant(&o.rule.kind) == std::mem::discriminant(&r.rule.kind)
                    && labels_source(&o.rule) == labels_source(&r.rule)
            };
            if let Some(i) = pool.iter().position(same) {
                r.take_state_from(pool.swap_remove(i));
            }
        }
        self.last_evaluation = old.last_evaluation;
        self.evaluation_time = old.evaluation_time;
        self.missed = old.missed;
        self.restored = old.restored;
    }

    /// Evaluates every rule at slot `ts` (ms); `now` is the wall clock.
    pub fn evaluate(&mut self, backend: &dyn Backend, opts: &EvalOptions, ts: i64, now: i64) {
        let started = std::time::Instant::now();
        let qts = ts - self.group.query_offset.map_or(0, ms);
        let limit = self.group.limit;
        for r in &mut self.rules {
            let rule_started = std::time::Instant::now();
            let result = match &r.rule.kind {
                RuleKind::Recording { .. } => eval_recording(r, backend, qts, limit),
                RuleKind::Alerting { .. } => eval_alerting(r, backend, opts, qts, limit),
            };
            let mut out = match result {
                Ok(series) => {
                    r.health = Health::Ok;
                    r.last_error = None;
                    series
                }
                Err(e) => {
                    tracing::warn!(group = %self.group.name, rule = %r.rule.name(), error = %e, "rule evaluation failed");
                    r.health = Health::Err;
                    r.last_error = Some(e);
                    Vec::new()
                }
            };
            // Stale markers for what this rule wrote last time and not now.
            let now_written: HashSet<LabelSet> = out.iter().map(|s| s.labels.clone()).collect();
            for gone in r.written.difference(&now_written) {
                out.push(SeriesSamples {
                    labels: gone.clone(),
                    samples: vec![Sample::new(qts, f64::from_bits(STALE_NAN_BITS))],
                });
            }
            r.written = now_written;
            if !out.is_empty() {
                if let Err(e) = backend.append(out) {
                    tracing::warn!(group = %self.group.name, rule = %r.rule.name(), error = %e, "writing rule output failed");
                    r.health = Health::Err;
                    r.last_error = Some(format!("writing the result: {e}"));
                }
            }
            r.last_evaluation = Some(now);
            r.evaluation_time = rule_started.elapsed();
        }
        if !self.restored {
            self.restored = true;
            self.restore_for_state(backend, opts, qts);
        }
        self.last_evaluation = Some(now);
        self.evaluation_time = started.elapsed();
    }

    /// The alerts to send after the evaluation at `ts`, as Prometheus picks
    /// them: firing ones again every `resend_delay`, resolved ones once
    /// resolved and then on the same schedule until dropped; each valid
    /// until four resend periods (or intervals, if longer) from now.
    pub fn alerts_to_send(
        &mut self,
        opts: &EvalOptions,
        ts: i64,
    ) -> Vec<crate::notifier::OutgoingAlert> {
        let resend = ms(opts.resend_delay);
        let valid_until = ts + 4 * resend.max(ms(self.interval));
        let mut out = Vec::new();
        for r in &mut self.rules {
            if !matches!(r.rule.kind, RuleKind::Alerting { .. }) {
                continue;
            }
            for a in r.alerts.values_mut() {
                if a.state == AlertState::Pending {
                    continue;
                }
                let resolved_since_sent = match (a.resolved_at, a.last_sent_at) {
                    (Some(res), Some(sent)) => res > sent,
                    (Some(_), None) => true,
                    _ => false,
                };
                let due = a.last_sent_at.is_none_or(|sent| sent + resend < ts);
                if !resolved_since_sent && !due {
                    continue;
                }
                a.last_sent_at = Some(ts);
                out.push(crate::notifier::OutgoingAlert::from_alert(
                    a,
                    &r.rule.expr,
                    &opts.external_url,
                    valid_until,
                ));
            }
        }
        out
    }

    /// After a restart, pending alerts take back their `for` progress from
    /// `ALERTS_FOR_STATE`, as Prometheus restores it: the time the server
    /// was down does not count, and an alert about to fire waits at
    /// least the grace period.
    fn restore_for_state(&mut self, backend: &dyn Backend, opts: &EvalOptions, ts: i64) {
        for r in &mut self.rules {
            let RuleKind::Alerting { for_, .. } = &r.rule.kind else {
                continue;
            };
            let hold = ms(*for_);
            if hold == 0 {
                continue;
            }
            for a in r.alerts.values_mut() {
                if a.state != AlertState::Pending {
                    continue;
                }
                let series = with_name(&a.labels, "ALERTS_FOR_STATE");
                let found = backend.last_sample(&series, ts - ms(opts.outage_tolerance), ts - 1);
                let Ok(Some((down_at, v))) = found else {
                    continue;
                };
                let restored = (v * 1000.0) as i64;
                let remaining = hold - (down_at - restored);
                let grace = ms(opts.for_grace_period);
                a.active_at = if remaining <= 0 {
                    restored
                } else if remaining < grace {
                    ts + grace - hold
                } else {
                    restored + (ts - down_at)
                };
                tracing::info!(alert = %r.rule.name(), labels = %a.labels, "restored the pending time of an alert");
            }
        }
    }
}

fn labels_source(r: &Rule) -> Vec<(String, String)> {
    r.labels
        .iter()
        .map(|(k, t)| (k.clone(), t.source().to_string()))
        .collect()
}

fn fnv1a(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn eval_recording(
    r: &RuleState,
    backend: &dyn Backend,
    ts: i64,
    limit: usize,
) -> Result<Vec<SeriesSamples>, String> {
    let RuleKind::Recording { record } = &r.rule.kind else {
        return Ok(Vec::new());
    };
    let vector = run_query(backend, r.rule.lang, &r.rule.expr, ts)?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(vector.len());
    for (labels, v) in vector {
        let mut pairs: Vec<(String, String)> = labels
            .iter()
            .filter(|l| l.name != METRIC_NAME)
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        for (k, t) in &r.rule.labels {
            pairs.retain(|(n, _)| n != k);
            if !t.source().is_empty() {
                pairs.push((k.clone(), t.source().to_string()));
            }
        }
        pairs.push((METRIC_NAME.to_string(), record.clone()));
        let labels = labelset(&pairs);
        if !seen.insert(labels.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push(SeriesSamples {
            labels,
            samples: vec![Sample::new(ts, v)],
        });
    }
    if limit > 0 && out.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            out.len()
        ));
    }
    Ok(out)
}

fn eval_alerting(
    r: &mut RuleState,
    backend: &dyn Backend,
    opts: &EvalOptions,
    ts: i64,
    limit: usize,
) -> Result<Vec<SeriesSamples>, String> {
    let RuleKind::Alerting {
        alert,
        for_,
        keep_firing_for,
        annotations,
    } = &r.rule.kind
    else {
        return Ok(Vec::new());
    };
    let lang = r.rule.lang;
    let vector = run_query(backend, lang, &r.rule.expr, ts)?;
    let query = |q: &str| -> Result<Vec<Value>, String> {
        Ok(run_query(backend, lang, q, ts)?
            .into_iter()
            .map(|(l, v)| {
                Value::Map(BTreeMap::from([
                    ("Labels".to_string(), to_value_map(&l)),
                    ("Value".to_string(), Value::Num(v)),
                ]))
            })
            .collect())
    };
    let query: &QueryFn<'_> = &query;
    let mut current: HashMap<LabelSet, (f64, BTreeMap<String, String>)> = HashMap::new();
    for (labels, v) in vector {
        // `$labels` is the sample's whole label set, `__name__` included
        // when the expression kept it (as in Prometheus); only the alert's
        // own labels leave the name out.
        let data = AlertData {
            labels: labels
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect(),
            external_labels: opts.external_labels.clone(),
            external_url: opts.external_url.clone(),
            value: v,
        };
        let expand = |t: &Template| -> String {
            t.render_alert(&data, Some(query))
                .unwrap_or_else(|e| format!("<error expanding template: {e}>"))
        };
        let mut pairs: Vec<(String, String)> = data
            .labels
            .iter()
            .filter(|(n, _)| n.as_str() != METRIC_NAME)
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        for (k, t) in &r.rule.labels {
            let value = expand(t);
            pairs.retain(|(n, _)| n != k);
            if !value.is_empty() {
                pairs.push((k.clone(), value));
            }
        }
        pairs.retain(|(n, _)| n != "alertname");
        pairs.push(("alertname".to_string(), alert.clone()));
        let labels = labelset(&pairs);
        let annotations: BTreeMap<String, String> = annotations
            .iter()
            .map(|(k, t)| (k.clone(), expand(t)))
            .collect();
        if current.insert(labels, (v, annotations)).is_some() {
            return Err(
                "vector contains metrics with the same labelset after applying alert labels".into(),
            );
        }
    }
    // Alerts the expression returned.
    for (labels, (v, ann)) in &current {
        match r.alerts.get_mut(labels) {
            Some(a) if a.state != AlertState::Inactive => {
                a.value = *v;
                a.annotations = ann.clone();
                a.keep_firing_since = None;
            }
            _ => {
                r.alerts.insert(
                    labels.clone(),
                    Alert {
                        labels: labels.clone(),
                        annotations: ann.clone(),
                        state: AlertState::Pending,
                        value: *v,
                        active_at: ts,
                        fired_at: None,
                        resolved_at: None,
                        keep_firing_since: None,
                        last_sent_at: None,
                    },
                );
            }
        }
    }
    // Alerts it did not return: kept firing for a while, resolved or dropped.
    let keep = ms(*keep_firing_for);
    let retention = ms(opts.resolved_retention);
    r.alerts.retain(|labels, a| {
        if current.contains_key(labels) {
            return true;
        }
        if a.state == AlertState::Firing && keep > 0 {
            let since = *a.keep_firing_since.get_or_insert(ts);
            if ts - since < keep {
                return true;
            }
        }
        if a.state == AlertState::Pending || a.resolved_at.is_some_and(|t| ts - t > retention) {
            return false;
        }
        if a.state != AlertState::Inactive {
            a.state = AlertState::Inactive;
            a.resolved_at = Some(ts);
        }
        true
    });
    let hold = ms(*for_);
    let mut active = 0;
    for a in r.alerts.values_mut() {
        if a.state == AlertState::Pending && ts - a.active_at >= hold {
            a.state = AlertState::Firing;
            a.fired_at = Some(ts);
        }
        if a.state != AlertState::Inactive {
            active += 1;
        }
    }
    if limit > 0 && active > limit {
        r.alerts.clear();
        return Err(format!("exceeded limit of {limit} with {active} alerts"));
    }
    let mut out = Vec::new();
    for a in r
        .alerts
        .values()
        .filter(|a| a.state != AlertState::Inactive)
    {
        let mut pairs: Vec<(String, String)> = a
            .labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        pairs.push(("alertstate".into(), a.state.as_str().into()));
        pairs.push((METRIC_NAME.into(), "ALERTS".into()));
        out.push(SeriesSamples {
            labels: labelset(&pairs),
            samples: vec![Sample::new(ts, 1.0)],
        });
        out.push(SeriesSamples {
            labels: with_name(&a.labels, "ALERTS_FOR_STATE"),
            samples: vec![Sample::new(ts, a.active_at as f64 / 1000.0)],
        });
    }
    Ok(out)
}
