//! The agent's configuration file: the parts of prometheus.yml an agent
//! needs (`global`, `scrape_configs`, `remote_write`), read with the same
//! field names, defaults and validation errors as Prometheus, so a user can
//! paste their scrape jobs unchanged. Unknown fields are errors, as they are
//! for Prometheus, so a typo never silently drops a setting.

use crate::labels::is_valid_label_name;
use crate::relabel::{RelabelError, RelabelRule};
use crate::units::{de_opt_duration, parse_bytes};
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vigil_config::http_client::{validate_auth, Authorization, BasicAuth, TlsConfig};
use vigil_config::relabel::RelabelConfig;
use vigil_config::service_discovery::{FileSdConfig, KubernetesSdConfig};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// serde_yaml's message names the line and column.
    #[error("{0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("job_name is empty")]
    EmptyJobName,
    #[error("found multiple scrape configs with job name {0:?}")]
    DuplicateJob(String),
    #[error("scrape timeout greater than scrape interval for scrape config with job name {0:?}")]
    TimeoutAboveInterval(String),
    #[error("scrape_interval must be greater than 0 for scrape config with job name {0:?}")]
    ZeroInterval(String),
    #[error(
        "invalid scheme {scheme:?} for scrape config with job name {job:?}: want http or https"
    )]
    Scheme { job: String, scheme: String },
    #[error("metrics_path {path:?} for scrape config with job name {job:?} must start with /")]
    MetricsPath { job: String, path: String },
    #[error("scrape config with job name {job:?}: {message}")]
    Job { job: String, message: String },
    #[error("scrape config with job name {job:?}: relabel_configs[{index}]: {source}")]
    Relabel {
        job: String,
        index: usize,
        source: RelabelError,
    },
    #[error("scrape config with job name {job:?}: metric_relabel_configs[{index}]: {source}")]
    MetricRelabel {
        job: String,
        index: usize,
        source: RelabelError,
    },
    #[error("scrape config with job name {job:?}: static_configs[{index}]: {message}")]
    StaticConfig {
        job: String,
        index: usize,
        message: String,
    },
    #[error("remote_write[{index}]: {message}")]
    RemoteWrite { index: usize, message: String },
    #[error("global: {0}")]
    Global(String),
    #[error("vigil_server: {0}")]
    VigilServer(String),
    #[error("containers: {0}")]
    Containers(String),
    #[error("logs: {0}")]
    Logs(String),
    #[error("environment variable {0} is not set (used as $({0}))")]
    Env(String),
}

const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// Replaces `$(NAME)` by the variable's value, as Kubernetes expands a
/// container's args, so one ConfigMap serves every node of a DaemonSet
/// (`$(NODE_NAME)`, `$(NODE_IP)` from the downward API). This syntax, not
/// `${NAME}`, because relabeling's `${1}` must stay as written.
fn expand_env(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(lit) = after.strip_prefix("$(") {
            out.push_str("$(");
            rest = lit;
            continue;
        }
        let name = after.strip_prefix('(').and_then(|a| {
            let end = a.find(')')?;
            let name = &a[..end];
            let valid = name.bytes().enumerate().all(|(k, b)| {
                b == b'_' || b.is_ascii_alphabetic() || (k > 0 && b.is_ascii_digit())
            });
            (valid && !name.is_empty()).then_some(name)
        });
        match name {
            Some(name) => {
                let value = env(name).ok_or_else(|| ConfigError::Env(name.to_string()))?;
                out.push_str(&value);
                rest = &after[name.len() + 2..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The whole agent configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    pub global: GlobalConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
    pub remote_write: Vec<RemoteWriteConfig>,
    /// The built-in node metrics (node_exporter's); off unless present.
    pub node: Option<NodeConfig>,
    /// Built-in pod and container metrics (cAdvisor's); off unless present.
    pub containers: Option<ContainersConfig>,
    /// Container logs, tailed and pushed to a Loki push URL; off unless
    /// present.
    pub logs: Option<LogsConfig>,
    /// The Vigil server that shows this agent's targets (`/api/v1/targets`).
    pub vigil_server: Option<VigilServerConfig>,
    /// `node` as a scrape job, validated with its defaults filled in.
    #[serde(skip)]
    pub node_job: Option<ScrapeConfig>,
    /// `containers` as a scrape job, likewise.
    #[serde(skip)]
    pub containers_job: Option<ScrapeConfig>,
}

/// Where an agent reports its targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VigilServerConfig {
    /// The server's base URL, e.g. `http://vigil:9090`.
    pub url: String,
    /// Names this agent's report; the host's name when unset.
    pub agent_name: Option<String>,
    #[serde(deserialize_with = "crate::units::de_duration")]
    pub report_interval: Duration,
}

impl Default for VigilServerConfig {
    fn default() -> Self {
        VigilServerConfig {
            url: String::new(),
            agent_name: None,
            report_interval: Duration::from_secs(10),
        }
    }
}

/// The built-in node collectors, scraped as one more job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    pub job_name: String,
    #[serde(deserialize_with = "de_opt_duration")]
    pub scrape_interval: Option<Duration>,
    #[serde(deserialize_with = "de_opt_duration")]
    pub scrape_timeout: Option<Duration>,
    /// The host's /proc, /sys and / as mounted in the agent's container.
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
    /// The `instance` label; the host's name when unset.
    pub instance: Option<String>,
    /// Extra labels on every node series.
    pub labels: BTreeMap<String, String>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            job_name: "node".into(),
            scrape_interval: None,
            scrape_timeout: None,
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/".into(),
            instance: None,
            labels: BTreeMap::new(),
            metric_relabel_configs: Vec::new(),
        }
    }
}

