//! The pods and nodes the metrics API describes, from the Kubernetes API:
//! a list-and-watch of each (kube's reflector: reconnects and relists on
//! its own), giving their labels (what `labelSelector` selects on and what
//! `metadata.labels` shows) and which pods run. metrics-server answers
//! only for running pods it knows; Vigil does the same when the API is
//! configured, and without it describes every pod and node it has fresh
//! metrics for, with no labels.

use super::resources::ResourceInfo;
use super::selector::LabelSelector;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use vigil_config::service_discovery::KubernetesSdConfig;

/// What the answers need of a pod or node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

pub struct ClusterObjects {
    pods: Store<Pod>,
    nodes: Store<Node>,
    /// Set once the API is reached: lists of other resources use it.
    client: Arc<OnceLock<kube::Client>>,
    /// Both watches have listed once (metrics-server's informer sync).
    synced: Arc<AtomicBool>,
}

impl ClusterObjects {
    /// Starts watching on the current tokio runtime; until the first lists
    /// arrive the stores are empty (the API is then "not ready").
    pub fn start(cfg: KubernetesSdConfig) -> ClusterObjects {
        let (pods, pod_writer) = reflector::store::<Pod>();
        let (nodes, node_writer) = reflector::store::<Node>();
        let client_cell: Arc<OnceLock<kube::Client>> = Arc::default();
        let cell = Arc::clone(&client_cell);
        tokio::spawn(async move {
            let client = loop {
                match collector::kubernetes_sd::client(&cfg).await {
                    Ok(c) => break c,
                    Err(e) => {
                        tracing::warn!("k8s_metrics_api: {e}; retrying in 10 s");
                        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                    }
                }
            };
            let _ = cell.set(client.clone());
            let pod_events = reflector::reflector(
                pod_writer,
                watcher::watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
            )
            .default_backoff();
            let node_events = reflector::reflector(
                node_writer,
                watcher::watcher(Api::<Node>::all(client), watcher::Config::default()),
            )
            .default_backoff();
            let mut events = futures::stream::select(
                pod_events.map(|e| e.map(|_| ())).boxed(),
                node_events.map(|e| e.map(|_| ())).boxed(),
            );
            while let Some(e) = events.next().await {
                if let Err(e) = e {
                    tracing::warn!("k8s_metrics_api: watching pods and nodes: {e}");
                }
            }
        });
        let synced: Arc<AtomicBool> = Arc::default();
        let (p, n, flag) = (pods.clone(), nodes.clone(), Arc::clone(&synced));
        tokio::spawn(async move {
            if p.wait_until_ready().await.is_ok() && n.wait_until_ready().await.is_ok() {
                flag.store(true, Ordering::Release);
            }
        });
        ClusterObjects {
            pods,
            nodes,
            client: client_cell,
            synced,
        }
    }

    /// Whether the pods and nodes have been listed once: until then every
    /// answer would leave them all out.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Names of the objects of `resource` in `namespace` that `selector`
    /// selects: running pods from the watch, anything else listed from
    /// the API.
    pub async fn names(
        &self,
        resource: &ResourceInfo,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<String>, String> {
        if resource.group.is_empty() && resource.plural == "pods" {
            let mut out: Vec<String> = self
                .running_pods()
                .into_iter()
                .filter(|p| {
                    namespace.is_none_or(|n| p.namespace == n) && selector.matches(&p.labels)
                })
                .map(|p| p.name)
                .collect();
            out.sort();
            return Ok(out);
        }
        let client = self
            .client
            .get()
            .cloned()
            .ok_or_else(|| "the Kubernetes API has not been reached yet".to_string())?;
        let ar = ApiResource {
            group: resource.group.clone(),
            version: resource.version.clone(),
            api_version: if resource.group.is_empty() {
                resource.version.clone()
            } else {
                format!("{}/{}", resource.group, resource.version)
            },
            kind: resource.kind.clone(),
            plural: resource.plural.clone(),
        };
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client, ns, &ar),
            None => Api::all_with(client, &ar),
        };
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing {}: {e}", resource.qualified()))?;
        Ok(list
            .items
            .into_iter()
            .filter(|o| selector.matches(o.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())))
            .filter_map(|o| o.metadata.name)
            .collect())
    }

    /// Running pods.
    pub fn running_pods(&self) -> Vec<ObjectMeta> {
        self.pods
            .state()
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .map(|p| meta(&p.metadata))
            .collect()
    }

    /// Whether pod `ns/name` runs: one lookup, no copy of the store.
    pub fn runs_pod(&self, ns: &str, name: &str) -> bool {
        let key = reflector::ObjectRef::new(name).within(ns);
        self.pods
            .get(&key)
            .is_some_and(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    }

    /// Whether node `name` is known: one lookup.
    pub fn has_node(&self, name: &str) -> bool {
        self.nodes.get(&reflector::ObjectRef::new(name)).is_some()
    }

    pub fn nodes(&self) -> Vec<ObjectMeta> {
        self.nodes
            .state()
            .iter()
            .map(|n| meta(&n.metadata))
            .collect()
    }
}

fn meta(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        namespace: m.namespace.clone().unwrap_or_default(),
        name: m.name.clone().unwrap_or_default(),
        labels: m.labels.clone().unwrap_or_default(),
    }
}
