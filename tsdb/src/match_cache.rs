//! Remembers which head series a set of matchers selected, sorted by
//! labels, until the head's series set changes.
//!
//! Dashboards repeat the same selectors every refresh, and for a small
//! instant query the postings intersection plus the label sort is most of
//! the work. The index bumps a generation on every series it adds or
//! removes; an entry is only valid for the generation it was computed in,
//! so a hit is always exactly what a fresh lookup would return.

use crate::head::MemSeries;
use crate::matcher::Matcher;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Matched series, sorted by labels, shared between the cache and readers.
pub(crate) type Matched = Arc<[Arc<MemSeries>]>;

/// Series references the cache may hold in all (8 bytes each).
const MAX_REFS: usize = 1 << 20;
/// Entries the cache may hold.
const MAX_ENTRIES: usize = 512;

#[derive(Default)]
struct Entries {
    generation: u64,
    refs: usize,
    map: HashMap<String, Matched>,
}

#[derive(Default)]
pub(crate) struct MatchCache {
    inner: Mutex<Entries>,
}

/// The cache key: every matcher as written, in order.
pub(crate) fn key(matchers: &[Matcher]) -> String {
    let mut k = String::new();
    for m in matchers {
        // Display quotes the value, so no matcher's text can run into the next.
        let _ = write!(k, "{m},");
    }
    k
}

impl MatchCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The series cached for `key` if they were computed in `generation`.
    pub(crate) fn get(&self, key: &str, generation: u64) -> Option<Matched> {
        let mut e = self.entries();
        if e.generation != generation {
            // The series set changed: everything cached is stale, and
            // dropping it now releases series the index removed.
            e.map.clear();
            e.refs = 0;
            e.generation = generation;
            return None;
        }
        e.map.get(key).cloned()
    }

    /// Keeps `matched`, computed in `generation`, unless the cache has moved
    /// on to a newer generation or the entry alone would crowd it.
    pub(crate) fn put(&self, key: String, generation: u64, matched: Matched) {
        if matched.len() > MAX_REFS / 4 {
            return;
        }
        let mut e = self.entries();
        if generation < e.generation {
            return;
        }
        if generation > e.generation {
            e.map.clear();
            e.refs = 0;
            e.generation = generation;
        }
        if e.refs + matched.len() > MAX_REFS || e.map.len() >= MAX_ENTRIES {
            // No recency to keep cheaply here; a full reset is rare and
            // costs one lookup per selector afterwards.
            e.map.clear();
            e.refs = 0;
        }
        e.refs += matched.len();
        if let Some(old) = e.map.insert(key, matched) {
            e.refs -= old.len();
        }
    }
}
