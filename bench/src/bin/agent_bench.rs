//! `agent-bench`: Vigil's agent against Prometheus in agent mode, on the
//! same machine in one run. Both scrape the same 100 synthetic targets of
//! 1 000 series each (and this node: node_exporter for Prometheus, the
//! built-in node job for Vigil) every 15 s and remote_write to the same
//! receiver, one after the other; reported are CPU seconds per million
//! scraped samples and peak RSS, as ratios to Prometheus. A second part
//! compares the built-in node metrics with node_exporter: CPU per scrape.
//!
//! `cargo run --release -p vigil-bench --bin agent-bench` (docs/BENCHMARKS.md).

#[path = "../proc_stats.rs"]
mod proc_stats;

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Vigil's agent vs Prometheus agent mode (and node_exporter), side by side")]
struct Args {
    /// Synthetic targets.
    #[arg(long, default_value_t = 100)]
    targets: usize,
    /// Series per target.
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// Scrape interval, seconds.
    #[arg(long, default_value_t = 15)]
    interval: u64,
    /// How long each agent runs, seconds (after a first full interval).
    #[arg(long, default_value_t = 180)]
    duration: u64,
    /// Interval for the node-metrics comparison, seconds.
    #[arg(long, default_value_t = 1)]
    node_interval: u64,
    /// How long the node-metrics comparison runs for each, seconds.
    #[arg(long, default_value_t = 60)]
    node_duration: u64,
    #[arg(long, default_value = "target/release/vigil")]
    vigil_bin: PathBuf,
    #[arg(long, default_value = "/usr/bin/prometheus")]
    prometheus_bin: PathBuf,
    #[arg(long, default_value = "/usr/bin/prometheus-node-exporter")]
    node_exporter_bin: PathBuf,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A target serving `series` counters that move every interval, as a
/// node_exporter-sized application would. Counts the scrapes it serves.
struct SyntheticTarget {
    port: u16,
    scrapes: Arc<AtomicU64>,
}

fn exposition(target: usize, series: usize, round: u64) -> String {
    let mut out = String::with_capacity(series * 80);
    out.push_str(
        "# HELP app_requests_total Requests handled.\n# TYPE app_requests_total counter\n",
    );
    for i in 0..series {
        let v = (round + 1) * (i as u64 % 97 + 1);
        out.push_str(&format!(
            "app_requests_total{{handler=\"/api/v{}/item\",code=\"{}\",instance_id=\"t{target}\"}} {v}\n",
            i / 5,
            200 + (i % 5)
        ));
    }
    out
}

fn start_target(target: usize, series: usize, interval: Duration) -> Result<SyntheticTarget> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let body = Arc::new(RwLock::new(Arc::new(exposition(target, series, 0))));
    let b = Arc::clone(&body);
    std::thread::spawn(move || {
        for round in 1.. {
            std::thread::sleep(interval);
            let text = Arc::new(exposition(target, series, round));
            *b.write().unwrap_or_else(|e| e.into_inner()) = text;
        }
    });
    let scrapes = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&scrapes);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let body = Arc::clone(&body);
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                serve_keepalive(conn, |_| {
                    s.fetch_add(1, Ordering::Relaxed);
                    let text = body.read().unwrap_or_else(|e| e.into_inner()).clone();
                    (
                        "200 OK",
                        "text/plain; version=0.0.4",
                        text.as_bytes().to_vec(),
                    )
                })
            });
        }
    });
    Ok(SyntheticTarget { port, scrapes })
}

/// Serves HTTP/1.1 requests on one connection until it closes; `answer`
/// gets the request body.
fn serve_keepalive(
    conn: TcpStream,
    mut answer: impl FnMut(&[u8]) -> (&'static str, &'static str, Vec<u8>),
) {
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut out = write_half;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, ctype, resp) = answer(&body);
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            resp.len()
        );
        if out
            .write_all(head.as_bytes())
            .and_then(|_| out.write_all(&resp))
            .is_err()
        {
            return;
        }
    }
}

/// The remote_write receiver both agents send to: accepts and discards,
/// counting bytes (its CPU is not what is measured).
struct Sink {
    url: String,
    bytes: Arc<AtomicU64>,
}

fn start_sink() -> Result<Sink> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let bytes = Arc::new(AtomicU64::new(0));
    let b = Arc::clone(&bytes);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let b = Arc::clone(&b);
            std::thread::spawn(move || {
                serve_keepalive(conn, |body| {
                    b.fetch_add(body.len() as u64, Ordering::Relaxed);
                    ("204 No Content", "text/plain", Vec::new())
                })
            });
        }
    });
    Ok(Sink {
        url: format!("http://127.0.0.1:{port}/api/v1/write"),
        bytes,
    })
}

struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(cmd: &mut Command) -> Result<Proc> {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    Ok(Proc { child })
}

