//! The running agent, wired from its parts (see [`crate::pipeline`]):
//! sinks for each remote_write endpoint and the Loki push endpoint, the
//! transforms every batch passes (external labels), and the sources
//! (scrape jobs, pod logs, the journal), each on its own thread; plus
//! the targets report to the Vigil server. It owns the agent's own
//! metrics and an orderly stop: staleness markers for every target, then
//! what is queued is sent.

use crate::fetch::Fetcher;
use crate::labels::fnv1a;
use crate::node::HostPaths;
use crate::pipeline::{Output, Sink, SinkStats, StopSignal, Transform};
use crate::scrape_config::{AgentConfig, ScrapeConfig};
use crate::ship::Shipper;
use crate::sinks::{loki_push::LokiPushSink, remote_write::RemoteWriteSink, SendQueue};
use crate::sources::journal::Journal;
use crate::sources::pod_logs::PodLogs;
use crate::sources::scrape_jobs::{Gatherer, ScrapeJob};
use crate::sources::{spawn, LogCounters};
use crate::target_status::{
    dropped_list, DroppedMap, DroppedTarget, Health, StatusMap, TargetStatus,
};
use crate::transforms::external_labels::ExternalLabels;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot start a thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("remote_write {url}: {source}")]
    Ship {
        url: String,
        source: crate::ship::ShipError,
    },
    #[error("logs: {0}")]
    Logs(String),
}

pub struct Agent {
    stop: Arc<StopSignal>,
    /// Every source's thread.
    sources: Vec<JoinHandle<()>>,
    /// Whether logs are read (for the agent's own metrics).
    reads_logs: bool,
    log_counters: Arc<LogCounters>,
    reporter: Option<JoinHandle<()>>,
    sinks: Vec<Arc<dyn Sink>>,
    status: StatusMap,
    dropped: DroppedMap,
}

impl Agent {
    /// Starts scraping every target of `cfg` and shipping to its
    /// remote_write endpoints, each with a send queue under
    /// `data_dir/queue/` (named by a hash of the URL, so reordering the
    /// config keeps each backlog with its endpoint). On an error, what
    /// had started is stopped again.
    pub fn start(cfg: &AgentConfig, data_dir: &std::path::Path) -> Result<Agent, AgentError> {
        let mut agent = Agent {
            stop: Arc::new(StopSignal::default()),
            sources: Vec::new(),
            reads_logs: cfg.logs.is_some(),
            log_counters: Arc::default(),
            reporter: None,
            sinks: Vec::new(),
            status: Arc::default(),
            dropped: Arc::default(),
        };
        match agent.wire(cfg, data_dir) {
            Ok(()) => Ok(agent),
            Err(e) => {
                agent.shutdown(Duration::ZERO);
                Err(e)
            }
        }
    }

