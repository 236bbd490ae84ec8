//! The Kubernetes resource metrics API (`metrics.k8s.io/v1beta1`, what
//! `kubectl top` and the HPA's `Resource` metrics read, today served by
//! metrics-server), answered from the series the agent already ships, on
//! a TLS port of its own (`k8s_metrics_api:` in the server config).
//!
//! With `adapter_config_file` (prometheus-adapter's rules, unchanged), the
//! custom and external metrics APIs too (`custom.rs`).
//!
//! Routes, objects, quantities, selectors and errors follow metrics-server,
//! prometheus-adapter and the API machinery
//! (docs/design/k8s-metrics-apis.md); the aggregated-API authentication
//! comes next (ROADMAP). Until authentication is built the port refuses to start
//! unless the config says `allow_unauthenticated: true`.

pub mod adapter_config;
pub mod cluster_objects;
pub mod custom;
pub mod discovery;
pub mod objects;
pub mod quantity;
pub mod resource_rules;
pub mod resources;
pub mod selector;
pub mod status;
pub mod tls;
pub mod usage;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cluster_objects::ClusterObjects;
use objects::PodUsage;
use selector::{FieldSelector, LabelSelector};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tsdb::Db;
use usage::{PodFilter, UsageReader};
use vigil_config::service_discovery::KubernetesSdConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct K8sMetricsApiConfig {
    /// HOST:PORT of the TLS port (default `0.0.0.0:6443`).
    pub listen_addr: String,
    /// The serving certificate and key (PEM), re-read when they change;
    /// a self-signed pair is made at start when both are unset.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// A pod or node whose newest point is older than this is left out.
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub stale_after: Duration,
    /// Where pods and nodes (their labels, which pods run) are read from:
    /// `api_server`, `kubeconfig_file`, or `{}` for in-cluster. Unset:
    /// every pod and node with fresh metrics, without labels.
    pub kubernetes: Option<KubernetesSdConfig>,
    /// Serve without authenticating callers (local testing only; the
    /// aggregated-API authentication is not built yet).
    pub allow_unauthenticated: bool,
    /// prometheus-adapter's configuration (`rules`, `externalRules`): the
    /// custom and external metrics APIs; unset, they are not served.
    pub adapter_config_file: Option<PathBuf>,
    /// How often the rules' series queries are run again to find metrics.
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub relist_interval: Duration,
    /// How far back those queries look.
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub metrics_max_age: Duration,
}

impl Default for K8sMetricsApiConfig {
    fn default() -> Self {
        K8sMetricsApiConfig {
            listen_addr: "0.0.0.0:6443".into(),
            tls_cert_file: None,
            tls_key_file: None,
            stale_after: Duration::from_secs(120),
            kubernetes: None,
            allow_unauthenticated: false,
            adapter_config_file: None,
            relist_interval: Duration::from_secs(60),
            metrics_max_age: Duration::from_secs(600),
        }
    }
}

impl K8sMetricsApiConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.allow_unauthenticated {
            anyhow::bail!(
                "k8s_metrics_api: authenticating the kube-apiserver's requests (front-proxy \
                 certificates, TokenReview, SubjectAccessReview) is not built yet; set \
                 allow_unauthenticated: true to serve the API without it (local testing only)"
            );
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            anyhow::bail!(
                "k8s_metrics_api: tls_cert_file and tls_key_file go together (set both, or \
                 neither for a self-signed certificate)"
            );
        }
        if self.stale_after.is_zero() {
            anyhow::bail!("k8s_metrics_api.stale_after must be greater than 0");
        }
        if self.relist_interval.is_zero() {
            anyhow::bail!("k8s_metrics_api.relist_interval must be greater than 0");
        }
        if self.metrics_max_age < self.relist_interval {
            anyhow::bail!(
                "k8s_metrics_api.metrics_max_age must be at least relist_interval (series found by one relist would be missed by the next)"
            );
        }
        self.listen_addr.parse::<SocketAddr>().map_err(|e| {
            anyhow::anyhow!(
                "k8s_metrics_api.listen_addr {:?}: {e} (want HOST:PORT)",
                self.listen_addr
            )
        })?;
        Ok(())
    }
}

