//! The write-ahead log: numbered segment files of checksummed records.
//!
//! Frame: `len: u32 LE` (of type byte + payload), `crc32: u32 LE` (of type
//! byte + payload), `type: u8`, payload. A record is written with one
//! `write` call before the write it carries is acknowledged, so a process
//! crash loses nothing acknowledged; `sync` (fsync) bounds what power loss
//! can take. On replay a torn or damaged record ends the log: it and
//! everything after it is cut off, never half-applied.

use crate::error::TsdbError;
use crate::labels::{Label, LabelSet};
use crate::sample::{Sample, SeriesRef, Timestamp};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const HEADER_LEN: usize = 9;
const TYPE_SERIES: u8 = 1;
const TYPE_SAMPLES: u8 = 2;
const TYPE_CHECKPOINT: u8 = 3;
const CHECKPOINT_PREFIX: &str = "checkpoint.";
/// Refuse absurd lengths instead of allocating them.
const MAX_RECORD_LEN: usize = 256 << 20;
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 << 20;

/// A sample addressed to a series by ref.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct RefSample {
    pub series: SeriesRef,
    pub sample: Sample,
}

#[derive(Clone, Debug, PartialEq)]
pub enum WalRecord {
    Series(Vec<(SeriesRef, LabelSet)>),
    Samples(Vec<RefSample>),
    /// Written first in a checkpoint: samples older than `before` in
    /// segments up to `segment` are already in blocks.
    Checkpoint {
        segment: u64,
        before: Timestamp,
        next_ref: u64,
    },
}

/// Where a replayed record came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReplaySource {
    Checkpoint,
    Segment(u64),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record is truncated")]
    Truncated,
    #[error("unknown record type {0}")]
    UnknownType(u8),
    #[error("label is not valid UTF-8")]
    BadUtf8,
    #[error("varint overflows 64 bits")]
    VarintOverflow,
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
}

// ---- encoding ----

fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// Appends one framed record with the given type to `buf`.
fn frame(buf: &mut Vec<u8>, ty: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 8]);
    buf.push(ty);
    body(buf);
    let payload = &buf[start + 8..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

pub fn encode_series<'a>(
    buf: &mut Vec<u8>,
    series: impl ExactSizeIterator<Item = (SeriesRef, &'a LabelSet)>,
) {
    frame(buf, TYPE_SERIES, |b| {
        put_uvarint(b, series.len() as u64);
        for (r, ls) in series {
            put_uvarint(b, r.0);
            put_uvarint(b, ls.len() as u64);
            for l in ls.iter() {
                put_bytes(b, l.name.as_bytes());
                put_bytes(b, l.value.as_bytes());
            }
        }
    });
}

pub fn encode_samples(buf: &mut Vec<u8>, samples: &[RefSample]) {
    frame(buf, TYPE_SAMPLES, |b| {
        put_uvarint(b, samples.len() as u64);
        let base = samples.first().map_or(0, |s| s.sample.t);
        put_varint(b, base);
        let mut prev_ref = 0u64;
        for s in samples {
            put_varint(b, s.series.0.wrapping_sub(prev_ref) as i64);
            prev_ref = s.series.0;
            put_varint(b, s.sample.t.wrapping_sub(base));
            b.extend_from_slice(&s.sample.v.to_bits().to_le_bytes());
        }
    });
}

pub fn encode_checkpoint(buf: &mut Vec<u8>, segment: u64, before: Timestamp, next_ref: u64) {
    frame(buf, TYPE_CHECKPOINT, |b| {
        put_uvarint(b, segment);
        put_varint(b, before);
        put_uvarint(b, next_ref);
    });
}

// ---- decoding ----

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self.b.split_first().ok_or(DecodeError::Truncated)?;
            self.b = rest;
            if i == 9 && byte > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.b.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn string(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::Truncated)?;
        std::str::from_utf8(self.take(n)?).map_err(|_| DecodeError::BadUtf8)
    }

    /// A count of items each at least `min_item_len` bytes long; bounded by
    /// what is left so a corrupt count cannot trigger a huge allocation.
    fn count(&mut self, min_item_len: usize) -> Result<usize, DecodeError> {
        let n = self.uvarint()?;
        if n > (self.b.len() / min_item_len.max(1)) as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(n as usize)
    }
}

