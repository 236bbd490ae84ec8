//! The in-memory head: every series' recent data in compressed chunks, the
//! postings index over them, and the append path that puts each write in
//! the WAL before it touches memory.

use crate::chunk::{FrozenChunk, OpenChunk};
use crate::chunk_file::ChunkFiles;
use crate::error::{AppendError, RejectReason, TsdbError};
use crate::labels::{
    is_valid_label_name, is_valid_metric_name, Interner, LabelSet, LabelsRef, METRIC_NAME,
};
use crate::limits::Limits;
use crate::match_cache::{self, MatchCache, Matched};
use crate::matcher::Matcher;
use crate::postings::MemPostings;
use crate::querier::{Series, SeriesPart, TimeRange};
use crate::sample::{Sample, SeriesRef, Timestamp};
use crate::series_table::SeriesTable;
use crate::wal::{self, RefSample, ReplaySource, WalRecord, WalWriter};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

/// Blocks cover aligned windows of this length; head chunks are cut at
/// the same boundaries.
pub const BLOCK_RANGE_MS: i64 = 2 * 3600 * 1000;

/// The aligned block window holding `t`.
pub fn block_window(t: Timestamp) -> i64 {
    t.div_euclid(BLOCK_RANGE_MS)
}

/// One series and the samples it carries in a write.
#[derive(Clone, Debug)]
pub struct SeriesSamples {
    pub labels: LabelSet,
    pub samples: Vec<Sample>,
}

/// One series of a write, borrowed from the decoded request.
#[derive(Copy, Clone, Debug)]
pub struct SeriesInput<'a> {
    pub labels: LabelsRef<'a>,
    pub samples: &'a [Sample],
}

/// How many series ahead the append loops start loading what they will
/// touch (series structs, labels, chunk tails): far enough to overlap a
/// cache miss, near enough that the line is still cached when reached.
const AHEAD: usize = 4;

/// Hashes a pointer key: spreads its aligned low bits over the word.
#[derive(Default)]
struct PointerHasher(u64);

impl std::hash::Hasher for PointerHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(26);
    }
}

/// How strictly sample order is enforced.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AppendMode {
    /// Live ingestion: samples older than a series' newest are refused
    /// unless they fall inside the out-of-order window.
    Live,
    /// Backfill (import, WAL replay): any timestamp inside retention is
    /// accepted and merged into the series by time.
    Backfill,
}

/// What happened to a write.
#[derive(Debug, Default)]
pub struct AppendOutcome {
    pub appended: usize,
    /// Exact repeats of stored samples (a retried write): accepted, not stored twice.
    pub duplicates: usize,
    /// Refused series and samples; the rest of the write was stored.
    pub errors: Vec<AppendError>,
}

impl AppendOutcome {
    pub fn rejected_samples(&self) -> usize {
        self.errors.iter().map(|e| e.samples).sum()
    }
}

#[derive(Clone, Debug)]
pub struct HeadOptions {
    pub limits: Limits,
    /// Live samples this much older than a series' newest are still accepted (ms; 0 = off).
    pub out_of_order_window_ms: i64,
    /// Samples older than now minus this are refused (ms; 0 = keep forever).
    pub retention_ms: i64,
    /// Samples newer than now plus this are refused (ms; 0 = no limit): one
    /// sample at the end of time would make every later live write to its
    /// series out of order.
    pub max_future_ms: i64,
    pub wal_segment_size: u64,
    /// Where frozen chunks are written to keep them out of memory
    /// (`None`: keep them in memory).
    pub chunks_dir: Option<std::path::PathBuf>,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            limits: Limits::default(),
            out_of_order_window_ms: 0,
            retention_ms: 0,
            max_future_ms: 0,
            wal_segment_size: wal::DEFAULT_SEGMENT_SIZE,
            chunks_dir: None,
        }
    }
}

struct SeriesData {
    frozen: Vec<FrozenChunk>,
    open: OpenChunk,
    /// Samples that arrived behind the newest one (out-of-order window or
    /// backfill), keyed by time; values as bits so NaN payloads survive.
    ooo: BTreeMap<Timestamp, u64>,
    last: Option<Sample>,
    min_t: Timestamp,
}

impl SeriesData {
    fn new() -> Self {
        SeriesData {
            frozen: Vec::new(),
            open: OpenChunk::new(),
            ooo: BTreeMap::new(),
            last: None,
            min_t: Timestamp::MAX,
        }
    }

    fn max_t(&self) -> Option<Timestamp> {
        self.last.map(|s| s.t)
    }

    /// The value stored at `t` in the in-order chunks, if any.
    fn chunk_value_at(&self, t: Timestamp) -> Option<u64> {
        let open = (!self.open.is_empty()).then(|| self.open.snapshot());
        self.frozen
            .iter()
            .chain(open.iter())
            .filter(|c| c.min_t() <= t && t <= c.max_t())
            .flat_map(|c| c.iter())
            .find(|s| s.t == t)
            .map(|s| s.v.to_bits())
    }

