//! Decoded block row groups, shared by concurrent queries and kept for the
//! next ones within a memory budget (least recently used out first).
//!
//! A row group holds ~64 Ki samples of many series; a query usually needs
//! several of its series (and a dashboard asks again on every refresh), so
//! decoding it once per cache lifetime instead of once per query is the
//! main saving for block-bound queries. Concurrent readers of a row group
//! that is being decoded wait for that decode rather than repeating it.
//!
//! Only values are kept (8 bytes a sample): a block series' timestamps are
//! its timestamp group's, which the open block holds once for all series
//! that share it.

use crate::error::TsdbError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Every series of one row group (or the ones a caller asked for), in id
/// order, their values in one flat array.
#[derive(Debug, Default)]
pub struct DecodedRowGroup {
    ids: Vec<u32>,
    /// End of each series' values in `values`.
    ends: Vec<u32>,
    values: Vec<f64>,
}

impl DecodedRowGroup {
    /// Room for `samples` values: a cached row group then takes the
    /// memory the cache counts for it, not up to twice that.
    pub(crate) fn with_capacity(samples: usize) -> Self {
        DecodedRowGroup {
            values: Vec::with_capacity(samples),
            ..DecodedRowGroup::default()
        }
    }

    /// Appends the next value of series `id`; ids arrive grouped and
    /// ascending.
    pub(crate) fn push(&mut self, id: u32, v: f64) {
        if self.ids.last() != Some(&id) {
            self.ids.push(id);
            self.ends.push(self.values.len() as u32);
        }
        self.values.push(v);
        if let Some(e) = self.ends.last_mut() {
            *e = self.values.len() as u32;
        }
    }

    /// Where series `id`'s values are in [`Self::values`], if it is here.
    pub fn position(&self, id: u32) -> Option<std::ops::Range<usize>> {
        let i = self.ids.binary_search(&id).ok()?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(start..self.ends[i] as usize)
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The series in id order with their values.
    pub fn series(&self) -> impl Iterator<Item = (u32, &[f64])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.ids
            .iter()
            .zip(starts.zip(self.ends.iter().copied()))
            .map(|(id, (a, b))| (*id, &self.values[a as usize..b as usize]))
    }

    pub fn num_samples(&self) -> usize {
        self.values.len()
    }
}

/// The smallest budget: a handful of 64 Ki-sample row groups.
pub const MIN_BUDGET_BYTES: usize = 8 << 20;

/// Which row group: the opened block's cache key and the row group's index.
type Key = (u64, usize);

/// A row group being decoded or decoded; readers wait on the slot's lock.
type Slot = Arc<Mutex<Option<Arc<DecodedRowGroup>>>>;

struct Entry {
    slot: Slot,
    last_used: u64,
    samples: usize,
}

#[derive(Default)]
struct State {
    tick: u64,
    samples: usize,
    entries: HashMap<Key, Entry>,
}

/// The cache; one per store, shared by its blocks.
pub struct RowGroupCache {
    budget_samples: usize,
    state: Mutex<State>,
}

