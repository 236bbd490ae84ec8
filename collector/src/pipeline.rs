//! The agent's one component interface, shaped as Vector shapes its
//! topology: sources produce batches of events, transforms reshape them in
//! order, sinks queue them for a server. Every source gets an [`Output`]
//! that runs the configured transforms and hands the result to each sink
//! that takes that kind of event; `agent.rs` only wires components.
//!
//! Delivery is acknowledged: [`Output::send`] returns once every sink has
//! taken the batch — log bodies are then on the sink's disk queue, so a
//! log source commits its read positions after a successful send and a
//! crash re-reads rather than loses; metrics join an in-memory batch that
//! goes to disk by size or deadline (what cannot be kept is counted as
//! dropped, as Prometheus drops rather than blocks its scrapes).

use crate::logs::push::PushStream;
use crate::remote_write::WriteSeries;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// A batch of events as it flows from a source to the sinks.
#[derive(Debug)]
pub enum Events {
    /// One scrape's (or collector's) series.
    Metrics(Vec<WriteSeries>),
    /// Log streams, each a label set and its entries oldest first.
    Logs(Vec<PushStream>),
}

/// The kind of a batch, for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Metrics,
    Logs,
}

impl Events {
    pub fn kind(&self) -> EventKind {
        match self {
            Events::Metrics(_) => EventKind::Metrics,
            Events::Logs(_) => EventKind::Logs,
        }
    }

