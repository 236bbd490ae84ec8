//! The server's YAML configuration. Field names follow Prometheus where the
//! concept is the same (`retention_time` ~ `--storage.tsdb.retention.time`,
//! `out_of_order_time_window` as in prometheus.yml's `tsdb` section).

use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HOST:PORT to listen on.
    pub listen_addr: Option<String>,
    /// Where the WAL and blocks live.
    pub data_dir: Option<PathBuf>,
    pub storage: StorageConfig,
    pub limits: LimitsConfig,
    pub query: QueryConfig,
    pub local_agent: LocalAgentConfig,
    pub logs: LogsConfig,
    pub global: GlobalConfig,
    /// prometheus.yml's `alerting`: the Alertmanagers alerts go to.
    pub alerting: AlertingConfig,
    /// Prometheus rule files (a glob in the last element); relative paths
    /// are taken from the config file's directory.
    pub rule_files: Vec<PathBuf>,
    /// Rule files in Loki's ruler format (LogQL metric expressions).
    pub log_rule_files: Vec<PathBuf>,
    /// Where saved dashboards live, one `<uid>.json` each (default
    /// `<data dir>/dashboards`); relative to this file.
    pub dashboards_dir: Option<PathBuf>,
    /// Which requests are logged: `writes` (changes and admin actions, not
    /// ingest), `all` or `off`.
    pub access_log: crate::access_log::AccessLog,
    /// The Kubernetes resource metrics API on a TLS port of its own (off
    /// unless this section is present).
    pub k8s_metrics_api: Option<crate::k8s_metrics::K8sMetricsApiConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    pub alertmanagers: Vec<AlertmanagerConfig>,
    /// An alertmanager.yml (route, receivers) for the built-in notifier;
    /// relative to this file.
    pub notifier_config_file: Option<PathBuf>,
    /// Prometheus's `--rules.alert.resend-delay`.
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub resend_delay: Duration,
    /// Applied to every alert sent (after the external labels), to
    /// Alertmanagers and the built-in notifier alike.
    pub alert_relabel_configs: Vec<vigil_config::relabel::RelabelConfig>,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            alertmanagers: Vec::new(),
            notifier_config_file: None,
            resend_delay: Duration::from_secs(60),
            alert_relabel_configs: Vec::new(),
        }
    }
}

/// One `alerting.alertmanagers` entry, in prometheus.yml's shape
/// (`alertmanagers.rs` builds and checks it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    pub static_configs: Vec<AlertmanagerTargets>,
    pub file_sd_configs: Vec<vigil_config::service_discovery::FileSdConfig>,
    pub kubernetes_sd_configs: Vec<vigil_config::service_discovery::KubernetesSdConfig>,
    /// Over the discovered targets (`__address__`, `__scheme__`,
    /// `__alerts_path__`); a dropped target gets no alerts.
    pub relabel_configs: Vec<vigil_config::relabel::RelabelConfig>,
    /// Over the alerts sent to this entry's Alertmanagers only.
    pub alert_relabel_configs: Vec<vigil_config::relabel::RelabelConfig>,
    pub scheme: String,
    pub path_prefix: String,
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub timeout: Duration,
    pub api_version: String,
    pub basic_auth: Option<vigil_config::http_client::BasicAuth>,
    pub authorization: Option<vigil_config::http_client::Authorization>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub tls_config: Option<vigil_config::http_client::TlsConfig>,
    pub follow_redirects: bool,
    /// Accepted for prometheus.yml compatibility (HTTP/1.1 is used).
    pub enable_http2: bool,
    /// Rejected with a clear error: no proxy support.
    pub proxy_url: Option<String>,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            kubernetes_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            alert_relabel_configs: Vec::new(),
            scheme: "http".into(),
            path_prefix: String::new(),
            timeout: Duration::from_secs(10),
            api_version: "v2".into(),
            basic_auth: None,
            authorization: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: None,
            follow_redirects: true,
            enable_http2: true,
            proxy_url: None,
        }
    }
}

