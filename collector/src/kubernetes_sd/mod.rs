//! `kubernetes_sd_configs`: targets from the Kubernetes API, as Prometheus
//! discovers them (roles `node`, `pod`, `service`, `endpoints`,
//! `endpointslice`, with the standard `__meta_kubernetes_*` labels),
//! through the kube crate: a watch per
//! role and namespace that lists, then follows changes, and on any error
//! reconnects with backoff and lists again (kube-runtime's watcher), so a
//! restarted API server or an expired resource version is a resync, not a
//! gap. While the API is away the last known targets stay.
//!
//! Vigil's difference from Prometheus: an agent runs on every node, so by
//! default (`own_node: true`) the `node` and `pod` roles only see this
//! agent's node (from `$NODE_NAME`, else the host's name), filtered by the
//! API server, and the endpoints roles only addresses on it.
//! `own_node: false` sees the whole cluster.
//!
//! The watches run on a small runtime on their own thread; the job's
//! runner takes the current groups when they change.

pub mod endpoints;
pub mod meta;
pub mod node;
pub mod pod;
pub mod service;

use crate::target::TargetGroup;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource};
use rustls::pki_types::pem::PemObject as _;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use vigil_config::service_discovery::{KubernetesSdConfig, Role};

/// The groups one discovery knows, per watch, and a generation that moves
/// whenever any of them changes.
#[derive(Default)]
struct Shared {
    generation: AtomicU64,
    watches: Mutex<Vec<BTreeMap<String, TargetGroup>>>,
}