/// Decodes the type byte + payload of one record.
pub fn decode_record(payload: &[u8]) -> Result<WalRecord, DecodeError> {
    let (&ty, rest) = payload.split_first().ok_or(DecodeError::Truncated)?;
    let mut c = Cursor { b: rest };
    let rec = match ty {
        TYPE_SERIES => {
            let n = c.count(2)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let r = SeriesRef(c.uvarint()?);
                let nl = c.count(2)?;
                let mut labels = Vec::with_capacity(nl);
                for _ in 0..nl {
                    let name = c.string()?;
                    let value = c.string()?;
                    labels.push(Label::new(name, value));
                }
                out.push((r, LabelSet::from_labels(labels)));
            }
            WalRecord::Series(out)
        }
        TYPE_SAMPLES => {
            let n = c.count(10)?;
            let base = c.varint()?;
            let mut out = Vec::with_capacity(n);
            let mut prev_ref = 0u64;
            for _ in 0..n {
                let r = prev_ref.wrapping_add(c.varint()? as u64);
                prev_ref = r;
                let t = base.wrapping_add(c.varint()?);
                let mut v = [0u8; 8];
                v.copy_from_slice(c.take(8)?);
                out.push(RefSample {
                    series: SeriesRef(r),
                    sample: Sample::new(t, f64::from_bits(u64::from_le_bytes(v))),
                });
            }
            WalRecord::Samples(out)
        }
        TYPE_CHECKPOINT => WalRecord::Checkpoint {
            segment: c.uvarint()?,
            before: c.varint()?,
            next_ref: c.uvarint()?,
        },
        other => return Err(DecodeError::UnknownType(other)),
    };
    if !c.b.is_empty() {
        return Err(DecodeError::TrailingBytes(c.b.len()));
    }
    Ok(rec)
}

/// Splits a segment's bytes into records. Returns the records that are
/// intact and, if the segment does not end cleanly, the offset of the first
/// bad frame and why it is bad.
pub fn decode_segment(bytes: &[u8]) -> (Vec<WalRecord>, Option<(u64, String)>) {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < bytes.len() {
        let bad = |why: String| Some((off as u64, why));
        if bytes.len() - off < HEADER_LEN {
            return (out, bad("torn frame header".into()));
        }
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap_or_default());
        if len == 0 || len > MAX_RECORD_LEN {
            return (out, bad(format!("impossible record length {len}")));
        }
        let Some(payload) = bytes.get(off + 8..off + 8 + len) else {
            return (out, bad(format!("torn record: {len} bytes announced")));
        };
        if crc32fast::hash(payload) != crc {
            return (out, bad("checksum mismatch".into()));
        }
        match decode_record(payload) {
            Ok(r) => out.push(r),
            Err(e) => return (out, bad(format!("undecodable record: {e}"))),
        }
        off += 8 + len;
    }
    (out, None)
}

// ---- files ----

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:08}"))
}

/// Segment indexes present in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, TsdbError> {
    list_numbered(dir, "")
}

/// Numbers `N` of the files named `<prefix>N` in `dir`, ascending; a
/// missing directory has none.
fn list_numbered(dir: &Path, prefix: &str) -> Result<Vec<u64>, TsdbError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(TsdbError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| TsdbError::io(dir, e))?;
        let name = entry.file_name();
        if let Some(i) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(i);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// What replay found.
#[derive(Debug, Default, Clone)]
pub struct ReplayReport {
    pub segments: usize,
    pub records: usize,
    /// Set when a damaged tail was cut off: where, and why.
    pub truncated: Option<String>,
    /// Newest sample timestamp in each segment (segments without samples absent).
    pub segment_max_t: BTreeMap<u64, Timestamp>,
}

fn checkpoint_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{CHECKPOINT_PREFIX}{segment:08}"))
}

/// Checkpoint files in `dir` by the segment they cover, ascending.
fn list_checkpoints(dir: &Path) -> Result<Vec<u64>, TsdbError> {
    list_numbered(dir, CHECKPOINT_PREFIX)
}

fn read_file(path: &Path) -> Result<Vec<u8>, TsdbError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| TsdbError::io(path, e))?;
    Ok(bytes)
}