/// What one run measured.
struct Measured {
    cpu_seconds: f64,
    peak_rss: u64,
    samples: u64,
    sent_bytes: u64,
}

/// Runs `agent` over the targets for `duration` after a warm-up interval,
/// then reads its CPU, RSS and the samples scraped meanwhile.
fn measure(
    agent: &Proc,
    extra: &[&Proc],
    targets: &[SyntheticTarget],
    series: usize,
    warmup: Duration,
    duration: Duration,
    sink: &Sink,
) -> Result<Measured> {
    std::thread::sleep(warmup);
    let pids: Vec<u32> = std::iter::once(agent.child.id())
        .chain(extra.iter().map(|p| p.child.id()))
        .collect();
    let cpu =
        |pids: &[u32]| -> Result<f64> { pids.iter().map(|p| proc_stats::cpu_seconds(*p)).sum() };
    let scraped = || {
        targets
            .iter()
            .map(|t| t.scrapes.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let (cpu0, scrapes0, bytes0) = (cpu(&pids)?, scraped(), sink.bytes.load(Ordering::Relaxed));
    std::thread::sleep(duration);
    let (cpu1, scrapes1, bytes1) = (cpu(&pids)?, scraped(), sink.bytes.load(Ordering::Relaxed));
    let peak_rss = pids
        .iter()
        .map(|p| proc_stats::peak_rss(*p))
        .sum::<Result<u64>>()?;
    let samples = (scrapes1 - scrapes0) * series as u64;
    if samples == 0 {
        bail!("no scrapes in {} s", duration.as_secs());
    }
    if bytes1 == bytes0 {
        bail!("nothing was sent to the receiver");
    }
    Ok(Measured {
        cpu_seconds: cpu1 - cpu0,
        peak_rss,
        samples,
        sent_bytes: bytes1 - bytes0,
    })
}

fn targets_yaml(targets: &[SyntheticTarget]) -> String {
    targets
        .iter()
        .map(|t| format!("'127.0.0.1:{}'", t.port))
        .collect::<Vec<_>>()
        .join(", ")
}

fn wait_http(url: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ureq::get(url).call().is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{url} did not answer in 60 s")
}

fn start_prometheus_agent(
    args: &Args,
    work: &Path,
    scrape_yaml: &str,
    sink: &Sink,
) -> Result<(Proc, u16)> {
    let port = free_port()?;
    let cfg = work.join("prometheus-agent.yml");
    std::fs::write(
        &cfg,
        format!("{scrape_yaml}remote_write:\n  - url: {}\n", sink.url),
    )?;
    let data = work.join("prometheus-agent-data");
    let _ = std::fs::remove_dir_all(&data);
    let p = spawn(
        Command::new(&args.prometheus_bin)
            .arg("--enable-feature=agent")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.agent.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
    )?;
    wait_http(&format!("http://127.0.0.1:{port}/-/ready"))?;
    Ok((p, port))
}

fn start_vigil_agent(args: &Args, work: &Path, config: &str) -> Result<Proc> {
    let port = free_port()?;
    let cfg = work.join("vigil-agent.yml");
    std::fs::write(&cfg, config)?;
    let data = work.join("vigil-agent-data");
    let _ = std::fs::remove_dir_all(&data);
    let p = spawn(
        Command::new(&args.vigil_bin)
            .arg("agent")
            .arg("--config")
            .arg(&cfg)
            .arg("--data-dir")
            .arg(&data)
            .arg("--listen-addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--log-level")
            .arg("warn"),
    )?;
    wait_http(&format!("http://127.0.0.1:{port}/-/ready"))?;
    Ok(p)
}

fn start_node_exporter(args: &Args) -> Result<(Proc, u16)> {
    let port = free_port()?;
    let p = spawn(
        Command::new(&args.node_exporter_bin).arg(format!("--web.listen-address=127.0.0.1:{port}")),
    )?;
    wait_http(&format!("http://127.0.0.1:{port}/metrics"))?;
    Ok((p, port))
}

fn ratio(x: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.2}×", x / base)
    } else {
        "n/a".into()
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    for (what, bin) in [
        ("vigil", &args.vigil_bin),
        ("prometheus", &args.prometheus_bin),
        ("node_exporter", &args.node_exporter_bin),
    ] {
        if !bin.exists() {
            bail!("{what} not found at {} (cargo build --release; apt install prometheus prometheus-node-exporter)", bin.display());
        }
    }
    let work = std::env::temp_dir().join(format!("vigil-agent-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let interval = Duration::from_secs(args.interval);
    let targets: Vec<SyntheticTarget> = (0..args.targets)
        .map(|i| start_target(i, args.series, interval))
        .collect::<Result<_>>()?;
    let sink = start_sink()?;
    let warmup = interval + Duration::from_secs(2);
    let duration = Duration::from_secs(args.duration);
    let list = targets_yaml(&targets);
    let scrape_interval = format!("{}s", args.interval);
    eprintln!(
        "{} targets × {} series at {scrape_interval}, {} s each",
        args.targets, args.series, args.duration
    );

    // Prometheus in agent mode, with node_exporter for this node.
    let (ne, ne_port) = start_node_exporter(&args)?;
    let prom_yaml = format!(
        "global:\n  scrape_interval: {scrape_interval}\nscrape_configs:\n  - job_name: synthetic\n    static_configs:\n      - targets: [{list}]\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
    );
    let (prom, _) = start_prometheus_agent(&args, &work, &prom_yaml, &sink)?;
    eprintln!("Prometheus agent (+ node_exporter) running...");
    let p = measure(
        &prom,
        &[&ne],
        &targets,
        args.series,
        warmup,
        duration,
        &sink,
    )?;
    drop(prom);
    drop(ne);

    // Vigil's agent, node metrics built in.
    let vigil_yaml = format!(
        "global:\n  scrape_interval: {scrape_interval}\nscrape_configs:\n  - job_name: synthetic\n    static_configs:\n      - targets: [{list}]\nnode:\n  job_name: node\nremote_write:\n  - url: {}\n",
        sink.url
    );
    let vigil = start_vigil_agent(&args, &work, &vigil_yaml)?;
    eprintln!("Vigil agent running...");
    let v = measure(&vigil, &[], &targets, args.series, warmup, duration, &sink)?;
    drop(vigil);

    // Node metrics alone: node_exporter scraped by Prometheus's agent vs
    // Vigil's node job, both every node_interval; CPU per scrape of the
    // exporter alone, and of Vigil's whole agent (it reads and ships).
    let node_interval = format!("{}s", args.node_interval);
    let node_duration = Duration::from_secs(args.node_duration);
    let (ne, ne_port) = start_node_exporter(&args)?;
    let yaml = format!(
        "global:\n  scrape_interval: {node_interval}\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
    );
    let (prom, _) = start_prometheus_agent(&args, &work, &yaml, &sink)?;
    std::thread::sleep(Duration::from_secs(args.node_interval * 2 + 1));
    let ne_cpu0 = proc_stats::cpu_seconds(ne.child.id())?;
    std::thread::sleep(node_duration);
    let ne_cpu = proc_stats::cpu_seconds(ne.child.id())? - ne_cpu0;
    drop(prom);
    drop(ne);
    let yaml = format!(
        "global:\n  scrape_interval: {node_interval}\nnode:\n  job_name: node\nremote_write:\n  - url: {}\n",
        sink.url
    );
    let vigil = start_vigil_agent(&args, &work, &yaml)?;
    std::thread::sleep(Duration::from_secs(args.node_interval * 2 + 1));
    let vg_cpu0 = proc_stats::cpu_seconds(vigil.child.id())?;
    std::thread::sleep(node_duration);
    let vg_cpu = proc_stats::cpu_seconds(vigil.child.id())? - vg_cpu0;
    drop(vigil);
    let node_scrapes = (args.node_duration / args.node_interval).max(1) as f64;
    let _ = std::fs::remove_dir_all(&work);

    let per_m = |m: &Measured| m.cpu_seconds / (m.samples as f64 / 1e6);
    let mib = |b: u64| b as f64 / 1048576.0;
    println!("\nWorkload: {} targets × {} series at {scrape_interval}, plus this node; {} s measured after a warm-up.\n", args.targets, args.series, args.duration);
    println!("| metric | Prometheus agent + node_exporter | Vigil agent |");
    println!("| --- | --- | --- |");
    println!(
        "| CPU s per million scraped samples | {:.3} (1.00×) | {:.3} ({}) |",
        per_m(&p),
        per_m(&v),
        ratio(per_m(&v), per_m(&p))
    );
    println!(
        "| peak RSS MiB | {:.0} (1.00×) | {:.0} ({}) |",
        mib(p.peak_rss),
        mib(v.peak_rss),
        ratio(v.peak_rss as f64, p.peak_rss as f64)
    );
    println!(
        "| samples scraped in the window | {} | {} |",
        p.samples, v.samples
    );
    println!(
        "| remote_write bytes sent | {} | {} |",
        p.sent_bytes, v.sent_bytes
    );
    println!(
        "\nNode metrics every {node_interval} for {} s: node_exporter {:.1} ms CPU per scrape (1.00×), Vigil's agent (collect and ship) {:.1} ms ({}).",
        args.node_duration,
        ne_cpu * 1000.0 / node_scrapes,
        vg_cpu * 1000.0 / node_scrapes,
        ratio(vg_cpu, ne_cpu)
    );
    Ok(())
}
