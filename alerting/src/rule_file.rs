//! Prometheus rule files: groups of recording and alerting rules, read and
//! checked as `promtool check rules` checks them, with errors naming the
//! file, the group and the rule.

use crate::duration;
use crate::template::Template;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RuleFileError {
    #[error("{path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Group { path: PathBuf, message: String },
    #[error("{path}: group {group:?}, rule {index}, {name:?}: {message}")]
    Rule {
        path: PathBuf,
        group: String,
        /// 1-based, as promtool counts.
        index: usize,
        name: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    query_offset: Option<String>,
    #[serde(default)]
    limit: usize,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    expr: Option<serde_yaml::Value>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// The query language of a rule file's expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    PromQL,
    /// Loki's ruler format: the same YAML, LogQL metric queries.
    LogQL,
}

/// A group as loaded: its rules in file order.
#[derive(Debug, Clone)]
pub struct RuleGroup {
    pub file: PathBuf,
    pub lang: Lang,
    pub name: String,
    /// `None`: the server's `evaluation_interval`.
    pub interval: Option<Duration>,
    pub query_offset: Option<Duration>,
    /// Most alerts (or series) a rule may produce; 0 = no limit.
    pub limit: usize,
    /// Added to every rule's labels (a rule's own win).
    pub labels: BTreeMap<String, String>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    Recording {
        record: String,
    },
    Alerting {
        alert: String,
        for_: Duration,
        keep_firing_for: Duration,
        /// Parsed once; rendered for each alert.
        annotations: Vec<(String, Template)>,
    },
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: RuleKind,
    pub lang: Lang,
    pub expr: String,
    /// Label templates (alerting) or values (recording), group labels merged.
    pub labels: Vec<(String, Template)>,
}

impl Rule {
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording { record } => record,
            RuleKind::Alerting { alert, .. } => alert,
        }
    }
}

fn yaml_message(e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(l) => format!("yaml: line {}: {}", l.line(), e),
        None => format!("yaml: {e}"),
    }
}

/// Reads and checks one Prometheus rule file.
pub fn load(path: &Path) -> Result<Vec<RuleGroup>, RuleFileError> {
    load_lang(path, Lang::PromQL)
}

/// Reads and checks one rule file of `lang`.
pub fn load_lang(path: &Path, lang: Lang) -> Result<Vec<RuleGroup>, RuleFileError> {
    let text = std::fs::read_to_string(path).map_err(|error| RuleFileError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse_lang(path, &text, lang)
}

/// Checks Prometheus rule file text (`path` names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<Vec<RuleGroup>, RuleFileError> {
    parse_lang(path, text, Lang::PromQL)
}

/// Checks rule file text whose expressions are in `lang`.
pub fn parse_lang(path: &Path, text: &str, lang: Lang) -> Result<Vec<RuleGroup>, RuleFileError> {
    let raw: RawFile = if text.trim().is_empty() {
        RawFile { groups: Vec::new() }
    } else {
        serde_yaml::from_str(text).map_err(|e| RuleFileError::Yaml {
            path: path.to_path_buf(),
            message: yaml_message(&e),
        })?
    };
    let group_err = |message: String| RuleFileError::Group {
        path: path.to_path_buf(),
        message,
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.groups.len());
    for g in raw.groups {
        if g.name.is_empty() {
            return Err(group_err("Groupname must not be empty".into()));
        }
        if !seen.insert(g.name.clone()) {
            return Err(group_err(format!(
                "groupname: {:?} is repeated in the same file",
                g.name
            )));
        }
        let dur = |what: &str, v: &Option<String>| -> Result<Option<Duration>, RuleFileError> {
            v.as_deref()
                .map(|s| {
                    duration::parse(s)
                        .map_err(|e| group_err(format!("group {:?}: {what}: {e}", g.name)))
                })
                .transpose()
        };
        let interval = dur("interval", &g.interval)?;
        let query_offset = dur("query_offset", &g.query_offset)?;
        for name in g.labels.keys() {
            if !tsdb::labels::is_valid_label_name(name) {
                return Err(group_err(format!(
                    "group {:?}: invalid label name: {name}",
                    g.name
                )));
            }
        }
        let mut rules = Vec::with_capacity(g.rules.len());
        for (i, r) in g.rules.into_iter().enumerate() {
            let name = r.record.clone().or(r.alert.clone()).unwrap_or_default();
            let rule_err = |message: String| RuleFileError::Rule {
                path: path.to_path_buf(),
                group: g.name.clone(),
                index: i + 1,
                name: name.clone(),
                message,
            };
            rules.push(check_rule(r, &g.labels, lang).map_err(rule_err)?);
        }
        out.push(RuleGroup {
            file: path.to_path_buf(),
            lang,
            name: g.name,
            interval,
            query_offset,
            limit: g.limit,
            labels: g.labels,
            rules,
        });
    }
    Ok(out)
}

