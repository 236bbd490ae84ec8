//! Grafana dashboard JSON (schema of Grafana 7 to 11, including the older
//! `graph`/`singlestat` panels and `rows`) into a Vigil dashboard. What has
//! no equivalent is listed, never dropped without a word.

use crate::model::{
    Dashboard, Panel, PanelKind, Source, Target, Threshold, Variable, VariableKind,
};
use serde_json::Value;

/// The converted dashboard and what could not be carried over, one
/// sentence each, naming the panel or variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub dashboard: Dashboard,
    pub unsupported: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a Grafana dashboard: {0}")]
    NotADashboard(String),
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A uid Vigil accepts, from Grafana's uid or the title.
fn make_uid(uid: &str, title: &str) -> String {
    let base = if uid.is_empty() { title } else { uid };
    crate::validate::uid_from(base).unwrap_or_else(|| "imported".into())
}

/// Grafana unit id → Vigil unit, or `None` when Vigil has no such unit.
fn unit(u: &str) -> Option<&'static str> {
    Some(match u {
        "" | "none" | "short" => "none",
        "bytes" | "decbytes" => "bytes",
        "Bps" | "binBps" | "decBps" => "bytes_per_second",
        "s" | "dtdurations" => "seconds",
        "percent" => "percent",
        "percentunit" => "percent_unit",
        "reqps" | "ops" | "rps" | "wps" | "iops" | "cps" | "pps" | "opm" => "per_second",
        _ => return None,
    })
}

/// Grafana's colour names (`dark-red`, `semi-dark-orange`, `#EAB839`).
fn color(c: &str) -> Option<String> {
    let base = c
        .trim_start_matches("super-light-")
        .trim_start_matches("semi-dark-")
        .trim_start_matches("dark-")
        .trim_start_matches("light-");
    match base {
        "green" | "yellow" | "orange" | "red" | "blue" | "purple" => Some(base.into()),
        h if h.len() == 7
            && h.starts_with('#')
            && h[1..].bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Some(h.to_ascii_lowercase())
        }
        _ => None,
    }
}

/// `/regex/flags` → `regex`.
fn strip_regex(r: &str) -> String {
    let r = r.trim();
    if let Some(rest) = r.strip_prefix('/') {
        if let Some(end) = rest.rfind('/') {
            return rest[..end].to_string();
        }
    }
    r.to_string()
}

struct Ctx {
    unsupported: Vec<String>,
    /// Datasource variables: name → the data source type they select.
    ds_vars: Vec<(String, String)>,
}

impl Ctx {
    fn note(&mut self, s: String) {
        if !self.unsupported.contains(&s) {
            self.unsupported.push(s);
        }
    }

    /// The language a `datasource` field speaks, if Vigil has it.
    fn source(&self, ds: Option<&Value>) -> Result<Option<Source>, String> {
        let (ty, name) = match ds {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(n)) => (String::new(), n.clone()),
            Some(o) => (s(o, "type").to_string(), s(o, "uid").to_string()),
        };
        let mut ty = ty.to_ascii_lowercase();
        if ty.is_empty() || ty == "datasource" {
            let var = name
                .trim_start_matches('$')
                .trim_start_matches('{')
                .trim_end_matches('}');
            if let Some((_, t)) = self.ds_vars.iter().find(|(n, _)| n == var) {
                ty = t.clone();
            } else {
                ty = name.to_ascii_lowercase();
            }
        }
        if ty.contains("loki") {
            Ok(Some(Source::Loki))
        } else if ty.contains("prometheus") || ty.contains("prom") || ty.is_empty() {
            Ok(Some(Source::Prometheus))
        } else if ty == "-- grafana --" || ty == "grafana" || ty.contains("mixed") {
            Ok(None)
        } else {
            Err(ty)
        }
    }
}

