//! Making blocks: writing a head cut out as blocks, and merging blocks into
//! longer (or de-overlapped) ones. Both stream series in label order so
//! memory stays bounded by one row group per input.

use crate::block::{Block, BlockMeta};
use crate::block_writer::BlockWriter;
use crate::error::TsdbError;
use crate::head::{block_window, CutPlan, BLOCK_RANGE_MS};
use crate::labels::LabelSet;
use crate::sample::{Sample, Timestamp};
use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Block ids sort by time: `<min_t>-<unique>`.
pub fn new_block_id(min_t: Timestamp) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{:014}-{nanos:016x}{seq:04x}", min_t.max(0))
}

/// Merges two sorted sample lists; on equal timestamps `a` wins.
pub fn merge_samples(a: Vec<Sample>, b: Vec<Sample>) -> Vec<Sample> {
    if b.is_empty() {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.t == y.t => {
                out.push(*x);
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.t < y.t => {
                out.push(*x);
                i += 1;
            }
            (Some(_), Some(y)) | (None, Some(y)) => {
                out.push(*y);
                j += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// Writes what a head cut took: one block per 2 h window it touches.
pub fn write_cut(plan: &CutPlan, blocks_dir: &Path) -> Result<Vec<BlockMeta>, TsdbError> {
    let windows: BTreeSet<i64> = plan
        .items
        .iter()
        .flat_map(|it| {
            let (a, b) = (block_window(it.min_t()), block_window(it.max_t()));
            // Sparse backfill can span many windows; list only occupied ones.
            if b - a > 64 {
                it.samples()
                    .iter()
                    .map(|s| block_window(s.t))
                    .collect::<Vec<_>>()
            } else {
                (a..=b).collect()
            }
        })
        .collect();
    let mut metas = Vec::new();
    for w in windows {
        // Saturating: the last window of time ends at the end of time.
        let (start, end) = (
            w.saturating_mul(BLOCK_RANGE_MS),
            w.saturating_add(1).saturating_mul(BLOCK_RANGE_MS),
        );
        let mut writer = BlockWriter::new(blocks_dir, &new_block_id(start))?;
        for it in plan
            .items
            .iter()
            .filter(|it| it.overlaps_window(start, end))
        {
            let samples: Vec<Sample> = it
                .samples()
                .into_iter()
                .filter(|s| s.t >= start && s.t < end)
                .collect();
            writer.add_series(&it.labels, &samples)?;
        }
        if let Some(meta) = writer.finish(1, Vec::new())? {
            metas.push(meta);
        }
    }
    Ok(metas)
}

/// Pulls one block's series in label order, a row group at a time.
struct Cursor<'a> {
    block: &'a Block,
    scan: crate::block::BlockScan<'a>,
    next_rg: usize,
    buf: VecDeque<(u32, Vec<Sample>)>,
}

impl<'a> Cursor<'a> {
    fn peek(&mut self) -> Result<Option<&LabelSet>, TsdbError> {
        while self.buf.is_empty() && self.next_rg < self.block.num_row_groups() {
            let rg = self.scan.row_group_series(self.next_rg)?;
            let block = self.block;
            self.buf = rg
                .series()
                .map(|(id, values)| {
                    let ts = block.series_timestamps(id);
                    let samples = ts.iter().zip(values).map(|(t, v)| Sample::new(*t, *v));
                    (id, samples.collect())
                })
                .collect();
            self.next_rg += 1;
        }
        Ok(self.buf.front().map(|(id, _)| self.block.labels_of(*id)))
    }

    fn take(&mut self) -> Option<Vec<Sample>> {
        self.buf.pop_front().map(|(_, s)| s)
    }
}

/// Merges blocks (in the given order; earlier blocks win on equal
/// timestamps) into one new block. Does not delete the inputs.
pub fn merge_blocks(
    blocks: &[Arc<Block>],
    blocks_dir: &Path,
    level: u32,
) -> Result<Option<BlockMeta>, TsdbError> {
    let min_t = blocks.iter().map(|b| b.meta.min_time).min().unwrap_or(0);
    let mut writer = BlockWriter::new(blocks_dir, &new_block_id(min_t))?;
    let mut cursors: Vec<Cursor> = blocks
        .iter()
        .map(|b| {
            Ok(Cursor {
                block: b,
                scan: b.scan()?,
                next_rg: 0,
                buf: VecDeque::new(),
            })
        })
        .collect::<Result<_, TsdbError>>()?;
    loop {
        // The smallest label set among the cursors' heads.
        let mut smallest: Option<LabelSet> = None;
        for c in &mut cursors {
            if let Some(l) = c.peek()? {
                if smallest.as_ref().is_none_or(|s| l < s) {
                    smallest = Some(l.clone());
                }
            }
        }
        let Some(labels) = smallest else { break };
        let mut samples = Vec::new();
        for c in &mut cursors {
            if c.peek()? == Some(&labels) {
                samples = merge_samples(samples, c.take().unwrap_or_default());
            }
        }
        writer.add_series(&labels, &samples)?;
    }
    let sources = blocks.iter().map(|b| b.meta.id.clone()).collect();
    writer.finish(level, sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_dedups_with_first_winning() {
        let a = vec![Sample::new(1, 1.0), Sample::new(3, 3.0)];
        let b = vec![
            Sample::new(2, 2.0),
            Sample::new(3, 9.0),
            Sample::new(4, 4.0),
        ];
        let m = merge_samples(a, b);
        assert_eq!(
            m.iter().map(|s| (s.t, s.v)).collect::<Vec<_>>(),
            [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
        );
    }
}
