//! The server: state shared by handlers, the router, and the lifecycle
//! (bind, open the store, serve, shut down cleanly).

use crate::api::error::ApiError;
use crate::api::{export, loki, metadata, prom_status, query, rules, silences, status, write};
use crate::assets;
use crate::config::ServerConfig;
use crate::metric_metadata::MetadataStore;
use crate::selfmetrics::SelfMetrics;
use anyhow::Context;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tsdb::{Db, DbOptions};

#[derive(Clone)]
pub struct AppState {
    db: Arc<OnceLock<Arc<Db>>>,
    logs: Arc<OnceLock<Arc<logstore::LogStore>>>,
    pub metrics: Arc<SelfMetrics>,
    pub data_dir: Arc<PathBuf>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// fsync before acknowledging every write (wal_fsync_interval: 0s).
    pub sync_every_write: bool,
    /// PromQL limits and defaults.
    pub query: Arc<promql::EngineOptions>,
    /// One permit per query allowed to evaluate at once.
    pub query_slots: Arc<tokio::sync::Semaphore>,
    /// Memory write requests may use at once to decode their bodies.
    pub decode_budget: Arc<crate::ingest::budget::DecodeBudget>,
    /// One permit per open live tail (`logs.max_concurrent_tail_requests`).
    pub tail_slots: Arc<tokio::sync::Semaphore>,
    pub tail_limit: usize,
    /// One permit per write being decoded, logged or applied: writes are
    /// acknowledged before their chunks are encoded, so this bounds the
    /// applies a fast sender can leave behind.
    pub write_slots: Arc<tokio::sync::Semaphore>,
    /// Settings as `/api/v1/status/flags` shows them (Prometheus flag names).
    pub flags: Arc<Vec<(String, String)>>,
    /// What agents last reported about their targets.
    pub targets: Arc<crate::api::targets::TargetsRegistry>,
    /// Metric metadata reported by remote_write senders.
    pub metric_metadata: Arc<MetadataStore>,
    rules: Arc<OnceLock<Arc<alerting::RuleManager>>>,
    /// Saved dashboards (`/api/vigil/dashboards`).
    pub dashboards: Arc<crate::dashboard_store::DashboardStore>,
    /// How the last configuration (re)load went, for runtimeinfo.
    pub reload: Arc<ReloadStatus>,
}

/// The outcome of the last configuration load or reload (rule files and
/// the notifier config), as Prometheus's runtimeinfo reports it.
pub struct ReloadStatus {
    state: std::sync::Mutex<(bool, chrono::DateTime<chrono::Utc>)>,
}

impl ReloadStatus {
    fn new(at: chrono::DateTime<chrono::Utc>) -> Self {
        ReloadStatus {
            state: std::sync::Mutex::new((true, at)),
        }
    }

    /// Records a reload: `lastConfigTime` moves only when it succeeded.
    pub fn record(&self, ok: bool) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = ok;
        if ok {
            s.1 = chrono::Utc::now();
        }
    }

    /// (reloadConfigSuccess, lastConfigTime)
    pub fn get(&self) -> (bool, chrono::DateTime<chrono::Utc>) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AppState {
    /// The rule engine, once the store is open.
    pub fn rules(&self) -> Option<Arc<alerting::RuleManager>> {
        self.rules.get().cloned()
    }

    /// The log store, once it has replayed its WAL.
    pub fn logs(&self) -> Option<Arc<logstore::LogStore>> {
        self.logs.get().cloned()
    }

    /// The store, or 503 while it is still replaying its WAL.
    pub fn db(&self) -> Result<Arc<Db>, ApiError> {
        self.db.get().cloned().ok_or_else(|| {
            ApiError::Unavailable("the store is starting (replaying its WAL)".into())
        })
    }
}

/// Writes processed at once: enough to keep every core busy while others
/// wait on the WAL, few enough that pending applies stay small.
fn write_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 4
}

