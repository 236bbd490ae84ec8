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

/// A set of labels sorted by name, names unique, no empty values
/// (an empty value means "label absent", as in Prometheus).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LabelSet {
    /// Shared: cloning a label set (cuts, block writers, query results)
    /// bumps a count instead of copying every string.
    labels: Arc<[Label]>,
}

impl LabelSet {
    /// Builds a set from labels in any order. Empty values are dropped.
    /// Duplicate names are kept so that validation can report them.
    pub fn from_labels(mut labels: Vec<Label>) -> Self {
        labels.retain(|l| !l.value.is_empty());
        labels.sort_unstable();
        LabelSet {
            labels: labels.into(),
        }
    }

    /// Convenience for tests and literals: `LabelSet::from_pairs(&[("a","b")])`.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::from_labels(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|l| (*l.name).cmp(name))
            .ok()
            .map(|i| &*self.labels[i].value)
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.labels.iter()
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// A 64-bit hash used to find a series by its labels; equal to
    /// [`LabelsRef::hash`] of the same labels.
    pub fn stable_hash(&self) -> u64 {
        hash_pairs(self.labels.iter().map(|l| (&*l.name, &*l.value)))
    }

    /// Does this set hold exactly these (sorted, normalised) pairs?
    pub fn eq_ref(&self, other: LabelsRef<'_>) -> bool {
        self.labels.len() == other.0.len()
            && self
                .labels
                .iter()
                .zip(other.0)
                .all(|(l, (n, v))| *l.name == **n && *l.value == **v)
    }

    /// First duplicated label name, if any.
    pub fn duplicate_name(&self) -> Option<&str> {
        self.labels
            .windows(2)
            .find(|w| w[0].name == w[1].name)
            .map(|w| &*w[0].name)
    }
}

impl fmt::Display for LabelSet {
    /// Prometheus notation: `name{a="b", c="d"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name().unwrap_or("");
        f.write_str(name)?;
        let mut first = true;
        f.write_str("{")?;
        for l in self.labels.iter().filter(|l| &*l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, &*l.value)?;
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
        sets.retain(|ls| Arc::strong_count(&ls.labels) > 1);
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
        LabelSet {
            labels: self
                .0
                .iter()
                .map(|(n, v)| Label::new(*n, *v))
                .collect::<Vec<_>>()
                .into(),
        }
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

/// A fast word-at-a-time hash of label pairs (in-memory lookups only; not
/// persisted, so it may change between versions).
fn hash_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = 0;
    let mut mix = |w: u64| h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    let mut bytes = |s: &str| {
        let b = s.as_bytes();
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            mix(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        // The length keeps ("ab","c") and ("a","bc") apart.
        mix(u64::from_le_bytes(tail) ^ ((b.len() as u64) << 56));
    };
    for (n, v) in pairs {
        bytes(n);
        bytes(v);
    }
    h
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_valid_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_empty_values_dropped() {
        let ls = LabelSet::from_pairs(&[("z", "1"), ("__name__", "up"), ("a", ""), ("b", "2")]);
        let names: Vec<_> = ls.iter().map(|l| &*l.name).collect();
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
    fn name_rules() {
        assert!(is_valid_metric_name("node_cpu:rate5m"));
        assert!(!is_valid_metric_name("1abc"));
        assert!(!is_valid_metric_name(""));
        assert!(is_valid_label_name("_x9"));
        assert!(!is_valid_label_name("a:b"));
        assert!(!is_valid_label_name("é"));
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
        assert!(Arc::ptr_eq(&a.labels, &b.labels));
        drop((a, b));
        assert_eq!(i.collect_garbage(), 1);
        assert!(i.is_empty());
    }

    #[test]
    fn duplicate_names_detected() {
        let ls = LabelSet::from_pairs(&[("a", "1"), ("a", "2")]);
        assert_eq!(ls.duplicate_name(), Some("a"));
    }
}
