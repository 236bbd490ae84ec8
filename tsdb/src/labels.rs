//! Label sets: the identity of a series.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

/// The label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: Box<str>,
    pub value: Box<str>,
}

impl Label {
    pub fn new(name: impl Into<Box<str>>, value: impl Into<Box<str>>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// One label of a [`LabelSet`], borrowed from it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelRef<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

impl From<LabelRef<'_>> for Label {
    fn from(l: LabelRef<'_>) -> Label {
        Label::new(l.name, l.value)
    }
}

/// A set of labels sorted by name, names unique, no empty values
/// (an empty value means "label absent", as in Prometheus).
///
/// Packed into one shared allocation — a count, then each label's end
/// offsets, then every name and value back to back — so that a series costs
/// one small allocation instead of two per label, and comparing a request's
/// labels with a stored set reads one contiguous buffer (the hot lookup of
/// the write path). Cloning bumps a count.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct LabelSet {
    packed: Arc<[u8]>,
}

const COUNT_BYTES: usize = 4;
const ENTRY_BYTES: usize = 8;

impl LabelSet {
    /// Builds a set from labels in any order. Empty values are dropped.
    /// Duplicate names are kept so that validation can report them.
    pub fn from_labels(mut labels: Vec<Label>) -> Self {
        labels.retain(|l| !l.value.is_empty());
        labels.sort_unstable();
        Self::pack(labels.iter().map(|l| (&*l.name, &*l.value)), labels.len())
    }

    /// Packs pairs that are already sorted, without empty values.
    fn pack<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone, n: usize) -> Self {
        if n == 0 {
            // One representation of the empty set, so equality is byte equality.
            return LabelSet::default();
        }
        let text: usize = pairs.clone().map(|(a, b)| a.len() + b.len()).sum();
        let mut buf = Vec::with_capacity(COUNT_BYTES + n * ENTRY_BYTES + text);
        buf.extend_from_slice(&(n as u32).to_le_bytes());
        let mut end = 0usize;
        for (name, value) in pairs.clone() {
            end += name.len();
            buf.extend_from_slice(&(end as u32).to_le_bytes());
            end += value.len();
            buf.extend_from_slice(&(end as u32).to_le_bytes());
        }
        for (name, value) in pairs {
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(value.as_bytes());
        }
        LabelSet { packed: buf.into() }
    }

    /// The labels `keep` accepts, packed straight from this set (already
    /// sorted and valid, so no per-label copies): grouping and matching
    /// build one of these per series.
    pub fn filtered(&self, mut keep: impl FnMut(LabelRef<'_>) -> bool) -> LabelSet {
        let kept: Vec<LabelRef<'_>> = self.iter().filter(|l| keep(*l)).collect();
        if kept.len() == self.len() {
            return self.clone();
        }
        Self::pack(kept.iter().map(|l| (l.name, l.value)), kept.len())
    }

    /// Convenience for tests and literals: `LabelSet::from_pairs(&[("a","b")])`.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::from_labels(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect())
    }

    pub fn len(&self) -> usize {
        match self.packed.get(..COUNT_BYTES) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
            None => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn offset(&self, k: usize) -> usize {
        let at = COUNT_BYTES + k * 4;
        let b = &self.packed[at..at + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
    }

    fn text(&self, start: usize, end: usize) -> &str {
        let base = COUNT_BYTES + self.len() * ENTRY_BYTES;
        let bytes = &self.packed[base + start..base + end];
        // SAFETY: `pack` is the only writer of `packed`: it appends whole
        // `&str`s and records their end offsets, so every (start, end) pair
        // read back here bounds one of those strings and is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The `i`th label in name order (`i < len()`).
    pub fn label(&self, i: usize) -> LabelRef<'_> {
        let start = if i == 0 { 0 } else { self.offset(2 * i - 1) };
        let name_end = self.offset(2 * i);
        let value_end = self.offset(2 * i + 1);
        LabelRef {
            name: self.text(start, name_end),
            value: self.text(name_end, value_end),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let l = self.label(mid);
            match l.name.cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(l.value),
            }
        }
        None
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = LabelRef<'_>> + Clone + '_ {
        (0..self.len()).map(move |i| self.label(i))
    }

    /// A 64-bit hash used to find a series by its labels; equal to
    /// [`LabelsRef::hash`] of the same labels.
    pub fn stable_hash(&self) -> u64 {
        hash_pairs(self.iter().map(|l| (l.name, l.value)))
    }

    /// Starts loading the packed labels into the cache (the first two
    /// lines: the entry table and the start of the strings).
    pub(crate) fn prefetch(&self) {
        let p = self.packed.as_ptr();
        crate::prefetch::prefetch(p);
        if self.packed.len() > 64 {
            crate::prefetch::prefetch(p.wrapping_add(64));
        }
    }

    /// Does this set hold exactly these (sorted, normalised) pairs?
    pub fn eq_ref(&self, other: LabelsRef<'_>) -> bool {
        self.len() == other.0.len()
            && self
                .iter()
                .zip(other.0)
                .all(|(l, (n, v))| l.name == *n && l.value == *v)
    }

    /// First duplicated label name, if any.
    pub fn duplicate_name(&self) -> Option<&str> {
        let mut prev: Option<&str> = None;
        for l in self.iter() {
            if prev == Some(l.name) {
                return Some(l.name);
            }
            prev = Some(l.name);
        }
        None
    }

    /// Bytes this set's shared allocation holds (for memory accounting).
    pub fn packed_len(&self) -> usize {
        self.packed.len()
    }
}

impl PartialOrd for LabelSet {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LabelSet {
    /// Label by label (name, then value), then by count — the order of a
    /// sorted list of labels.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.iter().cmp(other.iter())
    }
}

impl fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|l| (l.name, l.value)))
            .finish()
    }
}