impl AlertmanagerConfig {
    /// Makes relative file names relative to the config file's directory,
    /// as Prometheus does.
    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        let tls = self.tls_config.as_mut();
        for p in self
            .basic_auth
            .as_mut()
            .and_then(|b| b.password_file.as_mut())
            .into_iter()
            .chain(
                self.authorization
                    .as_mut()
                    .and_then(|a| a.credentials_file.as_mut()),
            )
            .chain(self.bearer_token_file.as_mut())
            .chain(tls.into_iter().flat_map(|t| {
                [
                    t.ca_file.as_mut(),
                    t.cert_file.as_mut(),
                    t.key_file.as_mut(),
                ]
                .into_iter()
                .flatten()
            }))
        {
            fix(p);
        }
        for k in &mut self.kubernetes_sd_configs {
            for p in k
                .kubeconfig_file
                .as_mut()
                .into_iter()
                .chain(k.bearer_token_file.as_mut())
            {
                fix(p);
            }
        }
        for f in self
            .file_sd_configs
            .iter_mut()
            .flat_map(|c| c.files.iter_mut())
        {
            if Path::new(f.as_str()).is_relative() {
                *f = base.join(&*f).to_string_lossy().into_owned();
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerTargets {
    pub targets: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

impl ServerConfig {
    /// Every rule file pattern with its expressions' language.
    pub fn rule_sources(&self) -> Vec<alerting::RuleSource> {
        let src = |lang| {
            move |p: &PathBuf| alerting::RuleSource {
                pattern: p.clone(),
                lang,
            }
        };
        self.rule_files
            .iter()
            .map(src(alerting::Lang::PromQL))
            .chain(self.log_rule_files.iter().map(src(alerting::Lang::LogQL)))
            .collect()
    }
}

/// prometheus.yml's `global` as the rule engine uses it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub evaluation_interval: Duration,
    /// Added to alerts sent out and seen by templates as `$externalLabels`.
    pub external_labels: std::collections::BTreeMap<String, String>,
    /// The URL users reach Vigil at (`$externalURL`, alerts' generatorURL);
    /// default `http://<listen address>`.
    pub external_url: Option<String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            evaluation_interval: Duration::from_secs(60),
            external_labels: Default::default(),
            external_url: None,
        }
    }
}

/// The log store and its push limits; limit names and defaults as Loki's
/// `limits_config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Partitions entirely older than this are deleted; `0s` keeps everything.
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub retention_period: Duration,
    /// Oldest partitions are deleted while the log store exceeds this; `0B` = no limit.
    #[serde(deserialize_with = "collector::units::de_bytes")]
    pub retention_size: u64,
    /// Width of one partition (one tantivy index).
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub partition_period: Duration,
    /// How often pushed lines are indexed and committed (they are
    /// searchable and durable before that).
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub commit_interval: Duration,
    /// Longer lines are truncated, with a marker, and counted.
    #[serde(deserialize_with = "collector::units::de_bytes")]
    pub max_line_size: u64,
    pub max_label_names_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    /// Streams written to within the last hour; new ones past this get 429.
    pub max_global_streams_per_user: usize,
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub reject_old_samples_max_age: Duration,
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub creation_grace_period: Duration,
    /// Loki's `unordered_writes`: entries older than their stream's newest
    /// are taken back to `max_chunk_age / 2` behind it.
    pub unordered_writes: bool,
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub max_chunk_age: Duration,
    /// Live tails (`/loki/api/v1/tail` WebSockets) open at once; more are
    /// refused with 429 (Loki's `max_concurrent_tail_requests`).
    pub max_concurrent_tail_requests: usize,
}

impl Default for LogsConfig {
    fn default() -> Self {
        let o = logstore::LogStoreOptions::default();
        LogsConfig {
            retention_period: o.retention.unwrap_or(Duration::ZERO),
            retention_size: 0,
            partition_period: o.partition,
            commit_interval: o.commit_interval,
            max_line_size: o.limits.max_line_size as u64,
            max_label_names_per_series: o.limits.max_label_names_per_stream,
            max_label_name_length: o.limits.max_label_name_length,
            max_label_value_length: o.limits.max_label_value_length,
            max_global_streams_per_user: o.limits.max_streams,
            reject_old_samples_max_age: o.limits.reject_older_than,
            creation_grace_period: o.limits.creation_grace,
            unordered_writes: o.limits.unordered_writes,
            max_chunk_age: o.limits.max_chunk_age,
            max_concurrent_tail_requests: 10,
        }
    }
}

