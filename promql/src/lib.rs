//! PromQL evaluation with Prometheus 3.x semantics over a [`tsdb::Querier`].
//!
//! Owns: turning a parsed expression (promql-parser's AST) into values —
//! selectors with lookback and staleness, `offset` and `@`, subqueries,
//! aggregations, binary operators with vector matching, and the function
//! library. Range queries are evaluated for all steps at once: every node
//! yields one value per step, so each series is read from storage once.
//!
//! Must never: write to the store, or panic on any query or data; every
//! failure is a [`QueryError`] that names what is wrong.

// Outside tests, nothing from outside may be unwrapped: errors are values.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod aggregate;
mod binary;
mod engine;
mod error;
mod functions;
mod histogram;
mod label_hash;
mod label_map;
pub mod nesting;
mod parallel;
mod parse_cache;
mod positions;
mod range_functions;
pub mod selector;
pub mod syntax_error;
mod type_error;
mod value;

pub use engine::{Engine, EngineOptions, QueryStats};
pub use error::QueryError;
pub use parallel::SharedBudget;
pub use value::{format_value, InstantSample, QueryValue, RangeSeries};