impl fmt::Display for LabelSet {
    /// Prometheus notation: `name{a="b", c="d"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name().unwrap_or("");
        f.write_str(name)?;
        let mut first = true;
        f.write_str("{")?;
        for l in self.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

/// Shares one copy of each label set between the head and every open
/// block, so a series persisted in several blocks costs its labels once.
#[derive(Default)]
pub struct Interner {
    sets: std::sync::Mutex<std::collections::HashSet<LabelSet>>,
}

impl Interner {
    /// The shared copy of `ls` (stored if new).
    pub fn intern(&self, ls: LabelSet) -> LabelSet {
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = sets.get(&ls) {
            return existing.clone();
        }
        sets.insert(ls.clone());
        ls
    }

    /// Forgets label sets nothing else holds any more.
    pub fn collect_garbage(&self) -> usize {
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        let before = sets.len();
        sets.retain(|ls| Arc::strong_count(&ls.packed) > 1);
        before - sets.len()
    }

    pub fn len(&self) -> usize {
        self.sets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Labels borrowed from a decoded request: sorted by name, no empty
/// values. Lets the hot write path find existing series without allocating.
#[derive(Copy, Clone, Debug)]
pub struct LabelsRef<'a>(&'a [(&'a str, &'a str)]);

impl<'a> LabelsRef<'a> {
    /// Sorts `pairs` by name and drops empty values, then borrows them.
    pub fn normalize(pairs: &'a mut Vec<(&'a str, &'a str)>) -> LabelsRef<'a> {
        pairs.retain(|(_, v)| !v.is_empty());
        if !pairs.windows(2).all(|w| w[0] <= w[1]) {
            pairs.sort_unstable();
        }
        LabelsRef(pairs)
    }

    /// Borrows pairs the caller has already normalised.
    pub fn from_sorted(pairs: &'a [(&'a str, &'a str)]) -> LabelsRef<'a> {
        LabelsRef(pairs)
    }

    pub fn pairs(&self) -> &'a [(&'a str, &'a str)] {
        self.0
    }

    pub fn hash(&self) -> u64 {
        hash_pairs(self.0.iter().copied())
    }

    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    pub fn to_label_set(&self) -> LabelSet {
        LabelSet::pack(self.0.iter().copied(), self.0.len())
    }

    pub fn duplicate_name(&self) -> Option<&'a str> {
        self.0.windows(2).find(|w| w[0].0 == w[1].0).map(|w| w[0].0)
    }
}

impl fmt::Display for LabelsRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_label_set(), f)
    }
}

/// A fast hash of label pairs, 16 bytes per folded multiply (in-memory
/// lookups only; not persisted, so it may change between versions).
fn hash_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    const K1: u64 = 0xa076_1d64_78bd_642f;
    const K2: u64 = 0xe703_7ed1_a0b4_28db;
    // The high and low halves of the full product, folded: every input bit
    // reaches many output bits in one multiply.
    fn fold(a: u64, b: u64) -> u64 {
        let p = u128::from(a) * u128::from(b);
        (p as u64) ^ ((p >> 64) as u64)
    }
    fn word(b: &[u8]) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[..8]);
        u64::from_le_bytes(w)
    }
    fn half(b: &[u8]) -> u64 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[..4]);
        u64::from(u32::from_le_bytes(w))
    }
    let mut h: u64 = 0;
    let mut bytes = |s: &str| {
        let mut rest = s.as_bytes();
        while rest.len() > 16 {
            h = fold(word(rest) ^ K1 ^ h, word(&rest[8..]) ^ K2);
            rest = &rest[16..];
        }
        let n = rest.len();
        // The last 0..=16 bytes, read as two (possibly overlapping) words.
        let (a, b) = if n >= 8 {
            (word(rest), word(&rest[n - 8..]))
        } else if n >= 4 {
            (half(rest), half(&rest[n - 4..]))
        } else if n > 0 {
            let b3 =
                u64::from(rest[0]) | u64::from(rest[n / 2]) << 8 | u64::from(rest[n - 1]) << 16;
            (b3, 0)
        } else {
            (0, 0)
        };
        // The length keeps ("ab","c") and ("a","bc") apart.
        h = fold(a ^ K1 ^ h, b ^ K2 ^ (s.len() as u64).rotate_right(8));
    };
    for (n, v) in pairs {
        bytes(n);
        bytes(v);
    }
    h
}