/// The effective settings under Prometheus's flag names where one exists.
fn flags(settings: &ServerSettings) -> Vec<(String, String)> {
    let c = &settings.config;
    let dur = |d: Duration| format!("{}s", d.as_secs_f64());
    vec![
        ("web.listen-address".into(), settings.listen_addr.clone()),
        (
            "storage.tsdb.path".into(),
            settings.data_dir.display().to_string(),
        ),
        (
            "storage.tsdb.retention.time".into(),
            dur(c.storage.retention_time),
        ),
        (
            "storage.tsdb.retention.size".into(),
            c.storage.retention_size.to_string(),
        ),
        (
            "storage.tsdb.out-of-order-time-window".into(),
            dur(c.storage.out_of_order_time_window),
        ),
        ("query.lookback-delta".into(), dur(c.query.lookback_delta)),
        ("query.timeout".into(), dur(c.query.timeout)),
        ("query.max-samples".into(), c.query.max_samples.to_string()),
        (
            "query.max-samples-total".into(),
            c.query.max_samples_total.to_string(),
        ),
        (
            "query.max-concurrency".into(),
            c.query.max_concurrency.to_string(),
        ),
    ]
}

/// What to run: the resolved configuration.
pub struct ServerSettings {
    pub listen_addr: String,
    pub data_dir: PathBuf,
    pub config: ServerConfig,
    /// Run the built-in agent for this host at this scrape interval
    /// (all-in-one).
    pub local_agent: Option<std::time::Duration>,
    /// Where Vigil's own log events go; stored when the local agent runs.
    pub own_log: crate::own_log::Sink,
}