/// A built-in collector as a scrape job (validated with the others), its
/// one target named by `instance` (the host's name when unset).
fn builtin_job(
    job_name: &str,
    scrape_interval: Option<Duration>,
    scrape_timeout: Option<Duration>,
    instance: &Option<String>,
    labels: &BTreeMap<String, String>,
    metric_relabel_configs: &[RelabelConfig],
) -> ScrapeConfig {
    let instance = instance
        .clone()
        .or_else(crate::node::hostname)
        .unwrap_or_else(|| "localhost".into());
    ScrapeConfig {
        job_name: job_name.to_string(),
        scrape_interval,
        scrape_timeout,
        static_configs: vec![StaticConfig {
            targets: vec![instance],
            labels: labels.clone(),
        }],
        metric_relabel_configs: metric_relabel_configs.to_vec(),
        ..ScrapeConfig::default()
    }
}

/// The built-in pod and container collector (cAdvisor's metrics), scraped
/// as one more job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainersConfig {
    pub job_name: String,
    #[serde(deserialize_with = "de_opt_duration")]
    pub scrape_interval: Option<Duration>,
    #[serde(deserialize_with = "de_opt_duration")]
    pub scrape_timeout: Option<Duration>,
    /// The node's cgroup filesystem, /proc and /sys as mounted in the
    /// agent's container.
    pub cgroupfs: PathBuf,
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub instance: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Where the names of pods and containers come from.
    pub pods: PodsConfig,
}

impl Default for ContainersConfig {
    fn default() -> Self {
        ContainersConfig {
            job_name: "cadvisor".into(),
            scrape_interval: None,
            scrape_timeout: None,
            cgroupfs: "/sys/fs/cgroup".into(),
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            instance: None,
            labels: BTreeMap::new(),
            metric_relabel_configs: Vec::new(),
            pods: PodsConfig::default(),
        }
    }
}

