//! Reading persisted blocks.
//!
//! A block is a directory holding one time range of data:
//!
//! - `series.parquet`: one row per series: `series_id`, `group_id`,
//!   `scale`, `multiplier`, `row_group`, `value_base`, and one nullable string column per
//!   label name.
//! - `timestamps.parquet`: `group_id`, `sample_index`, `timestamp`. Series
//!   scraped together share one timestamp sequence (a group), stored once.
//! - `samples.parquet`: `series_id`, `sample_index`, `value_int`,
//!   `value_float`. The value is `value_float` when set, else
//!   `(value_int + value_base) * multiplier / 10^scale` (exact: only values
//!   that round-trip bit for bit are stored as decimals).
//! - `meta.json`: time range, counts, compaction level and source blocks.
//!
//! See docs/STORAGE.md for the schema and a DuckDB query that joins them.

use crate::error::TsdbError;
use crate::labels::{Interner, Label, LabelSet};
use crate::matcher::Matcher;
use crate::positional_file::PositionalFile;
use crate::postings::MemPostings;
use crate::querier::TimeRange;
use crate::row_group_cache::{DecodedRowGroup, RowGroupCache};
use crate::sample::{Sample, SeriesRef, Timestamp};
use parquet::data_type::{DoubleType, Int32Type, Int64Type};
use parquet::file::reader::{FileReader, RowGroupReader};
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::record::Field;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Gives each opened block its own key in the row-group cache.
static NEXT_CACHE_KEY: AtomicU64 = AtomicU64::new(1);

pub const FILE_SERIES: &str = "series.parquet";
pub const FILE_TIMESTAMPS: &str = "timestamps.parquet";
pub const FILE_SAMPLES: &str = "samples.parquet";
pub const META_FILE: &str = "meta.json";

// series.parquet's fixed columns. Their `__` prefix is reserved for
// internal use by Prometheus, so no ordinary label name collides with them.
pub const COL_SERIES_ID: &str = "__series_id";
pub const COL_GROUP_ID: &str = "__group_id";
pub const COL_SCALE: &str = "__scale";
pub const COL_MULTIPLIER: &str = "__multiplier";
pub const COL_ROW_GROUP: &str = "__row_group";
/// Added to a series' stored `value_int`s (format 2 on): see `BlockWriter`.
pub const COL_VALUE_BASE: &str = "__value_base";
const FIXED_COLUMNS: [&str; 6] = [
    COL_SERIES_ID,
    COL_GROUP_ID,
    COL_SCALE,
    COL_MULTIPLIER,
    COL_ROW_GROUP,
    COL_VALUE_BASE,
];
/// Prefix for a label whose name would collide with a fixed column.
const COLLIDING_LABEL_PREFIX: &str = "label:";

/// The column that holds label `name` in series.parquet.
pub fn label_column(name: &str) -> String {
    if FIXED_COLUMNS.contains(&name) || name.starts_with(COLLIDING_LABEL_PREFIX) {
        format!("{COLLIDING_LABEL_PREFIX}{name}")
    } else {
        name.to_string()
    }
}