impl std::fmt::Debug for RowGroupCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowGroupCache")
            .field("budget_samples", &self.budget_samples)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RowGroupCache {
    /// A cache holding up to `budget_bytes` of decoded samples, at least
    /// [`MIN_BUDGET_BYTES`]: series of one row group are read one after
    /// another, so even a query that fits nothing else in memory must find
    /// the row group it just decoded.
    pub fn new(budget_bytes: usize) -> Self {
        RowGroupCache {
            budget_samples: budget_bytes.max(MIN_BUDGET_BYTES) / std::mem::size_of::<f64>(),
            state: Mutex::new(State::default()),
        }
    }

    /// The decoded row group `key`, decoding it with `decode` unless it is
    /// cached or another reader is decoding it. A failed decode is not
    /// cached: the next reader tries again.
    pub fn get_or_decode(
        &self,
        key: Key,
        decode: impl FnOnce() -> Result<DecodedRowGroup, TsdbError>,
    ) -> Result<Arc<DecodedRowGroup>, TsdbError> {
        let slot = {
            let mut st = lock(&self.state);
            st.tick += 1;
            let tick = st.tick;
            let e = st.entries.entry(key).or_insert_with(|| Entry {
                slot: Arc::default(),
                last_used: tick,
                samples: 0,
            });
            e.last_used = tick;
            e.slot.clone()
        };
        let mut guard = lock(&slot);
        if let Some(rg) = guard.as_ref() {
            return Ok(rg.clone());
        }
        let rg = match decode() {
            Ok(rg) => Arc::new(rg),
            Err(e) => {
                drop(guard);
                let mut st = lock(&self.state);
                if st.entries.get(&key).is_some_and(|e| e.samples == 0) {
                    st.entries.remove(&key);
                }
                return Err(e);
            }
        };
        *guard = Some(rg.clone());
        drop(guard);
        let mut st = lock(&self.state);
        if let Some(e) = st.entries.get_mut(&key) {
            if e.samples == 0 && Arc::ptr_eq(&e.slot, &slot) {
                e.samples = rg.num_samples().max(1);
                st.samples += e.samples;
            }
        }
        self.evict(&mut st, key);
        Ok(rg)
    }

    /// Drops least recently used row groups (never `keep`) until the
    /// cache fits its budget.
    fn evict(&self, st: &mut State, keep: Key) {
        while st.samples > self.budget_samples {
            let victim = st
                .entries
                .iter()
                .filter(|(k, e)| **k != keep && e.samples > 0)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k);
            let Some(k) = victim else { break };
            if let Some(e) = st.entries.remove(&k) {
                st.samples -= e.samples;
            }
        }
    }

    /// Forgets every row group of a block (closed: compacted or deleted).
    pub fn forget_block(&self, block: u64) {
        let mut st = lock(&self.state);
        let gone: usize = st
            .entries
            .iter()
            .filter(|(k, _)| k.0 == block)
            .map(|(_, e)| e.samples)
            .sum();
        st.entries.retain(|k, _| k.0 != block);
        st.samples -= gone;
    }

    /// Decoded samples held now.
    pub fn cached_samples(&self) -> usize {
        lock(&self.state).samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn rg(n: usize) -> DecodedRowGroup {
        let mut d = DecodedRowGroup::default();
        for i in 0..n {
            d.push((i / 2) as u32, i as f64);
        }
        d
    }

    #[test]
    fn decoded_row_group_finds_series() {
        let d = rg(5);
        assert_eq!(d.position(0), Some(0..2));
        assert_eq!(d.position(2), Some(4..5));
        assert_eq!(d.position(3), None);
        let all: Vec<(u32, usize)> = d.series().map(|(id, s)| (id, s.len())).collect();
        assert_eq!(all, [(0, 2), (1, 2), (2, 1)]);
    }

    #[test]
    fn decodes_once_and_evicts_least_recently_used() {
        let cache = RowGroupCache {
            budget_samples: 25,
            state: Mutex::default(),
        };
        let decodes = AtomicUsize::new(0);
        let get = |k: Key| {
            cache
                .get_or_decode(k, || {
                    decodes.fetch_add(1, Ordering::Relaxed);
                    Ok(rg(10))
                })
                .unwrap()
        };
        get((1, 0));
        get((1, 1));
        get((1, 0));
        assert_eq!(decodes.load(Ordering::Relaxed), 2);
        // A third row group overflows the budget: (1, 1) was used least recently.
        get((2, 0));
        assert_eq!(cache.cached_samples(), 20);
        get((1, 0));
        assert_eq!(decodes.load(Ordering::Relaxed), 3);
        get((1, 1));
        assert_eq!(decodes.load(Ordering::Relaxed), 4);
        cache.forget_block(1);
        assert_eq!(cache.cached_samples(), 0);
    }

    #[test]
    fn failed_decodes_are_not_cached_and_budgets_have_a_floor() {
        let cache = RowGroupCache::new(1 << 20);
        let err = cache.get_or_decode((1, 0), || Err(TsdbError::Closed));
        assert!(err.is_err());
        assert_eq!(
            cache
                .get_or_decode((1, 0), || Ok(rg(4)))
                .unwrap()
                .num_samples(),
            4
        );
        let small = RowGroupCache::new(0);
        small.get_or_decode((1, 0), || Ok(rg(4))).unwrap();
        assert_eq!(small.cached_samples(), 4);
    }

    #[test]
    fn concurrent_readers_share_one_decode() {
        let cache = RowGroupCache::new(1 << 20);
        let decodes = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    cache
                        .get_or_decode((7, 3), || {
                            decodes.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            Ok(rg(6))
                        })
                        .unwrap()
                });
            }
        });
        assert_eq!(decodes.load(Ordering::Relaxed), 1);
    }
}
