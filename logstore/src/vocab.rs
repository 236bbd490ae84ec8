//! A partition's vocabulary: each distinct token once, one per line,
//! appended as blocks are indexed and fsync'd before the commit that uses
//! them. A needle word that may sit inside or at the end of a token
//! (`|= "7f3a9c"`) is looked up by a SIMD substring search over this file
//! instead of a walk of every term in tantivy's dictionaries; the tokens
//! found become an exact term set.
//!
//! Tokens are deduplicated by a 64-bit hash while the partition takes
//! writes; the set is dropped with the writer and rebuilt from the file
//! when writes resume.
//!
//! Beside it, `vocab.grams` holds one record per 64 KiB chunk of the
//! vocabulary: a 65 536-bit set of the hashed 4-grams of the tokens that
//! start in the chunk, the vocabulary length it was computed at, and a
//! checksum. A word of four or more bytes skips every chunk missing one of
//! its 4-grams; a missing or stale record (it does not cover the chunk's
//! tokens) only means that chunk is scanned. Records are fsync'd with the
//! vocabulary; damaged ones (a crash mid-write) are recomputed when the
//! partition opens, so queries need not checksum them.

use crate::error::LogStoreError;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The hash already is one: pass it through.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type TokenSet = HashSet<u64, BuildHasherDefault<IdentityHasher>>;

/// A 64-bit hash of a token (wyhash-style multiply-fold over 8-byte words).
pub(crate) fn token_hash(b: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (b.len() as u64).wrapping_mul(K);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let m = u128::from(h ^ w).wrapping_mul(u128::from(K ^ 0xa076_1d64_78bd_642f));
        h = (m as u64) ^ ((m >> 64) as u64);
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    let m = u128::from(h ^ u64::from_le_bytes(last))
        .wrapping_mul(u128::from(K ^ 0xe703_7ed1_a0b4_28db));
    (m as u64) ^ ((m >> 64) as u64)
}

const CHUNK: usize = 64 << 10;
const GRAM_BITS: usize = 1 << 16;
const RECORD_HEADER: usize = 16;
const RECORD: usize = RECORD_HEADER + GRAM_BITS / 8;

fn grams_path(vocab: &Path) -> PathBuf {
    vocab.with_extension("grams")
}

fn gram_bit(g: &[u8]) -> usize {
    let v = u32::from_le_bytes([g[0], g[1], g[2], g[3]]);
    (v.wrapping_mul(0x9e37_79b1) >> 16) as usize
}

/// `[start, end)` of the tokens (with their newlines) that start in chunk `k`.
fn chunk_region(bytes: &[u8], k: usize) -> (usize, usize) {
    let after_newline_from = |at: usize| -> usize {
        if at == 0 {
            return 0;
        }
        memchr::memchr(b'\n', &bytes[at - 1..]).map_or(bytes.len(), |p| at + p)
    };
    let start = after_newline_from((k * CHUNK).min(bytes.len()));
    let end = after_newline_from(((k + 1) * CHUNK).min(bytes.len()));
    (start, end.max(start))
}