/// A node with fresh metrics.
struct NodeUsage {
    name: String,
    labels: BTreeMap<String, String>,
    usage: usage::Usage,
}

/// What the handlers read.
pub struct MetricsApi {
    db: Arc<OnceLock<Arc<Db>>>,
    objects: Option<ClusterObjects>,
    stale_after_ms: i64,
    /// The custom and external metrics APIs, when configured.
    adapter: Option<Arc<custom::Adapter>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The query's `labelSelector` and `fieldSelector`.
struct Selectors {
    labels: LabelSelector,
    fields: FieldSelector,
}

/// An answer that is an error (boxed: a response is large).
type Refusal = Box<Response>;

/// Object labels are known only from the Kubernetes API: without it a
/// label selector cannot be answered, and saying so beats an empty list.
fn needs_labels(api: &MetricsApi, sel: &Selectors) -> Result<(), Refusal> {
    if api.objects.is_none() && sel.labels != LabelSelector::default() {
        return Err(Box::new(status::bad_request(
            "selecting by labels needs k8s_metrics_api.kubernetes (object labels come from the Kubernetes API)",
        )));
    }
    Ok(())
}

fn selectors(query: Option<String>) -> Result<Selectors, Refusal> {
    let mut out = Selectors {
        labels: LabelSelector::default(),
        fields: FieldSelector::default(),
    };
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*k {
            "labelSelector" => {
                out.labels =
                    LabelSelector::parse(&v).map_err(|e| Box::new(status::bad_request(&e)))?
            }
            "fieldSelector" => {
                out.fields =
                    FieldSelector::parse(&v).map_err(|e| Box::new(status::bad_request(&e)))?
            }
            _ => {}
        }
    }
    Ok(out)
}

impl MetricsApi {
    fn db(&self) -> Result<Arc<Db>, Refusal> {
        self.db.get().cloned().ok_or_else(|| {
            Box::new(status::unavailable(
                "the store is starting (replaying its WAL)",
            ))
        })
    }

    /// The adapter's `resourceRules`, when configured: the source of
    /// pod and node usage instead of the agent's series.
    fn resource_rules(&self) -> Option<(&custom::Adapter, &adapter_config::ResourceRules)> {
        let a = self.adapter.as_deref()?;
        Some((a, a.config.resource_rules.as_ref()?))
    }

    /// Every pod with fresh metrics that is known to run (when the API is
    /// watched), with its labels.
    fn pods(&self, db: &Db, now: i64, only: &PodFilter<'_>) -> Result<Vec<PodUsage>, String> {
        let reader = UsageReader {
            db,
            now_ms: now,
            stale_after_ms: self.stale_after_ms,
        };
        let containers = match self.resource_rules() {
            Some((a, rules)) => resource_rules::containers(a, rules, db, now, only)?,
            None => reader.containers(only)?,
        };
        let mut by_pod: BTreeMap<(String, String), PodUsage> = containers
            .into_iter()
            .map(|((namespace, name), containers)| {
                let p = PodUsage {
                    namespace,
                    name,
                    labels: BTreeMap::new(),
                    containers,
                };
                ((p.namespace.clone(), p.name.clone()), p)
            })
            .collect();
        let Some(objects) = &self.objects else {
            return Ok(by_pod.into_values().collect());
        };
        let mut out = Vec::new();
        for meta in objects.running_pods() {
            if let Some(mut p) = by_pod.remove(&(meta.namespace, meta.name)) {
                p.labels = meta.labels;
                out.push(p);
            }
        }
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(out)
    }

