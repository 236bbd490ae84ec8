//! Shipping scraped series to a server by remote_write. Each endpoint has
//! `max_shards` shards sending in parallel; a series always goes to the
//! shard its labels hash to, so its samples arrive in order. In a shard,
//! scrapes add series to a batch; a batch of `max_samples_per_send`
//! samples (or whatever has gathered after `batch_send_deadline`) is
//! encoded once and appended to the shard's disk queue (`disk_queue.rs`),
//! which its sender thread drains in order: 5xx, 429 and connection errors
//! are retried with exponential backoff and jitter (the batch stays first
//! in the queue, so a server outage only grows the backlog), other 4xx drop
//! the batch and count it, as Prometheus does.

use crate::disk_queue::{DiskQueue, QueueError};
use crate::relabel::{relabel, RelabelRule};
use crate::remote_write::{encode_body, WriteSeries};
use crate::scrape_config::RemoteWriteConfig;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a sender has done, for the agent's own metrics and the tests.
#[derive(Debug, Default)]
pub struct ShipCounters {
    pub samples_sent: AtomicU64,
    /// Refused by the server (4xx other than 429).
    pub samples_dropped: AtomicU64,
    /// Dropped because the backlog outgrew `max_backlog`.
    pub samples_dropped_backlog: AtomicU64,
    pub samples_retried: AtomicU64,
    pub requests_failed: AtomicU64,
}

struct QueueState {
    /// Series gathering into the next batch.
    batch: Vec<WriteSeries>,
    batch_samples: usize,
    /// When the first series of the batch arrived.
    batch_since: Option<Instant>,
    disk: DiskQueue,
    /// Samples in batches on disk not yet sent.
    queued_samples: u64,
    closed: bool,
}

/// One shard: its own batch, disk queue and sender thread. A series always
/// goes to the same shard, so its samples reach the server in order while
/// the shards send in parallel.
struct Shard {
    state: Mutex<QueueState>,
    /// Signalled when a batch reaches the disk or the queue closes.
    filled: Condvar,
}

/// Most shards per endpoint: each is a thread, a connection and a queue
/// directory.
pub const MAX_SHARDS: usize = 32;

/// The queue between the scrapes and one remote_write endpoint.
pub struct Shipper {
    shards: Vec<Shard>,
    max_samples: usize,
    deadline: Duration,
    write_relabel: Vec<RelabelRule>,
    pub counters: ShipCounters,
    /// The endpoint, for the agent's own metrics.
    pub url: String,
}

impl Shipper {
    /// Opens the endpoint's shard queues under `queue_dir` (resuming a
    /// backlog left by an earlier run) and starts a sender thread per
    /// shard; they run until [`Shipper::close`].
    pub fn start(
        cfg: &RemoteWriteConfig,
        queue_dir: &Path,
    ) -> Result<(Arc<Shipper>, Vec<std::thread::JoinHandle<()>>), ShipError> {
        Self::start_for(cfg, queue_dir, Protocol::RemoteWrite)
    }

