//! The inverted index: label pair → sorted list of series refs.

use crate::labels::LabelSet;
use crate::matcher::{MatchOp, Matcher, RegexShape};
use crate::sample::SeriesRef;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Sorted, deduplicated series refs.
pub type PostingsList = Vec<SeriesRef>;

#[derive(Default)]
pub struct MemPostings {
    by_label: BTreeMap<Box<str>, BTreeMap<Box<str>, PostingsList>>,
    all: PostingsList,
}

impl MemPostings {
    /// Adds a series. Refs are assigned in increasing order, so a push keeps
    /// every list sorted; an out-of-order ref (WAL replay) is inserted in place.
    pub fn add(&mut self, r: SeriesRef, labels: &LabelSet) {
        insert_sorted(&mut self.all, r);
        for l in labels.iter() {
            // Look up before inserting: keys are allocated once per name/value.
            if !self.by_label.contains_key(l.name) {
                self.by_label.insert(l.name.into(), BTreeMap::new());
            }
            let Some(values) = self.by_label.get_mut(l.name) else {
                continue;
            };
            match values.get_mut(l.value) {
                Some(list) => insert_sorted(list, r),
                None => {
                    values.insert(l.value.into(), vec![r]);
                }
            }
        }
    }

    pub fn remove(&mut self, r: SeriesRef, labels: &LabelSet) {
        remove_sorted(&mut self.all, r);
        for l in labels.iter() {
            if let Some(values) = self.by_label.get_mut(l.name) {
                if let Some(list) = values.get_mut(l.value) {
                    remove_sorted(list, r);
                    if list.is_empty() {
                        values.remove(l.value);
                    }
                }
                if values.is_empty() {
                    self.by_label.remove(l.name);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Series with label `name="value"`.
    pub fn count(&self, name: &str, value: &str) -> usize {
        self.by_label
            .get(name)
            .and_then(|values| values.get(value))
            .map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn all(&self) -> &[SeriesRef] {
        &self.all
    }

    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.by_label.keys().map(|k| &**k)
    }

    pub fn label_values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.by_label
            .get(name)
            .into_iter()
            .flat_map(|m| m.keys().map(|k| &**k))
    }

    /// Series satisfying every matcher. An empty matcher list selects nothing,
    /// as Prometheus requires at least one matcher.
    pub fn select(&self, matchers: &[Matcher]) -> PostingsList {
        if matchers.is_empty() {
            return Vec::new();
        }
        // Narrow first with matchers that need the label to be present.
        let (positive, negative): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| !m.matches_empty());
        let mut result: Option<PostingsList> = None;
        for m in positive {
            let p = self.matching(m, false);
            result = Some(match result {
                None => p,
                Some(r) => intersect(&r, &p),
            });
            if result.as_ref().is_some_and(|r| r.is_empty()) {
                return Vec::new();
            }
        }
        let mut result = result.unwrap_or_else(|| self.all.clone());
        for m in negative {
            // The matcher accepts "absent": drop the series whose value it rejects.
            let rejected = self.matching(m, true);
            result = subtract(&result, &rejected);
        }
        result
    }

    /// Union of the lists of values that the matcher accepts (or, with
    /// `rejected`, the values it rejects). Absent labels are never included.
    fn matching(&self, m: &Matcher, rejected: bool) -> PostingsList {
        let Some(values) = self.by_label.get(m.name.as_str()) else {
            return Vec::new();
        };
        let wanted = |v: &str| m.matches(v) != rejected;
        // Fast paths that avoid scanning every value of the label.
        let direct: Option<Vec<&str>> = match (m.op, rejected, m.shape()) {
            (MatchOp::Equal, false, _) | (MatchOp::NotEqual, true, _) => {
                Some(vec![m.value.as_str()])
            }
            (MatchOp::RegexMatch, false, RegexShape::Alternation(alts))
            | (MatchOp::RegexNoMatch, true, RegexShape::Alternation(alts)) => {
                Some(alts.iter().map(String::as_str).collect())
            }
            _ => None,
        };
        let lists: Vec<&PostingsList> = match direct {
            Some(vals) => vals.iter().filter_map(|v| values.get(*v)).collect(),
            None => match (m.op, rejected, m.shape()) {
                (MatchOp::RegexMatch, false, RegexShape::Prefix(p))
                | (MatchOp::RegexNoMatch, true, RegexShape::Prefix(p)) => values
                    .range::<str, _>((Bound::Included(p.as_str()), Bound::Unbounded))
                    .take_while(|(v, _)| v.starts_with(p.as_str()))
                    .map(|(_, l)| l)
                    .collect(),
                _ => values
                    .iter()
                    .filter(|(v, _)| wanted(v))
                    .map(|(_, l)| l)
                    .collect(),
            },
        };
        union_all(&lists)
    }
}

fn insert_sorted(list: &mut PostingsList, r: SeriesRef) {
    match list.last() {
        Some(last) if *last >= r => {
            if let Err(i) = list.binary_search(&r) {
                list.insert(i, r);
            }
        }
        _ => list.push(r),
    }
}

fn remove_sorted(list: &mut PostingsList, r: SeriesRef) {
    if let Ok(i) = list.binary_search(&r) {
        list.remove(i);
    }
}

pub fn intersect(a: &[SeriesRef], b: &[SeriesRef]) -> PostingsList {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

pub fn subtract(a: &[SeriesRef], b: &[SeriesRef]) -> PostingsList {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &r in a {
        while j < b.len() && b[j] < r {
            j += 1;
        }
        if j >= b.len() || b[j] != r {
            out.push(r);
        }
    }
    out
}

fn union_all(lists: &[&PostingsList]) -> PostingsList {
    match lists {
        [] => Vec::new(),
        [one] => (*one).clone(),
        _ => {
            let mut out: PostingsList = lists.iter().flat_map(|l| l.iter().copied()).collect();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> MemPostings {
        let mut p = MemPostings::default();
        let series = [
            &[("__name__", "up"), ("job", "api"), ("env", "prod")][..],
            &[("__name__", "up"), ("job", "api-canary")],
            &[("__name__", "up"), ("job", "db"), ("env", "dev")],
            &[("__name__", "down"), ("job", "db")],
        ];
        for (i, s) in series.iter().enumerate() {
            p.add(SeriesRef(i as u64 + 1), &LabelSet::from_pairs(s));
        }
        p
    }

    fn sel(p: &MemPostings, ms: &[(MatchOp, &str, &str)]) -> Vec<u64> {
        let ms: Vec<_> = ms
            .iter()
            .map(|(op, n, v)| Matcher::new(*op, *n, *v).unwrap())
            .collect();
        p.select(&ms).into_iter().map(|r| r.0).collect()
    }

    #[test]
    fn prometheus_matcher_semantics() {
        use MatchOp::*;
        let p = index();
        assert_eq!(sel(&p, &[(Equal, "__name__", "up")]), [1, 2, 3]);
        assert_eq!(
            sel(&p, &[(Equal, "__name__", "up"), (Equal, "env", "")]),
            [2]
        );
        assert_eq!(
            sel(&p, &[(Equal, "__name__", "up"), (NotEqual, "env", "")]),
            [1, 3]
        );
        assert_eq!(sel(&p, &[(NotEqual, "env", "prod")]), [2, 3, 4]);
        assert_eq!(sel(&p, &[(RegexMatch, "job", "api.*")]), [1, 2]);
        assert_eq!(sel(&p, &[(RegexMatch, "job", "api|db")]), [1, 3, 4]);
        assert_eq!(sel(&p, &[(RegexMatch, "job", "a.i")]), [1]);
        assert_eq!(sel(&p, &[(RegexNoMatch, "job", "api.*")]), [3, 4]);
        assert_eq!(sel(&p, &[(RegexMatch, "env", "prod|")]), [1, 2, 4]);
        assert_eq!(sel(&p, &[(RegexNoMatch, "env", "prod|")]), [3]);
        assert_eq!(sel(&p, &[(RegexMatch, "job", ".*")]), [1, 2, 3, 4]);
        assert!(sel(&p, &[(Equal, "nope", "x")]).is_empty());
    }

    #[test]
    fn remove_cleans_up() {
        let mut p = index();
        p.remove(
            SeriesRef(4),
            &LabelSet::from_pairs(&[("__name__", "down"), ("job", "db")]),
        );
        assert_eq!(p.label_values("__name__").collect::<Vec<_>>(), ["up"]);
        assert_eq!(p.len(), 3);
    }
}