fn check_rule(
    r: RawRule,
    group_labels: &BTreeMap<String, String>,
    lang: Lang,
) -> Result<Rule, String> {
    let has = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    match (has(&r.record), has(&r.alert)) {
        (true, true) => return Err("only one of 'record' and 'alert' must be set".into()),
        (false, false) => return Err("one of 'record' or 'alert' must be set".into()),
        _ => {}
    }
    let expr = match &r.expr {
        None | Some(serde_yaml::Value::Null) => String::new(),
        Some(serde_yaml::Value::String(s)) => s.clone(),
        Some(serde_yaml::Value::Number(n)) => n.to_string(),
        Some(serde_yaml::Value::Bool(b)) => b.to_string(),
        Some(_) => return Err("field 'expr' must be a string".into()),
    };
    if expr.trim().is_empty() {
        return Err("field 'expr' must be set in rule".into());
    }
    match lang {
        Lang::PromQL => {
            promql::syntax_error::parse(&expr)
                .map_err(|e| format!("could not parse expression: {e}"))?;
        }
        Lang::LogQL => {
            let parsed = logstore::logql::parse(&expr)
                .map_err(|e| format!("could not parse expression: {e}"))?;
            if matches!(parsed, logstore::logql::ast::Expr::Log(_)) {
                return Err(
                    "a log query is not a rule expression: use a metric query, e.g. sum(rate({app=\"x\"} |= \"error\" [5m]))"
                        .into(),
                );
            }
        }
    }
    let mut labels: BTreeMap<String, String> = group_labels.clone();
    for (k, v) in r.labels.iter().flatten() {
        labels.insert(k.clone(), v.clone());
    }
    for name in labels.keys() {
        if !tsdb::labels::is_valid_label_name(name) || name == tsdb::METRIC_NAME {
            return Err(format!("invalid label name: {name}"));
        }
    }
    let kind = if let Some(record) = r.record.filter(|s| !s.is_empty()) {
        if !tsdb::labels::is_valid_metric_name(&record) {
            return Err(format!("invalid recording rule name: {record}"));
        }
        if r.for_.is_some() {
            return Err("invalid field 'for' in recording rule".into());
        }
        if r.keep_firing_for.is_some() {
            return Err("invalid field 'keep_firing_for' in recording rule".into());
        }
        if r.annotations.is_some() {
            return Err("invalid field 'annotations' in recording rule".into());
        }
        RuleKind::Recording { record }
    } else {
        let alert = r.alert.unwrap_or_default();
        let dur = |v: &Option<String>| -> Result<Duration, String> {
            v.as_deref().map_or(Ok(Duration::ZERO), duration::parse)
        };
        let for_ = dur(&r.for_)?;
        let keep_firing_for = dur(&r.keep_firing_for)?;
        let mut annotations = Vec::new();
        for (k, v) in r.annotations.iter().flatten() {
            if !tsdb::labels::is_valid_label_name(k) {
                return Err(format!("invalid annotation name: {k}"));
            }
            let t = Template::parse(&format!("__alert_{alert}"), v)
                .map_err(|e| format!("annotation {k:?}: {e}"))?;
            annotations.push((k.clone(), t));
        }
        RuleKind::Alerting {
            alert,
            for_,
            keep_firing_for,
            annotations,
        }
    };
    let alerting = matches!(kind, RuleKind::Alerting { .. });
    let mut label_templates = Vec::with_capacity(labels.len());
    for (k, v) in labels {
        let t = if alerting {
            Template::parse(&format!("__alert_{}", name_of(&kind)), &v)
                .map_err(|e| format!("label {k:?}: {e}"))?
        } else {
            Template::literal(&v)
        };
        label_templates.push((k, t));
    }
    Ok(Rule {
        kind,
        lang,
        expr,
        labels: label_templates,
    })
}

fn name_of(kind: &RuleKind) -> &str {
    match kind {
        RuleKind::Recording { record } => record,
        RuleKind::Alerting { alert, .. } => alert,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("r.yml"), text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_file_group_and_rule() {
        let e = err("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n");
        assert!(
            e.starts_with("r.yml: group \"g\", rule 1, \"A\": could not parse expression: "),
            "{e}"
        );
        let e = err("groups:\n  - name: g\n    rules:\n      - record: ok\n        expr: up\n      - record: 'bad name'\n        expr: up\n");
        assert_eq!(
            e,
            "r.yml: group \"g\", rule 2, \"bad name\": invalid recording rule name: bad name"
        );
        let e = err("groups:\n  - name: g\n    rules: []\n  - name: g\n");
        assert_eq!(e, "r.yml: groupname: \"g\" is repeated in the same file");
        let e = err("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: up\n        for: 1m\n");
        assert!(e.ends_with("invalid field 'for' in recording rule"), "{e}");
        let e = err("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations: {s: '{{ $labels.x '}\n");
        assert!(
            e.contains("annotation \"s\": template: __alert_A:1: unclosed action"),
            "{e}"
        );
        let e = err("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        unknown: 1\n");
        assert!(e.contains("unknown field `unknown`"), "{e}");
        let e = err("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: abc\n");
        assert!(e.contains("not a valid duration string: \"abc\""), "{e}");
    }

    #[test]
    fn groups_and_rules_load() {
        let g = parse(
            Path::new("r.yml"),
            "groups:\n  - name: g\n    interval: 30s\n    limit: 5\n    labels: {team: a}\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: Down\n        expr: up == 0\n        for: 5m\n        keep_firing_for: 1m\n        labels: {team: b}\n        annotations: {summary: '{{ $labels.instance }} is down'}\n",
        )
        .unwrap();
        assert_eq!(g[0].interval, Some(Duration::from_secs(30)));
        assert_eq!(g[0].rules.len(), 2);
        match &g[0].rules[1].kind {
            RuleKind::Alerting {
                for_,
                keep_firing_for,
                ..
            } => {
                assert_eq!(*for_, Duration::from_secs(300));
                assert_eq!(*keep_firing_for, Duration::from_secs(60));
            }
            k => panic!("{k:?}"),
        }
        let labels: Vec<&str> = g[0].rules[1]
            .labels
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(labels, ["team"]);
        assert_eq!(g[0].rules[1].labels[0].1.source(), "b");
    }
}
