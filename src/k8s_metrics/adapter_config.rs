//! prometheus-adapter's configuration, read unchanged so users paste
//! their existing file: `rules` (custom metrics), `externalRules`
//! (external metrics) and `resourceRules` (an alternative source for the
//! resource metrics API). Strict as the adapter is (unknown keys are
//! errors), and checked whole at load: every error names the rule and
//! field (`rules[2].name.matches: ...`), so a config that cannot work is
//! refused before it serves anything (`vigil check k8s-metrics FILE`).

use super::resources::{resolve, resolve_known, ResourceInfo};
use alerting::template::{Template, Value};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    rules: Vec<RuleConfig>,
    #[serde(default, rename = "externalRules")]
    external_rules: Vec<RuleConfig>,
    #[serde(default, rename = "resourceRules")]
    resource_rules: Option<ResourceRulesConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    #[serde(default, rename = "seriesQuery")]
    series_query: String,
    #[serde(default, rename = "seriesFilters")]
    series_filters: Vec<FilterConfig>,
    #[serde(default)]
    resources: ResourcesConfig,
    #[serde(default)]
    name: NameConfig,
    #[serde(default, rename = "metricsQuery")]
    metrics_query: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterConfig {
    is: Option<String>,
    #[serde(rename = "isNot")]
    is_not: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourcesConfig {
    template: Option<String>,
    #[serde(default)]
    overrides: BTreeMap<String, GroupResourceConfig>,
    namespaced: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupResourceConfig {
    #[serde(default)]
    group: String,
    #[serde(default)]
    resource: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameConfig {
    #[serde(default)]
    matches: String,
    #[serde(default, rename = "as")]
    as_: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceRulesConfig {
    cpu: ResourceRuleConfig,
    memory: ResourceRuleConfig,
    #[serde(default)]
    window: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceRuleConfig {
    #[serde(default, rename = "containerQuery")]
    container_query: String,
    #[serde(default, rename = "nodeQuery")]
    node_query: String,
    #[serde(default)]
    resources: ResourcesConfig,
    #[serde(default, rename = "containerLabel")]
    container_label: String,
}

/// A Kubernetes group-resource (`pods`, `deployments.apps`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

/// How a rule's series labels name Kubernetes objects.
#[derive(Debug, Clone)]
pub struct Resources {
    /// `<<.Group>>` / `<<.Resource>>` template naming the label of a resource.
    pub template: Option<Template>,
    /// Label → resource, winning over the template.
    pub overrides: BTreeMap<String, GroupResource>,
    /// External rules only: whether `namespace` narrows the query.
    pub namespaced: bool,
    /// The template read backwards: a label name → its group and resource.
    label_pattern: Option<Regex>,
}

impl Resources {
    /// The resource a series label names: an override, else the template
    /// read backwards (built-in resources only, as a REST mapper would
    /// find them).
    pub fn resource_for_label(&self, label: &str) -> Option<ResourceInfo> {
        if let Some(gr) = self.overrides.get(label) {
            return Some(resolve(&gr.group, &gr.resource));
        }
        let caps = self.label_pattern.as_ref()?.captures(label)?;
        let group = caps.name("group").map_or("", |m| m.as_str());
        resolve_known(&group.replace('_', "."), caps.name("resource")?.as_str())
    }

    /// The label that names `r`'s objects: an override, else the template
    /// with the group's dots and dashes as `_` and the resource singular.
    pub fn label_for_resource(&self, r: &ResourceInfo) -> Option<String> {
        let by_override = self.overrides.iter().find(|(_, gr)| {
            let o = resolve(&gr.group, &gr.resource);
            o.plural == r.plural && o.group == r.group
        });
        if let Some((label, _)) = by_override {
            return Some(label.clone());
        }
        let dot = Value::Map(BTreeMap::from([
            (
                "Group".to_string(),
                Value::Str(r.group.replace(['.', '-'], "_")),
            ),
            ("Resource".to_string(), Value::Str(r.singular.clone())),
        ]));
        self.template.as_ref()?.render(dot).ok()
    }
}

/// The regex that reads a label-name template backwards: the template
/// rendered with markers, escaped, the markers turned into groups.
fn label_pattern(t: &Template) -> Result<Regex, String> {
    const G: &str = "\u{1}G\u{1}";
    const R: &str = "\u{1}R\u{1}";
    let dot = Value::Map(BTreeMap::from([
        ("Group".to_string(), Value::Str(G.into())),
        ("Resource".to_string(), Value::Str(R.into())),
    ]));
    let rendered = t.render(dot)?;
    let pattern = regex::escape(&rendered)
        .replace(G, "(?P<group>.+?)")
        .replace(R, "(?P<resource>.+?)");
    Regex::new(&format!("^{pattern}$")).map_err(|e| e.to_string())
}

/// One compiled discovery rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Where the rule sits, for errors: `rules[0]`.
    pub position: String,
    pub series_query: String,
    /// (regex, must match): the `seriesFilters`, then `name.matches`.
    pub filters: Vec<(Regex, bool)>,
    pub name_matches: Regex,
    pub name_as: String,
    pub resources: Resources,
    pub metrics_query: Template,
}

/// `resourceRules`: queries for the resource metrics API, which then
/// answers from them instead of the agent's series.
#[derive(Debug, Clone)]
pub struct ResourceRule {
    pub container_query: Template,
    pub node_query: Template,
    pub resources: Resources,
    pub container_label: String,
}

#[derive(Debug, Clone)]
pub struct ResourceRules {
    pub cpu: ResourceRule,
    pub memory: ResourceRule,
    pub window: Duration,
}

/// A loaded, checked prometheus-adapter configuration.
#[derive(Debug, Clone)]
pub struct AdapterConfig {
    pub rules: Vec<Rule>,
    pub external_rules: Vec<Rule>,
    pub resource_rules: Option<ResourceRules>,
}

fn template(at: &str, text: &str) -> Result<Template, String> {
    Template::parse_with_delims(at, text, "<<", ">>").map_err(|e| format!("{at}: {e}"))
}

fn resources(at: &str, r: ResourcesConfig) -> Result<Resources, String> {
    let template = r
        .template
        .as_deref()
        .map(|t| template(&format!("{at}.template"), t))
        .transpose()?;
    let mut overrides = BTreeMap::new();
    for (label, gr) in r.overrides {
        if !tsdb::labels::is_valid_label_name(&label) {
            return Err(format!(
                "{at}.overrides: {label:?} is not a valid label name"
            ));
        }
        if gr.resource.is_empty() {
            return Err(format!(
                "{at}.overrides.{label}.resource: a resource is required"
            ));
        }
        overrides.insert(
            label,
            GroupResource {
                group: gr.group,
                resource: gr.resource,
            },
        );
    }
    let label_pattern = template
        .as_ref()
        .map(label_pattern)
        .transpose()
        .map_err(|e| format!("{at}.template: {e}"))?;
    Ok(Resources {
        template,
        overrides,
        namespaced: r.namespaced.unwrap_or(true),
        label_pattern,
    })
}

fn rule(at: String, r: RuleConfig) -> Result<Rule, String> {
    if r.series_query.trim().is_empty() {
        return Err(format!("{at}.seriesQuery: a series query is required"));
    }
    crate::selector::parse_selector(&r.series_query)
        .map_err(|e| format!("{at}.seriesQuery: {e}"))?;
    let mut filters = Vec::new();
    for (i, f) in r.series_filters.into_iter().enumerate() {
        let fat = format!("{at}.seriesFilters[{i}]");
        let (text, keep) = match (f.is, f.is_not) {
            (Some(t), None) => (t, true),
            (None, Some(t)) => (t, false),
            _ => return Err(format!("{fat}: exactly one of is and isNot is required")),
        };
        let re = Regex::new(&text).map_err(|e| format!("{fat}: {e}"))?;
        filters.push((re, keep));
    }
    let matches = if r.name.matches.is_empty() {
        ".*".to_string()
    } else {
        r.name.matches
    };
    let name_matches = Regex::new(&matches).map_err(|e| format!("{at}.name.matches: {e}"))?;
    // As the adapter: without `as`, the whole match, or the only group.
    let groups = name_matches.captures_len() - 1;
    let name_as = match (r.name.as_.is_empty(), groups) {
        (false, _) => r.name.as_,
        (true, 0) => "$0".into(),
        (true, 1) => "$1".into(),
        (true, _) => {
            return Err(format!(
                "{at}.name.as: required when name.matches {matches:?} has more than one group"
            ))
        }
    };
    // The name filter is one more `is` filter, as in the adapter.
    filters.push((name_matches.clone(), true));
    if r.metrics_query.trim().is_empty() {
        return Err(format!("{at}.metricsQuery: a query template is required"));
    }
    let metrics_query = template(&format!("{at}.metricsQuery"), &r.metrics_query)?;
    Ok(Rule {
        resources: resources(&format!("{at}.resources"), r.resources)?,
        position: at,
        series_query: r.series_query,
        filters,
        name_matches,
        name_as,
        metrics_query,
    })
}

fn resource_rule(at: &str, r: ResourceRuleConfig) -> Result<ResourceRule, String> {
    for (field, text) in [
        ("containerQuery", &r.container_query),
        ("nodeQuery", &r.node_query),
    ] {
        if text.trim().is_empty() {
            return Err(format!("{at}.{field}: a query template is required"));
        }
    }
    Ok(ResourceRule {
        container_query: template(&format!("{at}.containerQuery"), &r.container_query)?,
        node_query: template(&format!("{at}.nodeQuery"), &r.node_query)?,
        resources: resources(&format!("{at}.resources"), r.resources)?,
        container_label: r.container_label,
    })
}

impl AdapterConfig {
    pub fn parse(text: &str) -> Result<AdapterConfig, String> {
        let file: FileConfig = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let rules = file
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| rule(format!("rules[{i}]"), r))
            .collect::<Result<_, _>>()?;
        let external_rules = file
            .external_rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| rule(format!("externalRules[{i}]"), r))
            .collect::<Result<_, _>>()?;
        let resource_rules = match file.resource_rules {
            None => None,
            Some(rr) => {
                if rr.window.is_empty() {
                    return Err("resourceRules.window: a window is required (e.g. 5m)".into());
                }
                let window = vigil_config::duration::parse(&rr.window)
                    .map_err(|e| format!("resourceRules.window: {e}"))?;
                if window.is_zero() {
                    return Err("resourceRules.window: must be greater than 0".into());
                }
                Some(ResourceRules {
                    cpu: resource_rule("resourceRules.cpu", rr.cpu)?,
                    memory: resource_rule("resourceRules.memory", rr.memory)?,
                    window,
                })
            }
        };
        Ok(AdapterConfig {
            rules,
            external_rules,
            resource_rules,
        })
    }

    pub fn load(path: &Path) -> Result<AdapterConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl Rule {
    /// The metric name this rule gives a series, or None when the
    /// series does not pass the rule's filters.
    pub fn metric_name(&self, series: &str) -> Option<String> {
        if !self
            .filters
            .iter()
            .all(|(re, keep)| re.is_match(series) == *keep)
        {
            return None;
        }
        let caps = self.name_matches.captures(series)?;
        let mut out = String::new();
        caps.expand(&self.name_as, &mut out);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// prometheus-adapter's documented configurations (see the file).
    const CORPUS: &str = include_str!("../../tests/k8s/adapter-corpus.yaml");

    #[test]
    fn the_adapters_documented_configs_load() {
        let c = AdapterConfig::parse(CORPUS).unwrap();
        assert_eq!(c.rules.len(), 6);
        assert_eq!(c.external_rules.len(), 2);
        assert!(!c.external_rules[1].resources.namespaced);
        assert!(c.external_rules[0].resources.namespaced);
        let rr = c.resource_rules.unwrap();
        assert_eq!(rr.window, Duration::from_secs(300));
        assert_eq!(rr.cpu.container_label, "container");
        // Names as the adapter derives them.
        let r = &c.rules;
        assert_eq!(
            r[0].metric_name("container_cpu_usage_seconds_total")
                .as_deref(),
            Some("cpu_usage")
        );
        assert_eq!(r[1].metric_name("container_cpu_usage_seconds_total"), None);
        assert_eq!(
            r[1].metric_name("container_network_receive_bytes_total")
                .as_deref(),
            Some("network_receive_bytes")
        );
        assert_eq!(
            r[2].metric_name("http_requests_total").as_deref(),
            Some("http_requests")
        );
        assert_eq!(r[2].metric_name("queue_length"), None);
        assert_eq!(
            r[3].metric_name("cheddar").as_deref(),
            Some("cheesy_goodness")
        );
        assert_eq!(
            r[4].metric_name("http_requests_total").as_deref(),
            Some("http_requests_per_second")
        );
        assert_eq!(
            r[5].metric_name("http_requests_total").as_deref(),
            Some("http_requests")
        );
        // The cheese rule names a custom resource by its group.
        let brand = r[3].resources.resource_for_label("brand").unwrap();
        assert_eq!(brand.qualified(), "brand.cheese.io");
    }

    #[test]
    fn labels_and_resources_map_both_ways() {
        let c = AdapterConfig::parse(
            "rules:\n- {seriesQuery: up, metricsQuery: x, resources: {template: 'kube_<<.Group>>_<<.Resource>>', overrides: {ns: {resource: namespace}}}}\n- {seriesQuery: up, metricsQuery: x, resources: {template: '<<.Resource>>'}}\n",
        )
        .unwrap();
        let r = &c.rules[0].resources;
        let d = r.resource_for_label("kube_apps_deployment").unwrap();
        assert_eq!(d.qualified(), "deployments.apps");
        assert_eq!(
            r.label_for_resource(&d).as_deref(),
            Some("kube_apps_deployment")
        );
        assert_eq!(r.resource_for_label("ns").unwrap().plural, "namespaces");
        assert_eq!(
            r.label_for_resource(&resolve("", "namespaces")).as_deref(),
            Some("ns")
        );
        let plain = &c.rules[1].resources;
        assert_eq!(plain.resource_for_label("pod").unwrap().plural, "pods");
        assert!(plain.resource_for_label("instance").is_none());
        assert_eq!(
            plain.label_for_resource(&resolve("", "pods")).as_deref(),
            Some("pod")
        );
    }

    #[test]
    fn configs_that_cannot_work_are_refused_with_the_field_named() {
        for (text, want) in [
            ("rules: [{metricsQuery: x}]", "rules[0].seriesQuery: a series query is required"),
            ("rules: [{seriesQuery: 'up{', metricsQuery: x}]", "rules[0].seriesQuery:"),
            ("rules: [{seriesQuery: up}]", "rules[0].metricsQuery: a query template is required"),
            ("rules: [{seriesQuery: up, metricsQuery: '<<.Series'}]", "rules[0].metricsQuery: template"),
            (
                "rules: [{seriesQuery: up, metricsQuery: x, seriesFilters: [{is: a, isNot: b}]}]",
                "rules[0].seriesFilters[0]: exactly one of is and isNot",
            ),
            ("rules: [{seriesQuery: up, metricsQuery: x, seriesFilters: [{is: '('}]}]", "rules[0].seriesFilters[0]:"),
            ("rules: [{seriesQuery: up, metricsQuery: x, name: {matches: '(a)(b)'}}]", "rules[0].name.as: required"),
            (
                "externalRules: [{seriesQuery: up, metricsQuery: x, resources: {overrides: {ns: {group: x}}}}]",
                "externalRules[0].resources.overrides.ns.resource: a resource is required",
            ),
            ("rules: [{seriesQuery: up, metricsQuery: x, bogus: 1}]", "unknown field `bogus`"),
            (
                "resourceRules: {cpu: {containerQuery: a, nodeQuery: b}, memory: {containerQuery: a}, window: 5m}",
                "resourceRules.memory.nodeQuery: a query template is required",
            ),
            (
                "resourceRules: {cpu: {containerQuery: a, nodeQuery: b}, memory: {containerQuery: a, nodeQuery: b}}",
                "resourceRules.window: a window is required",
            ),
        ] {
            let e = AdapterConfig::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    proptest::proptest! {
        /// Any YAML-ish text is loaded or refused with a message.
        #[test]
        fn any_config_text_is_handled(text in ".{0,200}") {
            let _ = AdapterConfig::parse(&text);
        }

        /// Any series name goes through any loaded rule without panicking.
        #[test]
        fn any_series_name_is_named_or_not(name in ".{0,40}") {
            let c = AdapterConfig::parse(CORPUS).unwrap();
            for r in c.rules.iter().chain(&c.external_rules) {
                let _ = r.metric_name(&name);
                let _ = r.resources.resource_for_label(&name);
            }
        }
    }
}
