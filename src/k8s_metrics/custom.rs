//! `custom.metrics.k8s.io` (v1beta1 and v1beta2) and
//! `external.metrics.k8s.io/v1beta1`, as prometheus-adapter serves them
//! from its rules: the metric list is rediscovered from the store every
//! `relist_interval` (each rule's `seriesQuery` over the last
//! `metrics_max_age`, names from `name`, objects from `resources`), and a
//! request renders the rule's `metricsQuery` with the request's label
//! matchers and runs it as an instant PromQL query now.
//!
//! Objects selected by `*` come from the pod watch (pods) or a list from
//! the Kubernetes API (other resources); without API access, from the
//! store (every object with a sample), and then a `labelSelector` is
//! refused.

use super::adapter_config::{AdapterConfig, Rule};
use super::cluster_objects::ClusterObjects;
use super::objects::rfc3339_seconds as rfc3339;
use super::quantity::millis;
use super::resources::{parse_group_resource, resolve, ResourceInfo};
use super::selector::LabelSelector;
use super::status;
use alerting::template::Template;
use alerting::template::Value as TemplateValue;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use promql::QueryValue;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tsdb::{Db, Querier, TimeRange};

pub const CUSTOM_GROUP: &str = "custom.metrics.k8s.io";
pub const EXTERNAL_GROUP: &str = "external.metrics.k8s.io";
/// The custom metrics API's versions, preferred first.
pub const CUSTOM_VERSIONS: [&str; 2] = ["v1beta2", "v1beta1"];

/// A custom metric the rules expose for one resource.
#[derive(Debug, Clone)]
struct CustomMetric {
    resource: ResourceInfo,
    namespaced: bool,
    rule: usize,
    /// The series name the metric was found on (`.Series`).
    series: String,
}

#[derive(Debug, Clone)]
struct ExternalMetric {
    rule: usize,
    series: String,
}

/// What the last relist found.
#[derive(Debug, Default)]
pub struct Registry {
    /// By (qualified resource, metric).
    custom: BTreeMap<(String, String), CustomMetric>,
    external: BTreeMap<String, ExternalMetric>,
}

/// Resources that are never namespaced.
fn cluster_scoped(r: &ResourceInfo) -> bool {
    r.group.is_empty()
        && matches!(
            r.plural.as_str(),
            "namespaces" | "nodes" | "persistentvolumes"
        )
}