    /// [`Shipper::start`] for either protocol: Loki pushes go through the
    /// same queue and sender, as bodies encoded by the caller
    /// ([`Shipper::push_body`]).
    pub fn start_for(
        cfg: &RemoteWriteConfig,
        queue_dir: &Path,
        protocol: Protocol,
    ) -> Result<(Arc<Shipper>, Vec<std::thread::JoinHandle<()>>), ShipError> {
        let disks = open_shards(queue_dir, cfg)?;
        let queued: u64 = disks.iter().map(DiskQueue::backlog_bytes).sum();
        if queued > 0 {
            tracing::info!(url = %cfg.url, bytes = queued, "resuming an unsent backlog");
        }
        let shards = disks
            .into_iter()
            .map(|disk| Shard {
                state: Mutex::new(QueueState {
                    batch: Vec::new(),
                    batch_samples: 0,
                    batch_since: None,
                    disk,
                    queued_samples: 0,
                    closed: false,
                }),
                filled: Condvar::new(),
            })
            .collect();
        let shipper = Arc::new(Shipper {
            shards,
            max_samples: cfg.queue_config.max_samples_per_send,
            deadline: cfg.queue_config.batch_send_deadline,
            write_relabel: cfg
                .write_relabel_configs
                .iter()
                .filter_map(|c| RelabelRule::new(c).ok())
                .collect(),
            counters: ShipCounters::default(),
            url: cfg.url.clone(),
        });
        let agent = crate::fetch::http_agent(cfg.tls_config.as_ref())?;
        let mut handles = Vec::new();
        for i in 0..shipper.shards.len() {
            let sender = Sender::new(cfg, agent.clone(), protocol);
            let s = Arc::clone(&shipper);
            let name = match protocol {
                Protocol::RemoteWrite => format!("remote-write-{i}"),
                Protocol::LokiPush => format!("loki-push-{i}"),
            };
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || sender.run(&s, i))
                .map_err(ShipError::Thread)?;
            handles.push(handle);
        }
        Ok((shipper, handles))
    }

    /// Queues one body encoded by the caller (a Loki push) holding
    /// `entries` entries, on the first shard. Once this returns, the body
    /// is on disk: the caller may count its source as read.
    pub fn push_body(&self, body: &[u8], entries: u64) -> Result<(), QueueError> {
        let shard = &self.shards[0];
        let mut st = lock(shard);
        st.disk.append(body, entries)?;
        st.queued_samples += entries;
        self.sync_backlog_drops(&mut st);
        drop(st);
        shard.filled.notify_all();
        Ok(())
    }

    /// Shards sending in parallel to this endpoint.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Adds one scrape's series to the queue.
    pub fn push(&self, series: &[WriteSeries]) {
        // External labels were added before the fan-out
        // (`transforms/external_labels.rs`); this endpoint's own rules apply here.
        let rewrite = !self.write_relabel.is_empty();
        let n = self.shards.len();
        let mut by_shard: Vec<Vec<WriteSeries>> = vec![Vec::new(); n];
        for s in series {
            let mut s = s.clone();
            if rewrite {
                let labels = Arc::make_mut(&mut s.labels);
                if !relabel(&self.write_relabel, labels) {
                    continue;
                }
            }
            // The shard is chosen by the labels as sent, so a series keeps
            // its shard (and its order) across restarts.
            let i = if n == 1 {
                0
            } else {
                (s.labels.stable_hash() % n as u64) as usize
            };
            by_shard[i].push(s);
        }
        for (shard, series) in self.shards.iter().zip(by_shard) {
            if series.is_empty() {
                continue;
            }
            let mut st = lock(shard);
            for s in series {
                st.batch_samples += s.samples.len();
                st.batch.push(s);
                if st.batch_since.is_none() {
                    st.batch_since = Some(Instant::now());
                    // The sender sleeps until a batch starts: now it has a
                    // deadline to keep.
                    shard.filled.notify_all();
                }
                if st.batch_samples >= self.max_samples {
                    self.flush_batch(shard, &mut st);
                }
            }
        }
    }

    /// Encodes the shard's gathering batch onto its disk queue.
    fn flush_batch(&self, shard: &Shard, st: &mut QueueState) {
        if st.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut st.batch);
        let samples = std::mem::take(&mut st.batch_samples) as u64;
        st.batch_since = None;
        let body = encode_body(&batch);
        match st.disk.append(&body, samples) {
            Ok(()) => st.queued_samples += samples,
            Err(e) => {
                // A full or failing disk: these samples cannot be kept.
                self.counters
                    .samples_dropped_backlog
                    .fetch_add(samples, Ordering::Relaxed);
                tracing::error!("cannot queue {samples} samples: {e}");
            }
        }
        self.sync_backlog_drops(st);
        shard.filled.notify_all();
    }

    fn sync_backlog_drops(&self, st: &mut QueueState) {
        let dropped = std::mem::take(&mut st.disk.dropped_samples);
        if dropped > 0 {
            st.queued_samples = st.queued_samples.saturating_sub(dropped);
            self.counters
                .samples_dropped_backlog
                .fetch_add(dropped, Ordering::Relaxed);
            tracing::warn!("send backlog over max_backlog: dropped {dropped} oldest samples");
        }
    }

    /// No more pushes: what is gathering goes to disk, and the senders stop
    /// once they have nothing to send (or, if the server is away, at once:
    /// the backlog stays on disk for the next run).
    pub fn close(&self) {
        for shard in &self.shards {
            let mut st = lock(shard);
            self.flush_batch(shard, &mut st);
            st.closed = true;
            drop(st);
            shard.filled.notify_all();
        }
    }

    /// Samples gathering or on disk, not yet sent.
    pub fn pending(&self) -> u64 {
        self.shards
            .iter()
            .map(|shard| {
                let st = lock(shard);
                st.batch_samples as u64 + st.queued_samples
            })
            .sum()
    }

    fn is_closed(&self, shard: usize) -> bool {
        lock(&self.shards[shard]).closed
    }

    /// The shard's next batch to send, waiting for one; `None` once closed
    /// and nothing is left.
    fn next_batch(&self, shard: usize) -> Option<crate::disk_queue::Record> {
        let shard = &self.shards[shard];
        let mut st = lock(shard);
        loop {
            match st.disk.peek() {
                Ok(Some(r)) => return Some(r),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!("cannot read the send queue: {e}");
                }
            }
            if st.closed {
                return None;
            }
            let wait = match st.batch_since {
                Some(since) if since.elapsed() >= self.deadline => {
                    self.flush_batch(shard, &mut st);
                    continue;
                }
                Some(since) => self.deadline - since.elapsed(),
                None => Duration::from_secs(3600),
            };
            st = shard
                .filled
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The shard's batch up to `to` is sent (or refused): move past it.
    fn commit(&self, shard: usize, to: crate::disk_queue::Position, samples: u64) {
        let mut st = lock(&self.shards[shard]);
        if let Err(e) = st.disk.commit(to) {
            tracing::error!("cannot save the send queue's position: {e}");
        }
        st.queued_samples = st.queued_samples.saturating_sub(samples);
    }
}