fn column_label(column: &str) -> &str {
    column
        .strip_prefix(COLLIDING_LABEL_PREFIX)
        .unwrap_or(column)
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BlockMeta {
    pub id: String,
    /// Oldest and newest sample, inclusive, in ms.
    pub min_time: Timestamp,
    pub max_time: Timestamp,
    pub num_series: u64,
    pub num_samples: u64,
    /// 1 for a block cut from the head, +1 per compaction.
    pub level: u32,
    /// Blocks this one replaced; they are deleted if still present at open.
    pub sources: Vec<String>,
    /// Layout version: 2 adds `__value_base` to series.parquet (absent in
    /// older meta.json files, which are version 1).
    #[serde(default = "format_v1")]
    pub format: u32,
}

/// The layout new blocks are written in.
pub const BLOCK_FORMAT: u32 = 2;

fn format_v1() -> u32 {
    1
}

impl BlockMeta {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn pq(path: &Path, e: impl std::fmt::Display) -> TsdbError {
    TsdbError::io(path, std::io::Error::other(format!("parquet: {e}")))
}

struct BlockSeries {
    labels: LabelSet,
    group: u32,
    scale: u32,
    multiplier: i64,
    row_group: usize,
    value_base: i64,
}

/// An open block: its series index in memory, samples read on demand.
pub struct Block {
    pub meta: BlockMeta,
    dir: PathBuf,
    series: Vec<BlockSeries>,
    postings: MemPostings,
    groups: Vec<Arc<[Timestamp]>>,
    bytes: u64,
    /// Opened once: parses the footer once, and keeps the data readable
    /// by queries in flight even after retention deletes the files. Read
    /// by positional reads: queries decode row groups from many threads at
    /// once, and a `File` reader would share one seek offset between them.
    samples: SerializedFileReader<PositionalFile>,
    cache: Arc<RowGroupCache>,
    cache_key: u64,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("id", &self.meta.id)
            .field("series", &self.series.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        self.cache.forget_block(self.cache_key);
    }
}

/// One series' samples in a block: its values, a range of a decoded row
/// group shared with the cache and other readers, and its timestamps, the
/// timestamp group the block holds for every series that shares it.
#[derive(Clone, Debug)]
pub struct BlockSamples {
    row_group: Arc<DecodedRowGroup>,
    range: std::ops::Range<usize>,
    timestamps: Arc<[Timestamp]>,
}

impl BlockSamples {
    /// The samples' timestamps, ascending; as many as [`Self::values`].
    pub fn timestamps(&self) -> &[Timestamp] {
        // The decode checked that a series has a value per timestamp.
        self.timestamps.get(..self.range.len()).unwrap_or(&[])
    }

    pub fn values(&self) -> &[f64] {
        &self.row_group.values()[self.range.clone()]
    }

    pub fn len(&self) -> usize {
        self.timestamps().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th sample.
    pub fn get(&self, i: usize) -> Option<Sample> {
        let t = *self.timestamps().get(i)?;
        Some(Sample::new(t, *self.values().get(i)?))
    }
}

impl Block {
    pub fn open(
        dir: &Path,
        interner: &Interner,
        cache: Arc<RowGroupCache>,
    ) -> Result<Block, TsdbError> {
        let meta_path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&meta_path).map_err(|e| TsdbError::io(&meta_path, e))?;
        let meta: BlockMeta = serde_json::from_str(&text).map_err(|e| pq(&meta_path, e))?;

        let series_path = dir.join(FILE_SERIES);
        let reader = open_reader(&series_path)?;
        // Leading fixed columns; label columns follow.
        let fixed = if meta.format >= 2 { 6 } else { 5 };
        let mut series = Vec::with_capacity(meta.num_series as usize);
        let mut postings = MemPostings::default();
        for row in reader.get_row_iter(None).map_err(|e| pq(&series_path, e))? {
            let row = row.map_err(|e| pq(&series_path, e))?;
            let mut ints = [0i64; 6];
            let mut labels = Vec::new();
            for (i, (name, field)) in row.get_column_iter().enumerate() {
                match (i, field) {
                    (i, Field::Int(v)) if i < fixed => ints[i] = i64::from(*v),
                    (i, Field::Long(v)) if i < fixed => ints[i] = *v,
                    (i, other) if i < fixed => {
                        return Err(pq(&series_path, format!("column {name} holds {other:?}")))
                    }
                    (_, Field::Str(v)) => labels.push(Label::new(column_label(name), v.as_str())),
                    (_, Field::Null) => {}
                    (_, other) => {
                        return Err(pq(
                            &series_path,
                            format!("label column {name} holds {other:?}"),
                        ))
                    }
                }
            }
            if ints[0] as usize != series.len() {
                return Err(pq(
                    &series_path,
                    format!("series_id {} out of sequence", ints[0]),
                ));
            }
            let labels = interner.intern(LabelSet::from_labels(labels));
            postings.add(SeriesRef(series.len() as u64), &labels);
            series.push(BlockSeries {
                labels,
                group: ints[1] as u32,
                scale: ints[2] as u32,
                multiplier: ints[3],
                row_group: ints[4] as usize,
                value_base: ints[5],
            });
        }

        let ts_path = dir.join(FILE_TIMESTAMPS);
        let reader = open_reader(&ts_path)?;
        let mut groups_raw: Vec<Vec<Timestamp>> = Vec::new();
        for rg in 0..reader.num_row_groups() {
            let rgr = reader.get_row_group(rg).map_err(|e| pq(&ts_path, e))?;
            let g = read_i32(&*rgr, 0, &ts_path)?;
            let t = read_i64(&*rgr, 2, &ts_path)?.0;
            for (gid, t) in g.into_iter().zip(t) {
                let gid = gid as usize;
                if gid >= groups_raw.len() {
                    groups_raw.resize_with(gid + 1, Vec::new);
                }
                groups_raw[gid].push(t);
            }
        }
        let groups: Vec<Arc<[Timestamp]>> = groups_raw.into_iter().map(Arc::from).collect();
        if let Some((id, s)) = series
            .iter()
            .enumerate()
            .find(|(_, s)| s.group as usize >= groups.len())
        {
            return Err(pq(
                &series_path,
                format!(
                    "series_id {id} names timestamp group {} of {}",
                    s.group,
                    groups.len()
                ),
            ));
        }
        let bytes = [FILE_SERIES, FILE_TIMESTAMPS, FILE_SAMPLES, META_FILE]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum();
        let samples = open_positional(&dir.join(FILE_SAMPLES))?;
        Ok(Block {
            meta,
            dir: dir.to_path_buf(),
            series,
            postings,
            groups,
            bytes,
            samples,
            cache,
            cache_key: NEXT_CACHE_KEY.fetch_add(1, Ordering::Relaxed),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn overlaps(&self, range: TimeRange) -> bool {
        range.overlaps(self.meta.min_time, self.meta.max_time)
    }

    fn covered_by(&self, range: TimeRange) -> bool {
        range.start <= self.meta.min_time && self.meta.max_time <= range.end
    }

    fn ids(&self, matchers: &[Matcher]) -> Vec<u32> {
        let refs = if matchers.is_empty() {
            self.postings.all().to_vec()
        } else {
            self.postings.select(matchers)
        };
        refs.into_iter().map(|r| r.0 as u32).collect()
    }

    pub fn labels_of(&self, id: u32) -> &LabelSet {
        &self.series[id as usize].labels
    }

    pub fn num_series(&self) -> u32 {
        self.series.len() as u32
    }

    /// Series ids matching `matchers` (all if empty) that have samples in `range`.
    pub fn series_in(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<u32>, TsdbError> {
        if !self.overlaps(range) {
            return Ok(Vec::new());
        }
        let ids = self.ids(matchers);
        if self.covered_by(range) {
            return Ok(ids);
        }
        // Partial overlap: the group timestamps answer without reading values.
        Ok(ids
            .into_iter()
            .filter(|id| {
                let g = &self.groups[self.series[*id as usize].group as usize];
                let i = g.partition_point(|t| *t < range.start);
                g.get(i).is_some_and(|t| *t <= range.end)
            })
            .collect())
    }

    pub fn label_names(
        &self,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<BTreeSet<String>, TsdbError> {
        if matchers.is_empty() && self.covered_by(range) {
            return Ok(self.postings.label_names().map(String::from).collect());
        }
        let mut out = BTreeSet::new();
        for id in self.series_in(matchers, range)? {
            for l in self.series[id as usize].labels.iter() {
                if !out.contains(l.name) {
                    out.insert(l.name.to_string());
                }
            }
        }
        Ok(out)
    }

    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<BTreeSet<String>, TsdbError> {
        if matchers.is_empty() && self.covered_by(range) {
            return Ok(self.postings.label_values(name).map(String::from).collect());
        }
        let mut out = BTreeSet::new();
        for id in self.series_in(matchers, range)? {
            if let Some(v) = self.series[id as usize].labels.get(name) {
                if !out.contains(v) {
                    out.insert(v.to_string());
                }
            }
        }
        Ok(out)
    }

    /// The samples of series `id`, from the cache or by decoding its row
    /// group (which then serves the other series of that row group too):
    /// the store's shared cache, or `cache` when given.
    pub fn series_samples(
        &self,
        id: u32,
        cache: Option<&RowGroupCache>,
    ) -> Result<BlockSamples, TsdbError> {
        let path = || self.dir.join(FILE_SAMPLES);
        let Some(series) = self.series.get(id as usize) else {
            return Err(pq(&path(), format!("no series_id {id} in this block")));
        };
        let rg = series.row_group;
        let cache = cache.unwrap_or(&self.cache);
        let row_group = cache.get_or_decode((self.cache_key, rg), || {
            self.read_row_group(&self.samples, rg, &path())
        })?;
        let range = row_group.position(id).unwrap_or(0..0);
        Ok(BlockSamples {
            row_group,
            range,
            timestamps: self
                .groups
                .get(series.group as usize)
                .cloned()
                .unwrap_or_else(|| Arc::from([])),
        })
    }

    /// The timestamps of series `id`'s samples (empty for an unknown id).
    pub(crate) fn series_timestamps(&self, id: u32) -> &[Timestamp] {
        self.series
            .get(id as usize)
            .and_then(|s| self.groups.get(s.group as usize))
            .map_or(&[], |g| &g[..])
    }

    /// Every series of one row group, decoded (not cached).
    fn read_row_group(
        &self,
        reader: &dyn FileReader,
        rg: usize,
        path: &Path,
    ) -> Result<DecodedRowGroup, TsdbError> {
        let rgr = reader.get_row_group(rg).map_err(|e| pq(path, e))?;
        let sid = read_i32(&*rgr, 0, path)?;
        let idx = read_i32(&*rgr, 1, path)?;
        let (ints, int_def) = read_i64(&*rgr, 2, path)?;
        let (floats, _) = read_f64(&*rgr, 3, path)?;
        if idx.len() != sid.len() || int_def.len() != sid.len() {
            return Err(pq(
                path,
                format!("row group {rg}: columns disagree in length"),
            ));
        }
        let mut out = DecodedRowGroup::with_capacity(sid.len());
        let (mut ii, mut fi) = (0usize, 0usize);
        // The series being read, how many timestamps its group has and how
        // many values it has had: a series has one value per timestamp of
        // its group, in order, so a reader pairs them by position.
        let mut current: Option<(u32, usize, usize)> = None;
        let short = |id: u32, had: usize, want: usize| {
            pq(
                path,
                format!("row group {rg}: series {id} has {had} values for {want} timestamps"),
            )
        };
        for row in 0..sid.len() {
            let id = sid[row] as u32;
            let Some(series) = self.series.get(id as usize) else {
                return Err(pq(path, format!("row group {rg}: unknown series_id {id}")));
            };
            match current {
                Some((cur, _, _)) if cur > id => {
                    return Err(pq(
                        path,
                        format!("row group {rg}: series_id {id} out of order"),
                    ))
                }
                Some((cur, want, had)) if cur != id && had != want => {
                    return Err(short(cur, had, want))
                }
                Some((cur, _, _)) if cur == id => {}
                _ => {
                    let Some(group) = self.groups.get(series.group as usize) else {
                        return Err(pq(
                            path,
                            format!("series {id}: unknown timestamp group {}", series.group),
                        ));
                    };
                    current = Some((id, group.len(), 0));
                }
            }
            if let Some((_, want, had)) = current.as_mut() {
                if idx[row] as usize != *had || *had >= *want {
                    return Err(pq(
                        path,
                        format!(
                            "series {id}: sample_index {} where {} was due (of {})",
                            idx[row], had, want
                        ),
                    ));
                }
                *had += 1;
            }
            let v = if int_def[row] == 1 {
                ii += 1;
                ints.get(ii - 1).copied().map(|m| (m, true))
            } else {
                fi += 1;
                floats.get(fi - 1).map(|f| (f.to_bits() as i64, false))
            };
            let v = match v {
                Some((m, true)) => {
                    m.wrapping_add(series.value_base)
                        .wrapping_mul(series.multiplier) as f64
                        / 10f64.powi(series.scale as i32)
                }
                Some((bits, false)) => f64::from_bits(bits as u64),
                None => return Err(pq(path, format!("row group {rg}: value column too short"))),
            };
            out.push(id, v);
        }
        if let Some((cur, want, had)) = current {
            if had != want {
                return Err(short(cur, had, want));
            }
        }
        Ok(out)
    }

    pub fn num_row_groups(&self) -> usize {
        self.samples.num_row_groups()
    }

    /// A reader of the block's row groups in turn, for compaction.
    pub fn scan(&self) -> Result<BlockScan<'_>, TsdbError> {
        let path = self.dir.join(FILE_SAMPLES);
        Ok(BlockScan {
            reader: open_reader(&path)?,
            block: self,
            path,
        })
    }
}

/// Reads a block's row groups once each through ordinary sequential file
/// reads (compaction reads each once, in order), not the query path's
/// shared positional reader.
pub struct BlockScan<'a> {
    reader: SerializedFileReader<File>,
    block: &'a Block,
    path: PathBuf,
}

impl BlockScan<'_> {
    /// Every series of row group `rg` with its samples, in id (= label)
    /// order, decoded without the cache (compaction reads each once).
    pub fn row_group_series(&self, rg: usize) -> Result<DecodedRowGroup, TsdbError> {
        self.block.read_row_group(&self.reader, rg, &self.path)
    }
}

/// A Parquet reader of `path` by positional reads, safe to use from many
/// threads (no shared file offset).
fn open_positional(path: &Path) -> Result<SerializedFileReader<PositionalFile>, TsdbError> {
    let f = File::open(path).map_err(|e| TsdbError::io(path, e))?;
    let f = PositionalFile::new(f).map_err(|e| TsdbError::io(path, e))?;
    SerializedFileReader::new(f).map_err(|e| pq(path, e))
}

fn open_reader(path: &Path) -> Result<SerializedFileReader<File>, TsdbError> {
    let f = File::open(path).map_err(|e| TsdbError::io(path, e))?;
    SerializedFileReader::new(f).map_err(|e| pq(path, e))
}

fn read_i32(rg: &dyn RowGroupReader, col: usize, path: &Path) -> Result<Vec<i32>, TsdbError> {
    let n = rg.metadata().num_rows() as usize;
    let mut r = rg.get_column_reader(col).map_err(|e| pq(path, e))?;
    let parquet::column::reader::ColumnReader::Int32ColumnReader(ref mut r) = r else {
        return Err(pq(path, format!("column {col} is not int32")));
    };
    let _ = r as &mut parquet::column::reader::ColumnReaderImpl<Int32Type>;
    let mut values = Vec::with_capacity(n);
    r.read_records(n, None, None, &mut values)
        .map_err(|e| pq(path, e))?;
    Ok(values)
}

fn read_i64(
    rg: &dyn RowGroupReader,
    col: usize,
    path: &Path,
) -> Result<(Vec<i64>, Vec<i16>), TsdbError> {
    let n = rg.metadata().num_rows() as usize;
    let mut r = rg.get_column_reader(col).map_err(|e| pq(path, e))?;
    let parquet::column::reader::ColumnReader::Int64ColumnReader(ref mut r) = r else {
        return Err(pq(path, format!("column {col} is not int64")));
    };
    let _ = r as &mut parquet::column::reader::ColumnReaderImpl<Int64Type>;
    let (mut values, mut def) = (Vec::with_capacity(n), Vec::with_capacity(n));
    r.read_records(n, Some(&mut def), None, &mut values)
        .map_err(|e| pq(path, e))?;
    if def.is_empty() {
        def = vec![1; values.len()];
    }
    Ok((values, def))
}

fn read_f64(
    rg: &dyn RowGroupReader,
    col: usize,
    path: &Path,
) -> Result<(Vec<f64>, Vec<i16>), TsdbError> {
    let n = rg.metadata().num_rows() as usize;
    let mut r = rg.get_column_reader(col).map_err(|e| pq(path, e))?;
    let parquet::column::reader::ColumnReader::DoubleColumnReader(ref mut r) = r else {
        return Err(pq(path, format!("column {col} is not double")));
    };
    let _ = r as &mut parquet::column::reader::ColumnReaderImpl<DoubleType>;
    let (mut values, mut def) = (Vec::with_capacity(n), Vec::with_capacity(n));
    r.read_records(n, Some(&mut def), None, &mut values)
        .map_err(|e| pq(path, e))?;
    Ok((values, def))
}
