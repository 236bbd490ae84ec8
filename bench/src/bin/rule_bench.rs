//! `rule-bench`: 1 000 alerting and recording rules over the foundation
//! benchmark's 100 000 series, evaluated every 15 s by Prometheus and by
//! Vigil in turn, on the same machine in one run. Each peer ingests the
//! same hour of node_exporter-like data (ending now), loads the same rule
//! file, and is then watched for a while: the sum over groups of
//! `*_rule_group_last_duration_seconds` (total evaluation time per
//! interval) sampled every interval, and the process's CPU seconds per
//! interval. Ratios are to Prometheus.
//!
//! `cargo run --release -p vigil-bench --bin rule-bench` (docs/BENCHMARKS.md).

#[path = "../peers.rs"]
#[allow(dead_code)]
mod peers;
#[path = "../proc_stats.rs"]
mod proc_stats;
#[path = "../workload.rs"]
#[allow(dead_code)]
mod workload;

use anyhow::{bail, Context, Result};
use clap::Parser;
use peers::{Kind, Peer};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::{Workload, SCRAPE_INTERVAL_MS};

#[derive(Parser, Debug)]
#[command(about = "1 000 rules over 100 000 series: Prometheus vs Vigil, side by side")]
struct Args {
    /// Hosts (scrape targets) of ~1000 series each.
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    #[arg(long, default_value_t = 1000)]
    series_per_host: usize,
    /// Minutes of 15 s history ingested before the rules are watched.
    #[arg(long, default_value_t = 60)]
    history_minutes: u64,
    /// Rules in the file (about 55 % recording, 45 % alerting).
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    /// Rules per group.
    #[arg(long, default_value_t = 10)]
    rules_per_group: usize,
    /// Seconds to let the rule engine warm up after ingest.
    #[arg(long, default_value_t = 45)]
    settle_secs: u64,
    /// Seconds of evaluation measured (15 s intervals).
    #[arg(long, default_value_t = 120)]
    measure_secs: u64,
    /// Which peers to run, comma-separated.
    #[arg(long, default_value = "prometheus,vigil")]
    peers: String,
    #[arg(long, default_value = "target/release/vigil")]
    vigil_bin: PathBuf,
    #[arg(long, default_value = "/usr/bin/prometheus")]
    prometheus_bin: PathBuf,
    /// Also write the rule file here (to check it with promtool).
    #[arg(long)]
    write_rules: Option<PathBuf>,
}

/// One rule of the generated file.
struct Rule {
    /// `record` or `alert` name.
    name: String,
    expr: String,
    alert: bool,
    for_: &'static str,
}

const RECORDING: usize = 12;
const ALERTING: usize = 10;

