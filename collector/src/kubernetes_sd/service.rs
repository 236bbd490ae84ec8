//! `role: service`: a target per service port, at the service's DNS name
//! (`<name>.<namespace>.svc:<port>`), with `__meta_kubernetes_service_*`
//! labels — what blackbox probing of services relabels from.

use super::meta::{object_labels, source};
use crate::labels::Labels;
use crate::target::TargetGroup;
use k8s_openapi::api::core::v1::Service;

/// The service-level labels, also given to endpoints targets.
pub fn service_labels(svc: &Service, out: &mut Labels) {
    let meta = &svc.metadata;
    let spec = svc.spec.clone().unwrap_or_default();
    out.set(
        "__meta_kubernetes_namespace",
        meta.namespace.clone().unwrap_or_default(),
    );
    out.set(
        "__meta_kubernetes_service_name",
        meta.name.clone().unwrap_or_default(),
    );
    let kind = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
    if kind == "ExternalName" {
        out.set(
            "__meta_kubernetes_service_external_name",
            spec.external_name.clone().unwrap_or_default(),
        );
    } else {
        out.set(
            "__meta_kubernetes_service_cluster_ip",
            spec.cluster_ip.clone().unwrap_or_default(),
        );
    }
    if kind == "LoadBalancer" {
        let ip = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .and_then(|i| i.first())
            .and_then(|i| i.ip.clone())
            .unwrap_or_default();
        out.set("__meta_kubernetes_service_loadbalancer_ip", ip);
    }
    out.set("__meta_kubernetes_service_type", kind);
    object_labels(out, "__meta_kubernetes_service", meta);
}

pub fn group(svc: &Service) -> TargetGroup {
    let meta = &svc.metadata;
    let mut tg = TargetGroup {
        source: source("svc", meta),
        ..TargetGroup::default()
    };
    service_labels(svc, &mut tg.labels);
    let host = format!(
        "{}.{}.svc",
        meta.name.as_deref().unwrap_or(""),
        meta.namespace.as_deref().unwrap_or("")
    );
    for p in svc.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
        let mut t = Labels::new();
        t.set("__address__", format!("{host}:{}", p.port));
        t.set(
            "__meta_kubernetes_service_port_name",
            p.name.clone().unwrap_or_default(),
        );
        t.set("__meta_kubernetes_service_port_number", p.port.to_string());
        t.set(
            "__meta_kubernetes_service_port_protocol",
            p.protocol.clone().unwrap_or_else(|| "TCP".into()),
        );
        tg.targets.push(t);
    }
    tg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_per_port_at_the_service_name() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "api", "namespace": "shop", "labels": {"tier": "backend"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
                "ports": [{"name": "http", "port": 80}, {"name": "grpc", "port": 9000, "protocol": "TCP"}]}
        }))
        .unwrap();
        let tg = group(&svc);
        assert_eq!(tg.source, "svc/shop/api");
        assert_eq!(
            tg.labels.get("__meta_kubernetes_service_cluster_ip"),
            Some("10.96.0.10")
        );
        assert_eq!(
            tg.labels.get("__meta_kubernetes_service_type"),
            Some("ClusterIP")
        );
        assert_eq!(
            tg.labels.get("__meta_kubernetes_service_label_tier"),
            Some("backend")
        );
        let addrs: Vec<&str> = tg
            .targets
            .iter()
            .filter_map(|t| t.get("__address__"))
            .collect();
        assert_eq!(addrs, ["api.shop.svc:80", "api.shop.svc:9000"]);
        assert_eq!(
            tg.targets[1].get("__meta_kubernetes_service_port_name"),
            Some("grpc")
        );
    }
}
