//! The log WAL: every accepted push is appended and fsync'd here before it
//! is acknowledged, so `kill -9` loses nothing acknowledged; indexing into
//! tantivy happens later, in batches. Records carry a sequence number; each
//! partition's tantivy commit records the highest sequence it holds, so a
//! replay re-indexes exactly what no commit covered.
//!
//! Segments are `wal/<first seq, 20 digits>`; a frame is `len: u32 LE`,
//! `crc32: u32 LE` of the payload, then the payload: `seq: u64 LE` and the
//! streams (labels, then entries as zig-zag varint timestamps and lines).
//! A torn or corrupt tail (a crash mid-append) is cut off on open.

use crate::block::{get_varint, put_varint, Entry};
use crate::error::LogStoreError;
use crate::store::PushStream;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tsdb::{Label, LabelSet};

const SEGMENT_BYTES: u64 = 64 << 20;
const FRAME_HEADER: usize = 8;
/// A frame claiming more than this is corruption, not a push.
const MAX_FRAME: usize = 512 << 20;

pub(crate) struct WalRecord {
    pub seq: u64,
    pub streams: Vec<PushStream>,
}

pub(crate) struct Wal {
    dir: PathBuf,
    file: File,
    /// First sequence of each segment, oldest first; the last is being written.
    segments: Vec<u64>,
    segment_bytes: u64,
    next_seq: u64,
    buf: Vec<u8>,
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}"))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogStoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogStoreError::io(dir, e))
}

impl Wal {
    /// Opens (or creates) the WAL in `dir` and returns every intact record.
    pub fn open(dir: &Path) -> Result<(Wal, Vec<WalRecord>), LogStoreError> {
        fs::create_dir_all(dir).map_err(|e| LogStoreError::io(dir, e))?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| LogStoreError::io(dir, e))? {
            let entry = entry.map_err(|e| LogStoreError::io(dir, e))?;
            let name = entry.file_name();
            match name.to_str().and_then(|n| n.parse::<u64>().ok()) {
                Some(first) => segments.push(first),
                None => {
                    tracing::warn!(file = ?entry.path(), "ignoring a file that is not a log WAL segment")
                }
            }
        }
        segments.sort_unstable();
        let mut records = Vec::new();
        let mut next_seq = segments.first().copied().unwrap_or(1);
        let last = segments.len().saturating_sub(1);
        for (i, &first) in segments.iter().enumerate() {
            let path = segment_path(dir, first);
            let mut bytes = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(|e| LogStoreError::io(&path, e))?;
            let (read, good_len, problem) = decode_segment(&bytes);
            if let Some(problem) = problem {
                if i == last {
                    tracing::warn!(file = ?path, offset = good_len, %problem, "cutting a torn log WAL tail");
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| LogStoreError::io(&path, e))?;
                    f.set_len(good_len as u64)
                        .and_then(|_| f.sync_all())
                        .map_err(|e| LogStoreError::io(&path, e))?;
                } else {
                    return Err(LogStoreError::Corrupt {
                        path,
                        what: "log WAL segment",
                        detail: format!("at byte {good_len}: {problem}"),
                    });
                }
            }
            for r in read {
                next_seq = next_seq.max(r.seq + 1);
                records.push(r);
            }
        }
        if segments.is_empty() {
            segments.push(next_seq);
        }
        let active = *segments.last().unwrap_or(&next_seq);
        let path = segment_path(dir, active);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| LogStoreError::io(&path, e))?;
        let segment_bytes = file
            .metadata()
            .map_err(|e| LogStoreError::io(&path, e))?
            .len();
        sync_dir(dir)?;
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                file,
                segments,
                segment_bytes,
                next_seq,
                buf: Vec::new(),
            },
            records,
        ))
    }

    /// Appends the streams as one record, durably; returns its sequence.
    pub fn append<'a, I>(&mut self, streams: I) -> Result<u64, LogStoreError>
    where
        I: IntoIterator<Item = &'a PushStream>,
        I::IntoIter: ExactSizeIterator,
    {
        if self.segment_bytes >= SEGMENT_BYTES {
            self.roll()?;
        }
        let seq = self.next_seq;
        let mut buf = std::mem::take(&mut self.buf);
        encode_record(seq, streams.into_iter(), &mut buf);
        let path = segment_path(&self.dir, *self.segments.last().unwrap_or(&seq));
        let written = self
            .file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data());
        let len = buf.len() as u64;
        self.buf = buf;
        if let Err(e) = written {
            // A partial frame would be cut on the next open; make sure the
            // next append does not land behind it.
            let _ = self.file.set_len(self.segment_bytes);
            return Err(LogStoreError::io(path, e));
        }
        self.segment_bytes += len;
        self.next_seq += 1;
        Ok(seq)
    }

    fn roll(&mut self) -> Result<(), LogStoreError> {
        if self.segment_bytes == 0 {
            return Ok(());
        }
        let first = self.next_seq;
        let path = segment_path(&self.dir, first);
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| LogStoreError::io(&path, e))?;
        sync_dir(&self.dir)?;
        self.segments.push(first);
        self.segment_bytes = 0;
        Ok(())
    }

    /// Deletes segments whose every record is at or below `seq` (indexed and
    /// committed). The segment being written is kept, rolled first when it
    /// is wholly covered and worth reclaiming.
    pub fn truncate_through(&mut self, seq: u64) -> Result<(), LogStoreError> {
        if seq + 1 >= self.next_seq && self.segment_bytes >= SEGMENT_BYTES / 4 {
            self.roll()?;
        }
        while self.segments.len() > 1 && self.segments[1] <= seq + 1 {
            let path = segment_path(&self.dir, self.segments[0]);
            fs::remove_file(&path).map_err(|e| LogStoreError::io(&path, e))?;
            self.segments.remove(0);
        }
        Ok(())
    }

    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn disk_bytes(&self) -> u64 {
        let mut total = 0;
        for &first in &self.segments {
            total += fs::metadata(segment_path(&self.dir, first)).map_or(0, |m| m.len());
        }
        total
    }
}

