//! Vigil's time-series store.
//!
//! This crate owns the metric data model ([`LabelSet`], [`Sample`],
//! [`Timestamp`]), the write-ahead log, the in-memory head with its
//! compressed chunks, the postings index and the [`Querier`] the PromQL
//! engine reads through.
//!
//! It must never know about HTTP, protobuf or any wire format: callers hand
//! it decoded series and samples. It must never panic on data that came from
//! outside, and it must never acknowledge a write it has not put in the WAL.

// Outside tests, nothing from outside may be unwrapped: errors are values.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod block;
pub mod block_writer;
pub mod chunk;
pub mod chunk_file;
pub mod compact;
pub mod db;
pub mod error;
pub mod head;
pub mod labels;
pub mod limits;
mod match_cache;
pub mod matcher;
pub mod memo;
mod positional_file;
pub mod postings;
mod prefetch;
pub mod querier;
pub mod quote;
mod regex_cache;
pub mod row_group_cache;
pub mod sample;
mod series_table;
pub mod uncached_reader;
pub mod wal;

pub use db::{Db, DbOptions, DbStats, MaintenanceReport};
pub use error::{AppendError, RejectReason, TsdbError};
pub use head::{AppendMode, AppendOutcome, SeriesSamples};
pub use labels::{Label, LabelRef, LabelSet, LabelsRef, METRIC_NAME};
pub use limits::Limits;
pub use matcher::{MatchOp, Matcher};
pub use querier::{Querier, SampleIter, Series, TimeRange};
pub use sample::{Sample, SeriesRef, Timestamp, STALE_NAN_BITS};
pub use uncached_reader::UncachedReader;
