//! `vigil-bench`: sends one deterministic node_exporter-like remote_write
//! workload to Prometheus, VictoriaMetrics and Vigil in turn, on the same
//! machine in one run, and reports ingest rate, server CPU per million
//! samples, peak RSS and on-disk bytes per sample, as ratios to Prometheus.
//!
//! `cargo run --release -p vigil-bench` (see docs/BENCHMARKS.md).

mod peers;
mod proc_stats;
mod queries;
mod workload;

use anyhow::{bail, Context, Result};
use clap::Parser;
use peers::{Kind, Peer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use workload::{Request, Workload, SCRAPE_INTERVAL_MS};

#[derive(Parser, Debug)]
#[command(about = "Side-by-side remote_write benchmark: Prometheus, VictoriaMetrics, Vigil")]
struct Args {
    /// Hosts (scrape targets).
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Series per host (node_exporter exposes about 1000).
    #[arg(long, default_value_t = 1000)]
    series_per_host: usize,
    /// Hours of 15 s data.
    #[arg(long, default_value_t = 4.0)]
    hours: f64,
    /// Scrapes per request: 1 sends each host's scrape as one request, as a
    /// live Prometheus remote_write does; more batches history.
    #[arg(long, default_value_t = 1)]
    scrapes_per_request: usize,
    /// Concurrent senders.
    #[arg(long, default_value_t = 2)]
    senders: usize,
    /// Which peers to run, comma-separated.
    #[arg(long, default_value = "prometheus,victoria-metrics,vigil")]
    peers: String,
    /// The vigil binary.
    #[arg(long, default_value = "target/release/vigil")]
    vigil_bin: PathBuf,
    /// Where data dirs go (a fresh temporary dir by default).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Skip waiting for Prometheus to write a block (bytes/sample then unknown).
    #[arg(long)]
    no_prometheus_blocks: bool,
    /// After ingesting, run the query suite (bench/src/queries.rs) against
    /// each peer; use with --hours 6 or more.
    #[arg(long)]
    queries: bool,
    /// Where the queries find the data: `persisted` asks each peer to
    /// persist first (Vigil's flush, VictoriaMetrics's force_flush and
    /// force_merge, Prometheus's own compaction), as a server that has run
    /// for a while holds it; `head` queries right after ingest.
    #[arg(long, default_value = "persisted", value_parser = ["persisted", "head"])]
    query_store: String,
    /// The query caches: `on` (every peer's defaults), `off` (`nocache=1`
    /// to every peer that caches), or `both`, one suite after the other.
    #[arg(long, default_value = "both", value_parser = ["on", "off", "both"])]
    caches: String,
    /// Runs of each query; the median is reported.
    #[arg(long, default_value_t = 5)]
    query_reps: usize,
    /// With --queries: seconds to wait after ingest (and persisting) before
    /// timing queries, so background work it started (Vigil's head cut,
    /// VictoriaMetrics's merges, Prometheus's compaction) does not share
    /// the CPU with them.
    #[arg(long, default_value_t = 45)]
    settle_secs: u64,
}

struct Result1 {
    kind: Kind,
    samples_per_s: f64,
    cpu_per_million: f64,
    /// VmHWM when the last write was acknowledged.
    ingest_rss: u64,
    /// VmHWM at the end: ingest, persisting, and the queries if they ran.
    peak_rss: u64,
    disk: Option<peers::Disk>,
    failed_requests: u64,
    /// Median query latencies (query × shape) per cache state, with --queries.
    latencies: Vec<(queries::Caches, Vec<Vec<f64>>)>,
}

fn run_peer(
    kind: Kind,
    bin: &std::path::Path,
    work: &std::path::Path,
    requests: &Arc<Vec<Request>>,
    total: u64,
    data_end_s: i64,
    args: &Args,
) -> Result<Result1> {
    let peer = Peer::start(kind, bin, work)?;
    let cpu0 = peer.cpu_seconds()?;
    let (secs, failed) = peer.send_all(requests, args.senders);
    let cpu1 = peer.cpu_seconds()?;
    let ingest_rss = peer.peak_rss()?;
    eprintln!(
        "{}: {total} samples in {secs:.1} s, {failed} failed requests",
        kind.name()
    );
    let persist = || -> Result<()> {
        eprintln!("{}: persisting...", kind.name());
        if kind == Kind::Prometheus && args.no_prometheus_blocks {
            return Ok(());
        }
        peer.persist()
    };
    let mut latencies = Vec::new();
    if args.queries {
        if args.query_store == "persisted" {
            persist()?;
        }
        eprintln!(
            "{}: waiting {} s for background work, then running the query suite...",
            kind.name(),
            args.settle_secs
        );
        std::thread::sleep(std::time::Duration::from_secs(args.settle_secs));
        let (anon, file) = peer.rss_now()?;
        eprintln!(
            "{}: before the queries: peak RSS {} MiB, now {} MiB anonymous, {} MiB file",
            kind.name(),
            peer.peak_rss()? >> 20,
            anon >> 20,
            file >> 20
        );
        for caches in cache_states(&args.caches) {
            latencies.push((
                caches,
                queries::run(&peer, data_end_s, args.query_reps, caches)?,
            ));
        }
        if args.query_store == "head" {
            persist()?;
        }
    } else {
        persist()?;
    }
    let disk = if kind == Kind::Prometheus && args.no_prometheus_blocks {
        None
    } else {
        Some(peer.disk(total)?)
    };
    Ok(Result1 {
        kind,
        samples_per_s: total as f64 / secs,
        cpu_per_million: (cpu1 - cpu0) / (total as f64 / 1e6),
        ingest_rss,
        peak_rss: peer.peak_rss()?,
        disk,
        failed_requests: failed,
        latencies,
    })
}

fn cache_states(arg: &str) -> Vec<queries::Caches> {
    match arg {
        "on" => vec![queries::Caches::On],
        "off" => vec![queries::Caches::Off],
        _ => vec![queries::Caches::On, queries::Caches::Off],
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let scrapes = (args.hours * 3600.0 * 1000.0 / SCRAPE_INTERVAL_MS as f64) as usize;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    // End before now, so every peer accepts it. Start at midnight UTC when
    // the data fits one day, so every run gives every store the same
    // layout, and no store a layout the others lack: a day boundary is a
    // boundary of Prometheus's 2 h blocks, of Vigil's 2 h blocks and 12 h
    // windows, and of VictoriaMetrics's daily index (its partitions are
    // months). Longer data starts wherever the clock puts it.
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let span = scrapes as i64 * SCRAPE_INTERVAL_MS;
    let latest_start = now - span - 60_000;
    let start_ms = if span <= DAY_MS {
        latest_start.div_euclid(DAY_MS) * DAY_MS
    } else {
        latest_start.div_euclid(SCRAPE_INTERVAL_MS) * SCRAPE_INTERVAL_MS
    };
    let data_end_s = (start_ms + scrapes as i64 * SCRAPE_INTERVAL_MS) / 1000;
    let mut w = Workload::new(args.hosts, args.series_per_host, scrapes, start_ms, 42);
    w.scrapes_per_request = args.scrapes_per_request.max(1);
    let total = w.total_samples() as u64;
    eprintln!(
        "generating {} series x {scrapes} scrapes = {total} samples...",
        w.total_series()
    );
    let t = Instant::now();
    let requests = Arc::new(w.generate());
    let body_bytes: usize = requests.iter().map(|r| r.body.len()).sum();
    eprintln!(
        "{} requests, {:.1} MiB compressed, generated in {:.1} s",
        requests.len(),
        body_bytes as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );

    let tmp;
    let work = match &args.work_dir {
        Some(d) => d.clone(),
        None => {
            tmp = std::env::temp_dir().join(format!("vigil-bench-{}", std::process::id()));
            tmp.clone()
        }
    };
    std::fs::create_dir_all(&work)?;
    let mut results = Vec::new();
    for name in args.peers.split(',') {
        let (kind, bin) = match name.trim() {
            "prometheus" => (Kind::Prometheus, PathBuf::from("/usr/bin/prometheus")),
            "victoria-metrics" => (
                Kind::VictoriaMetrics,
                PathBuf::from("/usr/bin/victoria-metrics"),
            ),
            "vigil" => (Kind::Vigil, args.vigil_bin.clone()),
            other => bail!("unknown peer {other:?} (prometheus, victoria-metrics, vigil)"),
        };
        if !bin.exists() {
            bail!("{} not found at {}", kind.name(), bin.display());
        }
        results.push(
            run_peer(kind, &bin, &work, &requests, total, data_end_s, &args)
                .with_context(|| format!("benchmarking {}", kind.name()))?,
        );
    }
    if args.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    print_table(&results, &args, total, scrapes);
    for caches in cache_states(&args.caches) {
        let lat: Vec<_> = results
            .iter()
            .filter_map(|r| {
                let (_, l) = r.latencies.iter().find(|(c, _)| *c == caches)?;
                Some((r.kind, l.clone()))
            })
            .collect();
        queries::print(caches, &lat);
    }
    if results.iter().any(|r| r.failed_requests > 0) {
        bail!("some requests failed");
    }
    Ok(())
}

fn print_table(results: &[Result1], args: &Args, total: u64, scrapes: usize) {
    let ratio = |v: f64, b: Option<f64>| match b {
        Some(b) if b > 0.0 => format!(" ({:.2}×)", v / b),
        _ => String::new(),
    };
    println!(
        "\nWorkload: {} hosts × {} series = {} series, {scrapes} scrapes at 15 s ({:.1} h), {total} samples, {} senders.\n",
        args.hosts,
        args.series_per_host,
        args.hosts * args.series_per_host,
        args.hours,
        args.senders
    );
    print!("| metric |");
    for r in results {
        print!(" {} |", r.kind.name());
    }
    println!();
    print!("| --- |");
    for _ in results {
        print!(" --- |");
    }
    println!();
    let mib = |b: u64| Some(b as f64 / 1048576.0);
    let rows: [(&str, usize, Vec<Option<f64>>); 7] = [
        (
            "ingest samples/s",
            0,
            results.iter().map(|r| Some(r.samples_per_s)).collect(),
        ),
        (
            "server CPU s per million samples",
            2,
            results.iter().map(|r| Some(r.cpu_per_million)).collect(),
        ),
        (
            "peak RSS MiB during ingest",
            0,
            results.iter().map(|r| mib(r.ingest_rss)).collect(),
        ),
        (
            if args.queries {
                "peak RSS MiB over the whole run (ingest, persist, queries)"
            } else {
                "peak RSS MiB over the whole run (ingest, persist)"
            },
            0,
            results.iter().map(|r| mib(r.peak_rss)).collect(),
        ),
        (
            "on-disk bytes per sample, whole data dir (over all samples sent)",
            3,
            results
                .iter()
                .map(|r| r.disk.and_then(|d| d.whole_per_sample()))
                .collect(),
        ),
        (
            "on-disk bytes per sample, blocks only (over the samples they hold)",
            3,
            results
                .iter()
                .map(|r| r.disk.and_then(|d| d.blocks_per_sample()))
                .collect(),
        ),
        (
            "samples in those blocks, millions",
            1,
            results
                .iter()
                .map(|r| r.disk.map(|d| d.block_samples as f64 / 1e6))
                .collect(),
        ),
    ];
    let base_col = results.iter().position(|r| r.kind == Kind::Prometheus);
    for (name, decimals, values) in &rows {
        print!("| {name} |");
        let base = base_col.and_then(|i| values[i]);
        for v in values {
            match v {
                Some(v) => print!(" {v:.decimals$}{} |", ratio(*v, base)),
                None => print!(" n/a |"),
            }
        }
        println!();
    }
}