/// The gram record of chunk `k` as of `bytes`.
fn gram_record(bytes: &[u8], k: usize) -> Vec<u8> {
    let (start, end) = chunk_region(bytes, k);
    let mut bits = vec![0u8; GRAM_BITS / 8];
    for token in bytes[start..end].split(|&b| b == b'\n') {
        for g in token.windows(4) {
            let i = gram_bit(g);
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    let mut rec = Vec::with_capacity(RECORD);
    rec.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    rec.extend_from_slice(&crc32fast::hash(&bits).to_le_bytes());
    rec.extend_from_slice(&[0; 4]);
    rec.extend_from_slice(&bits);
    rec
}

/// Rewrites the gram records of the chunks from `from_len`'s to the end.
fn update_grams(vocab: &Path, from_len: usize) -> Result<(), LogStoreError> {
    let file = File::open(vocab).map_err(|e| LogStoreError::io(vocab, e))?;
    let len = file
        .metadata()
        .map_err(|e| LogStoreError::io(vocab, e))?
        .len() as usize;
    if len == 0 {
        return Ok(());
    }
    // SAFETY: as in `VocabMaps::get`: append-only, read below `len`.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(&file) }
        .map_err(|e| LogStoreError::io(vocab, e))?;
    let bytes: &[u8] = &map;
    let path = grams_path(vocab);
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| LogStoreError::io(&path, e))?;
    // The chunk before may end in a token that was still open.
    let first = (from_len / CHUNK).saturating_sub(1);
    let last = (bytes.len() - 1) / CHUNK;
    for k in first..=last {
        f.write_all_at(&gram_record(bytes, k), (k * RECORD) as u64)
            .map_err(|e| LogStoreError::io(&path, e))?;
    }
    f.sync_data().map_err(|e| LogStoreError::io(&path, e))
}

/// Recomputes gram records that fail their checksum (a crash in the
/// middle of writing one); run when a partition opens, before queries.
pub(crate) fn repair_grams(vocab: &Path) -> Result<(), LogStoreError> {
    let path = grams_path(vocab);
    let Ok(grams) = std::fs::read(&path) else {
        return Ok(());
    };
    let bad: Vec<usize> = grams
        .chunks(RECORD)
        .enumerate()
        .filter(|(_, r)| {
            r.len() < RECORD
                || crc32fast::hash(&r[RECORD_HEADER..])
                    != u32::from_le_bytes([r[8], r[9], r[10], r[11]])
        })
        .map(|(k, _)| k)
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    tracing::warn!(file = ?path, records = bad.len(), "recomputing damaged vocabulary filters");
    let bytes = std::fs::read(vocab).map_err(|e| LogStoreError::io(vocab, e))?;
    let f = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| LogStoreError::io(&path, e))?;
    for k in bad {
        let rec = if k * CHUNK < bytes.len() {
            gram_record(&bytes, k)
        } else {
            // Past the vocabulary's end: a record that admits everything.
            let mut r = vec![0u8; RECORD_HEADER];
            r.extend(std::iter::repeat_n(0xffu8, GRAM_BITS / 8));
            let crc = crc32fast::hash(&r[RECORD_HEADER..]);
            r[8..12].copy_from_slice(&crc.to_le_bytes());
            r
        };
        f.write_all_at(&rec, (k * RECORD) as u64)
            .map_err(|e| LogStoreError::io(&path, e))?;
    }
    f.sync_data().map_err(|e| LogStoreError::io(&path, e))
}

pub(crate) struct Vocab {
    path: PathBuf,
    seen: Option<TokenSet>,
    pending: Vec<u8>,
}

/// Where a needle word must sit in a matching token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Anywhere,
    End,
}

impl Vocab {
    pub fn new(path: &Path) -> Self {
        Vocab {
            path: path.to_path_buf(),
            seen: None,
            pending: Vec::new(),
        }
    }

    fn load_seen(&mut self) -> Result<&mut TokenSet, LogStoreError> {
        if self.seen.is_none() {
            let mut set = TokenSet::default();
            match std::fs::read(&self.path) {
                Ok(bytes) => {
                    for t in bytes.split(|&b| b == b'\n').filter(|t| !t.is_empty()) {
                        set.insert(token_hash(t));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogStoreError::io(&self.path, e)),
            }
            self.seen = Some(set);
        }
        Ok(self.seen.get_or_insert_with(TokenSet::default))
    }

    /// Notes tokens (already lowercased, with their [`token_hash`]).
    pub fn add_tokens<'a>(
        &mut self,
        tokens: impl IntoIterator<Item = (u64, &'a str)>,
    ) -> Result<(), LogStoreError> {
        let mut pending = std::mem::take(&mut self.pending);
        let seen = self.load_seen()?;
        for (h, t) in tokens {
            if seen.insert(h) {
                pending.extend_from_slice(t.as_bytes());
                pending.push(b'\n');
            }
        }
        self.pending = pending;
        Ok(())
    }

    /// Notes the tokens of a line (saved by [`Vocab::save`]).
    #[cfg(test)]
    pub fn add_line(&mut self, line: &str) -> Result<(), LogStoreError> {
        let mut t = crate::tokenizer::BlockTokens::default();
        t.add_line(line);
        self.add_tokens(t.tokens())
    }

    pub fn save(&mut self) -> Result<(), LogStoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = &self.path;
        let before = std::fs::metadata(path).map_or(0, |m| m.len() as usize);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(&self.pending).and_then(|_| f.sync_data()))
            .map_err(|e| LogStoreError::io(path, e))?;
        self.pending.clear();
        update_grams(path, before)
    }

    /// Forgets the dedupe set (the partition stopped taking writes).
    pub fn release(&mut self) {
        self.seen = None;
    }
}

