//! The built-in notifier's configuration, in alertmanager.yml's shape:
//! `route` (a tree: `receiver`, `group_by`, `group_wait`,
//! `group_interval`, `repeat_interval`, `matchers`, legacy `match` /
//! `match_re`, `continue`, `routes`), `receivers` (`webhook_configs`,
//! `slack_configs`, `pagerduty_configs`, `discord_configs`) and
//! `inhibit_rules`, `time_intervals` named by routes'
//! `mute_time_intervals` / `active_time_intervals`. Secrets (URLs,
//! routing keys) can come from files.

use super::time_intervals::{RawTimeIntervalSet, TimeIntervalSet};
use crate::duration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: Option<serde_yaml::Value>,
    route: RawRoute,
    #[serde(default)]
    receivers: Vec<RawReceiver>,
    #[serde(default)]
    inhibit_rules: Vec<RawInhibit>,
    #[serde(default)]
    templates: Vec<String>,
    #[serde(default)]
    time_intervals: Vec<RawTimeIntervalSet>,
    /// The older name of `time_intervals`, still accepted.
    #[serde(default)]
    mute_time_intervals: Vec<RawTimeIntervalSet>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawInhibit {
    #[serde(default)]
    source_matchers: Vec<String>,
    #[serde(default)]
    target_matchers: Vec<String>,
    #[serde(default)]
    source_match: BTreeMap<String, String>,
    #[serde(default)]
    source_match_re: BTreeMap<String, String>,
    #[serde(default)]
    target_match: BTreeMap<String, String>,
    #[serde(default)]
    target_match_re: BTreeMap<String, String>,
    #[serde(default)]
    equal: Vec<String>,
}

/// A firing alert matching `source` mutes alerts matching `target` that
/// have the same values of the `equal` labels.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub source: Vec<LabelMatch>,
    pub target: Vec<LabelMatch>,
    pub equal: Vec<String>,
}

impl InhibitRule {
    pub fn inhibits(
        &self,
        source: &BTreeMap<String, String>,
        target: &BTreeMap<String, String>,
    ) -> bool {
        self.source.iter().all(|m| m.matches(source))
            && self.target.iter().all(|m| m.matches(target))
            && self.equal.iter().all(|l| source.get(l) == target.get(l))
    }
}

fn matchers_of(
    list: &[String],
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
    what: &str,
) -> Result<Vec<LabelMatch>, String> {
    let mut out = Vec::new();
    for m in list {
        out.push(parse_matcher(m).map_err(|e| format!("{what}: {e}"))?);
    }
    for (k, v) in eq {
        out.push(LabelMatch::Equal(k.clone(), v.clone()));
    }
    for (k, v) in re {
        out.push(LabelMatch::Regex(
            k.clone(),
            anchored(v).map_err(|e| format!("{what}: {e}"))?,
        ));
    }
    Ok(out)
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    receiver: Option<String>,
    #[serde(default)]
    group_by: Option<Vec<String>>,
    #[serde(default)]
    group_wait: Option<String>,
    #[serde(default)]
    group_interval: Option<String>,
    #[serde(default)]
    repeat_interval: Option<String>,
    #[serde(default)]
    matchers: Vec<String>,
    #[serde(default, rename = "match")]
    match_eq: BTreeMap<String, String>,
    #[serde(default)]
    match_re: BTreeMap<String, String>,
    #[serde(default, rename = "continue")]
    continue_: bool,
    #[serde(default)]
    mute_time_intervals: Vec<String>,
    #[serde(default)]
    active_time_intervals: Vec<String>,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    name: String,
    #[serde(default)]
    webhook_configs: Vec<RawWebhook>,
    #[serde(default)]
    slack_configs: Vec<RawSlack>,
    #[serde(default)]
    pagerduty_configs: Vec<RawPagerDuty>,
    #[serde(default)]
    discord_configs: Vec<RawDiscord>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlack {
    #[serde(default)]
    api_url: Option<String>,
    #[serde(default)]
    api_url_file: Option<PathBuf>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    send_resolved: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPagerDuty {
    #[serde(default)]
    routing_key: Option<String>,
    #[serde(default)]
    routing_key_file: Option<PathBuf>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default = "yes")]
    send_resolved: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscord {
    #[serde(default)]
    webhook_url: Option<String>,
    #[serde(default)]
    webhook_url_file: Option<PathBuf>,
    #[serde(default = "yes")]
    send_resolved: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    url_file: Option<PathBuf>,
    #[serde(default = "yes")]
    send_resolved: bool,
    #[serde(default)]
    max_alerts: usize,
}

fn yes() -> bool {
    true
}

/// One label matcher of a route.
#[derive(Debug, Clone)]
pub enum LabelMatch {
    Equal(String, String),
    NotEqual(String, String),
    Regex(String, regex::Regex),
    NotRegex(String, regex::Regex),
}

impl LabelMatch {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let get = |n: &str| labels.get(n).map_or("", String::as_str);
        match self {
            LabelMatch::Equal(n, v) => get(n) == v,
            LabelMatch::NotEqual(n, v) => get(n) != v,
            LabelMatch::Regex(n, r) => r.is_match(get(n)),
            LabelMatch::NotRegex(n, r) => !r.is_match(get(n)),
        }
    }

    /// As Alertmanager prints it in group keys.
    pub fn show(&self) -> String {
        match self {
            LabelMatch::Equal(n, v) => format!("{n}={v:?}"),
            LabelMatch::NotEqual(n, v) => format!("{n}!={v:?}"),
            LabelMatch::Regex(n, r) => format!("{n}=~{:?}", strip_anchors(r.as_str())),
            LabelMatch::NotRegex(n, r) => format!("{n}!~{:?}", strip_anchors(r.as_str())),
        }
    }
}

