//! The `__meta_kubernetes_*` labels every role shares: an object's labels
//! and annotations (and their `...present` twins), with names made valid
//! label names as Prometheus makes them.

use crate::labels::Labels;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Every character that cannot be in a label name becomes `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `<prefix>_label_<name>`, `<prefix>_labelpresent_<name>` and the same
/// for annotations, e.g. `__meta_kubernetes_pod_label_app`.
pub fn object_labels(out: &mut Labels, prefix: &str, meta: &ObjectMeta) {
    for (kind, map) in [("label", &meta.labels), ("annotation", &meta.annotations)] {
        for (k, v) in map.iter().flatten() {
            let name = sanitize(k);
            out.set(format!("{prefix}_{kind}_{name}"), v.as_str());
            out.set(format!("{prefix}_{kind}present_{name}"), "true");
        }
    }
}

/// `host:port`, with IPv6 addresses in brackets.
pub fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Where a group came from: `<role>/<namespace>/<name>` (or
/// `<role>/<name>` for cluster-wide objects), as Prometheus names it.
pub fn source(role: &str, meta: &ObjectMeta) -> String {
    let name = meta.name.as_deref().unwrap_or("");
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{role}/{ns}/{name}"),
        _ => format!("{role}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_label_names() {
        assert_eq!(sanitize("app.kubernetes.io/name"), "app_kubernetes_io_name");
        let meta = ObjectMeta {
            labels: Some([("app.kubernetes.io/name".into(), "web".into())].into()),
            annotations: Some([("prometheus.io/scrape".into(), "true".into())].into()),
            ..Default::default()
        };
        let mut l = Labels::new();
        object_labels(&mut l, "__meta_kubernetes_pod", &meta);
        assert_eq!(
            l.get("__meta_kubernetes_pod_label_app_kubernetes_io_name"),
            Some("web")
        );
        assert_eq!(
            l.get("__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name"),
            Some("true")
        );
        assert_eq!(
            l.get("__meta_kubernetes_pod_annotation_prometheus_io_scrape"),
            Some("true")
        );
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
    }
}
