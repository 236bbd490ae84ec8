//! API discovery as the kube-aggregator and clients read it: the group
//! list, the group, the resource list of `metrics.k8s.io/v1beta1`, and a
//! minimal OpenAPI v2 document (valid Swagger 2.0, so the aggregator's
//! download succeeds and `kubectl` does not warn).

use serde_json::{json, Value};

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";

fn group_version() -> String {
    format!("{GROUP}/{VERSION}")
}

/// An `APIGroup`: its versions, the first preferred.
pub fn group(name: &str, versions: &[&str]) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(versions.first().copied().unwrap_or(VERSION)),
    })
}

/// `GET /apis`: the plain `APIGroupList` (the aggregator then reads each
/// group version's resource list).
pub fn group_list(groups: &[(&str, &[&str])]) -> Value {
    let groups: Vec<Value> = groups
        .iter()
        .map(|(name, versions)| {
            let mut g = group(name, versions);
            if let Some(o) = g.as_object_mut() {
                o.remove("kind");
                o.remove("apiVersion");
            }
            g
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/metrics.k8s.io/v1beta1`, as metrics-server lists it.
pub fn resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(),
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
        ],
    })
}

/// `GET /openapi/v2`: no definitions, but a valid document.
pub fn openapi_v2() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": "Vigil metrics APIs", "version": env!("CARGO_PKG_VERSION")},
        "paths": {},
    })
}
