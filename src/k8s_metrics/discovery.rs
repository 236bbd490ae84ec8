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

fn group_object() -> Value {
    let gv = json!({"groupVersion": group_version(), "version": VERSION});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [gv.clone()],
        "preferredVersion": gv,
    })
}

/// `GET /apis`: the plain `APIGroupList` (the aggregator then reads each
/// group version's resource list).
pub fn group_list() -> Value {
    let mut g = group_object();
    if let Some(o) = g.as_object_mut() {
        o.remove("kind");
        o.remove("apiVersion");
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [g]})
}

/// `GET /apis/metrics.k8s.io`.
pub fn group() -> Value {
    group_object()
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