fn strip_anchors(s: &str) -> &str {
    s.strip_prefix("^(?:")
        .and_then(|r| r.strip_suffix(")$"))
        .unwrap_or(s)
}

fn anchored(re: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{re})$")).map_err(|e| format!("invalid regex {re:?}: {e}"))
}

/// `name="value"`, `name!=value`, `name=~"re"`, `name!~re` (quotes optional).
pub fn parse_matcher(s: &str) -> Result<LabelMatch, String> {
    let s = s.trim();
    let ops = ["=~", "!~", "!=", "="];
    let (at, op) = ops
        .iter()
        .filter_map(|op| s.find(op).map(|i| (i, *op)))
        .min_by_key(|(i, op)| (*i, std::cmp::Reverse(op.len())))
        .ok_or_else(|| format!("matcher {s:?}: no operator (=, !=, =~, !~)"))?;
    let name = s[..at].trim();
    if !tsdb::labels::is_valid_label_name(name) {
        return Err(format!("matcher {s:?}: invalid label name {name:?}"));
    }
    let raw = s[at + op.len()..].trim();
    let value = if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        serde_yaml::from_str::<String>(raw).map_err(|e| format!("matcher {s:?}: {e}"))?
    } else {
        raw.to_string()
    };
    let name = name.to_string();
    Ok(match op {
        "=" => LabelMatch::Equal(name, value),
        "!=" => LabelMatch::NotEqual(name, value),
        "=~" => LabelMatch::Regex(name, anchored(&value)?),
        _ => LabelMatch::NotRegex(name, anchored(&value)?),
    })
}

/// How a route groups its alerts.
#[derive(Debug, Clone)]
pub enum GroupBy {
    Labels(Vec<String>),
    /// `group_by: ['...']`: every label (each alert alone).
    All,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub receiver: String,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub matchers: Vec<LabelMatch>,
    pub continue_: bool,
    /// Named time intervals when this route sends nothing (not inherited).
    pub mute_time_intervals: Vec<String>,
    /// If any, the route sends only inside one of them (not inherited).
    pub active_time_intervals: Vec<String>,
    pub routes: Vec<Route>,
    /// `{}` for the root, `{}/{matchers}` below it, as in group keys.
    pub key: String,
}

/// What a receiver posts, and in which shape.
#[derive(Debug, Clone)]
pub enum IntegrationKind {
    /// Alertmanager's webhook payload, version 4.
    Webhook { max_alerts: usize },
    /// A Slack incoming webhook: one attachment, colored by severity.
    Slack {
        channel: Option<String>,
        username: Option<String>,
    },
    /// PagerDuty Events API v2: trigger and resolve by a dedup key.
    PagerDuty {
        routing_key: String,
        severity: Option<String>,
    },
    /// A Discord webhook: one embed.
    Discord,
}

