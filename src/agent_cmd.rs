//! `vigil agent --config agent.yaml`: runs the collector agent until
//! SIGINT or SIGTERM, then marks its series stale and flushes. Send queues
//! live under `--data-dir` (default `./data-agent`), so a restart resumes
//! an unsent backlog.

use anyhow::Context;
use collector::agent::Agent;
use collector::scrape_config::AgentConfig;
use std::path::Path;
use std::time::Duration;

/// How long a stopping agent keeps trying to send what it holds.
const FLUSH_ON_STOP: Duration = Duration::from_secs(10);

pub fn run(config: &Path, data_dir: &Path) -> anyhow::Result<()> {
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
    rt.block_on(crate::server::shutdown_signal());
    tracing::info!("stopping: marking series stale and flushing");
    agent.shutdown(FLUSH_ON_STOP);
    Ok(())
}