/// Saved tokens holding `word` (lowercase) where `anchor` says; `None`
/// when more than `max` do (the caller then walks the dictionary).
type Maps = (u64, u64, Arc<memmap2::Mmap>, Option<Arc<memmap2::Mmap>>);

/// A partition's vocabulary and filter mappings, kept across queries: a
/// fresh mapping per query pays a page fault for every record it touches.
/// Remapped when either file's length changes (records rewritten in place
/// show through the shared mapping).
#[derive(Default)]
pub(crate) struct VocabMaps {
    cached: Mutex<Option<Maps>>,
}

impl VocabMaps {
    fn get(&self, path: &Path) -> Result<Option<Maps>, LogStoreError> {
        let vlen = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LogStoreError::io(path, e)),
        };
        let gpath = grams_path(path);
        let glen = std::fs::metadata(&gpath).map_or(0, |m| m.len());
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cached.as_ref() {
            if c.0 == vlen && c.1 == glen {
                return Ok(Some(c.clone()));
            }
        }
        if vlen == 0 {
            // Nothing indexed: walking the (empty) dictionary is as cheap.
            return Ok(None);
        }
        let file = File::open(path).map_err(|e| LogStoreError::io(path, e))?;
        // SAFETY: the file is only ever appended to (and deleted whole with
        // its partition, which leaves an existing mapping valid); bytes past
        // the length mapped here are never read.
        let vmap = unsafe { memmap2::MmapOptions::new().len(vlen as usize).map(&file) }
            .map_err(|e| LogStoreError::io(path, e))?;
        let gmap = if glen > 0 {
            File::open(&gpath)
                .ok()
                // SAFETY: records are rewritten in place, only ever adding
                // bits; a record read mid-rewrite admits at least as much.
                .and_then(|f| {
                    unsafe { memmap2::MmapOptions::new().len(glen as usize).map(&f) }.ok()
                })
                .map(Arc::new)
        } else {
            None
        };
        let maps = (vlen, glen, Arc::new(vmap), gmap);
        *cached = Some(maps.clone());
        Ok(Some(maps))
    }
}

