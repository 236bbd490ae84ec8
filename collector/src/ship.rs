//! Shipping scraped series to a server by remote_write: a bounded queue
//! the scrapes fill, and a sender thread that drains it in batches of
//! `max_samples_per_send` (or whatever is there after
//! `batch_send_deadline`), retrying 5xx, 429 and connection errors with
//! exponential backoff and jitter, and dropping (and counting) batches a
//! server refuses with another 4xx, as Prometheus does.
//!
//! The queue is in memory: an outage longer than the queue holds makes
//! scrapes wait for room (backpressure) rather than lose samples.

use crate::relabel::{relabel, RelabelRule};
use crate::remote_write::{encode_body, WriteSeries};
use crate::scrape_config::RemoteWriteConfig;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a sender has done, for the agent's own metrics and the tests.
#[derive(Debug, Default)]
pub struct ShipCounters {
    pub samples_sent: AtomicU64,
    pub samples_dropped: AtomicU64,
    pub samples_retried: AtomicU64,
    pub requests_failed: AtomicU64,
}

struct QueueState {
    series: VecDeque<WriteSeries>,
    samples: usize,
    closed: bool,
    /// Pushes no longer wait for room (the agent is stopping).
    unbounded: bool,
}

/// The queue between the scrapes and one remote_write endpoint.
pub struct Shipper {
    state: Mutex<QueueState>,
    /// Signalled when series arrive or the queue closes.
    filled: Condvar,
    /// Signalled when the sender takes series out.
    drained: Condvar,
    capacity: usize,
    write_relabel: Vec<RelabelRule>,
    external_labels: Vec<(String, String)>,
    pub counters: ShipCounters,
    /// The sender is between a take and a successful send.
    busy: AtomicBool,
}

impl Shipper {
    /// Starts the sender thread; it runs until [`Shipper::close`] and the
    /// queue is empty.
    pub fn start(
        cfg: &RemoteWriteConfig,
        external_labels: Vec<(String, String)>,
    ) -> std::io::Result<(Arc<Shipper>, std::thread::JoinHandle<()>)> {
        let shipper = Arc::new(Shipper {
            state: Mutex::new(QueueState {
                series: VecDeque::new(),
                samples: 0,
                closed: false,
                unbounded: false,
            }),
            filled: Condvar::new(),
            drained: Condvar::new(),
            capacity: cfg
                .queue_config
                .capacity
                .max(cfg.queue_config.max_samples_per_send),
            write_relabel: cfg
                .write_relabel_configs
                .iter()
                .filter_map(|c| RelabelRule::new(c).ok())
                .collect(),
            external_labels,
            counters: ShipCounters::default(),
            busy: AtomicBool::new(false),
        });
        let sender = Sender::new(cfg);
        let s = Arc::clone(&shipper);
        let handle = std::thread::Builder::new()
            .name("remote-write".into())
            .spawn(move || sender.run(&s))?;
        Ok((shipper, handle))
    }

    /// Queues one scrape's series, waiting while the queue is full.
    pub fn push(&self, batch: &[WriteSeries]) {
        let mut st = self.lock();
        for s in batch {
            let mut s = s.clone();
            for (n, v) in &self.external_labels {
                if s.labels.get(n).is_none() {
                    s.labels.set(n.as_str(), v.as_str());
                }
            }
            if !relabel(&self.write_relabel, &mut s.labels) {
                continue;
            }
            while st.samples >= self.capacity && !st.closed && !st.unbounded {
                st = self.drained.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.samples += s.samples.len();
            st.series.push_back(s);
        }
        drop(st);
        self.filled.notify_one();
    }

    /// Pushes stop waiting for room, so stopping scrapes cannot hang on a
    /// server that is down.
    pub fn stop_backpressure(&self) {
        self.lock().unbounded = true;
        self.drained.notify_all();
    }

    /// No more pushes: the sender sends what is queued and stops.
    pub fn close(&self) {
        self.lock().closed = true;
        self.filled.notify_all();
        self.drained.notify_all();
    }

    /// Samples waiting to be sent, the one in flight included.
    pub fn pending(&self) -> usize {
        self.lock().samples + usize::from(self.busy.load(Ordering::Acquire))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // A panicking pusher cannot leave the queue half-written: every
        // change is one push_back or drain.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes up to `max` samples, waiting up to `deadline` for a full batch;
    /// `None` when the queue is closed and empty.
    fn take(&self, max: usize, deadline: Duration) -> Option<Vec<WriteSeries>> {
        let until = Instant::now() + deadline;
        let mut st = self.lock();
        while st.samples < max && !st.closed {
            let now = Instant::now();
            if now >= until && st.samples > 0 {
                break;
            }
            let wait = if st.samples == 0 {
                // Nothing to send: no deadline to keep.
                Duration::from_secs(3600)
            } else {
                until - now
            };
            st = self
                .filled
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if st.series.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        let mut n = 0;
        while let Some(s) = st.series.front() {
            if n > 0 && n + s.samples.len() > max {
                break;
            }
            n += s.samples.len();
            if let Some(s) = st.series.pop_front() {
                out.push(s);
            }
        }
        st.samples -= n;
        self.busy.store(true, Ordering::Release);
        drop(st);
        self.drained.notify_all();
        Some(out)
    }
}

/// Posts batches to one endpoint.
struct Sender {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
    authorization: Option<crate::fetch::Credentials>,
    max_samples: usize,
    deadline: Duration,
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
            max_samples: cfg.queue_config.max_samples_per_send,
            deadline: cfg.queue_config.batch_send_deadline,
            min_backoff: cfg.queue_config.min_backoff,
            max_backoff: cfg.queue_config.max_backoff,
        }
    }

    fn run(&self, q: &Shipper) {
        let mut jitter = Jitter::new();
        while let Some(batch) = q.take(self.max_samples, self.deadline) {
            let samples: usize = batch.iter().map(|s| s.samples.len()).sum();
            let body = encode_body(&batch);
            let mut backoff = self.min_backoff;
            loop {
                match self.attempt(&body) {
                    Attempt::Sent => {
                        q.counters
                            .samples_sent
                            .fetch_add(samples as u64, Ordering::Relaxed);
                        break;
                    }
                    Attempt::Refused(e) => {
                        q.counters
                            .samples_dropped
                            .fetch_add(samples as u64, Ordering::Relaxed);
                        tracing::warn!(url = %self.url, samples, "remote_write refused a batch, dropping it: {e}");
                        break;
                    }
                    Attempt::Retry(e, retry_after) => {
                        q.counters.requests_failed.fetch_add(1, Ordering::Relaxed);
                        q.counters
                            .samples_retried
                            .fetch_add(samples as u64, Ordering::Relaxed);
                        let wait = retry_after.unwrap_or_else(|| jitter.around(backoff));
                        tracing::debug!(url = %self.url, ?wait, "remote_write failed, retrying: {e}");
                        std::thread::sleep(wait);
                        backoff = (backoff * 2).min(self.max_backoff);
                    }
                }
            }
            q.busy.store(false, Ordering::Release);
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
