//! The systemd journal as a source: follows it with journalctl, sends its
//! entries and saves the cursor of the last one every sink has queued.
//! journalctl that ends (or is missing) is started again after a pause.

use super::{LogCounters, Source};
use crate::logs::journal::{to_streams, JournalConfig, JournalReader};
use crate::pipeline::{Events, Output, StopSignal};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Journal {
    pub config: JournalConfig,
    /// The `host` label of every entry.
    pub host: String,
    pub cursor_file: PathBuf,
    pub output: Output,
    pub every: Duration,
    pub counters: Arc<LogCounters>,
}

const RETRY: Duration = Duration::from_secs(30);

impl Source for Journal {
    fn name(&self) -> String {
        "journal".into()
    }

    fn run(self: Box<Self>, stop: &StopSignal) {
        loop {
            let mut reader = match JournalReader::start(&self.config, &self.host, &self.cursor_file)
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(journalctl = %self.config.journalctl.display(), "cannot read the journal: {e}");
                    if stop.wait_until(Instant::now() + RETRY) {
                        return;
                    }
                    continue;
                }
            };
            loop {
                let entries = match reader.poll(self.every, 10_000) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!("{e}; starting it again in {RETRY:?}");
                        break;
                    }
                };
                if let Some(last) = entries.last().map(|e| e.cursor.clone()) {
                    let n = entries.len() as u64;
                    let bytes: usize = entries.iter().map(|e| e.line.len()).sum();
                    let mut events = Events::Logs(to_streams(entries));
                    let queued = match self.output.send(&mut events) {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::error!("journal: {e}");
                            false
                        }
                    };
                    self.counters.entries.fetch_add(n, Ordering::Relaxed);
                    self.counters
                        .bytes
                        .fetch_add(bytes as u64, Ordering::Relaxed);
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
}