/// Reads the newest checkpoint, then every segment, in order, handing each
/// record to `apply`. A damaged record in a segment ends the log: its
/// segment is truncated there and later segments are removed, so the next
/// start sees a clean log. A damaged checkpoint is an error: it was written
/// atomically, so damage means the disk lies.
pub fn replay(
    dir: &Path,
    mut apply: impl FnMut(ReplaySource, WalRecord),
) -> Result<ReplayReport, TsdbError> {
    let mut report = ReplayReport::default();
    if let Some(&cp) = list_checkpoints(dir)?.last() {
        let path = checkpoint_path(dir, cp);
        let (records, bad) = decode_segment(&read_file(&path)?);
        if let Some((offset, detail)) = bad {
            return Err(TsdbError::WalCorrupt {
                path,
                offset,
                detail,
            });
        }
        report.records += records.len();
        for r in records {
            apply(ReplaySource::Checkpoint, r);
        }
    }
    let segments = list_segments(dir)?;
    report.segments = segments.len();
    for (pos, &index) in segments.iter().enumerate() {
        let path = segment_path(dir, index);
        let (records, bad) = decode_segment(&read_file(&path)?);
        report.records += records.len();
        for r in records {
            if let WalRecord::Samples(s) = &r {
                if let Some(max) = s.iter().map(|x| x.sample.t).max() {
                    let e = report.segment_max_t.entry(index).or_insert(max);
                    *e = (*e).max(max);
                }
            }
            apply(ReplaySource::Segment(index), r);
        }
        if let Some((offset, why)) = bad {
            let later = &segments[pos + 1..];
            tracing::warn!(
                segment = %path.display(), offset, reason = %why, dropped_segments = later.len(),
                "WAL ends in a damaged record; truncating it"
            );
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| TsdbError::io(&path, e))?;
            f.set_len(offset).map_err(|e| TsdbError::io(&path, e))?;
            f.sync_all().map_err(|e| TsdbError::io(&path, e))?;
            for &l in later {
                let p = segment_path(dir, l);
                fs::remove_file(&p).map_err(|e| TsdbError::io(&p, e))?;
            }
            report.segments = pos + 1;
            report.truncated = Some(format!("{} at byte {offset}: {why}", path.display()));
            break;
        }
    }
    Ok(report)
}

/// Appends records to the newest segment, starting a new one past the size limit.
pub struct WalWriter {
    dir: PathBuf,
    index: u64,
    file: File,
    size: u64,
    segment_size: u64,
    dirty: bool,
    /// Newest sample timestamp per segment, to know which segments a cut
    /// made obsolete.
    segment_max_t: BTreeMap<u64, Timestamp>,
}

impl WalWriter {
    /// Opens for appending after the last existing segment (replay first).
    pub fn open(
        dir: &Path,
        segment_size: u64,
        segment_max_t: BTreeMap<u64, Timestamp>,
    ) -> Result<Self, TsdbError> {
        fs::create_dir_all(dir).map_err(|e| TsdbError::io(dir, e))?;
        let index = list_segments(dir)?.last().copied().unwrap_or(0);
        let path = segment_path(dir, index);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TsdbError::io(&path, e))?;
        let size = file.metadata().map_err(|e| TsdbError::io(&path, e))?.len();
        sync_dir(dir)?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            index,
            file,
            size,
            segment_size,
            dirty: false,
            segment_max_t,
        })
    }

    /// Writes already-framed records with a single `write` of the buffer;
    /// `max_t` is the newest sample timestamp they carry, if any.
    pub fn write(&mut self, framed: &[u8], max_t: Option<Timestamp>) -> Result<(), TsdbError> {
        if framed.is_empty() {
            return Ok(());
        }
        if self.size > 0 && self.size + framed.len() as u64 > self.segment_size {
            self.rotate()?;
        }
        let path = || segment_path(&self.dir, self.index);
        self.file
            .write_all(framed)
            .map_err(|e| TsdbError::io(path(), e))?;
        self.size += framed.len() as u64;
        self.dirty = true;
        if let Some(t) = max_t {
            let e = self.segment_max_t.entry(self.index).or_insert(t);
            *e = (*e).max(t);
        }
        Ok(())
    }

    /// Starts a new segment now; returns the index of the one just closed.
    /// Everything written before this call is in segments up to that index.
    pub fn cut_segment(&mut self) -> Result<u64, TsdbError> {
        let closed = self.index;
        self.rotate()?;
        Ok(closed)
    }

    /// Forgets the checkpoints older than `segment` and every segment up to
    /// `segment` whose samples are all older than `before`, and returns
    /// their paths for [`remove_obsolete`]. Call after [`write_checkpoint`]
    /// for the same cut has returned; quick, so it can run under the WAL
    /// lock while the slow deletion does not.
    pub fn obsolete_after_checkpoint(
        &mut self,
        segment: u64,
        before: Timestamp,
    ) -> Result<Vec<PathBuf>, TsdbError> {
        let mut out: Vec<PathBuf> = list_checkpoints(&self.dir)?
            .into_iter()
            .filter(|c| *c < segment)
            .map(|c| checkpoint_path(&self.dir, c))
            .collect();
        for seg in list_segments(&self.dir)? {
            let obsolete = seg <= segment
                && seg != self.index
                && self.segment_max_t.get(&seg).is_none_or(|t| *t < before);
            if obsolete {
                out.push(segment_path(&self.dir, seg));
                self.segment_max_t.remove(&seg);
            }
        }
        Ok(out)
    }

    /// [`write_checkpoint`], then drops what it made obsolete (tests and
    /// callers without concurrency concerns).
    pub fn checkpoint<'a>(
        &mut self,
        segment: u64,
        before: Timestamp,
        next_ref: u64,
        series: impl ExactSizeIterator<Item = (SeriesRef, &'a LabelSet)>,
    ) -> Result<(), TsdbError> {
        write_checkpoint(&self.dir, segment, before, next_ref, series)?;
        let obsolete = self.obsolete_after_checkpoint(segment, before)?;
        remove_obsolete(&self.dir, &obsolete)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn rotate(&mut self) -> Result<(), TsdbError> {
        self.sync()?;
        self.index += 1;
        let path = segment_path(&self.dir, self.index);
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TsdbError::io(&path, e))?;
        self.size = 0;
        sync_dir(&self.dir)
    }

    /// fsyncs the current segment if anything was written since the last sync.
    pub fn sync(&mut self) -> Result<(), TsdbError> {
        if self.dirty {
            self.file
                .sync_data()
                .map_err(|e| TsdbError::io(segment_path(&self.dir, self.index), e))?;
            self.dirty = false;
        }
        Ok(())
    }

    pub fn current_segment(&self) -> u64 {
        self.index
    }
}