impl Registry {
    /// Runs every rule's series query over `range` and names what it finds.
    pub fn discover(config: &AdapterConfig, db: &Db, range: TimeRange) -> Result<Registry, String> {
        let mut out = Registry::default();
        let series_of = |rule: &Rule| -> Result<Vec<tsdb::LabelSet>, String> {
            let set = crate::selector::parse_selector(&rule.series_query)
                .map_err(|e| format!("{}.seriesQuery: {e}", rule.position))?;
            let mut all = Vec::new();
            for matchers in &set.0 {
                all.extend(db.series(matchers, range).map_err(|e| e.to_string())?);
            }
            Ok(all)
        };
        for (i, rule) in config.rules.iter().enumerate() {
            for ls in series_of(rule)? {
                let Some(name) = ls.metric_name() else {
                    continue;
                };
                let Some(metric) = rule.metric_name(name) else {
                    continue;
                };
                let resources: Vec<ResourceInfo> = ls
                    .iter()
                    .filter_map(|l| rule.resources.resource_for_label(l.name))
                    .collect();
                let namespaced = resources
                    .iter()
                    .any(|r| r.plural == "namespaces" && r.group.is_empty());
                for r in resources {
                    let entry = CustomMetric {
                        namespaced: namespaced && !cluster_scoped(&r),
                        resource: r,
                        rule: i,
                        series: name.to_string(),
                    };
                    out.custom
                        .entry((entry.resource.qualified(), metric.clone()))
                        .or_insert(entry);
                }
            }
        }
        for (i, rule) in config.external_rules.iter().enumerate() {
            for ls in series_of(rule)? {
                let Some(name) = ls.metric_name() else {
                    continue;
                };
                if let Some(metric) = rule.metric_name(name) {
                    out.external.entry(metric).or_insert(ExternalMetric {
                        rule: i,
                        series: name.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    pub fn custom_resource_list(&self, version: &str) -> Value {
        let resources: Vec<Value> = self
            .custom
            .iter()
            .map(|((resource, metric), m)| {
                json!({"name": format!("{resource}/{metric}"), "singularName": "",
                       "namespaced": m.namespaced, "kind": "MetricValueList", "verbs": ["get"]})
            })
            .collect();
        json!({"kind": "APIResourceList", "apiVersion": "v1",
               "groupVersion": format!("{CUSTOM_GROUP}/{version}"), "resources": resources})
    }

    pub fn external_resource_list(&self) -> Value {
        let resources: Vec<Value> = self
            .external
            .keys()
            .map(|metric| {
                json!({"name": metric, "singularName": "", "namespaced": true,
                       "kind": "ExternalMetricValueList", "verbs": ["get"]})
            })
            .collect();
        json!({"kind": "APIResourceList", "apiVersion": "v1",
               "groupVersion": format!("{EXTERNAL_GROUP}/v1beta1"), "resources": resources})
    }
}

/// The adapter's state: its rules, the last relist, how to query.
pub struct Adapter {
    pub config: AdapterConfig,
    pub registry: RwLock<Arc<Registry>>,
    /// The server's query limits, for the rules' queries.
    pub engine: promql::EngineOptions,
    /// How far back metrics and (without the API) objects are looked for.
    pub max_age_ms: i64,
}

/// The label a rule names namespaces by.
fn ns_label_of(rule: &Rule) -> Option<String> {
    rule.resources
        .label_for_resource(&resolve("", "namespaces"))
}

/// Rediscovers the metrics now (once the store is open) and every
/// `interval`; a relist that fails keeps the previous list, as the
/// adapter does.
pub fn spawn_relist(
    adapter: Arc<Adapter>,
    db: Arc<std::sync::OnceLock<Arc<Db>>>,
    interval: std::time::Duration,
    max_age: std::time::Duration,
) {
    tokio::spawn(async move {
        let max_age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        loop {
            if let Some(db) = db.get().cloned() {
                let a = Arc::clone(&adapter);
                let found = tokio::task::spawn_blocking(move || {
                    let now = chrono::Utc::now().timestamp_millis();
                    Registry::discover(
                        &a.config,
                        &db,
                        TimeRange::new(now.saturating_sub(max_age_ms), now),
                    )
                })
                .await;
                match found {
                    Ok(Ok(r)) => {
                        *adapter.registry.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(r)
                    }
                    Ok(Err(e)) => tracing::warn!(
                        "k8s_metrics_api: relisting metrics: {e}; keeping the previous list"
                    ),
                    Err(e) => tracing::warn!("k8s_metrics_api: relisting metrics: {e}"),
                }
                tokio::time::sleep(interval).await;
            } else {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    });
}

/// A custom metrics request, from its path.
#[derive(Debug, PartialEq, Eq)]
pub struct CustomRequest {
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    /// An object's name, or `*`.
    pub name: String,
    pub metric: String,
}

/// Reads `v1beta2/namespaces/shop/pods/*/m`, `v1beta2/nodes/n1/m` or
/// `v1beta2/namespaces/shop/metrics/m`; `Err` for a path of another shape.
pub fn parse_custom_path(rest: &str) -> Result<CustomRequest, String> {
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let request =
        |version: &str, namespace: Option<&str>, resource: &str, name: &str, metric: &str| {
            CustomRequest {
                version: version.into(),
                namespace: namespace.map(str::to_string),
                resource: resource.into(),
                name: name.into(),
                metric: metric.into(),
            }
        };
    match parts[..] {
        [v, "namespaces", ns, "metrics", metric] => Ok(request(v, None, "namespaces", ns, metric)),
        [v, "namespaces", ns, resource, name, metric] => {
            Ok(request(v, Some(ns), resource, name, metric))
        }
        [v, resource, name, metric] => Ok(request(v, None, resource, name, metric)),
        _ => Err("invalid request path".into()),
    }
}

fn not_found_metric(metric: &str, resource: &str, name: Option<&str>) -> Response {
    let msg = match name {
        Some(n) => format!("the server could not find the metric {metric} for {resource} {n}"),
        None => format!("the server could not find the metric {metric} for {resource}"),
    };
    status::status(StatusCode::NOT_FOUND, "NotFound", &msg, None)
}

/// One sample of a rule's query: labels (None for a scalar), time (ms),
/// value.
pub type Answer = (Option<BTreeMap<String, String>>, i64, f64);

/// The rendered `metricsQuery` for `rule`.
pub fn render_query(
    template: &Template,
    series: &str,
    matchers: &[String],
    group_by: &[String],
    values: &BTreeMap<String, String>,
) -> Result<String, String> {
    let str_map = |m: &BTreeMap<String, String>| {
        TemplateValue::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), TemplateValue::Str(v.clone())))
                .collect(),
        )
    };
    let dot = TemplateValue::Map(BTreeMap::from([
        ("Series".to_string(), TemplateValue::Str(series.into())),
        (
            "LabelMatchers".to_string(),
            TemplateValue::Str(matchers.join(",")),
        ),
        (
            "GroupBy".to_string(),
            TemplateValue::Str(group_by.join(",")),
        ),
        (
            "GroupBySlice".to_string(),
            TemplateValue::List(
                group_by
                    .iter()
                    .map(|g| TemplateValue::Str(g.clone()))
                    .collect(),
            ),
        ),
        ("LabelValuesByName".to_string(), str_map(values)),
    ]));
    template.render(dot)
}

/// A PromQL string literal, quoted as Go's `%q` does (what PromQL reads
/// back: `\\`, `\"`, `\n`, `\t`, `\xNN` for other control characters).
pub fn promql_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The resource label's matcher for `names`: `="a"`, or `=~"a|b"` with
/// each name escaped as a regex (names from the store may hold anything).
fn quoted_names(names: &[String]) -> (String, String) {
    if names.len() == 1 {
        ("=".into(), promql_quote(&names[0]))
    } else {
        let alternatives: Vec<String> = names.iter().map(|n| regex::escape(n)).collect();
        ("=~".into(), promql_quote(&alternatives.join("|")))
    }
}

impl Adapter {
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Answers a custom metrics request. `objects` lists the objects `*`
    /// selects (None: the API is not watched).
    pub async fn custom(
        self: &Arc<Self>,
        db: Arc<Db>,
        req: CustomRequest,
        query: &BTreeMap<String, String>,
        objects: Option<&ClusterObjects>,
    ) -> Response {
        let resource = parse_group_resource(&req.resource);
        let registry = self.registry();
        let Some(m) = registry
            .custom
            .get(&(resource.qualified(), req.metric.clone()))
            .cloned()
        else {
            return not_found_metric(&req.metric, &resource.qualified(), None);
        };
        if m.namespaced != req.namespace.is_some() {
            return not_found_metric(&req.metric, &resource.qualified(), None);
        }
        let parse = |k: &str| LabelSelector::parse(query.get(k).map_or("", String::as_str));
        let (objects_sel, metric_sel) = match (parse("labelSelector"), parse("metricLabelSelector"))
        {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return status::bad_request(&e),
        };
        let rule = &self.config.rules[m.rule];
        let Some(resource_label) = rule.resources.label_for_resource(&resource) else {
            return status::internal(&format!(
                "{}: no label names {}",
                rule.position,
                resource.qualified()
            ));
        };
        // The objects asked about.
        let names: Vec<String> = if req.name != "*" {
            vec![req.name.clone()]
        } else {
            match self
                .select_objects(
                    &db,
                    &resource,
                    (&m.series, &resource_label),
                    req.namespace.as_deref().map(|ns| (ns_label_of(rule), ns)),
                    &objects_sel,
                    objects,
                )
                .await
            {
                Ok(n) => n,
                Err(r) => return r,
            }
        };
        if names.is_empty() {
            return Json(value_list(&req.version, Vec::new())).into_response();
        }
        let mut matchers = match metric_sel.promql_matchers() {
            Ok(m) => m,
            Err(e) => return status::bad_request(&e),
        };
        let mut values: BTreeMap<String, String> = metric_sel.values_by_key().into_iter().collect();
        if let Some(ns) = &req.namespace {
            let Some(ns_label) = rule
                .resources
                .label_for_resource(&resolve("", "namespaces"))
            else {
                return status::internal(&format!("{}: no label names namespaces", rule.position));
            };
            matchers.push(format!("{ns_label}={}", promql_quote(ns)));
            values.insert(ns_label, ns.clone());
        }
        let (op, quoted) = quoted_names(&names);
        matchers.push(format!("{resource_label}{op}{quoted}"));
        values.insert(resource_label.clone(), names.join("|"));
        let group_by = std::slice::from_ref(&resource_label);
        let (samples, now) = match self
            .query_now(db, rule, &m.series, &matchers, group_by, &values)
            .await
        {
            Ok(a) => a,
            Err(r) => return r,
        };
        let by_name: BTreeMap<String, f64> = samples
            .into_iter()
            .filter_map(|(labels, _, v)| labels?.get(&resource_label).map(|n| (n.clone(), v)))
            .collect();
        if req.name != "*" && !by_name.contains_key(&req.name) {
            return not_found_metric(&req.metric, &resource.qualified(), Some(&req.name));
        }
        let items = names
            .iter()
            .filter_map(|n| by_name.get(n).map(|v| (n, *v)))
            .map(|(n, v)| value_item(&req, &resource, n, &metric_sel, v, now))
            .collect();
        Json(value_list(&req.version, items)).into_response()
    }

    /// The names of the objects `*` selects in `namespace`.
    /// Without the API, `series` and its label naming the resource find
    /// them in the store (`namespace` is the namespace label and value).
    async fn select_objects(
        &self,
        db: &Arc<Db>,
        resource: &ResourceInfo,
        (series, resource_label): (&str, &str),
        namespace: Option<(Option<String>, &str)>,
        selector: &LabelSelector,
        objects: Option<&ClusterObjects>,
    ) -> Result<Vec<String>, Response> {
        if let Some(o) = objects {
            return o
                .names(resource, namespace.map(|(_, ns)| ns), selector)
                .await
                .map_err(|e| status::internal(&format!("unable to list matching resources: {e}")));
        }
        if *selector != LabelSelector::default() {
            return Err(status::bad_request(
                "selecting objects by their labels needs k8s_metrics_api.kubernetes (the objects come from the Kubernetes API)",
            ));
        }
        // Without the API: every object of the resource with a sample of
        // the rule's series.
        let mut m = vec![
            tsdb::Matcher::new(tsdb::MatchOp::Equal, "__name__", series),
            tsdb::Matcher::new(tsdb::MatchOp::NotEqual, resource_label, ""),
        ];
        if let Some((label, ns)) = namespace {
            let Some(label) = label else {
                return Err(status::internal("the rule has no label for namespaces"));
            };
            m.push(tsdb::Matcher::new(tsdb::MatchOp::Equal, label, ns));
        }
        let m: Vec<tsdb::Matcher> = m
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| status::internal(&e.to_string()))?;
        let (db, label, max_age) = (Arc::clone(db), resource_label.to_string(), self.max_age_ms);
        tokio::task::spawn_blocking(move || {
            let now = chrono::Utc::now().timestamp_millis();
            db.label_values(&label, &m, TimeRange::new(now.saturating_sub(max_age), now))
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| status::internal(&e.to_string()))?
        .map_err(|e| status::internal(&e))
    }

    /// Renders `rule`'s query and runs it now: its samples and the time.
    async fn query_now(
        self: &Arc<Self>,
        db: Arc<Db>,
        rule: &Rule,
        series: &str,
        matchers: &[String],
        group_by: &[String],
        values: &BTreeMap<String, String>,
    ) -> Result<(Vec<Answer>, i64), Response> {
        let promql = render_query(&rule.metrics_query, series, matchers, group_by, values)
            .map_err(|e| status::internal(&e))?;
        let now = chrono::Utc::now().timestamp_millis();
        Ok((self.run(db, promql, now).await?, now))
    }

    /// Runs `promql` at `now` on this thread: (labels, time, value) per
    /// sample; a scalar answers with no labels.
    pub fn instant(&self, db: &Db, promql: &str, now: i64) -> Result<Vec<Answer>, String> {
        let engine = promql::Engine::new(self.engine.clone());
        let answer = engine
            .instant(db, promql, now)
            .map_err(|e| format!("unable to fetch metrics: {promql}: {e}"))?;
        Ok(match answer.0 {
            QueryValue::Vector(v) => v
                .into_iter()
                .map(|s| {
                    let labels = s
                        .labels
                        .iter()
                        .map(|l| (l.name.to_string(), l.value.to_string()))
                        .collect();
                    (Some(labels), s.t, s.v)
                })
                .collect(),
            QueryValue::Scalar { t, v } => vec![(None, t, v)],
            _ => {
                return Err(format!(
                    "unable to fetch metrics: {promql} answers neither a vector nor a scalar"
                ))
            }
        })
    }

    /// [`Adapter::instant`] off the async threads.
    async fn run(
        self: &Arc<Self>,
        db: Arc<Db>,
        promql: String,
        now: i64,
    ) -> Result<Vec<Answer>, Response> {
        let a = Arc::clone(self);
        tokio::task::spawn_blocking(move || a.instant(&db, &promql, now))
            .await
            .map_err(|e| status::internal(&e.to_string()))?
            .map_err(|e| status::internal(&e))
    }

    /// Answers an external metrics request.
    pub async fn external(
        self: &Arc<Self>,
        db: Arc<Db>,
        namespace: &str,
        metric: &str,
        query: &BTreeMap<String, String>,
    ) -> Response {
        let registry = self.registry();
        let Some(m) = registry.external.get(metric).cloned() else {
            return not_found_metric(metric, EXTERNAL_GROUP, None);
        };
        let selector =
            match LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str)) {
                Ok(s) => s,
                Err(e) => return status::bad_request(&e),
            };
        let rule = &self.config.external_rules[m.rule];
        let mut matchers = match selector.promql_matchers() {
            Ok(m) => m,
            Err(e) => return status::bad_request(&e),
        };
        let mut values: BTreeMap<String, String> = selector.values_by_key().into_iter().collect();
        if rule.resources.namespaced {
            let Some(ns_label) = rule
                .resources
                .label_for_resource(&resolve("", "namespaces"))
            else {
                return status::internal(&format!(
                    "{}: a namespaced external rule needs a label for namespaces (resources.overrides or template)",
                    rule.position
                ));
            };
            matchers.push(format!("{ns_label}={}", promql_quote(namespace)));
            values.insert(ns_label, namespace.to_string());
        }
        let (samples, _) = match self
            .query_now(db, rule, &m.series, &matchers, &[], &values)
            .await
        {
            Ok(a) => a,
            Err(r) => return r,
        };
        let items: Vec<Value> = samples
            .into_iter()
            .map(|(labels, t, v)| {
                json!({
                    "metricName": metric,
                    // A scalar has no labels (null); a sample without labels has {}.
                    "metricLabels": labels.map_or(Value::Null, |l| json!(l)),
                    "timestamp": rfc3339(t),
                    "value": millis(v),
                })
            })
            .collect();
        Json(json!({"kind": "ExternalMetricValueList", "apiVersion": format!("{EXTERNAL_GROUP}/v1beta1"),
                    "metadata": {}, "items": items}))
        .into_response()
    }
}

fn value_item(
    req: &CustomRequest,
    resource: &ResourceInfo,
    name: &str,
    selector: &LabelSelector,
    v: f64,
    now: i64,
) -> Value {
    let mut described = serde_json::Map::new();
    described.insert("kind".into(), json!(resource.kind));
    if let Some(ns) = &req.namespace {
        described.insert("namespace".into(), json!(ns));
    }
    described.insert("name".into(), json!(name));
    described.insert("apiVersion".into(), json!(resource.api_version()));
    let value = if v.is_nan() {
        "0".to_string()
    } else {
        millis(v)
    };
    if req.version == "v1beta1" {
        json!({"describedObject": described, "metricName": req.metric, "timestamp": rfc3339(now),
               "value": value, "selector": selector.to_json()})
    } else {
        json!({"describedObject": described, "metric": {"name": req.metric, "selector": selector.to_json()},
               "timestamp": rfc3339(now), "value": value})
    }
}

fn value_list(version: &str, items: Vec<Value>) -> Value {
    json!({"kind": "MetricValueList", "apiVersion": format!("{CUSTOM_GROUP}/{version}"),
           "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_as_the_custom_metrics_apiserver_reads_them() {
        let r = parse_custom_path("v1beta2/namespaces/shop/pods/*/http_requests").unwrap();
        assert_eq!(
            r,
            CustomRequest {
                version: "v1beta2".into(),
                namespace: Some("shop".into()),
                resource: "pods".into(),
                name: "*".into(),
                metric: "http_requests".into()
            }
        );
        let r = parse_custom_path("v1beta1/namespaces/shop/metrics/queue").unwrap();
        assert_eq!(
            (r.resource.as_str(), r.name.as_str(), r.namespace),
            ("namespaces", "shop", None)
        );
        let r = parse_custom_path("v1beta2/nodes/n1/load").unwrap();
        assert_eq!((r.resource.as_str(), r.name.as_str()), ("nodes", "n1"));
        assert!(parse_custom_path("v1beta2/pods").is_err());
    }

    #[test]
    fn promql_strings_are_quoted_as_go_quotes_them() {
        assert_eq!(promql_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(promql_quote("x\u{1}y\n"), r#""x\x01y\n""#);
        let (op, q) = quoted_names(&["a(b".to_string(), "c".to_string()]);
        assert_eq!((op.as_str(), q.as_str()), ("=~", r#""a\\(b|c""#));
    }

    #[test]
    fn queries_render_with_the_adapters_fields() {
        let c = AdapterConfig::parse(
            "rules:\n- {seriesQuery: 'http_requests_total', metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>) + 0*<<index .LabelValuesByName \"namespace\" | len>>'}\n",
        )
        .unwrap();
        let values = BTreeMap::from([("namespace".to_string(), "shop".to_string())]);
        let (op, q) = quoted_names(&["a".to_string(), "b".to_string()]);
        let q = render_query(
            &c.rules[0].metrics_query,
            "http_requests_total",
            &["namespace=\"shop\"".to_string(), format!("pod{op}{q}")],
            &["pod".to_string()],
            &values,
        )
        .unwrap();
        assert_eq!(
            q,
            r#"sum(rate(http_requests_total{namespace="shop",pod=~"a|b"}[2m])) by (pod) + 0*4"#
        );
    }

    proptest::proptest! {
        /// Any request path is read or refused; any name is quoted so
        /// that the quote round-trips through Rust's own unescaping of the
        /// common cases without panicking.
        #[test]
        fn any_path_and_name_is_handled(path in "[a-z0-9*/._-]{0,60}", name in ".{0,20}") {
            let _ = parse_custom_path(&path);
            let q = promql_quote(&name);
            proptest::prop_assert!(q.starts_with('"') && q.ends_with('"'));
            let _ = quoted_names(&[name.clone(), name]);
        }
    }
}