/// Container logs: the kubelet's pod log files, tailed and pushed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// The kubelet's pod log directory as mounted in the agent's container.
    pub pods_dir: PathBuf,
    /// The `node` label; the host's name when unset.
    pub node_name: Option<String>,
    #[serde(deserialize_with = "crate::units::de_duration")]
    pub poll_interval: Duration,
    /// Longer lines go out in pieces of this size.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_line_size: u64,
    /// Join multi-line entries (stack traces), as Promtail's multiline stage.
    pub multiline: Option<MultilineConfig>,
    /// The host's own log files too (a glob in the last path element).
    pub paths: Vec<HostLogConfig>,
    /// The systemd journal too, read through journalctl.
    pub journal: Option<crate::logs::journal::JournalConfig>,
    /// Pod labels (from the Kubernetes API) copied onto each pod's log
    /// streams, names made valid (`app.kubernetes.io/name` →
    /// `app_kubernetes_io_name`).
    pub pod_labels: Vec<String>,
    /// How to reach the API for `pod_labels`: `api_server`,
    /// `kubeconfig_file`, `bearer_token_file`, `tls_config` as in
    /// `kubernetes_sd_configs`; in-cluster when unset.
    pub kubernetes: Option<KubernetesSdConfig>,
    /// Where entries go (`url` of a Loki push API, e.g. Vigil's or Loki's
    /// `/loki/api/v1/push`), with the remote_write fields for headers
    /// (`X-Scope-OrgID`), auth, TLS and the queue.
    pub push: RemoteWriteConfig,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            pods_dir: "/var/log/pods".into(),
            node_name: None,
            poll_interval: Duration::from_secs(1),
            max_line_size: 256 << 10,
            multiline: None,
            paths: Vec::new(),
            journal: None,
            pod_labels: Vec::new(),
            kubernetes: None,
            push: RemoteWriteConfig::default(),
        }
    }
}

/// One host log pattern and the labels of its entries.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HostLogConfig {
    pub path: String,
    pub labels: BTreeMap<String, String>,
}

/// Promtail's `multiline` stage: a line matching `firstline` starts an
/// entry, others continue it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MultilineConfig {
    pub firstline: String,
    pub max_lines: usize,
    #[serde(deserialize_with = "crate::units::de_duration")]
    pub max_wait_time: Duration,
}

impl MultilineConfig {
    /// `firstline` compiled; the error names the field.
    pub fn first_line_regex(&self) -> Result<regex::Regex, String> {
        if self.firstline.is_empty() {
            return Err("multiline: firstline must be set".into());
        }
        regex::Regex::new(&self.firstline)
            .map_err(|e| format!("multiline: firstline {:?}: {e}", self.firstline))
    }
}

impl Default for MultilineConfig {
    fn default() -> Self {
        MultilineConfig {
            firstline: String::new(),
            max_lines: 128,
            max_wait_time: Duration::from_secs(3),
        }
    }
}

/// The pod list: the kubelet's `/pods` over HTTPS with the service
/// account's token, or a file holding a `PodList`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PodsConfig {
    pub url: Option<String>,
    pub file: Option<PathBuf>,
    pub bearer_token_file: Option<PathBuf>,
    pub tls_config: Option<TlsConfig>,
}

impl ContainersConfig {
    pub fn scrape_config(&self) -> ScrapeConfig {
        builtin_job(
            &self.job_name,
            self.scrape_interval,
            self.scrape_timeout,
            &self.instance,
            &self.labels,
            &self.metric_relabel_configs,
        )
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| ConfigError::Containers(m);
        let p = &self.pods;
        match (&p.url, &p.file) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "pods: at most one of url and file must be configured".into()
                ))
            }
            (None, None) => {
                return Err(bad(
                    "pods: url (the kubelet's /pods) or file must be configured".into(),
                ))
            }
            (Some(u), None) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                return Err(bad(format!(
                    "pods: url {u:?} must start with http:// or https://"
                )))
            }
            _ => {}
        }
        if let Some(t) = &p.tls_config {
            t.validate()
                .map_err(|e| bad(format!("pods: tls_config: {e}")))?;
        }
        Ok(())
    }
}

impl NodeConfig {
    /// The node job as a scrape config (validated with the others), its
    /// one target named by `instance`.
    pub fn scrape_config(&self) -> ScrapeConfig {
        builtin_job(
            &self.job_name,
            self.scrape_interval,
            self.scrape_timeout,
            &self.instance,
            &self.labels,
            &self.metric_relabel_configs,
        )
    }

