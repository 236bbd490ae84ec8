//! The running agent: one thread per scrape target on its own schedule
//! (spread over the interval by a hash of the target, as Prometheus spreads
//! them), one sender per remote_write endpoint, and the targets' health for
//! the targets page. Stopping writes staleness markers for every target
//! and sends what is queued.

use crate::fetch::{Fetched, Fetcher};
use crate::kubernetes_sd::KubernetesSd;
use crate::labels::Labels;
use crate::node::HostPaths;
use crate::remote_write::WriteSeries;
use crate::scrape::{Body, ScrapeSettings, TargetScrapes};
use crate::scrape_config::{AgentConfig, ScrapeConfig};
use crate::ship::Shipper;
use crate::target::{populate, static_groups, Outcome, Target};
use crate::target_status::{DroppedTarget, Health, TargetStatus};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Lets sleeping scrape loops wake up at once when the agent stops.
#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    cond: Condvar,
}

impl StopSignal {
    /// Sleeps until `deadline`; true if the agent stopped meanwhile.
    fn wait_until(&self, deadline: Instant) -> bool {
        let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if *stopped {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = self
                .cond
                .wait_timeout(stopped, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_all();
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type StatusMap = Arc<Mutex<BTreeMap<(String, String), TargetStatus>>>;
/// Per job, the targets relabeling dropped or found invalid.
type DroppedMap = Arc<Mutex<BTreeMap<String, Vec<DroppedTarget>>>>;

fn dropped_list(d: &DroppedMap) -> Vec<DroppedTarget> {
    d.lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .flatten()
        .cloned()
        .collect()
}

/// One job's scrape loops, kept in step with its discovered targets.
struct JobRunner {
    sc: ScrapeConfig,
    rules: Vec<crate::relabel::RelabelRule>,
    settings: ScrapeSettings,
    source: Arc<Source>,
    sinks: Arc<Vec<Arc<Shipper>>>,
    status: StatusMap,
    dropped: DroppedMap,
    /// By target key: the loop's own stop signal and thread.
    loops: HashMap<String, (Arc<StopSignal>, JoinHandle<()>)>,
}

impl JobRunner {
    /// Makes the running loops match `extra` plus the static targets:
    /// new targets start, vanished ones stop (writing staleness markers).
    fn apply(&mut self, extra: &[crate::target::TargetGroup]) -> std::io::Result<()> {
        let mut groups = static_groups(&self.sc);
        groups.extend_from_slice(extra);
        let job = self.sc.job_name.clone();
        // By key, built once per target: discovery can list thousands.
        let mut wanted: HashMap<String, Target> = HashMap::new();
        let mut dropped = Vec::new();
        for group in &groups {
            for outcome in populate(&self.sc, &self.rules, group) {
                match outcome {
                    Outcome::Scrape(t) => {
                        wanted.entry(t.key()).or_insert(t);
                    }
                    Outcome::Dropped { discovered } => dropped.push(DroppedTarget {
                        job: job.clone(),
                        discovered,
                        error: None,
                    }),
                    Outcome::Invalid { discovered, error } => {
                        tracing::warn!(%job, "invalid target {discovered}: {error}");
                        dropped.push(DroppedTarget {
                            job: job.clone(),
                            discovered,
                            error: Some(error.to_string()),
                        });
                    }
                }
            }
        }
        self.dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.clone(), dropped);
        let gone: Vec<String> = self
            .loops
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for k in gone {
            if let Some((stop, handle)) = self.loops.remove(&k) {
                stop.stop();
                let _ = handle.join();
            }
            self.status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(job.clone(), k));
        }
        for (key, target) in wanted {
            if self.loops.contains_key(&key) {
                continue;
            }
            let status_key = (job.clone(), key.clone());
            self.status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    status_key.clone(),
                    TargetStatus {
                        job: job.clone(),
                        scrape_url: target.url.clone(),
                        labels: Labels::from_pairs(target.public_labels()),
                        discovered: target.discovered.clone(),
                        health: Health::Unknown,
                        last_error: String::new(),
                        last_scrape_ms: 0,
                        last_duration: Duration::ZERO,
                        interval: target.interval,
                        timeout: target.timeout,
                    },
                );
            let stop = Arc::new(StopSignal::default());
            let loop_ = ScrapeLoop {
                scrapes: TargetScrapes::new(target, self.settings.clone()),
                source: Arc::clone(&self.source),
                sinks: Arc::clone(&self.sinks),
                stop: Arc::clone(&stop),
                status: Arc::clone(&self.status),
                key: status_key,
            };
            let handle = std::thread::Builder::new()
                .name(format!("scrape-{job}"))
                .spawn(move || loop_.run())?;
            self.loops.insert(key, (stop, handle));
        }
        Ok(())
    }

    /// Until the agent stops: re-read file_sd files (changed files every
    /// few seconds, all of them every refresh_interval), take what the
    /// Kubernetes watches found, and apply both.
    fn run(mut self, mut file_sd: crate::file_sd::FileSd, stop: &StopSignal) {
        let cfgs = self.sc.file_sd_configs.clone();
        let mut kubernetes: Vec<KubernetesSd> = Vec::new();
        for k in &self.sc.kubernetes_sd_configs {
            match KubernetesSd::start(&self.sc.job_name, k) {
                Ok(sd) => kubernetes.push(sd),
                Err(e) => {
                    tracing::error!(job = %self.sc.job_name, "cannot start kubernetes_sd: {e}")
                }
            }
        }
        let refresh = cfgs
            .iter()
            .map(|c| c.refresh_interval)
            .min()
            .unwrap_or(Duration::from_secs(3600));
        // Watches report changes as they happen; a second is soon enough.
        let poll = if kubernetes.is_empty() {
            refresh.min(Duration::from_secs(5))
        } else {
            Duration::from_secs(1)
        };
        let mut next_full = Instant::now() + refresh;
        let discovering = !cfgs.is_empty() || !kubernetes.is_empty();
        let mut k8s_groups: Vec<Vec<crate::target::TargetGroup>> =
            vec![Vec::new(); kubernetes.len()];
        while discovering && !stop.wait_until(Instant::now() + poll) {
            let full = Instant::now() >= next_full;
            if full {
                next_full = Instant::now() + refresh;
            }
            let mut changed = !cfgs.is_empty() && file_sd.refresh(&cfgs, full);
            for (sd, groups) in kubernetes.iter_mut().zip(k8s_groups.iter_mut()) {
                if let Some(g) = sd.changed_groups() {
                    *groups = g;
                    changed = true;
                }
            }
            if changed {
                let mut all = file_sd.groups();
                all.extend(k8s_groups.iter().flatten().cloned());
                if let Err(e) = self.apply(&all) {
                    tracing::error!(job = %self.sc.job_name, "cannot start a scrape loop: {e}");
                }
            }
        }
        drop(kubernetes);
        stop.wait_until(Instant::now() + Duration::from_secs(365 * 86_400));
        for (_, (s, _)) in self.loops.iter() {
            s.stop();
        }
        for (_, (_, h)) in self.loops.drain() {
            let _ = h.join();
        }
    }
}

pub struct Agent {
    stop: Arc<StopSignal>,
    scrapers: Vec<JoinHandle<()>>,
    /// The container log reader, when `logs` is configured.
    log_reader: Option<JoinHandle<()>>,
    /// The journal reader, when `logs.journal` is configured.
    journal_reader: Option<JoinHandle<()>>,
    log_counters: Arc<LogCounters>,
    reporter: Option<JoinHandle<()>>,
    shippers: Vec<(Arc<Shipper>, Vec<JoinHandle<()>>)>,
    status: StatusMap,
    dropped: DroppedMap,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Agent {
    /// Starts scraping every target of `cfg` and shipping to its
    /// remote_write endpoints, each with a send queue under
    /// `data_dir/queue/` (named by a hash of the URL, so reordering the
    /// config keeps each backlog with its endpoint).
    pub fn start(cfg: &AgentConfig, data_dir: &std::path::Path) -> Result<Agent, AgentError> {
        let external: Vec<(String, String)> = cfg
            .global
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut shippers = Vec::new();
        for rw in &cfg.remote_write {
            let dir = data_dir
                .join("queue")
                .join(format!("{:016x}", fnv1a(&rw.url)));
            let started =
                Shipper::start(rw, external.clone(), &dir).map_err(|source| AgentError::Ship {
                    url: rw.url.clone(),
                    source,
                })?;
            shippers.push(started);
        }
        let sinks: Arc<Vec<Arc<Shipper>>> =
            Arc::new(shippers.iter().map(|(s, _)| Arc::clone(s)).collect());
        let stop = Arc::new(StopSignal::default());
        let mut log_reader = None;
        let mut journal_reader = None;
        let log_counters: Arc<LogCounters> = Arc::default();
        if let Some(logs) = &cfg.logs {
            let mut push = logs.push.clone();
            // One sender: a stream's entries stay in order.
            push.queue_config.max_shards = 1;
            let dir = data_dir
                .join("queue")
                .join(format!("logs-{:016x}", fnv1a(&push.url)));
            let (shipper, senders) =
                Shipper::start_for(&push, Vec::new(), &dir, crate::ship::Protocol::LokiPush)
                    .map_err(|source| AgentError::Ship {
                        url: push.url.clone(),
                        source,
                    })?;
            let node = logs
                .node_name
                .clone()
                .or_else(crate::node::hostname)
                .unwrap_or_else(|| "localhost".into());
            let reader = crate::logs::reader::PodLogReader::open(
                &logs.pods_dir,
                &data_dir.join("log-positions"),
                &node,
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
                Some(m) => reader.with_multiline(
                    crate::logs::reader::MultilineRule::new(m).map_err(AgentError::Logs)?,
                ),
                None => reader,
            };
            let reader = if logs.pod_labels.is_empty() {
                reader
            } else {
                let api = logs.kubernetes.clone().unwrap_or_default();
                let source =
                    crate::logs::pod_labels::ApiPodLabels::start(&api, &node, &logs.pod_labels)
                        .map_err(|e| AgentError::Logs(format!("pod_labels: {e}")))?;
                reader.with_pod_labels(Box::new(source))
            };
            if let Some(j) = &logs.journal {
                let (sh, st, every) = (Arc::clone(&shipper), Arc::clone(&stop), logs.poll_interval);
                let counters = Arc::clone(&log_counters);
                let (j, host, cursor) = (j.clone(), node.clone(), data_dir.join("journal-cursor"));
                journal_reader = Some(
                    std::thread::Builder::new()
                        .name("journal".into())
                        .spawn(move || {
                            run_journal(&j, &host, &cursor, &sh, &st, every, &counters)
                        })?,
                );
            }
            let (sh, st, every) = (Arc::clone(&shipper), Arc::clone(&stop), logs.poll_interval);
            let counters = Arc::clone(&log_counters);
            log_reader = Some(
                std::thread::Builder::new()
                    .name("logs".into())
                    .spawn(move || run_logs(reader, &sh, &st, every, &counters))?,
            );
            shippers.push((shipper, senders));
        }
        let status: StatusMap = Arc::default();
        let mut scrapers = Vec::new();
        let mut jobs: Vec<(ScrapeConfig, Arc<Source>)> = cfg
            .scrape_configs
            .iter()
            .map(|sc| {
                (
                    sc.clone(),
                    Arc::new(Source::Http(Box::new(Fetcher::new(sc)))),
                )
            })
            .collect();
        if let (Some(node), Some(sc)) = (&cfg.node, &cfg.node_job) {
            jobs.push((sc.clone(), Arc::new(Source::Node(node.host_paths()))));
        }
        if let (Some(c), Some(sc)) = (&cfg.containers, &cfg.containers_job) {
            let source = Source::Containers(Box::new(crate::containers::Containers::new(c)));
            jobs.push((sc.clone(), Arc::new(source)));
        }
        let dropped: DroppedMap = Arc::default();
        for (sc, source) in jobs {
            let mut runner = JobRunner {
                rules: sc.relabel_rules(),
                settings: ScrapeSettings::from_config(&sc),
                sc,
                source,
                sinks: Arc::clone(&sinks),
                status: Arc::clone(&status),
                dropped: Arc::clone(&dropped),
                loops: HashMap::new(),
            };
            // Static targets start now, so they are scraped (and listed)
            // from the first moment; file_sd refreshes in the job's thread.
            let mut file_sd = crate::file_sd::FileSd::default();
            file_sd.refresh(&runner.sc.file_sd_configs, true);
            runner.apply(&file_sd.groups())?;
            let stop = Arc::clone(&stop);
            scrapers.push(
                std::thread::Builder::new()
                    .name(format!("job-{}", runner.sc.job_name))
                    .spawn(move || runner.run(file_sd, &stop))?,
            );
        }
        let reporter = match &cfg.vigil_server {
            Some(v) => Some(start_reporter(
                v,
                Arc::clone(&stop),
                Arc::clone(&status),
                Arc::clone(&dropped),
            )?),
            None => None,
        };
        Ok(Agent {
            stop,
            scrapers,
            log_reader,
            journal_reader,
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
        if self.log_reader.is_some() || self.journal_reader.is_some() {
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

    /// Stops scraping (every target's series are marked stale), then gives
    /// the senders up to `flush` to send what is queued; what they cannot
    /// send stays on disk for the next run.
    pub fn shutdown(self, flush: Duration) {
        self.stop.stop();
        for h in self.scrapers {
            let _ = h.join();
        }
        if let Some(h) = self.log_reader {
            let _ = h.join();
        }
        if let Some(h) = self.journal_reader {
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

/// What the log reader has done, for the agent's own metrics.
#[derive(Debug, Default)]
pub struct LogCounters {
    pub entries: AtomicU64,
    pub bytes: AtomicU64,
    pub malformed: AtomicU64,
    pub files: AtomicU64,
}

/// Most line bytes in one push body.
const PUSH_BODY_BYTES: usize = 1 << 20;

/// Until the agent stops: read what the pod log files gained, queue it as
/// push bodies, and only then count it as read (so a crash re-reads
/// rather than loses).
fn run_logs(
    mut reader: crate::logs::reader::PodLogReader,
    shipper: &Shipper,
    stop: &StopSignal,
    every: Duration,
    counters: &LogCounters,
) {
    loop {
        let batch = reader.poll();
        counters
            .malformed
            .fetch_add(batch.malformed, Ordering::Relaxed);
        counters
            .files
            .store(reader.files_followed() as u64, Ordering::Relaxed);
        for s in &batch.streams {
            counters
                .entries
                .fetch_add(s.entries.len() as u64, Ordering::Relaxed);
            let bytes: usize = s.entries.iter().map(|e| e.line.len()).sum();
            counters.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        }
        if batch.malformed > 0 {
            tracing::debug!(
                lines = batch.malformed,
                "skipped lines that are not container log lines"
            );
        }
        let mut queued = true;
        for part in split_streams(batch.streams, PUSH_BODY_BYTES) {
            let entries: u64 = part.iter().map(|s| s.entries.len() as u64).sum();
            let body = crate::logs::push::encode_push_body(&part);
            if let Err(e) = shipper.push_body(&body, entries) {
                tracing::error!("cannot queue {entries} log entries: {e}");
                queued = false;
            }
        }
        if queued && !batch.positions.is_empty() {
            if let Err(e) = reader.commit(&batch.positions) {
                tracing::error!("{e}");
            }
        }
        if stop.wait_until(Instant::now() + every) {
            return;
        }
    }
}

/// Until the agent stops: follow the journal, queue its entries as push
/// bodies and save the cursor of the last one queued. journalctl that ends
/// (or is missing) is started again after a pause.
fn run_journal(
    cfg: &crate::logs::journal::JournalConfig,
    host: &str,
    cursor_file: &std::path::Path,
    shipper: &Shipper,
    stop: &StopSignal,
    every: Duration,
    counters: &LogCounters,
) {
    use crate::logs::journal::{to_streams, JournalReader};
    const RETRY: Duration = Duration::from_secs(30);
    loop {
        let mut reader = match JournalReader::start(cfg, host, cursor_file) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(journalctl = %cfg.journalctl.display(), "cannot read the journal: {e}");
                if stop.wait_until(Instant::now() + RETRY) {
                    return;
                }
                continue;
            }
        };
        loop {
            let entries = match reader.poll(every, 10_000) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!("{e}; starting it again in {RETRY:?}");
                    break;
                }
            };
            if let Some(last) = entries.last().map(|e| e.cursor.clone()) {
                let n = entries.len() as u64;
                let bytes: usize = entries.iter().map(|e| e.line.len()).sum();
                let mut queued = true;
                for part in split_streams(to_streams(entries), PUSH_BODY_BYTES) {
                    let k: u64 = part.iter().map(|s| s.entries.len() as u64).sum();
                    if let Err(e) =
                        shipper.push_body(&crate::logs::push::encode_push_body(&part), k)
                    {
                        tracing::error!("cannot queue {k} journal entries: {e}");
                        queued = false;
                    }
                }
                counters.entries.fetch_add(n, Ordering::Relaxed);
                counters.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                if queued {
                    if let Err(e) = reader.commit(&last) {
                        tracing::error!("cannot save the journal cursor: {e}");
                    }
                }
            }
            if stop.is_stopped() {
                return;
            }
        }
        if stop.wait_until(Instant::now() + RETRY) {
            return;
        }
    }
}

/// Streams regrouped into bodies of at most about `max_bytes` of lines.
fn split_streams(
    streams: Vec<crate::logs::push::PushStream>,
    max_bytes: usize,
) -> Vec<Vec<crate::logs::push::PushStream>> {
    use crate::logs::push::PushStream;
    let mut out: Vec<Vec<PushStream>> = Vec::new();
    let mut current: Vec<PushStream> = Vec::new();
    let mut bytes = 0;
    for s in streams {
        let mut part = PushStream {
            labels: s.labels.clone(),
            entries: Vec::new(),
        };
        for e in s.entries {
            if bytes + e.line.len() > max_bytes && bytes > 0 {
                if !part.entries.is_empty() {
                    current.push(std::mem::replace(
                        &mut part,
                        PushStream {
                            labels: s.labels.clone(),
                            entries: Vec::new(),
                        },
                    ));
                }
                out.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += e.line.len();
            part.entries.push(e);
        }
        if !part.entries.is_empty() {
            current.push(part);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Reports the targets to the Vigil server every interval, and an empty
/// report when the agent stops (its targets are gone).
fn start_reporter(
    cfg: &crate::scrape_config::VigilServerConfig,
    stop: Arc<StopSignal>,
    status: StatusMap,
    dropped: DroppedMap,
) -> std::io::Result<JoinHandle<()>> {
    let name = cfg
        .agent_name
        .clone()
        .or_else(crate::node::hostname)
        .unwrap_or_else(|| "agent".into());
    let url = cfg.url.clone();
    let interval = cfg.report_interval;
    let http = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    // Three missed reports and the server forgets this agent.
    let ttl = interval.as_secs_f64() * 3.0;
    std::thread::Builder::new()
        .name("report-targets".into())
        .spawn(move || {
            let mut next = Instant::now();
            loop {
                let stopped = stop.wait_until(next);
                let active: Vec<TargetStatus> = if stopped {
                    Vec::new()
                } else {
                    status
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .values()
                        .cloned()
                        .collect()
                };
                let dropped = if stopped {
                    Vec::new()
                } else {
                    dropped_list(&dropped)
                };
                let report = crate::report::TargetsReport::new(&name, ttl, &active, &dropped);
                if let Err(e) = report.send(&http, &url) {
                    tracing::debug!("{e}");
                }
                if stopped {
                    return;
                }
                next += interval;
            }
        })
}

/// Where a job's bodies come from.
enum Source {
    Http(Box<Fetcher>),
    /// The built-in node collectors, read in-process.
    Node(HostPaths),
    /// The built-in pod and container collector.
    Containers(Box<crate::containers::Containers>),
}

impl Source {
    fn fetch(&self, url: &str, timeout: Duration) -> Result<Fetched, String> {
        match self {
            Source::Http(f) => f.fetch(url, timeout),
            Source::Node(paths) => Ok(Fetched {
                body: crate::node::gather(paths).into_bytes(),
                content_type: Some("text/plain; version=0.0.4".into()),
            }),
            Source::Containers(c) => Ok(Fetched {
                body: c.gather(timeout)?.into_bytes(),
                content_type: Some("text/plain; version=0.0.4".into()),
            }),
        }
    }
}

/// One target's thread.
struct ScrapeLoop {
    scrapes: TargetScrapes,
    source: Arc<Source>,
    sinks: Arc<Vec<Arc<Shipper>>>,
    stop: Arc<StopSignal>,
    status: StatusMap,
    key: (String, String),
}

impl ScrapeLoop {
    fn run(mut self) {
        let target: Target = self.scrapes.target().clone();
        let interval = target.interval;
        let mut next = Instant::now() + first_offset(&self.key.1, interval);
        let mut out: Vec<WriteSeries> = Vec::new();
        while !self.stop.wait_until(next) {
            let start_ms = now_ms();
            let began = Instant::now();
            let fetched = self.source.fetch(&target.url, target.timeout);
            let duration = began.elapsed();
            out.clear();
            let body = fetched.as_ref().map(|f| Body {
                bytes: &f.body,
                content_type: f.content_type.as_deref(),
            });
            let report =
                self.scrapes
                    .process(body.map_err(Clone::clone), start_ms, duration, &mut out);
            for s in self.sinks.iter() {
                s.push(&out);
            }
            if let Some(st) = self
                .status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&self.key)
            {
                st.health = if report.error.is_none() {
                    Health::Up
                } else {
                    Health::Down
                };
                st.last_error = report.error.map(|e| e.to_string()).unwrap_or_default();
                st.last_scrape_ms = start_ms;
                st.last_duration = duration;
            }
            next += interval;
            let now = Instant::now();
            if next <= now {
                // Slower than the interval: skip the missed slots.
                let behind = (now - next).as_nanos() / interval.as_nanos().max(1) + 1;
                next += interval * behind as u32;
            }
        }
        out.clear();
        self.scrapes.stop(now_ms(), &mut out);
        for s in self.sinks.iter() {
            s.push(&out);
        }
    }
}

/// Where in the interval a target's scrapes fall: a hash of the target, so
/// that many targets spread out and one target keeps its slot.
fn first_offset(key: &str, interval: Duration) -> Duration {
    let h = fnv1a(key);
    let interval_ns = interval.as_nanos().max(1) as u64;
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let slot = h % interval_ns;
    let into = now_ns % interval_ns;
    Duration::from_nanos((slot + interval_ns - into) % interval_ns)
}

/// FNV-1a: stable across runs and builds, unlike the std hasher.
fn fnv1a(text: &str) -> u64 {
    let mut h = crate::labels::Fnv1a::new();
    h.write(text.as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::logs::push::{PushEntry, PushStream};

    #[test]
    fn push_bodies_stay_under_their_size_and_keep_every_entry_in_order() {
        let stream = |name: &str, n: usize| PushStream {
            labels: Labels::from_pairs([("pod", name)]),
            entries: (0..n)
                .map(|i| PushEntry {
                    time_ns: i as i64,
                    line: "x".repeat(10),
                })
                .collect(),
        };
        let parts = split_streams(vec![stream("a", 7), stream("b", 5)], 30);
        let sizes: Vec<usize> = parts
            .iter()
            .map(|p| p.iter().map(|s| s.entries.len()).sum())
            .collect();
        assert_eq!(sizes, [3, 3, 3, 3]);
        let a: Vec<i64> = parts
            .iter()
            .flatten()
            .filter(|s| s.labels.get("pod") == Some("a"))
            .flat_map(|s| s.entries.iter().map(|e| e.time_ns))
            .collect();
        assert_eq!(a, (0..7).collect::<Vec<_>>());
        // One line longer than the limit still goes, alone.
        let big = PushStream {
            labels: Labels::new(),
            entries: vec![PushEntry {
                time_ns: 0,
                line: "y".repeat(100),
            }],
        };
        assert_eq!(split_streams(vec![big], 30).len(), 1);
    }
}