impl Shared {
    fn update(&self, watch: usize, f: impl FnOnce(&mut BTreeMap<String, TargetGroup>)) {
        let mut w = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() <= watch {
            w.resize_with(watch + 1, BTreeMap::new);
        }
        f(&mut w[watch]);
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// One running `kubernetes_sd_configs` entry.
pub struct KubernetesSd {
    shared: Arc<Shared>,
    seen: u64,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KubernetesSd {
    /// Starts watching for `job`. Failing to reach the API is not an
    /// error here: the watches keep retrying and the job has no targets
    /// from this discovery until they succeed.
    pub fn start(job: &str, cfg: &KubernetesSdConfig) -> std::io::Result<KubernetesSd> {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (s, c, j) = (Arc::clone(&shared), cfg.clone(), job.to_string());
        let thread = std::thread::Builder::new()
            .name(format!("k8s-sd-{job}"))
            .spawn(move || run(&j, &c, s, rx))?;
        Ok(KubernetesSd {
            shared,
            seen: 0,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// The current groups if they changed since the last call.
    pub fn changed_groups(&mut self) -> Option<Vec<TargetGroup>> {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g == self.seen {
            return None;
        }
        self.seen = g;
        Some(self.groups())
    }

    pub fn groups(&self) -> Vec<TargetGroup> {
        let w = self
            .shared
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        w.iter().flat_map(|m| m.values().cloned()).collect()
    }
}

impl Drop for KubernetesSd {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The watch config for `role`: its selectors' labels and fields (all of
/// them, comma-joined as the API takes them), plus `extra_field`.
fn selected(cfg: &KubernetesSdConfig, role: Role, extra_field: Option<String>) -> watcher::Config {
    let of_role = || cfg.selectors.iter().filter(move |s| s.role == role);
    let labels: Vec<&str> = of_role().filter_map(|s| s.label.as_deref()).collect();
    let mut fields: Vec<String> = of_role().filter_map(|s| s.field.clone()).collect();
    fields.extend(extra_field);
    let mut wc = watcher::Config::default();
    if !labels.is_empty() {
        wc = wc.labels(&labels.join(","));
    }
    if !fields.is_empty() {
        wc = wc.fields(&fields.join(","));
    }
    wc
}

/// This agent's node: `$NODE_NAME` (the DaemonSet sets it), else the
/// host's name.
fn own_node_name() -> Option<String> {
    std::env::var("NODE_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(crate::node::hostname)
}

fn run(
    job: &str,
    cfg: &KubernetesSdConfig,
    shared: Arc<Shared>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(%job, "kubernetes_sd: cannot start its runtime: {e}");
            return;
        }
    };
    rt.block_on(async {
        tokio::select! {
            _ = stop => {}
            _ = discover(job, cfg, shared) => {}
        }
    });
}

/// A client for the API `cfg` names: `api_server` (with its TLS and token
/// file), else `kubeconfig_file`, else the in-cluster configuration.
pub async fn client(cfg: &KubernetesSdConfig) -> Result<Client, String> {
    let config = if let Some(url) = &cfg.api_server {
        let uri = url
            .parse()
            .map_err(|e| format!("api_server {url:?}: {e}"))?;
        let mut c = kube::Config::new(uri);
        if let Some(t) = &cfg.tls_config {
            c.accept_invalid_certs = t.insecure_skip_verify;
            if let Some(ca) = &t.ca_file {
                let pem =
                    std::fs::read(ca).map_err(|e| format!("reading {}: {e}", ca.display()))?;
                let ders = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                    .map(|c| c.map(|c| c.to_vec()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{}: {e}", ca.display()))?;
                c.root_cert = Some(ders);
            }
        }
        if let Some(f) = &cfg.bearer_token_file {
            c.auth_info.token_file = Some(f.display().to_string());
        }
        c
    } else if let Some(path) = &cfg.kubeconfig_file {
        let kc = kube::config::Kubeconfig::read_from(path)
            .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
    } else {
        kube::Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?
    };
    Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))
}

/// Every watch of one discovery, until the runtime is stopped.
async fn discover(job: &str, cfg: &KubernetesSdConfig, shared: Arc<Shared>) {
    let client = loop {
        match client(cfg).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(%job, "kubernetes_sd: {e}; retrying in 10 s");
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            }
        }
    };
    let Some(role) = cfg.role else { return };
    let node_name = if cfg.own_node && role != Role::Service {
        cfg.node_name.clone().or_else(own_node_name)
    } else {
        None
    };
    let on_node = |field: &str| node_name.as_ref().map(|n| format!("{field}={n}"));
    // The watched role's own config, then the pods' and services' that
    // the endpoints roles join; this node's restriction as a field.
    let wc = match role {
        Role::Node => selected(cfg, role, on_node("metadata.name")),
        Role::Pod => selected(cfg, role, on_node("spec.nodeName")),
        _ => selected(cfg, role, None),
    };
    let endpoint_wc = (
        wc.clone(),
        // Only this node's pods can back the addresses kept.
        selected(cfg, Role::Pod, on_node("spec.nodeName")),
        selected(cfg, Role::Service, None),
    );
    let mut namespaces = cfg.namespaces.names.clone();
    if cfg.namespaces.own_namespace {
        match std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace") {
            Ok(ns) => namespaces.push(ns.trim().to_string()),
            Err(e) => tracing::warn!(%job, "kubernetes_sd: own_namespace: {e}"),
        }
    }
    let mut watches = Vec::new();
    match role {
        Role::Node => {
            let api: Api<Node> = Api::all(client.clone());
            watches.push(
                watch(
                    (job, "node"),
                    api,
                    wc.clone(),
                    Arc::clone(&shared),
                    0,
                    node::group,
                )
                .boxed_local(),
            );
        }
        Role::Pod | Role::Service => {
            let scopes: Vec<Option<String>> = if namespaces.is_empty() {
                vec![None]
            } else {
                namespaces.iter().cloned().map(Some).collect()
            };
            for (i, ns) in scopes.into_iter().enumerate() {
                let s = Arc::clone(&shared);
                let w = wc.clone();
                watches.push(match role {
                    Role::Pod => watch(
                        (job, "pod"),
                        api_in::<Pod>(&client, &ns),
                        w,
                        s,
                        i,
                        pod::group,
                    )
                    .boxed_local(),
                    _ => watch(
                        (job, "service"),
                        api_in::<Service>(&client, &ns),
                        w,
                        s,
                        i,
                        service::group,
                    )
                    .boxed_local(),
                });
            }
        }
        Role::Endpoints | Role::EndpointSlice => {
            let scopes: Vec<Option<String>> = if namespaces.is_empty() {
                vec![None]
            } else {
                namespaces.iter().cloned().map(Some).collect()
            };
            for (i, ns) in scopes.into_iter().enumerate() {
                let ctx = EndpointsWatch {
                    job: job.to_string(),
                    role,
                    client: client.clone(),
                    namespace: ns,
                    configs: endpoint_wc.clone(),
                    own_node: node_name.clone(),
                    shared: Arc::clone(&shared),
                    index: i,
                };
                watches.push(ctx.run().boxed_local());
            }
        }
    }
    futures::future::join_all(watches).await;
}

fn api_in<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The endpoints roles: endpoints (or slices), services and pods mirrored
/// into stores, and every group rebuilt from them when any of them moves.
struct EndpointsWatch {
    job: String,
    role: Role,
    client: Client,
    namespace: Option<String>,
    /// Endpoints (or slices), pods, services.
    configs: (watcher::Config, watcher::Config, watcher::Config),
    own_node: Option<String>,
    shared: Arc<Shared>,
    index: usize,
}

/// A store kept in step with the API by a watch, and the watch's events
/// (only whether each went well: the store has the objects).
fn mirrored<K>(
    client: &Client,
    ns: &Option<String>,
    wc: &watcher::Config,
) -> (
    reflector::Store<K>,
    futures::stream::BoxStream<'static, Result<(), watcher::Error>>,
)
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    <K as Resource>::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (store, writer) = reflector::store::<K>();
    let events = reflector::reflector(
        writer,
        watcher::watcher(api_in::<K>(client, ns), wc.clone()),
    )
    .default_backoff()
    .map(|e| e.map(|_| ()))
    .boxed();
    (store, events)
}

struct Stores {
    pods: reflector::Store<Pod>,
    services: reflector::Store<Service>,
}

impl endpoints::Lookup for Stores {
    fn service(&self, namespace: &str, name: &str) -> Option<Service> {
        let r = reflector::ObjectRef::new(name).within(namespace);
        self.services.get(&r).map(|s| (*s).clone())
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        let r = reflector::ObjectRef::new(name).within(namespace);
        self.pods.get(&r).map(|p| (*p).clone())
    }
}

impl EndpointsWatch {
    async fn run(self) {
        let ns = &self.namespace;
        let (pods, pod_events) = mirrored::<Pod>(&self.client, ns, &self.configs.1);
        let (services, svc_events) = mirrored::<Service>(&self.client, ns, &self.configs.2);
        let stores = Stores { pods, services };
        let own = self.own_node.as_deref();
        match self.role {
            Role::EndpointSlice => {
                let (slices, events) = mirrored::<EndpointSlice>(&self.client, ns, &self.configs.0);
                let all = futures::stream::select_all([events, pod_events, svc_events]);
                let build = || {
                    let state = slices.state();
                    let groups = state
                        .iter()
                        .map(|s| endpoints::endpointslice_group(s, &stores, own));
                    groups.collect()
                };
                self.follow(all, build).await;
            }
            _ => {
                let (eps, events) = mirrored::<Endpoints>(&self.client, ns, &self.configs.0);
                let all = futures::stream::select_all([events, pod_events, svc_events]);
                let build = || {
                    let state = eps.state();
                    let groups = state
                        .iter()
                        .map(|e| endpoints::endpoints_group(e, &stores, own));
                    groups.collect()
                };
                self.follow(all, build).await;
            }
        }
    }

    /// Rebuilds the groups after each change (a burst of changes is one
    /// rebuild: the stream is drained before building).
    async fn follow(
        &self,
        mut events: futures::stream::SelectAll<
            futures::stream::BoxStream<'static, Result<(), watcher::Error>>,
        >,
        build: impl Fn() -> Vec<TargetGroup>,
    ) {
        while let Some(ev) = events.next().await {
            if let Err(e) = ev {
                tracing::warn!(job = %self.job, role = self.role.as_str(), "kubernetes_sd: {e}; keeping the last targets, retrying");
                continue;
            }
            while let Some(Some(more)) = events.next().now_or_never() {
                if let Err(e) = more {
                    tracing::warn!(job = %self.job, role = self.role.as_str(), "kubernetes_sd: {e}");
                }
            }
            let groups: BTreeMap<String, TargetGroup> =
                build().into_iter().map(|g| (g.source.clone(), g)).collect();
            self.shared.update(self.index, |m| *m = groups);
        }
    }
}

/// One watch: groups built from each object, replaced wholesale on every
/// (re)list so objects deleted while disconnected disappear too.
async fn watch<K>(
    (job, role): (&str, &str),
    api: Api<K>,
    wc: watcher::Config,
    shared: Arc<Shared>,
    index: usize,
    build: fn(&K) -> TargetGroup,
) where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    <K as Resource>::DynamicType: Default,
{
    let mut stream = watcher::watcher(api, wc).default_backoff().boxed();
    let mut fresh: Option<BTreeMap<String, TargetGroup>> = None;
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => fresh = Some(BTreeMap::new()),
            Ok(Event::InitApply(o)) => {
                if let Some(f) = fresh.as_mut() {
                    let g = build(&o);
                    f.insert(g.source.clone(), g);
                }
            }
            Ok(Event::InitDone) => {
                if let Some(f) = fresh.take() {
                    tracing::debug!(%job, role, objects = f.len(), "kubernetes_sd: listed");
                    shared.update(index, |m| *m = f);
                }
            }
            Ok(Event::Apply(o)) => {
                let g = build(&o);
                shared.update(index, |m| {
                    m.insert(g.source.clone(), g);
                });
            }
            Ok(Event::Delete(o)) => {
                let g = build(&o);
                shared.update(index, |m| {
                    m.remove(&g.source);
                });
            }
            Err(e) => {
                tracing::warn!(%job, role, "kubernetes_sd: {e}; keeping the last targets, retrying");
            }
        }
    }
}
