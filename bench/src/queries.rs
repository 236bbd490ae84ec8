//! The query benchmark: a suite of representative PromQL queries run
//! against each peer holding the same data, as instant queries and as 1 h
//! and 6 h range queries, reporting the median latency of repeated runs.

use crate::peers::{agent, Kind, Peer};
use anyhow::{bail, Result};
use std::time::Instant;

/// Queries a dashboard or alert would run, over the workload's metrics.
pub const SUITE: &[&str] = &[
    "sum by (instance) (rate(node_cpu_seconds_total[5m]))",
    "sum(rate(node_network_receive_bytes_total[5m]))",
    "topk(10, rate(node_network_transmit_bytes_total[5m]))",
    "quantile_over_time(0.9, node_load1[1h])",
    "node_cpu_seconds_total{mode=~\"user|system\", cpu=~\"1|3\"}",
    "count by (mode) ({__name__=~\"node_cpu_.*\"})",
    "count by (job) ({__name__=~\"node_.+\"})",
    "rate(node_cpu_seconds_total{mode=\"user\"}[5m]) * on(instance) group_left(version) node_exporter_build_info{collector=\"c0\"}",
    "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[5m]))",
    "max_over_time(rate(node_network_receive_bytes_total{device=\"eth0\"}[5m])[1h:1m])",
    "sum by (instance) (rate(node_disk_read_bytes_total[5m]))",
    "node_filesystem_avail_bytes / node_filesystem_size_bytes",
    "avg by (instance) (node_memory_field01_bytes)",
    "increase(node_netstat_field01[1h])",
    "avg_over_time(node_load5[10m])",
    "sort_desc(sum by (instance) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m])))",
    "sum(rate(http_request_duration_seconds_sum[5m])) / sum(rate(http_request_duration_seconds_count[5m]))",
];

/// The shapes each query is run in: (label, range seconds, step seconds).
pub const SHAPES: &[(&str, i64, i64)] =
    &[("instant", 0, 0), ("1h", 3600, 30), ("6h", 6 * 3600, 120)];

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The state of the peers' query caches during a run, the same for every
/// peer: VictoriaMetrics keeps query results (its rollup result cache),
/// Vigil keeps decoded block row groups, Prometheus keeps neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caches {
    /// Every cache on, as each system runs by default: repeated runs of a
    /// query (a dashboard refresh) may be answered from them.
    On,
    /// Every query cache bypassed (`nocache=1`, which both VictoriaMetrics
    /// and Vigil take): each run computes from the stored data.
    Off,
}

impl Caches {
    pub fn name(self) -> &'static str {
        match self {
            Caches::On => "caches on",
            Caches::Off => "caches off",
        }
    }
}

/// Median seconds of `reps` runs of each query in each shape, ending at
/// `end_s`. Reports on stderr each query that raised the peer's peak RSS.
pub fn run(peer: &Peer, end_s: i64, reps: usize, caches: Caches) -> Result<Vec<Vec<f64>>> {
    let a = agent();
    let nocache = match (caches, peer.kind) {
        (Caches::Off, Kind::VictoriaMetrics | Kind::Vigil) => "&nocache=1",
        _ => "",
    };
    let mut peak = peer.peak_rss()?;
    let mut out = Vec::new();
    for q in SUITE {
        let mut row = Vec::new();
        for (_, range, step) in SHAPES {
            let url = if *range == 0 {
                format!(
                    "{}/api/v1/query?query={}&time={end_s}{nocache}",
                    peer.base,
                    enc(q)
                )
            } else {
                format!(
                    "{}/api/v1/query_range?query={}&start={}&end={end_s}&step={step}{nocache}",
                    peer.base,
                    enc(q),
                    end_s - range
                )
            };
            let mut times = Vec::with_capacity(reps);
            for _ in 0..reps {
                let t = Instant::now();
                let resp = a.get(&url).call();
                // The clock stops when the whole answer has arrived: a peer
                // that sends its headers early and streams the body must
                // not look faster than one that sends it in one piece.
                let (secs, body) = match resp {
                    Ok(r) => {
                        let mut body = Vec::new();
                        std::io::Read::read_to_end(&mut r.into_reader(), &mut body)?;
                        (t.elapsed().as_secs_f64(), Ok(body))
                    }
                    Err(e) => (0.0, Err(e)),
                };
                match body {
                    Ok(body) => {
                        let ok = body.windows(9).any(|w| w == b"\"success\"");
                        if !ok {
                            let head =
                                String::from_utf8_lossy(&body[..body.len().min(200)]).to_string();
                            bail!("{} answered {q} with {head}", peer.kind.name());
                        }
                    }
                    Err(e) => bail!("{} failed {q}: {e}", peer.kind.name()),
                }
                times.push(secs);
            }
            times.sort_by(|x, y| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal));
            row.push(times[times.len() / 2]);
        }
        let now = peer.peak_rss()?;
        if now > peak {
            let (anon, file) = peer.rss_now()?;
            eprintln!(
                "{} ({}): peak RSS {} -> {} MiB at {q} (now {} MiB anonymous, {} MiB file)",
                peer.kind.name(),
                caches.name(),
                peak >> 20,
                now >> 20,
                anon >> 20,
                file >> 20
            );
            peak = now;
        }
        out.push(row);
    }
    Ok(out)
}

/// The latency table: per query and shape, each peer's median and its
/// ratio to the first peer (Prometheus when it ran).
pub fn print(caches: Caches, results: &[(Kind, Vec<Vec<f64>>)]) {
    let Some((base_kind, base)) = results.first() else {
        return;
    };
    print!("\nQuery latency, {}:\n\n| query | shape |", caches.name());
    for (k, _) in results {
        print!(" {} |", k.name());
    }
    print!("\n| --- | --- |");
    for _ in results {
        print!(" --- |");
    }
    println!();
    for (qi, q) in SUITE.iter().enumerate() {
        for (si, (shape, _, _)) in SHAPES.iter().enumerate() {
            print!("| `{}` | {shape} |", q.replace('|', "\\\\|"));
            for (_, r) in results {
                let v = r[qi][si];
                print!(" {:.1} ms ({:.2}×) |", v * 1000.0, v / base[qi][si]);
            }
            println!();
        }
    }
    println!("\nRatios are to {}.", base_kind.name());
}
