//! The head's label-hash table: label hash → series, open addressing with
//! linear probing over 16-byte slots (hash and one pointer-sized value).
//!
//! Each remote_write request looks up ~1 000 unrelated series, and with
//! 100 000 series nearly every lookup misses the cache. A slot is found
//! with one load from a known address, so a writer can prefetch the slots,
//! then the series, then their labels of lookups a few places ahead
//! ([`SeriesTable::home`], [`SeriesTable::first_with_hash`]) — which a
//! general-purpose map does not let it do. Colliding hashes (practically
//! never, with 64 bits) simply sit in later slots; equality of the labels
//! always decides.

use crate::prefetch::prefetch;

pub(crate) struct SeriesTable<V> {
    /// Power-of-two length (or empty); at most half full.
    slots: Vec<Slot<V>>,
    len: usize,
}

struct Slot<V> {
    hash: u64,
    value: Option<V>,
}

impl<V> Default for SeriesTable<V> {
    fn default() -> Self {
        SeriesTable {
            slots: Vec::new(),
            len: 0,
        }
    }
}

impl<V> SeriesTable<V> {
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Probe order from `hash`'s home slot, stopping at the first empty.
    fn probe(&self, hash: u64) -> impl Iterator<Item = (usize, &Slot<V>)> {
        let mask = self.mask();
        let start = hash as usize & mask;
        let n = self.slots.len();
        (0..n)
            .map(move |k| (start + k) & mask)
            .map(|i| (i, &self.slots[i]))
            .take_while(|(_, s)| s.value.is_some())
    }

    /// Starts loading `hash`'s home slot into the cache.
    pub(crate) fn home(&self, hash: u64) {
        if let Some(s) = self.slots.get(hash as usize & self.mask()) {
            prefetch(s);
        }
    }

    /// The first value stored under `hash` (whatever its labels), for
    /// prefetching what a coming [`SeriesTable::find`] will compare.
    pub(crate) fn first_with_hash(&self, hash: u64) -> Option<&V> {
        self.probe(hash)
            .find(|(_, s)| s.hash == hash)
            .and_then(|(_, s)| s.value.as_ref())
    }

    pub(crate) fn find(&self, hash: u64, eq: impl Fn(&V) -> bool) -> Option<&V> {
        self.probe(hash)
            .filter(|(_, s)| s.hash == hash)
            .filter_map(|(_, s)| s.value.as_ref())
            .find(|v| eq(v))
    }

    /// Adds a value; the caller has checked that no equal one is present.
    pub(crate) fn insert(&mut self, hash: u64, value: V) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut i = hash as usize & mask;
        while self.slots[i].value.is_some() {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot {
            hash,
            value: Some(value),
        };
        self.len += 1;
    }

    /// Removes the value under `hash` that `is` picks, if any.
    pub(crate) fn remove(&mut self, hash: u64, is: impl Fn(&V) -> bool) -> Option<V> {
        let found = self
            .probe(hash)
            .find(|(_, s)| s.hash == hash && s.value.as_ref().is_some_and(&is))
            .map(|(i, _)| i)?;
        let removed = self.slots[found].value.take();
        self.len -= 1;
        // Backward-shift deletion: move later entries of the run into the
        // hole when their home slot allows it, so probes never need
        // tombstones.
        let mask = self.mask();
        let mut hole = found;
        let mut j = (found + 1) & mask;
        while self.slots[j].value.is_some() {
            let home = self.slots[j].hash as usize & mask;
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                let moved = Slot {
                    hash: self.slots[j].hash,
                    value: self.slots[j].value.take(),
                };
                self.slots[hole] = moved;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        removed
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(
            &mut self.slots,
            (0..cap)
                .map(|_| Slot {
                    hash: 0,
                    value: None,
                })
                .collect(),
        );
        self.len = 0;
        for s in old {
            if let Some(v) = s.value {
                self.insert(s.hash, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn colliding_hashes_stay_apart() {
        let mut t: SeriesTable<Box<u32>> = SeriesTable::default();
        for v in [1, 2, 3] {
            t.insert(7, Box::new(v));
        }
        let find = |t: &SeriesTable<Box<u32>>, v: u32| t.find(7, |x| **x == v).map(|x| **x);
        assert_eq!(
            (find(&t, 1), find(&t, 2), find(&t, 3)),
            (Some(1), Some(2), Some(3))
        );
        assert_eq!(find(&t, 4), None);
        assert_eq!(t.remove(7, |x| **x == 1).map(|x| *x), Some(1));
        assert_eq!(
            (find(&t, 1), find(&t, 2), find(&t, 3)),
            (None, Some(2), Some(3))
        );
        assert_eq!(t.first_with_hash(7).map(|x| **x), Some(2));
        t.remove(7, |x| **x == 3);
        t.remove(7, |x| **x == 2);
        assert_eq!(t.len, 0);
        assert!(t.first_with_hash(7).is_none());
    }

    #[test]
    fn slots_are_two_words() {
        assert_eq!(std::mem::size_of::<Slot<std::sync::Arc<u64>>>(), 16);
    }

    proptest! {
        /// Any sequence of inserts and removes, with hashes drawn from a
        /// small range so runs wrap and collide, agrees with a map.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((any::<bool>(), 0u64..40, 0u32..60), 0..400)) {
            let mut t: SeriesTable<Box<u32>> = SeriesTable::default();
            let mut m: HashMap<u32, u64> = HashMap::new();
            for (insert, hash, key) in ops {
                // The hash of a key is fixed by its first insert.
                let hash = *m.get(&key).unwrap_or(&hash);
                if insert {
                    if t.find(hash, |x| **x == key).is_none() {
                        t.insert(hash, Box::new(key));
                        m.insert(key, hash);
                    }
                } else {
                    let removed = t.remove(hash, |x| **x == key).map(|x| *x);
                    prop_assert_eq!(removed, m.remove(&key).map(|_| key));
                }
                prop_assert_eq!(t.len, m.len());
            }
            for (key, hash) in &m {
                prop_assert_eq!(t.find(*hash, |x| *x == Box::new(*key)).map(|x| **x), Some(*key));
            }
        }
    }
}
