//! Writes one block: three Parquet files plus `meta.json`, into a temporary
//! directory that is fsynced and renamed into place, so a block either
//! exists whole or not at all.
//!
//! Series arrive in label order (callers merge sorted sources), which lets
//! the writer stream samples out row group by row group.

use crate::block::{
    label_column, BlockMeta, BLOCK_FORMAT, COL_GROUP_ID, COL_MULTIPLIER, COL_ROW_GROUP, COL_SCALE,
    COL_SERIES_ID, COL_VALUE_BASE, FILE_SAMPLES, FILE_SERIES, FILE_TIMESTAMPS, META_FILE,
};
use crate::error::TsdbError;
use crate::labels::LabelSet;
use crate::sample::{Sample, Timestamp};
use crate::wal::sync_dir;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedColumnWriter;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::ColumnPath;
use parquet::schema::types::Type;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Samples per row group of `samples.parquet`: a query decodes whole row
/// groups, so this bounds what reading one series costs. 64 Ki samples cost
/// 1 % in size against 1 Mi and cut block-bound query latency 3-8x and the
/// cut's transient memory (measured in docs/BENCHMARKS.md).
const ROW_GROUP_SAMPLES: usize = 1 << 16;
/// Largest decimal exponent tried when turning floats into integers.
const MAX_SCALE: u32 = 12;
/// Integers beyond 2^53 are not all exact as f64; keep such values as floats.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

fn pq(path: &Path, e: impl std::fmt::Display) -> TsdbError {
    TsdbError::io(path, std::io::Error::other(format!("parquet: {e}")))
}

/// Writes an int32 column, checking its type rather than trusting it
/// (the library's `typed` panics on a mismatch).
fn write_i32(c: &mut SerializedColumnWriter<'_>, values: &[i32]) -> Result<usize, ParquetError> {
    match c.untyped() {
        ColumnWriter::Int32ColumnWriter(w) => w.write_batch(values, None, None),
        _ => Err(ParquetError::General("column is not int32".into())),
    }
}

/// The smallest decimal exponent `s` with `v == m / 10^s` exactly for an
/// integer `m`, if there is one within range.
fn decimal_scale(v: f64) -> Option<u32> {
    if !v.is_finite() || (v == 0.0 && v.is_sign_negative()) {
        return None;
    }
    (0..=MAX_SCALE).find(|s| to_mantissa(v, *s).is_some())
}

/// `v * 10^scale` as an exact integer, if reconstruction by division gives
/// back the same bits.
pub(crate) fn to_mantissa(v: f64, scale: u32) -> Option<i64> {
    // An integer has no sign for zero: -0.0 must stay a float.
    if v == 0.0 && v.is_sign_negative() {
        return None;
    }
    let p = 10f64.powi(scale as i32);
    let m = (v * p).round();
    if m.abs() > MAX_EXACT || m / p != v || (m / p).to_bits() != v.to_bits() {
        return None;
    }
    Some(m as i64)
}

