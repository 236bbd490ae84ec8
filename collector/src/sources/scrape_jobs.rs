//! Scrape jobs as sources: one per job (the configured HTTP jobs, and
//! the built-in node and container collectors, which answer in-process),
//! keeping a thread per target in step with what discovery finds. Each
//! target's thread scrapes on its own schedule (spread over the interval
//! by a hash of the target, as Prometheus spreads them), sends the series
//! into the job's output and keeps the target's health for the targets
//! page. Stopping writes staleness markers for every target.

use super::Source;
use crate::fetch::{Fetched, Fetcher};
use crate::kubernetes_sd::KubernetesSd;
use crate::labels::{fnv1a, Labels};
use crate::node::HostPaths;
use crate::pipeline::{Events, Output, StopSignal};
use crate::remote_write::WriteSeries;
use crate::scrape::{Body, ScrapeSettings, TargetScrapes};
use crate::scrape_config::ScrapeConfig;
use crate::target::{populate, static_groups, Outcome, Target};
use crate::target_status::{DroppedMap, DroppedTarget, Health, StatusMap, TargetStatus};
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One job's scrape loops, kept in step with its discovered targets.
pub struct ScrapeJob {
    sc: ScrapeConfig,
    rules: Vec<crate::relabel::RelabelRule>,
    settings: ScrapeSettings,
    gatherer: Arc<Gatherer>,
    output: Output,
    status: StatusMap,
    dropped: DroppedMap,
    file_sd: crate::file_sd::FileSd,
    /// By target key: the loop's own stop signal and thread.
    loops: HashMap<String, (Arc<StopSignal>, JoinHandle<()>)>,
}

impl ScrapeJob {
    /// The job, with its static targets (and those file_sd lists now)
    /// already being scraped, so they are listed from the first moment.
    pub fn start(
        sc: ScrapeConfig,
        gatherer: Gatherer,
        output: Output,
        status: StatusMap,
        dropped: DroppedMap,
    ) -> std::io::Result<ScrapeJob> {
        let mut job = ScrapeJob {
            rules: sc.relabel_rules(),
            settings: ScrapeSettings::from_config(&sc),
            sc,
            gatherer: Arc::new(gatherer),
            output,
            status,
            dropped,
            file_sd: crate::file_sd::FileSd::default(),
            loops: HashMap::new(),
        };
        job.file_sd.refresh(&job.sc.file_sd_configs, true);
        let groups = job.file_sd.groups();
        job.apply(&groups)?;
        Ok(job)
    }

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
                gatherer: Arc::clone(&self.gatherer),
                output: self.output.clone(),
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
    fn run_until(mut self, stop: &StopSignal) {
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
            let mut changed = !cfgs.is_empty() && self.file_sd.refresh(&cfgs, full);
            for (sd, groups) in kubernetes.iter_mut().zip(k8s_groups.iter_mut()) {
                if let Some(g) = sd.changed_groups() {
                    *groups = g;
                    changed = true;
                }
            }
            if changed {
                let mut all = self.file_sd.groups();
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

impl Source for ScrapeJob {
    fn name(&self) -> String {
        format!("job-{}", self.sc.job_name)
    }

    fn run(self: Box<Self>, stop: &StopSignal) {
        self.run_until(stop)
    }
}

/// Where a job's bodies come from.
pub enum Gatherer {
    Http(Box<Fetcher>),
    /// The built-in node collectors, read in-process.
    Node(HostPaths),
    /// The built-in pod and container collector.
    Containers(Box<crate::containers::Containers>),
}

impl Gatherer {
    fn fetch(&self, url: &str, timeout: Duration) -> Result<Fetched, String> {
        match self {
            Gatherer::Http(f) => f.fetch(url, timeout),
            Gatherer::Node(paths) => Ok(Fetched {
                body: crate::node::gather(paths).into_bytes(),
                content_type: Some("text/plain; version=0.0.4".into()),
            }),
            Gatherer::Containers(c) => Ok(Fetched {
                body: c.gather(timeout)?.into_bytes(),
                content_type: Some("text/plain; version=0.0.4".into()),
            }),
        }
    }
}

/// One target's thread.
struct ScrapeLoop {
    scrapes: TargetScrapes,
    gatherer: Arc<Gatherer>,
    output: Output,
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
            let fetched = self.gatherer.fetch(&target.url, target.timeout);
            let duration = began.elapsed();
            out.clear();
            let body = fetched.as_ref().map(|f| Body {
                bytes: &f.body,
                content_type: f.content_type.as_deref(),
            });
            let report =
                self.scrapes
                    .process(body.map_err(Clone::clone), start_ms, duration, &mut out);
            out = self.send(out);
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
        self.send(out);
    }

    /// Sends one scrape's series; gives the buffer back for the next.
    fn send(&self, out: Vec<WriteSeries>) -> Vec<WriteSeries> {
        let mut events = Events::Metrics(out);
        if let Err(e) = self.output.send(&mut events) {
            tracing::warn!(target = %self.key.1, "{e}");
        }
        match events {
            Events::Metrics(out) => out,
            Events::Logs(_) => Vec::new(),
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
