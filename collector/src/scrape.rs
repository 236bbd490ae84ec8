//! One target's scrapes, after the body has arrived: parse it, give each
//! sample the target's labels (`honor_labels`, `exported_*`), apply
//! `metric_relabel_configs` and the limits, write staleness markers for
//! series that went away, and add the report series (`up`,
//! `scrape_duration_seconds`, ...), as Prometheus's scrape loop does.
//! Fetching is elsewhere (`fetch.rs`), so all of this is testable with
//! bodies written in a test.

use crate::exposition::{Entry, Format, ParseError, Parser};
use crate::labels::Labels;
use crate::relabel::{relabel, RelabelRule};
use crate::remote_write::{WireSample, WriteSeries};
use crate::scrape_config::ScrapeConfig;
use crate::target::Target;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The NaN bit pattern Prometheus writes to mark a series stale.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// What a job's config says about each of its scrapes.
#[derive(Debug, Clone)]
pub struct ScrapeSettings {
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    /// 0: no limit.
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub metric_relabel: Vec<RelabelRule>,
}

impl ScrapeSettings {
    pub fn from_config(cfg: &ScrapeConfig) -> Self {
        ScrapeSettings {
            honor_labels: cfg.honor_labels,
            honor_timestamps: cfg.honor_timestamps.unwrap_or(true),
            sample_limit: cfg.sample_limit,
            label_limit: cfg.label_limit,
            label_name_length_limit: cfg.label_name_length_limit,
            label_value_length_limit: cfg.label_value_length_limit,
            metric_relabel: cfg.metric_relabel_rules(),
        }
    }
}

/// Why a scrape failed; the text is the target's `lastError`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScrapeError {
    /// The request did not produce a body (connection refused, timeout,
    /// status other than 200, body too large, ...).
    #[error("{0}")]
    Fetch(String),
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("sample limit exceeded")]
    SampleLimit,
    #[error(
        "label_limit exceeded (metric: {metric:.50}, number of labels: {count}, limit: {limit})"
    )]
    LabelLimit {
        metric: String,
        count: usize,
        limit: u64,
    },
    #[error("label_name_length_limit exceeded (metric: {metric:.50}, label name: {name:.50}, length: {len}, limit: {limit})")]
    LabelNameLength {
        metric: String,
        name: String,
        len: usize,
        limit: u64,
    },
    #[error("label_value_length_limit exceeded (metric: {metric:.50}, label name: {name:.50}, value: {value:.50}, length: {len}, limit: {limit})")]
    LabelValueLength {
        metric: String,
        name: String,
        value: String,
        len: usize,
        limit: u64,
    },
}

/// A fetched body and what the target said it is.
pub struct Body<'a> {
    pub bytes: &'a [u8],
    pub content_type: Option<&'a str>,
}

/// The outcome of one scrape, for the targets page.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeReport {
    pub timestamp_ms: i64,
    pub duration: Duration,
    pub error: Option<ScrapeError>,
    pub samples_scraped: u64,
    pub samples_post_relabel: u64,
    pub series_added: u64,
}

/// A series as the cache remembers it from earlier scrapes.
struct CacheEntry {
    /// `None`: metric relabeling drops it.
    labels: Option<Arc<Labels>>,
    /// The last scrape that saw it, for eviction.
    last_seen: u64,
}

/// Scrapes of one target beyond the latest that keep an unseen series'
/// cache entry (a flapping series is not relabeled again).
const CACHE_KEEP_SCRAPES: u64 = 10;

/// Series written by one scrape, keyed by their cached label set's address:
/// the cache hands out one `Arc` per series, so the address is its
/// identity, and hashing it is far cheaper than hashing the labels.
type Written = HashMap<usize, Arc<Labels>, ahash::RandomState>;

fn identity(l: &Arc<Labels>) -> usize {
    Arc::as_ptr(l) as usize
}

/// The state one target keeps from scrape to scrape.
pub struct TargetScrapes {
    target: Target,
    settings: ScrapeSettings,
    /// Keyed by the line's series text (`name{labels}` as written).
    cache: HashMap<String, CacheEntry, ahash::RandomState>,
    /// Series the last successful scrape wrote without an explicit
    /// timestamp: the candidates for staleness markers.
    previous: Written,
    scrapes: u64,
}

