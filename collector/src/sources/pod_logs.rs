//! The node's pod logs (and the host log files configured beside them) as
//! a source: every poll, what the files gained is sent as log streams, and
//! only once every sink has queued it are the read positions committed
//! (so a crash re-reads rather than loses).

use super::{LogCounters, Source};
use crate::logs::reader::PodLogReader;
use crate::pipeline::{Events, Output, StopSignal};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct PodLogs {
    pub reader: PodLogReader,
    pub output: Output,
    pub every: Duration,
    pub counters: Arc<LogCounters>,
}

impl Source for PodLogs {
    fn name(&self) -> String {
        "logs".into()
    }

    fn run(mut self: Box<Self>, stop: &StopSignal) {
        loop {
            let batch = self.reader.poll();
            let c = &self.counters;
            c.malformed.fetch_add(batch.malformed, Ordering::Relaxed);
            c.files
                .store(self.reader.files_followed() as u64, Ordering::Relaxed);
            for s in &batch.streams {
                c.entries
                    .fetch_add(s.entries.len() as u64, Ordering::Relaxed);
                let bytes: usize = s.entries.iter().map(|e| e.line.len()).sum();
                c.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            }
            if batch.malformed > 0 {
                tracing::debug!(
                    lines = batch.malformed,
                    "skipped lines that are not container log lines"
                );
            }
            let mut events = Events::Logs(batch.streams);
            let queued = match self.output.send(&mut events) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!("{e}");
                    false
                }
            };
            if queued && !batch.positions.is_empty() {
                if let Err(e) = self.reader.commit(&batch.positions) {
                    tracing::error!("{e}");
                }
            }
            if stop.wait_until(Instant::now() + self.every) {
                return;
            }
        }
    }
}
