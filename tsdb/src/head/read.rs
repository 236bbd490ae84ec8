//! Reading the head: series matching selectors (remembered per index
//! generation), their data as query parts, label names and values.

use super::series::MemSeries;
use super::{lock, Head};
use crate::labels::LabelSet;
use crate::match_cache::{self, Matched};
use crate::matcher::Matcher;
use crate::querier::{Series, TimeRange};
use std::collections::BTreeSet;
use std::sync::Arc;

impl Head {
    /// Series matching `matchers`, sorted by labels (as Prometheus's head
    /// index sorts postings); remembered until the series set changes.
    fn matching(&self, matchers: &[Matcher]) -> Matched {
        let key = match_cache::key(matchers);
        let index = self.read_index();
        let generation = index.generation;
        if let Some(hit) = self.match_cache.get(&key, generation) {
            return hit;
        }
        let refs = index.postings.select(matchers);
        let mut out: Vec<Arc<MemSeries>> = refs
            .iter()
            .filter_map(|r| index.series.get(r).cloned())
            .collect();
        drop(index);
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        let out: Matched = out.into();
        self.match_cache.put(key, generation, out.clone());
        out
    }

    pub fn select(&self, matchers: &[Matcher], range: TimeRange) -> Vec<Series> {
        self.matching(matchers)
            .iter()
            .filter_map(|s| {
                let d = lock(&s.data);
                d.has_sample_in(range).then(|| d.snapshot(&s.labels, range))
            })
            .collect()
    }

    pub fn series(&self, matchers: &[Matcher], range: TimeRange) -> Vec<LabelSet> {
        let mut out: Vec<LabelSet> = self
            .series_in(matchers, range)
            .into_iter()
            .map(|s| s.labels.clone())
            .collect();
        out.sort();
        out
    }

    /// True when `range` covers every sample in the head, so the postings
    /// can answer label questions without looking at series data.
    fn covers_head(&self, range: TimeRange) -> bool {
        match self.time_bounds() {
            Some((a, b)) => range.start <= a && range.end >= b,
            // No samples yet: series created by refused writes must not show.
            None => false,
        }
    }

    pub fn label_names(&self, matchers: &[Matcher], range: TimeRange) -> Vec<String> {
        if matchers.is_empty() && self.covers_head(range) {
            return self
                .read_index()
                .postings
                .label_names()
                .map(String::from)
                .collect();
        }
        let mut names = BTreeSet::new();
        for s in self.series_in(matchers, range) {
            for l in s.labels.iter() {
                if !names.contains(l.name) {
                    names.insert(l.name.to_string());
                }
            }
        }
        names.into_iter().collect()
    }

    pub fn label_values(&self, name: &str, matchers: &[Matcher], range: TimeRange) -> Vec<String> {
        if matchers.is_empty() && self.covers_head(range) {
            return self
                .read_index()
                .postings
                .label_values(name)
                .map(String::from)
                .collect();
        }
        let mut values = BTreeSet::new();
        for s in self.series_in(matchers, range) {
            if let Some(v) = s.labels.get(name) {
                if !values.contains(v) {
                    values.insert(v.to_string());
                }
            }
        }
        values.into_iter().collect()
    }

    /// Series matching `matchers` (all if empty) with data in `range`.
    fn series_in(&self, matchers: &[Matcher], range: TimeRange) -> Vec<Arc<MemSeries>> {
        let with_data = |s: &&Arc<MemSeries>| lock(&s.data).has_sample_in(range);
        if matchers.is_empty() {
            let index = self.read_index();
            return index.series.values().filter(with_data).cloned().collect();
        }
        self.matching(matchers)
            .iter()
            .filter(with_data)
            .cloned()
            .collect()
    }
}
