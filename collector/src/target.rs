//! Scrape targets: from a discovered group of addresses and labels to the
//! labels and URL a scrape uses, as Prometheus's target relabeling does it
//! (defaults `job`, `__scheme__`, `__metrics_path__`, `__param_*`,
//! `__scrape_interval__`, `__scrape_timeout__`; `relabel_configs`; `__meta_*`
//! dropped; `instance` defaulted to the address).

use crate::labels::Labels;
use crate::relabel::{relabel, RelabelRule};
use crate::scrape_config::ScrapeConfig;
use crate::units::{format_duration, parse_duration};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

pub const ADDRESS: &str = "__address__";
pub const SCHEME: &str = "__scheme__";
pub const METRICS_PATH: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT: &str = "__scrape_timeout__";
pub const PARAM_PREFIX: &str = "__param_";
pub const META_PREFIX: &str = "__meta_";

/// A group of targets sharing labels, as a static config or a service
/// discovery mechanism hands them over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetGroup {
    /// Each target's own labels (at least `__address__`).
    pub targets: Vec<Labels>,
    /// Labels every target of the group gets unless it has its own.
    pub labels: Labels,
    /// Where the group came from, for the targets page and logs.
    pub source: String,
}

/// A target after relabeling: what to scrape and the labels its series get.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// All labels after relabeling, `__` ones included (the URL is built
    /// from them).
    pub labels: Labels,
    /// Labels before relabeling, for the targets page.
    pub discovered: Labels,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Target {
    /// The labels every scraped series gets: all but the `__` ones.
    pub fn public_labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels.iter().filter(|(n, _)| !n.starts_with("__"))
    }

    /// Stable identity of a target within its job, for scrape offsets and
    /// keying loops across reloads.
    pub fn key(&self) -> String {
        format!("{}{}", self.url, self.labels)
    }
}

/// Why a discovered target was not turned into a scrape target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("no address")]
    NoAddress,
    #[error("{0:?} is not a valid hostname")]
    BadAddress(String),
    #[error("error parsing scrape interval: {0}")]
    BadInterval(String),
    #[error("scrape interval cannot be 0")]
    ZeroInterval,
    #[error("error parsing scrape timeout: {0}")]
    BadTimeout(String),
    #[error("scrape timeout cannot be 0")]
    ZeroTimeout,
    #[error("scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})")]
    TimeoutAboveInterval { timeout: String, interval: String },
}

/// What became of one discovered target.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Scrape(Target),
    /// Relabeling dropped it; Prometheus lists these as dropped targets.
    Dropped {
        discovered: Labels,
    },
    Invalid {
        discovered: Labels,
        error: TargetError,
    },
}

/// The static_configs of a job as target groups.
pub fn static_groups(cfg: &ScrapeConfig) -> Vec<TargetGroup> {
    cfg.static_configs
        .iter()
        .enumerate()
        .map(|(i, sc)| static_group(i, &sc.targets, &sc.labels))
        .collect()
}

/// One `static_configs` entry as a target group: each target an
/// `__address__`, the entry's labels shared.
pub fn static_group(
    index: usize,
    targets: &[String],
    labels: &std::collections::BTreeMap<String, String>,
) -> TargetGroup {
    TargetGroup {
        targets: targets
            .iter()
            .map(|t| Labels::from_pairs([(ADDRESS, t.as_str())]))
            .collect(),
        labels: Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        source: index.to_string(),
    }
}

/// Turns every target of a group into an outcome.
pub fn populate(cfg: &ScrapeConfig, rules: &[RelabelRule], group: &TargetGroup) -> Vec<Outcome> {
    group
        .targets
        .iter()
        .map(|t| populate_one(cfg, rules, &group.labels, t))
        .collect()
}

