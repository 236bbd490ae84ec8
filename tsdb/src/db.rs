//! The store as a whole: a data directory holding the WAL and the head,
//! and the [`Querier`] over them.

use crate::block::Block;
use crate::compact;
use crate::error::{RejectReason, TsdbError};
use crate::head::{
    block_window, AppendMode, AppendOutcome, Head, HeadOptions, SeriesSamples, BLOCK_RANGE_MS,
};
use crate::labels::{Interner, LabelSet};
use crate::matcher::Matcher;
use crate::querier::{Querier, Series, SeriesPart, TimeRange};
use crate::row_group_cache::RowGroupCache;
use crate::sample::Timestamp;
use crate::wal::ReplayReport;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

#[derive(Clone, Debug)]
pub struct DbOptions {
    pub head: HeadOptions,
    /// Oldest blocks are deleted while blocks + WAL exceed this (0 = no limit).
    pub retention_size_bytes: u64,
    /// Decoded block row groups kept for later queries (at least
    /// [`crate::row_group_cache::MIN_BUDGET_BYTES`]).
    pub block_cache_bytes: usize,
}

/// Default memory for decoded block row groups: with it, the query
/// benchmark over 100 000 flushed series peaks below VictoriaMetrics's
/// resident memory (docs/BENCHMARKS.md); a larger cache answers more
/// repeated dashboard queries without decoding.
pub const DEFAULT_BLOCK_CACHE_BYTES: usize = 64 << 20;

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            head: HeadOptions::default(),
            retention_size_bytes: 0,
            block_cache_bytes: DEFAULT_BLOCK_CACHE_BYTES,
        }
    }
}

/// A point-in-time view of the store's size and activity.
#[derive(Clone, Debug, Default)]
pub struct DbStats {
    pub head_series: u64,
    pub series_created: u64,
    pub samples_appended: u64,
    pub samples_out_of_order_appended: u64,
    pub duplicates_ignored: u64,
    pub rejected: Vec<(RejectReason, u64)>,
    pub wal_bytes: u64,
    pub wal_segments: u64,
    pub blocks: u64,
    pub block_bytes: u64,
    pub block_samples: u64,
    pub min_time: Option<Timestamp>,
    pub max_time: Option<Timestamp>,
}

impl DbStats {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }
    /// Everything the store keeps on disk.
    pub fn bytes_on_disk(&self) -> u64 {
        self.wal_bytes + self.block_bytes
    }
}

/// What one round of maintenance did.
#[derive(Clone, Debug, Default)]
pub struct MaintenanceReport {
    pub blocks_cut: usize,
    pub blocks_compacted: usize,
    pub blocks_deleted: usize,
}

/// Head cuts one maintenance round may make (sparse backfill can need many).
/// How far past a block window's end the head's newest sample must be
/// before that window is persisted.
pub const CUT_GRACE_MS: i64 = 30 * 60 * 1000;

const MAX_CUTS_PER_ROUND: usize = 256;

/// Blocks are merged into windows of these lengths once a window is complete.
const COMPACTION_RANGES_MS: [i64; 2] = [6 * BLOCK_RANGE_MS, 24 * BLOCK_RANGE_MS];

pub struct Db {
    dir: PathBuf,
    head: Head,
    /// Sorted by min time; replaced whole on change so readers hold a snapshot.
    blocks: RwLock<Arc<Vec<Arc<Block>>>>,
    opts: DbOptions,
    /// Serialises cuts, compactions and retention.
    maintenance: Mutex<()>,
    replay: ReplayReport,
    counters: DbCounters,
    interner: Arc<Interner>,
    block_cache: Arc<RowGroupCache>,
}

