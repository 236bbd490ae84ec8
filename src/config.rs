//! The server's YAML configuration. Field names follow Prometheus where the
//! concept is the same (`retention_time` ~ `--storage.tsdb.retention.time`,
//! `out_of_order_time_window` as in prometheus.yml's `tsdb` section).

use anyhow::{bail, Context};
use serde::{Deserialize, Deserializer};
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
}

/// PromQL evaluation limits, as Prometheus's `--query.*` flags.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// How far back an instant selector looks for a sample.
    #[serde(deserialize_with = "de_duration")]
    pub lookback_delta: Duration,
    /// Longest a query may run (a request's `timeout` can only shorten it).
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Most samples one query may load.
    pub max_samples: u64,
    /// Queries evaluated at once; more wait for a slot until their timeout.
    pub max_concurrency: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            lookback_delta: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            max_concurrency: 20,
        }
    }
}

impl QueryConfig {
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
    #[serde(deserialize_with = "de_duration")]
    pub wal_fsync_interval: Duration,
    /// Live samples this much older than a series' newest are still accepted.
    #[serde(deserialize_with = "de_duration")]
    pub out_of_order_time_window: Duration,
    /// Samples older than this are refused; `0s` keeps everything.
    #[serde(deserialize_with = "de_duration")]
    pub retention_time: Duration,
    /// Oldest blocks are deleted while the store exceeds this; `0B` = no limit.
    #[serde(deserialize_with = "de_bytes")]
    pub retention_size: u64,
    /// How often the head is checked for data to persist, blocks for
    /// compaction and retention.
    #[serde(deserialize_with = "de_duration")]
    pub maintenance_interval: Duration,
    /// Memory for decoded block data kept for later queries (at least 8MB).
    #[serde(deserialize_with = "de_bytes")]
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
        }
    }
}

impl ServerConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        Ok(serde_yaml::from_str(text)?)
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = String::deserialize(d)?;
    parse_bytes(&s).map_err(serde::de::Error::custom)
}

/// Prometheus byte sizes (base 2): `512MB`, `10GB`, `1TB`; `0` alone is allowed.
pub fn parse_bytes(s: &str) -> anyhow::Result<u64> {
    if s == "0" {
        return Ok(0);
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        bail!("not a valid size: {s:?} (want e.g. 512MB, 10GB)");
    }
    let n: u64 = s[..digits]
        .parse()
        .with_context(|| format!("size {s:?} is too large"))?;
    let mult: u64 = match &s[digits..] {
        "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        "PB" => 1 << 50,
        u => bail!("unknown unit {u:?} in size {s:?} (use B, KB, MB, GB, TB, PB)"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("size {s:?} is too large"))
}

/// Prometheus durations: `1h30m`, `15s`, `500ms`, `2d`, `1w`, `1y`; `0` alone is allowed.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        bail!("empty duration string");
    }
    let mut total_ms: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            bail!("not a valid duration string: {s:?} (want e.g. 30s, 5m, 1h30m)");
        }
        let n: u128 = rest[..digits]
            .parse()
            .with_context(|| format!("duration {s:?} is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ms: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            u => bail!("unknown unit {u:?} in duration {s:?} (use ms, s, m, h, d, w, y)"),
        };
        rest = &rest[unit_len..];
        total_ms = total_ms
            .checked_add(n.checked_mul(unit_ms).context("duration overflows")?)
            .context("duration overflows")?;
    }
    let ms = u64::try_from(total_ms).with_context(|| format!("duration {s:?} is too large"))?;
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x")
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512MB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("0").unwrap(), 0);
        assert!(parse_bytes("10G").is_err());
        assert!(parse_bytes("GB").is_err());
    }

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