impl TargetScrapes {
    pub fn new(target: Target, settings: ScrapeSettings) -> Self {
        TargetScrapes {
            target,
            settings,
            cache: HashMap::default(),
            previous: Written::default(),
            scrapes: 0,
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Turns one scrape into the series to send (samples, staleness
    /// markers, report series) and the report. `body` is the fetch's result;
    /// `start_ms` is when the scrape began, the samples' timestamp.
    pub fn process(
        &mut self,
        body: Result<Body<'_>, String>,
        start_ms: i64,
        duration: Duration,
        out: &mut Vec<WriteSeries>,
    ) -> ScrapeReport {
        self.scrapes += 1;
        let first = out.len();
        let mut current = Written::default();
        let mut counts = Counts::default();
        let result = match body {
            Ok(body) => self.append_samples(&body, start_ms, out, &mut current, &mut counts),
            Err(e) => Err(ScrapeError::Fetch(e)),
        };
        if result.is_err() {
            // A failed scrape writes nothing it read, and everything the
            // last one wrote goes stale, as in Prometheus.
            out.truncate(first);
            current.clear();
        }
        for (id, gone) in &self.previous {
            if !current.contains_key(id) {
                out.push(one_sample(Arc::clone(gone), start_ms, STALE_NAN));
            }
        }
        self.previous = current;
        let scrapes = self.scrapes;
        self.cache
            .retain(|_, e| e.last_seen + CACHE_KEEP_SCRAPES >= scrapes);
        let report = ScrapeReport {
            timestamp_ms: start_ms,
            duration,
            error: result.err(),
            samples_scraped: counts.scraped,
            samples_post_relabel: counts.post_relabel,
            series_added: counts.added,
        };
        self.append_report(&report, out);
        report
    }

    /// Staleness markers for everything the target wrote, for when it goes
    /// away (removed from discovery, or the agent stops).
    pub fn stop(&mut self, now_ms: i64, out: &mut Vec<WriteSeries>) {
        for (_, gone) in self.previous.drain() {
            out.push(one_sample(gone, now_ms, STALE_NAN));
        }
        for name in REPORT_NAMES {
            out.push(one_sample(self.report_labels(name), now_ms, STALE_NAN));
        }
    }

    fn append_samples(
        &mut self,
        body: &Body<'_>,
        start_ms: i64,
        out: &mut Vec<WriteSeries>,
        current: &mut Written,
        counts: &mut Counts,
    ) -> Result<(), ScrapeError> {
        let format = Format::from_content_type(body.content_type);
        let mut parser = Parser::from_bytes(body.bytes, format)?;
        let scrape = self.scrapes;
        while let Some(entry) = parser.next_entry()? {
            let Entry::Sample(s) = entry else { continue };
            counts.scraped += 1;
            if !self.cache.contains_key(s.series_text) {
                let scraped = Labels::from_pairs(
                    s.labels
                        .iter()
                        .map(|(n, v)| (n.as_ref(), v.as_ref()))
                        .chain(std::iter::once(("__name__", s.name.as_ref()))),
                );
                let labels = self.sample_labels(&scraped).map(Arc::new);
                if labels.is_some() {
                    counts.added += 1;
                }
                self.cache.insert(
                    s.series_text.to_string(),
                    CacheEntry {
                        labels,
                        last_seen: scrape,
                    },
                );
            }
            let Some(entry) = self.cache.get_mut(s.series_text) else {
                continue;
            };
            entry.last_seen = scrape;
            let Some(labels) = &entry.labels else {
                continue;
            };
            counts.post_relabel += 1;
            if self.settings.sample_limit > 0 && counts.post_relabel > self.settings.sample_limit {
                return Err(ScrapeError::SampleLimit);
            }
            check_label_limits(&self.settings, labels)?;
            let timestamp = match s.timestamp_ms {
                Some(t) if self.settings.honor_timestamps => Some(t),
                _ => None,
            };
            // A series twice in one scrape: the first sample counts, as
            // Prometheus keeps the first and reports a duplicate.
            if timestamp.is_none()
                && current
                    .insert(identity(labels), Arc::clone(labels))
                    .is_some()
            {
                continue;
            }
            out.push(one_sample(
                Arc::clone(labels),
                timestamp.unwrap_or(start_ms),
                s.value,
            ));
        }
        Ok(())
    }

    /// The target's labels on a scraped series, then metric relabeling;
    /// `None` when relabeling drops it.
    fn sample_labels(&self, scraped: &Labels) -> Option<Labels> {
        let mut lb = scraped.clone();
        if self.settings.honor_labels {
            for (n, v) in self.target.public_labels() {
                if scraped.get(n).is_none() {
                    lb.set(n, v);
                }
            }
        } else {
            let mut conflicts: Vec<(String, String)> = Vec::new();
            for (n, v) in self.target.public_labels() {
                if let Some(existing) = scraped.get(n) {
                    conflicts.push((n.to_string(), existing.to_string()));
                }
                lb.set(n, v);
            }
            // Shorter names first, so `exported_x` is settled before
            // `exported_exported_x` can collide with it.
            conflicts.sort_by_key(|(n, _)| n.len());
            for (name, value) in conflicts {
                let mut new_name = format!("exported_{name}");
                while lb.get(&new_name).is_some() {
                    new_name = format!("exported_{new_name}");
                }
                lb.set(new_name, value);
            }
        }
        if !relabel(&self.settings.metric_relabel, &mut lb) || lb.get("__name__").is_none() {
            return None;
        }
        Some(lb)
    }

    fn report_labels(&self, name: &str) -> Arc<Labels> {
        // Public labels never include `__name__`, so nothing conflicts.
        let mut l = Labels::from_pairs(self.target.public_labels());
        l.set("__name__", name);
        Arc::new(l)
    }

    fn append_report(&self, r: &ScrapeReport, out: &mut Vec<WriteSeries>) {
        let up = if r.error.is_none() { 1.0 } else { 0.0 };
        let values = [
            up,
            r.duration.as_secs_f64(),
            r.samples_scraped as f64,
            r.samples_post_relabel as f64,
            r.series_added as f64,
        ];
        for (name, value) in REPORT_NAMES.iter().zip(values) {
            out.push(one_sample(self.report_labels(name), r.timestamp_ms, value));
        }
    }
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

#[derive(Default)]
struct Counts {
    scraped: u64,
    post_relabel: u64,
    added: u64,
}

fn one_sample(labels: Arc<Labels>, timestamp_ms: i64, value: f64) -> WriteSeries {
    WriteSeries {
        labels,
        samples: vec![WireSample {
            timestamp_ms,
            value,
        }],
    }
}

fn check_label_limits(s: &ScrapeSettings, labels: &Labels) -> Result<(), ScrapeError> {
    let metric = || labels.get("__name__").unwrap_or("").to_string();
    if s.label_limit > 0 && labels.len() as u64 > s.label_limit {
        return Err(ScrapeError::LabelLimit {
            metric: metric(),
            count: labels.len(),
            limit: s.label_limit,
        });
    }
    if s.label_name_length_limit == 0 && s.label_value_length_limit == 0 {
        return Ok(());
    }
    for (n, v) in labels.iter() {
        if s.label_name_length_limit > 0 && n.len() as u64 > s.label_name_length_limit {
            return Err(ScrapeError::LabelNameLength {
                metric: metric(),
                name: n.to_string(),
                len: n.len(),
                limit: s.label_name_length_limit,
            });
        }
        if s.label_value_length_limit > 0 && v.len() as u64 > s.label_value_length_limit {
            return Err(ScrapeError::LabelValueLength {
                metric: metric(),
                name: n.to_string(),
                value: v.to_string(),
                len: v.len(),
                limit: s.label_value_length_limit,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape_config::AgentConfig;
    use crate::target::{populate, static_groups, Outcome};

    fn scrapes(job_yaml: &str) -> TargetScrapes {
        let c = AgentConfig::parse(&format!(
            "scrape_configs:\n  - job_name: j\n    static_configs:\n      - targets: ['t:1']\n        labels: {{env: prod}}\n{job_yaml}"
        ))
        .unwrap();
        let sc = &c.scrape_configs[0];
        let g = &static_groups(sc)[0];
        let Outcome::Scrape(t) = populate(sc, &sc.relabel_rules(), g).remove(0) else {
            panic!("no target")
        };
        TargetScrapes::new(t, ScrapeSettings::from_config(sc))
    }

    /// Each written sample as `labels value@t` (NaN markers as "stale").
    fn run(
        ts: &mut TargetScrapes,
        body: Result<&str, &str>,
        t: i64,
    ) -> (Vec<String>, ScrapeReport) {
        let mut out = Vec::new();
        let body = body
            .map(|b| Body {
                bytes: b.as_bytes(),
                content_type: Some("text/plain; version=0.0.4"),
            })
            .map_err(str::to_string);
        let r = ts.process(body, t, Duration::from_millis(5), &mut out);
        let lines = out
            .iter()
            .map(|s| {
                let x = s.samples[0];
                let v = if x.value.to_bits() == STALE_NAN.to_bits() {
                    "stale".to_string()
                } else {
                    x.value.to_string()
                };
                format!("{} {v}@{}", s.labels, x.timestamp_ms)
            })
            .collect();
        (lines, r)
    }

    #[test]
    fn samples_get_target_labels_and_report_series() {
        let mut ts = scrapes("");
        let (lines, r) = run(
            &mut ts,
            Ok("# TYPE a counter\na{x=\"1\"} 3\nb 4 1234\n"),
            1000,
        );
        assert_eq!(r.error, None);
        assert_eq!(
            (r.samples_scraped, r.samples_post_relabel, r.series_added),
            (2, 2, 2)
        );
        assert_eq!(
            lines[..3],
            [
                "{__name__=\"a\", env=\"prod\", instance=\"t:1\", job=\"j\", x=\"1\"} 3@1000",
                "{__name__=\"b\", env=\"prod\", instance=\"t:1\", job=\"j\"} 4@1234",
                "{__name__=\"up\", env=\"prod\", instance=\"t:1\", job=\"j\"} 1@1000",
            ]
        );
        assert_eq!(lines.len(), 7);
        assert!(lines[6].starts_with("{__name__=\"scrape_series_added\""));
        // Cached the second time: nothing added.
        let (_, r) = run(&mut ts, Ok("a{x=\"1\"} 3\nb 4 1234\n"), 2000);
        assert_eq!(r.series_added, 0);
    }

    #[test]
    fn conflicting_labels_are_exported_unless_honored() {
        let mut ts = scrapes("");
        let (lines, _) = run(&mut ts, Ok("a{job=\"mine\",exported_job=\"x\"} 1\n"), 1);
        assert_eq!(
            lines[0],
            "{__name__=\"a\", env=\"prod\", exported_exported_job=\"mine\", exported_job=\"x\", instance=\"t:1\", job=\"j\"} 1@1"
        );
        let mut ts = scrapes("    honor_labels: true\n");
        let (lines, _) = run(&mut ts, Ok("a{job=\"mine\"} 1\n"), 1);
        assert_eq!(
            lines[0],
            "{__name__=\"a\", env=\"prod\", instance=\"t:1\", job=\"mine\"} 1@1"
        );
    }

    #[test]
    fn vanished_series_and_failed_scrapes_go_stale() {
        let mut ts = scrapes("");
        run(&mut ts, Ok("a 1\nb 2\nc 3 77\n"), 1000);
        let (lines, _) = run(&mut ts, Ok("a 1\n"), 2000);
        // b goes stale; c had its own timestamp, so it does not.
        assert_eq!(lines.len(), 2 + 5);
        assert_eq!(
            lines[1],
            "{__name__=\"b\", env=\"prod\", instance=\"t:1\", job=\"j\"} stale@2000"
        );
        let (lines, r) = run(&mut ts, Err("connection refused"), 3000);
        assert_eq!(
            r.error,
            Some(ScrapeError::Fetch("connection refused".into()))
        );
        assert_eq!(
            lines[..2],
            [
                "{__name__=\"a\", env=\"prod\", instance=\"t:1\", job=\"j\"} stale@3000",
                "{__name__=\"up\", env=\"prod\", instance=\"t:1\", job=\"j\"} 0@3000",
            ]
        );
        // A parse error fails the scrape and keeps nothing it read.
        run(&mut ts, Ok("a 1\n"), 4000);
        let (lines, r) = run(&mut ts, Ok("a 1\nb{ 2\n"), 5000);
        assert!(
            matches!(r.error, Some(ScrapeError::Parse(ref e)) if e.line == 2),
            "{r:?}"
        );
        assert_eq!(
            lines[0],
            "{__name__=\"a\", env=\"prod\", instance=\"t:1\", job=\"j\"} stale@5000"
        );
        let mut out = Vec::new();
        ts.stop(6000, &mut out);
        assert_eq!(out.len(), 5, "report series only: nothing else is live");
    }

    #[test]
    fn metric_relabeling_and_limits() {
        let mut ts = scrapes("    sample_limit: 2\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: drop_.*\n        action: drop\n");
        let (lines, r) = run(&mut ts, Ok("a 1\ndrop_me 2\nb 3\n"), 1);
        assert_eq!((r.samples_scraped, r.samples_post_relabel), (3, 2));
        assert_eq!(r.error, None);
        assert_eq!(lines.len(), 2 + 5);
        let (lines, r) = run(&mut ts, Ok("a 1\nb 2\nc 3\n"), 2);
        assert_eq!(r.error, Some(ScrapeError::SampleLimit));
        assert_eq!(
            r.error.as_ref().unwrap().to_string(),
            "sample limit exceeded"
        );
        // a and b were live: both go stale, up is 0.
        assert_eq!(lines.iter().filter(|l| l.contains("stale")).count(), 2);

        let mut ts = scrapes("    label_limit: 4\n");
        let (_, r) = run(&mut ts, Ok("a{x=\"1\",y=\"2\"} 1\n"), 1);
        assert_eq!(
            r.error.unwrap().to_string(),
            "label_limit exceeded (metric: a, number of labels: 6, limit: 4)"
        );
    }

    #[test]
    fn duplicate_series_keep_the_first_sample() {
        let mut ts = scrapes("");
        let (lines, r) = run(&mut ts, Ok("a 1\na 2\n"), 1);
        assert_eq!(r.samples_scraped, 2);
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("{__name__=\"a\""))
                .count(),
            1
        );
        assert!(lines[0].ends_with(" 1@1"));
    }
}
