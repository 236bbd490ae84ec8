//! `role: pod`: a target per declared container port (and one per
//! container without ports, at the pod's IP), with Prometheus's
//! `__meta_kubernetes_pod_*` labels.

use super::meta::{join_host_port, object_labels, source};
use crate::labels::Labels;
use crate::target::TargetGroup;
use k8s_openapi::api::core::v1::Pod;

/// The pod's group; `None` when it has no IP yet (nothing to scrape).
pub fn group(pod: &Pod) -> TargetGroup {
    let meta = &pod.metadata;
    let mut tg = TargetGroup {
        source: source("pod", meta),
        ..TargetGroup::default()
    };
    let status = pod.status.clone().unwrap_or_default();
    let Some(ip) = status.pod_ip.clone().filter(|ip| !ip.is_empty()) else {
        return tg;
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let l = &mut tg.labels;
    l.set(
        "__meta_kubernetes_namespace",
        meta.namespace.clone().unwrap_or_default(),
    );
    l.set(
        "__meta_kubernetes_pod_name",
        meta.name.clone().unwrap_or_default(),
    );
    l.set("__meta_kubernetes_pod_ip", ip.as_str());
    l.set(
        "__meta_kubernetes_pod_uid",
        meta.uid.clone().unwrap_or_default(),
    );
    l.set(
        "__meta_kubernetes_pod_node_name",
        spec.node_name.clone().unwrap_or_default(),
    );
    l.set(
        "__meta_kubernetes_pod_host_ip",
        status.host_ip.clone().unwrap_or_default(),
    );
    l.set(
        "__meta_kubernetes_pod_phase",
        status.phase.clone().unwrap_or_default(),
    );
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .map_or("unknown", |c| match c.status.as_str() {
            "True" => "true",
            "False" => "false",
            _ => "unknown",
        });
    l.set("__meta_kubernetes_pod_ready", ready);
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        l.set("__meta_kubernetes_pod_controller_kind", owner.kind.as_str());
        l.set("__meta_kubernetes_pod_controller_name", owner.name.as_str());
    }
    object_labels(l, "__meta_kubernetes_pod", meta);

    let statuses: Vec<_> = status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .collect();
    let containers = spec
        .containers
        .iter()
        .map(|c| (c, false))
        .chain(spec.init_containers.iter().flatten().map(|c| (c, true)));
    for (c, init) in containers {
        let id = statuses
            .iter()
            .find(|s| s.name == c.name)
            .and_then(|s| s.container_id.clone())
            .unwrap_or_default();
        let mut base = Labels::new();
        base.set("__meta_kubernetes_pod_container_name", c.name.as_str());
        base.set(
            "__meta_kubernetes_pod_container_image",
            c.image.clone().unwrap_or_default(),
        );
        base.set("__meta_kubernetes_pod_container_id", id);
        base.set(
            "__meta_kubernetes_pod_container_init",
            if init { "true" } else { "false" },
        );
        let ports = c.ports.clone().unwrap_or_default();
        if ports.is_empty() {
            let mut t = base.clone();
            t.set("__address__", ip.as_str());
            tg.targets.push(t);
        }
        for p in ports {
            let mut t = base.clone();
            t.set("__address__", join_host_port(&ip, p.container_port));
            t.set(
                "__meta_kubernetes_pod_container_port_name",
                p.name.unwrap_or_default(),
            );
            t.set(
                "__meta_kubernetes_pod_container_port_number",
                p.container_port.to_string(),
            );
            t.set(
                "__meta_kubernetes_pod_container_port_protocol",
                p.protocol.unwrap_or_else(|| "TCP".into()),
            );
            tg.targets.push(t);
        }
    }
    tg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_per_port_and_per_portless_container() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "shop", "uid": "u1",
                "labels": {"app": "web"}, "annotations": {"prometheus.io/port": "8080"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "s1", "controller": true}]},
            "spec": {"nodeName": "node-1", "containers": [
                {"name": "app", "image": "web:1", "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090, "protocol": "UDP"}]},
                {"name": "sidecar", "image": "side:2"}],
                "initContainers": [{"name": "init", "image": "busybox"}]},
            "status": {"podIP": "10.1.2.3", "hostIP": "192.168.0.5", "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "containerID": "containerd://abc", "image": "web:1", "imageID": "", "ready": true, "restartCount": 0}]}
        }))
        .unwrap();
        let tg = group(&pod);
        assert_eq!(tg.source, "pod/shop/web-0");
        let l = &tg.labels;
        for (k, v) in [
            ("__meta_kubernetes_namespace", "shop"),
            ("__meta_kubernetes_pod_name", "web-0"),
            ("__meta_kubernetes_pod_ip", "10.1.2.3"),
            ("__meta_kubernetes_pod_node_name", "node-1"),
            ("__meta_kubernetes_pod_host_ip", "192.168.0.5"),
            ("__meta_kubernetes_pod_ready", "true"),
            ("__meta_kubernetes_pod_phase", "Running"),
            ("__meta_kubernetes_pod_controller_kind", "StatefulSet"),
            ("__meta_kubernetes_pod_controller_name", "web"),
            ("__meta_kubernetes_pod_label_app", "web"),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_port",
                "8080",
            ),
        ] {
            assert_eq!(l.get(k), Some(v), "{k}");
        }
        let addrs: Vec<(&str, &str)> = tg
            .targets
            .iter()
            .map(|t| {
                (
                    t.get("__address__").unwrap_or(""),
                    t.get("__meta_kubernetes_pod_container_name").unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            addrs,
            [
                ("10.1.2.3:8080", "app"),
                ("10.1.2.3:9090", "app"),
                ("10.1.2.3", "sidecar"),
                ("10.1.2.3", "init")
            ]
        );
        let http = &tg.targets[0];
        assert_eq!(
            http.get("__meta_kubernetes_pod_container_port_name"),
            Some("http")
        );
        assert_eq!(
            http.get("__meta_kubernetes_pod_container_port_protocol"),
            Some("TCP")
        );
        assert_eq!(
            http.get("__meta_kubernetes_pod_container_id"),
            Some("containerd://abc")
        );
        assert_eq!(
            tg.targets[1].get("__meta_kubernetes_pod_container_port_protocol"),
            Some("UDP")
        );
        assert_eq!(
            tg.targets[3].get("__meta_kubernetes_pod_container_init"),
            Some("true")
        );
    }

    #[test]
    fn a_pod_without_an_ip_has_no_targets() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pending", "namespace": "shop"},
            "spec": {"containers": [{"name": "app"}]}
        }))
        .unwrap();
        let tg = group(&pod);
        assert!(tg.targets.is_empty());
        assert_eq!(tg.source, "pod/shop/pending");
    }
}
