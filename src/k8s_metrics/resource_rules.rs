//! prometheus-adapter's `resourceRules` as the source of the resource
//! metrics API, for users who keep their adapter's queries: the CPU and
//! memory `containerQuery` (grouped by pod, namespace and the
//! `containerLabel`) and `nodeQuery` (grouped by node) run as instant
//! PromQL queries; values are taken as the adapter takes them (thousandths
//! of a core, truncated; not a number or negative is 0; a container with
//! only one of the two gets 0 for the other), the timestamp is the
//! earliest sample's and the window is `resourceRules.window`.

use super::adapter_config::{ResourceRule, ResourceRules};
use super::custom::{render_query, Adapter, Answer};
use super::resources::resolve;
use super::usage::{ContainerUsage, PodFilter, Usage};
use std::collections::BTreeMap;
use tsdb::Db;

fn label_of(rule: &ResourceRule, resource: &str) -> Result<String, String> {
    rule.resources
        .label_for_resource(&resolve("", resource))
        .ok_or_else(|| {
            format!("resourceRules: no label names {resource} (resources.overrides or template)")
        })
}

/// Thousandths of a core, as nanocores.
fn nanocores(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        ((v * 1000.0).trunc() as u64).saturating_mul(1_000_000)
    } else {
        0
    }
}

fn bytes(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.trunc() as u64
    } else {
        0
    }
}

/// Runs one rule's query; answers by the values of `keys`.
fn query(
    adapter: &Adapter,
    db: &Db,
    now: i64,
    template: &alerting::template::Template,
    matchers: &[String],
    keys: &[String],
) -> Result<Vec<(Vec<String>, i64, f64)>, String> {
    let promql = render_query(template, "", matchers, keys, &BTreeMap::new())?;
    let answers: Vec<Answer> = adapter.instant(db, &promql, now)?;
    Ok(answers
        .into_iter()
        .filter_map(|(labels, t, v)| {
            let labels = labels?;
            let k: Option<Vec<String>> = keys.iter().map(|k| labels.get(k).cloned()).collect();
            k.map(|k| (k, t, v))
        })
        .collect())
}

/// Every container's usage (of the pods `only` names), by pod.
pub fn containers(
    adapter: &Adapter,
    rules: &ResourceRules,
    db: &Db,
    now: i64,
    only: &PodFilter<'_>,
) -> Result<ContainerUsage, String> {
    let window_ms = i64::try_from(rules.window.as_millis()).unwrap_or(i64::MAX);
    // (namespace, pod, container) → (cpu, memory, earliest time)
    let mut found: BTreeMap<(String, String, String), (f64, f64, i64)> = BTreeMap::new();
    for (i, rule) in [&rules.cpu, &rules.memory].into_iter().enumerate() {
        let ns = label_of(rule, "namespaces")?;
        let pod = label_of(rule, "pods")?;
        let container = if rule.container_label.is_empty() {
            "container".to_string()
        } else {
            rule.container_label.clone()
        };
        let mut matchers = Vec::new();
        if let Some(n) = only.namespace {
            matchers.push(format!("{ns}={n:?}"));
        }
        if let Some(p) = only.pod {
            matchers.push(format!("{pod}={p:?}"));
        }
        let keys = [ns, pod, container];
        for (k, t, v) in query(adapter, db, now, &rule.container_query, &matchers, &keys)? {
            let [n, p, c]: [String; 3] = match k.try_into() {
                Ok(k) => k,
                Err(_) => continue,
            };
            let e = found.entry((n, p, c)).or_insert((0.0, 0.0, t));
            if i == 0 {
                e.0 = v;
            } else {
                e.1 = v;
            }
            e.2 = e.2.min(t);
        }
    }
    let mut out = ContainerUsage::new();
    for ((ns, pod, container), (cpu, memory, t)) in found {
        out.entry((ns, pod)).or_default().insert(
            container,
            Usage {
                nanocores: nanocores(cpu),
                memory_bytes: bytes(memory),
                timestamp_ms: t,
                window_ms,
            },
        );
    }
    Ok(out)
}

/// Every node's usage, by name.
pub fn nodes(
    adapter: &Adapter,
    rules: &ResourceRules,
    db: &Db,
    now: i64,
) -> Result<BTreeMap<String, Usage>, String> {
    let window_ms = i64::try_from(rules.window.as_millis()).unwrap_or(i64::MAX);
    let mut found: BTreeMap<String, (f64, f64, i64)> = BTreeMap::new();
    for (i, rule) in [&rules.cpu, &rules.memory].into_iter().enumerate() {
        let keys = [label_of(rule, "nodes")?];
        for (k, t, v) in query(adapter, db, now, &rule.node_query, &[], &keys)? {
            let Some(node) = k.into_iter().next() else {
                continue;
            };
            let e = found.entry(node).or_insert((0.0, 0.0, t));
            if i == 0 {
                e.0 = v;
            } else {
                e.1 = v;
            }
            e.2 = e.2.min(t);
        }
    }
    Ok(found
        .into_iter()
        .map(|(node, (cpu, memory, t))| {
            let u = Usage {
                nanocores: nanocores(cpu),
                memory_bytes: bytes(memory),
                timestamp_ms: t,
                window_ms,
            };
            (node, u)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_the_adapter_takes_them() {
        assert_eq!(nanocores(0.2505), 250_000_000);
        assert_eq!(nanocores(f64::NAN), 0);
        assert_eq!(nanocores(-1.0), 0);
        assert_eq!(bytes(12_640_256.7), 12_640_256);
    }
}