fn lock(shard: &Shard) -> std::sync::MutexGuard<'_, QueueState> {
    // Every change under the lock is a push, a flush or a commit, each
    // leaving the state whole, so a poisoned lock is still usable.
    shard.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The file in an endpoint's queue directory naming how many shards its
/// queues were written with.
const SHARDS_FILE: &str = "shards";

/// Opens the shard queues `queue_dir/0`, `queue_dir/1`, ... A series' shard
/// depends on the shard count, so a changed `max_shards` only takes effect
/// once the backlog written under the old count has been sent: until then
/// the old count stays, and the agent says so.
fn open_shards(queue_dir: &Path, cfg: &RemoteWriteConfig) -> Result<Vec<DiskQueue>, ShipError> {
    let max_backlog = cfg.queue_config.max_backlog;
    let configured = cfg.queue_config.max_shards.clamp(1, MAX_SHARDS);
    if cfg.queue_config.max_shards > MAX_SHARDS {
        tracing::warn!(url = %cfg.url, max_shards = cfg.queue_config.max_shards, "using {MAX_SHARDS} send shards, the most an agent runs");
    }
    let record = queue_dir.join(SHARDS_FILE);
    let recorded = std::fs::read_to_string(&record)
        .ok()
        .and_then(|t| t.trim().parse::<usize>().ok())
        .filter(|n| (1..=MAX_SHARDS).contains(n));
    let mut count = configured;
    if let Some(old) = recorded.filter(|&old| old != configured) {
        let mut old_backlog = 0;
        for i in 0..old {
            let dir = queue_dir.join(i.to_string());
            if dir.exists() {
                old_backlog += DiskQueue::open(&dir, max_backlog)?.backlog_bytes();
            }
        }
        if old_backlog > 0 {
            tracing::warn!(
                url = %cfg.url,
                shards = old,
                configured,
                "max_shards changed with a backlog queued: keeping the old shard count until it is sent"
            );
            count = old;
        } else {
            for i in configured..old {
                let dir = queue_dir.join(i.to_string());
                std::fs::remove_dir_all(&dir)
                    .or_else(ignore_missing)
                    .map_err(|source| ShipError::Dir { path: dir, source })?;
            }
        }
    }
    let disks = (0..count)
        .map(|i| DiskQueue::open(&queue_dir.join(i.to_string()), max_backlog / count as u64))
        .collect::<Result<Vec<_>, _>>()?;
    if recorded != Some(count) {
        write_atomically(&record, format!("{count}\n").as_bytes()).map_err(|source| {
            ShipError::Dir {
                path: record,
                source,
            }
        })?;
    }
    Ok(disks)
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("tls_config: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot start the remote_write thread: {0}")]
    Thread(std::io::Error),
    #[error("send queue {path}: {source}")]
    Dir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// What a sender speaks: the bodies are snappy-compressed protobuf either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    RemoteWrite,
    /// Loki's `POST /loki/api/v1/push`.
    LokiPush,
}