pub fn import(json: &str) -> Result<Import, ImportError> {
    let root: Value =
        serde_json::from_str(json).map_err(|e| ImportError::NotJson(e.to_string()))?;
    // An export wrapped for the HTTP API: {"dashboard": {...}, "meta": ...}.
    let d = match root.get("dashboard") {
        Some(inner) if inner.is_object() => inner,
        _ => &root,
    };
    if !d.is_object() {
        return Err(ImportError::NotADashboard(
            "the document is not an object".into(),
        ));
    }
    if d.get("panels").is_none() && d.get("rows").is_none() {
        return Err(ImportError::NotADashboard(
            "it has neither \"panels\" nor \"rows\"".into(),
        ));
    }
    let title = match s(d, "title") {
        "" => "Imported dashboard".to_string(),
        t => t.to_string(),
    };
    let mut ctx = Ctx {
        unsupported: Vec::new(),
        ds_vars: Vec::new(),
    };
    let mut out = Dashboard {
        uid: make_uid(s(d, "uid"), &title),
        title,
        description: s(d, "description").to_string(),
        tags: d
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        time: "1h".into(),
        refresh: s(d, "refresh").to_string(),
        variables: Vec::new(),
        panels: Vec::new(),
    };
    if let Some(t) = d.get("time") {
        let (from, to) = (s(t, "from"), s(t, "to"));
        match from.strip_prefix("now-") {
            Some(r) if to == "now" || to.is_empty() => out.time = r.to_string(),
            _ => ctx.note(format!(
                "time range {from} to {to}: only \"now-X to now\" ranges are imported; the dashboard opens on the last 1h"
            )),
        }
    }
    if let Some(list) = d.pointer("/templating/list").and_then(Value::as_array) {
        for v in list {
            if s(v, "type") == "datasource" {
                ctx.ds_vars
                    .push((s(v, "name").to_string(), s(v, "query").to_ascii_lowercase()));
            }
        }
        for v in list {
            if let Some(var) = variable(v, &mut ctx) {
                out.variables.push(var);
            }
        }
    }
    if let Some(a) = d.pointer("/annotations/list").and_then(Value::as_array) {
        let custom = a
            .iter()
            .filter(|x| x.get("builtIn").and_then(Value::as_i64) != Some(1))
            .count();
        if custom > 0 {
            ctx.note(format!("{custom} annotation queries are not imported"));
        }
    }
    let mut raw_panels: Vec<&Value> = Vec::new();
    if let Some(ps) = d.get("panels").and_then(Value::as_array) {
        for p in ps {
            if s(p, "type") == "row" {
                // A collapsed row holds its panels; an open one is followed by them.
                if let Some(inner) = p.get("panels").and_then(Value::as_array) {
                    raw_panels.extend(inner);
                }
            } else {
                raw_panels.push(p);
            }
        }
    }
    // Grafana before 5: rows[].panels[] with `span` in twelfths.
    if let Some(rows) = d.get("rows").and_then(Value::as_array) {
        for r in rows {
            if let Some(inner) = r.get("panels").and_then(Value::as_array) {
                raw_panels.extend(inner);
            }
        }
    }
    for p in raw_panels {
        if let Some(panel) = panel(p, &mut ctx) {
            out.panels.push(panel);
        }
    }
    Ok(Import {
        dashboard: out,
        unsupported: ctx.unsupported,
    })
}

