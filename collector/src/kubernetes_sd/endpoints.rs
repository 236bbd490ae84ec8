//! `role: endpoints` and `role: endpointslice`: a target per endpoint
//! address and port, labelled with the endpoint's own `__meta_kubernetes_*`
//! labels, its service's, and (where the address is a pod) the pod's and
//! the matching container's, as Prometheus joins them. Like Prometheus,
//! every other declared port of a backing pod becomes a target too.
//!
//! With `own_node`, only addresses on this agent's node are kept, so each
//! agent of a DaemonSet scrapes the endpoints that run beside it.

use super::meta::{join_host_port, object_labels, source};
use super::pod;
use super::service::service_labels;
use crate::labels::Labels;
use crate::target::TargetGroup;
use k8s_openapi::api::core::v1::{Endpoints, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeSet;

/// What the builders look objects up in.
pub trait Lookup {
    fn service(&self, namespace: &str, name: &str) -> Option<Service>;
    fn pod(&self, namespace: &str, name: &str) -> Option<Pod>;
}

/// One address of an endpoint, in the terms both roles share.
struct Address<'a> {
    ip: &'a str,
    target: Option<&'a ObjectReference>,
    node: Option<&'a str>,
    /// Labels of the address itself (ready, hostname, conditions...).
    labels: Labels,
}

/// One port, in the terms both roles share.
struct Port<'a> {
    number: i32,
    protocol: Option<&'a str>,
    /// Labels of the port (names differ between the roles).
    labels: Labels,
}

/// Adds targets for `addresses` × `ports` (and the backing pods' other
/// ports) to `tg`.
fn add_targets(
    tg: &mut TargetGroup,
    namespace: &str,
    addresses: &[Address<'_>],
    ports: &[Port<'_>],
    lookup: &dyn Lookup,
    own_node: Option<&str>,
) {
    // (pod name, container port) pairs already targeted.
    let mut covered: BTreeSet<(String, i32)> = BTreeSet::new();
    let mut pods: Vec<Pod> = Vec::new();
    for a in addresses {
        if own_node.is_some_and(|n| a.node != Some(n)) {
            continue;
        }
        let pod = a
            .target
            .filter(|t| t.kind.as_deref() == Some("Pod"))
            .and_then(|t| lookup.pod(namespace, t.name.as_deref()?));
        for p in ports {
            let mut t = a.labels.clone();
            for (k, v) in p.labels.iter() {
                t.set(k, v);
            }
            t.set("__address__", join_host_port(a.ip, p.number));
            if let Some(r) = a.target {
                t.set(
                    "__meta_kubernetes_endpoint_address_target_kind",
                    r.kind.clone().unwrap_or_default(),
                );
                t.set(
                    "__meta_kubernetes_endpoint_address_target_name",
                    r.name.clone().unwrap_or_default(),
                );
            }
            if let Some(pod) = &pod {
                pod_labels(&mut t, pod);
                // The container that declares this port, if one does.
                let spec = pod.spec.clone().unwrap_or_default();
                for c in &spec.containers {
                    for cp in c.ports.iter().flatten() {
                        let same_proto =
                            cp.protocol.as_deref().unwrap_or("TCP") == p.protocol.unwrap_or("TCP");
                        if cp.container_port == p.number && same_proto {
                            container_labels(&mut t, c, cp);
                            covered
                                .insert((pod.metadata.name.clone().unwrap_or_default(), p.number));
                        }
                    }
                }
            }
            tg.targets.push(t);
        }
        if let Some(pod) = pod {
            if !pods.iter().any(|q| q.metadata.name == pod.metadata.name) {
                pods.push(pod);
            }
        }
    }
    // Prometheus also targets the backing pods' ports no endpoint names.
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            continue;
        };
        let spec = pod.spec.clone().unwrap_or_default();
        for c in &spec.containers {
            for cp in c.ports.iter().flatten() {
                if covered.contains(&(name.clone(), cp.container_port)) {
                    continue;
                }
                let mut t = Labels::new();
                t.set("__address__", join_host_port(&ip, cp.container_port));
                pod_labels(&mut t, &pod);
                container_labels(&mut t, c, cp);
                tg.targets.push(t);
            }
        }
    }
}