    /// Starts the sinks, then the sources sending through the transforms
    /// into them, then the reporter.
    fn wire(&mut self, cfg: &AgentConfig, data_dir: &std::path::Path) -> Result<(), AgentError> {
        for rw in &cfg.remote_write {
            let dir = data_dir
                .join("queue")
                .join(format!("{:016x}", fnv1a(&rw.url)));
            let (shipper, senders) =
                Shipper::start(rw, &dir).map_err(|source| AgentError::Ship {
                    url: rw.url.clone(),
                    source,
                })?;
            self.sinks
                .push(Arc::new(RemoteWriteSink(SendQueue::new(shipper, senders))));
        }
        if let Some(logs) = &cfg.logs {
            let mut push = logs.push.clone();
            // One sender: a stream's entries stay in order.
            push.queue_config.max_shards = 1;
            let dir = data_dir
                .join("queue")
                .join(format!("logs-{:016x}", fnv1a(&push.url)));
            let (shipper, senders) =
                Shipper::start_for(&push, &dir, crate::ship::Protocol::LokiPush).map_err(
                    |source| AgentError::Ship {
                        url: push.url.clone(),
                        source,
                    },
                )?;
            self.sinks
                .push(Arc::new(LokiPushSink(SendQueue::new(shipper, senders))));
        }
        let transforms: Vec<Box<dyn Transform>> = vec![Box::new(ExternalLabels::new(
            cfg.global
                .external_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))];
        let output = Output::new(transforms, self.sinks.clone());
        let stop = &self.stop;
        if let Some(logs) = &cfg.logs {
            let node = logs
                .node_name
                .clone()
                .or_else(crate::node::hostname)
                .unwrap_or_else(|| "localhost".into());
            let reader = pod_log_reader(logs, &node, data_dir)?;
            if let Some(j) = &logs.journal {
                let journal = Journal {
                    config: j.clone(),
                    host: node.clone(),
                    cursor_file: data_dir.join("journal-cursor"),
                    output: output.clone(),
                    every: logs.poll_interval,
                    counters: Arc::clone(&self.log_counters),
                };
                self.sources
                    .push(spawn(Box::new(journal), Arc::clone(stop))?);
            }
            let pod_logs = PodLogs {
                reader,
                output: output.clone(),
                every: logs.poll_interval,
                counters: Arc::clone(&self.log_counters),
            };
            self.sources
                .push(spawn(Box::new(pod_logs), Arc::clone(stop))?);
        }
        for (sc, gatherer) in scrape_jobs(cfg) {
            let job = ScrapeJob::start(
                sc,
                gatherer,
                output.clone(),
                Arc::clone(&self.status),
                Arc::clone(&self.dropped),
            )?;
            self.sources.push(spawn(Box::new(job), Arc::clone(stop))?);
        }
        if let Some(v) = &cfg.vigil_server {
            self.reporter = Some(crate::report::start_reporter(
                v,
                Arc::clone(stop),
                Arc::clone(&self.status),
                Arc::clone(&self.dropped),
            )?);
        }
        Ok(())
    }