/// The `i`th rule: templates modelled on node-mixin recording and
/// alerting rules, varied by device, mode, field and threshold so that no
/// two rules are the same query.
fn rule(i: usize) -> Rule {
    let t = i % (RECORDING + ALERTING);
    let v = i / (RECORDING + ALERTING);
    let modes = ["user", "system", "iowait", "softirq", "irq", "steal"];
    let dir = ["receive", "transmit"][v % 2];
    let disk = workload::DISK_COUNTERS[v % workload::DISK_COUNTERS.len()];
    let rec = |name: &str, expr: String| Rule {
        name: format!("bench:{name}:v{v}"),
        expr,
        alert: false,
        for_: "",
    };
    let alert = |name: &str, expr: String, for_: &'static str| Rule {
        name: format!("Bench{name}V{v}"),
        expr,
        alert: true,
        for_,
    };
    match t {
        0 => rec(
            "cpu_busy",
            format!(
                r#"sum by (instance) (rate(node_cpu_seconds_total{{mode!="idle",cpu="{}"}}[5m]))"#,
                v % 8
            ),
        ),
        1 => rec(
            "cpu_mode",
            format!(
                r#"avg by (instance, mode) (rate(node_cpu_seconds_total{{cpu=~"[0-{}]"}}[5m]))"#,
                v % 8
            ),
        ),
        2 => rec(
            "net_bytes",
            format!(
                r#"sum by (instance) (rate(node_network_{dir}_bytes_total{{device="eth{}"}}[5m]))"#,
                v % 10
            ),
        ),
        3 => rec(
            "disk",
            format!("sum by (instance, device) (rate(node_disk_{disk}_total[5m]))"),
        ),
        4 => rec(
            "fs_used",
            format!(
                r#"1 - node_filesystem_avail_bytes{{mountpoint="/data{m}"}} / node_filesystem_size_bytes{{mountpoint="/data{m}"}}"#,
                m = v % 20
            ),
        ),
        5 => rec(
            "http_latency",
            format!(
                "histogram_quantile({}, sum by (instance, le) (rate(http_request_duration_seconds_bucket[5m])))",
                [0.5, 0.9, 0.95, 0.99][v % 4]
            ),
        ),
        6 => rec(
            "mem_ratio",
            format!(
                "node_memory_field{:02}_bytes / on (instance) node_memory_field{:02}_bytes",
                v % 50,
                (v + 1) % 50
            ),
        ),
        7 => rec(
            "vmstat",
            format!(
                "sum by (instance) (rate(node_vmstat_field{:02}[5m]))",
                (2 * v) % 40
            ),
        ),
        8 => rec(
            "temp",
            format!(
                r#"max by (instance, chip) (node_hwmon_temp_celsius{{chip="chip{}"}})"#,
                v % 5
            ),
        ),
        9 => rec(
            "load",
            format!(
                "avg_over_time(node_load{}[10m])",
                ["1", "5", "15"][v % 3]
            ),
        ),
        10 => rec(
            "top_packets",
            format!(
                r#"topk(5, rate(node_network_{dir}_packets_total{{device="eth{}"}}[5m]))"#,
                v % 10
            ),
        ),
        11 => rec(
            "cpu_by_mode",
            format!(
                r#"sum without (cpu) (irate(node_cpu_seconds_total{{mode="{}"}}[5m]))"#,
                modes[v % modes.len()]
            ),
        ),
        12 => alert(
            "HostHighCpu",
            format!(
                r#"sum by (instance) (rate(node_cpu_seconds_total{{mode!="idle"}}[5m])) / count by (instance) (node_cpu_seconds_total{{mode="idle"}}) > {:.1}"#,
                0.3 + (v % 5) as f64 * 0.1
            ),
            "5m",
        ),
        13 => alert(
            "HostDiskSpaceLow",
            format!(
                r#"node_filesystem_avail_bytes{{mountpoint="/data{}"}} / node_filesystem_size_bytes < 0.{}"#,
                v % 20,
                5 + v % 4
            ),
            "2m",
        ),
        14 => alert(
            "HostDiskFillingUp",
            format!(
                r#"predict_linear(node_filesystem_free_bytes{{mountpoint="/data{}"}}[30m], 4 * 3600) < 5e11"#,
                v % 20
            ),
            "10m",
        ),
        15 => alert(
            "HostNetworkErrors",
            format!(
                r#"rate(node_network_{dir}_errs_total{{device="eth{}"}}[5m]) > 0"#,
                v % 10
            ),
            "2m",
        ),
        16 => alert(
            "HostLoadHigh",
            format!("node_load1 > {:.1}", 0.5 + (v % 10) as f64 * 0.1),
            "1m",
        ),
        17 => alert(
            "HostDiskReadFailures",
            format!(
                r#"increase(node_disk_reads_failed_total{{device=~"sd.|nvme{}n1"}}[10m]) > 0"#,
                v % 2
            ),
            "",
        ),
        18 => alert(
            "HostHot",
            format!(
                r#"max_over_time(node_hwmon_temp_celsius{{sensor="temp{}"}}[5m]) > {}"#,
                v % 4,
                40 + v % 10
            ),
            "5m",
        ),
        19 => alert(
            "HostFilesystemReadOnly",
            format!(
                r#"node_filesystem_readonly{{mountpoint="/data{}"}} == 1"#,
                v % 20
            ),
            "",
        ),
        20 => alert(
            "HttpSlow",
            format!(
                "histogram_quantile(0.99, sum by (instance, le) (rate(http_request_duration_seconds_bucket[5m]))) > 0.{}",
                1 + v % 9
            ),
            "5m",
        ),
        _ => alert(
            "CollectorFailed",
            format!(
                r#"node_scrape_collector_success{{collector="collector{:02}"}} == 0 or absent(node_textfile_value{{file="f{}"}})"#,
                v % 40,
                v % 60
            ),
            "",
        ),
    }
}