#[derive(Default)]
struct DbCounters {
    blocks_cut: AtomicU64,
    blocks_compacted: AtomicU64,
    blocks_deleted: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Db {
    /// Opens (or creates) the store in `dir`: loads its blocks and replays its WAL.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, TsdbError> {
        std::fs::create_dir_all(dir).map_err(|e| TsdbError::io(dir, e))?;
        let interner = Arc::new(Interner::default());
        let block_cache = Arc::new(RowGroupCache::new(opts.block_cache_bytes));
        let blocks = load_blocks(&dir.join("blocks"), &interner, &block_cache)?;
        let mut head_opts = opts.head.clone();
        head_opts
            .chunks_dir
            .get_or_insert_with(|| dir.join("chunks_head"));
        let (head, replay) = Head::open(&dir.join("wal"), head_opts, interner.clone())?;
        tracing::info!(
            dir = %dir.display(), series = head.num_series(), blocks = blocks.len(),
            records = replay.records, segments = replay.segments, "store opened"
        );
        Ok(Db {
            dir: dir.to_path_buf(),
            head,
            blocks: RwLock::new(Arc::new(blocks)),
            opts,
            maintenance: Mutex::new(()),
            replay,
            counters: DbCounters::default(),
            interner,
            block_cache,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blocks_dir(&self) -> PathBuf {
        self.dir.join("blocks")
    }

    /// The blocks as of now; a snapshot that later changes do not affect.
    pub fn blocks(&self) -> Arc<Vec<Arc<Block>>> {
        self.blocks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn swap_blocks(&self, add: Vec<Arc<Block>>, remove: &[String]) {
        let mut guard = self.blocks.write().unwrap_or_else(|p| p.into_inner());
        let mut next: Vec<Arc<Block>> = guard
            .iter()
            .filter(|b| !remove.contains(&b.meta.id))
            .cloned()
            .collect();
        next.extend(add);
        next.sort_by(|a, b| (a.meta.min_time, &a.meta.id).cmp(&(b.meta.min_time, &b.meta.id)));
        *guard = Arc::new(next);
    }

    /// What WAL replay found when the store was opened.
    pub fn replay_report(&self) -> &ReplayReport {
        &self.replay
    }

    pub fn append(
        &self,
        write: &[SeriesSamples],
        mode: AppendMode,
        now_ms: Timestamp,
    ) -> Result<AppendOutcome, TsdbError> {
        self.head.append(write, mode, now_ms)
    }

    /// Appends series borrowed from a decoded request (the hot path).
    pub fn append_inputs(
        &self,
        write: &[crate::head::SeriesInput<'_>],
        mode: AppendMode,
        now_ms: Timestamp,
    ) -> Result<AppendOutcome, TsdbError> {
        self.head.append_inputs(write, mode, now_ms)
    }

    /// [`Db::append_inputs`], calling `logged` once the write is in
    /// the WAL and before its samples are encoded into chunks (see
    /// [`crate::head::Head::append_inputs_then`]): the place to acknowledge.
    pub fn append_inputs_then(
        &self,
        write: &[crate::head::SeriesInput<'_>],
        mode: AppendMode,
        now_ms: Timestamp,
        logged: impl FnOnce(&AppendOutcome),
    ) -> Result<AppendOutcome, TsdbError> {
        self.head.append_inputs_then(write, mode, now_ms, logged)
    }

    /// Makes everything acknowledged so far survive power loss.
    pub fn sync(&self) -> Result<(), TsdbError> {
        self.head.sync_wal()
    }

    /// Cuts old head data into blocks, compacts complete windows and applies
    /// retention. Safe to call at any time; runs one round at a time.
    pub fn maintain(&self, now_ms: Timestamp) -> Result<MaintenanceReport, TsdbError> {
        let _round = lock(&self.maintenance);
        let mut report = MaintenanceReport::default();
        // Persist the head's oldest window once the newest data is
        // CUT_GRACE_MS past its end: late writers have had their chance (a
        // later straggler lands in a small block that compaction merges),
        // and the head holds ~2.5 h instead of Prometheus's 3 h. Bounded,
        // so a cut that cannot shrink the head never spins.
        for _ in 0..MAX_CUTS_PER_ROUND {
            let Some((min_t, max_t)) = self.head.time_bounds() else {
                break;
            };
            // Saturating: a sample near the end of time (stored before
            // future samples were refused) must not wrap the arithmetic.
            let window_end = block_window(min_t)
                .saturating_add(1)
                .saturating_mul(BLOCK_RANGE_MS);
            if max_t < window_end.saturating_add(CUT_GRACE_MS) {
                break;
            }
            let cut = self.cut_before(window_end)?;
            report.blocks_cut += cut;
            if cut == 0 {
                break;
            }
        }
        report.blocks_compacted += self.compact()?;
        report.blocks_deleted += self.apply_retention(now_ms)?;
        self.interner.collect_garbage();
        Ok(report)
    }

    /// Persists every head sample older than `before` as blocks.
    fn cut_before(&self, before: Timestamp) -> Result<usize, TsdbError> {
        let plan = self.head.plan_cut(before)?;
        let metas = compact::write_cut(&plan, &self.blocks_dir())?;
        let mut added = Vec::new();
        for m in &metas {
            added.push(Arc::new(Block::open(
                &self.blocks_dir().join(&m.id),
                &self.interner,
                self.block_cache.clone(),
            )?));
        }
        let n = added.len();
        self.swap_blocks(added, &[]);
        self.head.apply_cut(&plan)?;
        let (items, n_blocks) = (plan.items.len(), n);
        drop(plan);
        self.head.release_idle_chunk_files();
        self.counters
            .blocks_cut
            .fetch_add(n as u64, Ordering::Relaxed);
        tracing::info!(
            before,
            blocks = n_blocks,
            series = items,
            "head data persisted"
        );
        Ok(n)
    }

    /// Persists the whole head (e.g. before a backup or a benchmark's size
    /// measurement); live ingestion continues meanwhile.
    pub fn flush_head(&self) -> Result<MaintenanceReport, TsdbError> {
        let _round = lock(&self.maintenance);
        let mut report = MaintenanceReport::default();
        if let Some((_, max_t)) = self.head.time_bounds() {
            report.blocks_cut = self.cut_before(max_t.saturating_add(1))?;
        }
        report.blocks_compacted = self.compact()?;
        self.interner.collect_garbage();
        Ok(report)
    }

    /// Merges blocks that share a complete compaction window.
    fn compact(&self) -> Result<usize, TsdbError> {
        let head_min = self.head.time_bounds().map_or(Timestamp::MAX, |b| b.0);
        let mut merged = 0;
        // As in Prometheus, no block spans more than a tenth of retention,
        // so retention can drop old data in reasonably small steps.
        let retention = self.opts.head.retention_ms;
        let allowed = |r: i64| retention <= 0 || r <= retention / 10;
        for (level, range) in COMPACTION_RANGES_MS
            .iter()
            .enumerate()
            .filter(|(_, r)| allowed(**r))
        {
            loop {
                let blocks = self.blocks();
                let mut groups: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
                for b in blocks.iter() {
                    let w = b.meta.min_time.div_euclid(*range);
                    if b.meta.max_time.div_euclid(*range) == w {
                        groups.entry(w).or_default().push(b.clone());
                    }
                }
                let ready = groups.into_iter().find(|(w, bs)| {
                    bs.len() > 1 && w.saturating_add(1).saturating_mul(*range) <= head_min
                });
                let Some((_, inputs)) = ready else { break };
                let Some(meta) =
                    compact::merge_blocks(&inputs, &self.blocks_dir(), level as u32 + 2)?
                else {
                    break;
                };
                let block = Arc::new(Block::open(
                    &self.blocks_dir().join(&meta.id),
                    &self.interner,
                    self.block_cache.clone(),
                )?);
                self.swap_blocks(vec![block], &meta.sources);
                for b in &inputs {
                    remove_block_dir(b.dir())?;
                }
                merged += inputs.len();
                self.counters
                    .blocks_compacted
                    .fetch_add(inputs.len() as u64, Ordering::Relaxed);
                tracing::info!(id = %meta.id, inputs = inputs.len(), "blocks compacted");
            }
        }
        Ok(merged)
    }

    fn apply_retention(&self, now_ms: Timestamp) -> Result<usize, TsdbError> {
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        let blocks = self.blocks();
        let retention = self.opts.head.retention_ms;
        if retention > 0 {
            let oldest_allowed = now_ms.saturating_sub(retention);
            doomed.extend(
                blocks
                    .iter()
                    .filter(|b| b.meta.max_time < oldest_allowed)
                    .cloned(),
            );
        }
        if self.opts.retention_size_bytes > 0 {
            let (wal_bytes, _) = dir_size(&self.dir.join("wal"));
            let mut total: u64 = wal_bytes + blocks.iter().map(|b| b.bytes()).sum::<u64>();
            for b in blocks.iter() {
                if total <= self.opts.retention_size_bytes {
                    break;
                }
                total = total.saturating_sub(b.bytes());
                if !doomed.iter().any(|d| d.meta.id == b.meta.id) {
                    doomed.push(b.clone());
                }
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = doomed.iter().map(|b| b.meta.id.clone()).collect();
        self.swap_blocks(Vec::new(), &ids);
        for b in &doomed {
            remove_block_dir(b.dir())?;
            tracing::info!(id = %b.meta.id, "block deleted by retention");
        }
        self.counters
            .blocks_deleted
            .fetch_add(doomed.len() as u64, Ordering::Relaxed);
        Ok(doomed.len())
    }

    pub fn stats(&self) -> DbStats {
        let c = &self.head.counters;
        let (wal_bytes, wal_segments) = dir_size(&self.dir.join("wal"));
        let bounds = self.head.time_bounds();
        let blocks = self.blocks();
        let min_time = blocks
            .iter()
            .map(|b| b.meta.min_time)
            .chain(bounds.map(|b| b.0))
            .min();
        let max_time = blocks
            .iter()
            .map(|b| b.meta.max_time)
            .chain(bounds.map(|b| b.1))
            .max();
        DbStats {
            head_series: self.head.num_series() as u64,
            series_created: c.series_created.load(Ordering::Relaxed),
            samples_appended: c.samples_appended.load(Ordering::Relaxed),
            samples_out_of_order_appended: c.samples_out_of_order_appended.load(Ordering::Relaxed),
            duplicates_ignored: c.duplicates_ignored.load(Ordering::Relaxed),
            rejected: RejectReason::ALL
                .iter()
                .map(|r| (*r, c.rejected(*r)))
                .collect(),
            wal_bytes,
            wal_segments,
            blocks: blocks.len() as u64,
            block_bytes: blocks.iter().map(|b| b.bytes()).sum(),
            block_samples: blocks.iter().map(|b| b.meta.num_samples).sum(),
            min_time,
            max_time,
        }
    }

    /// Chunks, samples and encoded bytes held in the head (walks every series).
    pub fn head_chunk_stats(&self) -> crate::head::HeadChunkStats {
        self.head.chunk_stats()
    }

    /// Counters of maintenance work: (blocks cut, blocks compacted, blocks deleted).
    pub fn maintenance_counters(&self) -> (u64, u64, u64) {
        (
            self.counters.blocks_cut.load(Ordering::Relaxed),
            self.counters.blocks_compacted.load(Ordering::Relaxed),
            self.counters.blocks_deleted.load(Ordering::Relaxed),
        )
    }
}

fn remove_block_dir(dir: &Path) -> Result<(), TsdbError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(TsdbError::io(dir, e)),
    }
}

/// Opens every block; removes leftovers of interrupted writes and blocks
/// that a finished compaction replaced.
fn load_blocks(
    dir: &Path,
    interner: &Interner,
    cache: &Arc<RowGroupCache>,
) -> Result<Vec<Arc<Block>>, TsdbError> {
    std::fs::create_dir_all(dir).map_err(|e| TsdbError::io(dir, e))?;
    let mut blocks = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| TsdbError::io(dir, e))? {
        let entry = entry.map_err(|e| TsdbError::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with(".tmp-") {
            remove_block_dir(&path)?;
            continue;
        }
        if !path.is_dir() {
            continue;
        }
        match Block::open(&path, interner, cache.clone()) {
            Ok(b) => blocks.push(Arc::new(b)),
            // Keep the directory for inspection; do not take the store down.
            Err(e) => {
                tracing::error!(block = %path.display(), error = %e, "cannot open block; skipping it")
            }
        }
    }
    let replaced: HashSet<String> = blocks
        .iter()
        .flat_map(|b| b.meta.sources.iter().cloned())
        .collect();
    let (gone, mut keep): (Vec<_>, Vec<_>) = blocks
        .into_iter()
        .partition(|b| replaced.contains(&b.meta.id));
    for b in gone {
        remove_block_dir(b.dir())?;
    }
    keep.sort_by(|a, b| (a.meta.min_time, &a.meta.id).cmp(&(b.meta.min_time, &b.meta.id)));
    Ok(keep)
}

/// Total bytes and number of files directly inside `dir`.
fn dir_size(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .fold((0, 0), |(b, n), m| (b + m.len(), n + 1))
}

impl Db {
    /// A reader of this store that bypasses its shared row-group cache
    /// (see [`crate::UncachedReader`]).
    pub fn uncached(&self) -> crate::uncached_reader::UncachedReader<'_> {
        crate::uncached_reader::UncachedReader::new(self)
    }
}

impl Querier for Db {
    fn select(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<Series>, TsdbError> {
        // Every source lists its series in label order (block ids follow
        // label order), so sources merge without a map; the parts of one
        // series keep source order (blocks by time, then the head).
        let mut out: Vec<Series> = Vec::new();
        for b in self.blocks().iter().filter(|b| b.overlaps(range)) {
            let mut ids = b.series_in(matchers, range)?;
            if !ids.is_sorted() {
                ids.sort_unstable();
            }
            let from_block = ids
                .into_iter()
                .map(|id| Series {
                    labels: b.labels_of(id).clone(),
                    parts: vec![SeriesPart::Block {
                        block: b.clone(),
                        id,
                        cache: None,
                    }],
                    range,
                })
                .collect();
            out = merge_by_labels(out, from_block);
        }
        Ok(merge_by_labels(out, self.head.select(matchers, range)))
    }

    fn series(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<LabelSet>, TsdbError> {
        let mut out: BTreeSet<LabelSet> = self.head.series(matchers, range).into_iter().collect();
        for b in self.blocks().iter() {
            for id in b.series_in(matchers, range)? {
                let l = b.labels_of(id);
                if !out.contains(l) {
                    out.insert(l.clone());
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<Vec<String>, TsdbError> {
        let mut out: BTreeSet<String> =
            self.head.label_names(matchers, range).into_iter().collect();
        for b in self.blocks().iter().filter(|b| b.overlaps(range)) {
            out.extend(b.label_names(matchers, range)?);
        }
        Ok(out.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<Vec<String>, TsdbError> {
        let mut out: BTreeSet<String> = self
            .head
            .label_values(name, matchers, range)
            .into_iter()
            .collect();
        for b in self.blocks().iter().filter(|b| b.overlaps(range)) {
            out.extend(b.label_values(name, matchers, range)?);
        }
        Ok(out.into_iter().collect())
    }
}

/// Merges two label-sorted series lists; a series in both gets `b`'s
/// parts after `a`'s.
fn merge_by_labels(a: Vec<Series>, b: Vec<Series>) -> Vec<Series> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let order = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.labels.cmp(&y.labels),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => break,
        };
        match order {
            std::cmp::Ordering::Less => out.extend(a.next()),
            std::cmp::Ordering::Greater => out.extend(b.next()),
            std::cmp::Ordering::Equal => {
                if let (Some(mut x), Some(y)) = (a.next(), b.next()) {
                    x.merge(y);
                    out.push(x);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Sample, STALE_NAN_BITS};
    use crate::MatchOp;

    fn write(name: &str, job: &str, samples: &[(i64, f64)]) -> SeriesSamples {
        SeriesSamples {
            labels: LabelSet::from_pairs(&[("__name__", name), ("job", job)]),
            samples: samples.iter().map(|(t, v)| Sample::new(*t, *v)).collect(),
        }
    }

    fn all_samples(db: &Db, m: &[Matcher], range: TimeRange) -> Vec<(String, Vec<Sample>)> {
        db.select(m, range)
            .unwrap()
            .into_iter()
            .map(|s| (s.labels.to_string(), s.samples().unwrap().collect()))
            .collect()
    }

    #[test]
    fn future_samples_are_refused_and_maintenance_survives_the_end_of_time() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_800_000_000_000;
        // A store from before future samples were refused holds one at the
        // end of time: maintenance must neither overflow nor spin.
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        db.append(
            &[write("edge", "a", &[(now, 1.0), (i64::MAX, 2.0)])],
            AppendMode::Live,
            now,
        )
        .unwrap();
        for _ in 0..3 {
            let r = db.maintain(now).unwrap();
            assert!(r.blocks_cut <= 2, "{r:?}");
        }
        drop(db);
        let mut opts = DbOptions::default();
        opts.head.max_future_ms = 600_000;
        let db = Db::open(dir.path(), opts).unwrap();
        let out = db
            .append(
                &[write("later", "a", &[(now + 700_000, 1.0), (now, 2.0)])],
                AppendMode::Backfill,
                now,
            )
            .unwrap();
        assert_eq!(out.appended, 1);
        assert_eq!(out.errors[0].reason, RejectReason::TooFarInFuture);
        assert!(out.errors[0].message.contains("too far in the future"));
    }

    #[test]
    fn a_flush_leaves_no_head_chunk_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let samples: Vec<(i64, f64)> = (0..2000).map(|i| (i * 15_000, i as f64)).collect();
        db.append(
            &[write("busy", "a", &samples)],
            AppendMode::Live,
            30_000_000,
        )
        .unwrap();
        let files = || {
            std::fs::read_dir(dir.path().join("chunks_head"))
                .unwrap()
                .count()
        };
        assert!(files() > 0, "frozen chunks went to a file");
        db.flush_head().unwrap();
        assert_eq!(files(), 0, "the emptied head keeps no chunk file");
        assert_eq!(
            all_samples(
                &db,
                &[Matcher::equal("__name__", "busy")],
                TimeRange::new(0, i64::MAX)
            )[0]
            .1
            .len(),
            2000
        );
    }

    #[test]
    fn series_limits_refuse_new_series_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = DbOptions::default();
        opts.head.limits.max_global_series = 3;
        opts.head.limits.max_global_series_per_metric = 2;
        let db = Db::open(dir.path(), opts).unwrap();
        let out = db
            .append(
                &[
                    write("a", "1", &[(1000, 1.0)]),
                    write("a", "2", &[(1000, 1.0)]),
                    write("a", "3", &[(1000, 1.0)]),
                    write("b", "1", &[(1000, 1.0)]),
                    write("c", "1", &[(1000, 1.0)]),
                ],
                AppendMode::Live,
                1000,
            )
            .unwrap();
        assert_eq!(out.appended, 3);
        let reasons: Vec<RejectReason> = out.errors.iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            [
                RejectReason::SeriesPerMetricLimit,
                RejectReason::SeriesLimit
            ]
        );
        assert!(out.errors[1].message.contains("limits.max_global_series"));
        // Series that exist still take samples.
        let out = db
            .append(&[write("a", "1", &[(2000, 1.0)])], AppendMode::Live, 2000)
            .unwrap();
        assert_eq!((out.appended, out.errors.len()), (1, 0));
    }

    #[test]
    fn repeated_selectors_see_series_added_and_removed_between_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let range = TimeRange::new(0, 10_000_000);
        let m = [
            Matcher::equal("__name__", "up"),
            Matcher::new(MatchOp::RegexMatch, "job", "a|c").unwrap(),
        ];
        db.append(
            &[
                write("up", "c", &[(1000, 1.0)]),
                write("up", "b", &[(1000, 1.0)]),
            ],
            AppendMode::Backfill,
            0,
        )
        .unwrap();
        let names = |db: &Db| -> Vec<String> {
            all_samples(db, &m, range)
                .into_iter()
                .map(|(l, _)| l)
                .collect()
        };
        assert_eq!(names(&db), [r#"up{job="c"}"#]);
        // The same selector again, and one with the same matchers reordered.
        assert_eq!(names(&db), [r#"up{job="c"}"#]);
        let reordered = [m[1].clone(), m[0].clone()];
        assert_eq!(db.select(&reordered, range).unwrap().len(), 1);
        // A new matching series shows at once, in label order.
        db.append(&[write("up", "a", &[(2000, 1.0)])], AppendMode::Backfill, 0)
            .unwrap();
        assert_eq!(names(&db), [r#"up{job="a"}"#, r#"up{job="c"}"#]);
        // Samples appended to a known series need no new lookup to be seen.
        db.append(&[write("up", "a", &[(3000, 2.0)])], AppendMode::Backfill, 0)
            .unwrap();
        let a = &all_samples(&db, &m, range)[0].1;
        assert_eq!(a.len(), 2);
        // Series the head drops (cut into a block, then empty) are gone
        // from the head's answer; the block answers for them instead.
        db.flush_head().unwrap();
        assert_eq!(names(&db).len(), 2);
    }

    /// A store with `up{job="a"}` (100 samples, 15 s apart) and
    /// `up{job="b"}` (the first 40) flushed into a block.
    fn two_series_in_a_block(dir: &std::path::Path) -> (Db, Vec<(i64, f64)>) {
        let db = Db::open(dir, DbOptions::default()).unwrap();
        let pts: Vec<(i64, f64)> = (0..100).map(|i| (i * 15_000, i as f64 * 0.5)).collect();
        db.append(
            &[write("up", "a", &pts), write("up", "b", &pts[..40])],
            AppendMode::Backfill,
            0,
        )
        .unwrap();
        db.flush_head().unwrap();
        (db, pts)
    }

    #[test]
    fn an_uncached_reader_reads_the_same_samples_and_leaves_the_shared_cache_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = two_series_in_a_block(dir.path());
        // A sample still in the head: the reader sees both sources.
        db.append(
            &[write("up", "a", &[(1_600_000, 7.0)])],
            AppendMode::Backfill,
            0,
        )
        .unwrap();
        let m = [Matcher::equal("__name__", "up")];
        let range = TimeRange::new(300_000, 2_000_000);
        let uncached = db.uncached();
        let cold: Vec<Vec<Sample>> = uncached
            .select(&m, range)
            .unwrap()
            .iter()
            .map(|s| s.collect_samples().unwrap())
            .collect();
        assert_eq!(db.block_cache.cached_samples(), 0);
        let warm: Vec<Vec<Sample>> = db
            .select(&m, range)
            .unwrap()
            .iter()
            .map(|s| s.collect_samples().unwrap())
            .collect();
        assert_eq!(cold, warm);
        assert_eq!(cold[0].last(), Some(&Sample::new(1_600_000, 7.0)));
        assert!(db.block_cache.cached_samples() > 0);
        assert_eq!(
            uncached.label_values("job", &m, range).unwrap(),
            db.label_values("job", &m, range).unwrap()
        );
    }

    #[test]
    fn block_samples_are_decoded_on_read_cached_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (db, pts) = two_series_in_a_block(dir.path());
        assert!(db.stats().blocks > 0);
        let m = [Matcher::equal("__name__", "up")];
        let range = TimeRange::new(300_000, 1_000_000);
        // Selecting decodes nothing; reading does, once, for both series.
        let series = db.select(&m, range).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(db.block_cache.cached_samples(), 0);
        let a: Vec<Sample> = series[0].samples().unwrap().collect();
        let want: Vec<Sample> = pts
            .iter()
            .filter(|(t, _)| range.contains(*t))
            .map(|(t, v)| Sample::new(*t, *v))
            .collect();
        assert_eq!(a, want);
        assert_eq!(series[0].collect_samples().unwrap(), want);
        assert_eq!(db.block_cache.cached_samples(), 140);
        // Head and block parts of one series, and a head-only series: the
        // fast paths give what the merge gives.
        db.append(
            &[
                write("up", "a", &[(1_600_000, 7.0)]),
                write("up", "c", &[(310_000, 1.0)]),
            ],
            AppendMode::Backfill,
            0,
        )
        .unwrap();
        for s in db.select(&m, TimeRange::new(300_000, 2_000_000)).unwrap() {
            let merged: Vec<Sample> = s.samples().unwrap().collect();
            assert!(!merged.is_empty());
            assert_eq!(s.collect_samples().unwrap(), merged, "{}", s.labels);
        }
        assert_eq!(series[1].samples().unwrap().count(), 20);
        assert_eq!(db.block_cache.cached_samples(), 140);
        // A block whose samples cannot be decoded is an error on read.
        drop(series);
        let blocks = db.blocks();
        let path = blocks[0].dir().join(crate::block::FILE_SAMPLES);
        drop(blocks);
        drop(db);
        let bytes = std::fs::read(&path).unwrap();
        let mut bad = bytes.clone();
        // The first page (after the "PAR1" magic), not the footer: the
        // block still opens, its data does not decode.
        for b in &mut bad[4..40] {
            *b = 0xff;
        }
        std::fs::write(&path, bad).unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let series = db.select(&m, range).unwrap();
        let Err(err) = series[0].samples() else {
            panic!("a damaged block was read without error");
        };
        let err = err.to_string();
        assert!(err.contains("samples.parquet"), "{err}");
    }

    #[test]
    fn many_threads_decode_row_groups_of_one_block_at_once() {
        let dir = tempfile::tempdir().unwrap();
        // The smallest cache holds about half the row groups, so they are
        // decoded again and again, concurrently.
        let opts = DbOptions {
            block_cache_bytes: 0,
            ..Default::default()
        };
        let db = Db::open(dir.path(), opts).unwrap();
        let pts: Vec<(i64, f64)> = (0..1000).map(|i| (i * 15_000, i as f64)).collect();
        let series: Vec<SeriesSamples> = (0..1000)
            .map(|i| write("m", &format!("j{i:04}"), &pts))
            .collect();
        db.append(&series, AppendMode::Backfill, 0).unwrap();
        db.flush_head().unwrap();
        assert!(db.blocks()[0].num_row_groups() >= 12);
        let selected = db
            .select(&[Matcher::equal("__name__", "m")], TimeRange::ALL)
            .unwrap();
        assert_eq!(selected.len(), 1000);
        std::thread::scope(|s| {
            for t in 0..8usize {
                let selected = &selected;
                s.spawn(move || {
                    // Each thread walks the series from a different place,
                    // so different row groups are decoded at the same time.
                    for k in 0..selected.len() {
                        let one = &selected[(k * 37 + t * 71) % selected.len()];
                        let got = one.collect_samples().unwrap();
                        assert_eq!(got.len(), 1000, "{}", one.labels);
                        assert_eq!(got[999], Sample::new(999 * 15_000, 999.0));
                    }
                });
            }
        });
    }

    #[test]
    fn append_query_and_replay() {
        let dir = tempfile::tempdir().unwrap();
        let stale = f64::from_bits(STALE_NAN_BITS);
        {
            let db = Db::open(dir.path(), DbOptions::default()).unwrap();
            let out = db
                .append(
                    &[
                        write("up", "a", &[(1000, 1.0), (2000, 0.0), (3000, stale)]),
                        write("up", "b", &[(1000, 1.0)]),
                    ],
                    AppendMode::Live,
                    0,
                )
                .unwrap();
            assert_eq!(out.appended, 4);
            assert!(out.errors.is_empty());
        }
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let got = all_samples(&db, &[Matcher::equal("job", "a")], TimeRange::ALL);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, r#"up{job="a"}"#);
        assert_eq!(got[0].1.len(), 3);
        assert!(got[0].1[2].is_stale());
        let got = all_samples(
            &db,
            &[Matcher::equal("__name__", "up")],
            TimeRange::new(1500, 2500),
        );
        assert_eq!(got.len(), 1, "only job=a has data in range");
        assert_eq!(got[0].1, vec![Sample::new(2000, 0.0)]);
        // A range between two samples of one chunk selects nothing.
        let m = [Matcher::equal("__name__", "up")];
        assert!(db
            .select(&m, TimeRange::new(1100, 1900))
            .unwrap()
            .is_empty());
        assert!(db
            .series(&m, TimeRange::new(1100, 1900))
            .unwrap()
            .is_empty());
        assert_eq!(db.stats().head_series, 2);
    }

    /// A reader that starts as soon as a write is logged (where
    /// remote_write acknowledges), while its chunks are still being
    /// encoded, sees every sample of it.
    #[test]
    fn readers_after_the_acknowledgement_see_the_whole_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path(), DbOptions::default()).unwrap());
        const SERIES: usize = 300;
        let names: Vec<String> = (0..SERIES).map(|i| format!("s{i:03}")).collect();
        let (tx, rx) = std::sync::mpsc::channel::<i64>();
        let reader_db = db.clone();
        let reader = std::thread::spawn(move || {
            let m = [Matcher::equal("job", "ack")];
            for t in rx {
                let got = all_samples(&reader_db, &m, TimeRange::new(t, t));
                assert_eq!(got.len(), SERIES, "series with a sample at {t}");
                for (labels, samples) in got {
                    assert_eq!(samples, vec![Sample::new(t, t as f64)], "{labels} at {t}");
                }
            }
        });
        for k in 1..=40i64 {
            let t = k * 15_000;
            let pairs: Vec<[(&str, &str); 2]> = names
                .iter()
                .map(|n| [("__name__", n.as_str()), ("job", "ack")])
                .collect();
            let samples = [Sample::new(t, t as f64)];
            let inputs: Vec<crate::head::SeriesInput> = pairs
                .iter()
                .map(|p| crate::head::SeriesInput {
                    labels: crate::LabelsRef::from_sorted(p),
                    samples: &samples,
                })
                .collect();
            let out = db
                .append_inputs_then(&inputs, AppendMode::Live, t, |o| {
                    assert_eq!(o.appended, SERIES);
                    // Never blocks (as an acknowledgement must not: the
                    // write holds its series until applied); the reader
                    // usually queries while the write is being applied.
                    tx.send(t).unwrap();
                })
                .unwrap();
            assert_eq!(out.appended, SERIES);
        }
        drop(tx);
        reader.join().unwrap();
    }

    #[test]
    fn out_of_order_refused_duplicates_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        db.append(
            &[write("m", "a", &[(1000, 1.0), (2000, 2.0)])],
            AppendMode::Live,
            0,
        )
        .unwrap();
        let out = db
            .append(
                &[write(
                    "m",
                    "a",
                    &[(1500, 9.0), (2000, 2.0), (2000, 3.0), (3000, 3.0)],
                )],
                AppendMode::Live,
                0,
            )
            .unwrap();
        assert_eq!(out.appended, 1);
        assert_eq!(out.duplicates, 1);
        let reasons: Vec<_> = out.errors.iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            [RejectReason::OutOfOrder, RejectReason::DuplicateTimestamp]
        );
        assert!(
            out.errors[0].message.contains(r#"m{job="a"}"#),
            "{}",
            out.errors[0].message
        );
        assert_eq!(db.stats().rejected_total(), 2);
    }

    #[test]
    fn out_of_order_window_and_backfill_merge_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = DbOptions::default();
        opts.head.out_of_order_window_ms = 1000;
        {
            let db = Db::open(dir.path(), opts.clone()).unwrap();
            db.append(
                &[write("m", "a", &[(10_000, 1.0), (20_000, 2.0)])],
                AppendMode::Live,
                0,
            )
            .unwrap();
            let out = db
                .append(
                    &[write("m", "a", &[(19_500, 1.5), (5_000, 0.5)])],
                    AppendMode::Live,
                    0,
                )
                .unwrap();
            assert_eq!(out.appended, 1, "{:?}", out.errors);
            let out = db
                .append(
                    &[write("m", "a", &[(5_000, 0.5), (15_000, f64::NAN)])],
                    AppendMode::Backfill,
                    0,
                )
                .unwrap();
            assert_eq!(out.appended, 2);
        }
        let db = Db::open(dir.path(), opts).unwrap();
        let got = all_samples(&db, &[Matcher::equal("__name__", "m")], TimeRange::ALL);
        let ts: Vec<i64> = got[0].1.iter().map(|s| s.t).collect();
        assert_eq!(ts, [5_000, 10_000, 15_000, 19_500, 20_000]);
        assert!(got[0].1[2].v.is_nan());
    }

    #[test]
    fn invalid_series_refused_with_names() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let out = db
            .append(
                &[
                    write("1bad", "a", &[(1, 1.0)]),
                    SeriesSamples {
                        labels: LabelSet::from_pairs(&[("job", "x")]),
                        samples: vec![Sample::new(1, 1.0)],
                    },
                    SeriesSamples {
                        labels: LabelSet::from_pairs(&[("__name__", "ok"), ("a-b", "x")]),
                        samples: vec![Sample::new(1, 1.0)],
                    },
                    write("good", "a", &[(1, 1.0)]),
                ],
                AppendMode::Live,
                0,
            )
            .unwrap();
        assert_eq!(out.appended, 1);
        let reasons: Vec<_> = out.errors.iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            [
                RejectReason::InvalidMetricName,
                RejectReason::MissingMetricName,
                RejectReason::InvalidLabelName
            ]
        );
        assert!(out.errors[2].message.contains("a-b"));
        assert_eq!(db.stats().head_series, 1);
    }

    #[test]
    fn label_apis_respect_matchers_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        db.append(
            &[
                write("up", "a", &[(1000, 1.0)]),
                write("up", "b", &[(5000, 1.0)]),
                write("down", "c", &[(5000, 1.0)]),
            ],
            AppendMode::Live,
            0,
        )
        .unwrap();
        assert_eq!(
            db.label_names(&[], TimeRange::ALL).unwrap(),
            ["__name__", "job"]
        );
        assert_eq!(
            db.label_values("job", &[], TimeRange::ALL).unwrap(),
            ["a", "b", "c"]
        );
        assert_eq!(
            db.label_values("job", &[], TimeRange::new(4000, 6000))
                .unwrap(),
            ["b", "c"]
        );
        let m = Matcher::new(MatchOp::RegexMatch, "__name__", "up").unwrap();
        assert_eq!(
            db.label_values("job", &[m], TimeRange::new(0, 2000))
                .unwrap(),
            ["a"]
        );
    }

    /// Deterministic scrape data: `n` series, one sample each 15 s from `from` to `to`.
    fn scrape_data(n: usize, from: i64, to: i64) -> Vec<SeriesSamples> {
        (0..n)
            .map(|i| SeriesSamples {
                labels: LabelSet::from_pairs(&[("__name__", "node_metric"), ("i", &i.to_string())]),
                samples: (0..)
                    .map(|k| from + k * 15_000)
                    .take_while(|t| *t < to)
                    .map(|t| {
                        let v = match i % 4 {
                            0 => (t / 1000) as f64,                  // counter-like integer
                            1 => ((t / 15_000) % 97) as f64 / 100.0, // two decimals
                            2 => std::f64::consts::PI * t as f64,    // needs a float
                            _ => 1.0,                                // constant
                        };
                        Sample::new(t, v)
                    })
                    .collect(),
            })
            .collect()
    }

    fn dump(db: &Db) -> Vec<(String, Vec<(i64, u64)>)> {
        db.select(&[Matcher::equal("__name__", "node_metric")], TimeRange::ALL)
            .unwrap()
            .into_iter()
            .map(|s| {
                (
                    s.labels.to_string(),
                    s.samples().unwrap().map(|x| (x.t, x.v.to_bits())).collect(),
                )
            })
            .collect()
    }

    fn expected(data: &[SeriesSamples]) -> Vec<(String, Vec<(i64, u64)>)> {
        let mut v: Vec<_> = data
            .iter()
            .map(|s| {
                (
                    s.labels.to_string(),
                    s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn concurrent_writers_on_shared_series_with_cuts_store_each_sample_once() {
        let dir = tempfile::tempdir().unwrap();
        let base = 1_700_000_000_000;
        let data = scrape_data(12, base, base + 5 * 3_600_000);
        {
            let db = Db::open(dir.path(), DbOptions::default()).unwrap();
            std::thread::scope(|scope| {
                // Four writers race on the same series (as backfill, so
                // arrival order does not decide what is kept): every sample
                // arrives two or more times, and each write names its first
                // series twice; each must be stored exactly once.
                let n = data[0].samples.len();
                for w in 0..4 {
                    let (db, data) = (&db, &data);
                    scope.spawn(move || {
                        for k in (0..n).skip(w % 2) {
                            let mut write: Vec<SeriesSamples> = data
                                .iter()
                                .map(|s| SeriesSamples {
                                    labels: s.labels.clone(),
                                    samples: vec![s.samples[k]],
                                })
                                .collect();
                            write.push(write[0].clone());
                            db.append(&write, AppendMode::Backfill, 0).unwrap();
                        }
                    });
                }
                let db = &db;
                scope.spawn(move || {
                    for h in 1..=5 {
                        db.maintain(base + h * 3_600_000).unwrap();
                    }
                });
            });
            db.maintain(base + 5 * 3_600_000).unwrap();
            assert_eq!(dump(&db), expected(&data));
        }
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        assert_eq!(dump(&db), expected(&data), "after reopen");
    }

    #[test]
    fn head_is_cut_into_blocks_and_survives_reopen_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let base = 1_700_000_000_000;
        let data = scrape_data(8, base, base + 5 * 3_600_000);
        {
            let db = Db::open(dir.path(), DbOptions::default()).unwrap();
            for chunk in data.chunks(3) {
                db.append(chunk, AppendMode::Live, 0).unwrap();
            }
            let r = db.maintain(base + 5 * 3_600_000).unwrap();
            assert!(r.blocks_cut >= 1, "{r:?}");
            let st = db.stats();
            assert!(st.blocks >= 1 && st.block_samples > 0);
            assert_eq!(dump(&db), expected(&data));
            // Series and labels come from blocks and head alike.
            assert_eq!(
                db.series(&[Matcher::equal("i", "3")], TimeRange::ALL)
                    .unwrap()
                    .len(),
                1
            );
            let (min_t, _) = db.head.time_bounds().unwrap();
            assert!(min_t >= base, "head keeps only recent data");
        }
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        assert_eq!(
            dump(&db),
            expected(&data),
            "after reopen: blocks + replayed WAL, nothing twice"
        );
        let st = db.stats();
        let in_head: u64 = db
            .head
            .select(&[Matcher::equal("__name__", "node_metric")], TimeRange::ALL)
            .iter()
            .map(|s| s.samples().unwrap().count() as u64)
            .sum();
        let total: usize = data.iter().map(|s| s.samples.len()).sum();
        assert_eq!(
            st.block_samples + in_head,
            total as u64,
            "replay skipped what blocks hold"
        );
    }

    #[test]
    fn backfill_into_persisted_windows_then_flush_and_compact() {
        let dir = tempfile::tempdir().unwrap();
        let base = 1_700_006_400_000; // aligned to 2 h
        let data = scrape_data(4, base, base + 14 * 3_600_000);
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        db.append(&data, AppendMode::Live, 0).unwrap();
        db.maintain(0).unwrap();
        // Backfill a gap-free older stretch for a new series and an old sample for an existing one.
        let old = scrape_data(5, base - 3 * 3_600_000, base);
        db.append(&old, AppendMode::Backfill, 0).unwrap();
        db.flush_head().unwrap();
        assert_eq!(db.head.num_series(), 0, "everything persisted");
        let mut all = data.clone();
        for (i, o) in old.into_iter().enumerate() {
            if i < all.len() {
                let mut s = o.samples;
                s.extend(all[i].samples.clone());
                all[i].samples = s;
            } else {
                all.push(o);
            }
        }
        assert_eq!(dump(&db), expected(&all));
        // Complete 12 h windows were merged: fewer blocks than 2 h windows.
        let windows = (14 + 3) / 2;
        assert!(
            db.stats().blocks < windows as u64,
            "{} blocks",
            db.stats().blocks
        );
        drop(db);
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        assert_eq!(dump(&db), expected(&all));
    }

    #[test]
    fn retention_deletes_whole_blocks_past_the_horizon() {
        let dir = tempfile::tempdir().unwrap();
        let base = 1_700_006_400_000;
        let end = base + 26 * 3_600_000;
        let data = scrape_data(2, base, end);
        let mut opts = DbOptions::default();
        opts.head.retention_ms = 3_600_000;
        let db = Db::open(dir.path(), opts).unwrap();
        db.append(&data, AppendMode::Backfill, base).unwrap();
        db.flush_head().unwrap();
        let before = db.stats().blocks;
        let r = db.maintain(end).unwrap();
        assert!(r.blocks_deleted > 0 && db.stats().blocks < before, "{r:?}");
        let horizon = end - 3_600_000;
        assert!(db.blocks().iter().all(|b| b.meta.max_time >= horizon));
        let got = dump(&db);
        assert!(got
            .iter()
            .all(|(_, s)| s.last().is_some_and(|(t, _)| *t == end - 15_000)));
        // Size-based retention keeps at most the limit (the newest block stays).
        drop(db);
        let opts = DbOptions {
            retention_size_bytes: 1,
            ..Default::default()
        };
        let db = Db::open(dir.path(), opts).unwrap();
        db.maintain(end).unwrap();
        assert_eq!(db.stats().blocks, 0);
    }
}