    /// Nodes with fresh metrics (known to the API, when it is watched).
    fn nodes(&self, db: &Db, now: i64) -> Result<Vec<NodeUsage>, String> {
        let reader = UsageReader {
            db,
            now_ms: now,
            stale_after_ms: self.stale_after_ms,
        };
        let mut usage = match self.resource_rules() {
            Some((a, rules)) => resource_rules::nodes(a, rules, db, now)?,
            None => reader.nodes()?,
        };
        let Some(objects) = &self.objects else {
            return Ok(usage
                .into_iter()
                .map(|(name, usage)| NodeUsage {
                    name,
                    labels: BTreeMap::new(),
                    usage,
                })
                .collect());
        };
        let mut out: Vec<_> = objects
            .nodes()
            .into_iter()
            .filter_map(|m| {
                usage.remove(&m.name).map(|usage| NodeUsage {
                    name: m.name,
                    labels: m.labels,
                    usage,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn knows_pod(&self, ns: &str, name: &str) -> bool {
        self.objects.as_ref().is_none_or(|o| o.runs_pod(ns, name))
    }

    fn knows_node(&self, name: &str) -> bool {
        self.objects.as_ref().is_none_or(|o| o.has_node(name))
    }
}

type ApiState = State<Arc<MetricsApi>>;

/// Runs blocking store reads off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, Refusal> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Box::new(status::internal(&e))),
        Err(e) => Err(Box::new(status::internal(&format!(
            "the reading task failed: {e}"
        )))),
    }
}

fn json_bytes(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn answer(r: Result<Response, Refusal>) -> Response {
    r.unwrap_or_else(|e| *e)
}

async fn read_pods(
    api: &Arc<MetricsApi>,
    now: i64,
    namespace: Option<String>,
    pod: Option<String>,
) -> Result<Vec<PodUsage>, Refusal> {
    let db = api.db()?;
    let a = Arc::clone(api);
    blocking(move || {
        let only = PodFilter {
            namespace: namespace.as_deref(),
            pod: pod.as_deref(),
        };
        a.pods(&db, now, &only)
    })
    .await
}

async fn read_nodes(api: &Arc<MetricsApi>, now: i64) -> Result<Vec<NodeUsage>, Refusal> {
    let db = api.db()?;
    let a = Arc::clone(api);
    blocking(move || a.nodes(&db, now)).await
}

async fn list_pods(
    api: Arc<MetricsApi>,
    ns: Option<String>,
    query: Option<String>,
) -> Result<Response, Refusal> {
    let sel = selectors(query)?;
    needs_labels(&api, &sel)?;
    let now = now_ms();
    let pods = read_pods(&api, now, ns.clone(), None).await?;
    let items = pods
        .iter()
        .filter(|p| ns.as_deref().is_none_or(|n| p.namespace == n))
        .filter(|p| sel.labels.matches(&p.labels) && sel.fields.matches(&p.name, &p.namespace))
        .map(|p| objects::pod_metrics(p, now, false));
    Ok(json_bytes(objects::list_bytes("PodMetricsList", items)))
}

async fn all_pods(State(api): ApiState, RawQuery(q): RawQuery) -> Response {
    answer(list_pods(api, None, q).await)
}

async fn namespace_pods(
    State(api): ApiState,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    answer(list_pods(api, Some(ns), q).await)
}

async fn one_pod(
    State(api): ApiState,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    answer(
        async {
            selectors(q)?;
            let now = now_ms();
            let pods = read_pods(&api, now, Some(ns.clone()), Some(name.clone())).await?;
            Ok(
                match pods.iter().find(|p| p.namespace == ns && p.name == name) {
                    Some(p) => Json(objects::pod_metrics(p, now, true)).into_response(),
                    None if !api.knows_pod(&ns, &name) => status::not_found("pods", "", &name),
                    None => {
                        status::not_found("podmetrics", discovery::GROUP, &format!("{ns}/{name}"))
                    }
                },
            )
        }
        .await,
    )
}

async fn node_list(State(api): ApiState, RawQuery(q): RawQuery) -> Response {
    answer(
        async {
            let sel = selectors(q)?;
            needs_labels(&api, &sel)?;
            let now = now_ms();
            let items = read_nodes(&api, now)
                .await?
                .iter()
                .filter(|n| sel.labels.matches(&n.labels) && sel.fields.matches(&n.name, ""))
                .map(|n| objects::node_metrics(&n.name, &n.labels, &n.usage, now, false))
                .collect();
            Ok(Json(objects::list("NodeMetricsList", items)).into_response())
        }
        .await,
    )
}

async fn one_node(
    State(api): ApiState,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    answer(
        async {
            selectors(q)?;
            let now = now_ms();
            let nodes = read_nodes(&api, now).await?;
            Ok(match nodes.iter().find(|n| n.name == name) {
                Some(n) => Json(objects::node_metrics(
                    &n.name, &n.labels, &n.usage, now, true,
                ))
                .into_response(),
                // As the node lister words it (singular).
                None if !api.knows_node(&name) => status::not_found("node", "", &name),
                None => status::not_found("nodemetrics", discovery::GROUP, &name),
            })
        }
        .await,
    )
}

/// `/apis`: the resource metrics group, and the custom and external
/// groups when the adapter's rules are configured.
async fn groups(State(api): ApiState) -> Response {
    let mut groups: Vec<(&str, &[&str])> = vec![(discovery::GROUP, &[discovery::VERSION])];
    if api.adapter.is_some() {
        groups.push((custom::CUSTOM_GROUP, &custom::CUSTOM_VERSIONS));
        groups.push((custom::EXTERNAL_GROUP, &["v1beta1"]));
    }
    Json(discovery::group_list(&groups)).into_response()
}

fn query_map(q: Option<String>) -> BTreeMap<String, String> {
    form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

async fn custom_group(State(api): ApiState) -> Response {
    match api.adapter {
        Some(_) => Json(discovery::group(
            custom::CUSTOM_GROUP,
            &custom::CUSTOM_VERSIONS,
        ))
        .into_response(),
        None => status::no_route(),
    }
}

async fn external_group(State(api): ApiState) -> Response {
    match api.adapter {
        Some(_) => Json(discovery::group(custom::EXTERNAL_GROUP, &["v1beta1"])).into_response(),
        None => status::no_route(),
    }
}

async fn external_list(State(api): ApiState) -> Response {
    match &api.adapter {
        Some(a) => Json(a.registry().external_resource_list()).into_response(),
        None => status::no_route(),
    }
}

async fn external_metric(
    State(api): ApiState,
    Path((ns, metric)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(adapter) = &api.adapter else {
        return status::no_route();
    };
    let db = match api.db() {
        Ok(db) => db,
        Err(r) => return *r,
    };
    adapter.external(db, &ns, &metric, &query_map(q)).await
}

async fn custom_metrics(
    State(api): ApiState,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(adapter) = &api.adapter else {
        return status::no_route();
    };
    if let Some(v) = custom::CUSTOM_VERSIONS
        .iter()
        .find(|v| rest.trim_end_matches('/') == **v)
    {
        return Json(adapter.registry().custom_resource_list(v)).into_response();
    }
    let req = match custom::parse_custom_path(&rest) {
        Ok(r) if custom::CUSTOM_VERSIONS.contains(&r.version.as_str()) => r,
        Ok(_) => return status::no_route(),
        Err(e) => return status::bad_request(&e),
    };
    let db = match api.db() {
        Ok(db) => db,
        Err(r) => return *r,
    };
    adapter
        .custom(db, req, &query_map(q), api.objects.as_ref())
        .await
}

/// `/healthz`, `/livez`: the process answers.
async fn healthy() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok").into_response()
}

/// `/readyz`: the store is open and, when the API is watched, the pods
/// and nodes have been listed (metrics-server's two checks).
async fn ready(State(api): ApiState) -> Response {
    let text = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    let mut failed = String::new();
    if api.db.get().is_none() {
        failed.push_str("[-]metric-storage-ready failed: reason withheld\n");
    }
    if api.objects.as_ref().is_some_and(|o| !o.synced()) {
        failed.push_str("[-]metric-informer-sync failed: reason withheld\n");
    }
    if failed.is_empty() {
        (text, "ok").into_response()
    } else {
        failed.push_str("readyz check failed\n");
        (StatusCode::INTERNAL_SERVER_ERROR, text, failed).into_response()
    }
}

pub fn router(api: Arc<MetricsApi>) -> Router {
    const V: &str = "/apis/metrics.k8s.io/v1beta1";
    Router::new()
        .route("/apis", get(groups))
        .route(
            "/apis/metrics.k8s.io",
            get(|| async { Json(discovery::group(discovery::GROUP, &[discovery::VERSION])) }),
        )
        .route("/apis/custom.metrics.k8s.io", get(custom_group))
        .route("/apis/custom.metrics.k8s.io/{*rest}", get(custom_metrics))
        .route("/apis/external.metrics.k8s.io", get(external_group))
        .route("/apis/external.metrics.k8s.io/v1beta1", get(external_list))
        .route(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}",
            get(external_metric),
        )
        .route(V, get(|| async { Json(discovery::resource_list()) }))
        .route(&format!("{V}/nodes"), get(node_list))
        .route(&format!("{V}/nodes/{{name}}"), get(one_node))
        .route(&format!("{V}/pods"), get(all_pods))
        .route(&format!("{V}/namespaces/{{ns}}/pods"), get(namespace_pods))
        .route(
            &format!("{V}/namespaces/{{ns}}/pods/{{name}}"),
            get(one_pod),
        )
        .route(
            "/openapi/v2",
            get(|| async { Json(discovery::openapi_v2()) }),
        )
        .route("/healthz", get(healthy))
        .route("/livez", get(healthy))
        .route("/readyz", get(ready))
        .fallback(|| async { status::no_route() })
        .method_not_allowed_fallback(|| async {
            status::status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                None,
            )
        })
        .with_state(api)
}

/// Binds the port and serves it until the returned task is aborted; the
/// bound address is returned for the log and tests.
pub async fn start(
    cfg: &K8sMetricsApiConfig,
    db: Arc<OnceLock<Arc<Db>>>,
    engine: promql::EngineOptions,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use anyhow::Context as _;
    let adapter = match &cfg.adapter_config_file {
        Some(path) => {
            let config = adapter_config::AdapterConfig::load(path)
                .map_err(|e| anyhow::anyhow!("k8s_metrics_api.adapter_config_file: {e}"))?;
            let adapter = Arc::new(custom::Adapter {
                config,
                registry: Default::default(),
                engine,
                max_age_ms: i64::try_from(cfg.metrics_max_age.as_millis()).unwrap_or(i64::MAX),
            });
            custom::spawn_relist(
                Arc::clone(&adapter),
                Arc::clone(&db),
                cfg.relist_interval,
                cfg.metrics_max_age,
            );
            Some(adapter)
        }
        None => None,
    };
    let resolver: Arc<dyn rustls::server::ResolvesServerCert> =
        match (&cfg.tls_cert_file, &cfg.tls_key_file) {
            (Some(c), Some(k)) => Arc::new(
                tls::FileCert::open(c, k).map_err(|e| anyhow::anyhow!("k8s_metrics_api: {e}"))?,
            ),
            _ => {
                let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
                names.extend(collector::node::hostname());
                Arc::new(
                    tls::SelfSigned::generate(names)
                        .map_err(|e| anyhow::anyhow!("k8s_metrics_api: {e}"))?,
                )
            }
        };
    let tls = tls::server_config(resolver).map_err(|e| anyhow::anyhow!("k8s_metrics_api: {e}"))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let addr: SocketAddr = cfg
        .listen_addr
        .parse()
        .with_context(|| format!("k8s_metrics_api.listen_addr {:?}", cfg.listen_addr))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("k8s_metrics_api: cannot listen on {addr}"))?;
    let local = listener
        .local_addr()
        .context("k8s_metrics_api: no local address")?;
    let api = Arc::new(MetricsApi {
        db,
        objects: cfg.kubernetes.clone().map(ClusterObjects::start),
        stale_after_ms: i64::try_from(cfg.stale_after.as_millis()).unwrap_or(i64::MAX),
        adapter,
    });
    let app = router(api);
    let task = tokio::spawn(async move {
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors, most likely: wait, don't spin.
                    tracing::warn!("k8s_metrics_api: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that never finishes its handshake lets go of the socket.
                let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                let Ok(Ok(stream)) = handshake.await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    if cfg.allow_unauthenticated && !local.ip().is_loopback() {
        tracing::warn!(
            "the Kubernetes metrics API on {local} answers without authentication \
             (k8s_metrics_api.allow_unauthenticated)"
        );
    }
    Ok((local, task))
}
