//! `NodeMetrics` and `PodMetrics` (and their lists) as metrics-server
//! writes them (k8s.io/metrics `v1beta1` types): `metadata` with the
//! object's name, namespace and labels and `creationTimestamp` = when the
//! answer is built, `timestamp` of the newest point (seconds, UTC),
//! `window` as a Go duration, and usage as quantities (CPU in the decimal
//! form of nanocores, memory in binary units).

use super::discovery::{GROUP, VERSION};
use super::quantity::{bytes, go_duration, nanocores};
use super::usage::Usage;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A pod with metrics for every container it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PodUsage {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// By container name.
    pub containers: BTreeMap<String, Usage>,
}

impl PodUsage {
    /// The pod's point: that of its container with the earliest timestamp,
    /// as metrics-server reports it.
    fn point(&self) -> Option<&Usage> {
        self.containers.values().min_by_key(|u| u.timestamp_ms)
    }
}

/// A metav1.Time: RFC 3339 in UTC, whole seconds.
pub fn rfc3339_seconds(ms: i64) -> Value {
    match chrono::DateTime::from_timestamp(ms.div_euclid(1000), 0) {
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        None => Value::Null,
    }
}

fn metadata(
    name: &str,
    namespace: Option<&str>,
    labels: &BTreeMap<String, String>,
    now_ms: i64,
) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        m.insert("namespace".into(), json!(ns));
    }
    m.insert("creationTimestamp".into(), rfc3339_seconds(now_ms));
    if !labels.is_empty() {
        m.insert("labels".into(), json!(labels));
    }
    Value::Object(m)
}

fn usage(u: &Usage) -> Value {
    json!({"cpu": nanocores(u.nanocores), "memory": bytes(u.memory_bytes)})
}

fn stamp(mut v: Value, kind: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        let mut out = Map::new();
        out.insert("kind".into(), json!(kind));
        out.insert("apiVersion".into(), json!(format!("{GROUP}/{VERSION}")));
        out.append(o);
        return Value::Object(out);
    }
    v
}

/// One node's `NodeMetrics` (list items carry no `kind`).
pub fn node_metrics(
    name: &str,
    labels: &BTreeMap<String, String>,
    u: &Usage,
    now_ms: i64,
    single: bool,
) -> Value {
    let v = json!({
        "metadata": metadata(name, None, labels, now_ms),
        "timestamp": rfc3339_seconds(u.timestamp_ms),
        "window": go_duration(u.window_ms),
        "usage": usage(u),
    });
    if single {
        stamp(v, "NodeMetrics")
    } else {
        v
    }
}

pub fn pod_metrics(p: &PodUsage, now_ms: i64, single: bool) -> Value {
    let (timestamp, window) = match p.point() {
        Some(u) => (
            rfc3339_seconds(u.timestamp_ms),
            json!(go_duration(u.window_ms)),
        ),
        None => (Value::Null, json!("0s")),
    };
    let containers: Vec<Value> = p
        .containers
        .iter()
        .map(|(name, u)| json!({"name": name, "usage": usage(u)}))
        .collect();
    let v = json!({
        "metadata": metadata(&p.name, Some(&p.namespace), &p.labels, now_ms),
        "timestamp": timestamp,
        "window": window,
        "containers": containers,
    });
    if single {
        stamp(v, "PodMetrics")
    } else {
        v
    }
}

/// A list written item by item, so a large answer never exists twice
/// (as objects and as text): the JSON bytes of `{kind}` with `items`.
pub fn list_bytes(kind: &str, items: impl Iterator<Item = Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 << 10);
    out.extend_from_slice(
        format!(r#"{{"kind":"{kind}","apiVersion":"{GROUP}/{VERSION}","metadata":{{}},"items":["#)
            .as_bytes(),
    );
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &item);
    }
    out.extend_from_slice(b"]}");
    out
}

pub fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({
        "kind": kind,
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(nanocores: u64, memory_bytes: u64, timestamp_ms: i64, window_ms: i64) -> Usage {
        Usage {
            nanocores,
            memory_bytes,
            timestamp_ms,
            window_ms,
        }
    }

    /// Field by field against k8s.io/metrics' v1beta1 `PodMetrics`.
    #[test]
    fn pod_metrics_shape() {
        let p = PodUsage {
            namespace: "default".into(),
            name: "web-1".into(),
            labels: [("app".to_string(), "web".to_string())].into(),
            containers: [
                (
                    "web".to_string(),
                    u(2_145_613, 12_640_256, 1_787_219_997_500, 14_998),
                ),
                (
                    "sidecar".to_string(),
                    u(250_000_000, 4096, 1_787_219_999_000, 15_000),
                ),
            ]
            .into(),
        };
        let got = pod_metrics(&p, 1_787_220_005_000, true);
        let want = json!({
            "kind": "PodMetrics",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": "web-1", "namespace": "default",
                         "creationTimestamp": "2026-08-20T10:00:05Z", "labels": {"app": "web"}},
            "timestamp": "2026-08-20T09:59:57Z",
            "window": "14.998s",
            "containers": [
                {"name": "sidecar", "usage": {"cpu": "250m", "memory": "4Ki"}},
                {"name": "web", "usage": {"cpu": "2145613n", "memory": "12344Ki"}},
            ],
        });
        assert_eq!(got, want);
        // List items carry neither kind nor apiVersion.
        let item = pod_metrics(&p, 1_787_220_005_000, false);
        assert!(item.get("kind").is_none() && item.get("apiVersion").is_none());
    }

    #[test]
    fn node_metrics_shape() {
        let got = node_metrics(
            "node-a",
            &BTreeMap::new(),
            &u(123_456_789, 2_097_741_824, 1_787_219_998_000, 15_012),
            1_787_220_005_000,
            false,
        );
        let want = json!({
            "metadata": {"name": "node-a", "creationTimestamp": "2026-08-20T10:00:05Z"},
            "timestamp": "2026-08-20T09:59:58Z",
            "window": "15.012s",
            "usage": {"cpu": "123456789n", "memory": "2048576Ki"},
        });
        assert_eq!(got, want);
        let l = list("NodeMetricsList", vec![got.clone()]);
        assert_eq!(l["kind"], "NodeMetricsList");
        assert_eq!(l["metadata"], json!({}));
        let streamed: Value = serde_json::from_slice(&list_bytes(
            "NodeMetricsList",
            [got.clone(), got].into_iter(),
        ))
        .unwrap();
        assert_eq!(streamed["items"].as_array().map(Vec::len), Some(2));
        assert_eq!(streamed["apiVersion"], l["apiVersion"]);
    }
}
