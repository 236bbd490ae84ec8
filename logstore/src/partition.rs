//! One time partition of the log store: a tantivy index of the blocks
//! whose entries fall in `[start, end)`, plus its stream registry. Dropping
//! old data is deleting a partition's directory.
//!
//! Document fields: `stream` (id, indexed and fast), `start` / `end` (the
//! block's first and last entry time, indexed and fast), `tokens` (the
//! lines' tokens, indexed only) and `block` (the encoded entries, stored
//! and zstd-compressed). Each commit's payload is the highest WAL sequence
//! it covers.

use crate::block::{self, Entry};
use crate::error::LogStoreError;
use crate::streams::{StreamId, StreamRegistry};
use crate::tokenizer::{BlockTokens, NeedleTerm, LONG_TOKEN_MARKER, TOKENIZER_NAME};
use crate::vocab::{tokens_containing, Anchor, Vocab, VocabMaps};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use tantivy::collector::DocSetCollector;
use tantivy::indexer::{LogMergePolicy, NoMergePolicy};
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, RegexQuery, TermQuery, TermSetQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value, STORED,
};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{
    DocAddress, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Searcher,
    TantivyDocument, Term,
};

const VOCAB_FILE: &str = "vocab";
/// Beyond this many tokens holding a needle word, the term dictionary is
/// walked with a regex instead of a term set.
const MAX_VOCAB_TERMS: usize = 4096;

/// Per-thread indexing memory of a partition's writer.
const WRITER_MEMORY: usize = 32 << 20;
/// A sealing merge adds no documents: tantivy's minimum will do.
const SEAL_WRITER_MEMORY: usize = 15 << 20;

/// Tantivy's default puts every segment under 10 000 documents in one
/// level, so each merge of fresh segments rewrote the growing merged one
/// too. A document here is a block of up to 256 lines, so levels start
/// at a few hundred documents and merges stay logarithmic.
fn merge_policy() -> LogMergePolicy {
    let mut p = LogMergePolicy::default();
    p.set_min_layer_size(256);
    p
}

#[derive(Clone, Copy)]
struct Fields {
    stream: Field,
    start: Field,
    end: Field,
    tokens: Field,
    block: Field,
    entries: Field,
    bytes: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let num = NumericOptions::default().set_indexed().set_fast();
    let stream = b.add_u64_field("stream", num.clone());
    let start = b.add_i64_field("start", num.clone());
    let end = b.add_i64_field("end", num);
    let fast = NumericOptions::default().set_fast();
    let entries = b.add_u64_field("entries", fast.clone());
    let bytes = b.add_u64_field("bytes", fast);
    let tokens = b.add_text_field(
        "tokens",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER_NAME)
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        ),
    );
    let block = b.add_bytes_field("block", STORED);
    (
        b.build(),
        Fields {
            stream,
            start,
            end,
            tokens,
            block,
            entries,
            bytes,
        },
    )
}

/// A block the index returned: where it is and what the fast fields say.
pub(crate) struct IndexedBlock {
    pub address: DocAddress,
    pub stream: StreamId,
    pub start: i64,
    pub end: i64,
    pub entries: u64,
    pub bytes: u64,
}

pub(crate) struct Partition {
    pub start: i64,
    pub end: i64,
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    writer: Mutex<Option<IndexWriter>>,
    /// The background merge of an idle partition into one segment.
    sealing: Mutex<Option<JoinHandle<()>>>,
    committed_seq: AtomicU64,
    pub streams: RwLock<StreamRegistry>,
    /// Commit cycles since this partition last took a write.
    idle_cycles: AtomicU32,
    disk_bytes: AtomicU64,
    vocab: Mutex<Vocab>,
    vocab_maps: VocabMaps,
}

fn idx_err(dir: &Path) -> impl Fn(tantivy::TantivyError) -> LogStoreError + '_ {
    move |e| LogStoreError::index(dir, e)
}