fn rule_file(rules: usize, per_group: usize) -> String {
    let mut out = String::from("groups:\n");
    for g in 0..rules.div_ceil(per_group.max(1)) {
        let _ = writeln!(out, "  - name: bench-{g:03}\n    interval: 15s\n    rules:");
        for i in g * per_group..((g + 1) * per_group).min(rules) {
            let r = rule(i);
            let expr = r.expr.replace('\'', "''");
            if r.alert {
                let _ = writeln!(out, "      - alert: {}\n        expr: '{expr}'", r.name);
                if !r.for_.is_empty() {
                    let _ = writeln!(out, "        for: {}", r.for_);
                }
                let severity = if i % 3 == 0 { "critical" } else { "warning" };
                let _ = writeln!(
                    out,
                    "        labels:\n          severity: {severity}\n        annotations:\n          summary: '{{{{ $labels.instance }}}} is at {{{{ $value | humanize }}}}'"
                );
            } else {
                let _ = writeln!(out, "      - record: {}\n        expr: '{expr}'", r.name);
            }
        }
    }
    out
}

/// What one peer did.
struct Measured {
    kind: Kind,
    rules_loaded: f64,
    /// Median over the samples of the summed group durations, seconds.
    eval_per_interval: f64,
    /// CPU seconds per 15 s interval while watched.
    cpu_per_interval: f64,
    failures: f64,
    peak_rss: u64,
    /// Series the recording rules wrote, and alerts pending or firing, at
    /// the end: the same on both sides when both computed the same.
    recorded_series: f64,
    alerts: f64,
}

/// Sums every sample of `family` in a Prometheus text exposition.
fn sum_family(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn metrics(peer: &Peer) -> Result<String> {
    Ok(peers::agent()
        .get(&format!("{}/metrics", peer.base))
        .call()?
        .into_string()?)
}

/// A scalar result of an instant query (0 for an empty result).
fn instant(peer: &Peer, q: &str) -> Result<f64> {
    let text = peers::agent()
        .get(&format!("{}/api/v1/query", peer.base))
        .query("query", q)
        .call()?
        .into_string()?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok(v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0))
}

fn run_peer(
    kind: Kind,
    bin: &Path,
    work: &Path,
    rules: &Path,
    requests: &Arc<Vec<workload::Request>>,
    args: &Args,
) -> Result<Measured> {
    let prefix = match kind {
        Kind::Prometheus => "prometheus_",
        _ => "vigil_",
    };
    let peer = Peer::start_with_rules(kind, bin, work, Some(rules))?;
    let (secs, failed) = peer.send_all(requests, 2);
    eprintln!(
        "{}: history sent in {secs:.1} s ({failed} failed requests); settling {} s...",
        kind.name(),
        args.settle_secs
    );
    if failed > 0 {
        bail!("{}: {failed} remote_write requests failed", kind.name());
    }
    std::thread::sleep(Duration::from_secs(args.settle_secs));
    let text = metrics(&peer)?;
    let rules_loaded = sum_family(&text, &format!("{prefix}rule_group_rules"));
    let failures0 = sum_family(&text, &format!("{prefix}rule_evaluation_failures_total"));
    let cpu0 = peer.cpu_seconds()?;
    let start = Instant::now();
    let mut samples = Vec::new();
    let interval = Duration::from_secs(15);
    while start.elapsed() < Duration::from_secs(args.measure_secs) {
        std::thread::sleep(interval);
        let text = metrics(&peer)?;
        samples.push(sum_family(
            &text,
            &format!("{prefix}rule_group_last_duration_seconds"),
        ));
    }
    let cpu1 = peer.cpu_seconds()?;
    let elapsed = start.elapsed().as_secs_f64();
    let text = metrics(&peer)?;
    let failures =
        sum_family(&text, &format!("{prefix}rule_evaluation_failures_total")) - failures0;
    let recorded_series = instant(&peer, r#"count({__name__=~"bench:.+"})"#)?;
    let alerts = instant(&peer, "count(ALERTS)")?;
    samples.sort_by(f64::total_cmp);
    let eval_per_interval = samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN);
    eprintln!(
        "{}: {rules_loaded} rules; evaluation per interval (s) {samples:?}; {failures} failures",
        kind.name()
    );
    Ok(Measured {
        kind,
        rules_loaded,
        eval_per_interval,
        cpu_per_interval: (cpu1 - cpu0) / (elapsed / 15.0),
        failures,
        peak_rss: peer.peak_rss()?,
        recorded_series,
        alerts,
    })
}

