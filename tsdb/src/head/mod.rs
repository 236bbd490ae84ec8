//! The in-memory head: every series' recent data in compressed chunks, the
//! postings index over them, and the append path that puts each write in
//! the WAL before it touches memory. Split as Prometheus splits its head:
//! the series and their index (`series.rs`), appending (`append.rs`),
//! reading (`read.rs`), and cutting what is old into blocks (`cut.rs`).

mod append;
mod cut;
mod read;
mod series;

pub use cut::{CutItem, CutPlan};
pub(crate) use series::MemSeries;

use crate::chunk_file::ChunkFiles;
use crate::error::{AppendError, RejectReason, TsdbError};
use crate::labels::{Interner, LabelSet, LabelsRef};
use crate::limits::Limits;
use crate::match_cache::MatchCache;
use crate::sample::{Sample, Timestamp};
use crate::wal::{self, ReplaySource, WalRecord, WalWriter};
use append::{classify, Placement};
use series::Index;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
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
}
