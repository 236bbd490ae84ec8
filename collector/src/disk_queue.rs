//! The send queue on disk: what the scrapes produced, as ready-to-send
//! remote_write bodies in segment files, read back in order by the sender.
//! A server outage only makes the queue longer; when the server returns,
//! the backlog goes out oldest first. The sender's position is saved
//! (atomically) as it advances, so a restarted agent resumes where it
//! stopped: a batch may be sent twice after a crash, never skipped (the
//! server drops exact duplicates).
//!
//! Files: `NNNNNNNN.seg` (records `len: u32 LE`, `crc32: u32 LE`, body) and
//! `position` (`segment offset`). A torn record at the end of the newest
//! segment (a crash mid-write) is cut off at startup.
//!
//! Bounded by `max_bytes`: when the backlog would exceed it, the oldest
//! segment is dropped and its samples counted as dropped.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("send queue {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> QueueError + '_ {
    move |source| QueueError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const HEADER: usize = 8;
/// Segments are cut at this size, so consumed data is freed in steps.
const SEGMENT_BYTES: u64 = 8 << 20;
/// Larger records than this are corruption, not data.
const MAX_RECORD: usize = 256 << 20;

/// Where the reader stands: the next record to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// One queued body and where the next one starts.
pub struct Record {
    /// A snappy-compressed WriteRequest.
    pub body: Vec<u8>,
    /// Samples in it (from the record's 8-byte prefix).
    pub samples: u64,
    pub next: Position,
}

pub struct DiskQueue {
    dir: PathBuf,
    /// Segment numbers on disk, oldest first; the last is being written.
    segments: Vec<u64>,
    writer: File,
    write_end: u64,
    read: Position,
    max_bytes: u64,
    /// Bytes of all segments, for the bound.
    total_bytes: u64,
    /// Samples dropped by the bound, since start.
    pub dropped_samples: u64,
}

fn seg_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:08}.seg"))
}

