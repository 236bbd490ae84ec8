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
use crate::pipeline::{Output, Sink, StopSignal, Transform};
use crate::scrape_config::{AgentConfig, ScrapeConfig};
use crate::ship::Shipper;
use crate::sinks::{loki_push::LokiPushSink, remote_write::RemoteWriteSink};
use crate::sources::journal::Journal;
use crate::sources::pod_logs::PodLogs;
use crate::sources::scrape_jobs::{dropped_list, DroppedMap, Gatherer, ScrapeJob, StatusMap};
use crate::sources::{spawn, LogCounters};
use crate::target_status::{DroppedTarget, Health, TargetStatus};
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
    /// Whether a log source runs (for the agent's own metrics).
    reads_logs: bool,
    log_counters: Arc<LogCounters>,
    reporter: Option<JoinHandle<()>>,
    shippers: Vec<(Arc<Shipper>, Vec<JoinHandle<()>>)>,
    status: StatusMap,
    dropped: DroppedMap,
}

impl Agent {
    /// Starts scraping every target of `cfg` and shipping to its
    /// remote_write endpoints, each with a send queue under
    /// `data_dir/queue/` (named by a hash of the URL, so reordering the
    /// config keeps each backlog with its endpoint).
    pub fn start(cfg: &AgentConfig, data_dir: &std::path::Path) -> Result<Agent, AgentError> {
        let stop = Arc::new(StopSignal::default());
        // Sinks.
        let mut shippers = Vec::new();
        let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
        for rw in &cfg.remote_write {
            let dir = data_dir
                .join("queue")
                .join(format!("{:016x}", fnv1a(&rw.url)));
            let (shipper, senders) =
                Shipper::start(rw, &dir).map_err(|source| AgentError::Ship {
                    url: rw.url.clone(),
                    source,
                })?;
            sinks.push(Arc::new(RemoteWriteSink(Arc::clone(&shipper))));
            shippers.push((shipper, senders));
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
            sinks.push(Arc::new(LokiPushSink(Arc::clone(&shipper))));
            shippers.push((shipper, senders));
        }
        // Transforms.
        let transforms: Vec<Box<dyn Transform>> = vec![Box::new(ExternalLabels::new(
            cfg.global
                .external_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))];
        let output = Output::new(transforms, sinks);
        // Sources.
        let mut sources = Vec::new();
        let log_counters: Arc<LogCounters> = Arc::default();
        if let Some(logs) = &cfg.logs {
            let node = logs
                .node_name
                .clone()
                .or_else(crate::node::hostname)
                .unwrap_or_else(|| "localhost".into());
            // Opened first: a config error leaves no thread running.
            let reader = pod_log_reader(logs, &node, data_dir)?;
            if let Some(j) = &logs.journal {
                let journal = Journal {
                    config: j.clone(),
                    host: node.clone(),
                    cursor_file: data_dir.join("journal-cursor"),
                    output: output.clone(),
                    every: logs.poll_interval,
                    counters: Arc::clone(&log_counters),
                };
                sources.push(spawn(Box::new(journal), Arc::clone(&stop))?);
            }
            let pod_logs = PodLogs {
                reader,
                output: output.clone(),
                every: logs.poll_interval,
                counters: Arc::clone(&log_counters),
            };
            sources.push(spawn(Box::new(pod_logs), Arc::clone(&stop))?);
        }
        let reads_logs = !sources.is_empty();
        let status: StatusMap = Arc::default();
        let dropped: DroppedMap = Arc::default();
        for (sc, gatherer) in scrape_jobs(cfg) {
            let job = ScrapeJob::start(
                sc,
                gatherer,
                output.clone(),
                Arc::clone(&status),
                Arc::clone(&dropped),
            )?;
            sources.push(spawn(Box::new(job), Arc::clone(&stop))?);
        }
        let reporter = match &cfg.vigil_server {
            Some(v) => Some(crate::report::start_reporter(
                v,
                Arc::clone(&stop),
                Arc::clone(&status),
                Arc::clone(&dropped),
            )?),
            None => None,
        };
        Ok(Agent {
            stop,
            sources,
            reads_logs,
            log_counters,
            reporter,
            shippers,
            status,
            dropped,
        })
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

    /// Samples sent and dropped by every sender so far.
    pub fn shipped(&self) -> (u64, u64) {
        self.shippers.iter().fold((0, 0), |(s, d), (sh, _)| {
            (
                s + sh.counters.samples_sent.load(Ordering::Relaxed),
                d + sh.counters.samples_dropped.load(Ordering::Relaxed)
                    + sh.counters.samples_dropped_backlog.load(Ordering::Relaxed),
            )
        })
    }

    /// The agent's own metrics in the text format: what each remote_write
    /// sender did (Prometheus's `prometheus_remote_storage_*` names) and
    /// its targets' health.
    pub fn self_metrics(&self) -> String {
        use crate::node::{Exposition, Kind};
        let mut out = Exposition::default();
        type Counter = fn(&crate::ship::ShipCounters) -> &std::sync::atomic::AtomicU64;
        let counters: [(&str, &str, Counter); 4] = [
            ("prometheus_remote_storage_samples_total", "Total number of samples sent to remote storage.", |c| &c.samples_sent),
            ("prometheus_remote_storage_samples_failed_total", "Total number of samples which failed on send to remote storage, non-recoverable errors.", |c| &c.samples_dropped),
            ("prometheus_remote_storage_samples_retried_total", "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.", |c| &c.samples_retried),
            ("vigil_agent_samples_dropped_backlog_total", "Samples dropped because the send backlog outgrew max_backlog.", |c| &c.samples_dropped_backlog),
        ];
        for (name, help, counter) in counters {
            out.family(name, help, Kind::Counter);
            for (s, _) in &self.shippers {
                let v = counter(&s.counters).load(Ordering::Relaxed) as f64;
                out.sample(name, &[("url", &s.url)], v);
            }
        }
        out.family(
            "prometheus_remote_storage_shards",
            "The number of shards used for parallel sending to the remote storage.",
            Kind::Gauge,
        );
        for (s, _) in &self.shippers {
            out.sample(
                "prometheus_remote_storage_shards",
                &[("url", &s.url)],
                s.shards() as f64,
            );
        }
        out.family(
            "vigil_agent_pending_samples",
            "Samples queued (in memory or on disk) and not yet sent.",
            Kind::Gauge,
        );
        for (s, _) in &self.shippers {
            out.sample(
                "vigil_agent_pending_samples",
                &[("url", &s.url)],
                s.pending() as f64,
            );
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
    /// gives the senders up to `flush` to send what is queued; what they
    /// cannot send stays on disk for the next run.
    pub fn shutdown(self, flush: Duration) {
        self.stop.stop();
        for h in self.sources {
            let _ = h.join();
        }
        if let Some(r) = self.reporter {
            let _ = r.join();
        }
        for (s, _) in &self.shippers {
            s.close();
        }
        let until = Instant::now() + flush;
        for (s, senders) in self.shippers {
            while s.pending() > 0
                && !senders.iter().all(JoinHandle::is_finished)
                && Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let left = s.pending();
            if left > 0 {
                tracing::warn!("stopping with {left} samples not sent; they stay queued on disk");
            } else {
                for h in senders {
                    let _ = h.join();
                }
            }
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
