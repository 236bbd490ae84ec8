//! `vigil agent --config agent.yaml`: runs the collector agent until
//! SIGINT or SIGTERM, then marks its series stale and flushes. Send queues
//! live under `--data-dir` (default `./data-agent`), so a restart resumes
//! an unsent backlog.

use anyhow::Context;
use axum::routing::get;
use collector::agent::Agent;
use collector::scrape_config::AgentConfig;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The running agent, shared with the metrics endpoint until the stop.
type Shared = Arc<Mutex<Option<Agent>>>;

/// How long a stopping agent keeps trying to send what it holds.
const FLUSH_ON_STOP: Duration = Duration::from_secs(10);

/// Serves the agent's own `/metrics` and the probes a DaemonSet uses
/// (`/-/healthy`, `/-/ready`).
async fn serve(listen: &str, agent: Shared) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let app = axum::Router::new()
        .route("/-/healthy", get(|| async { "Vigil agent is Healthy.\n" }))
        .route("/-/ready", get(|| async { "Vigil agent is Ready.\n" }))
        .route(
            "/metrics",
            get(move || {
                let agent = Arc::clone(&agent);
                async move {
                    let text = agent
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .as_ref()
                        .map(Agent::self_metrics)
                        .unwrap_or_default();
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        text,
                    )
                }
            }),
        );
    tracing::info!(%listen, "agent metrics and probes listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::server::shutdown_signal())
        .await
        .context("agent HTTP server failed")
}

pub fn run(config: &Path, data_dir: &Path, listen: &str) -> anyhow::Result<()> {
    let cfg = AgentConfig::load(config)
        .with_context(|| format!("invalid agent config {}", config.display()))?;
    if cfg.remote_write.is_empty() {
        tracing::warn!("no remote_write configured: scraped samples go nowhere");
    }
    let agent = Agent::start(&cfg, data_dir).context("cannot start the agent")?;
    tracing::info!(
        targets = agent.targets().len(),
        dropped = agent.dropped_targets().len(),
        "agent running"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal handler")?;
    let shared: Shared = Arc::new(Mutex::new(Some(agent)));
    let served = rt.block_on(serve(listen, Arc::clone(&shared)));
    tracing::info!("stopping: marking series stale and flushing");
    let agent = shared.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(agent) = agent {
        agent.shutdown(FLUSH_ON_STOP);
    }
    served
}
