//! Vigil's own metrics, served at `/metrics` in the OpenMetrics text format.

use logstore::LogStore;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::{Arc, OnceLock};
use tsdb::Db;

type Labels = Vec<(&'static str, &'static str)>;

pub struct SelfMetrics {
    registry: Registry,
    samples_ingested: Family<Labels, Counter>,
    write_requests: Family<Labels, Counter>,
    malformed_requests: Family<Labels, Counter>,
    malformed_lines: Family<Labels, Counter>,
}

impl SelfMetrics {
    pub fn new(
        db: Arc<OnceLock<Arc<Db>>>,
        logs: Arc<OnceLock<Arc<LogStore>>>,
        rules: Arc<OnceLock<Arc<alerting::RuleManager>>>,
    ) -> Self {
        let mut registry = Registry::with_prefix("vigil");
        let samples_ingested = Family::<Labels, Counter>::default();
        registry.register(
            "ingest_samples",
            "Samples stored, by write protocol",
            samples_ingested.clone(),
        );
        let write_requests = Family::<Labels, Counter>::default();
        registry.register(
            "write_requests",
            "Write requests, by protocol and outcome (success, partial, bad_request, error)",
            write_requests.clone(),
        );
        let malformed_requests = Family::<Labels, Counter>::default();
        registry.register(
            "write_malformed_requests",
            "Write requests refused whole because the body could not be decoded",
            malformed_requests.clone(),
        );
        let malformed_lines = Family::<Labels, Counter>::default();
        registry.register(
            "import_malformed_lines",
            "Import lines refused because they could not be parsed",
            malformed_lines.clone(),
        );
        registry.register_collector(Box::new(StoreCollector { db }));
        registry.register_collector(Box::new(LogStoreCollector { logs }));
        registry.register_collector(Box::new(RuleCollector { rules }));
        SelfMetrics {
            registry,
            samples_ingested,
            write_requests,
            malformed_requests,
            malformed_lines,
        }
    }

    pub fn samples_ingested(&self, protocol: &'static str, n: u64) {
        self.samples_ingested
            .get_or_create(&vec![("protocol", protocol)])
            .inc_by(n);
    }

    pub fn write_request(&self, protocol: &'static str, outcome: &'static str) {
        self.write_requests
            .get_or_create(&vec![("protocol", protocol), ("outcome", outcome)])
            .inc();
    }

    pub fn malformed_request(&self, protocol: &'static str) {
        self.malformed_requests
            .get_or_create(&vec![("protocol", protocol)])
            .inc();
    }

    pub fn malformed_lines(&self, protocol: &'static str, n: u64) {
        self.malformed_lines
            .get_or_create(&vec![("protocol", protocol)])
            .inc_by(n);
    }

    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Reads the store's own counters at scrape time.
struct StoreCollector {
    db: Arc<OnceLock<Arc<Db>>>,
}

impl std::fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCollector")
    }
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

impl Collector for StoreCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(db) = self.db.get() else {
            return Ok(());
        };
        let s = db.stats();
        gauge(
            &mut enc,
            "head_series",
            "Series in the in-memory head",
            s.head_series as i64,
        )?;
        counter(
            &mut enc,
            "head_series_created",
            "Series created in the head",
            s.series_created,
        )?;
        counter(
            &mut enc,
            "head_samples_appended",
            "Samples appended to the head",
            s.samples_appended,
        )?;
        counter(
            &mut enc,
            "head_out_of_order_samples_appended",
            "Samples appended behind a series' newest sample (OOO window or backfill)",
            s.samples_out_of_order_appended,
        )?;
        counter(
            &mut enc,
            "head_duplicate_samples_ignored",
            "Exact repeats of stored samples (retried writes), accepted and not stored again",
            s.duplicates_ignored,
        )?;
        {
            let mut m = enc.encode_descriptor(
                "head_samples_rejected",
                "Samples refused, by reason",
                None,
                MetricType::Counter,
            )?;
            for (reason, n) in &s.rejected {
                let labels = [("reason", reason.as_str())];
                ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
            }
        }
        gauge(
            &mut enc,
            "wal_bytes",
            "Bytes in WAL segments",
            s.wal_bytes as i64,
        )?;
        gauge(
            &mut enc,
            "wal_segments",
            "WAL segment files",
            s.wal_segments as i64,
        )?;
        gauge(
            &mut enc,
            "storage_bytes",
            "Bytes the store keeps on disk",
            s.bytes_on_disk() as i64,
        )?;
        Ok(())
    }
}

/// The rule engine and notifier at scrape time (`vigil_rule_*`,
/// `vigil_notifications_*`: Prometheus's `prometheus_rule_*` and
/// `prometheus_notifications_*` under Vigil's prefix).
struct RuleCollector {
    rules: Arc<OnceLock<Arc<alerting::RuleManager>>>,
}

impl std::fmt::Debug for RuleCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuleCollector")
    }
}