fn populate_one(
    cfg: &ScrapeConfig,
    rules: &[RelabelRule],
    group_labels: &Labels,
    target_labels: &Labels,
) -> Outcome {
    let interval = cfg.scrape_interval.unwrap_or(Duration::from_secs(60));
    let timeout = cfg.scrape_timeout.unwrap_or(Duration::from_secs(10));
    let mut lb = group_labels.clone();
    for (n, v) in target_labels.iter() {
        lb.set(n, v);
    }
    let defaults = [
        ("job", cfg.job_name.clone()),
        (SCRAPE_INTERVAL, format_duration(interval)),
        (SCRAPE_TIMEOUT, format_duration(timeout)),
        (
            METRICS_PATH,
            cfg.metrics_path
                .clone()
                .unwrap_or_else(|| "/metrics".into()),
        ),
        (SCHEME, cfg.scheme.clone().unwrap_or_else(|| "http".into())),
    ];
    for (n, v) in defaults {
        if lb.get(n).unwrap_or("").is_empty() {
            lb.set(n, v);
        }
    }
    for (k, vs) in &cfg.params {
        let name = format!("{PARAM_PREFIX}{k}");
        if let Some(first) = vs.first() {
            if lb.get(&name).unwrap_or("").is_empty() {
                lb.set(name, first.as_str());
            }
        }
    }
    let discovered = lb.clone();
    if !relabel(rules, &mut lb) {
        return Outcome::Dropped { discovered };
    }
    let invalid = |error| Outcome::Invalid {
        discovered: discovered.clone(),
        error,
    };
    let addr = lb.get(ADDRESS).unwrap_or("").to_string();
    if addr.is_empty() {
        return invalid(TargetError::NoAddress);
    }
    if addr.contains('/') {
        return invalid(TargetError::BadAddress(addr));
    }
    let interval_text = lb.get(SCRAPE_INTERVAL).unwrap_or("").to_string();
    let interval = match parse_duration(&interval_text) {
        Ok(d) if d.is_zero() => return invalid(TargetError::ZeroInterval),
        Ok(d) => d,
        Err(e) => return invalid(TargetError::BadInterval(e.to_string())),
    };
    let timeout_text = lb.get(SCRAPE_TIMEOUT).unwrap_or("").to_string();
    let timeout = match parse_duration(&timeout_text) {
        Ok(d) if d.is_zero() => return invalid(TargetError::ZeroTimeout),
        Ok(d) => d,
        Err(e) => return invalid(TargetError::BadTimeout(e.to_string())),
    };
    if timeout > interval {
        return invalid(TargetError::TimeoutAboveInterval {
            timeout: timeout_text,
            interval: interval_text,
        });
    }
    lb.retain(|n, _| !n.starts_with(META_PREFIX));
    if lb.get("instance").unwrap_or("").is_empty() {
        lb.set("instance", addr.as_str());
    }
    let url = target_url(&lb, &cfg.params);
    Outcome::Scrape(Target {
        labels: lb,
        discovered,
        url,
        interval,
        timeout,
    })
}

/// `scheme://address/path?params`, where a `__param_x` label overrides the
/// config's first value of `x`.
fn target_url(lb: &Labels, params: &BTreeMap<String, Vec<String>>) -> String {
    let mut query: BTreeMap<&str, Vec<&str>> = params
        .iter()
        .map(|(k, vs)| (k.as_str(), vs.iter().map(String::as_str).collect()))
        .collect();
    for (n, v) in lb.iter() {
        if let Some(k) = n.strip_prefix(PARAM_PREFIX) {
            // The label replaces the first value only, as in Prometheus.
            match query.get_mut(k) {
                Some(vs) if !vs.is_empty() => vs[0] = v,
                _ => {
                    query.insert(k, vec![v]);
                }
            }
        }
    }
    let mut url = format!(
        "{}://{}{}",
        lb.get(SCHEME).unwrap_or("http"),
        lb.get(ADDRESS).unwrap_or(""),
        lb.get(METRICS_PATH).unwrap_or("/metrics")
    );
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (k, vs) in query {
        for v in vs {
            url.push(sep);
            sep = '&';
            percent_encode(&mut url, k);
            url.push('=');
            percent_encode(&mut url, v);
        }
    }
    url
}