    pub fn host_paths(&self) -> crate::node::HostPaths {
        crate::node::HostPaths {
            procfs: self.procfs.clone(),
            sysfs: self.sysfs.clone(),
            rootfs: self.rootfs.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    #[serde(deserialize_with = "crate::units::de_duration")]
    pub scrape_interval: Duration,
    /// Unset: 10 s, or the interval if that is shorter (filled in when the
    /// config is read).
    #[serde(deserialize_with = "de_opt_duration")]
    pub scrape_timeout: Option<Duration>,
    /// Added to every series the agent sends, unless the series has the
    /// label already.
    pub external_labels: BTreeMap<String, String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        // Prometheus's defaults.
        GlobalConfig {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: None,
            external_labels: BTreeMap::new(),
        }
    }
}

/// One `scrape_configs` entry.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    pub job_name: String,
    /// `None` until [`AgentConfig::validate`] fills in the global default.
    #[serde(deserialize_with = "de_opt_duration")]
    pub scrape_interval: Option<Duration>,
    #[serde(deserialize_with = "de_opt_duration")]
    pub scrape_timeout: Option<Duration>,
    pub metrics_path: Option<String>,
    pub scheme: Option<String>,
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: Option<bool>,
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    #[serde(deserialize_with = "de_opt_bytes")]
    pub body_size_limit: Option<u64>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub tls_config: Option<TlsConfig>,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// One `remote_write` entry: where the agent ships what it scrapes.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    pub url: String,
    #[serde(deserialize_with = "de_opt_duration")]
    pub remote_timeout: Option<Duration>,
    pub headers: BTreeMap<String, String>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub tls_config: Option<TlsConfig>,
    pub write_relabel_configs: Vec<RelabelConfig>,
    pub queue_config: QueueConfig,
}

/// How a remote_write sender batches and retries (Prometheus's
/// `queue_config` names).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Accepted for prometheus.yml compatibility; the queue is on disk,
    /// bounded by `max_backlog`.
    pub capacity: usize,
    /// Most bytes of unsent batches kept on disk (Vigil's own field); past
    /// it the oldest are dropped and counted.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_backlog: u64,
    /// Shards sending in parallel (a fixed count here, not Prometheus's
    /// upper bound for resharding; at most `ship::MAX_SHARDS`).
    pub max_shards: usize,
    /// Accepted for prometheus.yml compatibility.
    pub min_shards: usize,
    pub max_samples_per_send: usize,
    #[serde(deserialize_with = "crate::units::de_duration")]
    pub batch_send_deadline: Duration,
    #[serde(deserialize_with = "crate::units::de_duration")]
    pub min_backoff: Duration,
    #[serde(deserialize_with = "crate::units::de_duration")]
    pub max_backoff: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        // Prometheus's defaults.
        QueueConfig {
            capacity: 10_000,
            max_backlog: 1 << 30,
            // Prometheus starts at one shard and grows to 50 under load; an
            // agent ships one node's samples, for which 4 keep up after an
            // outage without holding 50 connections per endpoint.
            max_shards: 4,
            min_shards: 1,
            max_samples_per_send: 2_000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
        }
    }
}

fn de_opt_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| parse_bytes(&s).map_err(serde::de::Error::custom))
        .transpose()
}