pub fn router(state: AppState, max_body: usize, access: crate::access_log::AccessLog) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::app_js))
        .route("/app_bg.wasm", get(assets::app_wasm))
        .route("/-/healthy", get(|| async { "Vigil is Healthy.\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(rules::reload).put(rules::reload))
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts))
        .route("/api/v1/alertmanagers", get(rules::alertmanagers))
        .route(
            "/api/v2/silences",
            get(silences::list).post(silences::create),
        )
        .route(
            "/api/v2/silence/{id}",
            get(silences::get_one).delete(silences::expire),
        )
        .route("/api/vigil/dashboards", get(crate::api::dashboards::list))
        .route(
            "/api/vigil/dashboards/import",
            post(crate::api::dashboards::import),
        )
        .route(
            "/api/vigil/dashboards/{uid}",
            get(crate::api::dashboards::get)
                .put(crate::api::dashboards::put)
                .delete(crate::api::dashboards::delete),
        )
        .route("/metrics", get(metrics))
        .route("/api/v1/write", post(write::remote_write))
        .route("/api/v1/import/prometheus", post(write::import_prometheus))
        .route(
            "/api/v1/series",
            get(metadata::series).post(metadata::series),
        )
        .route(
            "/api/v1/labels",
            get(metadata::label_names).post(metadata::label_names),
        )
        .route("/api/v1/label/{name}/values", get(metadata::label_values))
        .route("/api/v1/query", get(query::query).post(query::query))
        .route(
            "/api/v1/query_range",
            get(query::query_range).post(query::query_range),
        )
        .route(
            "/api/v1/format_query",
            get(query::format_query).post(query::format_query),
        )
        .route(
            "/api/v1/parse_query",
            get(query::parse_query).post(query::parse_query),
        )
        .route("/api/v1/metadata", get(prom_status::metadata))
        .route(
            "/api/v1/targets",
            get(crate::api::targets::targets).post(crate::api::targets::targets),
        )
        .route(
            "/api/vigil/agent/targets",
            post(crate::api::targets::report),
        )
        .route(
            "/api/v1/query_exemplars",
            get(prom_status::query_exemplars).post(prom_status::query_exemplars),
        )
        .route("/api/v1/status/buildinfo", get(prom_status::buildinfo))
        .route("/api/v1/status/runtimeinfo", get(prom_status::runtimeinfo))
        .route("/api/v1/status/flags", get(prom_status::flags))
        .route("/api/v1/status/tsdb", get(prom_status::tsdb_status))
        .route("/api/v1/export", get(export::export).post(export::export))
        .route("/loki/api/v1/push", post(loki::push::push))
        .route(
            "/loki/api/v1/query_range",
            get(loki::query::query_range).post(loki::query::query_range),
        )
        .route(
            "/loki/api/v1/query",
            get(loki::query::query).post(loki::query::query),
        )
        .route(
            "/loki/api/v1/labels",
            get(loki::labels::labels).post(loki::labels::labels),
        )
        .route(
            "/loki/api/v1/label/{name}/values",
            get(loki::labels::label_values).post(loki::labels::label_values),
        )
        .route("/loki/api/v1/tail", get(loki::tail::tail))
        .route(
            "/loki/api/v1/index/stats",
            get(loki::labels::index_stats).post(loki::labels::index_stats),
        )
        .route(
            "/loki/api/v1/series",
            get(loki::labels::series).post(loki::labels::series),
        )
        .route("/api/vigil/status", get(status::status))
        .route("/api/vigil/flush", post(status::flush))
        .route_layer(axum::middleware::from_fn_with_state(
            access,
            crate::access_log::log_request,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn ready(State(st): State<AppState>) -> Response {
    match st.db().map(|_| st.logs()) {
        Ok(Some(_)) => (StatusCode::OK, "Vigil is Ready.\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response(),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    match st.metrics.encode() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
}

pub async fn run(settings: ServerSettings) -> anyhow::Result<()> {
    let cfg = &settings.config;
    let addr: SocketAddr = settings.listen_addr.parse().with_context(|| {
        format!(
            "invalid --listen-addr {:?} (want HOST:PORT, e.g. 127.0.0.1:9090)",
            settings.listen_addr
        )
    })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener
        .local_addr()
        .context("listener has no local address")?;

    let db_cell: Arc<OnceLock<Arc<Db>>> = Arc::new(OnceLock::new());
    let logs_cell: Arc<OnceLock<Arc<logstore::LogStore>>> = Arc::new(OnceLock::new());
    let metric_metadata = Arc::new(MetadataStore::open(&settings.data_dir));
    let rules_cell: Arc<OnceLock<Arc<alerting::RuleManager>>> = Arc::new(OnceLock::new());
    let query_budget = Arc::new(promql::SharedBudget::new(cfg.query.max_samples_total));
    let state = AppState {
        db: db_cell.clone(),
        logs: logs_cell.clone(),
        metrics: Arc::new(SelfMetrics::new(
            db_cell.clone(),
            logs_cell.clone(),
            rules_cell.clone(),
        )),
        data_dir: Arc::new(settings.data_dir.clone()),
        started_at: chrono::Utc::now(),
        sync_every_write: cfg.storage.wal_fsync_interval.is_zero(),
        query: Arc::new(cfg.query.to_engine_sharing(&query_budget)),
        query_slots: Arc::new(tokio::sync::Semaphore::new(
            cfg.query.max_concurrency.max(1),
        )),
        tail_slots: Arc::new(tokio::sync::Semaphore::new(
            cfg.logs.max_concurrent_tail_requests,
        )),
        tail_limit: cfg.logs.max_concurrent_tail_requests,
        decode_budget: Arc::new(crate::ingest::budget::DecodeBudget::new(
            cfg.limits.max_inflight_decode_bytes,
            usize::try_from(cfg.limits.max_decompressed_body_bytes).unwrap_or(usize::MAX),
        )),
        write_slots: Arc::new(tokio::sync::Semaphore::new(write_concurrency())),
        flags: Arc::new(flags(&settings)),
        targets: Arc::default(),
        metric_metadata: metric_metadata.clone(),
        rules: rules_cell.clone(),
        reload: Arc::new(ReloadStatus::new(chrono::Utc::now())),
        dashboards: Arc::new(crate::dashboard_store::DashboardStore::new(
            cfg.dashboards_dir
                .clone()
                .unwrap_or_else(|| settings.data_dir.join("dashboards")),
        )),
    };
    let reload_status = state.reload.clone();
    let app = router(state, cfg.limits.max_request_body_bytes, cfg.access_log);
    // SIGINT/SIGTERM is caught from the start (even during WAL replay);
    // the server stops serving only when told, after the local agent has
    // sent its last samples through it.
    let (signal_tx, signal_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = signal_tx.send(());
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stop_rx.await;
        })
        .await
    });
    println!(
        "Vigil is listening on http://{local}/ (data in {})",
        settings.data_dir.display()
    );
    let k8s_metrics_api = match &cfg.k8s_metrics_api {
        Some(k) => {
            let (addr, task) = crate::k8s_metrics::start(
                k,
                db_cell.clone(),
                cfg.query.to_engine_sharing(&query_budget),
            )
            .await?;
            println!("Kubernetes metrics API on https://{addr}/apis/metrics.k8s.io/v1beta1");
            Some(task)
        }
        None => None,
    };

    // Open the store after binding so /-/ready can say "not yet" during replay.
    let opts = DbOptions {
        head: tsdb::head::HeadOptions {
            limits: cfg.limits.to_tsdb(),
            out_of_order_window_ms: cfg.storage.out_of_order_time_window.as_millis() as i64,
            retention_ms: cfg.storage.retention_time.as_millis() as i64,
            max_future_ms: cfg.limits.creation_grace_period.as_millis() as i64,
            ..Default::default()
        },
        retention_size_bytes: cfg.storage.retention_size,
        block_cache_bytes: usize::try_from(cfg.storage.block_cache_size).unwrap_or(usize::MAX),
    };
    let dir = settings.data_dir.clone();
    let db = tokio::task::spawn_blocking(move || Db::open(&dir, opts))
        .await
        .context("store open task failed")?
        .with_context(|| format!("cannot open the store in {}", settings.data_dir.display()))?;
    if let Some(t) = &db.replay_report().truncated {
        tracing::warn!(detail = %t, "WAL had a damaged tail, which was cut off");
    }
    let db = Arc::new(db);
    let _ = db_cell.set(db.clone());
    let log_opts = cfg
        .logs
        .to_options()
        .context("invalid logs configuration")?;
    let log_dir = settings.data_dir.join("logs");
    let logs = tokio::task::spawn_blocking({
        let dir = log_dir.clone();
        move || logstore::LogStore::open(&dir, log_opts)
    })
    .await
    .context("log store open task failed")?
    .with_context(|| format!("cannot open the log store in {}", log_dir.display()))?;
    let logs = Arc::new(logs);
    let _ = logs_cell.set(logs.clone());
    let ams =
        crate::alertmanagers::build(&cfg.alerting).context("invalid alerting configuration")?;
    let alert_relabel = ams.alert_relabel.clone();
    let notifier = if ams.sets.is_empty() {
        None
    } else {
        let n = alerting::Notifier::start(alerting::NotifierOptions {
            sets: ams.sets,
            external_labels: cfg.global.external_labels.clone(),
            alert_relabel: ams.alert_relabel,
        })
        .context("cannot start the alert notifier")?;
        Some(Arc::new(n))
    };
    let external_url = cfg
        .global
        .external_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let dispatcher = match &cfg.alerting.notifier_config_file {
        Some(path) => {
            let dc = alerting::dispatch::config::DispatchConfig::load(path)
                .map_err(|e| anyhow::anyhow!("alerting.notifier_config_file: {e}"))?;
            let silences = alerting::dispatch::silences::Silences::open(Some(
                settings.data_dir.join("silences.json"),
            ))
            .map_err(|e| anyhow::anyhow!("cannot read the silences: {e}"))?;
            let d = alerting::Dispatcher::start(alerting::dispatch::DispatcherOptions {
                config: dc,
                config_path: Some(path.clone()),
                silences: Arc::new(silences),
                log_path: Some(settings.data_dir.join("notification-log.json")),
                external_url: external_url.clone(),
                external_labels: cfg.global.external_labels.clone(),
                alert_relabel,
            })
            .context("cannot start the built-in notifier")?;
            Some(Arc::new(d))
        }
        None => None,
    };
    let rule_manager = Arc::new(alerting::RuleManager::new(
        Arc::new(crate::rules::DbBackend {
            db: db.clone(),
            engine: promql::Engine::new(cfg.query.to_engine_sharing(&query_budget)),
            logs: Some(logs.clone()),
        }),
        alerting::EvalOptions {
            default_interval: cfg
                .global
                .evaluation_interval
                .max(Duration::from_millis(10)),
            external_labels: cfg.global.external_labels.clone(),
            external_url,
            resend_delay: cfg.alerting.resend_delay,
            ..Default::default()
        },
        notifier,
        dispatcher,
    ));
    {
        let (m, files) = (rule_manager.clone(), cfg.rule_sources());
        tokio::task::spawn_blocking(move || m.load(&files))
            .await
            .context("rule loading task failed")?
            .map_err(|e| anyhow::anyhow!("cannot load rule files: {e}"))?;
    }
    let _ = rules_cell.set(rule_manager.clone());
    spawn_sighup_reload(rule_manager.clone(), reload_status);
    tracing::info!(%local, "ready");

    let fsync = spawn_fsync_loop(db.clone(), cfg.storage.wal_fsync_interval);
    let maintenance = spawn_maintenance_loop(
        db.clone(),
        metric_metadata.clone(),
        cfg.storage.maintenance_interval,
    );
    let agent = match settings.local_agent {
        Some(interval) => {
            let host = collector::node::hostname().unwrap_or_else(|| "localhost".into());
            crate::own_log::start(&settings.own_log, logs.clone(), host);
            let dir = settings.data_dir.join("local-agent");
            match tokio::task::block_in_place(|| crate::local_agent::start(local, interval, &dir)) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!("the local agent did not start: {e:#}");
                    None
                }
            }
        }
        None => None,
    };
    let mut server = server;
    // A server that fails on its own ends the run without a signal.
    let failed_early = tokio::select! {
        _ = signal_rx => None,
        r = &mut server => Some(r),
    };
    let served = match failed_early {
        Some(r) => r.context("server task failed")?,
        None => {
            if let Some(a) = agent {
                // While the server still serves, so the agent's staleness
                // markers land; what it cannot send in time stays queued
                // for the next start.
                tokio::task::block_in_place(|| a.shutdown(std::time::Duration::from_secs(5)));
            }
            let _ = stop_tx.send(());
            server.await.context("server task failed")?
        }
    };
    {
        let m = rule_manager.clone();
        let _ = tokio::task::spawn_blocking(move || m.shutdown()).await;
    }
    if let Some(f) = fsync {
        f.abort();
    }
    if let Some(t) = k8s_metrics_api {
        t.abort();
    }
    maintenance.abort();
    if let Err(e) = metric_metadata.save_if_changed() {
        tracing::warn!(error = %e, "cannot save metric metadata");
    }
    // Everything acknowledged is already in the WAL; make it durable.
    let flush = db.clone();
    tokio::task::spawn_blocking(move || flush.sync())
        .await
        .context("final sync task failed")?
        .context("final WAL sync failed")?;
    // Index what the log WAL holds, so the next start replays nothing.
    tokio::task::spawn_blocking(move || logs.close())
        .await
        .context("log store close task failed")?
        .context("final log store commit failed")?;
    tracing::info!("shut down cleanly");
    served.context("HTTP server failed")
}