    /// Samples or log entries in the batch.
    pub fn len(&self) -> usize {
        match self {
            Events::Metrics(s) => s.iter().map(|s| s.samples.len()).sum(),
            Events::Logs(s) => s.iter().map(|s| s.entries.len()).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reshapes batches in place (adds or drops labels, entries or series).
/// Shared by every thread of the sources it serves, so state a transform
/// keeps sits behind its own lock.
pub trait Transform: Send + Sync {
    fn apply(&self, events: &mut Events);
}

/// Why a sink could not take a batch.
#[derive(Debug, thiserror::Error)]
#[error("{sink}: {detail}")]
pub struct SinkError {
    pub sink: String,
    pub detail: String,
}

/// What a sink has done, for the agent's own metrics (Prometheus's
/// `prometheus_remote_storage_*` words; entries count as samples).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub sent: u64,
    /// Refused by the destination for good.
    pub failed: u64,
    pub retried: u64,
    /// Dropped because the backlog outgrew its bound or the disk failed.
    pub dropped_backlog: u64,
    pub shards: usize,
    /// Taken but not yet sent.
    pub pending: u64,
}

/// Queues batches for a destination. `send` returns once the sink has
/// taken the batch (see the module's words on delivery), or with the
/// reason it could not.
pub trait Sink: Send + Sync {
    /// The destination, for errors and the agent's own metrics.
    fn name(&self) -> &str;
    fn takes(&self, kind: EventKind) -> bool;
    fn send(&self, events: &Events) -> Result<(), SinkError>;
    fn stats(&self) -> SinkStats;
    /// No more sends: what is gathering is queued, the senders finish
    /// what is queued and stop.
    fn close(&self);
    /// Waits until everything queued is sent or `until` passes; what is
    /// left stays queued on disk for the next run.
    fn drain(&self, until: Instant);
}

/// What a source sends into: the transforms, then every sink that takes
/// the batch's kind.
#[derive(Clone, Default)]
pub struct Output {
    transforms: Arc<Vec<Box<dyn Transform>>>,
    sinks: Arc<Vec<Arc<dyn Sink>>>,
}

impl Output {
    pub fn new(transforms: Vec<Box<dyn Transform>>, sinks: Vec<Arc<dyn Sink>>) -> Self {
        Output {
            transforms: Arc::new(transforms),
            sinks: Arc::new(sinks),
        }
    }

    /// Runs the transforms over `events` (in place: the caller may reuse
    /// the batch's buffers) and queues the result on every sink that takes
    /// it. Ok once every such sink has it; otherwise the first failure,
    /// after every sink has been tried.
    pub fn send(&self, events: &mut Events) -> Result<(), SinkError> {
        let kind = events.kind();
        if !self.routes(kind) {
            // Nowhere to go: no transform need run.
            return Ok(());
        }
        for t in self.transforms.iter() {
            t.apply(events);
        }
        let mut first_error = None;
        for sink in self.sinks.iter().filter(|s| s.takes(kind)) {
            if let Err(e) = sink.send(events) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Whether any sink takes `kind`.
    pub fn routes(&self, kind: EventKind) -> bool {
        self.sinks.iter().any(|s| s.takes(kind))
    }
}

/// Lets sleeping sources wake up at once when the agent stops.
#[derive(Default)]
pub struct StopSignal {
    stopped: Mutex<bool>,
    cond: Condvar,
}

impl StopSignal {
    /// Sleeps until `deadline`; true if the agent stopped meanwhile.
    pub fn wait_until(&self, deadline: Instant) -> bool {
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

    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::logs::push::PushEntry;
    use crate::remote_write::WireSample;
    use std::time::Duration;

    /// Records what it is sent; fails when told to.
    struct Recorder {
        kind: EventKind,
        got: Mutex<Vec<usize>>,
        fail: bool,
    }

    impl Sink for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }
        fn takes(&self, kind: EventKind) -> bool {
            kind == self.kind
        }
        fn stats(&self) -> SinkStats {
            SinkStats::default()
        }
        fn close(&self) {}
        fn drain(&self, _until: Instant) {}
        fn send(&self, events: &Events) -> Result<(), SinkError> {
            self.got.lock().unwrap().push(events.len());
            if self.fail {
                return Err(SinkError {
                    sink: "recorder".into(),
                    detail: "disk full".into(),
                });
            }
            Ok(())
        }
    }

    /// Drops every log entry whose line is empty.
    struct DropEmpty;

    impl Transform for DropEmpty {
        fn apply(&self, events: &mut Events) {
            if let Events::Logs(streams) = events {
                for s in streams.iter_mut() {
                    s.entries.retain(|e| !e.line.is_empty());
                }
            }
        }
    }

    fn recorder(kind: EventKind, fail: bool) -> Arc<Recorder> {
        Arc::new(Recorder {
            kind,
            got: Mutex::default(),
            fail,
        })
    }

    fn logs() -> Events {
        Events::Logs(vec![PushStream {
            labels: Labels::from_pairs([("job", "x")]),
            entries: ["a", "", "b"]
                .iter()
                .map(|l| PushEntry {
                    time_ns: 1,
                    line: l.to_string(),
                })
                .collect(),
        }])
    }

    #[test]
    fn batches_are_transformed_then_routed_by_kind() {
        let metrics = recorder(EventKind::Metrics, false);
        let logs_sink = recorder(EventKind::Logs, false);
        let out = Output::new(
            vec![Box::new(DropEmpty)],
            vec![metrics.clone(), logs_sink.clone()],
        );
        out.send(&mut logs()).unwrap();
        let mut m = Events::Metrics(vec![WriteSeries {
            labels: Arc::new(Labels::from_pairs([("__name__", "up")])),
            samples: vec![WireSample {
                timestamp_ms: 1,
                value: 1.0,
            }],
        }]);
        out.send(&mut m).unwrap();
        assert_eq!(*logs_sink.got.lock().unwrap(), [2]);
        assert_eq!(*metrics.got.lock().unwrap(), [1]);
        assert!(out.routes(EventKind::Logs));
        assert!(!Output::new(Vec::new(), vec![metrics]).routes(EventKind::Logs));
    }

    #[test]
    fn a_failing_sink_fails_the_send_but_the_others_still_get_it() {
        let bad = recorder(EventKind::Logs, true);
        let good = recorder(EventKind::Logs, false);
        let out = Output::new(Vec::new(), vec![bad.clone(), good.clone()]);
        let e = out.send(&mut logs()).unwrap_err();
        assert_eq!(e.to_string(), "recorder: disk full");
        assert_eq!(*good.got.lock().unwrap(), [3]);
    }

    #[test]
    fn stopping_wakes_a_sleeper() {
        let stop = Arc::new(StopSignal::default());
        let s = Arc::clone(&stop);
        let t = std::thread::spawn(move || s.wait_until(Instant::now() + Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(20));
        stop.stop();
        assert!(t.join().unwrap());
        assert!(stop.is_stopped());
    }
}