    fn push_in_order(&mut self, s: Sample, files: Option<&ChunkFiles>) {
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

    fn is_empty(&self) -> bool {
        self.frozen.is_empty() && self.open.is_empty() && self.ooo.is_empty()
    }

    fn recompute_min_t(&mut self) {
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

    fn push_ooo(&mut self, s: Sample) {
        self.ooo.insert(s.t, s.v.to_bits());
        self.min_t = self.min_t.min(s.t);
    }

    fn snapshot(&self, labels: &LabelSet, range: TimeRange) -> Series {
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

    fn has_data_in(&self, range: TimeRange) -> bool {
        match self.max_t() {
            Some(max_t) => range.overlaps(self.min_t, max_t),
            None => false,
        }
    }

    /// True when a sample lies in `range`. A chunk's first or last sample
    /// inside the range proves it without decoding; only a range that
    /// falls strictly inside one chunk's span needs a look at its samples.
    fn has_sample_in(&self, range: TimeRange) -> bool {
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

    fn snapshot_chunks(&self, range: TimeRange) -> Vec<FrozenChunk> {
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
    r: SeriesRef,
    labels: LabelSet,
    data: Mutex<SeriesData>,
    /// Set (under the WAL lock) when a cut drops the series from the index;
    /// a writer that found it earlier must look it up again.
    removed: AtomicBool,
}

impl MemSeries {
    /// Starts loading the whole series struct (lock, order state, open
    /// chunk header) into the cache.
    fn prefetch(&self) {
        let p = (self as *const MemSeries).cast::<u8>();
        for off in (0..std::mem::size_of::<MemSeries>()).step_by(64) {
            crate::prefetch::prefetch(p.wrapping_add(off));
        }
    }
}

#[derive(Default)]
struct Index {
    by_hash: SeriesTable<Arc<MemSeries>>,
    series: HashMap<SeriesRef, Arc<MemSeries>>,
    postings: MemPostings,
    next_ref: u64,
    /// Bumped whenever a series is added or removed; see `match_cache`.
    generation: u64,
}

impl Index {
    fn find(&self, hash: u64, labels: &LabelSet) -> Option<(SeriesRef, Arc<MemSeries>)> {
        self.find_by(hash, |l| l == labels)
    }

    fn find_ref(&self, hash: u64, labels: LabelsRef<'_>) -> Option<(SeriesRef, Arc<MemSeries>)> {
        self.find_by(hash, |l| l.eq_ref(labels))
    }

    fn find_by(
        &self,
        hash: u64,
        eq: impl Fn(&LabelSet) -> bool,
    ) -> Option<(SeriesRef, Arc<MemSeries>)> {
        self.by_hash
            .find(hash, |s| eq(&s.labels))
            .map(|s| (s.r, s.clone()))
    }

    fn insert(&mut self, r: SeriesRef, hash: u64, labels: LabelSet) -> Arc<MemSeries> {
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

    fn remove(&mut self, r: SeriesRef) {
        if let Some(s) = self.series.remove(&r) {
            self.by_hash.remove(s.labels.stable_hash(), |x| x.r == r);
            self.postings.remove(r, &s.labels);
            self.generation += 1;
        }
    }
}

/// Chunks, samples and encoded bytes in the head.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeadChunkStats {
    pub chunks: u64,
    pub samples: u64,
    pub bytes: u64,
}

/// Counters the head keeps about itself.
#[derive(Default)]
pub struct HeadCounters {
    pub samples_appended: AtomicU64,
    pub samples_out_of_order_appended: AtomicU64,
    pub duplicates_ignored: AtomicU64,
    pub series_created: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
}

impl HeadCounters {
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason as usize].load(Ordering::Relaxed)
    }
    fn reject(&self, reason: RejectReason, n: usize) {
        self.rejected[reason as usize].fetch_add(n as u64, Ordering::Relaxed);
    }
}

pub struct Head {
    index: RwLock<Index>,
    /// Held for the whole sample path: classify, log, apply. This keeps the
    /// WAL's order identical to the order samples reach memory.
    wal: Mutex<WalWriter>,
    opts: HeadOptions,
    min_t: AtomicI64,
    max_t: AtomicI64,
    pub counters: HeadCounters,
    interner: Arc<Interner>,
    chunk_files: Option<ChunkFiles>,
    match_cache: MatchCache,
}

/// The leading samples of a series' open chunk that a cut takes, named by
/// the chunk's first timestamp (the chunk may be frozen before the cut is
/// applied, but it keeps its first timestamp and its first `n` samples).
#[derive(Clone, Copy, Debug)]
struct OpenTaken {
    min_t: Timestamp,
    n: u16,
}

/// What a cut takes from one series: its first `frozen` chunks, the open
/// chunk's first samples, and out-of-order samples, all older than the
/// cut's boundary. Chunks are referred to, not copied: only cuts (which are
/// serialised) remove chunks, and appends only add after them, so the
/// series still holds exactly these when the cut is written and applied.
pub struct CutItem {
    pub labels: LabelSet,
    series: Arc<MemSeries>,
    frozen: usize,
    open: Option<OpenTaken>,
    ooo: Vec<(Timestamp, u64)>,
    min_t: Timestamp,
    max_t: Timestamp,
}

impl CutItem {
    pub fn min_t(&self) -> Timestamp {
        self.min_t
    }

    pub fn max_t(&self) -> Timestamp {
        self.max_t
    }

    /// Does this item hold samples in `[start, end)`?
    pub fn overlaps_window(&self, start: Timestamp, end: Timestamp) -> bool {
        self.min_t < end && self.max_t >= start
    }

    /// The samples taken, in time order, each timestamp once. Chunks in
    /// head chunk files are read with `pread`, not through the map, so a
    /// cut does not make the window it persists resident.
    pub fn samples(&self) -> Vec<Sample> {
        let d = lock(&self.series.data);
        let n = self.frozen.min(d.frozen.len());
        let chunks: Vec<FrozenChunk> = d.frozen[..n].iter().map(FrozenChunk::detached).collect();
        let mut extra: Vec<Sample> = self
            .ooo
            .iter()
            .map(|(t, v)| Sample::new(*t, f64::from_bits(*v)))
            .collect();
        if let Some(o) = self.open {
            let chunk = if !d.open.is_empty() && d.open.min_t() == o.min_t {
                Some(d.open.snapshot())
            } else {
                d.frozen[n..]
                    .iter()
                    .find(|c| c.min_t() == o.min_t)
                    .map(FrozenChunk::detached)
            };
            if let Some(c) = chunk {
                extra.extend(c.iter().take(usize::from(o.n)));
                extra.sort_by_key(|s| s.t);
            }
        }
        drop(d);
        Series {
            labels: LabelSet::default(),
            parts: vec![SeriesPart::Head {
                chunks,
                extra,
                last: None,
                restarts: None,
            }],
            range: TimeRange::ALL,
        }
        .samples()
        // Head parts are in memory: reading them cannot fail.
        .map(|it| it.collect())
        .unwrap_or_default()
    }
}

/// Everything older than `before` in the head, to be written to blocks.
pub struct CutPlan {
    pub before: Timestamp,
    /// The WAL segment closed when the plan was made.
    pub segment: u64,
    /// Sorted by labels.
    pub items: Vec<CutItem>,
}

/// Re-encodes what is left of a chunk after its first `n` samples.
fn drop_prefix(c: &FrozenChunk, n: u16) -> Option<OpenChunk> {
    let mut rest = OpenChunk::new();
    for s in c.iter().skip(n as usize) {
        rest.push(s);
    }
    (!rest.is_empty()).then_some(rest)
}

/// Where a sample goes after classification.
enum Placement {
    InOrder,
    OutOfOrder,
    Duplicate,
}

/// For each target of a write, the slot of its series, and for each slot
/// the first target naming it: a write may name one series twice, and each
/// series must be locked once.
fn lock_slots(
    targets: &[(Arc<MemSeries>, SeriesRef, &SeriesInput<'_>)],
) -> (Vec<usize>, Vec<usize>) {
    let mut seen: HashMap<*const MemSeries, usize, std::hash::BuildHasherDefault<PointerHasher>> =
        HashMap::with_capacity_and_hasher(targets.len(), Default::default());
    let mut slot_of = Vec::with_capacity(targets.len());
    let mut slot_series = Vec::with_capacity(targets.len());
    for (ti, (s, _, _)) in targets.iter().enumerate() {
        let slot = *seen.entry(Arc::as_ptr(s)).or_insert_with(|| {
            slot_series.push(ti);
            slot_series.len() - 1
        });
        slot_of.push(slot);
    }
    (slot_of, slot_series)
}

/// Recovers the guard even if another thread panicked while holding it: the
/// data it protects is only changed after the WAL write succeeded.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Head {
    /// Opens the head over `wal_dir`, replaying what is there.
    pub fn open(
        wal_dir: &std::path::Path,
        opts: HeadOptions,
        interner: Arc<Interner>,
    ) -> Result<(Self, wal::ReplayReport), TsdbError> {
        let mut index = Index {
            next_ref: 1,
            ..Default::default()
        };
        let (min_t, max_t) = (
            AtomicI64::new(Timestamp::MAX),
            AtomicI64::new(Timestamp::MIN),
        );
        let chunk_files = match &opts.chunks_dir {
            Some(dir) => Some(ChunkFiles::open(dir).map_err(|e| TsdbError::io(dir, e))?),
            None => None,
        };
        let mut orphans = 0usize;
        // Samples older than `before` in segments up to `segment` are in blocks.
        let mut cut: Option<(u64, Timestamp)> = None;
        let report = wal::replay(wal_dir, |source, rec| match rec {
            WalRecord::Checkpoint {
                segment,
                before,
                next_ref,
            } => {
                cut = Some((segment, before));
                index.next_ref = index.next_ref.max(next_ref);
            }
            WalRecord::Series(series) => {
                for (r, labels) in series {
                    let h = labels.stable_hash();
                    if index.find(h, &labels).is_none() {
                        index.insert(r, h, interner.intern(labels));
                    }
                }
            }
            WalRecord::Samples(samples) => {
                let skip_before = match (source, cut) {
                    (ReplaySource::Segment(seg), Some((upto, before))) if seg <= upto => before,
                    _ => Timestamp::MIN,
                };
                for rs in samples {
                    if rs.sample.t < skip_before {
                        continue;
                    }
                    let Some(s) = index.series.get(&rs.series) else {
                        orphans += 1;
                        continue;
                    };
                    let mut d = lock(&s.data);
                    match classify(&d, rs.sample, AppendMode::Backfill, 0) {
                        Ok(Placement::InOrder) => d.push_in_order(rs.sample, chunk_files.as_ref()),
                        Ok(Placement::OutOfOrder) => d.push_ooo(rs.sample),
                        _ => continue,
                    }
                    min_t.fetch_min(rs.sample.t, Ordering::Relaxed);
                    max_t.fetch_max(rs.sample.t, Ordering::Relaxed);
                }
            }
        })?;
        if orphans > 0 {
            tracing::warn!(
                orphans,
                "WAL samples referenced unknown series and were skipped"
            );
        }
        let wal = WalWriter::open(wal_dir, opts.wal_segment_size, report.segment_max_t.clone())?;
        Ok((
            Head {
                index: RwLock::new(index),
                wal: Mutex::new(wal),
                opts,
                min_t,
                max_t,
                counters: HeadCounters::default(),
                interner,
                chunk_files,
                match_cache: MatchCache::default(),
            },
            report,
        ))
    }

    fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn num_series(&self) -> usize {
        self.read_index().series.len()
    }

    /// What the head's chunks hold and weigh; walks every series.
    pub fn chunk_stats(&self) -> HeadChunkStats {
        let index = self.read_index();
        let mut st = HeadChunkStats::default();
        for s in index.series.values() {
            let d = lock(&s.data);
            for c in &d.frozen {
                st.chunks += 1;
                st.samples += u64::from(c.len());
                st.bytes += c.byte_len() as u64;
            }
            if !d.open.is_empty() {
                st.chunks += 1;
                st.samples += u64::from(d.open.len());
                st.bytes += d.open.byte_len() as u64;
            }
            st.samples += d.ooo.len() as u64;
        }
        st
    }

    /// Oldest and newest sample timestamps in the head, if it has any.
    pub fn time_bounds(&self) -> Option<(Timestamp, Timestamp)> {
        let (a, b) = (
            self.min_t.load(Ordering::Relaxed),
            self.max_t.load(Ordering::Relaxed),
        );
        (a <= b).then_some((a, b))
    }

    /// fsyncs the WAL.
    pub fn sync_wal(&self) -> Result<(), TsdbError> {
        lock(&self.wal).sync()
    }

    /// Snapshots everything older than `before` and starts a new WAL
    /// segment, atomically with respect to appends.
    pub fn plan_cut(&self, before: Timestamp) -> Result<CutPlan, TsdbError> {
        let mut wal = lock(&self.wal);
        let segment = wal.cut_segment()?;
        let index = self.read_index();
        let mut items = Vec::new();
        for s in index.series.values() {
            let d = lock(&s.data);
            let n = d.frozen.iter().take_while(|c| c.max_t() < before).count();
            let open_whole = !d.open.is_empty() && d.open.max_t() < before;
            let open = open_whole.then(|| OpenTaken {
                min_t: d.open.min_t(),
                n: d.open.len(),
            });
            let ooo: Vec<(Timestamp, u64)> = d.ooo.range(..before).map(|(t, v)| (*t, *v)).collect();
            if n == 0 && open.is_none() && ooo.is_empty() {
                continue;
            }
            let open_bounds = open_whole.then(|| (d.open.min_t(), d.open.max_t()));
            let chunk_bounds = d.frozen[..n]
                .iter()
                .map(|c| (c.min_t(), c.max_t()))
                .chain(open_bounds);
            let ooo_bounds = ooo.first().zip(ooo.last()).map(|(a, b)| (a.0, b.0));
            let (min_t, max_t) = chunk_bounds
                .chain(ooo_bounds)
                .fold((Timestamp::MAX, Timestamp::MIN), |(a, b), (x, y)| {
                    (a.min(x), b.max(y))
                });
            items.push(CutItem {
                labels: s.labels.clone(),
                series: s.clone(),
                frozen: n,
                open,
                ooo,
                min_t,
                max_t,
            });
        }
        drop(index);
        drop(wal);
        items.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(CutPlan {
            before,
            segment,
            items,
        })
    }

    /// Drops what `plan` took (now safely in blocks) from memory, removes
    /// series left empty, and checkpoints the WAL so replay skips it.
    ///
    /// Ingestion keeps running: series are trimmed under their own locks
    /// (a write holds its series from classification to apply, so each
    /// series is seen wholly before or after any write), the WAL lock is
    /// held only to remove empty series and to list obsolete files, and the
    /// checkpoint is written and fsynced without it (appends only touch the
    /// current segment, which the plan started after everything it took).
    /// Deletes the head chunk file being written when nothing in it is
    /// live (call after a cut plan is dropped: it names chunks).
    pub fn release_idle_chunk_files(&self) {
        if let Some(f) = &self.chunk_files {
            f.release_idle();
        }
    }

    pub fn apply_cut(&self, plan: &CutPlan) -> Result<(), TsdbError> {
        for item in &plan.items {
            let mut d = lock(&item.series.data);
            // Frozen chunks only grow at the end and only cuts (which are
            // serialised) remove from the front, so the prefix is the one taken.
            let n = item.frozen.min(d.frozen.len());
            d.frozen.drain(..n);
            if let Some(taken) = item.open {
                // The open chunk may have been frozen since the plan.
                if d.frozen.first().is_some_and(|c| c.min_t() == taken.min_t) {
                    let c = d.frozen.remove(0);
                    if let Some(rest) = drop_prefix(&c, taken.n) {
                        d.frozen.insert(0, rest.freeze());
                    }
                } else if !d.open.is_empty() && d.open.min_t() == taken.min_t {
                    let current = d.open.snapshot();
                    d.open = drop_prefix(&current, taken.n).unwrap_or_default();
                }
            }
            d.frozen.shrink_to_fit();
            for (t, bits) in &item.ooo {
                if d.ooo.get(t) == Some(bits) {
                    d.ooo.remove(t);
                }
            }
            d.recompute_min_t();
        }
        // Drop every series without data: cut empty, or created by a write
        // whose samples were all refused. Under the WAL lock, because a
        // write checks `removed` under it before locking its series.
        let (removed, live, next_ref, wal_dir) = {
            let wal = lock(&self.wal);
            let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
            let empty: Vec<SeriesRef> = index
                .series
                .iter()
                .filter(|(_, s)| lock(&s.data).is_empty())
                .map(|(r, _)| *r)
                .collect();
            for r in &empty {
                if let Some(s) = index.series.get(r) {
                    s.removed.store(true, Ordering::Release);
                }
                index.remove(*r);
            }
            let live: Vec<(SeriesRef, LabelSet)> = index
                .series
                .iter()
                .map(|(r, s)| (*r, s.labels.clone()))
                .collect();
            (empty.len(), live, index.next_ref, wal.dir().to_path_buf())
        };
        self.recompute_time_bounds();
        wal::write_checkpoint(
            &wal_dir,
            plan.segment,
            plan.before,
            next_ref,
            live.iter().map(|(r, l)| (*r, l)),
        )?;
        let obsolete = lock(&self.wal).obsolete_after_checkpoint(plan.segment, plan.before)?;
        wal::remove_obsolete(&wal_dir, &obsolete)?;
        tracing::debug!(
            before = plan.before,
            removed_series = removed,
            "head cut applied"
        );
        Ok(())
    }

    /// Recomputes the head's time bounds after a cut. A write that moved a
    /// bound during the scan keeps its value (conservative: at worst the
    /// next cut finds nothing to take).
    fn recompute_time_bounds(&self) {
        let seen = (
            self.min_t.load(Ordering::Acquire),
            self.max_t.load(Ordering::Acquire),
        );
        let (mut lo, mut hi) = (Timestamp::MAX, Timestamp::MIN);
        {
            let index = self.read_index();
            for s in index.series.values() {
                let d = lock(&s.data);
                if let Some(max_t) = d.max_t() {
                    lo = lo.min(d.min_t);
                    hi = hi.max(max_t);
                }
            }
        }
        let _ = self
            .min_t
            .compare_exchange(seen.0, lo, Ordering::AcqRel, Ordering::Relaxed);
        let _ = self
            .max_t
            .compare_exchange(seen.1, hi, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Validates a series' labels against the naming rules and limits.
    fn validate(&self, labels: LabelsRef<'_>) -> Result<(), (RejectReason, String)> {
        let lim = &self.opts.limits;
        let name = match labels.get(METRIC_NAME) {
            Some(n) => n,
            None => {
                return Err((
                    RejectReason::MissingMetricName,
                    "series has no metric name (__name__ label)".into(),
                ))
            }
        };
        if !is_valid_metric_name(name) {
            return Err((
                RejectReason::InvalidMetricName,
                format!("invalid metric name {name:?}"),
            ));
        }
        if let Some(d) = labels.duplicate_name() {
            return Err((
                RejectReason::DuplicateLabelName,
                format!("duplicate label name {d:?}"),
            ));
        }
        let n = labels.pairs().len();
        if lim.max_labels_per_series > 0 && n > lim.max_labels_per_series {
            return Err((
                RejectReason::TooManyLabels,
                format!(
                    "{n} labels exceed the limit of {}",
                    lim.max_labels_per_series
                ),
            ));
        }
        for (name, value) in labels.pairs() {
            if *name != METRIC_NAME && !is_valid_label_name(name) {
                return Err((
                    RejectReason::InvalidLabelName,
                    format!("invalid label name {name:?}"),
                ));
            }
            if lim.max_label_name_length > 0 && name.len() > lim.max_label_name_length {
                return Err((
                    RejectReason::LabelNameTooLong,
                    format!(
                        "label name {name:?} is {} bytes, over the limit of {}",
                        name.len(),
                        lim.max_label_name_length
                    ),
                ));
            }
            if lim.max_label_value_length > 0 && value.len() > lim.max_label_value_length {
                return Err((
                    RejectReason::LabelValueTooLong,
                    format!(
                        "value of label {name:?} is {} bytes, over the limit of {}",
                        value.len(),
                        lim.max_label_value_length
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a new series past the head's series limits. Checked under
    /// the index's read lock before the series is created, so writers
    /// running at once can overshoot by the series they create together.
    fn check_series_limits(&self, labels: LabelsRef<'_>) -> Result<(), (RejectReason, String)> {
        let lim = &self.opts.limits;
        if lim.max_global_series == 0 && lim.max_global_series_per_metric == 0 {
            return Ok(());
        }
        let index = self.read_index();
        if lim.max_global_series > 0 && index.series.len() >= lim.max_global_series {
            return Err((
                RejectReason::SeriesLimit,
                format!(
                    "the store holds {} series, its limit (limits.max_global_series)",
                    lim.max_global_series
                ),
            ));
        }
        if lim.max_global_series_per_metric > 0 {
            let name = labels.get(crate::labels::METRIC_NAME).unwrap_or("");
            if index.postings.count(crate::labels::METRIC_NAME, name)
                >= lim.max_global_series_per_metric
            {
                return Err((
                    RejectReason::SeriesPerMetricLimit,
                    format!(
                        "metric {name:?} has {} series, its limit (limits.max_global_series_per_metric)",
                        lim.max_global_series_per_metric
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Creates the series (or finds it, if another writer just did); a new
    /// series is logged before it can be found, so no sample record can
    /// ever precede its series record. Lock order everywhere: WAL, then
    /// index, then series data.
    fn create_locked(
        &self,
        wal: &mut WalWriter,
        labels: LabelsRef<'_>,
        h: u64,
    ) -> Result<(SeriesRef, Arc<MemSeries>), TsdbError> {
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = index.find_ref(h, labels) {
            return Ok(found);
        }
        let r = SeriesRef(index.next_ref);
        let owned = self.interner.intern(labels.to_label_set());
        let mut buf = Vec::new();
        wal::encode_series(&mut buf, std::iter::once((r, &owned)));
        wal.write(&buf, None)?;
        self.counters.series_created.fetch_add(1, Ordering::Relaxed);
        Ok((r, index.insert(r, h, owned)))
    }

    /// Appends owned series (import, tests); see [`Head::append_inputs`].
    pub fn append(
        &self,
        write: &[SeriesSamples],
        mode: AppendMode,
        now_ms: Timestamp,
    ) -> Result<AppendOutcome, TsdbError> {
        let pairs: Vec<Vec<(&str, &str)>> = write
            .iter()
            .map(|s| s.labels.iter().map(|l| (l.name, l.value)).collect())
            .collect();
        let inputs: Vec<SeriesInput> = pairs
            .iter()
            .zip(write)
            .map(|(p, s)| SeriesInput {
                labels: LabelsRef::from_sorted(p),
                samples: &s.samples,
            })
            .collect();
        self.append_inputs(&inputs, mode, now_ms)
    }

    /// Appends a write. Valid series and samples are stored even when others
    /// in the same write are refused; refusals are listed in the outcome.
    /// An `Err` means nothing of the samples was stored (WAL failure).
    pub fn append_inputs(
        &self,
        write: &[SeriesInput<'_>],
        mode: AppendMode,
        now_ms: Timestamp,
    ) -> Result<AppendOutcome, TsdbError> {
        self.append_inputs_then(write, mode, now_ms, |_| {})
    }

    /// [`Head::append_inputs`], calling `logged` as soon as the write is in
    /// the WAL, before its samples are encoded into chunks. A writer can
    /// acknowledge from `logged`: the series of the write stay locked until
    /// they are applied, so a reader that comes after the acknowledgement
    /// waits for them and sees every acknowledged sample. `logged` is not
    /// called when the write fails or is refused whole before logging. It
    /// must not wait for a reader: the write's series are locked while it
    /// runs.
    pub fn append_inputs_then(
        &self,
        write: &[SeriesInput<'_>],
        mode: AppendMode,
        now_ms: Timestamp,
        logged: impl FnOnce(&AppendOutcome),
    ) -> Result<AppendOutcome, TsdbError> {
        let mut outcome = AppendOutcome::default();
        let lim = &self.opts.limits;
        if lim.max_series_per_write > 0 && write.len() > lim.max_series_per_write {
            let n: usize = write.iter().map(|s| s.samples.len()).sum();
            self.counters.reject(RejectReason::TooManySeries, n);
            outcome.errors.push(AppendError {
                reason: RejectReason::TooManySeries,
                message: format!(
                    "write has {} series, over the limit of {}",
                    write.len(),
                    lim.max_series_per_write
                ),
                samples: n,
            });
            return Ok(outcome);
        }
        let mut targets: Vec<(Arc<MemSeries>, SeriesRef, &SeriesInput)> =
            Vec::with_capacity(write.len());
        // Existing series under one read lock, without allocating.
        let mut missing: Vec<(&SeriesInput, u64)> = Vec::new();
        {
            let live: Vec<(&SeriesInput, u64)> = write
                .iter()
                .filter(|s| !s.samples.is_empty())
                .map(|s| (s, s.labels.hash()))
                .collect();
            let index = self.read_index();
            // Each lookup is a chain of three cache misses (slot, series,
            // labels); start them for lookups a few places ahead, one link
            // per stage, so they overlap instead of following each other.
            let hash_at = |i: usize| live.get(i).map(|(_, h)| *h);
            for (i, &(ss, h)) in live.iter().enumerate() {
                if let Some(h) = hash_at(i + 3 * AHEAD) {
                    index.by_hash.home(h);
                }
                if let Some(s) =
                    hash_at(i + 2 * AHEAD).and_then(|h| index.by_hash.first_with_hash(h))
                {
                    crate::prefetch::prefetch(Arc::as_ptr(s));
                }
                if let Some(s) = hash_at(i + AHEAD).and_then(|h| index.by_hash.first_with_hash(h)) {
                    s.labels.prefetch();
                }
                match index.find_ref(h, ss.labels) {
                    Some((r, s)) => targets.push((s, r, ss)),
                    None => missing.push((ss, h)),
                }
            }
        }
        for (ss, h) in missing {
            if let Err((reason, msg)) = self
                .validate(ss.labels)
                .and_then(|()| self.check_series_limits(ss.labels))
            {
                self.reject(
                    &mut outcome,
                    reason,
                    format!("{msg} in series {}", ss.labels),
                    ss.samples.len(),
                );
                continue;
            }
            let mut wal = lock(&self.wal);
            let (r, s) = self.create_locked(&mut wal, ss.labels, h)?;
            targets.push((s, r, ss));
        }

        let min_allowed = if self.opts.retention_ms > 0 {
            now_ms.saturating_sub(self.opts.retention_ms)
        } else {
            Timestamp::MIN
        };
        let max_allowed = if self.opts.max_future_ms > 0 {
            now_ms.saturating_add(self.opts.max_future_ms)
        } else {
            Timestamp::MAX
        };
        // Which targets share a series (computed before taking the WAL lock).
        let (mut slot_of, mut slot_series) = lock_slots(&targets);
        let mut wal = lock(&self.wal);
        // A cut may have dropped a series between lookup and now.
        let mut recreated = false;
        for t in &mut targets {
            if t.0.removed.load(Ordering::Acquire) {
                let (r, s) = self.create_locked(&mut wal, t.2.labels, t.2.labels.hash())?;
                t.0 = s;
                t.1 = r;
                recreated = true;
            }
        }
        // Lock every series of the write (each once: a write may name one
        // series twice) while the WAL lock is held, classify without
        // changing anything, log, release the WAL, then apply. Holding the
        // series from classification to apply keeps each series' memory in
        // WAL order; releasing the WAL before applying lets the next write
        // classify and log while this one encodes chunks. Series locks are
        // only ever acquired under the WAL lock or one at a time, so holding
        // many here cannot deadlock.
        if recreated {
            (slot_of, slot_series) = lock_slots(&targets);
        }
        let guards: Vec<MutexGuard<'_, SeriesData>> = slot_series
            .iter()
            .enumerate()
            .map(|(k, &ti)| {
                if let Some(&next) = slot_series.get(k + AHEAD) {
                    targets[next].0.prefetch();
                }
                lock(&targets[ti].0.data)
            })
            .collect();
        let mut accepted: Vec<RefSample> = Vec::new();
        // For each accepted sample: which target it belongs to and where it goes.
        let mut places: Vec<(usize, Placement)> = Vec::new();
        // Scratch order state per series, so several samples of one series
        // in one write — in one entry or in several naming the same series —
        // are classified against each other; a series named more than once
        // also remembers what this write accepted for it.
        let mut slot_last: Vec<Option<Sample>> = guards.iter().map(|d| d.last).collect();
        let mut targets_per_slot = vec![0u32; guards.len()];
        for &slot in &slot_of {
            targets_per_slot[slot] += 1;
        }
        let mut pending: HashMap<usize, BTreeMap<Timestamp, u64>> = HashMap::new();
        let mut ooo_count = 0u64;
        for (ti, (_, r, ss)) in targets.iter().enumerate() {
            let slot = slot_of[ti];
            let d = &guards[slot];
            let shared = targets_per_slot[slot] > 1;
            let mut last = slot_last[slot];
            let mut ooo_seen: BTreeSet<Timestamp> = BTreeSet::new();
            for sample in ss.samples {
                if sample.t < min_allowed {
                    self.reject(&mut outcome, RejectReason::TooOld, format!("sample at {} is older than retention allows ({min_allowed}) for series {}", sample.t, ss.labels), 1);
                    continue;
                }
                if sample.t > max_allowed {
                    self.reject(&mut outcome, RejectReason::TooFarInFuture, format!("sample at {} is too far in the future: more than {} ms ahead of the server's clock ({now_ms}; limits.creation_grace_period), for series {}", sample.t, self.opts.max_future_ms, ss.labels), 1);
                    continue;
                }
                if shared {
                    let bits = sample.v.to_bits();
                    match pending.get(&slot).and_then(|m| m.get(&sample.t)) {
                        Some(b) if *b == bits => {
                            outcome.duplicates += 1;
                            continue;
                        }
                        Some(_) => {
                            self.reject(
                                &mut outcome,
                                RejectReason::DuplicateTimestamp,
                                format!("sample at {} has a different value than another sample for the same time in this write, for series {}", sample.t, ss.labels),
                                1,
                            );
                            continue;
                        }
                        None => {}
                    }
                }
                let view = ClassifyView { data: d, last };
                let placed = view.classify(*sample, mode, self.opts.out_of_order_window_ms);
                if shared && matches!(placed, Ok(Placement::InOrder | Placement::OutOfOrder)) {
                    pending
                        .entry(slot)
                        .or_default()
                        .insert(sample.t, sample.v.to_bits());
                }
                match placed {
                    Ok(Placement::InOrder) => {
                        last = Some(*sample);
                        accepted.push(RefSample {
                            series: *r,
                            sample: *sample,
                        });
                        places.push((ti, Placement::InOrder));
                    }
                    Ok(Placement::OutOfOrder) => {
                        if ooo_seen.insert(sample.t) {
                            accepted.push(RefSample {
                                series: *r,
                                sample: *sample,
                            });
                            places.push((ti, Placement::OutOfOrder));
                            ooo_count += 1;
                        } else {
                            outcome.duplicates += 1;
                        }
                    }
                    Ok(Placement::Duplicate) => outcome.duplicates += 1,
                    Err((reason, msg)) => self.reject(
                        &mut outcome,
                        reason,
                        format!("{msg} for series {}", ss.labels),
                        1,
                    ),
                }
            }
            slot_last[slot] = last;
        }
        if !accepted.is_empty() {
            let mut buf = Vec::with_capacity(accepted.len() * 12 + 16);
            wal::encode_samples(&mut buf, &accepted);
            let (min_t, max_t) = accepted
                .iter()
                .fold((Timestamp::MAX, Timestamp::MIN), |(lo, hi), a| {
                    (lo.min(a.sample.t), hi.max(a.sample.t))
                });
            wal.write(&buf, Some(max_t))?;
            // Bounds before the acknowledgement, so a reader never sees a
            // head narrower than what was acknowledged.
            self.min_t.fetch_min(min_t, Ordering::Relaxed);
            self.max_t.fetch_max(max_t, Ordering::Relaxed);
        }
        drop(wal);
        outcome.appended = accepted.len();
        self.counters
            .samples_appended
            .fetch_add(accepted.len() as u64, Ordering::Relaxed);
        self.counters
            .samples_out_of_order_appended
            .fetch_add(ooo_count, Ordering::Relaxed);
        self.counters
            .duplicates_ignored
            .fetch_add(outcome.duplicates as u64, Ordering::Relaxed);
        logged(&outcome);
        // Apply in the same order as logged.
        let mut guards = guards;
        for (k, (rs, (ti, place))) in accepted.iter().zip(&places).enumerate() {
            if let Some((next, _)) = places.get(k + AHEAD) {
                guards[slot_of[*next]].open.prefetch_tail();
            }
            let d = &mut guards[slot_of[*ti]];
            match place {
                Placement::InOrder => d.push_in_order(rs.sample, self.chunk_files.as_ref()),
                Placement::OutOfOrder => d.push_ooo(rs.sample),
                Placement::Duplicate => {}
            }
        }
        drop(guards);
        Ok(outcome)
    }

    fn reject(
        &self,
        outcome: &mut AppendOutcome,
        reason: RejectReason,
        message: String,
        samples: usize,
    ) {
        self.counters.reject(reason, samples);
        outcome.errors.push(AppendError {
            reason,
            message,
            samples,
        });
    }

    /// Matching series refs and their handles, sorted by labels.
    /// Series matching `matchers`, sorted by labels (as Prometheus's head
    /// index sorts postings); remembered until the series set changes.
    fn matching(&self, matchers: &[Matcher]) -> Matched {
        let key = match_cache::key(matchers);
        let index = self.read_index();
        let generation = index.generation;
        if let Some(hit) = self.match_cache.get(&key, generation) {
            return hit;
        }
        let refs = index.postings.select(matchers);
        let mut out: Vec<Arc<MemSeries>> = refs
            .iter()
            .filter_map(|r| index.series.get(r).cloned())
            .collect();
        drop(index);
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        let out: Matched = out.into();
        self.match_cache.put(key, generation, out.clone());
        out
    }

    pub fn select(&self, matchers: &[Matcher], range: TimeRange) -> Vec<Series> {
        self.matching(matchers)
            .iter()
            .filter_map(|s| {
                let d = lock(&s.data);
                d.has_sample_in(range).then(|| d.snapshot(&s.labels, range))
            })
            .collect()
    }

    pub fn series(&self, matchers: &[Matcher], range: TimeRange) -> Vec<LabelSet> {
        let mut out: Vec<LabelSet> = self
            .series_in(matchers, range)
            .into_iter()
            .map(|s| s.labels.clone())
            .collect();
        out.sort();
        out
    }

    /// True when `range` covers every sample in the head, so the postings
    /// can answer label questions without looking at series data.
    fn covers_head(&self, range: TimeRange) -> bool {
        match self.time_bounds() {
            Some((a, b)) => range.start <= a && range.end >= b,
            // No samples yet: series created by refused writes must not show.
            None => false,
        }
    }

    pub fn label_names(&self, matchers: &[Matcher], range: TimeRange) -> Vec<String> {
        if matchers.is_empty() && self.covers_head(range) {
            return self
                .read_index()
                .postings
                .label_names()
                .map(String::from)
                .collect();
        }
        let mut names = BTreeSet::new();
        for s in self.series_in(matchers, range) {
            for l in s.labels.iter() {
                if !names.contains(l.name) {
                    names.insert(l.name.to_string());
                }
            }
        }
        names.into_iter().collect()
    }

    pub fn label_values(&self, name: &str, matchers: &[Matcher], range: TimeRange) -> Vec<String> {
        if matchers.is_empty() && self.covers_head(range) {
            return self
                .read_index()
                .postings
                .label_values(name)
                .map(String::from)
                .collect();
        }
        let mut values = BTreeSet::new();
        for s in self.series_in(matchers, range) {
            if let Some(v) = s.labels.get(name) {
                if !values.contains(v) {
                    values.insert(v.to_string());
                }
            }
        }
        values.into_iter().collect()
    }

    /// Series matching `matchers` (all if empty) with data in `range`.
    fn series_in(&self, matchers: &[Matcher], range: TimeRange) -> Vec<Arc<MemSeries>> {
        let with_data = |s: &&Arc<MemSeries>| lock(&s.data).has_sample_in(range);
        if matchers.is_empty() {
            let index = self.read_index();
            return index.series.values().filter(with_data).cloned().collect();
        }
        self.matching(matchers)
            .iter()
            .filter(with_data)
            .cloned()
            .collect()
    }
}

struct ClassifyView<'a> {
    data: &'a SeriesData,
    last: Option<Sample>,
}

impl ClassifyView<'_> {
    fn classify(
        &self,
        s: Sample,
        mode: AppendMode,
        ooo_window: i64,
    ) -> Result<Placement, (RejectReason, String)> {
        let Some(last) = self.last else {
            return Ok(Placement::InOrder);
        };
        if s.t > last.t {
            return Ok(Placement::InOrder);
        }
        if s.t == last.t {
            return if s.same_as(&last) {
                Ok(Placement::Duplicate)
            } else {
                Err((RejectReason::DuplicateTimestamp, format!("sample at {} has a different value than the one already stored at that time", s.t)))
            };
        }
        let existing = self
            .data
            .ooo
            .get(&s.t)
            .copied()
            .or_else(|| self.data.chunk_value_at(s.t));
        let in_window = ooo_window > 0 && s.t >= last.t.saturating_sub(ooo_window);
        if mode == AppendMode::Live && !in_window {
            // A retried write repeats what is stored: accept it as a no-op.
            if existing == Some(s.v.to_bits()) {
                return Ok(Placement::Duplicate);
            }
            return Err((
                RejectReason::OutOfOrder,
                format!(
                    "out-of-order sample at {}: newest stored is {}",
                    s.t, last.t
                ),
            ));
        }
        match existing {
            None => Ok(Placement::OutOfOrder),
            Some(bits) if bits == s.v.to_bits() => Ok(Placement::Duplicate),
            Some(_) => Err((
                RejectReason::DuplicateTimestamp,
                format!(
                    "sample at {} has a different value than the one already stored at that time",
                    s.t
                ),
            )),
        }
    }
}

fn classify(
    d: &SeriesData,
    s: Sample,
    mode: AppendMode,
    ooo_window: i64,
) -> Result<Placement, (RejectReason, String)> {
    ClassifyView {
        data: d,
        last: d.last,
    }
    .classify(s, mode, ooo_window)
}
