//! Selected labels of each pod on this node, from the Kubernetes API, for
//! the streams of its containers' logs (`logs.pod_labels`): what
//! Promtail's `labelmap` of `__meta_kubernetes_pod_label_(.+)` gives, for
//! the labels asked for only, so a stream's label count stays bounded.
//!
//! Names are made valid label names as Prometheus makes them
//! (`app.kubernetes.io/name` → `app_kubernetes_io_name`). The pods come
//! from the `role: pod` discovery watching this node; a pod the API has
//! not told about yet has no such labels.

use crate::kubernetes_sd::meta::sanitize;
use crate::kubernetes_sd::KubernetesSd;
use crate::labels::Labels;
use std::collections::HashMap;
use vigil_config::service_discovery::{KubernetesSdConfig, Role};

/// Where a reader gets pod labels from (the API, or a test's table).
pub trait PodLabelSource: Send {
    /// Takes what changed since the last call; true when anything did.
    fn refresh(&mut self) -> bool;
    /// The labels to add to the streams of `namespace/pod`, if it is known.
    fn labels(&self, namespace: &str, pod: &str) -> Option<Labels>;
}

/// Pod labels through the API's pod watch of this node.
pub struct ApiPodLabels {
    sd: KubernetesSd,
    /// Sanitized names of the labels to copy.
    wanted: Vec<String>,
    pods: HashMap<(String, String), Labels>,
}

impl ApiPodLabels {
    /// Starts watching the pods of `node` through `api` (only its
    /// connection fields are used); copies the labels named in `wanted`.
    pub fn start(
        api: &KubernetesSdConfig,
        node: &str,
        wanted: &[String],
    ) -> std::io::Result<ApiPodLabels> {
        let cfg = KubernetesSdConfig {
            role: Some(Role::Pod),
            own_node: true,
            node_name: Some(node.to_string()),
            selectors: Vec::new(),
            ..api.clone()
        };
        Ok(ApiPodLabels {
            sd: KubernetesSd::start("logs-pod-labels", &cfg)?,
            wanted: wanted.iter().map(|w| sanitize(w)).collect(),
            pods: HashMap::new(),
        })
    }
}

impl PodLabelSource for ApiPodLabels {
    fn refresh(&mut self) -> bool {
        let Some(groups) = self.sd.changed_groups() else {
            return false;
        };
        let mut pods = HashMap::new();
        for g in groups {
            let l = &g.labels;
            let (Some(ns), Some(pod)) = (
                l.get("__meta_kubernetes_namespace"),
                l.get("__meta_kubernetes_pod_name"),
            ) else {
                continue;
            };
            let mut out = Labels::new();
            for w in &self.wanted {
                if let Some(v) = l.get(&format!("__meta_kubernetes_pod_label_{w}")) {
                    out.set(w.as_str(), v);
                }
            }
            pods.insert((ns.to_string(), pod.to_string()), out);
        }
        let changed = pods != self.pods;
        self.pods = pods;
        changed
    }

    fn labels(&self, namespace: &str, pod: &str) -> Option<Labels> {
        self.pods
            .get(&(namespace.to_string(), pod.to_string()))
            .cloned()
    }
}
