//! What can go wrong in a query, classified as Prometheus classifies it.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum QueryError {
    /// The query text or its parameters are invalid (HTTP 400, `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// The query is valid but cannot be evaluated (HTTP 422, `execution`).
    #[error("{0}")]
    Execution(String),
    /// The query ran past its deadline (HTTP 503, `timeout`).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The query would load more samples than allowed (HTTP 422, `execution`).
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    /// Running queries together hold as many samples as the server allows
    /// (HTTP 503, `unavailable`): retrying later may succeed.
    #[error("query processing would exceed the memory shared by concurrent queries (query.max_samples_total); try again later or reduce the query's range, step or selected series")]
    MemoryBudget,
    /// The store failed (HTTP 500, `internal`).
    #[error("{0}")]
    Storage(#[from] tsdb::TsdbError),
}

impl QueryError {
    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        QueryError::Execution(msg.into())
    }
    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        QueryError::BadData(msg.into())
    }
}