impl Collector for RuleCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(m) = self.rules.get() else {
            return Ok(());
        };
        let groups = m.with_groups(|g| {
            (
                g.key(),
                g.evaluation_time.as_secs_f64(),
                g.interval.as_secs_f64(),
                g.last_evaluation.map_or(0.0, |t| t as f64 / 1000.0),
                g.rules.len() as i64,
            )
        });
        let per_group = [
            (
                "rule_group_last_duration_seconds",
                "How long the group's last evaluation took",
                1,
            ),
            (
                "rule_group_interval_seconds",
                "The group's evaluation interval",
                2,
            ),
            (
                "rule_group_last_evaluation_timestamp_seconds",
                "When the group was last evaluated",
                3,
            ),
        ];
        for (name, help, field) in per_group {
            let mut d = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for g in &groups {
                let v = match field {
                    1 => g.1,
                    2 => g.2,
                    _ => g.3,
                };
                let labels = [("rule_group", g.0.as_str())];
                ConstGauge::new(v).encode(d.encode_family(&labels)?)?;
            }
        }
        {
            let mut d = enc.encode_descriptor(
                "rule_group_rules",
                "Rules in the group",
                None,
                MetricType::Gauge,
            )?;
            for g in &groups {
                let labels = [("rule_group", g.0.as_str())];
                ConstGauge::new(g.4).encode(d.encode_family(&labels)?)?;
            }
        }
        let c = &m.counters;
        counter(
            &mut enc,
            "rule_evaluations",
            "Rule evaluations",
            c.evaluations.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "rule_evaluation_failures",
            "Rule evaluations that failed (query errors, limits, writes)",
            c.evaluation_failures.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "rule_group_iterations_missed",
            "Group evaluation slots skipped because an evaluation ran late",
            c.missed_iterations.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "rule_reloads",
            "Rule file loads that succeeded",
            c.reloads.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "rule_reload_failures",
            "Rule file loads refused (nothing changed)",
            c.reload_failures.load(Relaxed),
        )?;
        if let Some(n) = m.notifier() {
            let n = n.counters();
            counter(
                &mut enc,
                "notifications_sent",
                "Alerts sent to Alertmanagers",
                n.sent.load(Relaxed),
            )?;
            counter(
                &mut enc,
                "notifications_errors",
                "Failed sends of an alert batch to an Alertmanager",
                n.errors.load(Relaxed),
            )?;
            counter(
                &mut enc,
                "notifications_dropped",
                "Alerts dropped because the queue was full",
                n.dropped.load(Relaxed),
            )?;
            gauge(
                &mut enc,
                "notifications_queue_length",
                "Alerts waiting to be sent",
                n.queue_length.load(Relaxed) as i64,
            )?;
        }
        Ok(())
    }
}

/// Reads the log store's counters at scrape time (`vigil_logs_*`).
struct LogStoreCollector {
    logs: Arc<OnceLock<Arc<LogStore>>>,
}

impl std::fmt::Debug for LogStoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogStoreCollector")
    }
}

impl Collector for LogStoreCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(logs) = self.logs.get() else {
            return Ok(());
        };
        let s = logs.stats();
        let e = &mut enc;
        counter(e, "logs_entries", "Log entries stored", s.entries)?;
        counter(e, "logs_bytes", "Bytes of log lines stored", s.bytes)?;
        counter(
            e,
            "logs_truncated_lines",
            "Log lines cut to logs.max_line_size (stored with a marker)",
            s.truncated_lines,
        )?;
        counter(
            e,
            "logs_duplicate_entries",
            "Log entries identical to their stream's previous entry, dropped",
            s.duplicates,
        )?;
        {
            let mut m = e.encode_descriptor(
                "logs_discarded_problems",
                "Problems that made a push drop entries or streams, by Loki's reason names",
                None,
                MetricType::Counter,
            )?;
            for (reason, n) in &s.discarded {
                let labels = [("reason", *reason)];
                ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
            }
        }
        gauge(
            e,
            "logs_active_streams",
            "Streams written to within the last hour",
            s.active_streams as i64,
        )?;
        gauge(
            e,
            "logs_partitions",
            "Log partitions (tantivy indexes) on disk",
            s.partitions as i64,
        )?;
        gauge(
            e,
            "logs_segments",
            "Searchable tantivy segments over all log partitions (one per sealed partition)",
            s.segments as i64,
        )?;
        gauge(
            e,
            "logs_partition_bytes",
            "Bytes of log partitions on disk",
            s.partition_bytes as i64,
        )?;
        gauge(
            e,
            "logs_wal_bytes",
            "Bytes of log WAL segments",
            s.wal_bytes as i64,
        )?;
        gauge(
            e,
            "logs_head_entries",
            "Log entries not yet in a committed index segment",
            s.head_entries as i64,
        )?;
        counter(
            e,
            "logs_commits",
            "Log index commit cycles that indexed entries",
            s.commits,
        )?;
        counter(
            e,
            "logs_commit_failures",
            "Log index commit cycles that failed (retried)",
            s.commit_failures,
        )?;
        counter(
            e,
            "logs_partitions_dropped",
            "Log partitions deleted by retention",
            s.partitions_dropped,
        )?;
        Ok(())
    }
}
