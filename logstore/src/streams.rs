//! A partition's streams: the label set behind each stream id its blocks
//! carry, so label and series queries never open the index, and stream
//! selectors become a set of ids. Persisted as an append-only file of
//! checksummed frames (`len`, `crc32`, `id: u64 LE`, labels), fsync'd
//! before the tantivy commit that first refers to a new id.

use crate::block::{get_varint, put_varint};
use crate::error::LogStoreError;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tsdb::{Label, LabelSet};

/// A stream's id: the stable hash of its labels.
pub(crate) type StreamId = u64;

pub(crate) fn stream_id(labels: &LabelSet) -> StreamId {
    labels.stable_hash()
}

pub(crate) struct StreamRegistry {
    path: PathBuf,
    streams: HashMap<StreamId, LabelSet>,
    unsaved: Vec<StreamId>,
}

impl StreamRegistry {
    pub fn open(path: &Path) -> Result<Self, LogStoreError> {
        let mut streams = HashMap::new();
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)
                    .map_err(|e| LogStoreError::io(path, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LogStoreError::io(path, e)),
        }
        let mut at = 0;
        while bytes.len() - at >= 8 {
            let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
                as usize;
            let crc =
                u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
            let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
                break;
            };
            if crc32fast::hash(payload) != crc {
                break;
            }
            match decode(payload) {
                Some((id, labels)) => {
                    streams.insert(id, labels);
                }
                None => break,
            }
            at += 8 + len;
        }
        if at < bytes.len() {
            // Only a crash mid-append leaves a bad tail, and a stream is
            // saved before any commit refers to it: nothing committed is lost.
            tracing::warn!(file = ?path, offset = at, "cutting a torn stream registry tail");
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| LogStoreError::io(path, e))?;
            f.set_len(at as u64)
                .map_err(|e| LogStoreError::io(path, e))?;
        }
        Ok(StreamRegistry {
            path: path.to_path_buf(),
            streams,
            unsaved: Vec::new(),
        })
    }

    /// Registers a stream (in memory until [`StreamRegistry::save`]).
    pub fn insert(&mut self, id: StreamId, labels: &LabelSet) {
        if let std::collections::hash_map::Entry::Vacant(v) = self.streams.entry(id) {
            v.insert(labels.clone());
            self.unsaved.push(id);
        }
    }

    pub fn save(&mut self) -> Result<(), LogStoreError> {
        if self.unsaved.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        let mut frame = Vec::new();
        for id in &self.unsaved {
            let Some(labels) = self.streams.get(id) else {
                continue;
            };
            frame.clear();
            frame.extend_from_slice(&id.to_le_bytes());
            put_varint(&mut frame, labels.len() as u64);
            for l in labels.iter() {
                for s in [l.name, l.value] {
                    put_varint(&mut frame, s.len() as u64);
                    frame.extend_from_slice(s.as_bytes());
                }
            }
            buf.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(&frame).to_le_bytes());
            buf.extend_from_slice(&frame);
        }
        let path = &self.path;
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(&buf).and_then(|_| f.sync_data()))
            .map_err(|e| LogStoreError::io(path, e))?;
        self.unsaved.clear();
        Ok(())
    }

    #[cfg(test)]
    pub fn get(&self, id: StreamId) -> Option<&LabelSet> {
        self.streams.get(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (StreamId, &LabelSet)> {
        self.streams.iter().map(|(&id, l)| (id, l))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.streams.len()
    }
}

fn decode(mut p: &[u8]) -> Option<(StreamId, LabelSet)> {
    let id = u64::from_le_bytes(p.get(..8)?.try_into().ok()?);
    p = &p[8..];
    let n = get_varint(&mut p)? as usize;
    let mut labels = Vec::with_capacity(n.min(p.len()));
    for _ in 0..n {
        let mut pair = [String::new(), String::new()];
        for s in &mut pair {
            let len = get_varint(&mut p)? as usize;
            let bytes = p.get(..len)?;
            *s = std::str::from_utf8(bytes).ok()?.to_string();
            p = &p[len..];
        }
        let [name, value] = pair;
        labels.push(Label::new(name, value));
    }
    p.is_empty().then(|| (id, LabelSet::from_labels(labels)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_streams_reload_and_torn_tails_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("streams");
        let a = LabelSet::from_pairs(&[("app", "a"), ("namespace", "default")]);
        let b = LabelSet::from_pairs(&[("app", "b")]);
        let mut reg = StreamRegistry::open(&path).unwrap();
        reg.insert(stream_id(&a), &a);
        reg.insert(stream_id(&a), &a);
        reg.save().unwrap();
        reg.insert(stream_id(&b), &b);
        reg.save().unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&[9, 0, 0])
            .unwrap();
        let reg = StreamRegistry::open(&path).unwrap();
        assert_eq!(reg.len(), 2);
        assert_eq!(reg.get(stream_id(&a)), Some(&a));
        assert_eq!(reg.get(stream_id(&b)), Some(&b));
        let len = std::fs::metadata(&path).unwrap().len();
        let reg = StreamRegistry::open(&path).unwrap();
        assert_eq!(reg.len(), 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    }
}
