//! Head chunk files: frozen head chunks written to disk and read back
//! through a read-only memory map, so the head's resident memory holds only
//! each series' open chunk (as Prometheus's m-mapped head chunks do).
//!
//! The files are scratch space, not a source of truth: the WAL is. They are
//! emptied when the store opens, WAL replay writes them again, and a segment
//! file is deleted as soon as no chunk refers to it (after the cuts that
//! persisted its chunks). Writes go through `pwrite`, so pages the process
//! never reads back do not count in its RSS; reads that must not grow the
//! RSS (the head cut) use `pread` instead of the map.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Size of one segment file (sparse: only written bytes take disk space).
pub const SEGMENT_SIZE: u64 = 64 << 20;

/// One mapped segment file. Dropping the last reference unmaps and deletes it.
pub struct Segment {
    path: PathBuf,
    file: File,
    map: memmap2::Mmap,
}

impl Drop for Segment {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot delete head chunk file");
        }
    }
}

/// A chunk's bytes inside a segment.
#[derive(Clone)]
pub struct FileChunk {
    segment: Arc<Segment>,
    offset: u32,
    len: u32,
}

impl FileChunk {
    /// The bytes, through the map (touching them makes them resident).
    pub fn bytes(&self) -> &[u8] {
        let start = self.offset as usize;
        // The range was written before this handle existed and the map
        // covers the whole segment, so the slice is in bounds.
        self.segment
            .map
            .get(start..start + self.len as usize)
            .unwrap_or(&[])
    }

    /// The bytes copied out with `pread`, leaving the map untouched.
    pub fn read_detached(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len as usize];
        self.segment
            .file
            .read_exact_at(&mut buf, u64::from(self.offset))?;
        Ok(buf)
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for FileChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FileChunk({}@{}+{})",
            self.segment.path.display(),
            self.offset,
            self.len
        )
    }
}

struct Writer {
    segment: Arc<Segment>,
    next_offset: u64,
}

/// The directory of head chunk files and the segment being appended to.
pub struct ChunkFiles {
    dir: PathBuf,
    /// Distinguishes this opening's segment names from an earlier one's in
    /// the same process, whose last handles may still delete their files.
    prefix: String,
    segment_size: u64,
    current: Mutex<Option<Writer>>,
    next_id: AtomicU64,
    /// Chunks written, and chunks kept in memory because a write failed.
    pub written: AtomicU64,
    pub failed: AtomicU64,
}

impl ChunkFiles {
    /// Opens `dir`, deleting what a previous run left there.
    pub fn open(dir: &Path) -> io::Result<ChunkFiles> {
        Self::with_segment_size(dir, SEGMENT_SIZE)
    }

    pub fn with_segment_size(dir: &Path, segment_size: u64) -> io::Result<ChunkFiles> {
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
            }
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(ChunkFiles {
            dir: dir.to_path_buf(),
            prefix: format!("{nanos:x}"),
            segment_size: segment_size.min(u64::from(u32::MAX)),
            current: Mutex::new(None),
            next_id: AtomicU64::new(1),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    fn new_segment(&self) -> io::Result<Arc<Segment>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{}-{id:08}", self.prefix));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let made = file.set_len(self.segment_size).and_then(|()| {
            // SAFETY: the file is private to this process (created here with
            // create_new, in the store's own directory) and only ever grows
            // by pwrite into ranges no chunk handle refers to yet; it is
            // never truncated while mapped.
            unsafe { memmap2::MmapOptions::new().map(&file) }
        });
        match made {
            Ok(map) => Ok(Arc::new(Segment { path, file, map })),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Appends `bytes` and returns the handle to read them back.
    pub fn write(&self, bytes: &[u8]) -> io::Result<FileChunk> {
        let len = bytes.len() as u64;
        if len == 0 || len > self.segment_size {
            return Err(io::Error::other(format!(
                "chunk of {len} bytes does not fit a {}-byte segment",
                self.segment_size
            )));
        }
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let full = match cur.as_ref() {
            Some(w) => w.next_offset + len > self.segment_size,
            None => true,
        };
        if full {
            *cur = None;
            *cur = Some(Writer {
                segment: self.new_segment()?,
                next_offset: 0,
            });
        }
        let Some(w) = cur.as_mut() else {
            return Err(io::Error::other("no head chunk segment"));
        };
        w.segment.file.write_all_at(bytes, w.next_offset)?;
        let chunk = FileChunk {
            segment: w.segment.clone(),
            offset: w.next_offset as u32,
            len: len as u32,
        };
        w.next_offset += len;
        self.written.fetch_add(1, Ordering::Relaxed);
        Ok(chunk)
    }

    /// Deletes the segment being appended to when no chunk refers to it
    /// any more (after a cut or a flush emptied the head), so an idle head
    /// keeps no chunk file; the next write starts a new one.
    pub fn release_idle(&self) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur
            .as_ref()
            .is_some_and(|w| Arc::strong_count(&w.segment) == 1)
        {
            *cur = None;
        }
    }

    /// Segment files currently on disk.
    pub fn segment_count(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| d.filter(|e| e.is_ok()).count())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_chunks_read_back_and_segments_are_deleted_when_unused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("c")).unwrap();
        std::fs::write(dir.path().join("c/00000009"), b"left over").unwrap();
        let files = ChunkFiles::with_segment_size(&dir.path().join("c"), 100).unwrap();
        assert_eq!(files.segment_count(), 0, "leftovers removed on open");
        let a = files.write(&[1u8; 60]).unwrap();
        let b = files.write(&[2u8; 60]).unwrap(); // does not fit: second segment
        let c = files.write(&[3u8; 30]).unwrap();
        assert_eq!(a.bytes(), &[1u8; 60]);
        assert_eq!(b.bytes(), &[2u8; 60]);
        assert_eq!(c.bytes(), &[3u8; 30]);
        assert_eq!(c.read_detached().unwrap(), vec![3u8; 30]);
        assert_eq!(files.segment_count(), 2);
        drop(a);
        assert_eq!(files.segment_count(), 1, "first segment unused, deleted");
        drop(b);
        assert_eq!(
            files.segment_count(),
            1,
            "the writer still holds the second"
        );
        assert!(files.write(&[0u8; 101]).is_err());
        assert!(files.write(&[]).is_err());
    }

    #[test]
    fn the_segment_being_written_is_released_once_unused() {
        let dir = tempfile::tempdir().unwrap();
        let files = ChunkFiles::with_segment_size(dir.path(), 1024).unwrap();
        let c = files.write(b"abc").unwrap();
        files.release_idle();
        assert_eq!(files.segment_count(), 1, "a live chunk keeps its segment");
        drop(c);
        files.release_idle();
        assert_eq!(files.segment_count(), 0);
        let c = files.write(b"def").unwrap();
        assert_eq!(c.bytes(), b"def");
        assert_eq!(files.segment_count(), 1);
    }
}