impl AgentConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and validates, filling in defaults as Prometheus does.
    /// Reads agent.yaml; `$(NAME)` anywhere in it is replaced by the
    /// environment variable NAME first (`$$(` for a literal `$(`).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_with_env(text, |name| std::env::var(name).ok())
    }

    /// [`AgentConfig::parse`] with the environment given.
    pub fn parse_with_env(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = expand_env(text, env)?;
        let mut cfg: AgentConfig = if text.trim().is_empty() {
            AgentConfig::default()
        } else {
            serde_yaml::from_str(&text)?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        let interval = self.global.scrape_interval;
        self.global
            .scrape_timeout
            .get_or_insert(DEFAULT_SCRAPE_TIMEOUT.min(interval));
        let g = &self.global;
        if g.scrape_interval.is_zero() {
            return Err(ConfigError::Global(
                "scrape_interval must be greater than 0".into(),
            ));
        }
        if g.scrape_timeout.is_some_and(|t| t > g.scrape_interval) {
            return Err(ConfigError::Global(
                "global scrape timeout greater than scrape interval".into(),
            ));
        }
        for name in g.external_labels.keys() {
            if !is_valid_label_name(name) {
                return Err(ConfigError::Global(format!(
                    "{name:?} is not a valid label name"
                )));
            }
        }
        let mut seen = HashSet::new();
        for sc in &mut self.scrape_configs {
            sc.validate(g)?;
            if !seen.insert(sc.job_name.clone()) {
                return Err(ConfigError::DuplicateJob(sc.job_name.clone()));
            }
        }
        if let Some(node) = &self.node {
            let mut sc = node.scrape_config();
            sc.validate(g)?;
            if seen.contains(&sc.job_name) {
                return Err(ConfigError::DuplicateJob(sc.job_name));
            }
            seen.insert(sc.job_name.clone());
            self.node_job = Some(sc);
        }
        if let Some(c) = &self.containers {
            c.validate()?;
            let mut sc = c.scrape_config();
            sc.validate(g)?;
            if seen.contains(&sc.job_name) {
                return Err(ConfigError::DuplicateJob(sc.job_name));
            }
            self.containers_job = Some(sc);
        }
        for (index, rw) in self.remote_write.iter().enumerate() {
            rw.validate(index)?;
        }
        if let Some(l) = &self.logs {
            if l.push.url.is_empty() {
                return Err(ConfigError::Logs(
                    "push: url (a Loki push API, e.g. http://vigil:9090/loki/api/v1/push) is empty"
                        .into(),
                ));
            }
            l.push.validate(0).map_err(|e| {
                ConfigError::Logs(e.to_string().replacen("remote_write[0]", "push", 1))
            })?;
            if let Some(m) = &l.multiline {
                m.first_line_regex().map_err(ConfigError::Logs)?;
            }
            for (i, name) in l.pod_labels.iter().enumerate() {
                if name.is_empty() {
                    return Err(ConfigError::Logs(format!(
                        "pod_labels[{i}]: empty (a Kubernetes pod label, e.g. app.kubernetes.io/name)"
                    )));
                }
            }
            if l.kubernetes.as_ref().is_some_and(|k| k.role.is_some()) {
                return Err(ConfigError::Logs(
                    "kubernetes: role is not taken here (the pods of this node are watched)".into(),
                ));
            }
            for (i, h) in l.paths.iter().enumerate() {
                let dir = Path::new(&h.path).parent().map(|d| d.display().to_string());
                if !h.path.starts_with('/') || dir.is_some_and(|d| d.contains(['*', '?'])) {
                    return Err(ConfigError::Logs(format!(
                        "paths[{i}]: {:?} must be absolute, with a glob only in its last element",
                        h.path
                    )));
                }
                for name in h.labels.keys() {
                    if !is_valid_label_name(name) {
                        return Err(ConfigError::Logs(format!(
                            "paths[{i}]: {name:?} is not a valid label name"
                        )));
                    }
                }
            }
            if l.poll_interval.is_zero() || l.max_line_size == 0 {
                return Err(ConfigError::Logs(
                    "poll_interval and max_line_size must be greater than 0".into(),
                ));
            }
        }
        if let Some(v) = &self.vigil_server {
            if !(v.url.starts_with("http://") || v.url.starts_with("https://")) {
                return Err(ConfigError::VigilServer(format!(
                    "url {:?} must start with http:// or https://",
                    v.url
                )));
            }
            if v.report_interval.is_zero() {
                return Err(ConfigError::VigilServer(
                    "report_interval must be greater than 0".into(),
                ));
            }
        }
        Ok(())
    }
}

