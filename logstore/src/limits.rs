//! Push limits, with Loki's defaults, and what a push's validation found.
//! A rejected entry or stream is dropped and reported; the rest of the push
//! is stored, as Loki's distributor does.

use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Longer lines are cut to this many bytes, ending with [`TRUNCATION_MARKER`].
    pub max_line_size: usize,
    pub max_label_names_per_stream: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    /// Streams that took an entry within [`Limits::stream_idle`]; a new
    /// stream past this many is refused.
    pub max_streams: usize,
    pub stream_idle: Duration,
    /// Entries older than this (against the clock) are refused.
    pub reject_older_than: Duration,
    /// Entries further than this in the future are refused.
    pub creation_grace: Duration,
    /// Loki 3's default: a stream takes entries older than its newest one,
    /// back to `max_chunk_age / 2` behind it. Off: only in-order entries.
    pub unordered_writes: bool,
    pub max_chunk_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_size: 256 << 10,
            max_label_names_per_stream: 15,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            max_streams: 5000,
            stream_idle: Duration::from_secs(3600),
            reject_older_than: Duration::from_secs(7 * 24 * 3600),
            creation_grace: Duration::from_secs(600),
            unordered_writes: true,
            max_chunk_age: Duration::from_secs(2 * 3600),
        }
    }
}

pub const TRUNCATION_MARKER: &str = "…[truncated]";

/// Why part of a push was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    NoLabels {
        stream: usize,
    },
    TooManyLabels {
        labels: String,
        count: usize,
        max: usize,
    },
    LabelNameTooLong {
        labels: String,
        name: String,
        max: usize,
    },
    LabelValueTooLong {
        labels: String,
        name: String,
        max: usize,
    },
    /// The push would take the active streams past the limit: none of its
    /// new streams is registered (streams already active still take their
    /// entries), so one push cannot fill the limit for everyone else.
    StreamLimit {
        /// The first new stream refused.
        labels: String,
        /// New streams in the push, and streams active before it.
        new_streams: usize,
        active: usize,
        max: usize,
    },
    TooOld {
        labels: String,
        ts: i64,
        oldest: i64,
    },
    TooNew {
        labels: String,
        ts: i64,
        newest: i64,
    },
    /// Older than the stream's newest entry minus the out-of-order window.
    TooFarBehind {
        labels: String,
        ts: i64,
        oldest: i64,
    },
    /// Older than the stream's newest entry, with unordered writes off.
    OutOfOrder {
        labels: String,
        ts: i64,
        newest: i64,
    },
}

impl Rejection {
    /// Loki answers 429 for the stream limit and 400 for the rest.
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, Rejection::StreamLimit { .. })
    }

    /// The reason label of `vigil_logs_discarded_entries_total`, as Loki names them.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::NoLabels { .. } => "missing_labels",
            Rejection::TooManyLabels { .. } => "max_label_names_per_series",
            Rejection::LabelNameTooLong { .. } => "label_name_too_long",
            Rejection::LabelValueTooLong { .. } => "label_value_too_long",
            Rejection::StreamLimit { .. } => "stream_limit",
            Rejection::TooOld { .. } => "greater_than_max_sample_age",
            Rejection::TooNew { .. } => "too_far_in_future",
            Rejection::TooFarBehind { .. } => "too_far_behind",
            Rejection::OutOfOrder { .. } => "out_of_order",
        }
    }
}

fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = vigil_config::civil::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NoLabels { stream } => {
                write!(f, "stream #{stream}: error at least one label pair is required per stream")
            }
            Rejection::TooManyLabels { labels, count, max } => write!(
                f,
                "stream '{labels}' has {count} label names; limit {max}"
            ),
            Rejection::LabelNameTooLong { labels, name, max } => write!(
                f,
                "stream '{labels}' has label name too long: '{name}' (limit {max} bytes)"
            ),
            Rejection::LabelValueTooLong { labels, name, max } => write!(
                f,
                "stream '{labels}' has the value of label '{name}' too long (limit {max} bytes)"
            ),
            Rejection::StreamLimit {
                labels,
                new_streams,
                active,
                max,
            } => write!(
                f,
                "maximum active stream limit exceeded: this push has {new_streams} new streams (first '{labels}'), {active} are active, the limit is {max} (logs.max_global_streams_per_user); no new stream of the push was created"
            ),
            Rejection::TooOld { labels, ts, oldest } => write!(
                f,
                "entry for stream '{labels}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                rfc3339(*ts),
                rfc3339(*oldest)
            ),
            Rejection::TooNew { labels, ts, newest } => write!(
                f,
                "entry for stream '{labels}' has timestamp too new: {}, newest acceptable timestamp is: {}",
                rfc3339(*ts),
                rfc3339(*newest)
            ),
            Rejection::TooFarBehind { labels, ts, oldest } => write!(
                f,
                "entry with timestamp {} ignored, reason: 'entry too far behind, entry timestamp is: {}, oldest acceptable timestamp is: {}' for stream: {labels}",
                rfc3339(*ts),
                rfc3339(*ts),
                rfc3339(*oldest)
            ),
            Rejection::OutOfOrder { labels, ts, newest } => write!(
                f,
                "entry with timestamp {} ignored, reason: 'entry out of order' (the stream's newest entry is at {}) for stream: {labels}",
                rfc3339(*ts),
                rfc3339(*newest)
            ),
        }
    }
}

/// What became of a push.
#[derive(Debug, Default, Clone)]
pub struct PushOutcome {
    pub accepted_entries: u64,
    pub accepted_bytes: u64,
    /// Lines cut to the size limit (stored, with the marker).
    pub truncated_lines: u64,
    /// Entries identical to their stream's previous entry (dropped, as Loki does).
    pub duplicates: u64,
    /// Entries dropped, with why (whole streams count each entry).
    pub rejected_entries: u64,
    pub rejections: Vec<Rejection>,
}

impl PushOutcome {
    pub(crate) fn reject_entry(&mut self, why: Rejection) {
        self.rejected_entries += 1;
        self.rejections.push(why);
    }

    /// The message Loki would answer with, or `None` when all was stored.
    pub fn error_message(&self, total_entries: u64) -> Option<String> {
        let first = self.rejections.first()?;
        let mut msg = first.to_string();
        if self.rejections.len() > 1 {
            msg.push_str(&format!(
                " (and {} more problems)",
                self.rejections.len() - 1
            ));
        }
        msg.push_str(&format!(
            "\ntotal ignored: {} out of {total_entries}",
            self.rejected_entries
        ));
        Some(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_764_756_000_123_000_000),
            "2025-12-03T10:00:00.123000000Z"
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
    }
}
