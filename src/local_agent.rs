//! All-in-one's built-in agent: this host's node metrics (job `node`) and
//! Vigil's own /metrics (job `vigil`), shipped by remote_write into the
//! server it runs beside, so a newcomer sees real data at once.

use anyhow::Context;
use collector::agent::Agent;
use collector::scrape_config::AgentConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub fn start(listen: SocketAddr, interval: Duration, data_dir: &Path) -> anyhow::Result<Agent> {
    // A server listening on every address is reached on loopback.
    let addr = if listen.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], listen.port()))
    } else {
        listen
    };
    let interval = collector::units::format_duration(interval);
    let yaml = format!(
        "global:\n  scrape_interval: {interval}\n\
         node:\n  job_name: node\n\
         scrape_configs:\n  - job_name: vigil\n    static_configs:\n      - targets: ['{addr}']\n\
         remote_write:\n  - url: http://{addr}/api/v1/write\n\
         vigil_server:\n  url: http://{addr}\n  report_interval: {interval}\n"
    );
    let cfg = AgentConfig::parse(&yaml).context("the local agent's config")?;
    let agent = Agent::start(&cfg, data_dir).context("cannot start the local agent")?;
    tracing::info!(%interval, "local agent collecting this host's node metrics and Vigil's own");
    Ok(agent)
}
