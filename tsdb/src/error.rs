//! Errors of the store.

use std::path::PathBuf;

/// Why one sample or series was refused. Each reason has its own counter.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    OutOfOrder,
    DuplicateTimestamp,
    TooOld,
    /// Further ahead of the clock than `creation_grace_period` allows.
    TooFarInFuture,
    MissingMetricName,
    InvalidMetricName,
    InvalidLabelName,
    DuplicateLabelName,
    TooManyLabels,
    LabelNameTooLong,
    LabelValueTooLong,
    TooManySeries,
    /// The head holds `limits.max_global_series` series already.
    SeriesLimit,
    /// The metric has `limits.max_global_series_per_metric` series already.
    SeriesPerMetricLimit,
}

impl RejectReason {
    pub const ALL: [RejectReason; 14] = [
        RejectReason::OutOfOrder,
        RejectReason::DuplicateTimestamp,
        RejectReason::TooOld,
        RejectReason::TooFarInFuture,
        RejectReason::MissingMetricName,
        RejectReason::InvalidMetricName,
        RejectReason::InvalidLabelName,
        RejectReason::DuplicateLabelName,
        RejectReason::TooManyLabels,
        RejectReason::LabelNameTooLong,
        RejectReason::LabelValueTooLong,
        RejectReason::TooManySeries,
        RejectReason::SeriesLimit,
        RejectReason::SeriesPerMetricLimit,
    ];

    /// The `reason` label value used in self-metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::DuplicateTimestamp => "duplicate_timestamp",
            RejectReason::TooOld => "too_old",
            RejectReason::TooFarInFuture => "too_far_in_future",
            RejectReason::MissingMetricName => "missing_metric_name",
            RejectReason::InvalidMetricName => "invalid_metric_name",
            RejectReason::InvalidLabelName => "invalid_label_name",
            RejectReason::DuplicateLabelName => "duplicate_label_name",
            RejectReason::TooManyLabels => "too_many_labels",
            RejectReason::LabelNameTooLong => "label_name_too_long",
            RejectReason::LabelValueTooLong => "label_value_too_long",
            RejectReason::TooManySeries => "too_many_series",
            RejectReason::SeriesLimit => "per_user_series_limit",
            RejectReason::SeriesPerMetricLimit => "per_metric_series_limit",
        }
    }
}

/// A refused series or sample, with a message a user can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AppendError {
    pub reason: RejectReason,
    /// Names the offending series (and sample) in Prometheus notation.
    pub message: String,
    /// How many samples this error covers.
    pub samples: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("WAL segment {path} is corrupt at byte {offset}: {detail}")]
    WalCorrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    #[error("invalid matcher {matcher}: {detail}")]
    InvalidMatcher { matcher: String, detail: String },
    #[error("the store is closed")]
    Closed,
}

impl TsdbError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TsdbError::Io {
            path: path.into(),
            source,
        }
    }
}