fn variable(v: &Value, ctx: &mut Ctx) -> Option<Variable> {
    let name = s(v, "name").to_string();
    let ty = s(v, "type");
    let query = match v.get("query") {
        Some(Value::String(q)) => q.clone(),
        Some(o @ Value::Object(_)) => s(o, "query").to_string(),
        _ => String::new(),
    };
    let query = if query.is_empty() {
        s(v, "definition").to_string()
    } else {
        query
    };
    let mut var = Variable {
        name: name.clone(),
        label: s(v, "label").to_string(),
        kind: VariableKind::Query,
        query: query.trim().to_string(),
        regex: strip_regex(s(v, "regex")),
        multi: v.get("multi").and_then(Value::as_bool).unwrap_or(false),
        include_all: v
            .get("includeAll")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    match ty {
        "query" => {
            let q = var.query.as_str();
            if !(q.starts_with("label_values(") || q.starts_with("query_result(")) {
                ctx.note(format!(
                    "variable {name}: query {q:?} is not label_values(...) or query_result(...)"
                ));
                return None;
            }
            if let Err(t) = ctx.source(v.get("datasource")) {
                ctx.note(format!(
                    "variable {name}: data source type {t} is not supported"
                ));
                return None;
            }
            Some(var)
        }
        "custom" | "interval" | "constant" | "textbox" => {
            var.kind = VariableKind::Custom;
            if ty == "textbox" || ty == "constant" {
                var.multi = false;
                var.include_all = false;
            }
            if var.query.is_empty() {
                ctx.note(format!("variable {name} ({ty}): it has no values"));
                return None;
            }
            Some(var)
        }
        "datasource" => None,
        other => {
            ctx.note(format!("variable {name}: type {other} is not supported"));
            None
        }
    }
}

fn panel(p: &Value, ctx: &mut Ctx) -> Option<Panel> {
    let title = s(p, "title").to_string();
    let ty = s(p, "type");
    let name = if title.is_empty() {
        format!("a {ty} panel")
    } else {
        format!("panel {title:?}")
    };
    let kind = match ty {
        "timeseries" | "graph" => PanelKind::Timeseries,
        "stat" | "singlestat" => PanelKind::Stat,
        "gauge" => PanelKind::Gauge,
        "bargauge" => PanelKind::Bar,
        "table" | "table-old" => PanelKind::Table,
        "heatmap" => PanelKind::Heatmap,
        "logs" => PanelKind::Logs,
        other => {
            ctx.note(format!("{name}: panel type {other} is not supported"));
            return None;
        }
    };
    let defaults = p.pointer("/fieldConfig/defaults");
    let grafana_unit = defaults
        .map(|d| s(d, "unit"))
        .filter(|u| !u.is_empty())
        .or_else(|| p.pointer("/yaxes/0/format").and_then(Value::as_str))
        .or_else(|| p.get("format").and_then(Value::as_str))
        .unwrap_or("");
    let unit = unit(grafana_unit).unwrap_or_else(|| {
        ctx.note(format!(
            "{name}: unit {grafana_unit} is shown as a plain number"
        ));
        "none"
    });
    let (width, height) = match p.get("gridPos") {
        Some(g) => (
            ((g.get("w").and_then(Value::as_f64).unwrap_or(12.0) / 2.0).round() as u8).clamp(1, 12),
            ((g.get("h").and_then(Value::as_f64).unwrap_or(8.0) * 30.0) as u16).clamp(60, 2000),
        ),
        None => (
            (p.get("span").and_then(Value::as_f64).unwrap_or(6.0).round() as u8).clamp(1, 12),
            260,
        ),
    };
    let stack = match defaults.and_then(|d| d.pointer("/custom/stacking/mode")) {
        Some(Value::String(m)) => m != "none",
        _ => p.get("stack").and_then(Value::as_bool).unwrap_or(false),
    };
    let mut thresholds = Vec::new();
    let show_thresholds = kind != PanelKind::Timeseries
        || defaults
            .and_then(|d| d.pointer("/custom/thresholdsStyle/mode"))
            .and_then(Value::as_str)
            .is_some_and(|m| m != "off");
    if show_thresholds {
        if let Some(steps) = defaults
            .and_then(|d| d.pointer("/thresholds/steps"))
            .and_then(Value::as_array)
        {
            for st in steps {
                // The base step (value null) is the colour below every threshold.
                let Some(value) = st.get("value").and_then(Value::as_f64) else {
                    continue;
                };
                let c = s(st, "color");
                let color = color(c).unwrap_or_else(|| {
                    ctx.note(format!("{name}: threshold colour {c} is shown grey"));
                    "#888888".into()
                });
                thresholds.push(Threshold { value, color });
            }
        }
    }
    thresholds.sort_by(|a, b| a.value.total_cmp(&b.value));
    let panel_source = match ctx.source(p.get("datasource")) {
        Ok(s) => s,
        Err(t) => {
            ctx.note(format!("{name}: data source type {t} is not supported"));
            return None;
        }
    };
    let mut targets = Vec::new();
    for t in p
        .get("targets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if t.get("hide").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let expr = s(t, "expr").trim().to_string();
        let ref_id = s(t, "refId");
        if expr.is_empty() {
            ctx.note(format!(
                "{name}: query {ref_id} has no expr (only PromQL and LogQL queries are imported)"
            ));
            continue;
        }
        let source = match ctx.source(t.get("datasource")) {
            Ok(Some(s)) => s,
            Ok(None) => panel_source.unwrap_or(if kind == PanelKind::Logs {
                Source::Loki
            } else {
                Source::Prometheus
            }),
            Err(ty) => {
                ctx.note(format!(
                    "{name}: query {ref_id} uses data source type {ty}, which is not supported"
                ));
                continue;
            }
        };
        targets.push(Target {
            expr,
            legend: s(t, "legendFormat").to_string(),
            source,
        });
    }
    if targets.is_empty() {
        ctx.note(format!("{name}: it has no query Vigil can run"));
        return None;
    }
    if kind == PanelKind::Logs && targets.iter().any(|t| t.source != Source::Loki) {
        ctx.note(format!("{name}: a logs panel needs Loki queries"));
        return None;
    }
    if p.get("transformations")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty())
    {
        ctx.note(format!("{name}: transformations are not applied"));
    }
    if defaults.is_some()
        && p.pointer("/fieldConfig/overrides")
            .and_then(Value::as_array)
            .is_some_and(|o| !o.is_empty())
    {
        ctx.note(format!("{name}: field overrides are not applied"));
    }
    if !s(p, "repeat").is_empty() {
        ctx.note(format!(
            "{name}: repeating by ${} is not supported; it is shown once",
            s(p, "repeat")
        ));
    }
    Some(Panel {
        title,
        kind,
        description: s(p, "description").to_string(),
        width,
        height,
        unit: unit.to_string(),
        stack,
        min: defaults.and_then(|d| d.get("min")).and_then(Value::as_f64),
        max: defaults.and_then(|d| d.get("max")).and_then(Value::as_f64),
        thresholds,
        targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE_EXPORTER_LIKE: &str = r##"{
      "__inputs": [{"name": "DS_PROMETHEUS", "type": "datasource", "pluginId": "prometheus"}],
      "annotations": {"list": [{"builtIn": 1, "name": "Annotations & Alerts"}]},
      "title": "Node Exporter Full", "uid": "rYdddlPWk", "tags": ["linux"],
      "time": {"from": "now-24h", "to": "now"}, "refresh": "1m",
      "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus"},
        {"name": "job", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": {"query": "label_values(node_uname_info, job)", "refId": "A"}, "multi": false},
        {"name": "node", "type": "query", "datasource": "$datasource",
         "query": "label_values(node_uname_info{job=\"$job\"}, instance)", "multi": true, "includeAll": true,
         "regex": "/([^:]+)(:.*)?/"},
        {"name": "filter", "type": "adhoc"},
        {"name": "step", "type": "interval", "query": "1m,5m,1h"}
      ]},
      "panels": [
        {"type": "row", "title": "Quick CPU / Mem / Disk", "collapsed": false, "panels": []},
        {"type": "gauge", "title": "CPU Busy", "gridPos": {"h": 4, "w": 3, "x": 0, "y": 1},
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "fieldConfig": {"defaults": {"unit": "percent", "min": 0, "max": 100,
           "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": null},
             {"color": "rgba(237, 129, 40, 0.89)", "value": 85}, {"color": "dark-red", "value": 95}]}}, "overrides": []},
         "targets": [{"expr": "100 * (1 - avg(rate(node_cpu_seconds_total{mode=\"idle\", instance=\"$node\"}[$__rate_interval])))", "refId": "A", "instant": true}]},
        {"type": "timeseries", "title": "Memory", "gridPos": {"h": 12, "w": 12, "x": 0, "y": 5},
         "fieldConfig": {"defaults": {"unit": "bytes", "custom": {"stacking": {"mode": "normal"}}}, "overrides": [{"matcher": {}}]},
         "targets": [{"expr": "node_memory_MemTotal_bytes{instance=\"$node\"}", "legendFormat": "Total", "refId": "A"},
                     {"expr": "", "refId": "B", "hide": true}]},
        {"type": "graph", "title": "Disk IO", "span": 6, "stack": false, "yaxes": [{"format": "Bps"}, {}],
         "targets": [{"expr": "rate(node_disk_read_bytes_total[5m])", "legendFormat": "{{device}}"}]},
        {"type": "text", "title": "Read me", "options": {"content": "# hi"}},
        {"type": "row", "title": "Collapsed", "collapsed": true, "panels": [
          {"type": "bargauge", "title": "Disk used", "gridPos": {"h": 6, "w": 24},
           "fieldConfig": {"defaults": {"unit": "kbytes"}},
           "targets": [{"expr": "node_filesystem_size_bytes", "refId": "A"}]},
          {"type": "table", "title": "From MySQL", "datasource": {"type": "mysql", "uid": "x"},
           "targets": [{"rawSql": "select 1", "refId": "A"}]}
        ]},
        {"type": "logs", "title": "Syslog", "datasource": {"type": "loki", "uid": "L"},
         "targets": [{"expr": "{job=\"syslog\"} |= \"error\"", "refId": "A"}]},
        {"type": "stat", "title": "Uptime", "repeat": "node", "transformations": [{"id": "reduce"}],
         "targets": [{"expr": "time() - node_boot_time_seconds", "refId": "A"}], "fieldConfig": {"defaults": {"unit": "s"}}}
      ]
    }"##;

    #[test]
    fn imports_a_typical_community_dashboard() {
        let Import {
            dashboard: d,
            unsupported,
        } = import(NODE_EXPORTER_LIKE).unwrap();
        crate::validate(&d).unwrap();
        assert_eq!(d.uid, "rydddlpwk");
        assert_eq!(d.time, "24h");
        assert_eq!(d.refresh, "1m");
        let names: Vec<&str> = d.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["job", "node", "step"]);
        assert_eq!(d.variables[1].regex, "([^:]+)(:.*)?");
        assert!(d.variables[1].multi && d.variables[1].include_all);
        assert_eq!(d.variables[2].kind, VariableKind::Custom);
        let titles: Vec<&str> = d.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "CPU Busy",
                "Memory",
                "Disk IO",
                "Disk used",
                "Syslog",
                "Uptime"
            ]
        );
        let gauge = &d.panels[0];
        assert_eq!(
            (gauge.kind, gauge.width, gauge.height),
            (PanelKind::Gauge, 2, 120)
        );
        assert_eq!((gauge.min, gauge.max), (Some(0.0), Some(100.0)));
        assert_eq!(gauge.thresholds.len(), 2);
        assert_eq!(gauge.thresholds[1].color, "red");
        let mem = &d.panels[1];
        assert!(mem.stack);
        assert_eq!(mem.unit, "bytes");
        assert_eq!(mem.targets.len(), 1);
        assert_eq!(mem.targets[0].legend, "Total");
        assert_eq!(d.panels[2].unit, "bytes_per_second");
        assert_eq!(d.panels[2].width, 6);
        assert_eq!(d.panels[4].targets[0].source, Source::Loki);
        assert_eq!(d.panels[5].unit, "seconds");

        let has = |needle: &str| unsupported.iter().any(|u| u.contains(needle));
        assert!(has("variable filter: type adhoc"), "{unsupported:#?}");
        assert!(has("panel \"Read me\": panel type text"));
        assert!(has("panel \"CPU Busy\": threshold colour rgba"));
        assert!(has("panel \"Memory\": field overrides"));
        assert!(has("panel \"Disk used\": unit kbytes"));
        assert!(has("panel \"From MySQL\": data source type mysql"));
        assert!(has("panel \"Uptime\": transformations"));
        assert!(has("panel \"Uptime\": repeating by $node"));
        assert_eq!(unsupported.len(), 8, "{unsupported:#?}");
    }

    #[test]
    fn rejects_what_is_not_a_dashboard() {
        assert!(matches!(import("{"), Err(ImportError::NotJson(_))));
        assert!(matches!(import("[1]"), Err(ImportError::NotADashboard(_))));
        assert!(matches!(
            import(r#"{"title": "x"}"#),
            Err(ImportError::NotADashboard(_))
        ));
        // The HTTP API's wrapper is unwrapped.
        let wrapped = r#"{"dashboard": {"title": "W W", "panels": []}, "meta": {}}"#;
        let i = import(wrapped).unwrap();
        assert_eq!(i.dashboard.uid, "w-w");
        assert!(i.unsupported.is_empty());
    }

    #[test]
    fn odd_time_ranges_are_listed() {
        let i = import(
            r#"{"title": "t", "panels": [], "time": {"from": "2024-01-01", "to": "2024-01-02"}}"#,
        )
        .unwrap();
        assert_eq!(i.dashboard.time, "1h");
        assert_eq!(i.unsupported.len(), 1);
    }
}
