//! Label sets: the identity of a series.

use std::fmt;
use std::hash::{Hash, Hasher};

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
    labels: Vec<Label>,
}

impl LabelSet {
    /// Builds a set from labels in any order. Empty values are dropped.
    /// Duplicate names are kept so that validation can report them.
    pub fn from_labels(mut labels: Vec<Label>) -> Self {
        labels.retain(|l| !l.value.is_empty());
        labels.sort_unstable();
        LabelSet { labels }
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

    /// A stable 64-bit hash used to find a series by its labels.
    pub fn stable_hash(&self) -> u64 {
        let mut h = Fnv64::default();
        for l in &self.labels {
            h.write(l.name.as_bytes());
            h.write_u8(0xff);
            h.write(l.value.as_bytes());
            h.write_u8(0xff);
        }
        h.finish()
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

/// FNV-1a: tiny, deterministic across runs and platforms.
struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
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
    fn duplicate_names_detected() {
        let ls = LabelSet::from_pairs(&[("a", "1"), ("a", "2")]);
        assert_eq!(ls.duplicate_name(), Some("a"));
    }
}
