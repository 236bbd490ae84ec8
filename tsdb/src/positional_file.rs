//! Block files read by queries with positional reads (`pread`): threads
//! share one open file without a shared offset, and, unlike a memory map,
//! the pages read do not count towards the server's resident memory (the
//! kernel's page cache keeps them, as it keeps any other store's files).
//! A query over 4 h of 100 000 series touched ~70 MiB of mapped pages.

use bytes::Bytes;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// An open, immutable block file. Deleting it (compaction, retention)
/// leaves it readable through this handle for the queries in flight.
pub(crate) struct PositionalFile {
    file: Arc<File>,
    len: u64,
}

impl PositionalFile {
    pub fn new(file: File) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(PositionalFile {
            file: Arc::new(file),
            len,
        })
    }
}

impl Length for PositionalFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for PositionalFile {
    type T = BufReader<PositionalRead>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        // What is read through this is a page header (tens of bytes): a
        // small buffer, not the default 8 KiB per page.
        Ok(BufReader::with_capacity(
            1024,
            PositionalRead {
                file: self.file.clone(),
                pos: start,
            },
        ))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let mut buf = vec![0u8; length];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(buf.into())
    }
}

/// A reader from one offset of a [`PositionalFile`], with its own position.
pub(crate) struct PositionalRead {
    file: Arc<File>,
    pos: u64,
}

impl Read for PositionalRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_and_streams_from_offsets_independently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        std::fs::write(&path, &data).unwrap();
        let f = PositionalFile::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(f.len(), 100_000);
        assert_eq!(&f.get_bytes(1000, 50).unwrap()[..], &data[1000..1050]);
        let mut a = f.get_read(10).unwrap();
        let mut b = f.get_read(99_990).unwrap();
        let mut buf = [0u8; 5];
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, &data[10..15]);
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, &data[99_990..]);
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, &data[15..20]);
        // Past the end is an error naming it, not a short buffer.
        assert!(f.get_bytes(99_999, 10).is_err());
    }
}
