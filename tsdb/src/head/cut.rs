//! Cutting the head: what is older than a boundary is planned (under the
//! WAL lock, referring to chunks rather than copying them), written to
//! blocks by the store, then dropped from memory with a WAL checkpoint.

use super::series::MemSeries;
use super::{lock, Head};
use crate::chunk::{FrozenChunk, OpenChunk};
use crate::error::TsdbError;
use crate::labels::LabelSet;
use crate::querier::{Series, SeriesPart, TimeRange};
use crate::sample::{Sample, SeriesRef, Timestamp};
use crate::wal;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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

impl Head {
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

    /// Deletes the head chunk file being written when nothing in it is
    /// live (call after a cut plan is dropped: it names chunks).
    pub fn release_idle_chunk_files(&self) {
        if let Some(f) = &self.chunk_files {
            f.release_idle();
        }
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
}
