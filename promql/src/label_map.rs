//! Hash maps keyed by label sets, with a hasher made for them: grouping
//! and vector matching hash every series' labels at every node, and the
//! standard SipHash spent more time there than the arithmetic did.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A map from label sets (or keys holding them) to `V`.
pub(crate) type LabelMap<K, V> = HashMap<K, V, LabelHashBuilder>;

/// A new, empty [`LabelMap`].
pub(crate) fn label_map<K, V>() -> LabelMap<K, V> {
    HashMap::with_hasher(LabelHashBuilder::default())
}

/// Builds [`LabelHasher`]s seeded once per process, so colliding label
/// sets cannot be prepared in advance.
#[derive(Clone, Copy)]
pub(crate) struct LabelHashBuilder {
    seed: u64,
}

impl Default for LabelHashBuilder {
    fn default() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        let seed = *SEED.get_or_init(|| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0x9e37_79b9_7f4a_7c15);
            h.finish() | 1
        });
        LabelHashBuilder { seed }
    }
}

impl BuildHasher for LabelHashBuilder {
    type Hasher = LabelHasher;
    fn build_hasher(&self) -> LabelHasher {
        LabelHasher { h: self.seed }
    }
}

/// Multiply-rotate over 8-byte words (label sets hash as one packed byte
/// string), finished with a final avalanche so hashbrown's top bits spread.
pub(crate) struct LabelHasher {
    h: u64,
}

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl LabelHasher {
    fn mix(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(K).rotate_left(26);
    }
}

impl Hasher for LabelHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut tail = [0u8; 8];
            tail[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(tail) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    fn finish(&self) -> u64 {
        let mut x = self.h;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tsdb::{Label, LabelSet};

    #[test]
    fn equal_sets_meet_and_different_sets_stay_apart() {
        let mut m: LabelMap<LabelSet, usize> = label_map();
        for i in 0..10_000 {
            let ls = LabelSet::from_labels(vec![
                Label::new("instance", format!("host-{}", i % 100)),
                Label::new("cpu", format!("{}", i / 100)),
            ]);
            *m.entry(ls).or_default() += 1;
        }
        assert_eq!(m.len(), 10_000);
        let again = LabelSet::from_labels(vec![
            Label::new("cpu", "3"),
            Label::new("instance", "host-7"),
        ]);
        assert_eq!(m.get(&again), Some(&1));
    }
}
