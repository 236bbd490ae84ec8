//! A relabeling rule as Prometheus configs write it (`relabel_configs`,
//! `metric_relabel_configs`, `alert_relabel_configs`, `write_relabel_configs`).
//! The agent checks, compiles and applies rules (`collector/src/relabel.rs`).

use serde::Deserialize;

/// One rule as written in YAML.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default)]
    pub source_labels: Vec<String>,
    pub separator: Option<String>,
    pub target_label: Option<String>,
    pub regex: Option<String>,
    pub modulus: Option<u64>,
    pub replacement: Option<String>,
    pub action: Option<String>,
}