/// One of a receiver's `*_configs`.
#[derive(Debug, Clone)]
pub struct Integration {
    pub url: String,
    pub send_resolved: bool,
    pub kind: IntegrationKind,
}

#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: String,
    pub integrations: Vec<Integration>,
}

/// A secret given inline or in a file (kept out of the config and logs).
fn secret(
    inline: Option<String>,
    file: Option<PathBuf>,
    field: &str,
    what: &str,
) -> Result<String, String> {
    match (inline, file) {
        (Some(v), None) => expand_env(&v, &|name| std::env::var(name).ok())
            .map_err(|name| format!("{what}: {field}: environment variable {name} is not set")),
        (None, Some(f)) => Ok(std::fs::read_to_string(&f)
            .map_err(|e| format!("{what}: {field}_file {}: {e}", f.display()))?
            .trim()
            .to_string()),
        (Some(_), Some(_)) => Err(format!(
            "{what}: {field} and {field}_file are mutually exclusive"
        )),
        (None, None) => Err(format!(
            "{what}: one of {field} or {field}_file must be configured"
        )),
    }
}

/// Replaces each `${NAME}` with the variable's value (how a Kubernetes
/// Secret given as an environment variable reaches a secret field);
/// returns the first name that `lookup` does not know.
fn expand_env(v: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find("${") {
        let Some(len) = rest[i + 2..].find('}') else {
            break;
        };
        let name = &rest[i + 2..i + 2 + len];
        out.push_str(&rest[..i]);
        out.push_str(&lookup(name).ok_or_else(|| name.to_string())?);
        rest = &rest[i + 3 + len..];
    }
    out.push_str(rest);
    Ok(out)
}

fn http_url(url: String, what: &str) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url)
    } else {
        Err(format!(
            "{what}: the URL must start with http:// or https://"
        ))
    }
}

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub route: Route,
    pub receivers: BTreeMap<String, Receiver>,
    pub inhibit_rules: Vec<InhibitRule>,
    pub time_intervals: BTreeMap<String, TimeIntervalSet>,
}

fn dur(v: &Option<String>, what: &str, inherited: Duration) -> Result<Duration, String> {
    match v {
        Some(s) => duration::parse(s).map_err(|e| format!("{what}: {e}")),
        None => Ok(inherited),
    }
}

fn build_route(raw: RawRoute, parent: Option<&Route>, path: &str) -> Result<Route, String> {
    let mut matchers = Vec::new();
    for m in &raw.matchers {
        matchers.push(parse_matcher(m).map_err(|e| format!("{path}: {e}"))?);
    }
    for (k, v) in &raw.match_eq {
        matchers.push(LabelMatch::Equal(k.clone(), v.clone()));
    }
    for (k, v) in &raw.match_re {
        matchers.push(LabelMatch::Regex(
            k.clone(),
            anchored(v).map_err(|e| format!("{path}: {e}"))?,
        ));
    }
    let receiver = match (&raw.receiver, parent) {
        (Some(r), _) => r.clone(),
        (None, Some(p)) => p.receiver.clone(),
        (None, None) => return Err("route: the root route needs a receiver".into()),
    };
    let group_by = match (&raw.group_by, parent) {
        (Some(g), _) if g.iter().any(|l| l == "...") => GroupBy::All,
        (Some(g), _) => {
            for l in g {
                if !tsdb::labels::is_valid_label_name(l) {
                    return Err(format!("{path}: group_by: invalid label name {l:?}"));
                }
            }
            GroupBy::Labels(g.clone())
        }
        (None, Some(p)) => p.group_by.clone(),
        (None, None) => GroupBy::Labels(Vec::new()),
    };
    let key = match parent {
        None => "{}".to_string(),
        Some(p) => {
            let shown: Vec<String> = matchers.iter().map(LabelMatch::show).collect();
            format!("{}/{{{}}}", p.key, shown.join(","))
        }
    };
    let mut route = Route {
        receiver,
        group_by,
        group_wait: dur(
            &raw.group_wait,
            &format!("{path}: group_wait"),
            parent.map_or(Duration::from_secs(30), |p| p.group_wait),
        )?,
        group_interval: dur(
            &raw.group_interval,
            &format!("{path}: group_interval"),
            parent.map_or(Duration::from_secs(300), |p| p.group_interval),
        )?,
        repeat_interval: dur(
            &raw.repeat_interval,
            &format!("{path}: repeat_interval"),
            parent.map_or(Duration::from_secs(4 * 3600), |p| p.repeat_interval),
        )?,
        matchers,
        continue_: raw.continue_,
        mute_time_intervals: raw.mute_time_intervals,
        active_time_intervals: raw.active_time_intervals,
        routes: Vec::new(),
        key,
    };
    if parent.is_none()
        && !(route.mute_time_intervals.is_empty() && route.active_time_intervals.is_empty())
    {
        return Err(
            "route: the root route cannot have mute_time_intervals or active_time_intervals".into(),
        );
    }
    if route.group_interval.is_zero() {
        return Err(format!("{path}: group_interval cannot be zero"));
    }
    if route.repeat_interval.is_zero() {
        return Err(format!("{path}: repeat_interval cannot be zero"));
    }
    let mut children = Vec::new();
    for (i, child) in raw.routes.into_iter().enumerate() {
        children.push(build_route(
            child,
            Some(&route),
            &format!("{path}.routes[{i}]"),
        )?);
    }
    route.routes = children;
    Ok(route)
}

