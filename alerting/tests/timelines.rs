//! Alert timelines computed by hand: `for`, `keep_firing_for`, a flapping
//! series, a series that disappears, `limit`, recording rules feeding a
//! later rule, stale markers, and the `for` progress restored after a
//! restart — through the group evaluator with a scripted backend.

use alerting::group::{AlertState, Backend, EvalOptions, GroupState, Health};
use alerting::rule_file;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use tsdb::{LabelSet, SeriesSamples};

const S: i64 = 1000;
const M: i64 = 60 * S;

/// Answers `up == 0`-style queries from a script: expr → time → samples;
/// remembers what was written (and answers recording rules' output).
/// A query's answer at each time.
type Answers = BTreeMap<i64, Vec<(LabelSet, f64)>>;

#[derive(Default)]
struct Script {
    answers: Mutex<HashMap<String, Answers>>,
    written: Mutex<Vec<SeriesSamples>>,
}

impl Script {
    fn set(&self, expr: &str, t: i64, samples: &[(&[(&str, &str)], f64)]) {
        self.answers
            .lock()
            .unwrap()
            .entry(expr.to_string())
            .or_default()
            .insert(
                t,
                samples
                    .iter()
                    .map(|(l, v)| (LabelSet::from_pairs(l), *v))
                    .collect(),
            );
    }

    fn written_named(&self, name: &str) -> Vec<(String, i64, f64)> {
        self.written
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.labels.get("__name__") == Some(name))
            .flat_map(|s| {
                s.samples
                    .iter()
                    .map(move |x| (s.labels.to_string(), x.t, x.v))
            })
            .collect()
    }
}

impl Backend for Script {
    fn query(&self, expr: &str, t: i64) -> Result<Vec<(LabelSet, f64)>, String> {
        if expr == "fails" {
            return Err("query failed".into());
        }
        // Recording rules' output, read back by name.
        let written: Vec<(LabelSet, f64)> = self
            .written
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.labels.get("__name__") == Some(expr))
            .flat_map(|s| {
                s.samples
                    .iter()
                    .filter(|x| x.t == t)
                    .map(|x| (s.labels.clone(), x.v))
            })
            .collect();
        if !written.is_empty() {
            return Ok(written);
        }
        Ok(self
            .answers
            .lock()
            .unwrap()
            .get(expr)
            .and_then(|m| m.get(&t).cloned())
            .unwrap_or_default())
    }

    fn last_sample(
        &self,
        labels: &LabelSet,
        start: i64,
        end: i64,
    ) -> Result<Option<(i64, f64)>, String> {
        Ok(self
            .written
            .lock()
            .unwrap()
            .iter()
            .filter(|s| &s.labels == labels)
            .flat_map(|s| s.samples.iter())
            .filter(|x| x.t >= start && x.t <= end && !x.v.is_nan())
            .map(|x| (x.t, x.v))
            .max_by_key(|x| x.0))
    }

    fn append(&self, series: Vec<SeriesSamples>) -> Result<(), String> {
        self.written.lock().unwrap().extend(series);
        Ok(())
    }
}

fn group(yaml: &str) -> GroupState {
    let groups = rule_file::parse(Path::new("t.yml"), yaml).unwrap();
    GroupState::new(groups.into_iter().next().unwrap(), &EvalOptions::default())
}

fn states(g: &GroupState) -> Vec<(String, AlertState)> {
    g.rules
        .iter()
        .flat_map(|r| r.alerts.values())
        .map(|a| (a.labels.get("instance").unwrap_or("").to_string(), a.state))
        .collect()
}

const DOWN: &[(&str, &str)] = &[("__name__", "up"), ("instance", "a")];

