//! Metric metadata (type, help, unit per metric family) as remote_write
//! senders report it, answered by `/api/v1/metadata`.
//!
//! Prometheus keeps this per scrape target and answers with the distinct
//! entries per metric; senders repeat it every minute, so this store keeps
//! the distinct entries per metric name, bounded so that outside input
//! cannot grow it without limit, and saves it to `metadata.json` in the
//! data directory (atomically, when it changed) so a restart does not empty
//! `/api/v1/metadata` until the next report.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Metric names kept; further names are dropped (and counted).
pub const MAX_METRICS: usize = 100_000;
/// Distinct entries kept per metric (Prometheus answers every distinct one).
pub const MAX_ENTRIES_PER_METRIC: usize = 16;
/// Longest help text kept, in bytes (longer ones are cut at a char boundary).
pub const MAX_HELP_BYTES: usize = 4096;

/// One metadata entry, in `/api/v1/metadata`'s shape.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetricMetadata {
    #[serde(rename = "type")]
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// The remote_write `MetricMetadata.MetricType` enum as Prometheus names it.
pub fn type_name(code: u64) -> &'static str {
    match code {
        1 => "counter",
        2 => "gauge",
        3 => "histogram",
        4 => "gaugehistogram",
        5 => "summary",
        6 => "info",
        7 => "stateset",
        _ => "unknown",
    }
}

#[derive(Default)]
pub struct MetadataStore {
    by_metric: Mutex<BTreeMap<String, Vec<MetricMetadata>>>,
    dirty: AtomicBool,
    pub dropped: AtomicU64,
    file: Option<PathBuf>,
}

use tsdb::quote::prefix as truncate;

impl MetadataStore {
    /// Loads `dir/metadata.json` if present. A damaged file is reported and
    /// ignored: metadata is re-sent by every sender within minutes.
    pub fn open(dir: &Path) -> MetadataStore {
        let file = dir.join("metadata.json");
        let by_metric = match std::fs::read(&file) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(path = %file.display(), error = %e, "ignoring unreadable metric metadata");
                    BTreeMap::new()
                }
            },
            Err(_) => BTreeMap::new(),
        };
        MetadataStore {
            by_metric: Mutex::new(by_metric),
            file: Some(file),
            ..Default::default()
        }
    }

    /// Records one entry for `metric`; returns whether it was new.
    pub fn record(&self, metric: &str, kind: &str, help: &str, unit: &str) -> bool {
        if metric.is_empty() {
            return false;
        }
        let entry = MetricMetadata {
            kind: kind.to_string(),
            help: truncate(help, MAX_HELP_BYTES).to_string(),
            unit: unit.to_string(),
        };
        let mut m = self.by_metric.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = m.get_mut(metric) {
            if list.contains(&entry) {
                return false;
            }
            if list.len() >= MAX_ENTRIES_PER_METRIC {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            list.push(entry);
            list.sort();
        } else {
            if m.len() >= MAX_METRICS {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            m.insert(metric.to_string(), vec![entry]);
        }
        self.dirty.store(true, Ordering::Relaxed);
        true
    }

    /// `/api/v1/metadata`'s data: metric → entries, optionally for one
    /// metric, at most `limit` metrics and `per_metric` entries each
    /// (`None` = all).
    pub fn query(
        &self,
        metric: Option<&str>,
        limit: Option<usize>,
        per_metric: Option<usize>,
    ) -> BTreeMap<String, Vec<MetricMetadata>> {
        let m = self.by_metric.lock().unwrap_or_else(|p| p.into_inner());
        let take = |list: &Vec<MetricMetadata>| {
            let n = per_metric.unwrap_or(list.len());
            list.iter().take(n).cloned().collect::<Vec<_>>()
        };
        let mut out = BTreeMap::new();
        match metric {
            Some(name) => {
                if let Some(list) = m.get(name) {
                    out.insert(name.to_string(), take(list));
                }
            }
            None => {
                for (k, list) in m.iter().take(limit.unwrap_or(usize::MAX)) {
                    out.insert(k.clone(), take(list));
                }
            }
        }
        out
    }

    /// Writes the file if anything changed since the last save.
    pub fn save_if_changed(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let bytes = {
            let m = self.by_metric.lock().unwrap_or_else(|p| p.into_inner());
            serde_json::to_vec(&*m).map_err(std::io::Error::other)?
        };
        let tmp = file.with_extension("json.tmp");
        let res = std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, file));
        if res.is_err() {
            self.dirty.store(true, Ordering::Relaxed);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_entries_bounded_queried_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        let s = MetadataStore::open(dir.path());
        assert!(s.record("up", "gauge", "1 if the target is up", ""));
        assert!(
            !s.record("up", "gauge", "1 if the target is up", ""),
            "repeat"
        );
        assert!(s.record("up", "gauge", "other help", ""));
        assert!(s.record("http_requests_total", "counter", "Requests.", ""));
        assert!(!s.record("", "counter", "", ""));
        let all = s.query(None, None, None);
        assert_eq!(all.len(), 2);
        assert_eq!(all["up"].len(), 2);
        assert_eq!(s.query(None, Some(1), None).len(), 1);
        assert!(s.query(None, Some(0), None).is_empty());
        assert_eq!(s.query(Some("up"), None, Some(1))["up"].len(), 1);
        assert!(s.query(Some("nope"), None, None).is_empty());
        for i in 0..MAX_ENTRIES_PER_METRIC {
            s.record("many", "gauge", &format!("help {i}"), "");
        }
        assert!(!s.record("many", "gauge", "one too many", ""));
        assert_eq!(s.dropped.load(Ordering::Relaxed), 1);
        let long = "é".repeat(MAX_HELP_BYTES);
        s.record("long", "gauge", &long, "");
        assert!(s.query(Some("long"), None, None)["long"][0].help.len() <= MAX_HELP_BYTES);

        s.save_if_changed().unwrap();
        let again = MetadataStore::open(dir.path());
        assert_eq!(again.query(None, None, None), s.query(None, None, None));
        std::fs::write(dir.path().join("metadata.json"), b"{not json").unwrap();
        assert!(MetadataStore::open(dir.path())
            .query(None, None, None)
            .is_empty());
    }

    #[test]
    fn type_names_match_prometheus() {
        assert_eq!(type_name(1), "counter");
        assert_eq!(type_name(5), "summary");
        assert_eq!(type_name(0), "unknown");
        assert_eq!(type_name(99), "unknown");
    }
}
