//! The read interface the PromQL engine and the HTTP APIs use.

use crate::block::{Block, BlockSamples};
use crate::chunk::{ChunkIter, FrozenChunk, RestartPoints};
use crate::error::TsdbError;
use crate::labels::LabelSet;
use crate::matcher::Matcher;
use crate::row_group_cache::RowGroupCache;
use crate::sample::{Sample, Timestamp};
use std::iter::Peekable;
use std::sync::Arc;

/// An inclusive time range in milliseconds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange {
        start: Timestamp::MIN,
        end: Timestamp::MAX,
    };

    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        TimeRange { start, end }
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t <= self.end
    }

    pub fn overlaps(&self, min_t: Timestamp, max_t: Timestamp) -> bool {
        min_t <= self.end && max_t >= self.start
    }
}

/// Selects series and their label metadata over a time range.
pub trait Querier {
    /// Series matching all matchers with at least one sample in `range`,
    /// sorted by labels. Samples are decoded lazily by [`Series::samples`].
    fn select(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<Series>, TsdbError>;

    /// Labels of the series matching all matchers with samples in `range`,
    /// sorted; no sample data is touched beyond checking the range.
    fn series(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<LabelSet>, TsdbError>;

    /// Sorted label names of the series matching `matchers` (all series if
    /// none) that have samples in `range`.
    fn label_names(&self, matchers: &[Matcher], range: TimeRange)
        -> Result<Vec<String>, TsdbError>;

    /// Sorted values of label `name` on matching series with samples in `range`.
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<Vec<String>, TsdbError>;
}

/// One source of a series' samples, sorted by time.
#[derive(Clone, Debug)]
pub(crate) enum SeriesPart {
    /// Head data: compressed chunks (shared, not copied) and out-of-order
    /// samples kept beside them.
    Head {
        chunks: Vec<FrozenChunk>,
        extra: Vec<Sample>,
        /// The series' newest in-order sample when the part was taken
        /// (the end of the last chunk): an instant lookup at or after it
        /// needs no decoding.
        last: Option<Sample>,
        /// Where the open chunk (the last of `chunks`, when it is a
        /// snapshot of one) may be decoded from.
        restarts: Option<RestartPoints>,
    },
    /// One series of a block, decoded when its samples are first read,
    /// through the store's row-group cache or, for a query that bypasses
    /// it, the query's own.
    Block {
        block: Arc<Block>,
        id: u32,
        cache: Option<Arc<RowGroupCache>>,
    },
}

/// One selected series: its labels and its data from the head and from
/// blocks. Head chunks are shared with the store rather than copied.
#[derive(Clone, Debug)]
pub struct Series {
    pub labels: LabelSet,
    pub(crate) parts: Vec<SeriesPart>,
    pub(crate) range: TimeRange,
}

impl Series {
    /// The series' samples in the selected range, in time order, each
    /// timestamp once (where sources overlap, the earlier part wins).
    /// Block data is decoded here, on first use, not when selected; a
    /// block that cannot be read is an error.
    pub fn samples(&self) -> Result<SampleIter, TsdbError> {
        Ok(SampleIter {
            parts: self
                .parts
                .iter()
                .map(|p| part_iter(p, self.range))
                .collect::<Result<_, _>>()?,
            range: self.range,
        })
    }

    /// The samples of [`Self::samples`] in a vector: each part is copied
    /// (a block slice) or decoded in bulk (head chunks), and parts that
    /// follow each other in time are concatenated without a merge.
    pub fn collect_samples(&self) -> Result<Vec<Sample>, TsdbError> {
        let mut out: Vec<Sample> = Vec::new();
        for p in &self.parts {
            let before = out.len();
            let prev_last = out.last().map(|s| s.t);
            append_part(p, self.range, &mut out)?;
            // Parts normally follow each other in time; only an overlap
            // (backfill into a persisted window) needs the merge.
            if let (Some(l), Some(f)) = (prev_last, out.get(before)) {
                if f.t <= l {
                    let part = out.split_off(before);
                    out = merge_earlier_wins(&out, &part);
                }
            }
        }
        Ok(out)
    }

    /// The newest sample in the selected range (what an instant selector
    /// reads), found without decoding the whole range: the head knows its
    /// newest sample, a head chunk is read only up to the range's end,
    /// and a block series is searched.
    pub fn last_sample(&self) -> Result<Option<Sample>, TsdbError> {
        let mut best: Option<Sample> = None;
        for p in &self.parts {
            // Where parts hold the same timestamp the earlier one wins.
            if let Some(s) = part_last(p, self.range)? {
                if best.is_none_or(|b| s.t > b.t) {
                    best = Some(s);
                }
            }
        }
        Ok(best)
    }

    pub(crate) fn merge(&mut self, other: Series) {
        self.parts.extend(other.parts);
    }
}

/// Appends one part's samples in `range` to `out`.
fn append_part(p: &SeriesPart, range: TimeRange, out: &mut Vec<Sample>) -> Result<(), TsdbError> {
    match p {
        SeriesPart::Block { block, id, cache } => {
            let samples = block.series_samples(*id, cache.as_deref())?;
            let (ts, vs) = (samples.timestamps(), samples.values());
            let lo = ts.partition_point(|t| *t < range.start);
            let hi = ts.partition_point(|t| *t <= range.end).max(lo);
            out.extend(
                ts[lo..hi]
                    .iter()
                    .zip(&vs[lo..hi])
                    .map(|(t, v)| Sample::new(*t, *v)),
            );
        }
        SeriesPart::Head {
            chunks,
            extra,
            restarts,
            ..
        } if extra.is_empty() => {
            for c in chunks {
                c.decode_into_with(restarts.as_ref(), range.start, range.end, out);
            }
        }
        SeriesPart::Head { chunks, extra, .. } => {
            out.extend(HeadIter::new(chunks.clone(), extra.clone(), range));
        }
    }
    Ok(())
}

/// One part's newest sample in `range`.
fn part_last(p: &SeriesPart, range: TimeRange) -> Result<Option<Sample>, TsdbError> {
    match p {
        SeriesPart::Block { block, id, cache } => {
            let samples = block.series_samples(*id, cache.as_deref())?;
            let ts = samples.timestamps();
            // An instant query at or after the block's end (the usual
            // case) needs the last sample: one read instead of a search.
            let hi = match ts.last() {
                Some(l) if *l <= range.end => ts.len(),
                _ => ts.partition_point(|t| *t <= range.end),
            };
            Ok(hi
                .checked_sub(1)
                .and_then(|i| samples.get(i))
                .filter(|x| x.t >= range.start))
        }
        SeriesPart::Head {
            chunks,
            extra,
            last,
            ..
        } if extra.is_empty() => {
            let newest = chunks.last().map(|c| c.max_t());
            if let Some(l) = last.filter(|l| Some(l.t) == newest && range.contains(l.t)) {
                return Ok(Some(l));
            }
            for c in chunks.iter().rev() {
                if c.min_t() > range.end {
                    continue;
                }
                if c.max_t() < range.start {
                    break;
                }
                let found = c
                    .iter()
                    .take_while(|s| s.t <= range.end)
                    .filter(|s| s.t >= range.start)
                    .last();
                if found.is_some() {
                    return Ok(found);
                }
            }
            Ok(None)
        }
        SeriesPart::Head { chunks, extra, .. } => {
            Ok(HeadIter::new(chunks.clone(), extra.clone(), range).last())
        }
    }
}

/// Two time-sorted lists merged; at a timestamp in both, `a`'s sample is kept.
fn merge_earlier_wins(a: &[Sample], b: &[Sample]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].t.cmp(&b[j].t) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

type PartIter = Peekable<Box<dyn Iterator<Item = Sample> + Send>>;

/// Iterates a block series' samples from the first one at or after `start`.
struct BlockIter {
    samples: BlockSamples,
    pos: usize,
}

impl Iterator for BlockIter {
    type Item = Sample;
    fn next(&mut self) -> Option<Sample> {
        let s = self.samples.get(self.pos)?;
        self.pos += 1;
        Some(s)
    }
}

fn part_iter(p: &SeriesPart, range: TimeRange) -> Result<PartIter, TsdbError> {
    let it: Box<dyn Iterator<Item = Sample> + Send> = match p {
        SeriesPart::Head { chunks, extra, .. } => {
            Box::new(HeadIter::new(chunks.clone(), extra.clone(), range))
        }
        SeriesPart::Block { block, id, cache } => {
            let samples = block.series_samples(*id, cache.as_deref())?;
            let pos = samples.timestamps().partition_point(|t| *t < range.start);
            Box::new(BlockIter { samples, pos })
        }
    };
    Ok(it.peekable())
}

/// Merges the parts of a series, dropping repeated timestamps, clipped to a range.
pub struct SampleIter {
    parts: Vec<PartIter>,
    range: TimeRange,
}

impl Iterator for SampleIter {
    type Item = Sample;
    fn next(&mut self) -> Option<Sample> {
        let mut best: Option<(usize, Sample)> = None;
        for (i, p) in self.parts.iter_mut().enumerate() {
            if let Some(s) = p.peek() {
                if best.is_none_or(|(_, b)| s.t < b.t) {
                    best = Some((i, *s));
                }
            }
        }
        let (_, s) = best?;
        if s.t > self.range.end {
            return None;
        }
        for p in &mut self.parts {
            if p.peek().is_some_and(|x| x.t == s.t) {
                p.next();
            }
        }
        Some(s)
    }
}

/// Merges head chunk samples with out-of-order samples, clipped to a range.
struct HeadIter {
    chunks: std::vec::IntoIter<FrozenChunk>,
    current: Option<Peekable<ChunkIter>>,
    extra: Peekable<std::vec::IntoIter<Sample>>,
    range: TimeRange,
}

impl HeadIter {
    fn new(chunks: Vec<FrozenChunk>, extra: Vec<Sample>, range: TimeRange) -> Self {
        HeadIter {
            chunks: chunks.into_iter(),
            current: None,
            extra: extra.into_iter().peekable(),
            range,
        }
    }

    fn peek_chunk(&mut self) -> Option<Sample> {
        loop {
            if let Some(it) = &mut self.current {
                while let Some(s) = it.peek() {
                    if s.t < self.range.start {
                        it.next();
                    } else {
                        return Some(*s);
                    }
                }
            }
            let next = self
                .chunks
                .by_ref()
                .find(|c| c.max_t() >= self.range.start)?;
            self.current = Some(next.iter().peekable());
        }
    }
}

impl Iterator for HeadIter {
    type Item = Sample;
    fn next(&mut self) -> Option<Sample> {
        while self.extra.peek().is_some_and(|s| s.t < self.range.start) {
            self.extra.next();
        }
        let c = self.peek_chunk();
        let e = self.extra.peek().copied();
        let s = match (c, e) {
            (None, None) => return None,
            (Some(c), None) => c,
            (None, Some(e)) => e,
            (Some(c), Some(e)) => {
                if e.t < c.t {
                    e
                } else {
                    if e.t == c.t {
                        // The same timestamp twice: the in-order chunk wins.
                        self.extra.next();
                    }
                    c
                }
            }
        };
        if s.t > self.range.end {
            return None;
        }
        if c.is_some_and(|c| c.t == s.t) {
            if let Some(it) = &mut self.current {
                it.next();
            }
        } else {
            self.extra.next();
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::OpenChunk;
    use proptest::prelude::*;

    fn head_part(ts: &[i64], tag: f64, extra: &[i64]) -> SeriesPart {
        let mut c = OpenChunk::new();
        for &t in ts {
            c.push(Sample::new(t, tag));
        }
        SeriesPart::Head {
            chunks: vec![c.freeze()],
            extra: extra.iter().map(|&t| Sample::new(t, -tag)).collect(),
            last: None,
            restarts: None,
        }
    }

    fn sorted(mut v: Vec<i64>) -> Vec<i64> {
        v.sort_unstable();
        v.dedup();
        v
    }

    proptest! {
        /// The bulk path answers exactly as the sample-by-sample merge,
        /// whether parts follow each other, overlap or repeat timestamps.
        #[test]
        fn collect_samples_equals_the_merge(
            a in prop::collection::vec(0i64..400, 0..60),
            b in prop::collection::vec(0i64..400, 0..60),
            extra in prop::collection::vec(0i64..400, 0..5),
            lo in 0i64..400,
            len in 0i64..400,
        ) {
            let (a, b, extra) = (sorted(a), sorted(b), sorted(extra));
            let extra: Vec<i64> = extra.into_iter().filter(|t| a.binary_search(t).is_err()).collect();
            let s = Series {
                labels: LabelSet::default(),
                parts: vec![head_part(&a, 1.0, &extra), head_part(&b, 2.0, &[])],
                range: TimeRange::new(lo, lo + len),
            };
            let merged: Vec<Sample> = s.samples().unwrap().collect();
            prop_assert_eq!(s.collect_samples().unwrap(), merged);
        }

        /// The instant lookup finds the merge's newest sample, whether or
        /// not the head part knows its newest sample, across chunks.
        #[test]
        fn last_sample_is_the_merges_last(
            a in prop::collection::vec(0i64..400, 0..60),
            b in prop::collection::vec(0i64..400, 0..60),
            extra in prop::collection::vec(0i64..400, 0..3),
            knows_last in any::<bool>(),
            lo in 0i64..400,
            len in 0i64..400,
        ) {
            let (a, b, extra) = (sorted(a), sorted(b), sorted(extra));
            let extra: Vec<i64> = extra.into_iter().filter(|t| b.binary_search(t).is_err()).collect();
            let s = Series {
                labels: LabelSet::default(),
                parts: vec![chunked_part(&a, 1.0, &[], knows_last), chunked_part(&b, 2.0, &extra, knows_last)],
                range: TimeRange::new(lo, lo + len),
            };
            let merged: Vec<Sample> = s.samples().unwrap().collect();
            prop_assert_eq!(s.last_sample().unwrap(), merged.last().copied());
        }
    }

    /// A head part of chunks of up to 7 samples each.
    fn chunked_part(ts: &[i64], tag: f64, extra: &[i64], knows_last: bool) -> SeriesPart {
        let chunks = ts
            .chunks(7)
            .map(|part| {
                let mut c = OpenChunk::new();
                for &t in part {
                    c.push(Sample::new(t, tag + t as f64));
                }
                c.freeze()
            })
            .collect();
        SeriesPart::Head {
            chunks,
            extra: extra.iter().map(|&t| Sample::new(t, -tag)).collect(),
            last: ts
                .last()
                .filter(|_| knows_last)
                .map(|&t| Sample::new(t, tag + t as f64)),
            restarts: None,
        }
    }
}
