//! `role: node`: one target per node, its kubelet (the node's preferred
//! address and the kubelet's port), with `__meta_kubernetes_node_*`
//! labels and `instance` set to the node's name, as Prometheus does.

use super::meta::{join_host_port, object_labels, sanitize, source};
use crate::labels::Labels;
use crate::target::TargetGroup;
use k8s_openapi::api::core::v1::Node;

/// Prometheus's order of preference among a node's addresses.
const ADDRESS_ORDER: [&str; 6] = [
    "InternalIP",
    "InternalDNS",
    "ExternalIP",
    "ExternalDNS",
    "LegacyHostIP",
    "Hostname",
];

pub fn group(node: &Node) -> TargetGroup {
    let meta = &node.metadata;
    let mut tg = TargetGroup {
        source: source("node", meta),
        ..TargetGroup::default()
    };
    let status = node.status.clone().unwrap_or_default();
    let addresses = status.addresses.unwrap_or_default();
    let Some(addr) = ADDRESS_ORDER
        .iter()
        .find_map(|kind| addresses.iter().find(|a| a.type_ == *kind))
        .map(|a| a.address.clone())
    else {
        tracing::debug!(node = ?meta.name, "node has no address; not a target");
        return tg;
    };
    let port = status
        .daemon_endpoints
        .and_then(|d| d.kubelet_endpoint)
        .map_or(10250, |e| e.port);
    let name = meta.name.clone().unwrap_or_default();
    let mut t = Labels::new();
    t.set("__address__", join_host_port(&addr, port));
    t.set("instance", name.as_str());
    t.set("__meta_kubernetes_node_name", name.as_str());
    t.set(
        "__meta_kubernetes_node_provider_id",
        node.spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default(),
    );
    object_labels(&mut t, "__meta_kubernetes_node", meta);
    // The first address of each type.
    for a in addresses.iter().rev() {
        t.set(
            format!("__meta_kubernetes_node_address_{}", sanitize(&a.type_)),
            a.address.as_str(),
        );
    }
    tg.targets.push(t);
    tg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelet_at_the_preferred_address() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "node-1", "labels": {"kubernetes.io/os": "linux"}},
            "spec": {"providerID": "kind://docker/kind/node-1"},
            "status": {"addresses": [
                {"type": "Hostname", "address": "node-1"},
                {"type": "InternalIP", "address": "172.18.0.2"},
                {"type": "InternalIP", "address": "172.18.0.9"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}
        }))
        .unwrap();
        let tg = group(&node);
        assert_eq!(tg.source, "node/node-1");
        let t = &tg.targets[0];
        assert_eq!(t.get("__address__"), Some("172.18.0.2:10250"));
        assert_eq!(t.get("instance"), Some("node-1"));
        assert_eq!(
            t.get("__meta_kubernetes_node_address_InternalIP"),
            Some("172.18.0.2")
        );
        assert_eq!(
            t.get("__meta_kubernetes_node_address_Hostname"),
            Some("node-1")
        );
        assert_eq!(
            t.get("__meta_kubernetes_node_label_kubernetes_io_os"),
            Some("linux")
        );
        assert_eq!(
            t.get("__meta_kubernetes_node_provider_id"),
            Some("kind://docker/kind/node-1")
        );
    }
}