impl LogsConfig {
    pub fn to_options(&self) -> anyhow::Result<logstore::LogStoreOptions> {
        if self.partition_period < Duration::from_secs(60) {
            anyhow::bail!(
                "logs.partition_period {:?} is too short (at least 1m)",
                self.partition_period
            );
        }
        let defaults = logstore::LogStoreOptions::default();
        Ok(logstore::LogStoreOptions {
            partition: self.partition_period,
            commit_interval: self.commit_interval.max(Duration::from_millis(10)),
            retention: (!self.retention_period.is_zero()).then_some(self.retention_period),
            max_bytes: (self.retention_size > 0).then_some(self.retention_size),
            limits: logstore::Limits {
                max_line_size: usize::try_from(self.max_line_size).unwrap_or(usize::MAX),
                max_label_names_per_stream: self.max_label_names_per_series,
                max_label_name_length: self.max_label_name_length,
                max_label_value_length: self.max_label_value_length,
                max_streams: self.max_global_streams_per_user,
                reject_older_than: self.reject_old_samples_max_age,
                creation_grace: self.creation_grace_period,
                unordered_writes: self.unordered_writes,
                max_chunk_age: self.max_chunk_age,
                ..defaults.limits
            },
            ..defaults
        })
    }
}

/// All-in-one only: the built-in agent that collects this host's node
/// metrics and Vigil's own /metrics into the local store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalAgentConfig {
    pub enabled: bool,
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub scrape_interval: Duration,
}

impl Default for LocalAgentConfig {
    fn default() -> Self {
        LocalAgentConfig {
            enabled: true,
            scrape_interval: Duration::from_secs(15),
        }
    }
}

/// PromQL evaluation limits, as Prometheus's `--query.*` flags.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// How far back an instant selector looks for a sample.
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub lookback_delta: Duration,
    /// Longest a query may run (a request's `timeout` can only shorten it).
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub timeout: Duration,
    /// Most samples (and step slots) one query may hold in memory at any
    /// moment of its evaluation, as Prometheus's `--query.max-samples`.
    pub max_samples: u64,
    /// Most samples all running queries may hold together; a query that
    /// would pass it fails with 503 (retry later) instead of the server
    /// running out of memory. About 16-32 bytes each.
    pub max_samples_total: u64,
    /// Queries evaluated at once (PromQL and LogQL); more wait for a slot
    /// until their timeout.
    pub max_concurrency: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            lookback_delta: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            max_samples_total: 100_000_000,
            max_concurrency: 20,
        }
    }
}

impl QueryConfig {
    /// The engine options, with the shared budget every query of the
    /// server draws from.
    pub fn to_engine_sharing(
        &self,
        budget: &std::sync::Arc<promql::SharedBudget>,
    ) -> promql::EngineOptions {
        promql::EngineOptions {
            shared_budget: Some(budget.clone()),
            ..self.to_engine()
        }
    }