/// Every time interval name routes refer to, with the route's path.
fn intervals_used<'a>(r: &'a Route, out: &mut Vec<&'a str>) {
    out.extend(r.mute_time_intervals.iter().map(String::as_str));
    out.extend(r.active_time_intervals.iter().map(String::as_str));
    for c in &r.routes {
        intervals_used(c, out);
    }
}

fn receivers_used(r: &Route, out: &mut Vec<String>) {
    out.push(r.receiver.clone());
    for c in &r.routes {
        receivers_used(c, out);
    }
}

impl DispatchConfig {
    pub fn load(path: &Path) -> Result<DispatchConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<DispatchConfig, String> {
        let raw: RawConfig = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let _ = (&raw.global, &raw.templates);
        let route = build_route(raw.route, None, "route")?;
        let mut receivers = BTreeMap::new();
        for r in raw.receivers {
            let mut integrations = Vec::new();
            for (i, w) in r.webhook_configs.into_iter().enumerate() {
                let what = format!("receiver {:?}: webhook_configs[{i}]", r.name);
                let url = http_url(secret(w.url, w.url_file, "url", &what)?, &what)?;
                integrations.push(Integration {
                    url,
                    send_resolved: w.send_resolved,
                    kind: IntegrationKind::Webhook {
                        max_alerts: w.max_alerts,
                    },
                });
            }
            for (i, c) in r.slack_configs.into_iter().enumerate() {
                let what = format!("receiver {:?}: slack_configs[{i}]", r.name);
                let url = http_url(secret(c.api_url, c.api_url_file, "api_url", &what)?, &what)?;
                integrations.push(Integration {
                    url,
                    send_resolved: c.send_resolved,
                    kind: IntegrationKind::Slack {
                        channel: c.channel,
                        username: c.username,
                    },
                });
            }
            for (i, c) in r.pagerduty_configs.into_iter().enumerate() {
                let what = format!("receiver {:?}: pagerduty_configs[{i}]", r.name);
                let routing_key = secret(c.routing_key, c.routing_key_file, "routing_key", &what)?;
                let url = http_url(
                    c.url
                        .unwrap_or_else(|| "https://events.pagerduty.com/v2/enqueue".into()),
                    &what,
                )?;
                integrations.push(Integration {
                    url,
                    send_resolved: c.send_resolved,
                    kind: IntegrationKind::PagerDuty {
                        routing_key,
                        severity: c.severity,
                    },
                });
            }
            for (i, c) in r.discord_configs.into_iter().enumerate() {
                let what = format!("receiver {:?}: discord_configs[{i}]", r.name);
                let url = http_url(
                    secret(c.webhook_url, c.webhook_url_file, "webhook_url", &what)?,
                    &what,
                )?;
                integrations.push(Integration {
                    url,
                    send_resolved: c.send_resolved,
                    kind: IntegrationKind::Discord,
                });
            }
            if receivers
                .insert(
                    r.name.clone(),
                    Receiver {
                        name: r.name.clone(),
                        integrations,
                    },
                )
                .is_some()
            {
                return Err(format!(
                    "notification config name {:?} is not unique",
                    r.name
                ));
            }
        }
        let mut used = Vec::new();
        receivers_used(&route, &mut used);
        for u in used {
            if !receivers.contains_key(&u) {
                return Err(format!("undefined receiver {u:?} used in route"));
            }
        }
        let mut inhibit_rules = Vec::new();
        for (i, r) in raw.inhibit_rules.iter().enumerate() {
            let what = format!("inhibit_rules[{i}]");
            inhibit_rules.push(InhibitRule {
                source: matchers_of(
                    &r.source_matchers,
                    &r.source_match,
                    &r.source_match_re,
                    &what,
                )?,
                target: matchers_of(
                    &r.target_matchers,
                    &r.target_match,
                    &r.target_match_re,
                    &what,
                )?,
                equal: r.equal.clone(),
            });
        }
        let mut time_intervals = BTreeMap::new();
        let sets = raw
            .time_intervals
            .into_iter()
            .map(|t| (t, "time_intervals"))
            .chain(
                raw.mute_time_intervals
                    .into_iter()
                    .map(|t| (t, "mute_time_intervals")),
            );
        for (t, what) in sets {
            let set = TimeIntervalSet::parse(t, what)?;
            if time_intervals.contains_key(&set.name) {
                return Err(format!(
                    "{what}: time interval {:?} is not unique",
                    set.name
                ));
            }
            time_intervals.insert(set.name.clone(), set);
        }
        let mut used = Vec::new();
        intervals_used(&route, &mut used);
        for u in used {
            if !time_intervals.contains_key(u) {
                return Err(format!("undefined time interval {u:?} used in route"));
            }
        }
        Ok(DispatchConfig {
            route,
            receivers,
            inhibit_rules,
            time_intervals,
        })
    }
}

