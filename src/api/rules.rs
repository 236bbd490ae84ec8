//! `/api/v1/rules`, `/api/v1/alerts`, `/api/v1/alertmanagers` and
//! `POST /-/reload`, in Prometheus's JSON shapes.

use crate::server::AppState;
use alerting::{Alert, AlertState, GroupState, RuleKind, RuleState};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

fn rfc3339(ms: Option<i64>) -> String {
    match ms.and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

fn labels_json(l: &tsdb::LabelSet) -> Value {
    Value::Object(
        l.iter()
            .map(|x| (x.name.to_string(), Value::String(x.value.to_string())))
            .collect(),
    )
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, as Prometheus prints alert values.
fn value_e(v: f64) -> String {
    alerting::template::go_float(v, 'e', None)
}

fn alert_json(a: &Alert) -> Value {
    let mut o = json!({
        "labels": labels_json(&a.labels),
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": rfc3339(Some(a.active_at)),
        "value": value_e(a.value),
    });
    if let (Some(t), Some(m)) = (a.keep_firing_since, o.as_object_mut()) {
        m.insert("keepFiringSince".into(), Value::String(rfc3339(Some(t))));
    }
    o
}

fn active(r: &RuleState) -> impl Iterator<Item = &Alert> {
    r.alerts
        .values()
        .filter(|a| a.state != AlertState::Inactive)
}

fn rule_json(r: &RuleState) -> Value {
    let common = |o: &mut Map<String, Value>| {
        o.insert("name".into(), r.rule.name().into());
        o.insert("query".into(), r.rule.expr.clone().into());
        let labels: Map<String, Value> = r
            .rule
            .labels
            .iter()
            .map(|(k, t)| (k.clone(), Value::String(t.source().to_string())))
            .collect();
        o.insert("labels".into(), Value::Object(labels));
        o.insert("health".into(), r.health.as_str().into());
        o.insert(
            "lastError".into(),
            r.last_error.clone().unwrap_or_default().into(),
        );
        o.insert(
            "evaluationTime".into(),
            r.evaluation_time.as_secs_f64().into(),
        );
        o.insert("lastEvaluation".into(), rfc3339(r.last_evaluation).into());
    };
    let mut o = Map::new();
    match &r.rule.kind {
        RuleKind::Recording { .. } => {
            common(&mut o);
            o.insert("type".into(), "recording".into());
        }
        RuleKind::Alerting {
            for_,
            keep_firing_for,
            annotations,
            ..
        } => {
            let state = if active(r).any(|a| a.state == AlertState::Firing) {
                "firing"
            } else if active(r).next().is_some() {
                "pending"
            } else {
                "inactive"
            };
            o.insert("state".into(), state.into());
            common(&mut o);
            o.insert("duration".into(), for_.as_secs_f64().into());
            o.insert("keepFiringFor".into(), keep_firing_for.as_secs_f64().into());
            let ann: Map<String, Value> = annotations
                .iter()
                .map(|(k, t)| (k.clone(), Value::String(t.source().to_string())))
                .collect();
            o.insert("annotations".into(), Value::Object(ann));
            o.insert("alerts".into(), active(r).map(alert_json).collect());
            o.insert("type".into(), "alerting".into());
        }
    }
    Value::Object(o)
}

fn group_json(g: &GroupState, kind: Option<&str>) -> Value {
    let rules: Vec<Value> = g
        .rules
        .iter()
        .filter(|r| {
            !matches!(
                (kind, &r.rule.kind),
                (Some("alert"), RuleKind::Recording { .. })
                    | (Some("record"), RuleKind::Alerting { .. })
            )
        })
        .map(rule_json)
        .collect();
    json!({
        "name": g.group.name,
        "file": g.group.file.display().to_string(),
        "rules": rules,
        "interval": g.interval.as_secs_f64(),
        "limit": g.group.limit,
        "evaluationTime": g.evaluation_time.as_secs_f64(),
        "lastEvaluation": rfc3339(g.last_evaluation),
    })
}

fn error(status: StatusCode, kind: &str, msg: String) -> Response {
    (
        status,
        Json(json!({"status": "error", "errorType": kind, "error": msg})),
    )
        .into_response()
}

pub async fn rules(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let kind = q.get("type").map(String::as_str);
    if let Some(k) = kind.filter(|k| !["alert", "record"].contains(k)) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_data",
            format!("invalid parameter \"type\": {k:?} (want alert or record)"),
        );
    }
    let groups = st
        .rules()
        .map(|m| m.with_groups(|g| group_json(g, kind)))
        .unwrap_or_default();
    Json(json!({"status": "success", "data": {"groups": groups}})).into_response()
}

pub async fn alerts(State(st): State<AppState>) -> Response {
    let alerts: Vec<Value> = st
        .rules()
        .map(|m| {
            m.with_groups(|g| {
                g.rules
                    .iter()
                    .flat_map(|r| active(r).map(alert_json).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            })
        })
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    Json(json!({"status": "success", "data": {"alerts": alerts}})).into_response()
}

/// `/api/v1/alertmanagers`: the Alertmanagers alerts go to now, and those
/// relabeling dropped. Discovery may read files, so it runs off the runtime.
pub async fn alertmanagers(State(st): State<AppState>) -> Response {
    let notifier = st.rules().and_then(|m| m.notifier().cloned());
    let found = match notifier {
        Some(n) => tokio::task::spawn_blocking(move || n.alertmanagers())
            .await
            .unwrap_or_default(),
        None => alerting::Discovered::default(),
    };
    let urls =
        |v: Vec<String>| -> Vec<Value> { v.into_iter().map(|u| json!({"url": u})).collect() };
    Json(json!({"status": "success", "data": {
        "activeAlertmanagers": urls(found.active),
        "droppedAlertmanagers": urls(found.dropped),
    }}))
    .into_response()
}

/// Reloads the rule files (what SIGHUP does); on an error nothing changes.
pub async fn reload(State(st): State<AppState>) -> Response {
    let Some(m) = st.rules() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the rule engine is not running yet\n",
        )
            .into_response();
    };
    let done = tokio::task::spawn_blocking(move || m.reload()).await;
    st.reload.record(matches!(done, Ok(Ok(_))));
    match done {
        Ok(Ok(n)) => (StatusCode::OK, format!("reloaded: {n} rules\n")).into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload task failed: {e}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_print_as_go_e_format() {
        assert_eq!(super::value_e(1.0), "1e+00");
        assert_eq!(super::value_e(0.25), "2.5e-01");
        assert_eq!(super::value_e(123456.0), "1.23456e+05");
    }
}
