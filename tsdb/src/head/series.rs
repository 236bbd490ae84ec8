//! The head's series: each one's chunks and out-of-order samples
//! (`SeriesData`, behind the series' own lock), and the index that finds
//! them by labels, by reference and through postings.

use super::block_window;
use crate::chunk::{FrozenChunk, OpenChunk};
use crate::chunk_file::ChunkFiles;
use crate::labels::{LabelSet, LabelsRef};
use crate::postings::MemPostings;
use crate::querier::{Series, SeriesPart, TimeRange};
use crate::sample::{Sample, SeriesRef, Timestamp};
use crate::series_table::SeriesTable;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

pub(super) struct SeriesData {
    pub(super) frozen: Vec<FrozenChunk>,
    pub(super) open: OpenChunk,
    /// Samples that arrived behind the newest one (out-of-order window or
    /// backfill), keyed by time; values as bits so NaN payloads survive.
    pub(super) ooo: BTreeMap<Timestamp, u64>,
    pub(super) last: Option<Sample>,
    pub(super) min_t: Timestamp,
}

impl SeriesData {
    pub(super) fn new() -> Self {
        SeriesData {
            frozen: Vec::new(),
            open: OpenChunk::new(),
            ooo: BTreeMap::new(),
            last: None,
            min_t: Timestamp::MAX,
        }
    }

    pub(super) fn max_t(&self) -> Option<Timestamp> {
        self.last.map(|s| s.t)
    }

    /// The value stored at `t` in the in-order chunks, if any.
    pub(super) fn chunk_value_at(&self, t: Timestamp) -> Option<u64> {
        let open = (!self.open.is_empty()).then(|| self.open.snapshot());
        self.frozen
            .iter()
            .chain(open.iter())
            .filter(|c| c.min_t() <= t && t <= c.max_t())
            .flat_map(|c| c.iter())
            .find(|s| s.t == t)
            .map(|s| s.v.to_bits())
    }

    pub(super) fn push_in_order(&mut self, s: Sample, files: Option<&ChunkFiles>) {
        // Chunks never straddle a block boundary, so a cut takes whole chunks.
        let crosses = !self.open.is_empty() && block_window(s.t) != block_window(self.open.min_t());
        if self.open.is_full() || crosses {
            let full = std::mem::take(&mut self.open);
            // Exact growth: a series keeps a handful of chunks, and doubling
            // would waste up to half of every series' list.
            if self.frozen.len() == self.frozen.capacity() {
                self.frozen.reserve_exact(1);
            }
            self.frozen.push(match files {
                Some(f) => full.freeze_into(f),
                None => full.freeze(),
            });
        }
        self.open.push(s);
        self.last = Some(s);
        self.min_t = self.min_t.min(s.t);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.frozen.is_empty() && self.open.is_empty() && self.ooo.is_empty()
    }