impl Partition {
    pub fn open(dir: &Path, start: i64, end: i64) -> Result<Self, LogStoreError> {
        std::fs::create_dir_all(dir).map_err(|e| LogStoreError::io(dir, e))?;
        let (schema, fields) = schema();
        let index = if dir.join("meta.json").exists() {
            Index::open_in_dir(dir).map_err(idx_err(dir))?
        } else {
            let settings = IndexSettings {
                docstore_compression: Compressor::Zstd(ZstdCompressor {
                    compression_level: Some(3),
                }),
                docstore_blocksize: 256 << 10,
                ..IndexSettings::default()
            };
            Index::builder()
                .schema(schema)
                .settings(settings)
                .create_in_dir(dir)
                .map_err(idx_err(dir))?
        };
        index.tokenizers().register(
            TOKENIZER_NAME,
            tantivy::tokenizer::WhitespaceTokenizer::default(),
        );
        let committed_seq = index
            .load_metas()
            .map_err(idx_err(dir))?
            .payload
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .doc_store_cache_num_blocks(4)
            .num_warming_threads(0)
            .try_into()
            .map_err(idx_err(dir))?;
        let streams = StreamRegistry::open(&dir.join("streams"))?;
        crate::vocab::repair_grams(&dir.join(VOCAB_FILE))?;
        Ok(Partition {
            start,
            end,
            dir: dir.to_path_buf(),
            index,
            reader,
            fields,
            writer: Mutex::new(None),
            sealing: Mutex::new(None),
            committed_seq: AtomicU64::new(committed_seq),
            streams: RwLock::new(streams),
            idle_cycles: AtomicU32::new(0),
            disk_bytes: AtomicU64::new(dir_bytes(dir)),
            vocab: Mutex::new(Vocab::new(&dir.join(VOCAB_FILE))),
            vocab_maps: VocabMaps::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The highest WAL sequence whose entries this partition has committed.
    pub fn committed_seq(&self) -> u64 {
        self.committed_seq.load(Ordering::Acquire)
    }

    /// Adds blocks (not visible until [`Partition::commit`]).
    pub fn add_blocks<'a>(
        &self,
        blocks: impl IntoIterator<Item = (StreamId, &'a [Entry])>,
    ) -> Result<(), LogStoreError> {
        let mut guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            // Late entries for a sealed partition: the seal holds the lock.
            self.wait_sealed();
            let w: IndexWriter = self
                .index
                .writer_with_num_threads(1, WRITER_MEMORY)
                .map_err(idx_err(&self.dir))?;
            w.set_merge_policy(Box::new(merge_policy()));
            *guard = Some(w);
        }
        let Some(writer) = guard.as_ref() else {
            return Ok(());
        };
        let f = self.fields;
        let mut payload = Vec::new();
        let mut vocab = self.vocab.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tokens = BlockTokens::default();
        for (stream, entries) in blocks {
            for chunk in block::split(entries) {
                let Some(first) = chunk.first() else { continue };
                let (mut lo, mut hi) = (first.ts, first.ts);
                let mut doc = TantivyDocument::new();
                let mut bytes = 0u64;
                tokens.clear();
                for e in chunk {
                    lo = lo.min(e.ts);
                    hi = hi.max(e.ts);
                    bytes += e.line.len() as u64;
                    tokens.add_line(&e.line);
                }
                vocab.add_tokens(tokens.tokens().filter(|(_, t)| *t != LONG_TOKEN_MARKER))?;
                doc.add_text(f.tokens, tokens.joined());
                doc.add_u64(f.entries, chunk.len() as u64);
                doc.add_u64(f.bytes, bytes);
                block::encode(chunk, &mut payload);
                doc.add_u64(f.stream, stream);
                doc.add_i64(f.start, lo);
                doc.add_i64(f.end, hi);
                doc.add_bytes(f.block, &payload);
                writer.add_document(doc).map_err(idx_err(&self.dir))?;
            }
        }
        self.idle_cycles.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Makes what was added durable (not yet visible: see
    /// [`Partition::reload`]), recording `seq`.
    pub fn commit(&self, seq: u64) -> Result<(), LogStoreError> {
        self.streams
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .save()?;
        self.vocab
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .save()?;
        let mut guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(writer) = guard.as_mut() else {
            return Ok(());
        };
        let mut prepared = writer.prepare_commit().map_err(idx_err(&self.dir))?;
        prepared.set_payload(&seq.to_string());
        prepared.commit().map_err(idx_err(&self.dir))?;
        self.committed_seq.store(seq, Ordering::Release);
        Ok(())
    }

    /// Drops what was added since the last commit (after a failed commit).
    pub fn rollback(&self) {
        let mut guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = guard.as_mut() {
            if let Err(e) = w.rollback() {
                tracing::error!(dir = ?self.dir, error = %e, "log partition rollback failed; reopening its writer");
                *guard = None;
            }
        }
    }

    /// Makes committed blocks visible to new searchers.
    pub fn reload(&self) -> Result<(), LogStoreError> {
        self.reader.reload().map_err(idx_err(&self.dir))?;
        self.disk_bytes
            .store(dir_bytes(&self.dir), Ordering::Relaxed);
        Ok(())
    }

    /// Counts a commit cycle without writes; after `after` of them releases
    /// the writer (its memory and merge threads) and seals the partition:
    /// its segments are merged into one in the background, so a query
    /// opens one term dictionary per partition instead of dozens.
    pub fn idle(self: &Arc<Self>, after: u32) -> Result<(), LogStoreError> {
        if self.idle_cycles.fetch_add(1, Ordering::Relaxed) + 1 < after {
            return Ok(());
        }
        let taken = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(w) = taken else { return Ok(()) };
        self.vocab
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release();
        let mut sealing = self.sealing.lock().unwrap_or_else(PoisonError::into_inner);
        // A seal still running means no write came since: nothing to add.
        if sealing.is_some() {
            w.wait_merging_threads().map_err(idx_err(&self.dir))?;
            return self.reload();
        }
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("logstore-seal".into())
            .spawn(move || {
                if let Err(e) = me.seal(w) {
                    tracing::error!(dir = ?me.dir, error = %e, "sealing a log partition failed; it stays in several segments");
                }
            });
        match spawned {
            Ok(h) => *sealing = Some(h),
            Err(e) => return Err(LogStoreError::io(&self.dir, e)),
        }
        Ok(())
    }

    fn seal(&self, writer: IndexWriter) -> Result<(), LogStoreError> {
        writer.wait_merging_threads().map_err(idx_err(&self.dir))?;
        let ids = self
            .index
            .searchable_segment_ids()
            .map_err(idx_err(&self.dir))?;
        if ids.len() > 1 {
            let mut w: IndexWriter = self
                .index
                .writer_with_num_threads(1, SEAL_WRITER_MEMORY)
                .map_err(idx_err(&self.dir))?;
            w.set_merge_policy(Box::new(NoMergePolicy));
            w.merge(&ids).wait().map_err(idx_err(&self.dir))?;
            w.wait_merging_threads().map_err(idx_err(&self.dir))?;
        }
        self.reload()
    }

    /// Waits for a background seal, if one runs (before writing again,
    /// deleting the partition or closing the store).
    pub fn wait_sealed(&self) {
        let h = self
            .sealing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = h {
            let _ = h.join();
        }
    }

    /// Releases the writer without sealing (a partition about to be dropped).
    pub fn release(&self) -> Result<(), LogStoreError> {
        self.wait_sealed();
        let taken = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(w) = taken {
            w.wait_merging_threads().map_err(idx_err(&self.dir))?;
        }
        Ok(())
    }

    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// Blocks of `streams` overlapping `[start, end]` that hold every needle's terms.
    pub fn candidates(
        &self,
        searcher: &Searcher,
        streams: &[StreamId],
        start: i64,
        end: i64,
        needles: &[Vec<NeedleTerm>],
    ) -> Result<Vec<IndexedBlock>, LogStoreError> {
        let f = self.fields;
        let mut must: Vec<(Occur, Box<dyn Query>)> = vec![
            (
                Occur::Must,
                Box::new(TermSetQuery::new(
                    streams.iter().map(|&s| Term::from_field_u64(f.stream, s)),
                )),
            ),
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_i64(f.end, start)),
                    Bound::Unbounded,
                )),
            ),
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Included(Term::from_field_i64(f.start, end)),
                )),
            ),
        ];
        for needle in needles {
            for term in needle {
                must.push((Occur::Must, self.term_query(term)?));
            }
        }
        let query = BooleanQuery::new(must);
        let docs = searcher
            .search(&query, &DocSetCollector)
            .map_err(idx_err(&self.dir))?;
        let mut out = Vec::with_capacity(docs.len());
        let mut columns = Vec::new();
        for seg in searcher.segment_readers() {
            let ff = seg.fast_fields();
            columns.push((
                ff.u64("stream").map_err(idx_err(&self.dir))?,
                ff.i64("start").map_err(idx_err(&self.dir))?,
                ff.i64("end").map_err(idx_err(&self.dir))?,
                ff.u64("entries").map_err(idx_err(&self.dir))?,
                ff.u64("bytes").map_err(idx_err(&self.dir))?,
            ));
        }
        // In store order, so consecutive reads share decompressed store blocks.
        let mut docs: Vec<DocAddress> = docs.into_iter().collect();
        docs.sort_unstable();
        for address in docs {
            let Some((s, lo, hi, n, b)) = columns.get(address.segment_ord as usize) else {
                continue;
            };
            let d = address.doc_id;
            if let (Some(stream), Some(start), Some(end)) = (s.first(d), lo.first(d), hi.first(d)) {
                out.push(IndexedBlock {
                    address,
                    stream,
                    start,
                    end,
                    entries: n.first(d).unwrap_or(0),
                    bytes: b.first(d).unwrap_or(0),
                });
            }
        }
        Ok(out)
    }

    fn term_query(&self, term: &NeedleTerm) -> Result<Box<dyn Query>, LogStoreError> {
        let field = self.fields.tokens;
        let exact = |t: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, t),
                IndexRecordOption::Basic,
            ))
        };
        let (pattern, anchor) = match term {
            NeedleTerm::Exact(t) => return Ok(exact(t)),
            NeedleTerm::Long => return Ok(exact(LONG_TOKEN_MARKER)),
            // The dictionary answers a prefix by a range walk: cheap.
            NeedleTerm::Prefix(t) => (format!("{}.*", escape(t)), None),
            NeedleTerm::Suffix(t) => (format!(".*{}", escape(t)), Some((t, Anchor::End))),
            NeedleTerm::Infix(t) => (format!(".*{}.*", escape(t)), Some((t, Anchor::Anywhere))),
        };
        let from_vocab = match anchor {
            Some((word, anchor)) => tokens_containing(
                &self.vocab_maps,
                &self.dir.join(VOCAB_FILE),
                word,
                anchor,
                MAX_VOCAB_TERMS,
            )?,
            None => None,
        };
        let words: Box<dyn Query> = match from_vocab {
            Some(tokens) => Box::new(TermSetQuery::new(
                tokens.iter().map(|t| Term::from_field_text(field, t)),
            )),
            None => {
                Box::new(RegexQuery::from_pattern(&pattern, field).map_err(idx_err(&self.dir))?)
            }
        };
        // A token too long to index may hold the word too.
        Ok(Box::new(BooleanQuery::new(vec![
            (Occur::Should, words),
            (Occur::Should, exact(LONG_TOKEN_MARKER)),
        ])))
    }

    pub fn read_block(
        &self,
        searcher: &Searcher,
        address: DocAddress,
    ) -> Result<Vec<Entry>, LogStoreError> {
        let mut out = Vec::new();
        self.read_block_with(searcher, address, |ts, line| out.push(Entry::new(ts, line)))?;
        Ok(out)
    }

    /// Visits a block's entries in stored order without copying lines.
    pub fn read_block_with(
        &self,
        searcher: &Searcher,
        address: DocAddress,
        f: impl FnMut(i64, &str),
    ) -> Result<(), LogStoreError> {
        let doc: TantivyDocument = searcher.doc(address).map_err(idx_err(&self.dir))?;
        let bytes = doc
            .get_first(self.fields.block)
            .and_then(|v| v.as_bytes())
            .ok_or_else(|| LogStoreError::Corrupt {
                path: self.dir.clone(),
                what: "log block",
                detail: format!("document {address:?} has no block payload"),
            })?;
        block::for_each(bytes, f).map_err(|detail| LogStoreError::Corrupt {
            path: self.dir.clone(),
            what: "log block",
            detail,
        })
    }

    /// Bytes on disk as of the last reload.
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes.load(Ordering::Relaxed)
    }
}

/// Tokens hold only letters, digits and `_`; anything else a regex treats
/// specially is escaped anyway.
fn escape(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    for c in token.chars() {
        if !c.is_alphanumeric() && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
