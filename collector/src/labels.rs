//! A target's or a scraped sample's labels while the agent shapes them:
//! sorted by name, names unique, empty values absent (as in Prometheus,
//! setting a label to "" removes it).

use std::fmt;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn new() -> Self {
        Labels(Vec::new())
    }

    /// From pairs in any order; a later duplicate name wins.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut out = Labels::new();
        for (n, v) in pairs {
            out.set(n.into(), v.into());
        }
        out
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).ok().map(|i| self.0[i].1.as_str())
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match (self.find(&name), value.is_empty()) {
            (Ok(i), true) => {
                self.0.remove(i);
            }
            (Ok(i), false) => self.0[i].1 = value,
            (Err(_), true) => {}
            (Err(i), false) => self.0.insert(i, (name, value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.find(name) {
            self.0.remove(i);
        }
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        self.0.retain(|(n, v)| keep(n, v));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// A hash that stays the same across runs and builds (the std hasher
    /// is seeded per process), for placing a series in a send shard whose
    /// backlog outlives the process.
    pub fn stable_hash(&self) -> u64 {
        let mut h = Fnv1a::new();
        for (n, v) in &self.0 {
            h.write(n.as_bytes());
            h.write(&[0xff]);
            h.write(v.as_bytes());
            h.write(&[0xff]);
        }
        h.finish()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Drops every label whose name starts with `__` (what Prometheus does
    /// to a target's labels after relabeling).
    pub fn without_reserved(mut self) -> Self {
        self.0.retain(|(n, _)| !n.starts_with("__"));
        self
    }
}

impl fmt::Display for Labels {
    /// `{a="1", b="2"}`, as Prometheus prints label sets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

pub use vigil_wire::names::is_valid_label_name;

/// FNV-1a of `text`: stable across runs and builds, unlike the std hasher.
pub(crate) fn fnv1a(text: &str) -> u64 {
    let mut h = Fnv1a::new();
    h.write(text.as_bytes());
    h.finish()
}

/// FNV-1a, 64 bits: small, and fixed by definition rather than by seed.
pub(crate) struct Fnv1a(u64);

impl Fnv1a {
    pub(crate) fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_empty_means_absent() {
        let mut l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3")]);
        assert_eq!(l.to_string(), "{a=\"1\", b=\"3\"}");
        l.set("a", "");
        l.set("c", "");
        assert_eq!(l.to_string(), "{b=\"3\"}");
        l.set("__address__", "x:1");
        assert_eq!(l.get("__address__"), Some("x:1"));
        assert_eq!(l.without_reserved().len(), 1);
    }
}
