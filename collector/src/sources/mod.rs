//! Where the agent's batches come from: scrape jobs (HTTP targets and the
//! built-in node and container collectors), the node's pod and host log
//! files, and the systemd journal. Each source is built with the
//! [`crate::pipeline::Output`] it sends into and runs on a thread of its
//! own until the agent stops.

pub mod journal;
pub mod pod_logs;
pub mod scrape_jobs;

use crate::pipeline::StopSignal;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::thread::JoinHandle;

/// One source of events.
pub trait Source: Send + 'static {
    /// Its thread's name.
    fn name(&self) -> String;
    /// Reads and sends until `stop` is set, then returns.
    fn run(self: Box<Self>, stop: &StopSignal);
}

/// Runs `source` on a thread of its own.
pub fn spawn(source: Box<dyn Source>, stop: Arc<StopSignal>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(source.name())
        .spawn(move || source.run(&stop))
}

/// What the log sources have done, for the agent's own metrics.
#[derive(Debug, Default)]
pub struct LogCounters {
    pub entries: AtomicU64,
    pub bytes: AtomicU64,
    pub malformed: AtomicU64,
    pub files: AtomicU64,
}
