//! The head: entries written to the WAL but not yet in a committed tantivy
//! segment, grouped by partition and stream. Queries read it directly, so
//! a push is searchable as soon as it is acknowledged. A commit freezes the
//! head (it stays readable) and indexes it.

use crate::block::Entry;
use crate::streams::StreamId;
use std::collections::{BTreeMap, HashMap};
use tsdb::LabelSet;

pub(crate) struct StreamHead {
    pub labels: LabelSet,
    pub entries: Vec<Entry>,
}

#[derive(Default)]
pub(crate) struct Head {
    /// Partition start → stream → entries in arrival order.
    pub partitions: BTreeMap<i64, HashMap<StreamId, StreamHead>>,
    pub bytes: usize,
    pub entries: usize,
}

impl Head {
    pub fn append(&mut self, partition: i64, id: StreamId, labels: &LabelSet, entry: Entry) {
        self.bytes += entry.line.len() + 16;
        self.entries += 1;
        self.partitions
            .entry(partition)
            .or_default()
            .entry(id)
            .or_insert_with(|| StreamHead {
                labels: labels.clone(),
                entries: Vec::new(),
            })
            .entries
            .push(entry);
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Streams with entries in partitions overlapping `[start, end]`.
    pub fn streams(
        &self,
        start_partition: i64,
        end: i64,
    ) -> impl Iterator<Item = (StreamId, &StreamHead)> {
        self.partitions
            .range(start_partition..=end)
            .flat_map(|(_, streams)| streams.iter().map(|(&id, s)| (id, s)))
    }
}