/// Posts batches to one endpoint.
struct Sender {
    protocol: Protocol,
    agent: ureq::Agent,
    timeout: Duration,
    url: String,
    headers: Vec<(String, String)>,
    authorization: Option<crate::fetch::Credentials>,
    min_backoff: Duration,
    max_backoff: Duration,
}

/// What became of one attempt.
enum Attempt {
    Sent,
    /// Worth another try; the server may say when.
    Retry(String, Option<Duration>),
    /// The server will never take this batch.
    Refused(String),
}

impl Sender {
    fn new(cfg: &RemoteWriteConfig, agent: ureq::Agent, protocol: Protocol) -> Self {
        Sender {
            protocol,
            agent,
            timeout: cfg.timeout(),
            url: cfg.url.clone(),
            headers: cfg
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            authorization: Some(crate::fetch::Credentials::from_config(
                cfg.basic_auth.as_ref(),
                cfg.authorization.as_ref(),
                None,
                None,
            )),
            min_backoff: cfg.queue_config.min_backoff,
            max_backoff: cfg.queue_config.max_backoff,
        }
    }

    fn run(&self, q: &Shipper, shard: usize) {
        let mut jitter = Jitter::new();
        while let Some(rec) = q.next_batch(shard) {
            let samples = rec.samples;
            let mut backoff = self.min_backoff;
            loop {
                match self.attempt(&rec.body) {
                    Attempt::Sent => {
                        q.counters
                            .samples_sent
                            .fetch_add(samples, Ordering::Relaxed);
                        break;
                    }
                    Attempt::Refused(e) => {
                        q.counters
                            .samples_dropped
                            .fetch_add(samples, Ordering::Relaxed);
                        tracing::warn!(url = %self.url, samples, "remote_write refused a batch, dropping it: {e}");
                        break;
                    }
                    Attempt::Retry(e, retry_after) => {
                        q.counters.requests_failed.fetch_add(1, Ordering::Relaxed);
                        q.counters
                            .samples_retried
                            .fetch_add(samples, Ordering::Relaxed);
                        if q.is_closed(shard) {
                            // Stopping: the batch stays queued for the next run.
                            tracing::warn!(url = %self.url, "stopping with an unsent backlog: {e}");
                            return;
                        }
                        let wait = retry_after.unwrap_or_else(|| jitter.around(backoff));
                        tracing::debug!(url = %self.url, ?wait, "remote_write failed, retrying: {e}");
                        std::thread::sleep(wait);
                        backoff = (backoff * 2).min(self.max_backoff);
                    }
                }
            }
            q.commit(shard, rec.next, samples);
        }
    }

    fn attempt(&self, body: &[u8]) -> Attempt {
        let mut req = self
            .agent
            .post(&self.url)
            .timeout(self.timeout)
            .set("Content-Type", "application/x-protobuf");
        req = match self.protocol {
            Protocol::RemoteWrite => req
                .set("Content-Encoding", "snappy")
                .set("X-Prometheus-Remote-Write-Version", "0.1.0"),
            // Loki reads a protobuf body as snappy without being told.
            Protocol::LokiPush => req,
        };
        for (k, v) in &self.headers {
            req = req.set(k, v);
        }
        if let Some(c) = &self.authorization {
            match c.header() {
                Ok(Some(h)) => req = req.set("Authorization", &h),
                Ok(None) => {}
                Err(e) => return Attempt::Retry(e, None),
            }
        }
        match req.send_bytes(body) {
            Ok(_) => Attempt::Sent,
            Err(ureq::Error::Status(code, resp)) => {
                let retry_after = resp
                    .header("Retry-After")
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = resp.into_string().unwrap_or_default();
                let e = format!("server returned HTTP status {code}: {}", text.trim());
                if code >= 500 || code == 429 {
                    Attempt::Retry(e, retry_after)
                } else {
                    Attempt::Refused(e)
                }
            }
            Err(ureq::Error::Transport(t)) => Attempt::Retry(t.to_string(), None),
        }
    }
}

