//! What a query asks of the store, and the blocks it gets back.

use crate::block::Entry;
use crate::error::LogStoreError;
use crate::partition::Partition;
use std::sync::Arc;
use tantivy::{DocAddress, Searcher};
use tsdb::{LabelSet, Matcher};

/// Streams by label matchers, a time range (inclusive, nanoseconds) and
/// substrings every wanted line contains. The substrings are hints: they
/// let the index skip blocks, but a returned block may still hold lines
/// without them, so the caller filters lines itself.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    pub matchers: &'a [Matcher],
    pub start: i64,
    pub end: i64,
    pub contains: &'a [String],
}

impl Selection<'_> {
    pub(crate) fn matches(&self, labels: &LabelSet) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    }
}

pub(crate) enum Source {
    Memory(Vec<Entry>),
    Indexed {
        partition: Arc<Partition>,
        searcher: Searcher,
        address: DocAddress,
    },
}

/// Entries of one stream between `start` and `end`, read on demand.
pub struct BlockHandle {
    pub labels: LabelSet,
    pub start: i64,
    pub end: i64,
    /// Entries and line bytes in the block (for index statistics).
    pub entries: u64,
    pub bytes: u64,
    pub(crate) source: Source,
}

impl BlockHandle {
    /// The block's entries sorted by time (ties in arrival order); some may
    /// lie outside the selected time range.
    pub fn entries(&self) -> Result<Vec<Entry>, LogStoreError> {
        let mut entries = match &self.source {
            Source::Memory(e) => e.clone(),
            Source::Indexed {
                partition,
                searcher,
                address,
            } => partition.read_block(searcher, *address)?,
        };
        entries.sort_by_key(|e| e.ts);
        Ok(entries)
    }
}

impl BlockHandle {
    /// Visits the block's entries in stored order (not sorted by time),
    /// without copying lines: the scan path of metric queries.
    pub fn for_each_entry(&self, mut f: impl FnMut(i64, &str)) -> Result<(), LogStoreError> {
        match &self.source {
            Source::Memory(e) => {
                for e in e {
                    f(e.ts, &e.line);
                }
                Ok(())
            }
            Source::Indexed {
                partition,
                searcher,
                address,
            } => partition.read_block_with(searcher, *address, f),
        }
    }
}

impl std::fmt::Debug for BlockHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BlockHandle({} {}..={})",
            self.labels, self.start, self.end
        )
    }
}