struct SeriesRow {
    labels: LabelSet,
    group: i32,
    scale: i32,
    multiplier: i64,
    row_group: i32,
    value_base: i64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

pub struct BlockWriter {
    final_dir: PathBuf,
    tmp_dir: PathBuf,
    samples: SerializedFileWriter<File>,
    samples_path: PathBuf,
    series: Vec<SeriesRow>,
    groups: HashMap<Arc<[Timestamp]>, i32>,
    group_list: Vec<Arc<[Timestamp]>>,
    // The current row group's columns.
    col_series: Vec<i32>,
    col_index: Vec<i32>,
    col_int: Vec<i64>,
    col_int_def: Vec<i16>,
    col_float: Vec<f64>,
    col_float_def: Vec<i16>,
    row_groups: i32,
    min_t: Timestamp,
    max_t: Timestamp,
    num_samples: u64,
    last_labels: Option<LabelSet>,
    /// The last `value_int` written, which the next series' chain starts from.
    chain_last: Option<i64>,
}

fn props(delta_cols: &[&str], plain_cols: &[&str]) -> Arc<WriterProperties> {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_size(usize::MAX);
    for c in delta_cols {
        let p = ColumnPath::from(*c);
        b = b
            .set_column_dictionary_enabled(p.clone(), false)
            .set_column_encoding(p, Encoding::DELTA_BINARY_PACKED);
    }
    for c in plain_cols {
        let p = ColumnPath::from(*c);
        b = b
            .set_column_dictionary_enabled(p.clone(), false)
            .set_column_encoding(p, Encoding::BYTE_STREAM_SPLIT);
    }
    // Values are nearly all of a block. zstd 4 compresses them within
    // 0.2 % of level 9 (1.3 % better than 3), while level 9 resets 12 MiB
    // of match tables for every page the parquet codec compresses: 14 % of
    // the server's CPU during a benchmark ingest (docs/BENCHMARKS.md).
    for c in ["value_int", "value_float"] {
        b = b.set_column_compression(
            ColumnPath::from(c),
            Compression::ZSTD(ZstdLevel::try_new(4).unwrap_or_default()),
        );
    }
    Arc::new(b.build())
}

fn open_writer(
    path: &Path,
    schema: &str,
    props: Arc<WriterProperties>,
) -> Result<SerializedFileWriter<File>, TsdbError> {
    let schema = Arc::new(parse_message_type(schema).map_err(|e| pq(path, e))?);
    let f = File::create(path).map_err(|e| TsdbError::io(path, e))?;
    SerializedFileWriter::new(f, schema, props).map_err(|e| pq(path, e))
}

impl BlockWriter {
    /// Starts a block that will appear as `blocks_dir/<id>` on `finish`.
    pub fn new(blocks_dir: &Path, id: &str) -> Result<Self, TsdbError> {
        let tmp_dir = blocks_dir.join(format!(".tmp-{id}"));
        if tmp_dir.exists() {
            std::fs::remove_dir_all(&tmp_dir).map_err(|e| TsdbError::io(&tmp_dir, e))?;
        }
        std::fs::create_dir_all(&tmp_dir).map_err(|e| TsdbError::io(&tmp_dir, e))?;
        let samples_path = tmp_dir.join(FILE_SAMPLES);
        let samples = open_writer(
            &samples_path,
            "message samples {
                required int32 series_id;
                required int32 sample_index;
                optional int64 value_int;
                optional double value_float;
            }",
            props(
                &["series_id", "sample_index", "value_int"],
                &["value_float"],
            ),
        )?;
        Ok(BlockWriter {
            final_dir: blocks_dir.join(id),
            tmp_dir,
            samples,
            samples_path,
            series: Vec::new(),
            groups: HashMap::new(),
            group_list: Vec::new(),
            col_series: Vec::new(),
            col_index: Vec::new(),
            col_int: Vec::new(),
            col_int_def: Vec::new(),
            col_float: Vec::new(),
            col_float_def: Vec::new(),
            row_groups: 0,
            min_t: Timestamp::MAX,
            max_t: Timestamp::MIN,
            num_samples: 0,
            last_labels: None,
            chain_last: None,
        })
    }