/// Writes the checkpoint of a cut (`segment`, `before`) holding the given
/// live series: atomically (temp file, fsync, rename, directory fsync), and
/// without the WAL lock, since appends only touch the current segment.
pub fn write_checkpoint<'a>(
    dir: &Path,
    segment: u64,
    before: Timestamp,
    next_ref: u64,
    series: impl ExactSizeIterator<Item = (SeriesRef, &'a LabelSet)>,
) -> Result<(), TsdbError> {
    let mut buf = Vec::new();
    encode_checkpoint(&mut buf, segment, before, next_ref);
    encode_series(&mut buf, series);
    let path = checkpoint_path(dir, segment);
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(|e| TsdbError::io(&tmp, e))?;
        f.write_all(&buf).map_err(|e| TsdbError::io(&tmp, e))?;
        f.sync_all().map_err(|e| TsdbError::io(&tmp, e))?;
    }
    fs::rename(&tmp, &path).map_err(|e| TsdbError::io(&path, e))?;
    sync_dir(dir)
}

/// Deletes files [`WalWriter::obsolete_after_checkpoint`] listed.
pub fn remove_obsolete(dir: &Path, paths: &[PathBuf]) -> Result<(), TsdbError> {
    for p in paths {
        match fs::remove_file(p) {
            Ok(()) => {}
            // Already gone (a crash between listing and deleting).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TsdbError::io(p, e)),
        }
    }
    sync_dir(dir)
}