// The naming rules have one home, shared with the wire decoders and the agent.
pub use vigil_wire::names::{is_valid_label_name, is_valid_metric_name};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_empty_values_dropped() {
        let ls = LabelSet::from_pairs(&[("z", "1"), ("__name__", "up"), ("a", ""), ("b", "2")]);
        let names: Vec<_> = ls.iter().map(|l| l.name).collect();
        assert_eq!(names, ["__name__", "b", "z"]);
        assert_eq!(ls.get("b"), Some("2"));
        assert_eq!(ls.get("a"), None);
        assert_eq!(ls.to_string(), r#"up{b="2", z="1"}"#);
    }

    #[test]
    fn hash_is_order_independent_and_distinguishes_boundaries() {
        let a = LabelSet::from_pairs(&[("a", "1"), ("b", "2")]);
        let b = LabelSet::from_pairs(&[("b", "2"), ("a", "1")]);
        let c = LabelSet::from_pairs(&[("a", "1b"), ("", "2")]);
        assert_eq!(a.stable_hash(), b.stable_hash());
        assert_ne!(a.stable_hash(), c.stable_hash());
    }

    #[test]
    fn borrowed_labels_hash_and_compare_like_owned() {
        let mut pairs = vec![("job", "a"), ("__name__", "up"), ("empty", "")];
        let r = LabelsRef::normalize(&mut pairs);
        let owned = LabelSet::from_pairs(&[("__name__", "up"), ("job", "a")]);
        assert_eq!(r.hash(), owned.stable_hash());
        assert!(owned.eq_ref(r));
        assert_eq!(r.to_label_set(), owned);
        assert_eq!(r.to_string(), r#"up{job="a"}"#);
    }

    #[test]
    fn interner_shares_and_forgets() {
        let i = Interner::default();
        let a = i.intern(LabelSet::from_pairs(&[("a", "1")]));
        let b = i.intern(LabelSet::from_pairs(&[("a", "1")]));
        assert!(Arc::ptr_eq(&a.packed, &b.packed));
        drop((a, b));
        assert_eq!(i.collect_garbage(), 1);
        assert!(i.is_empty());
    }

    #[test]
    fn packed_sets_order_compare_and_index_like_label_lists() {
        let sets = [
            LabelSet::from_pairs(&[]),
            LabelSet::from_pairs(&[("a", "1")]),
            LabelSet::from_pairs(&[("a", "1"), ("b", "")]),
            LabelSet::from_pairs(&[("a", "1"), ("b", "2")]),
            LabelSet::from_pairs(&[("a", "12")]),
            LabelSet::from_pairs(&[("ab", "")]),
            LabelSet::from_pairs(&[("b", "é✓"), ("a", "x")]),
        ];
        for x in &sets {
            for y in &sets {
                let lx: Vec<Label> = x.iter().map(Label::from).collect();
                let ly: Vec<Label> = y.iter().map(Label::from).collect();
                assert_eq!(x.cmp(y), lx.cmp(&ly), "{x} vs {y}");
                assert_eq!(x == y, lx == ly);
            }
        }
        let s = &sets[6];
        assert_eq!(s.len(), 2);
        assert_eq!(s.get("b"), Some("é✓"));
        assert_eq!(s.get("a"), Some("x"));
        assert_eq!(s.get("c"), None);
        assert_eq!(s.label(1).name, "b");
        assert!(sets[0].is_empty() && sets[0].get("a").is_none());
        assert_eq!(LabelSet::default(), sets[0]);
        assert_eq!(LabelSet::from_pairs(&[("a", "")]), LabelSet::default());
        assert_eq!(format!("{:?}", sets[3]), r#"[("a", "1"), ("b", "2")]"#);
    }

    #[test]
    fn duplicate_names_detected() {
        let ls = LabelSet::from_pairs(&[("a", "1"), ("a", "2")]);
        assert_eq!(ls.duplicate_name(), Some("a"));
    }
}
