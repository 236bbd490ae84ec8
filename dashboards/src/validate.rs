//! What makes a dashboard document valid; every error names the field it
//! is about (`panels[2].targets[0].expr`).

use crate::model::{Dashboard, Panel, PanelKind, Source};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Invalid {
    pub path: String,
    pub message: String,
}

fn bad(path: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        path: path.into(),
        message: message.into(),
    }
}

pub fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A valid uid made from any text (`Team A / API` → `team-a-api`), or
/// `None` if nothing of it is usable.
pub fn uid_from(text: &str) -> Option<String> {
    let mut out = String::new();
    for c in text.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(64).collect();
    let out = out.trim_end_matches('-').to_string();
    (!out.is_empty()).then_some(out)
}

fn valid_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

const UNITS: [&str; 7] = [
    "none",
    "bytes",
    "bytes_per_second",
    "seconds",
    "percent",
    "percent_unit",
    "per_second",
];

/// Parses and validates a dashboard document.
pub fn parse(json: &str) -> Result<Dashboard, Invalid> {
    let d: Dashboard = serde_json::from_str(json).map_err(|e| {
        bad(
            format!("line {} column {}", e.line(), e.column()),
            e.to_string(),
        )
    })?;
    validate(&d)?;
    Ok(d)
}

pub fn validate(d: &Dashboard) -> Result<(), Invalid> {
    if !valid_uid(&d.uid) {
        return Err(bad(
            "uid",
            format!("{:?} must be 1 to 64 of a-z, 0-9, '-' and '_'", d.uid),
        ));
    }
    if d.title.trim().is_empty() {
        return Err(bad("title", "is empty"));
    }
    let mut names = std::collections::HashSet::new();
    for (i, v) in d.variables.iter().enumerate() {
        let p = format!("variables[{i}]");
        if !valid_name(&v.name) {
            return Err(bad(
                format!("{p}.name"),
                format!(
                    "{:?} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
                    v.name
                ),
            ));
        }
        if !names.insert(v.name.as_str()) {
            return Err(bad(
                format!("{p}.name"),
                format!("{:?} is defined twice", v.name),
            ));
        }
        if v.query.trim().is_empty() {
            return Err(bad(format!("{p}.query"), "is empty"));
        }
        if v.kind == crate::model::VariableKind::Query {
            let q = v.query.trim();
            let ok = (q.starts_with("label_values(") || q.starts_with("query_result("))
                && q.ends_with(')');
            if !ok {
                return Err(bad(
                    format!("{p}.query"),
                    format!("{q:?} is neither label_values(...) nor query_result(...)"),
                ));
            }
        }
    }
    for (i, panel) in d.panels.iter().enumerate() {
        validate_panel(panel, &format!("panels[{i}]"))?;
    }
    Ok(())
}

fn validate_panel(p: &Panel, path: &str) -> Result<(), Invalid> {
    if !(1..=12).contains(&p.width) {
        return Err(bad(
            format!("{path}.width"),
            format!("{} is not 1 to 12 columns", p.width),
        ));
    }
    if !(60..=2000).contains(&p.height) {
        return Err(bad(
            format!("{path}.height"),
            format!("{} is not 60 to 2000 pixels", p.height),
        ));
    }
    if !UNITS.contains(&p.unit.as_str()) {
        return Err(bad(
            format!("{path}.unit"),
            format!("{:?} is not one of {}", p.unit, UNITS.join(", ")),
        ));
    }
    if let (Some(lo), Some(hi)) = (p.min, p.max) {
        if lo >= hi {
            return Err(bad(
                format!("{path}.min"),
                format!("{lo} is not below max {hi}"),
            ));
        }
    }
    for w in p.thresholds.windows(2) {
        if w[1].value < w[0].value {
            return Err(bad(
                format!("{path}.thresholds"),
                "must be in ascending order of value",
            ));
        }
    }
    if p.targets.is_empty() {
        return Err(bad(format!("{path}.targets"), "a panel needs a query"));
    }
    for (j, t) in p.targets.iter().enumerate() {
        let tp = format!("{path}.targets[{j}]");
        if t.expr.trim().is_empty() {
            return Err(bad(format!("{tp}.expr"), "is empty"));
        }
        let logs_panel = p.kind == PanelKind::Logs;
        if logs_panel && t.source != Source::Loki {
            return Err(bad(
                format!("{tp}.source"),
                "a logs panel queries Loki (LogQL)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
        "uid": "my-dash", "title": "Mine",
        "variables": [{"name": "pod", "query": "label_values(up, pod)", "multi": true, "include_all": true}],
        "panels": [{"title": "CPU", "type": "timeseries", "unit": "percent",
                    "thresholds": [{"value": 50, "color": "orange"}, {"value": 90, "color": "red"}],
                    "targets": [{"expr": "rate(x[5m])", "legend": "{{pod}}"}]},
                   {"title": "Logs", "type": "logs", "width": 12,
                    "targets": [{"expr": "{app=\"x\"}", "source": "loki"}]}]
    }"#;

    #[test]
    fn uids_from_titles() {
        assert_eq!(uid_from("Team A / API").as_deref(), Some("team-a-api"));
        assert_eq!(uid_from(" ! "), None);
        assert!(valid_uid(&uid_from(&"x".repeat(100)).unwrap()));
    }

    #[test]
    fn accepts_a_good_dashboard_with_defaults() {
        let d = parse(GOOD).unwrap();
        assert_eq!(d.time, "1h");
        assert_eq!(d.panels[0].width, 6);
        assert_eq!(d.panels[0].height, 260);
        assert_eq!(d.panels[1].kind, PanelKind::Logs);
        let again = parse(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(again, d);
    }

    fn err(json_edit: impl Fn(&mut serde_json::Value)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        json_edit(&mut v);
        parse(&v.to_string()).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err(|v| v["uid"] = "Has Space".into()).starts_with("uid: "));
        assert_eq!(err(|v| v["title"] = " ".into()), "title: is empty");
        assert!(err(|v| v["variables"][0]["name"] = "1x".into()).starts_with("variables[0].name"));
        assert!(err(|v| v["variables"][0]["query"] = "up".into()).contains("label_values"));
        assert!(err(|v| v["panels"][0]["width"] = 13.into()).starts_with("panels[0].width"));
        assert!(err(|v| v["panels"][0]["unit"] = "furlongs".into()).starts_with("panels[0].unit"));
        assert!(err(|v| v["panels"][0]["targets"][0]["expr"] = "".into())
            .starts_with("panels[0].targets[0].expr"));
        assert!(
            err(|v| v["panels"][1]["targets"][0]["source"] = "prometheus".into())
                .starts_with("panels[1].targets[0].source")
        );
        assert!(
            err(|v| v["panels"][0]["thresholds"][1]["value"] = 10.into()).contains("ascending")
        );
        assert!(err(|v| v["panels"][0]["type"] = "piechart".into()).starts_with("line "));
        assert!(err(|v| v["bogus"] = 1.into()).contains("bogus"));
    }
}