    /// Adds one series with its samples (sorted by time, unique timestamps).
    /// Series must come in strictly increasing label order.
    pub fn add_series(&mut self, labels: &LabelSet, samples: &[Sample]) -> Result<(), TsdbError> {
        if samples.is_empty() {
            return Ok(());
        }
        if self.last_labels.as_ref().is_some_and(|l| l >= labels) {
            return Err(TsdbError::io(
                &self.tmp_dir,
                std::io::Error::other(format!("series out of order in block: {labels}")),
            ));
        }
        self.last_labels = Some(labels.clone());
        let ts: Arc<[Timestamp]> = samples.iter().map(|s| s.t).collect();
        let group = match self.groups.get(&ts) {
            Some(g) => *g,
            None => {
                let g = self.group_list.len() as i32;
                self.groups.insert(ts.clone(), g);
                self.group_list.push(ts);
                g
            }
        };
        // One scale per series: the largest any of its samples needs.
        let scale = samples
            .iter()
            .filter_map(|s| decimal_scale(s.v))
            .max()
            .unwrap_or(0);
        let mantissas: Vec<Option<i64>> = samples.iter().map(|s| to_mantissa(s.v, scale)).collect();
        // A common factor (memory in KiB or pages, sizes in blocks) is
        // stored once per series, shrinking every delta it divided.
        let multiplier = mantissas
            .iter()
            .flatten()
            .fold(0u64, |g, m| gcd(g, m.unsigned_abs()))
            .clamp(1, i64::MAX as u64) as i64;
        let value_base = self.chain_base(&mantissas, multiplier);
        let id = self.series.len() as i32;
        for (i, (s, m)) in samples.iter().zip(&mantissas).enumerate() {
            self.col_series.push(id);
            self.col_index.push(i as i32);
            match m {
                Some(m) => {
                    let stored = (m / multiplier).wrapping_sub(value_base);
                    self.col_int.push(stored);
                    self.chain_last = Some(stored);
                    self.col_int_def.push(1);
                    self.col_float_def.push(0);
                }
                None => {
                    self.col_float.push(s.v);
                    self.col_float_def.push(1);
                    self.col_int_def.push(0);
                }
            }
        }
        self.min_t = self.min_t.min(samples[0].t);
        self.max_t = self.max_t.max(samples[samples.len() - 1].t);
        self.num_samples += samples.len() as u64;
        self.series.push(SeriesRow {
            labels: labels.clone(),
            group,
            scale: scale as i32,
            multiplier,
            row_group: self.row_groups,
            value_base,
        });
        if self.col_series.len() >= ROW_GROUP_SAMPLES {
            self.flush_row_group()?;
        }
        Ok(())
    }

    /// The base a series' decimal values are stored against: the one that
    /// makes its first stored value equal the previous series' last, so the
    /// delta encoding sees no jump where one series ends and the next
    /// begins (those jumps widened whole 128-value blocks: ~8 % of value
    /// bytes on the node_exporter-like bench). 0 when there is nothing to
    /// chain to, or when chaining would take a stored value beyond 2^53,
    /// so that readers computing in doubles stay exact.
    fn chain_base(&self, mantissas: &[Option<i64>], multiplier: i64) -> i64 {
        const MAX_EXACT: u64 = 1 << 53;
        let mut ints = mantissas.iter().flatten().map(|m| m / multiplier);
        let (Some(prev), Some(first)) = (self.chain_last, ints.next()) else {
            return 0;
        };
        let base = first.wrapping_sub(prev);
        let exact = |v: i64| v.wrapping_sub(base).unsigned_abs() <= MAX_EXACT;
        if exact(first) && ints.all(exact) {
            base
        } else {
            0
        }
    }

