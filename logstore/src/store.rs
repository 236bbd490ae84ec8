//! The log store: push (validate, WAL, head), a background commit cycle
//! (index the head into its partitions, commit, make visible, trim the
//! WAL), queries over head and partitions, retention by age and size.

use crate::block::Entry;
use crate::error::LogStoreError;
use crate::head::Head;
use crate::limits::{Limits, PushOutcome, Rejection, TRUNCATION_MARKER};
use crate::partition::Partition;
use crate::select::{BlockHandle, Selection, Source};
use crate::streams::{stream_id, StreamId};
use crate::tokenizer::needle_terms;
use crate::wal::Wal;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tsdb::{LabelSet, Matcher};

/// One stream of a push: its labels and entries.
#[derive(Debug, Clone, PartialEq)]
pub struct PushStream {
    pub labels: LabelSet,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
pub struct LogStoreOptions {
    /// Width of a time partition.
    pub partition: Duration,
    /// How often the head is indexed and committed.
    pub commit_interval: Duration,
    /// A head this large is committed without waiting for the interval.
    pub max_head_bytes: usize,
    /// Partitions entirely older than this are deleted.
    pub retention: Option<Duration>,
    /// Oldest partitions are deleted while the store is larger than this.
    pub max_bytes: Option<u64>,
    pub limits: Limits,
}

impl Default for LogStoreOptions {
    fn default() -> Self {
        LogStoreOptions {
            partition: Duration::from_secs(3600),
            commit_interval: Duration::from_secs(5),
            max_head_bytes: 64 << 20,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            max_bytes: None,
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LogStoreStats {
    pub entries: u64,
    pub bytes: u64,
    pub truncated_lines: u64,
    pub duplicates: u64,
    /// Discarded entries by reason.
    pub discarded: Vec<(&'static str, u64)>,
    pub active_streams: u64,
    pub partitions: u64,
    pub partition_bytes: u64,
    /// Searchable tantivy segments over all partitions (one per sealed
    /// partition).
    pub segments: u64,
    pub wal_bytes: u64,
    pub head_entries: u64,
    pub commits: u64,
    pub commit_failures: u64,
    pub partitions_dropped: u64,
}

/// A frozen head being indexed, with the last WAL sequence it holds.
struct Frozen {
    head: Head,
    seq: u64,
}

struct WriteState {
    wal: Wal,
    head: Head,
    /// Each stream's last and newest entries, for Loki's dedupe and
    /// out-of-order window.
    last: HashMap<StreamId, StreamTail>,
    /// When each stream last took an entry, for the stream limit.
    active: HashMap<StreamId, Instant>,
}

#[derive(Debug, Clone, Copy)]
struct StreamTail {
    /// The last entry taken: time and line checksum.
    last: (i64, u32),
    /// The newest entry time taken.
    newest: i64,
}

impl StreamTail {
    fn first(key: (i64, u32)) -> Self {
        StreamTail {
            last: key,
            newest: key.0,
        }
    }

    fn take(&mut self, key: (i64, u32)) {
        self.last = key;
        self.newest = self.newest.max(key.0);
    }
}

#[derive(Default)]
struct Counters {
    entries: AtomicU64,
    bytes: AtomicU64,
    truncated: AtomicU64,
    duplicates: AtomicU64,
    commits: AtomicU64,
    commit_failures: AtomicU64,
    dropped: AtomicU64,
    discarded: Mutex<BTreeMap<&'static str, u64>>,
}

struct Inner {
    dir: PathBuf,
    opts: LogStoreOptions,
    write: Mutex<WriteState>,
    frozen: RwLock<Vec<Arc<Frozen>>>,
    /// Held (shared) while a query takes its snapshot of head and
    /// searchers, and (exclusively) while a commit swaps the frozen head
    /// for the reloaded indexes, so no query sees an entry twice or never.
    visibility: RwLock<()>,
    partitions: RwLock<BTreeMap<i64, Arc<Partition>>>,
    commit_lock: Mutex<()>,
    counters: Counters,
    stop: Mutex<bool>,
    wake: Condvar,
    /// Signalled when a commit takes the head (pushes wait on it while the
    /// head is at twice `max_head_bytes`).
    drained: Condvar,
}

pub struct LogStore {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Longest a push waits for indexing to catch up before it is refused.
const BACKLOG_WAIT: Duration = Duration::from_secs(20);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn dur_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn partition_dir(dir: &Path, start: i64, width: i64) -> PathBuf {
    dir.join("partitions").join(format!("{}_{}", start, width))
}

impl LogStore {
    /// Opens the store in `dir`, replays the WAL into the head and starts
    /// the commit cycle.
    pub fn open(dir: &Path, opts: LogStoreOptions) -> Result<LogStore, LogStoreError> {
        let parts_dir = dir.join("partitions");
        std::fs::create_dir_all(&parts_dir).map_err(|e| LogStoreError::io(&parts_dir, e))?;
        let mut partitions = BTreeMap::new();
        for entry in std::fs::read_dir(&parts_dir).map_err(|e| LogStoreError::io(&parts_dir, e))? {
            let entry = entry.map_err(|e| LogStoreError::io(&parts_dir, e))?;
            let name = entry.file_name();
            let parsed = name.to_str().and_then(|n| {
                let (s, w) = n.split_once('_')?;
                Some((s.parse::<i64>().ok()?, w.parse::<i64>().ok()?))
            });
            match parsed {
                Some((start, width)) if width > 0 => {
                    let p = Partition::open(&entry.path(), start, start.saturating_add(width))?;
                    partitions.insert(start, Arc::new(p));
                }
                _ => {
                    tracing::warn!(path = ?entry.path(), "ignoring an entry that is not a log partition")
                }
            }
        }
        let (wal, records) = Wal::open(&dir.join("wal"))?;
        let width = dur_ns(opts.partition).max(1);
        let mut head = Head::default();
        let mut last = HashMap::new();
        let mut replayed = 0u64;
        for record in records {
            for stream in record.streams {
                let id = stream_id(&stream.labels);
                for e in stream.entries {
                    let key = e.ts.div_euclid(width) * width;
                    let covered = partitions
                        .range(..=e.ts)
                        .next_back()
                        .filter(|(_, p)| e.ts < p.end)
                        .is_some_and(|(_, p)| p.committed_seq() >= record.seq);
                    let tail = (e.ts, crc32fast::hash(e.line.as_bytes()));
                    last.entry(id)
                        .and_modify(|t: &mut StreamTail| t.take(tail))
                        .or_insert_with(|| StreamTail::first(tail));
                    if !covered {
                        replayed += 1;
                        head.append(key, id, &stream.labels, e);
                    }
                }
            }
        }
        if replayed > 0 {
            tracing::info!(entries = replayed, "replayed log entries from the WAL");
        }
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            opts,
            write: Mutex::new(WriteState {
                wal,
                head,
                last,
                active: HashMap::new(),
            }),
            frozen: RwLock::new(Vec::new()),
            visibility: RwLock::new(()),
            partitions: RwLock::new(partitions),
            commit_lock: Mutex::new(()),
            counters: Counters::default(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            drained: Condvar::new(),
        });
        let bg = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("logstore-commit".into())
            .spawn(move || bg.commit_loop())
            .map_err(|e| LogStoreError::io(dir, e))?;
        Ok(LogStore {
            inner,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Validates and stores a push. Entries that pass are durable when this
    /// returns `Ok`; the outcome says what was refused and why.
    pub fn push(&self, streams: Vec<PushStream>) -> Result<PushOutcome, LogStoreError> {
        self.inner.push(streams)
    }

    /// Blocks that may hold lines of the selection, head included.
    pub fn select(&self, sel: &Selection<'_>) -> Result<Vec<BlockHandle>, LogStoreError> {
        self.inner.select(sel)
    }

    /// Label sets of the streams matching `matchers` with entries that may
    /// fall in `[start, end]` (by partition), sorted.
    pub fn series(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<LabelSet> {
        self.inner.series(matchers, start, end)
    }

    /// Indexes and commits the head now (normally the background cycle does).
    pub fn flush(&self) -> Result<(), LogStoreError> {
        self.inner.commit_cycle()
    }

    pub fn stats(&self) -> LogStoreStats {
        self.inner.stats()
    }

    /// Stops the commit cycle and commits what is left, so the next open
    /// replays nothing.
    pub fn close(&self) -> Result<(), LogStoreError> {
        *lock(&self.inner.stop) = true;
        self.inner.wake.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
        let committed = self.inner.commit_cycle();
        self.inner.wait_sealed();
        committed
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        *lock(&self.inner.stop) = true;
        self.inner.wake.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
        self.inner.wait_sealed();
    }
}

fn truncate_line(line: &mut String, max: usize) -> bool {
    if line.len() <= max {
        return false;
    }
    let mut cut = max.saturating_sub(TRUNCATION_MARKER.len());
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    line.truncate(cut);
    line.push_str(TRUNCATION_MARKER);
    true
}

impl Inner {
    fn validate_labels(&self, index: usize, labels: &LabelSet) -> Option<Rejection> {
        let l = &self.opts.limits;
        if labels.is_empty() {
            return Some(Rejection::NoLabels { stream: index });
        }
        if labels.len() > l.max_label_names_per_stream {
            return Some(Rejection::TooManyLabels {
                labels: labels.to_string(),
                count: labels.len(),
                max: l.max_label_names_per_stream,
            });
        }
        for label in labels.iter() {
            if label.name.len() > l.max_label_name_length {
                return Some(Rejection::LabelNameTooLong {
                    labels: labels.to_string(),
                    name: label.name.to_string(),
                    max: l.max_label_name_length,
                });
            }
            if label.value.len() > l.max_label_value_length {
                return Some(Rejection::LabelValueTooLong {
                    labels: labels.to_string(),
                    name: label.name.to_string(),
                    max: l.max_label_value_length,
                });
            }
        }
        None
    }

    fn push(&self, streams: Vec<PushStream>) -> Result<PushOutcome, LogStoreError> {
        let limits = &self.opts.limits;
        let now = now_ns();
        let mut max_age = limits.reject_older_than;
        if let Some(r) = self.opts.retention {
            max_age = max_age.min(r);
        }
        let oldest = now.saturating_sub(dur_ns(max_age));
        let newest = now.saturating_add(dur_ns(limits.creation_grace));
        let mut out = PushOutcome::default();
        let mut accepted: Vec<(StreamId, PushStream)> = Vec::with_capacity(streams.len());
        for (i, mut s) in streams.into_iter().enumerate() {
            if let Some(r) = self.validate_labels(i, &s.labels) {
                out.rejected_entries += s.entries.len() as u64;
                out.rejections.push(r);
                continue;
            }
            let labels = &s.labels;
            s.entries.retain_mut(|e| {
                let rejection = if e.ts < oldest {
                    Some(Rejection::TooOld {
                        labels: labels.to_string(),
                        ts: e.ts,
                        oldest,
                    })
                } else if e.ts > newest {
                    Some(Rejection::TooNew {
                        labels: labels.to_string(),
                        ts: e.ts,
                        newest,
                    })
                } else {
                    None
                };
                if let Some(r) = rejection {
                    out.reject_entry(r);
                    return false;
                }
                if truncate_line(&mut e.line, limits.max_line_size) {
                    out.truncated_lines += 1;
                }
                true
            });
            if !s.entries.is_empty() {
                accepted.push((stream_id(&s.labels), s));
            }
        }
        let width = dur_ns(self.opts.partition).max(1);
        let mut w = lock(&self.write);
        // Backpressure: while indexing is behind, the head stops growing
        // (it is memory until committed); senders wait, then get a retry.
        let waited = Instant::now();
        while w.head.bytes >= self.opts.max_head_bytes.saturating_mul(2) {
            self.wake.notify_all();
            let left = BACKLOG_WAIT.saturating_sub(waited.elapsed());
            if left.is_zero() {
                return Err(LogStoreError::Backlog);
            }
            w = self
                .drained
                .wait_timeout(w, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let clock = Instant::now();
        // The limit is checked for the whole push before any of its
        // streams is registered: all its new streams fit, or none is made.
        let new_ids: HashSet<StreamId> = accepted
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !w.active.contains_key(id))
            .collect();
        let refuse_new = w.active.len() + new_ids.len() > limits.max_streams;
        let mut refused_new: Option<Rejection> = None;
        let mut new_last: HashMap<StreamId, StreamTail> = HashMap::new();
        let window = dur_ns(limits.max_chunk_age / 2);
        accepted.retain_mut(|(id, s)| {
            if refuse_new && new_ids.contains(id) {
                out.rejected_entries += s.entries.len() as u64;
                refused_new.get_or_insert_with(|| Rejection::StreamLimit {
                    labels: s.labels.to_string(),
                    new_streams: new_ids.len(),
                    active: w.active.len(),
                    max: limits.max_streams,
                });
                return false;
            }
            let mut tail = new_last.get(id).or_else(|| w.last.get(id)).copied();
            let labels = &s.labels;
            s.entries.retain(|e| {
                let key = (e.ts, crc32fast::hash(e.line.as_bytes()));
                let Some(t) = tail.as_mut() else {
                    tail = Some(StreamTail::first(key));
                    return true;
                };
                if t.last == key {
                    out.duplicates += 1;
                    return false;
                }
                let rejection = if !limits.unordered_writes && e.ts < t.newest {
                    Some(Rejection::OutOfOrder {
                        labels: labels.to_string(),
                        ts: e.ts,
                        newest: t.newest,
                    })
                } else if e.ts < t.newest.saturating_sub(window) {
                    Some(Rejection::TooFarBehind {
                        labels: labels.to_string(),
                        ts: e.ts,
                        oldest: t.newest.saturating_sub(window),
                    })
                } else {
                    None
                };
                if let Some(r) = rejection {
                    out.reject_entry(r);
                    return false;
                }
                t.take(key);
                true
            });
            if let Some(t) = tail {
                new_last.insert(*id, t);
            }
            !s.entries.is_empty()
        });
        if let Some(r) = refused_new {
            out.rejections.push(r);
        }
        if accepted.is_empty() {
            drop(w);
            self.count(&out);
            return Ok(out);
        }
        w.wal.append(accepted.iter().map(|(_, s)| s))?;
        for (id, s) in accepted {
            w.active.insert(id, clock);
            for e in s.entries {
                out.accepted_entries += 1;
                out.accepted_bytes += e.line.len() as u64;
                let key = e.ts.div_euclid(width) * width;
                w.head.append(key, id, &s.labels, e);
            }
        }
        w.last.extend(new_last);
        let full = w.head.bytes >= self.opts.max_head_bytes;
        drop(w);
        if full {
            self.wake.notify_all();
        }
        self.count(&out);
        Ok(out)
    }

    fn count(&self, out: &PushOutcome) {
        let c = &self.counters;
        c.entries.fetch_add(out.accepted_entries, Ordering::Relaxed);
        c.bytes.fetch_add(out.accepted_bytes, Ordering::Relaxed);
        c.truncated
            .fetch_add(out.truncated_lines, Ordering::Relaxed);
        c.duplicates.fetch_add(out.duplicates, Ordering::Relaxed);
        if !out.rejections.is_empty() {
            let mut d = lock(&c.discarded);
            for r in &out.rejections {
                // Whole rejected streams count as one problem here; the
                // entry count is in the outcome.
                *d.entry(r.reason()).or_default() += 1;
            }
        }
    }

    fn commit_loop(self: Arc<Self>) {
        loop {
            {
                let stop = lock(&self.stop);
                if *stop {
                    return;
                }
                let head_full = lock(&self.write).head.bytes >= self.opts.max_head_bytes;
                if !head_full {
                    let (stop, _) = self
                        .wake
                        .wait_timeout(stop, self.opts.commit_interval)
                        .unwrap_or_else(PoisonError::into_inner);
                    if *stop {
                        return;
                    }
                }
            }
            if let Err(e) = self.commit_cycle() {
                self.counters
                    .commit_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "log commit failed; the WAL keeps the entries and the commit is retried");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }

    fn partition_for(&self, start: i64) -> Result<Arc<Partition>, LogStoreError> {
        if let Some(p) = self
            .partitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&start)
        {
            return Ok(Arc::clone(p));
        }
        let width = dur_ns(self.opts.partition).max(1);
        let p = Arc::new(Partition::open(
            &partition_dir(&self.dir, start, width),
            start,
            start.saturating_add(width),
        )?);
        self.partitions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(start, Arc::clone(&p));
        Ok(p)
    }

    fn commit_cycle(&self) -> Result<(), LogStoreError> {
        let _one = lock(&self.commit_lock);
        let (frozen, seq) = {
            let mut w = lock(&self.write);
            let seq = w.wal.last_seq();
            let mut frozen = self.frozen.write().unwrap_or_else(PoisonError::into_inner);
            if !w.head.is_empty() {
                let head = std::mem::take(&mut w.head);
                frozen.push(Arc::new(Frozen { head, seq }));
                self.drained.notify_all();
            }
            let idle_after = Instant::now() - self.opts.limits.stream_idle;
            w.active.retain(|_, t| *t >= idle_after);
            let WriteState { last, active, .. } = &mut *w;
            last.retain(|id, _| active.contains_key(id));
            (frozen.clone(), seq)
        };
        let mut touched: BTreeMap<i64, Arc<Partition>> = BTreeMap::new();
        if !frozen.is_empty() {
            let result = (|| {
                for f in &frozen {
                    for (&start, streams) in &f.head.partitions {
                        let p = match touched.get(&start) {
                            Some(p) => Arc::clone(p),
                            None => {
                                let p = self.partition_for(start)?;
                                touched.insert(start, Arc::clone(&p));
                                p
                            }
                        };
                        // Already committed by an earlier, partly failed cycle.
                        if p.committed_seq() >= f.seq {
                            continue;
                        }
                        {
                            let mut reg = p.streams.write().unwrap_or_else(PoisonError::into_inner);
                            for (&id, s) in streams {
                                reg.insert(id, &s.labels);
                            }
                        }
                        p.add_blocks(streams.iter().map(|(&id, s)| (id, &s.entries[..])))?;
                    }
                }
                for p in touched.values() {
                    if p.committed_seq() < seq {
                        p.commit(seq)?;
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                for p in touched.values() {
                    p.rollback();
                }
                return Err(e);
            }
            {
                let _v = self
                    .visibility
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                let mut reload_err = None;
                for p in touched.values() {
                    if let Err(e) = p.reload() {
                        reload_err = Some(e);
                    }
                }
                if let Some(e) = reload_err {
                    // Committed but not visible: keep the frozen head readable.
                    return Err(e);
                }
                self.frozen
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|f| !frozen.iter().any(|g| Arc::ptr_eq(f, g)));
            }
            lock(&self.write).wal.truncate_through(seq)?;
            self.counters.commits.fetch_add(1, Ordering::Relaxed);
        }
        let all = self.all_partitions();
        for p in all.iter().filter(|p| !touched.contains_key(&p.start)) {
            p.idle(3)?;
        }
        self.apply_retention()
    }

    fn apply_retention(&self) -> Result<(), LogStoreError> {
        let mut doomed = Vec::new();
        {
            let mut parts = self
                .partitions
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(r) = self.opts.retention {
                let cutoff = now_ns().saturating_sub(dur_ns(r));
                let old: Vec<i64> = parts
                    .values()
                    .filter(|p| p.end <= cutoff)
                    .map(|p| p.start)
                    .collect();
                for k in old {
                    doomed.extend(parts.remove(&k));
                }
            }
            if let Some(max) = self.opts.max_bytes {
                let mut total: u64 = parts.values().map(|p| p.disk_bytes()).sum();
                while total > max && parts.len() > 1 {
                    let Some((_, p)) = parts.pop_first() else {
                        break;
                    };
                    total -= p.disk_bytes().min(total);
                    doomed.push(p);
                }
            }
        }
        for p in doomed {
            p.release()?;
            tracing::info!(dir = ?p.dir(), "dropping a log partition past retention");
            std::fs::remove_dir_all(p.dir()).map_err(|e| LogStoreError::io(p.dir(), e))?;
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    fn wait_sealed(&self) {
        let all = self.all_partitions();
        for p in all {
            p.wait_sealed();
        }
    }

    fn overlapping(&self, start: i64, end: i64) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .range(..=end)
            .filter(|(_, p)| p.end > start)
            .map(|(_, p)| Arc::clone(p))
            .collect()
    }

    fn select(&self, sel: &Selection<'_>) -> Result<Vec<BlockHandle>, LogStoreError> {
        let needles: Vec<_> = sel
            .contains
            .iter()
            .map(|c| needle_terms(c))
            .filter(|t| !t.is_empty())
            .collect();
        let width = dur_ns(self.opts.partition).max(1);
        let first_key = sel.start.div_euclid(width).saturating_mul(width);
        let mut out = Vec::new();
        let snapshot: Vec<_> = {
            let _v = self
                .visibility
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let parts: Vec<_> = self
                .overlapping(sel.start, sel.end)
                .into_iter()
                .map(|p| {
                    let s = p.searcher();
                    (p, s)
                })
                .collect();
            let w = lock(&self.write);
            let frozen = self.frozen.read().unwrap_or_else(PoisonError::into_inner);
            for head in std::iter::once(&w.head).chain(frozen.iter().map(|f| &f.head)) {
                for (_, s) in head.streams(first_key, sel.end) {
                    if !sel.matches(&s.labels) {
                        continue;
                    }
                    let entries: Vec<Entry> = s
                        .entries
                        .iter()
                        .filter(|e| {
                            e.ts >= sel.start
                                && e.ts <= sel.end
                                && sel.contains.iter().all(|c| e.line.contains(c.as_str()))
                        })
                        .cloned()
                        .collect();
                    if let (Some(lo), Some(hi)) = (
                        entries.iter().map(|e| e.ts).min(),
                        entries.iter().map(|e| e.ts).max(),
                    ) {
                        out.push(BlockHandle {
                            labels: s.labels.clone(),
                            start: lo,
                            end: hi,
                            entries: entries.len() as u64,
                            bytes: entries.iter().map(|e| e.line.len() as u64).sum(),
                            source: Source::Memory(entries),
                        });
                    }
                }
            }
            parts
        };
        for (p, searcher) in snapshot {
            let (ids, labels): (Vec<StreamId>, HashMap<StreamId, LabelSet>) = {
                let reg = p.streams.read().unwrap_or_else(PoisonError::into_inner);
                let matched: HashMap<_, _> = reg
                    .iter()
                    .filter(|(_, l)| sel.matches(l))
                    .map(|(id, l)| (id, l.clone()))
                    .collect();
                (matched.keys().copied().collect(), matched)
            };
            if ids.is_empty() {
                continue;
            }
            for b in p.candidates(&searcher, &ids, sel.start, sel.end, &needles)? {
                let Some(l) = labels.get(&b.stream) else {
                    continue;
                };
                out.push(BlockHandle {
                    labels: l.clone(),
                    start: b.start,
                    end: b.end,
                    entries: b.entries,
                    bytes: b.bytes,
                    source: Source::Indexed {
                        partition: Arc::clone(&p),
                        searcher: searcher.clone(),
                        address: b.address,
                    },
                });
            }
        }
        Ok(out)
    }

    fn series(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<LabelSet> {
        let sel = Selection {
            matchers,
            start,
            end,
            contains: &[],
        };
        let mut set: HashSet<LabelSet> = HashSet::new();
        for p in self.overlapping(start, end) {
            let reg = p.streams.read().unwrap_or_else(PoisonError::into_inner);
            set.extend(
                reg.iter()
                    .filter(|(_, l)| sel.matches(l))
                    .map(|(_, l)| l.clone()),
            );
        }
        let width = dur_ns(self.opts.partition).max(1);
        let first_key = start.div_euclid(width).saturating_mul(width);
        let w = lock(&self.write);
        let frozen = self.frozen.read().unwrap_or_else(PoisonError::into_inner);
        for head in std::iter::once(&w.head).chain(frozen.iter().map(|f| &f.head)) {
            set.extend(
                head.streams(first_key, end)
                    .filter(|(_, s)| sel.matches(&s.labels))
                    .map(|(_, s)| s.labels.clone()),
            );
        }
        let mut out: Vec<_> = set.into_iter().collect();
        out.sort();
        out
    }

    fn stats(&self) -> LogStoreStats {
        let c = &self.counters;
        let (wal_bytes, head_entries, active) = {
            let w = lock(&self.write);
            (
                w.wal.disk_bytes(),
                w.head.entries as u64,
                w.active.len() as u64,
            )
        };
        let frozen_entries: u64 = self
            .frozen
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|f| f.head.entries as u64)
            .sum();
        let parts = self
            .partitions
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        LogStoreStats {
            entries: c.entries.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            truncated_lines: c.truncated.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            discarded: lock(&c.discarded).iter().map(|(k, v)| (*k, *v)).collect(),
            active_streams: active,
            partitions: parts.len() as u64,
            partition_bytes: parts.values().map(|p| p.disk_bytes()).sum(),
            segments: parts
                .values()
                .map(|p| p.searcher().segment_readers().len() as u64)
                .sum(),
            wal_bytes,
            head_entries: head_entries + frozen_entries,
            commits: c.commits.load(Ordering::Relaxed),
            commit_failures: c.commit_failures.load(Ordering::Relaxed),
            partitions_dropped: c.dropped.load(Ordering::Relaxed),
        }
    }
}