/// One row of the results table: its name, how to read it, decimals shown.
type TableRow = (&'static str, fn(&Measured) -> f64, usize);

fn main() -> Result<()> {
    let args = Args::parse();
    let text = rule_file(args.rules, args.rules_per_group);
    if let Some(p) = &args.write_rules {
        std::fs::write(p, &text).with_context(|| format!("writing {}", p.display()))?;
    }
    let work = std::env::temp_dir().join(format!("vigil-rule-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let rules = work.join("rules.yml");
    std::fs::write(&rules, &text)?;

    let scrapes = (args.history_minutes * 60_000 / SCRAPE_INTERVAL_MS as u64) as usize;
    // The same values for every peer, with the history ending just before
    // that peer starts, so its rules see fresh data for the whole watch (an
    // instant selector looks back 5 minutes; the peer before took longer).
    let history = || -> Result<Arc<Vec<workload::Request>>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        let start_ms = (now - scrapes as i64 * SCRAPE_INTERVAL_MS).div_euclid(SCRAPE_INTERVAL_MS)
            * SCRAPE_INTERVAL_MS;
        let w = Workload::new(args.hosts, args.series_per_host, scrapes, start_ms, 42);
        eprintln!(
            "generating {} series x {scrapes} scrapes...",
            w.total_series()
        );
        Ok(Arc::new(w.generate()))
    };
    let series = Workload::new(args.hosts, args.series_per_host, scrapes, 0, 42).total_series();

    let mut results = Vec::new();
    // `--peers ''` with --write-rules only writes the file.
    for name in args.peers.split(',').filter(|n| !n.trim().is_empty()) {
        let (kind, bin) = match name.trim() {
            "prometheus" => (Kind::Prometheus, args.prometheus_bin.clone()),
            "vigil" => (Kind::Vigil, args.vigil_bin.clone()),
            other => bail!("unknown peer {other:?} (prometheus, vigil)"),
        };
        if !bin.exists() {
            bail!("{} not found at {}", kind.name(), bin.display());
        }
        let requests = history()?;
        results.push(
            run_peer(kind, &bin, &work, &rules, &requests, &args)
                .with_context(|| format!("benchmarking {}", kind.name()))?,
        );
    }
    let _ = std::fs::remove_dir_all(&work);

    println!(
        "\nWorkload: {series} series, {} min of 15 s history; {} rules in groups of {} at 15 s; watched {} s after {} s settling.\n",
        args.history_minutes, args.rules, args.rules_per_group, args.measure_secs, args.settle_secs
    );
    print!("| metric |");
    for r in &results {
        print!(" {} |", r.kind.name());
    }
    println!("\n| --- |{}", " --- |".repeat(results.len()));
    let base = results.iter().position(|r| r.kind == Kind::Prometheus);
    let rows: [TableRow; 7] = [
        ("rules loaded", |m| m.rules_loaded, 0),
        (
            "series written by recording rules",
            |m| m.recorded_series,
            0,
        ),
        ("alerts pending or firing", |m| m.alerts, 0),
        (
            "evaluation time per interval, s (sum over groups, median)",
            |m| m.eval_per_interval,
            3,
        ),
        ("CPU s per 15 s interval", |m| m.cpu_per_interval, 3),
        ("evaluation failures while watched", |m| m.failures, 0),
        ("peak RSS MiB", |m| m.peak_rss as f64 / 1048576.0, 0),
    ];
    for (name, get, decimals) in rows {
        print!("| {name} |");
        let b = base.map(|i| get(&results[i]));
        for r in &results {
            let v = get(r);
            let ratio = match b {
                Some(b) if b > 0.0 && decimals > 0 => format!(" ({:.2}×)", v / b),
                _ => String::new(),
            };
            print!(" {v:.decimals$}{ratio} |");
        }
        println!();
    }
    if results.iter().any(|r| r.failures > 0.0) {
        bail!("some rule evaluations failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_rule_file_has_every_rule_once() {
        let text = super::rule_file(1000, 10);
        assert_eq!(text.matches("  - name: bench-").count(), 100);
        let rules =
            text.matches("      - record: ").count() + text.matches("      - alert: ").count();
        assert_eq!(rules, 1000);
        let mut names: Vec<String> = (0..1000).map(|i| super::rule(i).name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 1000, "rule names are unique");
    }

    #[test]
    fn sum_family_adds_one_family_only() {
        let text = "x_rule_group_rules{rule_group=\"a\"} 10\nx_rule_group_rules{rule_group=\"b\"} 5\nx_rule_group_rules_other 7\n# HELP x_rule_group_rules h\n";
        assert_eq!(super::sum_family(text, "x_rule_group_rules"), 15.0);
    }
}