/// Spreads retries of many agents over time: the backoff times a factor
/// in [0.5, 1.5) from a xorshift generator.
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Jitter(seed | 1)
    }

    fn around(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let f = 0.5 + (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        d.mul_f64(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape_config::AgentConfig;

    fn config(url: &str, shards: usize) -> RemoteWriteConfig {
        let text = format!(
            "remote_write:\n  - url: {url}\n    queue_config:\n      max_shards: {shards}\n"
        );
        AgentConfig::parse(&text).unwrap().remote_write.remove(0)
    }

    #[test]
    fn a_changed_shard_count_waits_for_the_old_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("q");
        let disks = open_shards(&q, &config("http://127.0.0.1:1/w", 3)).unwrap();
        assert_eq!(disks.len(), 3);
        let mut d1 = disks.into_iter().nth(1).unwrap();
        d1.append(b"queued body", 5).unwrap();
        drop(d1);
        // Two shards asked for, but shard 1 of 3 still holds a batch.
        let disks = open_shards(&q, &config("http://127.0.0.1:1/w", 2)).unwrap();
        assert_eq!(disks.len(), 3);
        assert_eq!(std::fs::read_to_string(q.join(SHARDS_FILE)).unwrap(), "3\n");
        let mut d1 = disks.into_iter().nth(1).unwrap();
        let rec = d1.peek().unwrap().unwrap();
        assert_eq!(rec.body, b"queued body");
        d1.commit(rec.next).unwrap();
        drop(d1);
        // Sent: now the new count holds, and the extra shard is gone.
        let disks = open_shards(&q, &config("http://127.0.0.1:1/w", 2)).unwrap();
        assert_eq!(disks.len(), 2);
        assert_eq!(std::fs::read_to_string(q.join(SHARDS_FILE)).unwrap(), "2\n");
        assert!(!q.join("2").exists());
    }

    #[test]
    fn a_series_keeps_its_shard_whatever_else_is_pushed() {
        let dir = tempfile::tempdir().unwrap();
        let (shipper, _senders) =
            Shipper::start(&config("http://127.0.0.1:1/w", 4), dir.path()).unwrap();
        let series = |name: &str| WriteSeries {
            labels: Arc::new(crate::labels::Labels::from_pairs([("__name__", name)])),
            samples: vec![crate::remote_write::WireSample {
                timestamp_ms: 1,
                value: 1.0,
            }],
        };
        let all: Vec<WriteSeries> = (0..64).map(|i| series(&format!("m{i}"))).collect();
        shipper.push(&all);
        let placed = |shipper: &Shipper| -> Vec<Vec<String>> {
            shipper
                .shards
                .iter()
                .map(|sh| {
                    lock(sh)
                        .batch
                        .iter()
                        .map(|s| s.labels.get("__name__").unwrap_or("").to_string())
                        .collect()
                })
                .collect()
        };
        let first = placed(&shipper);
        // Spread over every shard, and each series in exactly one.
        assert!(first.iter().all(|names| !names.is_empty()), "{first:?}");
        assert_eq!(first.iter().map(Vec::len).sum::<usize>(), 64);
        shipper.push(&all[10..20]);
        for (shard, names) in placed(&shipper).iter().enumerate() {
            for n in &names[first[shard].len()..] {
                assert!(first[shard].contains(n), "{n} moved shards");
            }
        }
        assert_eq!(shipper.pending(), 74);
        shipper.close();
    }
}
