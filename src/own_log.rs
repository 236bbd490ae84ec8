//! Vigil's own log in its own log store (all-in-one): every event the
//! process logs also becomes a line of the stream `{job="vigil",
//! level="..."}`, so the Logs page of a fresh install shows something at
//! once. Events go through a bounded channel and are dropped, never
//! waited for, when it is full; they are stored straight into the log
//! store, not over HTTP, so storing them logs nothing of its own.

use std::fmt::Write as _;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// One logged event.
pub struct OwnLine {
    pub time_ns: i64,
    pub level: &'static str,
    pub line: String,
}

/// Where events go once the log store is open; nothing is sent before.
pub type Sink = Arc<OnceLock<SyncSender<OwnLine>>>;

/// The layer that copies events into a [`Sink`].
pub struct OwnLogLayer {
    sink: Sink,
}

impl OwnLogLayer {
    pub fn new(sink: Sink) -> Self {
        OwnLogLayer { sink }
    }
}

/// The event as one logfmt-like line: the message, then its fields.
#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for OwnLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(tx) = self.sink.get() else {
            return;
        };
        let mut v = LineVisitor::default();
        event.record(&mut v);
        let meta = event.metadata();
        let level = match *meta.level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        let line = format!("{} {}{}", meta.target(), v.message, v.fields);
        let time_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        match tx.try_send(OwnLine {
            time_ns,
            level,
            line,
        }) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Starts storing the sink's events into `store` under `{job="vigil",
/// host, level}`, a batch a second.
pub fn start(sink: &Sink, store: Arc<logstore::LogStore>, host: String) {
    let (tx, rx) = std::sync::mpsc::sync_channel(10_000);
    if sink.set(tx).is_err() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("own-log".into())
        .spawn(move || store_lines(&rx, &store, &host));
    if let Err(e) = spawned {
        tracing::warn!("Vigil's own log is not stored: {e}");
    }
}

fn store_lines(rx: &Receiver<OwnLine>, store: &logstore::LogStore, host: &str) {
    use std::collections::BTreeMap;
    loop {
        let Ok(first) = rx.recv() else { return };
        // Whatever else arrives within a second goes in the same push.
        std::thread::sleep(Duration::from_secs(1));
        let mut by_level: BTreeMap<&'static str, Vec<logstore::Entry>> = BTreeMap::new();
        for l in std::iter::once(first).chain(rx.try_iter()) {
            by_level
                .entry(l.level)
                .or_default()
                .push(logstore::Entry::new(l.time_ns, l.line));
        }
        let streams = by_level
            .into_iter()
            .map(|(level, entries)| logstore::PushStream {
                labels: tsdb::LabelSet::from_pairs(&[
                    ("host", host),
                    ("job", "vigil"),
                    ("level", level),
                ]),
                entries,
            })
            .collect();
        // A refusal here is not logged: that would feed this loop.
        let _ = store.push(streams);
    }
}