    /// Every active target, by job and URL.
    pub fn targets(&self) -> Vec<TargetStatus> {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn dropped_targets(&self) -> Vec<DroppedTarget> {
        dropped_list(&self.dropped)
    }

    /// Samples sent and dropped by every sink so far.
    pub fn shipped(&self) -> (u64, u64) {
        self.sinks.iter().fold((0, 0), |(sent, dropped), sink| {
            let st = sink.stats();
            (sent + st.sent, dropped + st.failed + st.dropped_backlog)
        })
    }

    /// The agent's own metrics in the text format: what each sink did
    /// (Prometheus's `prometheus_remote_storage_*` names, by `url`) and
    /// its targets' health.
    pub fn self_metrics(&self) -> String {
        use crate::node::{Exposition, Kind};
        let mut out = Exposition::default();
        let stats: Vec<(&str, SinkStats)> =
            self.sinks.iter().map(|s| (s.name(), s.stats())).collect();
        type Field = fn(&SinkStats) -> f64;
        let families: [(&str, &str, Kind, Field); 6] = [
            ("prometheus_remote_storage_samples_total", "Total number of samples sent to remote storage.", Kind::Counter, |s| s.sent as f64),
            ("prometheus_remote_storage_samples_failed_total", "Total number of samples which failed on send to remote storage, non-recoverable errors.", Kind::Counter, |s| s.failed as f64),
            ("prometheus_remote_storage_samples_retried_total", "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.", Kind::Counter, |s| s.retried as f64),
            ("vigil_agent_samples_dropped_backlog_total", "Samples dropped because the send backlog outgrew max_backlog.", Kind::Counter, |s| s.dropped_backlog as f64),
            ("prometheus_remote_storage_shards", "The number of shards used for parallel sending to the remote storage.", Kind::Gauge, |s| s.shards as f64),
            ("vigil_agent_pending_samples", "Samples queued (in memory or on disk) and not yet sent.", Kind::Gauge, |s| s.pending as f64),
        ];
        for (name, help, kind, field) in families {
            out.family(name, help, kind);
            for (url, st) in &stats {
                out.sample(name, &[("url", url)], field(st));
            }
        }
        out.family(
            "vigil_agent_targets",
            "Active scrape targets by health.",
            Kind::Gauge,
        );
        let targets = self.targets();
        for h in [Health::Up, Health::Down, Health::Unknown] {
            let n = targets.iter().filter(|t| t.health == h).count();
            out.sample("vigil_agent_targets", &[("health", h.as_str())], n as f64);
        }
        if self.reads_logs {
            let c = &self.log_counters;
            let families: [(&str, &str, Kind, &AtomicU64); 4] = [
                (
                    "vigil_agent_log_entries_total",
                    "Log entries read and queued for pushing.",
                    Kind::Counter,
                    &c.entries,
                ),
                (
                    "vigil_agent_log_bytes_total",
                    "Bytes of log lines read and queued for pushing.",
                    Kind::Counter,
                    &c.bytes,
                ),
                (
                    "vigil_agent_log_malformed_lines_total",
                    "Lines in container log files that were not log lines (skipped).",
                    Kind::Counter,
                    &c.malformed,
                ),
                (
                    "vigil_agent_log_files",
                    "Log files being followed.",
                    Kind::Gauge,
                    &c.files,
                ),
            ];
            for (name, help, kind, v) in families {
                out.single(name, help, kind, v.load(Ordering::Relaxed) as f64);
            }
        }
        out.into_string()
    }

    /// Stops every source (every target's series are marked stale), then
    /// gives the sinks up to `flush` to send what is queued; what they
    /// cannot send stays on disk for the next run.
    pub fn shutdown(self, flush: Duration) {
        self.stop.stop();
        for h in self.sources {
            let _ = h.join();
        }
        if let Some(r) = self.reporter {
            let _ = r.join();
        }
        for s in &self.sinks {
            s.close();
        }
        let until = Instant::now() + flush;
        for s in &self.sinks {
            s.drain(until);
        }
    }
}

/// The configured scrape jobs and the built-in node and container jobs,
/// each with where its bodies come from.
fn scrape_jobs(cfg: &AgentConfig) -> Vec<(ScrapeConfig, Gatherer)> {
    let mut jobs: Vec<(ScrapeConfig, Gatherer)> = cfg
        .scrape_configs
        .iter()
        .map(|sc| (sc.clone(), Gatherer::Http(Box::new(Fetcher::new(sc)))))
        .collect();
    if let (Some(node), Some(sc)) = (&cfg.node, &cfg.node_job) {
        let paths: HostPaths = node.host_paths();
        jobs.push((sc.clone(), Gatherer::Node(paths)));
    }
    if let (Some(c), Some(sc)) = (&cfg.containers, &cfg.containers_job) {
        let containers = crate::containers::Containers::new(c);
        jobs.push((sc.clone(), Gatherer::Containers(Box::new(containers))));
    }
    jobs
}

/// The pod log reader as `logs:` configures it: host files, multi-line
/// joining and pod labels from the API.
fn pod_log_reader(
    logs: &crate::scrape_config::LogsConfig,
    node: &str,
    data_dir: &std::path::Path,
) -> Result<crate::logs::reader::PodLogReader, AgentError> {
    let reader = crate::logs::reader::PodLogReader::open(
        &logs.pods_dir,
        &data_dir.join("log-positions"),
        node,
        logs.max_line_size as usize,
    )
    .map_err(|e| AgentError::Logs(e.to_string()))?;
    let host_logs = logs
        .paths
        .iter()
        .map(|h| {
            let labels = crate::labels::Labels::from_pairs(
                h.labels.iter().map(|(k, v)| (k.clone(), v.clone())),
            );
            (h.path.clone(), labels)
        })
        .collect();
    let reader = reader.with_host_logs(host_logs);
    let reader = match &logs.multiline {
        Some(m) => reader
            .with_multiline(crate::logs::reader::MultilineRule::new(m).map_err(AgentError::Logs)?),
        None => reader,
    };
    if logs.pod_labels.is_empty() {
        return Ok(reader);
    }
    let api = logs.kubernetes.clone().unwrap_or_default();
    let source = crate::logs::pod_labels::ApiPodLabels::start(&api, node, &logs.pod_labels)
        .map_err(|e| AgentError::Logs(format!("pod_labels: {e}")))?;
    Ok(reader.with_pod_labels(Box::new(source)))
}