pub fn sync_dir(dir: &Path) -> Result<(), TsdbError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TsdbError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_records() -> Vec<WalRecord> {
        vec![
            WalRecord::Series(vec![
                (
                    SeriesRef(1),
                    LabelSet::from_pairs(&[("__name__", "up"), ("job", "a")]),
                ),
                (
                    SeriesRef(2),
                    LabelSet::from_pairs(&[("__name__", "up"), ("job", "b")]),
                ),
            ]),
            WalRecord::Samples(vec![
                RefSample {
                    series: SeriesRef(2),
                    sample: Sample::new(1000, 1.5),
                },
                RefSample {
                    series: SeriesRef(1),
                    sample: Sample::new(-7, f64::from_bits(crate::STALE_NAN_BITS)),
                },
            ]),
        ]
    }

    fn encode(records: &[WalRecord]) -> Vec<u8> {
        let mut buf = Vec::new();
        for r in records {
            match r {
                WalRecord::Series(s) => encode_series(&mut buf, s.iter().map(|(r, l)| (*r, l))),
                WalRecord::Samples(s) => encode_samples(&mut buf, s),
                WalRecord::Checkpoint {
                    segment,
                    before,
                    next_ref,
                } => encode_checkpoint(&mut buf, *segment, *before, *next_ref),
            }
        }
        buf
    }

    #[test]
    fn records_roundtrip() {
        let recs = sample_records();
        let (out, bad) = decode_segment(&encode(&recs));
        assert!(bad.is_none());
        assert_eq!(out, recs);
    }

    #[test]
    fn torn_tail_is_cut_and_earlier_records_survive() {
        let dir = tempfile::tempdir().unwrap();
        let recs = sample_records();
        let mut w = WalWriter::open(dir.path(), DEFAULT_SEGMENT_SIZE, BTreeMap::new()).unwrap();
        w.write(&encode(&recs), None).unwrap();
        let full = encode(&recs[..1]);
        w.write(&full[..full.len() - 3], None).unwrap();
        drop(w);
        let mut seen = Vec::new();
        let report = replay(dir.path(), |_, r| seen.push(r)).unwrap();
        assert_eq!(seen, recs);
        assert!(report.truncated.is_some());
        // The log is clean now: appending and replaying again works.
        let mut w = WalWriter::open(dir.path(), DEFAULT_SEGMENT_SIZE, BTreeMap::new()).unwrap();
        w.write(&encode(&recs[1..]), None).unwrap();
        let mut seen = Vec::new();
        let report = replay(dir.path(), |_, r| seen.push(r)).unwrap();
        assert!(report.truncated.is_none());
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn segments_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let recs = sample_records();
        let mut w = WalWriter::open(dir.path(), 64, BTreeMap::new()).unwrap();
        for _ in 0..5 {
            w.write(&encode(&recs), None).unwrap();
        }
        assert!(list_segments(dir.path()).unwrap().len() >= 4);
        let mut n = 0;
        replay(dir.path(), |_, _| n += 1).unwrap();
        assert_eq!(n, 10);
    }

    #[test]
    fn checkpoint_written_while_appends_continue_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let recs = sample_records();
        let mut w = WalWriter::open(dir.path(), DEFAULT_SEGMENT_SIZE, BTreeMap::new()).unwrap();
        w.write(&encode(&recs), Some(100)).unwrap();
        let cut = w.cut_segment().unwrap();
        // The checkpoint file is written without the writer (no lock)...
        let labels = LabelSet::from_pairs(&[("__name__", "up")]);
        write_checkpoint(
            dir.path(),
            cut,
            200,
            9,
            [(SeriesRef(1), &labels)].into_iter(),
        )
        .unwrap();
        // ...while an append lands in the new segment.
        w.write(&encode(&recs[1..]), Some(300)).unwrap();
        let obsolete = w.obsolete_after_checkpoint(cut, 200).unwrap();
        assert_eq!(obsolete, vec![segment_path(dir.path(), cut)]);
        remove_obsolete(dir.path(), &obsolete).unwrap();
        // Removing twice (a crash between listing and deleting) is fine.
        remove_obsolete(dir.path(), &obsolete).unwrap();
        let mut seen = Vec::new();
        replay(dir.path(), |_, r| seen.push(r)).unwrap();
        assert!(matches!(
            seen[0],
            WalRecord::Checkpoint {
                segment,
                before: 200,
                next_ref: 9
            } if segment == cut
        ));
        assert_eq!(seen[1], WalRecord::Series(vec![(SeriesRef(1), labels)]));
        assert_eq!(&seen[2..], &recs[1..]);
    }

    proptest! {
        // Fuzz target: arbitrary bytes never panic the reader and never
        // yield records past the first damaged frame.
        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_segment(&bytes);
            let _ = decode_record(&bytes);
        }

        #[test]
        fn bit_flips_are_detected(pos in 0usize..1000, bit in 0u8..8) {
            let recs = sample_records();
            let mut bytes = encode(&recs);
            let pos = pos % bytes.len();
            bytes[pos] ^= 1 << bit;
            let (out, bad) = decode_segment(&bytes);
            prop_assert!(bad.is_some());
            prop_assert!(out.len() < recs.len());
            for (a, b) in out.iter().zip(&recs) {
                prop_assert_eq!(a, b);
            }
        }
    }
}
