//! Shipping scraped series to a server by remote_write. Scrapes add their
//! series to a batch; a batch of `max_samples_per_send` samples (or
//! whatever has gathered after `batch_send_deadline`) is encoded once and
//! appended to the endpoint's disk queue (`disk_queue.rs`), which a sender
//! thread drains in order: 5xx, 429 and connection errors are retried with
//! exponential backoff and jitter (the batch stays first in the queue, so a
//! server outage only grows the backlog), other 4xx drop the batch and
//! count it, as Prometheus does.

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

/// The queue between the scrapes and one remote_write endpoint.
pub struct Shipper {
    state: Mutex<QueueState>,
    /// Signalled when a batch reaches the disk or the queue closes.
    filled: Condvar,
    max_samples: usize,
    deadline: Duration,
    write_relabel: Vec<RelabelRule>,
    external_labels: Vec<(String, String)>,
    pub counters: ShipCounters,
    /// The endpoint, for the agent's own metrics.
    pub url: String,
}

impl Shipper {
    /// Opens the endpoint's queue in `queue_dir` (resuming a backlog left
    /// by an earlier run) and starts the sender thread; it runs until
    /// [`Shipper::close`].
    pub fn start(
        cfg: &RemoteWriteConfig,
        external_labels: Vec<(String, String)>,
        queue_dir: &Path,
    ) -> Result<(Arc<Shipper>, std::thread::JoinHandle<()>), ShipError> {
        let disk = DiskQueue::open(queue_dir, cfg.queue_config.max_backlog)?;
        let queued = disk.backlog_bytes();
        if queued > 0 {
            tracing::info!(url = %cfg.url, bytes = queued, "resuming an unsent backlog");
        }
        let shipper = Arc::new(Shipper {
            state: Mutex::new(QueueState {
                batch: Vec::new(),
                batch_samples: 0,
                batch_since: None,
                disk,
                queued_samples: 0,
                closed: false,
            }),
            filled: Condvar::new(),
            max_samples: cfg.queue_config.max_samples_per_send,
            deadline: cfg.queue_config.batch_send_deadline,
            write_relabel: cfg
                .write_relabel_configs
                .iter()
                .filter_map(|c| RelabelRule::new(c).ok())
                .collect(),
            external_labels,
            counters: ShipCounters::default(),
            url: cfg.url.clone(),
        });
        let sender = Sender::new(cfg);
        let s = Arc::clone(&shipper);
        let handle = std::thread::Builder::new()
            .name("remote-write".into())
            .spawn(move || sender.run(&s))
            .map_err(ShipError::Thread)?;
        Ok((shipper, handle))
    }

    /// Adds one scrape's series to the queue.
    pub fn push(&self, series: &[WriteSeries]) {
        let mut st = self.lock();
        let rewrite = !self.external_labels.is_empty() || !self.write_relabel.is_empty();
        for s in series {
            let mut s = s.clone();
            if rewrite {
                let labels = Arc::make_mut(&mut s.labels);
                for (n, v) in &self.external_labels {
                    if labels.get(n).is_none() {
                        labels.set(n.as_str(), v.as_str());
                    }
                }
                if !relabel(&self.write_relabel, labels) {
                    continue;
                }
            }
            st.batch_samples += s.samples.len();
            st.batch.push(s);
            if st.batch_since.is_none() {
                st.batch_since = Some(Instant::now());
                // The sender sleeps until a batch starts: now it has a
                // deadline to keep.
                self.filled.notify_all();
            }
            if st.batch_samples >= self.max_samples {
                self.flush_batch(&mut st);
            }
        }
    }

    /// Encodes the gathering batch onto the disk queue.
    fn flush_batch(&self, st: &mut QueueState) {
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
        self.filled.notify_all();
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

    /// No more pushes: what is gathering goes to disk, and the sender stops
    /// once it has nothing to send (or, if the server is away, at once:
    /// the backlog stays on disk for the next run).
    pub fn close(&self) {
        let mut st = self.lock();
        self.flush_batch(&mut st);
        st.closed = true;
        drop(st);
        self.filled.notify_all();
    }

    /// Samples gathering or on disk, not yet sent.
    pub fn pending(&self) -> u64 {
        let st = self.lock();
        st.batch_samples as u64 + st.queued_samples
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // Every change under the lock is a push, a flush or a commit, each
        // leaving the state whole, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The next batch to send, waiting for one; `None` once closed and
    /// nothing is left.
    fn next_batch(&self) -> Option<crate::disk_queue::Record> {
        let mut st = self.lock();
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
                    self.flush_batch(&mut st);
                    continue;
                }
                Some(since) => self.deadline - since.elapsed(),
                None => Duration::from_secs(3600),
            };
            st = self
                .filled
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The batch up to `to` is sent (or refused): move past it.
    fn commit(&self, to: crate::disk_queue::Position, samples: u64) {
        let mut st = self.lock();
        if let Err(e) = st.disk.commit(to) {
            tracing::error!("cannot save the send queue's position: {e}");
        }
        st.queued_samples = st.queued_samples.saturating_sub(samples);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("cannot start the remote_write thread: {0}")]
    Thread(std::io::Error),
}

/// Posts batches to one endpoint.
struct Sender {
    agent: ureq::Agent,
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
    fn new(cfg: &RemoteWriteConfig) -> Self {
        Sender {
            agent: ureq::AgentBuilder::new()
                .timeout(cfg.timeout())
                .user_agent(concat!("Vigil-agent/", env!("CARGO_PKG_VERSION")))
                .build(),
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

    fn run(&self, q: &Shipper) {
        let mut jitter = Jitter::new();
        while let Some(rec) = q.next_batch() {
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
                        if q.is_closed() {
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
            q.commit(rec.next, samples);
        }
    }

    fn attempt(&self, body: &[u8]) -> Attempt {
        let mut req = self
            .agent
            .post(&self.url)
            .set("Content-Encoding", "snappy")
            .set("Content-Type", "application/x-protobuf")
            .set("X-Prometheus-Remote-Write-Version", "0.1.0");
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