    pub fn to_engine(&self) -> promql::EngineOptions {
        let defaults = promql::EngineOptions::default();
        // As in Prometheus, a zero lookback means the default.
        let lookback = match self.lookback_delta.as_millis() as i64 {
            0 => defaults.lookback_delta_ms,
            ms => ms,
        };
        promql::EngineOptions {
            lookback_delta_ms: lookback,
            max_samples: self.max_samples,
            timeout: self.timeout,
            ..defaults
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// How often the WAL is fsynced; `0s` syncs before every acknowledgement.
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub wal_fsync_interval: Duration,
    /// Live samples this much older than a series' newest are still accepted.
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub out_of_order_time_window: Duration,
    /// Samples older than this are refused; `0s` keeps everything.
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub retention_time: Duration,
    /// Oldest blocks are deleted while the store exceeds this; `0B` = no limit.
    #[serde(deserialize_with = "collector::units::de_bytes")]
    pub retention_size: u64,
    /// How often the head is checked for data to persist, blocks for
    /// compaction and retention.
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub maintenance_interval: Duration,
    /// Memory for decoded block data kept for later queries (at least 8MB).
    #[serde(deserialize_with = "collector::units::de_bytes")]
    pub block_cache_size: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            wal_fsync_interval: Duration::from_secs(1),
            out_of_order_time_window: Duration::ZERO,
            retention_time: Duration::from_secs(15 * 24 * 3600),
            retention_size: 0,
            maintenance_interval: Duration::from_secs(15),
            block_cache_size: tsdb::db::DEFAULT_BLOCK_CACHE_BYTES as u64,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_labels_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    pub max_series_per_write: usize,
    /// Largest request body accepted, in bytes (compressed, as sent).
    pub max_request_body_bytes: usize,
    /// Largest body a write may decompress to (remote_write, Loki push);
    /// larger ones are refused with 400 before anything is inflated.
    #[serde(deserialize_with = "collector::units::de_bytes")]
    pub max_decompressed_body_bytes: u64,
    /// Memory all write requests together may use to decompress and
    /// decode their bodies; a request that finds it spent waits up to 5 s,
    /// then gets 429.
    #[serde(deserialize_with = "collector::units::de_bytes")]
    pub max_inflight_decode_bytes: u64,
    /// Series the store's head may hold; new series past it are refused
    /// with 400 (Mimir's `max_global_series_per_user`; 0 = no limit).
    pub max_global_series: usize,
    /// Series one metric name may have in the head (Mimir's
    /// `max_global_series_per_metric`; 0 = no limit).
    pub max_global_series_per_metric: usize,
    /// Samples further ahead of the server's clock are refused (remote
    /// write, import, rules' output), as Mimir's `creation_grace_period`.
    #[serde(deserialize_with = "collector::units::de_duration")]
    pub creation_grace_period: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = tsdb::Limits::default();
        LimitsConfig {
            max_labels_per_series: l.max_labels_per_series,
            max_label_name_length: l.max_label_name_length,
            max_label_value_length: l.max_label_value_length,
            max_series_per_write: l.max_series_per_write,
            max_request_body_bytes: 64 << 20,
            max_decompressed_body_bytes: 32 << 20,
            max_inflight_decode_bytes: 256 << 20,
            max_global_series: 5_000_000,
            max_global_series_per_metric: 0,
            creation_grace_period: Duration::from_secs(600),
        }
    }
}

impl LimitsConfig {
    pub fn to_tsdb(&self) -> tsdb::Limits {
        tsdb::Limits {
            max_labels_per_series: self.max_labels_per_series,
            max_label_name_length: self.max_label_name_length,
            max_label_value_length: self.max_label_value_length,
            max_series_per_write: self.max_series_per_write,
            max_global_series: self.max_global_series,
            max_global_series_per_metric: self.max_global_series_per_metric,
        }
    }
}

impl ServerConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut cfg = Self::parse(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for f in cfg
            .rule_files
            .iter_mut()
            .chain(cfg.log_rule_files.iter_mut())
            .chain(cfg.alerting.notifier_config_file.iter_mut())
            .chain(cfg.dashboards_dir.iter_mut())
        {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
        for am in &mut cfg.alerting.alertmanagers {
            am.resolve_paths(base);
        }
        if let Some(k) = &mut cfg.k8s_metrics_api {
            for f in k
                .tls_cert_file
                .iter_mut()
                .chain(k.tls_key_file.iter_mut())
                .chain(k.adapter_config_file.iter_mut())
            {
                if f.is_relative() {
                    *f = base.join(&*f);
                }
            }
        }
        Ok(cfg)
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let cfg: Self = serde_yaml::from_str(text)?;
        if let Some(k) = &cfg.k8s_metrics_api {
            k.validate()?;
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_section_maps_to_engine_options() {
        let c = ServerConfig::parse(
            "query:\n  lookback_delta: 0s\n  max_samples: 10\n  timeout: 30s\n",
        )
        .unwrap();
        let o = c.query.to_engine();
        assert_eq!(o.lookback_delta_ms, 300_000);
        assert_eq!(o.max_samples, 10);
        assert_eq!(o.timeout, Duration::from_secs(30));
        assert!(ServerConfig::parse("query:\n  max_sample: 1\n")
            .unwrap_err()
            .to_string()
            .contains("max_sample"));
    }

    #[test]
    fn config_errors_name_the_field() {
        let c = ServerConfig::parse("storage:\n  retention_time: 30d\n").unwrap();
        assert_eq!(c.storage.retention_time, Duration::from_secs(30 * 86400));
        let e = format!(
            "{:#}",
            ServerConfig::parse("storage:\n  retention: 30d\n").unwrap_err()
        );
        assert!(e.contains("unknown field `retention`"), "{e}");
        let e = format!(
            "{:#}",
            ServerConfig::parse("storage:\n  wal_fsync_interval: soon\n").unwrap_err()
        );
        assert!(e.contains("line 2"), "{e}");
    }
}