/// The pod-level labels `role: pod` gives a group.
fn pod_labels(t: &mut Labels, p: &Pod) {
    for (k, v) in pod::group(p).labels.iter() {
        t.set(k, v);
    }
}

fn container_labels(
    t: &mut Labels,
    c: &k8s_openapi::api::core::v1::Container,
    cp: &k8s_openapi::api::core::v1::ContainerPort,
) {
    t.set("__meta_kubernetes_pod_container_name", c.name.as_str());
    t.set(
        "__meta_kubernetes_pod_container_image",
        c.image.clone().unwrap_or_default(),
    );
    t.set(
        "__meta_kubernetes_pod_container_port_name",
        cp.name.clone().unwrap_or_default(),
    );
    t.set(
        "__meta_kubernetes_pod_container_port_number",
        cp.container_port.to_string(),
    );
    t.set(
        "__meta_kubernetes_pod_container_port_protocol",
        cp.protocol.clone().unwrap_or_else(|| "TCP".into()),
    );
}

/// `role: endpoints`.
pub fn endpoints_group(ep: &Endpoints, lookup: &dyn Lookup, own_node: Option<&str>) -> TargetGroup {
    let meta = &ep.metadata;
    let ns = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let mut tg = TargetGroup {
        source: source("endpoints", meta),
        ..TargetGroup::default()
    };
    if let Some(svc) = lookup.service(&ns, &name) {
        service_labels(&svc, &mut tg.labels);
    }
    tg.labels.set("__meta_kubernetes_namespace", ns.as_str());
    tg.labels
        .set("__meta_kubernetes_endpoints_name", name.as_str());
    object_labels(&mut tg.labels, "__meta_kubernetes_endpoints", meta);
    for subset in ep.subsets.iter().flatten() {
        let mut addresses = Vec::new();
        for (list, ready) in [
            (&subset.addresses, "true"),
            (&subset.not_ready_addresses, "false"),
        ] {
            for a in list.iter().flatten() {
                let mut labels = Labels::new();
                labels.set("__meta_kubernetes_endpoint_ready", ready);
                labels.set(
                    "__meta_kubernetes_endpoint_hostname",
                    a.hostname.clone().unwrap_or_default(),
                );
                labels.set(
                    "__meta_kubernetes_endpoint_node_name",
                    a.node_name.clone().unwrap_or_default(),
                );
                addresses.push(Address {
                    ip: &a.ip,
                    target: a.target_ref.as_ref(),
                    node: a.node_name.as_deref(),
                    labels,
                });
            }
        }
        let ports: Vec<Port> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| {
                let mut labels = Labels::new();
                labels.set(
                    "__meta_kubernetes_endpoint_port_name",
                    p.name.clone().unwrap_or_default(),
                );
                labels.set(
                    "__meta_kubernetes_endpoint_port_protocol",
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                );
                labels.set(
                    "__meta_kubernetes_endpoint_port_app_protocol",
                    p.app_protocol.clone().unwrap_or_default(),
                );
                Port {
                    number: p.port,
                    protocol: p.protocol.as_deref(),
                    labels,
                }
            })
            .collect();
        add_targets(&mut tg, &ns, &addresses, &ports, lookup, own_node);
    }
    tg
}