impl ScrapeConfig {
    fn validate(&mut self, g: &GlobalConfig) -> Result<(), ConfigError> {
        if self.job_name.is_empty() {
            return Err(ConfigError::EmptyJobName);
        }
        let job = self.job_name.clone();
        let interval = *self.scrape_interval.get_or_insert(g.scrape_interval);
        if interval.is_zero() {
            return Err(ConfigError::ZeroInterval(job));
        }
        // A job with a shorter interval than the global timeout gets its
        // interval as the timeout, as Prometheus does.
        let timeout = *self.scrape_timeout.get_or_insert(
            g.scrape_timeout
                .unwrap_or(DEFAULT_SCRAPE_TIMEOUT)
                .min(interval),
        );
        if timeout > interval {
            return Err(ConfigError::TimeoutAboveInterval(job));
        }
        let scheme = self.scheme.get_or_insert_with(|| "http".into());
        if scheme != "http" && scheme != "https" {
            return Err(ConfigError::Scheme {
                job,
                scheme: scheme.clone(),
            });
        }
        let path = self.metrics_path.get_or_insert_with(|| "/metrics".into());
        if !path.starts_with('/') {
            return Err(ConfigError::MetricsPath {
                job,
                path: path.clone(),
            });
        }
        self.honor_timestamps.get_or_insert(true);
        validate_auth(
            self.basic_auth.as_ref(),
            self.authorization.as_ref(),
            self.bearer_token.is_some() || self.bearer_token_file.is_some(),
        )
        .map_err(|message| ConfigError::Job {
            job: job.clone(),
            message,
        })?;
        if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
            return Err(ConfigError::Job {
                job,
                message: "at most one of bearer_token & bearer_token_file must be configured"
                    .into(),
            });
        }
        if let Some(t) = &self.tls_config {
            t.validate().map_err(|e| ConfigError::Job {
                job: job.clone(),
                message: format!("tls_config: {e}"),
            })?;
        }
        for (i, k) in self.kubernetes_sd_configs.iter().enumerate() {
            k.validate().map_err(|e| ConfigError::Job {
                job: job.clone(),
                message: format!("kubernetes_sd_configs[{i}]: {e}"),
            })?;
        }
        for (index, r) in self.relabel_configs.iter().enumerate() {
            RelabelRule::new(r).map_err(|source| ConfigError::Relabel {
                job: job.clone(),
                index,
                source,
            })?;
        }
        for (index, r) in self.metric_relabel_configs.iter().enumerate() {
            RelabelRule::new(r).map_err(|source| ConfigError::MetricRelabel {
                job: job.clone(),
                index,
                source,
            })?;
        }
        for (index, f) in self.file_sd_configs.iter().enumerate() {
            if f.files.is_empty() || f.refresh_interval.is_zero() {
                return Err(ConfigError::Job {
                    job,
                    message: format!(
                        "file_sd_configs[{index}]: needs files and a refresh_interval above 0"
                    ),
                });
            }
        }
        for (index, sc) in self.static_configs.iter().enumerate() {
            let bad = |message: String| ConfigError::StaticConfig {
                job: job.clone(),
                index,
                message,
            };
            for name in sc.labels.keys() {
                if !is_valid_label_name(name) {
                    return Err(bad(format!("{name:?} is not a valid label name")));
                }
            }
            for t in &sc.targets {
                if t.is_empty() || t.contains('/') {
                    return Err(bad(format!(
                        "{t:?} is not a valid target address (want host:port, without scheme or path)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The relabel rules, compiled (validated when the config was read).
    pub fn relabel_rules(&self) -> Vec<RelabelRule> {
        compile(&self.relabel_configs)
    }

    pub fn metric_relabel_rules(&self) -> Vec<RelabelRule> {
        compile(&self.metric_relabel_configs)
    }
}

fn compile(cfgs: &[RelabelConfig]) -> Vec<RelabelRule> {
    cfgs.iter()
        .filter_map(|c| RelabelRule::new(c).ok())
        .collect()
}

impl RemoteWriteConfig {
    fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let bad = |message: String| ConfigError::RemoteWrite { index, message };
        if self.url.is_empty() {
            return Err(bad("url for remote_write is empty".into()));
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(bad(format!(
                "url {:?} must start with http:// or https://",
                self.url
            )));
        }
        validate_auth(self.basic_auth.as_ref(), self.authorization.as_ref(), false).map_err(bad)?;
        if let Some(t) = &self.tls_config {
            t.validate().map_err(|e| bad(format!("tls_config: {e}")))?;
        }
        for (i, r) in self.write_relabel_configs.iter().enumerate() {
            RelabelRule::new(r).map_err(|e| bad(format!("write_relabel_configs[{i}]: {e}")))?;
        }
        let q = &self.queue_config;
        if q.max_samples_per_send == 0 || q.capacity == 0 {
            return Err(bad(
                "queue_config capacity and max_samples_per_send must be greater than 0".into(),
            ));
        }
        if q.max_shards == 0 {
            return Err(bad("queue_config max_shards must be greater than 0".into()));
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        self.remote_timeout.unwrap_or(Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_expand_and_relabel_references_stay() {
        let env = |n: &str| (n == "NODE_IP").then(|| "10.0.0.7".to_string());
        let text = "scrape_configs:\n  - job_name: kubelet\n    static_configs:\n      - targets: ['$(NODE_IP):10250']\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: '(.*):.*'\n        replacement: '${1}:$1 $$(NODE_IP)'\n        target_label: host\n";
        let c = AgentConfig::parse_with_env(text, env).unwrap();
        let sc = &c.scrape_configs[0];
        assert_eq!(sc.static_configs[0].targets, ["10.0.0.7:10250"]);
        assert_eq!(
            sc.relabel_configs[0].replacement.as_deref(),
            Some("${1}:$1 $(NODE_IP)")
        );
        let e = AgentConfig::parse_with_env(
            "global:\n  external_labels: {node: '$(NODE_NAME)'}\n",
            env,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable NODE_NAME is not set (used as $(NODE_NAME))"
        );
    }

    #[test]
    fn kubernetes_sd_errors_name_the_job_and_entry() {
        let e = err("scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - {}\n");
        assert!(
            e.contains("\"k\"") && e.contains("kubernetes_sd_configs[0]: role missing"),
            "{e}"
        );
        let e = err("scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - {role: pod, api_server: 'https://a', kubeconfig_file: /k}\n");
        assert!(
            e.contains("cannot use 'kubeconfig_file' and 'api_server' simultaneously"),
            "{e}"
        );
        let e = err("scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - role: pod\n        selectors: [{role: node, label: 'a=b'}]\n");
        assert!(e.contains("pod role supports only pod selectors"), "{e}");
        let e = err("scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - {role: ingress}\n");
        assert!(e.contains("ingress"), "{e}");
        let c = AgentConfig::parse("scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - role: endpointslice\n        namespaces: {names: [shop]}\n        selectors: [{role: pod, field: 'status.phase=Running'}]\n").unwrap();
        let k = &c.scrape_configs[0].kubernetes_sd_configs[0];
        assert!(k.own_node);
        assert_eq!(k.namespaces.names, ["shop"]);
    }

    #[test]
    fn logs_settings_are_checked() {
        let e = err("logs: {}\n");
        assert!(e.starts_with("logs: push: url"), "{e}");
        let e = err("logs:\n  paths: [{path: 'var/log/*.log'}]\n  push: {url: 'http://v/loki/api/v1/push'}\n");
        assert!(
            e.contains("paths[0]: \"var/log/*.log\" must be absolute"),
            "{e}"
        );
        let e = err("logs:\n  paths: [{path: '/var/*/x.log'}]\n  push: {url: 'http://v/loki/api/v1/push'}\n");
        assert!(e.contains("glob only in its last element"), "{e}");
        let e = err("logs:\n  pod_labels: [app, '']\n  push: {url: 'http://v/loki/api/v1/push'}\n");
        assert!(e.starts_with("logs: pod_labels[1]: empty"), "{e}");
        let e = err("logs:\n  pod_labels: [app]\n  kubernetes: {role: pod}\n  push: {url: 'http://v/loki/api/v1/push'}\n");
        assert!(e.contains("kubernetes: role is not taken here"), "{e}");
        let c = AgentConfig::parse("logs:\n  pod_labels: [app.kubernetes.io/name]\n  kubernetes: {kubeconfig_file: /k}\n  push: {url: 'http://v/loki/api/v1/push'}\n").unwrap();
        let l = c.logs.unwrap();
        assert_eq!(l.pod_labels, ["app.kubernetes.io/name"]);
        assert!(l.kubernetes.unwrap().kubeconfig_file.is_some());
        let e = err("logs:\n  multiline: {firstline: '(unclosed'}\n  push: {url: 'http://v/loki/api/v1/push'}\n");
        assert!(
            e.starts_with("logs: multiline: firstline \"(unclosed\""),
            "{e}"
        );
        let c = AgentConfig::parse("logs:\n  multiline: {firstline: '^\\d{4}-'}\n  push: {url: 'http://v/loki/api/v1/push'}\n").unwrap();
        let m = c.logs.unwrap().multiline.unwrap();
        assert_eq!(
            (m.max_lines, m.max_wait_time),
            (128, Duration::from_secs(3))
        );
    }

    #[test]
    fn containers_need_one_pod_list_source() {
        let e = err("containers: {}\n");
        assert!(
            e.contains("containers: pods: url (the kubelet's /pods) or file must be configured"),
            "{e}"
        );
        let e = err("containers:\n  pods: {url: 'https://k:10250/pods', file: /p.json}\n");
        assert!(e.contains("at most one of url and file"), "{e}");
        let e = err("containers:\n  pods: {url: 'k:10250/pods'}\n");
        assert!(e.contains("must start with http"), "{e}");
        let e = err("containers:\n  pods: {url: 'https://k/pods', tls_config: {cert_file: /c}}\n");
        assert!(e.contains("pods: tls_config: exactly one of key"), "{e}");
        let e = err("node: {}\ncontainers:\n  job_name: node\n  pods: {file: /p.json}\n");
        assert!(e.contains("node"), "{e}");
        let c = AgentConfig::parse("containers:\n  pods: {file: /p.json}\n").unwrap();
        assert_eq!(c.containers_job.unwrap().job_name, "cadvisor");
    }

    fn err(text: &str) -> String {
        AgentConfig::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn defaults_follow_prometheus() {
        let c = AgentConfig::parse(
            "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['localhost:9100']\n  - job_name: fast\n    scrape_interval: 5s\n",
        )
        .unwrap();
        let node = &c.scrape_configs[0];
        assert_eq!(node.scrape_interval, Some(Duration::from_secs(15)));
        assert_eq!(node.scrape_timeout, Some(Duration::from_secs(10)));
        assert_eq!(node.metrics_path.as_deref(), Some("/metrics"));
        assert_eq!(node.scheme.as_deref(), Some("http"));
        assert_eq!(node.honor_timestamps, Some(true));
        // The global 10 s timeout does not fit a 5 s interval.
        assert_eq!(
            c.scrape_configs[1].scrape_timeout,
            Some(Duration::from_secs(5))
        );
        assert!(AgentConfig::parse("").unwrap().scrape_configs.is_empty());
        // An unset global timeout shrinks to a short global interval.
        let c = AgentConfig::parse(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: a\n",
        )
        .unwrap();
        assert_eq!(c.global.scrape_timeout, Some(Duration::from_secs(1)));
        assert_eq!(
            c.scrape_configs[0].scrape_timeout,
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            err("global:\n  scrape_interval: 1s\n  scrape_timeout: 2s\n"),
            "global: global scrape timeout greater than scrape interval"
        );
    }

    #[test]
    fn errors_name_the_job_and_field() {
        assert_eq!(
            err("scrape_configs:\n  - job_name: a\n  - job_name: a\n"),
            "found multiple scrape configs with job name \"a\""
        );
        assert_eq!(
            err("scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 6s\n"),
            "scrape timeout greater than scrape interval for scrape config with job name \"a\""
        );
        assert!(err("scrape_configs:\n  - job_name: a\n    scheme: ftp\n").contains("ftp"));
        assert!(
            err("scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n")
                .contains("unknown field `scrape_intervall`")
        );
        assert!(
            err("scrape_configs:\n  - job_name: a\n    scrape_interval: 5q\n")
                .contains("unknown unit \"q\"")
        );
        let e = err("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: keep\n        regex: '('\n");
        assert!(
            e.starts_with("scrape config with job name \"a\": relabel_configs[0]:"),
            "{e}"
        );
        let e = err("scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['http://x:1/metrics']\n");
        assert!(
            e.contains("static_configs[0]") && e.contains("not a valid target address"),
            "{e}"
        );
        let e = err("scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    bearer_token: t\n");
        assert!(e.contains("at most one of basic_auth"), "{e}");
        assert_eq!(
            err("scrape_configs:\n  - scheme: http\n"),
            "job_name is empty"
        );
        assert!(err("remote_write:\n  - url: localhost:9090\n").starts_with("remote_write[0]: url"));
        // serde_yaml places syntax errors.
        assert!(err("scrape_configs: [\n").contains("line"));
    }

    #[test]
    fn remote_write_defaults() {
        let c = AgentConfig::parse("remote_write:\n  - url: http://vigil:9090/api/v1/write\n    queue_config:\n      max_samples_per_send: 500\n").unwrap();
        let rw = &c.remote_write[0];
        assert_eq!(rw.timeout(), Duration::from_secs(30));
        assert_eq!(rw.queue_config.max_samples_per_send, 500);
        assert_eq!(rw.queue_config.capacity, 10_000);
    }
}