    pub(super) fn recompute_min_t(&mut self) {
        let chunk_min = self
            .frozen
            .first()
            .map(|c| c.min_t())
            .or_else(|| (!self.open.is_empty()).then(|| self.open.min_t()));
        let ooo_min = self.ooo.keys().next().copied();
        self.min_t = match (chunk_min, ooo_min) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => Timestamp::MAX,
        };
    }

    pub(super) fn push_ooo(&mut self, s: Sample) {
        self.ooo.insert(s.t, s.v.to_bits());
        self.min_t = self.min_t.min(s.t);
    }

    pub(super) fn snapshot(&self, labels: &LabelSet, range: TimeRange) -> Series {
        let chunks = self.snapshot_chunks(range);
        let extra = self
            .ooo
            .range(range.start..=range.end)
            .map(|(t, v)| Sample::new(*t, f64::from_bits(*v)))
            .collect();
        Series {
            labels: labels.clone(),
            parts: vec![SeriesPart::Head {
                chunks,
                extra,
                last: self.last,
                restarts: (!self.open.is_empty()).then(|| self.open.restart_points()),
            }],
            range,
        }
    }

    pub(super) fn has_data_in(&self, range: TimeRange) -> bool {
        match self.max_t() {
            Some(max_t) => range.overlaps(self.min_t, max_t),
            None => false,
        }
    }

    /// True when a sample lies in `range`. A chunk's first or last sample
    /// inside the range proves it without decoding; only a range that
    /// falls strictly inside one chunk's span needs a look at its samples.
    pub(super) fn has_sample_in(&self, range: TimeRange) -> bool {
        if !self.has_data_in(range) {
            return false;
        }
        if self.ooo.range(range.start..=range.end).next().is_some() {
            return true;
        }
        let open = (!self.open.is_empty()).then(|| (self.open.min_t(), self.open.max_t()));
        let bounds = self.frozen.iter().map(|c| (c.min_t(), c.max_t()));
        let mut straddled = false;
        for (lo, hi) in bounds.chain(open) {
            if range.contains(lo) || range.contains(hi) {
                return true;
            }
            straddled |= lo < range.start && hi > range.end;
        }
        straddled
            && self.snapshot_chunks(range).iter().any(|c| {
                c.iter()
                    .find(|s| s.t >= range.start)
                    .is_some_and(|s| s.t <= range.end)
            })
    }

    pub(super) fn snapshot_chunks(&self, range: TimeRange) -> Vec<FrozenChunk> {
        let mut chunks: Vec<FrozenChunk> = self
            .frozen
            .iter()
            .filter(|c| range.overlaps(c.min_t(), c.max_t()))
            .cloned()
            .collect();
        if !self.open.is_empty() && range.overlaps(self.open.min_t(), self.open.max_t()) {
            chunks.push(self.open.snapshot());
        }
        chunks
    }
}

pub(crate) struct MemSeries {
    pub(super) r: SeriesRef,
    pub(crate) labels: LabelSet,
    pub(super) data: Mutex<SeriesData>,
    /// Set (under the WAL lock) when a cut drops the series from the index;
    /// a writer that found it earlier must look it up again.
    pub(super) removed: AtomicBool,
}

impl MemSeries {
    /// Starts loading the whole series struct (lock, order state, open
    /// chunk header) into the cache.
    pub(super) fn prefetch(&self) {
        let p = (self as *const MemSeries).cast::<u8>();
        for off in (0..std::mem::size_of::<MemSeries>()).step_by(64) {
            crate::prefetch::prefetch(p.wrapping_add(off));
        }
    }
}

#[derive(Default)]
pub(super) struct Index {
    pub(super) by_hash: SeriesTable<Arc<MemSeries>>,
    pub(super) series: HashMap<SeriesRef, Arc<MemSeries>>,
    pub(super) postings: MemPostings,
    pub(super) next_ref: u64,
    /// Bumped whenever a series is added or removed; see `match_cache`.
    pub(super) generation: u64,
}

impl Index {
    pub(super) fn find(&self, hash: u64, labels: &LabelSet) -> Option<(SeriesRef, Arc<MemSeries>)> {
        self.find_by(hash, |l| l == labels)
    }

    pub(super) fn find_ref(
        &self,
        hash: u64,
        labels: LabelsRef<'_>,
    ) -> Option<(SeriesRef, Arc<MemSeries>)> {
        self.find_by(hash, |l| l.eq_ref(labels))
    }

    pub(super) fn find_by(
        &self,
        hash: u64,
        eq: impl Fn(&LabelSet) -> bool,
    ) -> Option<(SeriesRef, Arc<MemSeries>)> {
        self.by_hash
            .find(hash, |s| eq(&s.labels))
            .map(|s| (s.r, s.clone()))
    }

    pub(super) fn insert(&mut self, r: SeriesRef, hash: u64, labels: LabelSet) -> Arc<MemSeries> {
        self.postings.add(r, &labels);
        let s = Arc::new(MemSeries {
            r,
            labels,
            data: Mutex::new(SeriesData::new()),
            removed: AtomicBool::new(false),
        });
        self.by_hash.insert(hash, s.clone());
        self.series.insert(r, s.clone());
        self.next_ref = self.next_ref.max(r.0 + 1);
        self.generation += 1;
        s
    }

    pub(super) fn remove(&mut self, r: SeriesRef) {
        if let Some(s) = self.series.remove(&r) {
            self.by_hash.remove(s.labels.stable_hash(), |x| x.r == r);
            self.postings.remove(r, &s.labels);
            self.generation += 1;
        }
    }
}