/// Saved tokens holding `word` (lowercase) where `anchor` says; `None`
/// when more than `max` do, or there is no vocabulary (the caller then
/// walks the dictionary).
pub(crate) fn tokens_containing(
    maps: &VocabMaps,
    path: &Path,
    word: &str,
    anchor: Anchor,
    max: usize,
) -> Result<Option<Vec<String>>, LogStoreError> {
    // No vocabulary (nothing indexed yet, or a partition from before
    // vocabularies): the dictionary walk is the safe answer.
    let Some((len, _, vmap, gmap)) = maps.get(path)? else {
        return Ok(None);
    };
    if len == 0 || word.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let bytes: &[u8] = &vmap[..len as usize];
    let grams: &[u8] = gmap.as_deref().map_or(&[], |m| &m[..]);
    let wanted: Vec<usize> = word.as_bytes().windows(4).map(gram_bit).collect();
    let mut out = Vec::new();
    let chunks = (bytes.len() - 1) / CHUNK + 1;
    for k in 0..chunks {
        let (start, end) = chunk_region(bytes, k);
        if start >= end {
            continue;
        }
        if !wanted.is_empty() {
            if let Some(rec) = grams.get(k * RECORD..(k + 1) * RECORD) {
                let covered = u64::from_le_bytes(rec[0..8].try_into().unwrap_or([0; 8])) as usize;
                let crc = u32::from_le_bytes(rec[8..12].try_into().unwrap_or([0; 4]));
                let bits = &rec[RECORD_HEADER..];
                // Checksums were verified when the partition opened
                // (`repair_grams`) and records are written whole since.
                let _ = crc;
                let trusted = covered >= end;
                if trusted && !wanted.iter().all(|&i| bits[i / 8] & (1 << (i % 8)) != 0) {
                    continue;
                }
            }
        }
        scan_region(&bytes[..end], start, word, anchor, &mut out);
        if out.len() > max {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

/// Tokens in `bytes[start..]` (whole tokens) holding `word` where `anchor` says.
fn scan_region(bytes: &[u8], start: usize, word: &str, anchor: Anchor, out: &mut Vec<String>) {
    let mut last_start = usize::MAX;
    for hit in memchr::memmem::find_iter(&bytes[start..], word.as_bytes()) {
        let hit = hit + start;
        let end_of_word = hit + word.len();
        let start = memchr::memrchr(b'\n', &bytes[..hit]).map_or(0, |n| n + 1);
        let Some(nl) = memchr::memchr(b'\n', &bytes[end_of_word..]) else {
            continue;
        };
        let end = end_of_word + nl;
        if anchor == Anchor::End && end != end_of_word {
            continue;
        }
        if start == last_start {
            continue;
        }
        last_start = start;
        if let Ok(t) = std::str::from_utf8(&bytes[start..end]) {
            out.push(t.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_saved_once_and_found_by_substring() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vocab");
        let mut v = Vocab::new(&path);
        v.add_line("GET /api req=7f3a9c2e ok").unwrap();
        v.add_line("get again: req=7F3A0000, MyError").unwrap();
        v.save().unwrap();
        v.release();
        let mut v = Vocab::new(&path);
        v.add_line("myerror and api and new").unwrap();
        v.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut saved: Vec<&str> = text.lines().collect();
        saved.sort();
        assert_eq!(
            saved,
            ["7f3a0000", "7f3a9c2e", "again", "and", "api", "get", "myerror", "new", "ok", "req"]
        );
        let find = |w: &str, a: Anchor| {
            let mut t = tokens_containing(&VocabMaps::default(), &path, w, a, 100)
                .unwrap()
                .unwrap();
            t.sort();
            t
        };
        assert_eq!(find("3a", Anchor::Anywhere), ["7f3a0000", "7f3a9c2e"]);
        assert_eq!(find("error", Anchor::End), ["myerror"]);
        assert_eq!(find("rro", Anchor::End), Vec::<String>::new());
        assert!(find("zzz", Anchor::Anywhere).is_empty());
        assert_eq!(
            tokens_containing(&VocabMaps::default(), &path, "a", Anchor::Anywhere, 2).unwrap(),
            None
        );
        assert_eq!(
            tokens_containing(
                &VocabMaps::default(),
                &dir.path().join("none"),
                "a",
                Anchor::Anywhere,
                2
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn gram_filters_skip_chunks_without_losing_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vocab");
        let mut v = Vocab::new(&path);
        let mut all = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        // Several chunks of random hex ids, saved in uneven batches.
        for batch in 0..7 {
            let mut line = String::new();
            for _ in 0..(3000 + batch * 500) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let id = format!("{x:016x}");
                line.push_str(&id);
                line.push(' ');
                all.push(id);
            }
            v.add_line(&line).unwrap();
            v.save().unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() as usize > 4 * CHUNK);
        let brute = |w: &str| -> Vec<String> {
            let mut t: Vec<String> = all.iter().filter(|t| t.contains(w)).cloned().collect();
            t.sort();
            t.dedup();
            t
        };
        let find = |w: &str| {
            let mut t = tokens_containing(
                &VocabMaps::default(),
                &path,
                w,
                Anchor::Anywhere,
                usize::MAX,
            )
            .unwrap()
            .unwrap();
            t.sort();
            t
        };
        for probe in [
            &all[5][3..12],
            &all[20_000][0..16],
            &all[all.len() - 1][8..],
            "abcd",
            &all[9000][4..8],
        ] {
            assert_eq!(find(probe), brute(probe), "{probe}");
        }
        // Damaged records are recomputed when the partition opens; missing
        // ones only cost a scan.
        let grams = grams_path(&path);
        let mut g = std::fs::read(&grams).unwrap();
        for b in g.iter_mut().skip(RECORD_HEADER).step_by(97) {
            *b = 0;
        }
        std::fs::write(&grams, &g).unwrap();
        repair_grams(&path).unwrap();
        assert_eq!(find(&all[7][2..14]), brute(&all[7][2..14]));
        assert_eq!(find(&all[30_000][1..9]), brute(&all[30_000][1..9]));
        std::fs::remove_file(&grams).unwrap();
        assert_eq!(find(&all[30][0..10]), brute(&all[30][0..10]));
    }
}
