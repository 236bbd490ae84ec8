//! The Loki push sink: log batches as push bodies of at most about 1 MiB
//! of lines each, on the endpoint's single-sender queue (one sender keeps
//! every stream's entries in order).

use super::SendQueue;
use crate::labels::Labels;
use crate::logs::push::{encode_push_body, PushEntry, PushStream};
use crate::pipeline::{EventKind, Events, Sink, SinkError, SinkStats};
use std::time::Instant;
use vigil_wire::loki_push::StreamToSend;

/// Most line bytes in one push body.
const PUSH_BODY_BYTES: usize = 1 << 20;

pub struct LokiPushSink(pub SendQueue);

impl Sink for LokiPushSink {
    fn name(&self) -> &str {
        &self.0.shipper.url
    }

    fn takes(&self, kind: EventKind) -> bool {
        kind == EventKind::Logs
    }

    /// Ok once every body is on the disk queue.
    fn send(&self, events: &Events) -> Result<(), SinkError> {
        let Events::Logs(streams) = events else {
            return Ok(());
        };
        // Every body is tried; the error counts every entry not queued.
        let (mut failed, mut last_error) = (0u64, None);
        for part in split_streams(streams, PUSH_BODY_BYTES) {
            let entries: u64 = part.iter().map(|s| s.entries.len() as u64).sum();
            if let Err(e) = self.0.shipper.push_body(&encode_push_body(&part), entries) {
                failed += entries;
                last_error = Some(e);
            }
        }
        match last_error {
            None => Ok(()),
            Some(e) => Err(SinkError {
                sink: self.name().to_string(),
                detail: format!("cannot queue {failed} log entries: {e}"),
            }),
        }
    }

    fn stats(&self) -> SinkStats {
        self.0.stats()
    }

    fn close(&self) {
        self.0.close()
    }

    fn drain(&self, until: Instant) {
        self.0.drain(until)
    }
}

/// A run of one stream's entries, borrowed: splitting a batch into bodies
/// copies no line.
struct StreamPart<'a> {
    labels: &'a Labels,
    entries: &'a [PushEntry],
}

impl StreamToSend for StreamPart<'_> {
    fn label_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels.iter()
    }
    fn entries(&self) -> &[PushEntry] {
        self.entries
    }
}

/// Streams regrouped into bodies of at most about `max_bytes` of lines
/// (a single longer line goes alone), each stream's entries in order.
fn split_streams(streams: &[PushStream], max_bytes: usize) -> Vec<Vec<StreamPart<'_>>> {
    let mut out: Vec<Vec<StreamPart<'_>>> = Vec::new();
    let mut current: Vec<StreamPart<'_>> = Vec::new();
    let mut bytes = 0;
    for s in streams {
        let mut start = 0;
        for (i, e) in s.entries.iter().enumerate() {
            if bytes + e.line.len() > max_bytes && bytes > 0 {
                if i > start {
                    current.push(StreamPart {
                        labels: &s.labels,
                        entries: &s.entries[start..i],
                    });
                }
                start = i;
                out.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += e.line.len();
        }
        if start < s.entries.len() {
            current.push(StreamPart {
                labels: &s.labels,
                entries: &s.entries[start..],
            });
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_bodies_stay_under_their_size_and_keep_every_entry_in_order() {
        let stream = |name: &str, n: usize| PushStream {
            labels: Labels::from_pairs([("pod", name)]),
            entries: (0..n)
                .map(|i| PushEntry {
                    time_ns: i as i64,
                    line: "x".repeat(10),
                })
                .collect(),
        };
        let streams = [stream("a", 7), stream("b", 5)];
        let parts = split_streams(&streams, 30);
        let sizes: Vec<usize> = parts
            .iter()
            .map(|p| p.iter().map(|s| s.entries.len()).sum())
            .collect();
        assert_eq!(sizes, [3, 3, 3, 3]);
        let a: Vec<i64> = parts
            .iter()
            .flatten()
            .filter(|s| s.labels.get("pod") == Some("a"))
            .flat_map(|s| s.entries.iter().map(|e| e.time_ns))
            .collect();
        assert_eq!(a, (0..7).collect::<Vec<_>>());
        // One line longer than the limit still goes, alone.
        let big = PushStream {
            labels: Labels::new(),
            entries: vec![PushEntry {
                time_ns: 0,
                line: "y".repeat(100),
            }],
        };
        assert_eq!(split_streams(&[big], 30).len(), 1);
    }
}
