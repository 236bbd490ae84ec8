//! The running agent: one thread per scrape target on its own schedule
//! (spread over the interval by a hash of the target, as Prometheus spreads
//! them), one sender per remote_write endpoint, and the targets' health for
//! the targets page. Stopping writes staleness markers for every target
//! and sends what is queued.

use crate::fetch::{Fetched, Fetcher};
use crate::labels::Labels;
use crate::node::HostPaths;
use crate::remote_write::WriteSeries;
use crate::scrape::{Body, ScrapeSettings, TargetScrapes};
use crate::scrape_config::{AgentConfig, ScrapeConfig};
use crate::ship::Shipper;
use crate::target::{populate, static_groups, Outcome, Target};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
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
}

/// A target's health as Prometheus's targets API words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// What the targets page shows for one target.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    pub job: String,
    pub scrape_url: String,
    /// The labels its series get.
    pub labels: Labels,
    /// Labels before relabeling.
    pub discovered: Labels,
    pub health: Health,
    pub last_error: String,
    /// Unix milliseconds of the last scrape's start; 0 before the first.
    pub last_scrape_ms: i64,
    pub last_duration: Duration,
    pub interval: Duration,
    pub timeout: Duration,
}

/// A target relabeling dropped, for the targets page.
#[derive(Debug, Clone)]
pub struct DroppedTarget {
    pub job: String,
    pub discovered: Labels,
    /// Why, when it was invalid rather than dropped by a rule.
    pub error: Option<String>,
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
}

type StatusMap = Arc<Mutex<BTreeMap<(String, String), TargetStatus>>>;

pub struct Agent {
    stop: Arc<StopSignal>,
    scrapers: Vec<JoinHandle<()>>,
    reporter: Option<JoinHandle<()>>,
    shippers: Vec<(Arc<Shipper>, JoinHandle<()>)>,
    status: StatusMap,
    dropped: Vec<DroppedTarget>,
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
        let status: StatusMap = Arc::default();
        let mut scrapers = Vec::new();
        let mut dropped = Vec::new();
        let mut jobs: Vec<(ScrapeConfig, Arc<Source>)> = cfg
            .scrape_configs
            .iter()
            .map(|sc| (sc.clone(), Arc::new(Source::Http(Fetcher::new(sc)))))
            .collect();
        if let Some(node) = &cfg.node {
            let mut sc = node.scrape_config();
            // Validated when the config was read; this fills the defaults.
            sc.scrape_interval.get_or_insert(cfg.global.scrape_interval);
            let interval = sc.scrape_interval.unwrap_or(cfg.global.scrape_interval);
            sc.scrape_timeout.get_or_insert(
                cfg.global
                    .scrape_timeout
                    .unwrap_or(Duration::from_secs(10))
                    .min(interval),
            );
            jobs.push((sc, Arc::new(Source::Node(node.host_paths()))));
        }
        for (sc, source) in &jobs {
            let rules = sc.relabel_rules();
            let settings = ScrapeSettings::from_config(sc);
            for group in static_groups(sc) {
                for outcome in populate(sc, &rules, &group) {
                    let target = match outcome {
                        Outcome::Scrape(t) => t,
                        Outcome::Dropped { discovered } => {
                            dropped.push(DroppedTarget {
                                job: sc.job_name.clone(),
                                discovered,
                                error: None,
                            });
                            continue;
                        }
                        Outcome::Invalid { discovered, error } => {
                            tracing::warn!(job = %sc.job_name, "invalid target {discovered}: {error}");
                            dropped.push(DroppedTarget {
                                job: sc.job_name.clone(),
                                discovered,
                                error: Some(error.to_string()),
                            });
                            continue;
                        }
                    };
                    let key = (sc.job_name.clone(), target.key());
                    if status
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .contains_key(&key)
                    {
                        // The same target twice in a job is scraped once.
                        continue;
                    }
                    status.lock().unwrap_or_else(|e| e.into_inner()).insert(
                        key.clone(),
                        TargetStatus {
                            job: sc.job_name.clone(),
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
                    let loop_ = ScrapeLoop {
                        scrapes: TargetScrapes::new(target, settings.clone()),
                        source: Arc::clone(source),
                        sinks: Arc::clone(&sinks),
                        stop: Arc::clone(&stop),
                        status: Arc::clone(&status),
                        key,
                    };
                    scrapers.push(
                        std::thread::Builder::new()
                            .name(format!("scrape-{}", sc.job_name))
                            .spawn(move || loop_.run())?,
                    );
                }
            }
        }
        let reporter = match &cfg.vigil_server {
            Some(v) => Some(start_reporter(
                v,
                Arc::clone(&stop),
                Arc::clone(&status),
                dropped.clone(),
            )?),
            None => None,
        };
        Ok(Agent {
            stop,
            scrapers,
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

    pub fn dropped_targets(&self) -> &[DroppedTarget] {
        &self.dropped
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

    /// Stops scraping (every target's series are marked stale), then gives
    /// the senders up to `flush` to send what is queued; what they cannot
    /// send stays on disk for the next run.
    pub fn shutdown(self, flush: Duration) {
        self.stop.stop();
        for h in self.scrapers {
            let _ = h.join();
        }
        if let Some(r) = self.reporter {
            let _ = r.join();
        }
        for (s, _) in &self.shippers {
            s.close();
        }
        let until = Instant::now() + flush;
        for (s, h) in self.shippers {
            while s.pending() > 0 && !h.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            let left = s.pending();
            if left > 0 {
                tracing::warn!("stopping with {left} samples not sent; they stay queued on disk");
            } else {
                let _ = h.join();
            }
        }
    }
}

/// Reports the targets to the Vigil server every interval, and an empty
/// report when the agent stops (its targets are gone).
fn start_reporter(
    cfg: &crate::scrape_config::VigilServerConfig,
    stop: Arc<StopSignal>,
    status: StatusMap,
    dropped: Vec<DroppedTarget>,
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
                let dropped: &[DroppedTarget] = if stopped { &[] } else { &dropped };
                let report = crate::report::TargetsReport::new(&name, ttl, &active, dropped);
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
    Http(Fetcher),
    /// The built-in node collectors, read in-process.
    Node(HostPaths),
}

impl Source {
    fn fetch(&self, url: &str, timeout: Duration) -> Result<Fetched, String> {
        match self {
            Source::Http(f) => f.fetch(url, timeout),
            Source::Node(paths) => Ok(Fetched {
                body: crate::node::gather(paths).into_bytes(),
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
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