fn encode_record<'a>(
    seq: u64,
    streams: impl ExactSizeIterator<Item = &'a PushStream>,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    out.extend_from_slice(&seq.to_le_bytes());
    put_varint(out, streams.len() as u64);
    for s in streams {
        put_varint(out, s.labels.len() as u64);
        for l in s.labels.iter() {
            put_bytes(out, l.name.as_bytes());
            put_bytes(out, l.value.as_bytes());
        }
        put_varint(out, s.entries.len() as u64);
        let mut prev = 0i64;
        for e in &s.entries {
            let d = e.ts.wrapping_sub(prev);
            put_varint(out, ((d << 1) ^ (d >> 63)) as u64);
            prev = e.ts;
            put_bytes(out, e.line.as_bytes());
        }
    }
    let payload_len = (out.len() - FRAME_HEADER) as u32;
    let crc = crc32fast::hash(&out[FRAME_HEADER..]);
    out[0..4].copy_from_slice(&payload_len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn get_str(bytes: &mut &[u8]) -> Result<String, String> {
    let len = get_varint(bytes).ok_or("truncated length")? as usize;
    if len > bytes.len() {
        return Err(format!("string of {len} bytes past the end"));
    }
    let (s, rest) = bytes.split_at(len);
    *bytes = rest;
    String::from_utf8(s.to_vec()).map_err(|_| "string is not UTF-8".to_string())
}

fn decode_payload(mut p: &[u8]) -> Result<WalRecord, String> {
    if p.len() < 8 {
        return Err("record shorter than its sequence number".into());
    }
    let seq = u64::from_le_bytes(p[..8].try_into().map_err(|_| "short sequence")?);
    p = &p[8..];
    let n = get_varint(&mut p).ok_or("truncated stream count")? as usize;
    let mut streams = Vec::with_capacity(n.min(p.len()));
    for _ in 0..n {
        let nl = get_varint(&mut p).ok_or("truncated label count")? as usize;
        let mut labels = Vec::with_capacity(nl.min(p.len()));
        for _ in 0..nl {
            let name = get_str(&mut p)?;
            let value = get_str(&mut p)?;
            labels.push(Label::new(name, value));
        }
        let ne = get_varint(&mut p).ok_or("truncated entry count")? as usize;
        let mut entries = Vec::with_capacity(ne.min(p.len()));
        let mut prev = 0i64;
        for _ in 0..ne {
            let z = get_varint(&mut p).ok_or("truncated timestamp")?;
            let ts = prev.wrapping_add(((z >> 1) as i64) ^ -((z & 1) as i64));
            prev = ts;
            entries.push(Entry {
                ts,
                line: get_str(&mut p)?,
            });
        }
        streams.push(PushStream {
            labels: LabelSet::from_labels(labels),
            entries,
        });
    }
    if !p.is_empty() {
        return Err(format!("{} bytes after the last stream", p.len()));
    }
    Ok(WalRecord { seq, streams })
}

/// The intact records of a segment, the length they span, and what stopped
/// the read early, if anything did.
fn decode_segment(bytes: &[u8]) -> (Vec<WalRecord>, usize, Option<String>) {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes.len() - at < FRAME_HEADER {
            return (records, at, Some("truncated frame header".into()));
        }
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        if len > MAX_FRAME || bytes.len() - at - FRAME_HEADER < len {
            return (
                records,
                at,
                Some(format!("frame of {len} bytes past the end")),
            );
        }
        let payload = &bytes[at + FRAME_HEADER..at + FRAME_HEADER + len];
        if crc32fast::hash(payload) != crc {
            return (records, at, Some("checksum mismatch".into()));
        }
        match decode_payload(payload) {
            Ok(r) => records.push(r),
            Err(e) => return (records, at, Some(e)),
        }
        at += FRAME_HEADER + len;
    }
    (records, at, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(app: &str, lines: &[(i64, &str)]) -> PushStream {
        PushStream {
            labels: LabelSet::from_pairs(&[("app", app)]),
            entries: lines.iter().map(|&(t, l)| Entry::new(t, l)).collect(),
        }
    }

    #[test]
    fn records_survive_reopen_and_torn_tails_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        {
            let (mut wal, records) = Wal::open(&wal_dir).unwrap();
            assert!(records.is_empty());
            assert_eq!(
                wal.append(&[stream("a", &[(1, "one"), (-5, "two")])])
                    .unwrap(),
                1
            );
            assert_eq!(
                wal.append(&[stream("b", &[(3, "three")]), stream("c", &[])])
                    .unwrap(),
                2
            );
        }
        // A crash in the middle of a third append.
        let seg = segment_path(&wal_dir, 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let (mut wal, records) = Wal::open(&wal_dir).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].streams[0].entries[1], Entry::new(-5, "two"));
        assert_eq!(
            records[1].streams[1].labels,
            LabelSet::from_pairs(&[("app", "c")])
        );
        assert_eq!(wal.append(&[stream("d", &[(4, "four")])]).unwrap(), 3);
        drop(wal);
        let (_, records) = Wal::open(&wal_dir).unwrap();
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn covered_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&[stream("a", &[(1, "x")])]).unwrap();
        wal.roll().unwrap();
        wal.append(&[stream("a", &[(2, "y")])]).unwrap();
        wal.truncate_through(1).unwrap();
        drop(wal);
        let (wal, records) = Wal::open(dir.path()).unwrap();
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
        assert_eq!(wal.last_seq(), 2);
    }

    #[test]
    fn corruption_before_the_tail_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&[stream("a", &[(1, "x")])]).unwrap();
        wal.roll().unwrap();
        wal.append(&[stream("a", &[(2, "y")])]).unwrap();
        drop(wal);
        let seg = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&seg).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        fs::write(&seg, bytes).unwrap();
        let err = Wal::open(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("00000000000000000001") && err.contains("checksum"),
            "{err}"
        );
    }
}