/// SIGHUP reloads the rule files, as it does for Prometheus.
fn spawn_sighup_reload(m: Arc<alerting::RuleManager>, status: Arc<ReloadStatus>) {
    tokio::spawn(async move {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload through POST /-/reload");
                return;
            }
        };
        while hup.recv().await.is_some() {
            let m = m.clone();
            let done = tokio::task::spawn_blocking(move || m.reload()).await;
            status.record(matches!(done, Ok(Ok(_))));
            match done {
                Ok(Ok(n)) => tracing::info!(rules = n, "rule files reloaded on SIGHUP"),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "reloading rule files failed; the old rules stay")
                }
                Err(e) => tracing::error!(error = %e, "reload task failed"),
            }
        }
    });
}

fn spawn_fsync_loop(db: Arc<Db>, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
    if every.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let db = db.clone();
            match tokio::task::spawn_blocking(move || db.sync()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "WAL fsync failed"),
                Err(e) => tracing::error!(error = %e, "WAL fsync task failed"),
            }
        }
    }))
}

/// Persists old head data, compacts and applies retention, off the async
/// executor; one round at a time.
fn spawn_maintenance_loop(
    db: Arc<Db>,
    metric_metadata: Arc<MetadataStore>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let db = db.clone();
            let meta = metric_metadata.clone();
            let now = chrono::Utc::now().timestamp_millis();
            let round = move || {
                if let Err(e) = meta.save_if_changed() {
                    tracing::warn!(error = %e, "cannot save metric metadata; will retry");
                }
                db.maintain(now)
            };
            match tokio::task::spawn_blocking(round).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "store maintenance failed; will retry"),
                Err(e) => tracing::error!(error = %e, "store maintenance task failed"),
            }
        }
    })
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
