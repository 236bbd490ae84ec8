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
         vigil_server:\n  url: http://{addr}\n  report_interval: {interval}\n\
         {logs}",
        logs = host_logs(&HostLogs::of_this_host(), addr),
    );
    let cfg = AgentConfig::parse(&yaml).context("the local agent's config")?;
    let agent = Agent::start(&cfg, data_dir).context("cannot start the local agent")?;
    tracing::info!(%interval, "local agent collecting this host's node metrics and Vigil's own");
    Ok(agent)
}

/// Where this host keeps its logs.
pub struct HostLogs {
    /// The kubelet's pod logs, when this host is a Kubernetes node.
    pub pods_dir: Option<std::path::PathBuf>,
    /// Syslog-style files (`/var/log/*.log`).
    pub files: Option<String>,
    /// The systemd journal, read with this journalctl.
    pub journalctl: Option<std::path::PathBuf>,
}

impl HostLogs {
    pub fn of_this_host() -> HostLogs {
        let var_log = Path::new("/var/log");
        // journalctl on PATH, and a journal to read.
        let journalctl = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("journalctl"))
                .find(|p| p.is_file())
        });
        let has_journal = ["/run/log/journal", "/var/log/journal"]
            .iter()
            .any(|d| Path::new(d).is_dir());
        HostLogs {
            pods_dir: Some(var_log.join("pods")).filter(|p| p.is_dir()),
            files: var_log.is_dir().then(|| "/var/log/*.log".to_string()),
            journalctl: journalctl.filter(|_| has_journal),
        }
    }
}

/// The `logs:` section that ships this host's logs to the server at
/// `addr`; empty when there is nothing to read.
pub fn host_logs(h: &HostLogs, addr: SocketAddr) -> String {
    if h.pods_dir.is_none() && h.files.is_none() && h.journalctl.is_none() {
        return String::new();
    }
    // Without pod logs, the pod reader is pointed at a directory that
    // does not exist: it reads nothing.
    let pods = h
        .pods_dir
        .as_ref()
        .map_or("/nonexistent/vigil-no-pod-logs".to_string(), |p| {
            p.display().to_string()
        });
    let mut out =
        format!("logs:\n  pods_dir: '{pods}'\n  push:\n    url: http://{addr}/loki/api/v1/push\n");
    if let Some(f) = &h.files {
        out.push_str(&format!(
            "  paths:\n    - path: '{f}'\n      labels: {{job: varlogs}}\n"
        ));
    }
    if let Some(j) = &h.journalctl {
        out.push_str(&format!("  journal:\n    journalctl: '{}'\n", j.display()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logs_section_names_what_the_host_has() {
        let addr: SocketAddr = "127.0.0.1:9090".parse().unwrap();
        let none = HostLogs {
            pods_dir: None,
            files: None,
            journalctl: None,
        };
        assert_eq!(host_logs(&none, addr), "");
        let all = HostLogs {
            pods_dir: Some("/var/log/pods".into()),
            files: Some("/var/log/*.log".into()),
            journalctl: Some("/usr/bin/journalctl".into()),
        };
        let yaml = host_logs(&all, addr);
        let cfg = collector::scrape_config::AgentConfig::parse(&yaml).unwrap();
        let logs = cfg.logs.unwrap();
        assert_eq!(logs.pods_dir, Path::new("/var/log/pods"));
        assert_eq!(logs.paths[0].path, "/var/log/*.log");
        assert!(logs.journal.is_some());
        assert_eq!(logs.push.url, "http://127.0.0.1:9090/loki/api/v1/push");
    }
}