#[test]
fn for_keeps_an_alert_pending_then_fires_then_resolves() {
    let b = Script::default();
    let mut g = group("groups:\n  - name: g\n    interval: 1m\n    rules:\n      - alert: Down\n        expr: up == 0\n        for: 2m\n        labels: {severity: page}\n        annotations: {summary: '{{ $labels.instance }} down, value {{ $value }}'}\n");
    for t in [0, M, 2 * M, 3 * M] {
        b.set("up == 0", t, &[(DOWN, 0.0)]);
    }
    let o = EvalOptions::default();
    let at = |g: &mut GroupState, t: i64| {
        g.evaluate(&b, &o, t, t);
        states(g)
    };
    use AlertState::*;
    assert_eq!(at(&mut g, 0), [("a".into(), Pending)], "active at 0");
    assert_eq!(at(&mut g, M), [("a".into(), Pending)], "1m < for 2m");
    assert_eq!(
        at(&mut g, 2 * M),
        [("a".into(), Firing)],
        "2m pending: fires"
    );
    assert_eq!(at(&mut g, 3 * M), [("a".into(), Firing)]);
    assert_eq!(
        at(&mut g, 4 * M),
        [("a".into(), Inactive)],
        "gone: resolved"
    );
    let a = g.rules[0].alerts.values().next().unwrap();
    assert_eq!(
        (a.active_at, a.fired_at, a.resolved_at),
        (0, Some(2 * M), Some(4 * M))
    );
    assert_eq!(a.annotations["summary"], "a down, value 0");
    assert_eq!(a.labels.get("severity"), Some("page"));
    assert_eq!(a.labels.get("alertname"), Some("Down"));
    // ALERTS: pending at 0 and 1m; firing from 2m, when the pending
    // series gets its stale marker; the firing one's at 4m.
    let alerts = b.written_named("ALERTS");
    let got: Vec<(i64, &str, bool)> = alerts
        .iter()
        .map(|(l, t, v)| {
            (
                *t,
                if l.contains("firing") {
                    "firing"
                } else {
                    "pending"
                },
                v.is_nan(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, "pending", false),
            (M, "pending", false),
            (2 * M, "firing", false),
            (2 * M, "pending", true),
            (3 * M, "firing", false),
            (4 * M, "firing", true)
        ]
    );
    assert!(
        alerts.last().unwrap().2.is_nan(),
        "a stale marker when it ends"
    );
    let for_state = b.written_named("ALERTS_FOR_STATE");
    assert!(for_state
        .iter()
        .filter(|x| !x.2.is_nan())
        .all(|x| x.2 == 0.0));
    // Resolved alerts are dropped after 15 minutes.
    at(&mut g, 20 * M);
    assert!(g.rules[0].alerts.is_empty());
}

#[test]
fn a_flapping_series_restarts_its_pending_time() {
    let b = Script::default();
    let mut g = group("groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: up == 0\n        for: 2m\n");
    let o = EvalOptions::default();
    for t in [0, M, 3 * M, 4 * M, 5 * M] {
        b.set("up == 0", t, &[(DOWN, 0.0)]);
    }
    use AlertState::*;
    let mut seen = Vec::new();
    for t in 0..6 {
        g.evaluate(&b, &o, t * M, t * M);
        seen.push(states(&g).first().map(|s| s.1));
    }
    // Back at 3m: pending anew from 3m, fires at 5m.
    assert_eq!(
        seen,
        [
            Some(Pending),
            Some(Pending),
            None,
            Some(Pending),
            Some(Pending),
            Some(Firing)
        ]
    );
    assert_eq!(g.rules[0].alerts.values().next().unwrap().active_at, 3 * M);
}

#[test]
fn keep_firing_for_holds_a_firing_alert_after_the_series_goes() {
    let b = Script::default();
    let mut g = group("groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: up == 0\n        keep_firing_for: 2m\n");
    let o = EvalOptions::default();
    b.set("up == 0", 0, &[(DOWN, 0.0)]);
    b.set("up == 0", 4 * M, &[(DOWN, 0.0)]);
    use AlertState::*;
    let mut seen = Vec::new();
    for t in 0..8 {
        g.evaluate(&b, &o, t * M, t * M);
        seen.push(states(&g).first().map(|s| s.1));
    }
    // Fires at once (no for); gone at 1m but kept until 1m + 2m; resolved at 3m;
    // back at 4m (a new alert), gone at 5m, kept to 7m.
    assert_eq!(
        seen,
        [
            Some(Firing),
            Some(Firing),
            Some(Firing),
            Some(Inactive),
            Some(Firing),
            Some(Firing),
            Some(Firing),
            Some(Inactive)
        ]
    );
}

#[test]
fn a_limit_exceeded_fails_the_rule_and_drops_its_alerts() {
    let b = Script::default();
    let mut g = group("groups:\n  - name: g\n    limit: 1\n    rules:\n      - alert: Down\n        expr: up == 0\n");
    let o = EvalOptions::default();
    b.set("up == 0", 0, &[(DOWN, 0.0)]);
    b.set(
        "up == 0",
        M,
        &[(DOWN, 0.0), (&[("__name__", "up"), ("instance", "b")], 0.0)],
    );
    g.evaluate(&b, &o, 0, 0);
    assert_eq!(g.rules[0].health, Health::Ok);
    g.evaluate(&b, &o, M, M);
    assert_eq!(g.rules[0].health, Health::Err);
    assert_eq!(
        g.rules[0].last_error.as_deref(),
        Some("exceeded limit of 1 with 2 alerts")
    );
    assert!(g.rules[0].alerts.is_empty());
}

#[test]
fn recording_rules_feed_later_rules_and_go_stale() {
    let b = Script::default();
    let mut g = group("groups:\n  - name: g\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n        labels: {team: infra}\n      - alert: JobDown\n        expr: job:up:sum\n        annotations: {s: 'team {{ $labels.team }}'}\n      - alert: Broken\n        expr: fails\n");
    let o = EvalOptions::default();
    b.set("sum by (job) (up)", 0, &[(&[("job", "node")], 0.0)]);
    g.evaluate(&b, &o, 0, 0);
    let rec = b.written_named("job:up:sum");
    assert_eq!(
        rec,
        [(
            "job:up:sum{job=\"node\", team=\"infra\"}".to_string(),
            0,
            0.0
        )]
    );
    let a = g.rules[1]
        .alerts
        .values()
        .next()
        .expect("the alert sees the recorded series");
    assert_eq!(a.annotations["s"], "team infra");
    assert_eq!(g.rules[2].health, Health::Err);
    assert_eq!(g.rules[2].last_error.as_deref(), Some("query failed"));
    g.evaluate(&b, &o, M, M);
    let rec = b.written_named("job:up:sum");
    assert_eq!(rec.len(), 2);
    assert!(
        rec[1].2.is_nan() && rec[1].1 == M,
        "stale when the result goes: {rec:?}"
    );
}

#[test]
fn a_restart_while_pending_keeps_the_for_progress() {
    let b = Script::default();
    let yaml = "groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: up == 0\n        for: 30m\n";
    let o = EvalOptions::default();
    for t in (0..=60).map(|m| m * M) {
        b.set("up == 0", t, &[(DOWN, 0.0)]);
    }
    let mut g = group(yaml);
    for m in 0..=10 {
        g.evaluate(&b, &o, m * M, m * M);
    }
    // Down from 10m to 15m; a new process restores: 10m pending so far,
    // 20m remain, and the 5m outage does not count.
    let mut g = group(yaml);
    g.evaluate(&b, &o, 15 * M, 15 * M);
    let a = g.rules[0].alerts.values().next().unwrap();
    assert_eq!(a.active_at, 5 * M, "0 + 5m of outage");
    for m in 16..=34 {
        g.evaluate(&b, &o, m * M, m * M);
    }
    assert_eq!(states(&g)[0].1, AlertState::Pending);
    g.evaluate(&b, &o, 35 * M, 35 * M);
    assert_eq!(
        states(&g)[0].1,
        AlertState::Firing,
        "30m of pending, outage excluded"
    );
}

#[test]
fn alerts_are_sent_on_firing_every_resend_delay_and_once_resolved() {
    let b = Script::default();
    let mut g = group("groups:\n  - name: g\n    interval: 15s\n    rules:\n      - alert: Down\n        expr: up == 0\n        for: 15s\n");
    let o = EvalOptions::default();
    for t in 0..=5 {
        b.set("up == 0", t * 15 * S, &[(DOWN, 0.0)]);
    }
    let mut sent = Vec::new();
    for t in 0..=8 {
        let ts = t * 15 * S;
        g.evaluate(&b, &o, ts, ts);
        for a in g.alerts_to_send(&o, ts) {
            sent.push((ts / S, a.starts_at / S, a.ends_at / S));
        }
    }
    // Pending at 0 (not sent); firing at 15 s: sent, valid for 4 × 1 m;
    // not again until more than a minute after that (75 s is not); gone at
    // 90 s: resolved, sent at once.
    assert_eq!(sent[0], (15, 15, 15 + 240));
    assert_eq!(
        sent[1],
        (90, 15, 90),
        "resolved at 90 s: sent at once, ending then"
    );
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(g.alerts_to_send(&o, 100 * S).is_empty());
    assert_eq!(
        g.alerts_to_send(&o, 160 * S).len(),
        1,
        "a resolved alert is resent a minute later"
    );
}
