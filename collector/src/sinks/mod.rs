//! Where the agent's batches go: each sink owns one endpoint's send queue
//! ([`crate::ship::Shipper`] and its sender threads) and takes one kind
//! of event.

pub mod loki_push;
pub mod remote_write;

use crate::pipeline::SinkStats;
use crate::ship::Shipper;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One endpoint's queue and its senders: what both sinks share.
pub struct SendQueue {
    pub shipper: Arc<Shipper>,
    senders: Mutex<Vec<JoinHandle<()>>>,
}

impl SendQueue {
    pub fn new(shipper: Arc<Shipper>, senders: Vec<JoinHandle<()>>) -> Self {
        SendQueue {
            shipper,
            senders: Mutex::new(senders),
        }
    }

    pub fn stats(&self) -> SinkStats {
        let c = &self.shipper.counters;
        SinkStats {
            sent: c.samples_sent.load(Ordering::Relaxed),
            failed: c.samples_dropped.load(Ordering::Relaxed),
            retried: c.samples_retried.load(Ordering::Relaxed),
            dropped_backlog: c.samples_dropped_backlog.load(Ordering::Relaxed),
            shards: self.shipper.shards(),
            pending: self.shipper.pending(),
        }
    }

    pub fn close(&self) {
        self.shipper.close();
    }

    pub fn drain(&self, until: Instant) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        while self.shipper.pending() > 0
            && !senders.iter().all(JoinHandle::is_finished)
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = self.shipper.pending();
        if left > 0 {
            tracing::warn!(
                url = %self.shipper.url,
                "stopping with {left} samples not sent; they stay queued on disk"
            );
        } else {
            for h in senders.drain(..) {
                let _ = h.join();
            }
        }
    }
}