    fn flush_row_group(&mut self) -> Result<(), TsdbError> {
        if self.col_series.is_empty() {
            return Ok(());
        }
        let path = self.samples_path.clone();
        let mut rg = self.samples.next_row_group().map_err(|e| pq(&path, e))?;
        let mut i = 0;
        while let Some(mut col) = rg.next_column().map_err(|e| pq(&path, e))? {
            let r = match i {
                0 => col
                    .typed::<Int32Type>()
                    .write_batch(&self.col_series, None, None),
                1 => col
                    .typed::<Int32Type>()
                    .write_batch(&self.col_index, None, None),
                2 => col.typed::<Int64Type>().write_batch(
                    &self.col_int,
                    Some(&self.col_int_def),
                    None,
                ),
                _ => col.typed::<DoubleType>().write_batch(
                    &self.col_float,
                    Some(&self.col_float_def),
                    None,
                ),
            };
            r.map_err(|e| pq(&path, e))?;
            col.close().map_err(|e| pq(&path, e))?;
            i += 1;
        }
        rg.close().map_err(|e| pq(&path, e))?;
        self.row_groups += 1;
        self.col_series.clear();
        self.col_index.clear();
        self.col_int.clear();
        self.col_int_def.clear();
        self.col_float.clear();
        self.col_float_def.clear();
        Ok(())
    }

    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    fn write_series(&self, path: &Path) -> Result<(), TsdbError> {
        let names: BTreeSet<&str> = self
            .series
            .iter()
            .flat_map(|s| s.labels.iter().map(|l| l.name))
            .collect();
        // Built field by field, not parsed from text, so any label name is
        // a valid column name.
        let int_col = |name: &str, t: PhysicalType| {
            Type::primitive_type_builder(name, t)
                .with_repetition(Repetition::REQUIRED)
                .build()
                .map(Arc::new)
        };
        let mut fields = vec![
            int_col(COL_SERIES_ID, PhysicalType::INT32),
            int_col(COL_GROUP_ID, PhysicalType::INT32),
            int_col(COL_SCALE, PhysicalType::INT32),
            int_col(COL_MULTIPLIER, PhysicalType::INT64),
            int_col(COL_ROW_GROUP, PhysicalType::INT32),
            int_col(COL_VALUE_BASE, PhysicalType::INT64),
        ];
        for n in &names {
            fields.push(
                Type::primitive_type_builder(&label_column(n), PhysicalType::BYTE_ARRAY)
                    .with_repetition(Repetition::OPTIONAL)
                    .with_logical_type(Some(LogicalType::String))
                    .build()
                    .map(Arc::new),
            );
        }
        let fields = fields
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pq(path, e))?;
        let schema = Type::group_type_builder("series")
            .with_fields(fields)
            .build()
            .map_err(|e| pq(path, e))?;
        let f = File::create(path).map_err(|e| TsdbError::io(path, e))?;
        let props = props(
            &[
                COL_SERIES_ID,
                COL_GROUP_ID,
                COL_SCALE,
                COL_MULTIPLIER,
                COL_ROW_GROUP,
                COL_VALUE_BASE,
            ],
            &[],
        );
        let mut w =
            SerializedFileWriter::new(f, Arc::new(schema), props).map_err(|e| pq(path, e))?;
        let mut rg = w.next_row_group().map_err(|e| pq(path, e))?;
        let ids: Vec<i32> = (0..self.series.len() as i32).collect();
        let groups: Vec<i32> = self.series.iter().map(|s| s.group).collect();
        let scales: Vec<i32> = self.series.iter().map(|s| s.scale).collect();
        let multipliers: Vec<i64> = self.series.iter().map(|s| s.multiplier).collect();
        let row_groups: Vec<i32> = self.series.iter().map(|s| s.row_group).collect();
        let missing = || pq(path, ParquetError::General("missing column".into()));
        for (i, col) in [&ids, &groups, &scales].into_iter().enumerate() {
            let mut c = rg
                .next_column()
                .map_err(|e| pq(path, e))?
                .ok_or_else(missing)?;
            write_i32(&mut c, col).map_err(|e| pq(path, format!("column {i}: {e}")))?;
            c.close().map_err(|e| pq(path, e))?;
        }
        let mut c = rg
            .next_column()
            .map_err(|e| pq(path, e))?
            .ok_or_else(missing)?;
        match c.untyped() {
            ColumnWriter::Int64ColumnWriter(w) => w
                .write_batch(&multipliers, None, None)
                .map_err(|e| pq(path, e))?,
            _ => return Err(pq(path, "multiplier column is not int64")),
        };
        c.close().map_err(|e| pq(path, e))?;
        let mut c = rg
            .next_column()
            .map_err(|e| pq(path, e))?
            .ok_or_else(missing)?;
        write_i32(&mut c, &row_groups).map_err(|e| pq(path, e))?;
        c.close().map_err(|e| pq(path, e))?;
        let bases: Vec<i64> = self.series.iter().map(|s| s.value_base).collect();
        let mut c = rg
            .next_column()
            .map_err(|e| pq(path, e))?
            .ok_or_else(missing)?;
        match c.untyped() {
            ColumnWriter::Int64ColumnWriter(w) => {
                w.write_batch(&bases, None, None).map_err(|e| pq(path, e))?
            }
            _ => return Err(pq(path, "value base column is not int64")),
        };
        c.close().map_err(|e| pq(path, e))?;
        for n in &names {
            let mut values = Vec::new();
            let mut def = Vec::with_capacity(self.series.len());
            for s in &self.series {
                match s.labels.get(n) {
                    Some(v) => {
                        values.push(ByteArray::from(v.as_bytes().to_vec()));
                        def.push(1);
                    }
                    None => def.push(0),
                }
            }
            let mut c = rg
                .next_column()
                .map_err(|e| pq(path, e))?
                .ok_or_else(|| pq(path, ParquetError::General("missing column".into())))?;
            c.typed::<ByteArrayType>()
                .write_batch(&values, Some(&def), None)
                .map_err(|e| pq(path, e))?;
            c.close().map_err(|e| pq(path, e))?;
        }
        rg.close().map_err(|e| pq(path, e))?;
        w.close().map_err(|e| pq(path, e))?;
        Ok(())
    }

    fn write_timestamps(&self, path: &Path) -> Result<(), TsdbError> {
        let mut w = open_writer(
            path,
            "message timestamps { required int32 group_id; required int32 sample_index; required int64 timestamp (TIMESTAMP(MILLIS, true)); }",
            props(&["group_id", "sample_index", "timestamp"], &[]),
        )?;
        let mut rg = w.next_row_group().map_err(|e| pq(path, e))?;
        let (mut g, mut i, mut t) = (Vec::new(), Vec::new(), Vec::new());
        for (gid, ts) in self.group_list.iter().enumerate() {
            for (idx, x) in ts.iter().enumerate() {
                g.push(gid as i32);
                i.push(idx as i32);
                t.push(*x);
            }
        }
        for (n, col) in [&g, &i].iter().enumerate() {
            let mut c = rg
                .next_column()
                .map_err(|e| pq(path, e))?
                .ok_or_else(|| pq(path, ParquetError::General(format!("missing column {n}"))))?;
            c.typed::<Int32Type>()
                .write_batch(col, None, None)
                .map_err(|e| pq(path, e))?;
            c.close().map_err(|e| pq(path, e))?;
        }
        let mut c = rg
            .next_column()
            .map_err(|e| pq(path, e))?
            .ok_or_else(|| pq(path, ParquetError::General("missing column".into())))?;
        c.typed::<Int64Type>()
            .write_batch(&t, None, None)
            .map_err(|e| pq(path, e))?;
        c.close().map_err(|e| pq(path, e))?;
        rg.close().map_err(|e| pq(path, e))?;
        w.close().map_err(|e| pq(path, e))?;
        Ok(())
    }

    /// Writes the remaining files, fsyncs everything and renames the block
    /// into place. Returns its meta, or `None` if no series were added.
    pub fn finish(
        mut self,
        level: u32,
        sources: Vec<String>,
    ) -> Result<Option<BlockMeta>, TsdbError> {
        self.flush_row_group()?;
        let samples_path = self.samples_path.clone();
        self.samples.finish().map_err(|e| pq(&samples_path, e))?;
        if self.series.is_empty() {
            std::fs::remove_dir_all(&self.tmp_dir).map_err(|e| TsdbError::io(&self.tmp_dir, e))?;
            return Ok(None);
        }
        self.write_series(&self.tmp_dir.join(FILE_SERIES))?;
        self.write_timestamps(&self.tmp_dir.join(FILE_TIMESTAMPS))?;
        let id = self
            .final_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let meta = BlockMeta {
            id,
            min_time: self.min_t,
            max_time: self.max_t,
            num_series: self.series.len() as u64,
            num_samples: self.num_samples,
            level,
            sources,
            format: BLOCK_FORMAT,
        };
        let meta_path = self.tmp_dir.join(META_FILE);
        std::fs::write(&meta_path, meta.to_json()).map_err(|e| TsdbError::io(&meta_path, e))?;
        for f in [FILE_SAMPLES, FILE_SERIES, FILE_TIMESTAMPS, META_FILE] {
            let p = self.tmp_dir.join(f);
            File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| TsdbError::io(&p, e))?;
        }
        sync_dir(&self.tmp_dir)?;
        std::fs::rename(&self.tmp_dir, &self.final_dir)
            .map_err(|e| TsdbError::io(&self.final_dir, e))?;
        if let Some(parent) = self.final_dir.parent() {
            sync_dir(parent)?;
        }
        Ok(Some(meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_conversion_is_exact_or_refused() {
        assert_eq!(decimal_scale(12345.67), Some(2));
        assert_eq!(to_mantissa(12345.67, 2), Some(1234567));
        assert_eq!(decimal_scale(3.0), Some(0));
        assert_eq!(decimal_scale(0.1), Some(1));
        assert_eq!(to_mantissa(0.1, 4), Some(1000));
        assert_eq!(decimal_scale(f64::NAN), None);
        assert_eq!(decimal_scale(-0.0), None);
        assert_eq!(decimal_scale(1e300), None);
        assert_eq!(decimal_scale(std::f64::consts::PI), None);
    }

    fn round_trip(series: &[Vec<f64>]) -> Vec<Vec<u64>> {
        let dir = std::env::temp_dir().join(format!(
            "vigil-block-writer-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = BlockWriter::new(&dir, "b").unwrap();
        for (i, values) in series.iter().enumerate() {
            let labels = LabelSet::from_pairs(&[("__name__", &format!("m{i:04}"))]);
            let samples: Vec<Sample> = values
                .iter()
                .enumerate()
                .map(|(k, v)| Sample::new(1000 + 15_000 * k as i64, *v))
                .collect();
            w.add_series(&labels, &samples).unwrap();
        }
        let meta = w.finish(1, Vec::new()).unwrap().unwrap();
        assert_eq!(meta.format, BLOCK_FORMAT);
        let cache = Arc::new(crate::row_group_cache::RowGroupCache::new(0));
        let interner = crate::labels::Interner::default();
        let block = crate::block::Block::open(&dir.join("b"), &interner, cache).unwrap();
        let out = (0..series.len() as u32)
            .map(|id| {
                let got = block.series_samples(id, None).unwrap();
                got.values().iter().map(|v| v.to_bits()).collect()
            })
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    #[test]
    fn chained_values_come_back_exactly() {
        let series = vec![
            vec![1000.25, 1015.5, 1030.75],
            vec![7.0, 7.0, 7.0],
            // Far from its neighbours: chaining would leave 2^53, so no base.
            vec![9.0e18, -9.0e18, 4.5e18],
            vec![f64::NAN, 3.0, f64::INFINITY, 4.0],
            vec![-0.0, 1.5],
            vec![1024.0 * 5.0, 1024.0 * 9.0],
            vec![0.000_000_123, 0.049_000_001],
        ];
        let want: Vec<Vec<u64>> = series
            .iter()
            .map(|v| v.iter().map(|x| x.to_bits()).collect())
            .collect();
        assert_eq!(round_trip(&series), want);
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Any mix of decimal and other values survives the chained
        /// decimal encoding bit for bit.
        #[test]
        fn any_values_round_trip(series in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![
                (-1_000_000_000i64..1_000_000_000).prop_map(|m| m as f64 / 100.0),
                (i64::MIN / 2..i64::MAX / 2).prop_map(|m| m as f64),
                proptest::num::f64::ANY,
            ], 1..20), 1..12)) {
            let want: Vec<Vec<u64>> = series
                .iter()
                .map(|v| v.iter().map(|x| x.to_bits()).collect())
                .collect();
            prop_assert_eq!(round_trip(&series), want);
        }
    }
}