impl DispatchConfig {
    /// Whether `route` may notify at `now_ms`: outside all of its mute
    /// intervals and, if it names active ones, inside one of them.
    pub fn route_is_active(&self, route: &Route, now_ms: i64) -> bool {
        let inside = |name: &String| {
            self.time_intervals
                .get(name)
                .is_some_and(|t| t.contains(now_ms))
        };
        !route.mute_time_intervals.iter().any(inside)
            && (route.active_time_intervals.is_empty()
                || route.active_time_intervals.iter().any(inside))
    }
}

impl Route {
    /// The routes an alert goes to: the deepest matching children, in
    /// order, stopping at the first unless it says `continue`.
    pub fn matching<'a>(&'a self, labels: &BTreeMap<String, String>) -> Vec<&'a Route> {
        if !self.matchers.iter().all(|m| m.matches(labels)) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for c in &self.routes {
            let found = c.matching(labels);
            if found.is_empty() {
                continue;
            }
            out.extend(found);
            if !c.continue_ {
                break;
            }
        }
        if out.is_empty() {
            out.push(self);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "route:\n  receiver: default\n  group_by: [alertname]\n  group_wait: 10s\n  routes:\n    - matchers: ['severity=\"page\"']\n      receiver: pager\n      continue: true\n    - match_re: {team: 'db|infra'}\n      receiver: infra\n      group_by: ['...']\nreceivers:\n  - name: default\n    webhook_configs: [{url: 'http://a/'}]\n  - name: pager\n    webhook_configs: [{url: 'http://b/'}]\n  - name: infra\n    webhook_configs: [{url: 'http://c/', send_resolved: false}]\n";

    #[test]
    fn secrets_expand_environment_variables() {
        let env = |n: &str| (n == "HOOK").then(|| "https://hooks.example/T0/B0".to_string());
        assert_eq!(
            expand_env("${HOOK}", &env).as_deref(),
            Ok("https://hooks.example/T0/B0")
        );
        assert_eq!(
            expand_env("a${HOOK}b$x", &env).as_deref(),
            Ok("ahttps://hooks.example/T0/B0b$x")
        );
        assert_eq!(expand_env("${NOPE}", &env), Err("NOPE".to_string()));
        let e = DispatchConfig::parse("route: {receiver: r}\nreceivers:\n  - name: r\n    slack_configs: [{api_url: '${VIGIL_TEST_UNSET_VARIABLE}'}]\n").unwrap_err();
        assert!(
            e.contains("slack_configs[0]: api_url: environment variable VIGIL_TEST_UNSET_VARIABLE is not set"),
            "{e}"
        );
    }

    #[test]
    fn time_intervals_mute_and_activate_routes() {
        let c = DispatchConfig::parse("route:\n  receiver: r\n  routes:\n    - matchers: [a=\"1\"]\n      mute_time_intervals: [weekend]\n    - matchers: [a=\"2\"]\n      active_time_intervals: [weekend]\ntime_intervals:\n  - name: weekend\n    time_intervals: [{weekdays: ['saturday', 'sunday']}]\nreceivers: [{name: r}]\n").expect("parses");
        let (muted, active) = (&c.route.routes[0], &c.route.routes[1]);
        let saturday = 1_796_428_800_000; // 2026-12-05T00:00Z
        let wednesday = saturday + 4 * 86_400_000;
        assert!(!c.route_is_active(muted, saturday));
        assert!(c.route_is_active(muted, wednesday));
        assert!(c.route_is_active(active, saturday));
        assert!(!c.route_is_active(active, wednesday));
        assert!(c.route_is_active(&c.route, saturday), "the root has none");
        let e = DispatchConfig::parse("route:\n  receiver: r\n  routes: [{mute_time_intervals: [nope]}]\nreceivers: [{name: r}]\n").unwrap_err();
        assert!(e.contains("undefined time interval \"nope\""), "{e}");
        let e = DispatchConfig::parse("route: {receiver: r, active_time_intervals: [w]}\ntime_intervals: [{name: w}]\nreceivers: [{name: r}]\n").unwrap_err();
        assert!(e.contains("root route cannot"), "{e}");
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn routes_match_with_continue_and_inherit_settings() {
        let c = DispatchConfig::parse(CFG).unwrap();
        let names = |l: &[(&str, &str)]| -> Vec<String> {
            c.route
                .matching(&labels(l))
                .iter()
                .map(|r| r.receiver.clone())
                .collect()
        };
        assert_eq!(names(&[("alertname", "A")]), ["default"]);
        assert_eq!(
            names(&[("severity", "page"), ("team", "db")]),
            ["pager", "infra"]
        );
        assert_eq!(names(&[("team", "infra")]), ["infra"]);
        assert_eq!(names(&[("team", "infrastructure")]), ["default"]);
        let pager = &c.route.routes[0];
        assert_eq!(pager.group_wait, Duration::from_secs(10), "inherited");
        assert_eq!(pager.key, "{}/{severity=\"page\"}");
        assert!(matches!(c.route.routes[1].group_by, GroupBy::All));
        assert!(!c.receivers["infra"].integrations[0].send_resolved);
    }

    #[test]
    fn config_errors_say_what_and_where() {
        let e = DispatchConfig::parse("route:\n  receiver: nope\nreceivers: []\n").unwrap_err();
        assert!(e.contains("undefined receiver \"nope\""), "{e}");
        let e = DispatchConfig::parse(
            "route:\n  receiver: a\n  routes:\n    - matchers: ['sev~x']\nreceivers: [{name: a}]\n",
        )
        .unwrap_err();
        assert!(e.contains("route.routes[0]: matcher \"sev~x\""), "{e}");
        let e = DispatchConfig::parse(
            "route:\n  receiver: a\n  group_wait: 5x\nreceivers: [{name: a}]\n",
        )
        .unwrap_err();
        assert!(e.contains("route: group_wait: not a valid duration"), "{e}");
        let e = DispatchConfig::parse(
            "route:\n  receiver: a\nreceivers: [{name: a, webhook_configs: [{}]}]\n",
        )
        .unwrap_err();
        assert!(e.contains("one of url or url_file"), "{e}");
        let e = DispatchConfig::parse(
            "route:\n  receiver: a\nreceivers: [{name: a, pagerduty_configs: [{}]}]\n",
        )
        .unwrap_err();
        assert!(
            e.contains("pagerduty_configs[0]: one of routing_key or routing_key_file"),
            "{e}"
        );
        let e = DispatchConfig::parse("route:\n  receiver: a\nreceivers: [{name: a, slack_configs: [{api_url: 'hooks.slack.com/x'}]}]\n").unwrap_err();
        assert!(
            e.contains("slack_configs[0]: the URL must start with http"),
            "{e}"
        );
        assert!(parse_matcher("a=~\"x|y\"")
            .unwrap()
            .matches(&labels(&[("a", "y")])));
        assert!(parse_matcher("a!=b").unwrap().matches(&labels(&[])));
    }
}
