//! Vigil's log store.
//!
//! Owns everything between a decoded push and the lines a query reads back:
//! the write-ahead log that makes an acknowledged push survive `kill -9`
//! (`wal.rs`), the in-memory head of lines not yet indexed (`head.rs`),
//! one tantivy index per time partition (`partition.rs`) whose documents
//! are blocks of one stream's lines (`block.rs`) indexed by the tokens of
//! those lines (`tokenizer.rs`) and listed once in the partition's
//! vocabulary for substring lookups (`vocab.rs`), the registry of stream label sets per
//! partition (`streams.rs`), push limits (`limits.rs`) and retention by age
//! and size (`store.rs`).
//!
//! It must never parse wire formats or LogQL: callers hand it decoded
//! streams and index hints, and apply line filters themselves — a block the
//! index returns is a candidate, not an answer.

// Outside tests, nothing from outside may be unwrapped: errors are values.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod block;
mod error;
mod head;
mod limits;
pub mod logql;
mod partition;
mod select;
mod store;
mod streams;
mod tokenizer;
mod vocab;
mod wal;

pub use block::Entry;
pub use error::LogStoreError;
pub use limits::{Limits, PushOutcome, Rejection};
pub use select::{BlockHandle, Selection};
pub use store::{LogStore, LogStoreOptions, LogStoreStats, PushStream};
pub use tokenizer::{needle_terms, NeedleTerm};