impl DiskQueue {
    /// Opens (or creates) the queue in `dir`, repairing a torn tail.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<DiskQueue, QueueError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut segments: Vec<u64> = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse::<u64>().ok()
            })
            .collect();
        segments.sort_unstable();
        if segments.is_empty() {
            segments.push(1);
        }
        let last = *segments.last().unwrap_or(&1);
        let last_path = seg_path(dir, last);
        let valid_end = valid_length(&last_path)?;
        let writer = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&last_path)
            .map_err(io_err(&last_path))?;
        writer.set_len(valid_end).map_err(io_err(&last_path))?;
        let mut total_bytes = 0;
        for &s in &segments {
            let p = seg_path(dir, s);
            total_bytes += fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        }
        let read = read_position(dir)
            .filter(|p| segments.contains(&p.segment))
            .unwrap_or(Position {
                segment: segments[0],
                offset: 0,
            });
        let mut q = DiskQueue {
            dir: dir.to_path_buf(),
            segments,
            writer,
            write_end: valid_end,
            read,
            max_bytes: max_bytes.max(SEGMENT_BYTES * 2),
            total_bytes,
            dropped_samples: 0,
        };
        q.clamp_read();
        Ok(q)
    }

    fn clamp_read(&mut self) {
        if self.read.segment == self.writer_segment() && self.read.offset > self.write_end {
            self.read.offset = self.write_end;
        }
    }

    fn writer_segment(&self) -> u64 {
        *self.segments.last().unwrap_or(&1)
    }

    /// Appends one body holding `samples` samples. Not fsync'd: a killed
    /// process keeps it (the page cache has it); power loss may lose the
    /// newest records, as with Prometheus's WAL.
    pub fn append(&mut self, body: &[u8], samples: u64) -> Result<(), QueueError> {
        if self.write_end >= SEGMENT_BYTES {
            self.rotate()?;
        }
        let mut rec = Vec::with_capacity(HEADER + 8 + body.len());
        let payload_len = 8 + body.len();
        rec.extend_from_slice(&(payload_len as u32).to_le_bytes());
        let mut payload = Vec::with_capacity(payload_len);
        payload.extend_from_slice(&samples.to_le_bytes());
        payload.extend_from_slice(body);
        rec.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        rec.extend_from_slice(&payload);
        let path = seg_path(&self.dir, self.writer_segment());
        self.writer
            .seek(SeekFrom::Start(self.write_end))
            .and_then(|_| self.writer.write_all(&rec))
            .map_err(io_err(&path))?;
        self.write_end += rec.len() as u64;
        self.total_bytes += rec.len() as u64;
        while self.total_bytes > self.max_bytes && self.segments.len() > 1 {
            self.drop_oldest()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), QueueError> {
        let old = seg_path(&self.dir, self.writer_segment());
        self.writer.sync_data().map_err(io_err(&old))?;
        let next = self.writer_segment() + 1;
        let path = seg_path(&self.dir, next);
        self.writer = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        self.segments.push(next);
        self.write_end = 0;
        Ok(())
    }

    fn drop_oldest(&mut self) -> Result<(), QueueError> {
        let oldest = self.segments[0];
        let path = seg_path(&self.dir, oldest);
        // Count what is lost: the unread part of the dropped segment.
        let from = if self.read.segment == oldest {
            self.read.offset
        } else if self.read.segment > oldest {
            u64::MAX
        } else {
            0
        };
        if from != u64::MAX {
            self.dropped_samples += count_samples(&path, from);
        }
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        fs::remove_file(&path).map_err(io_err(&path))?;
        self.total_bytes = self.total_bytes.saturating_sub(len);
        self.segments.remove(0);
        if self.read.segment <= oldest {
            self.read = Position {
                segment: self.segments[0],
                offset: 0,
            };
            self.save_position()?;
        }
        Ok(())
    }

    /// The next unsent record, if any.
    pub fn peek(&self) -> Result<Option<Record>, QueueError> {
        let mut pos = self.read;
        loop {
            let end = if pos.segment == self.writer_segment() {
                self.write_end
            } else {
                u64::MAX
            };
            if pos.offset < end {
                let path = seg_path(&self.dir, pos.segment);
                if let Some((samples, body, len)) = read_record(&path, pos.offset)? {
                    return Ok(Some(Record {
                        body,
                        samples,
                        next: Position {
                            segment: pos.segment,
                            offset: pos.offset + len,
                        },
                    }));
                }
            }
            // This segment is done; the next one, if it exists.
            match self.segments.iter().find(|&&s| s > pos.segment) {
                Some(&s) => {
                    pos = Position {
                        segment: s,
                        offset: 0,
                    }
                }
                None => return Ok(None),
            }
        }
    }

    /// Marks everything before `to` as sent, saves the position and
    /// deletes segments that are wholly sent.
    pub fn commit(&mut self, to: Position) -> Result<(), QueueError> {
        self.read = to;
        while self.segments.len() > 1 && self.segments[0] < self.read.segment {
            let path = seg_path(&self.dir, self.segments[0]);
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            fs::remove_file(&path).map_err(io_err(&path))?;
            self.total_bytes = self.total_bytes.saturating_sub(len);
            self.segments.remove(0);
        }
        self.save_position()
    }

    fn save_position(&self) -> Result<(), QueueError> {
        let tmp = self.dir.join("position.tmp");
        let text = format!("{} {}\n", self.read.segment, self.read.offset);
        fs::write(&tmp, text)
            .and_then(|_| fs::rename(&tmp, self.dir.join("position")))
            .map_err(io_err(&tmp))
    }

    /// Bytes not yet sent (approximate: whole segments count).
    pub fn backlog_bytes(&self) -> u64 {
        let mut n = 0;
        for &s in &self.segments {
            let len = if s == self.writer_segment() {
                self.write_end
            } else {
                fs::metadata(seg_path(&self.dir, s))
                    .map(|m| m.len())
                    .unwrap_or(0)
            };
            if s == self.read.segment {
                n += len.saturating_sub(self.read.offset);
            } else if s > self.read.segment {
                n += len;
            }
        }
        n
    }
}