/// Query-string encoding (`application/x-www-form-urlencoded`).
fn percent_encode(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape_config::AgentConfig;

    fn outcomes(yaml: &str) -> Vec<Outcome> {
        let c = AgentConfig::parse(yaml).unwrap();
        let sc = &c.scrape_configs[0];
        let rules = sc.relabel_rules();
        static_groups(sc)
            .iter()
            .flat_map(|g| populate(sc, &rules, g))
            .collect()
    }

    #[test]
    fn defaults_and_instance() {
        let got = outcomes(
            "scrape_configs:\n  - job_name: node\n    scrape_interval: 15s\n    params:\n      module: [if_mib, x]\n    static_configs:\n      - targets: ['a:9100']\n        labels: {env: prod}\n",
        );
        let Outcome::Scrape(t) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(t.url, "http://a:9100/metrics?module=if_mib&module=x");
        assert_eq!(t.interval, Duration::from_secs(15));
        assert_eq!(t.timeout, Duration::from_secs(10));
        let public: Vec<_> = t.public_labels().collect();
        assert_eq!(
            public,
            vec![("env", "prod"), ("instance", "a:9100"), ("job", "node")]
        );
        assert_eq!(t.labels.get(SCRAPE_INTERVAL), Some("15s"));
        assert_eq!(t.labels.get("__param_module"), Some("if_mib"));
    }

    #[test]
    fn relabeling_rewrites_address_params_and_drops() {
        // The blackbox exporter pattern: the target becomes a parameter.
        let got = outcomes(
            "scrape_configs:\n  - job_name: blackbox\n    metrics_path: /probe\n    static_configs:\n      - targets: ['example.com', 'drop.me']\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: drop.me\n        action: drop\n      - source_labels: [__address__]\n        target_label: __param_target\n      - source_labels: [__param_target]\n        target_label: instance\n      - target_label: __address__\n        replacement: 127.0.0.1:9115\n      - target_label: __meta_x\n        replacement: y\n",
        );
        let Outcome::Scrape(t) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(t.url, "http://127.0.0.1:9115/probe?target=example.com");
        assert_eq!(t.labels.get("instance"), Some("example.com"));
        assert_eq!(t.labels.get("__meta_x"), None);
        assert!(
            matches!(&got[1], Outcome::Dropped { discovered } if discovered.get(ADDRESS) == Some("drop.me"))
        );
    }

    #[test]
    fn invalid_targets_say_why() {
        let got = outcomes(
            "scrape_configs:\n  - job_name: j\n    static_configs:\n      - targets: ['a:1', 'b:1']\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: a:1\n        target_label: __address__\n        replacement: ''\n      - source_labels: [__address__]\n        regex: b:1\n        target_label: __scrape_timeout__\n        replacement: 2m\n",
        );
        assert!(
            matches!(
                &got[0],
                Outcome::Invalid {
                    error: TargetError::NoAddress,
                    ..
                }
            ),
            "{got:?}"
        );
        let Outcome::Invalid { error, .. } = &got[1] else {
            panic!("{got:?}")
        };
        assert_eq!(
            error.to_string(),
            "scrape timeout cannot be greater than scrape interval (\"2m\" > \"1m\")"
        );
    }

    #[test]
    fn params_are_encoded() {
        let mut lb =
            Labels::from_pairs([(ADDRESS, "h:1"), (SCHEME, "https"), (METRICS_PATH, "/m")]);
        lb.set("__param_q", "a b&c=é");
        assert_eq!(
            target_url(&lb, &BTreeMap::new()),
            "https://h:1/m?q=a+b%26c%3D%C3%A9"
        );
    }
}