/// `role: endpointslice`.
pub fn endpointslice_group(
    slice: &EndpointSlice,
    lookup: &dyn Lookup,
    own_node: Option<&str>,
) -> TargetGroup {
    let meta = &slice.metadata;
    let ns = meta.namespace.clone().unwrap_or_default();
    let mut tg = TargetGroup {
        source: source("endpointslice", meta),
        ..TargetGroup::default()
    };
    let service = meta
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/service-name"))
        .and_then(|svc| lookup.service(&ns, svc));
    if let Some(svc) = service {
        service_labels(&svc, &mut tg.labels);
    }
    tg.labels.set("__meta_kubernetes_namespace", ns.as_str());
    tg.labels.set(
        "__meta_kubernetes_endpointslice_name",
        meta.name.clone().unwrap_or_default(),
    );
    tg.labels.set(
        "__meta_kubernetes_endpointslice_address_type",
        slice.address_type.as_str(),
    );
    object_labels(&mut tg.labels, "__meta_kubernetes_endpointslice", meta);
    let mut addresses = Vec::new();
    for e in slice.endpoints.iter().flatten() {
        let Some(ip) = e.addresses.first() else {
            continue;
        };
        let mut labels = Labels::new();
        let cond = e.conditions.clone().unwrap_or_default();
        for (name, v) in [
            ("ready", cond.ready),
            ("serving", cond.serving),
            ("terminating", cond.terminating),
        ] {
            if let Some(v) = v {
                labels.set(
                    format!("__meta_kubernetes_endpointslice_endpoint_conditions_{name}"),
                    v.to_string(),
                );
            }
        }
        labels.set(
            "__meta_kubernetes_endpointslice_endpoint_hostname",
            e.hostname.clone().unwrap_or_default(),
        );
        labels.set(
            "__meta_kubernetes_endpointslice_endpoint_node_name",
            e.node_name.clone().unwrap_or_default(),
        );
        labels.set(
            "__meta_kubernetes_endpointslice_endpoint_zone",
            e.zone.clone().unwrap_or_default(),
        );
        if let Some(r) = &e.target_ref {
            labels.set(
                "__meta_kubernetes_endpointslice_address_target_kind",
                r.kind.clone().unwrap_or_default(),
            );
            labels.set(
                "__meta_kubernetes_endpointslice_address_target_name",
                r.name.clone().unwrap_or_default(),
            );
        }
        addresses.push(Address {
            ip,
            target: e.target_ref.as_ref(),
            node: e.node_name.as_deref(),
            labels,
        });
    }
    let ports: Vec<Port> = slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let number = p.port?;
            let mut labels = Labels::new();
            labels.set("__meta_kubernetes_endpointslice_port", number.to_string());
            labels.set(
                "__meta_kubernetes_endpointslice_port_name",
                p.name.clone().unwrap_or_default(),
            );
            labels.set(
                "__meta_kubernetes_endpointslice_port_protocol",
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            );
            labels.set(
                "__meta_kubernetes_endpointslice_port_app_protocol",
                p.app_protocol.clone().unwrap_or_default(),
            );
            Some(Port {
                number,
                protocol: p.protocol.as_deref(),
                labels,
            })
        })
        .collect();
    add_targets(&mut tg, &ns, &addresses, &ports, lookup, own_node);
    // add_targets names the target kind in the endpoints role's words.
    for t in &mut tg.targets {
        t.remove("__meta_kubernetes_endpoint_address_target_kind");
        t.remove("__meta_kubernetes_endpoint_address_target_name");
    }
    tg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed {
        svc: Service,
        pod: Pod,
    }

    impl Lookup for Fixed {
        fn service(&self, ns: &str, name: &str) -> Option<Service> {
            (ns == "shop" && name == "web").then(|| self.svc.clone())
        }
        fn pod(&self, ns: &str, name: &str) -> Option<Pod> {
            (ns == "shop" && name == "web-0").then(|| self.pod.clone())
        }
    }

    fn fixed() -> Fixed {
        Fixed {
            svc: serde_json::from_value(json!({
                "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "a"}},
                "spec": {"clusterIP": "10.96.0.7", "ports": [{"name": "http", "port": 80}]}
            }))
            .unwrap(),
            pod: serde_json::from_value(json!({
                "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}},
                "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "web:1",
                    "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9100}]}]},
                "status": {"podIP": "10.1.0.5"}
            }))
            .unwrap(),
        }
    }

    #[test]
    fn endpoints_join_their_service_and_pods() {
        let ep: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "subsets": [{
                "addresses": [{"ip": "10.1.0.5", "nodeName": "node-1", "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "shop"}}],
                "notReadyAddresses": [{"ip": "10.1.0.6", "nodeName": "node-2"}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
            }]
        }))
        .unwrap();
        let f = fixed();
        let tg = endpoints_group(&ep, &f, None);
        assert_eq!(tg.source, "endpoints/shop/web");
        assert_eq!(
            tg.labels.get("__meta_kubernetes_service_label_team"),
            Some("a")
        );
        assert_eq!(
            tg.labels.get("__meta_kubernetes_endpoints_name"),
            Some("web")
        );
        let addrs: Vec<&str> = tg
            .targets
            .iter()
            .filter_map(|t| t.get("__address__"))
            .collect();
        // The endpoint's two addresses, and the pod's undeclared port.
        assert_eq!(addrs, ["10.1.0.5:8080", "10.1.0.6:8080", "10.1.0.5:9100"]);
        let ready = &tg.targets[0];
        assert_eq!(ready.get("__meta_kubernetes_endpoint_ready"), Some("true"));
        assert_eq!(
            ready.get("__meta_kubernetes_endpoint_port_name"),
            Some("http")
        );
        assert_eq!(
            ready.get("__meta_kubernetes_endpoint_address_target_name"),
            Some("web-0")
        );
        assert_eq!(ready.get("__meta_kubernetes_pod_name"), Some("web-0"));
        assert_eq!(
            ready.get("__meta_kubernetes_pod_container_name"),
            Some("app")
        );
        assert_eq!(ready.get("__meta_kubernetes_pod_label_app"), Some("web"));
        assert_eq!(
            tg.targets[1].get("__meta_kubernetes_endpoint_ready"),
            Some("false")
        );
        assert_eq!(
            tg.targets[2].get("__meta_kubernetes_pod_container_port_name"),
            Some("metrics")
        );
        assert_eq!(
            tg.targets[2].get("__meta_kubernetes_endpoint_port_name"),
            None
        );
        // On node-1 only the address there (and its pod's ports) remain.
        let here = endpoints_group(&ep, &f, Some("node-1"));
        let addrs: Vec<&str> = here
            .targets
            .iter()
            .filter_map(|t| t.get("__address__"))
            .collect();
        assert_eq!(addrs, ["10.1.0.5:8080", "10.1.0.5:9100"]);
    }

    #[test]
    fn endpointslices_in_their_own_words() {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "web-abc12", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.1.0.5"], "conditions": {"ready": true, "serving": true, "terminating": false},
                "nodeName": "node-1", "zone": "z1", "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "shop"}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        }))
        .unwrap();
        let tg = endpointslice_group(&slice, &fixed(), None);
        assert_eq!(tg.source, "endpointslice/shop/web-abc12");
        assert_eq!(tg.labels.get("__meta_kubernetes_service_name"), Some("web"));
        assert_eq!(
            tg.labels
                .get("__meta_kubernetes_endpointslice_address_type"),
            Some("IPv4")
        );
        let t = &tg.targets[0];
        assert_eq!(t.get("__address__"), Some("10.1.0.5:8080"));
        assert_eq!(t.get("__meta_kubernetes_endpointslice_port"), Some("8080"));
        assert_eq!(
            t.get("__meta_kubernetes_endpointslice_endpoint_conditions_ready"),
            Some("true")
        );
        assert_eq!(
            t.get("__meta_kubernetes_endpointslice_endpoint_zone"),
            Some("z1")
        );
        assert_eq!(
            t.get("__meta_kubernetes_endpointslice_address_target_name"),
            Some("web-0")
        );
        assert_eq!(
            t.get("__meta_kubernetes_endpoint_address_target_name"),
            None
        );
        assert_eq!(
            t.get("__meta_kubernetes_pod_container_port_name"),
            Some("http")
        );
        assert_eq!(tg.targets.len(), 2, "plus the pod's metrics port");
    }
}