fn read_position(dir: &Path) -> Option<Position> {
    let text = fs::read_to_string(dir.join("position")).ok()?;
    let mut it = text.split_whitespace();
    Some(Position {
        segment: it.next()?.parse().ok()?,
        offset: it.next()?.parse().ok()?,
    })
}

/// `(samples, body, record length)` of the record at `offset`, or `None`
/// when the file ends or holds a torn or corrupt record there.
fn read_record(path: &Path, offset: u64) -> Result<Option<(u64, Vec<u8>, u64)>, QueueError> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    f.seek(SeekFrom::Start(offset)).map_err(io_err(path))?;
    let mut header = [0u8; HEADER];
    if f.read_exact(&mut header).is_err() {
        return Ok(None);
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if !(8..=MAX_RECORD).contains(&len) {
        return Ok(None);
    }
    let mut payload = vec![0u8; len];
    if f.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
        return Ok(None);
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&payload[..8]);
    let body = payload.split_off(8);
    Ok(Some((u64::from_le_bytes(n), body, (HEADER + len) as u64)))
}

/// Length of the valid prefix of a segment (whole, checksummed records).
fn valid_length(path: &Path) -> Result<u64, QueueError> {
    let mut off = 0;
    while let Some((_, _, len)) = read_record(path, off)? {
        off += len;
    }
    Ok(off)
}

fn count_samples(path: &Path, mut off: u64) -> u64 {
    let mut n = 0;
    while let Ok(Some((samples, _, len))) = read_record(path, off) {
        n += samples;
        off += len;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut DiskQueue) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(r) = q.peek().unwrap() {
            out.push(r.body);
            q.commit(r.next).unwrap();
        }
        out
    }

    #[test]
    fn records_come_back_in_order_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = DiskQueue::open(dir.path(), 1 << 30).unwrap();
        for i in 0..5u8 {
            q.append(&[i; 10], 1).unwrap();
        }
        let r = q.peek().unwrap().unwrap();
        assert_eq!(r.body, vec![0; 10]);
        q.commit(r.next).unwrap();
        drop(q);
        // Restarted: resumes after the committed record.
        let mut q = DiskQueue::open(dir.path(), 1 << 30).unwrap();
        q.append(&[9; 3], 1).unwrap();
        let got = drain(&mut q);
        assert_eq!(
            got,
            vec![
                vec![1; 10],
                vec![2; 10],
                vec![3; 10],
                vec![4; 10],
                vec![9; 3]
            ]
        );
        assert_eq!(q.backlog_bytes(), 0);
    }

    #[test]
    fn a_torn_tail_is_cut_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = DiskQueue::open(dir.path(), 1 << 30).unwrap();
        q.append(b"whole", 1).unwrap();
        drop(q);
        let seg = seg_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[50, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let mut q = DiskQueue::open(dir.path(), 1 << 30).unwrap();
        q.append(b"after", 1).unwrap();
        assert_eq!(drain(&mut q), vec![b"whole".to_vec(), b"after".to_vec()]);
    }

    #[test]
    fn segments_rotate_are_freed_and_the_bound_drops_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = DiskQueue::open(dir.path(), 0).unwrap(); // bound: 2 segments
        let body = vec![7u8; 1 << 20];
        for _ in 0..30 {
            q.append(&body, 100).unwrap();
        }
        assert!(q.segments.len() <= 3, "{:?}", q.segments);
        assert!(q.dropped_samples > 0);
        let sent = drain(&mut q).len() as u64;
        assert_eq!(
            sent * 100 + q.dropped_samples,
            3000,
            "every sample sent or counted"
        );
        assert_eq!(q.segments.len(), 1);
    }
}
