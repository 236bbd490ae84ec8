//! `k8s-metrics-bench`: the Kubernetes metrics APIs at the issue's size —
//! 5 000 pods × 3 containers on 200 nodes — served by Vigil from stored
//! series: latency of `GET .../pods` (all namespaces), of one namespace's
//! pods, of a custom metric over `pods/*` in a namespace of 500 pods, and
//! the server's memory before and after (the API's extra).
//!
//! There is no metrics-server or prometheus-adapter here to run beside
//! it (they need a cluster); docs/BENCHMARKS.md states metrics-server's
//! own sizing guide next to the figures.
//!
//! `cargo run --release -p vigil-bench --bin k8s-metrics-bench`

#[path = "../proc_stats.rs"]
#[allow(dead_code)]
mod proc_stats;

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser, Debug)]
#[command(about = "Kubernetes metrics APIs over 5 000 pods × 3 containers on 200 nodes")]
struct Args {
    #[arg(long, default_value_t = 5000)]
    pods: usize,
    #[arg(long, default_value_t = 3)]
    containers: usize,
    #[arg(long, default_value_t = 200)]
    nodes: usize,
    /// Pods in the one big namespace (the others hold 100 each).
    #[arg(long, default_value_t = 500)]
    big_namespace_pods: usize,
    /// Requests measured per kind.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    #[arg(long, default_value = "target/release/vigil")]
    vigil_bin: PathBuf,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// (namespace, pod) of pod `i`: the first `big` in namespace `big`.
fn pod_name(i: usize, big: usize) -> (String, String) {
    if i < big {
        ("big".into(), format!("web-{i}"))
    } else {
        (format!("ns-{}", (i - big) / 100), format!("app-{i}"))
    }
}

/// The import body: two points 15 s apart, the newest 5 s ago.
fn workload(a: &Args) -> Vec<String> {
    let t1 = now_ms() - 5_000;
    let t0 = t1 - 15_000;
    let mut bodies = Vec::new();
    let mut text = String::new();
    let add = |text: &mut String, series: &str, v0: f64, v1: f64| {
        let _ = writeln!(text, "{series} {v0} {t0}\n{series} {v1} {t1}");
    };
    for n in 0..a.nodes {
        add(
            &mut text,
            &format!(r#"node_cpu_usage_seconds_total{{node="node-{n}"}}"#),
            1000.0,
            1000.0 + n as f64 / 10.0,
        );
        add(
            &mut text,
            &format!(r#"node_memory_working_set_bytes{{node="node-{n}"}}"#),
            2e9,
            2e9,
        );
    }
    for i in 0..a.pods {
        let (ns, pod) = pod_name(i, a.big_namespace_pods);
        let node = i % a.nodes;
        for c in 0..a.containers {
            let labels = format!(
                r#"namespace="{ns}",pod="{pod}",container="c{c}",instance="node-{node}",job="cadvisor""#
            );
            add(
                &mut text,
                &format!("container_cpu_usage_seconds_total{{{labels}}}"),
                10.0,
                10.0 + (i % 7) as f64 / 10.0,
            );
            add(
                &mut text,
                &format!("container_memory_working_set_bytes{{{labels}}}"),
                5e7,
                5e7 + (i % 5) as f64 * 4096.0,
            );
        }
        add(
            &mut text,
            &format!(r#"http_requests_total{{namespace="{ns}",pod="{pod}"}}"#),
            100.0,
            100.0 + (i % 11) as f64,
        );
        if text.len() > 4 << 20 {
            bodies.push(std::mem::take(&mut text));
        }
    }
    bodies.push(text);
    bodies
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> Result<()> {
    let a = Args::parse();
    let work = tempfile_dir()?;
    let (http_port, api_port) = (free_port()?, free_port()?);
    let rules = work.join("adapter.yaml");
    std::fs::write(
        &rules,
        "rules:\n- seriesQuery: 'http_requests_total{namespace!=\"\",pod!=\"\"}'\n  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}\n  name: {matches: \"^(.*)_total\", as: \"${1}_per_second\"}\n  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'\n",
    )?;
    let cfg = work.join("vigil.yaml");
    std::fs::write(
        &cfg,
        format!(
            "k8s_metrics_api:\n  listen_addr: 127.0.0.1:{api_port}\n  allow_unauthenticated: true\n  adapter_config_file: {}\n  relist_interval: 2s\n",
            rules.display()
        ),
    )?;
    let mut child = Command::new(&a.vigil_bin)
        .arg("--no-local-agent")
        .args(["--listen-addr", &format!("127.0.0.1:{http_port}")])
        .arg("--data-dir")
        .arg(work.join("data"))
        .arg("--config")
        .arg(&cfg)
        .args(["--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", a.vigil_bin.display()))?;
    let pid = child.id();
    let result = run(&a, http_port, api_port, pid);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("vigil-k8s-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn run(a: &Args, http_port: u16, api_port: u16, pid: u32) -> Result<()> {
    let http = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let base = format!("http://127.0.0.1:{http_port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(&format!("{base}/-/ready")).call().is_err() {
        if Instant::now() > deadline {
            bail!("vigil did not become ready");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let bodies = workload(a);
    let started = Instant::now();
    for b in &bodies {
        http.post(&format!("{base}/api/v1/import/prometheus"))
            .set("Content-Type", "text/plain")
            .send_string(b)
            .context("importing the workload")?;
    }
    eprintln!(
        "imported {} series in {:.1} s",
        a.pods * a.containers * 2 + a.nodes * 2 + a.pods,
        started.elapsed().as_secs_f64()
    );
    // Let the relist find the custom metric.
    std::thread::sleep(Duration::from_secs(3));
    let rss = |pid| -> Result<u64> {
        let (anon, file) = proc_stats::rss_now(pid)?;
        Ok(anon + file)
    };
    let rss_before = rss(pid)?;
    let tls = vigil_config::http_client::TlsConfig {
        insecure_skip_verify: true,
        ..Default::default()
    };
    let client = collector::fetch::http_agent(Some(&tls)).context("TLS client")?;
    let api = format!("https://127.0.0.1:{api_port}");
    let kinds = [
        ("pods, all namespaces", format!("{api}/apis/metrics.k8s.io/v1beta1/pods"), a.pods),
        (
            "pods, one namespace (100 pods)",
            format!("{api}/apis/metrics.k8s.io/v1beta1/namespaces/ns-0/pods"),
            100.min(a.pods),
        ),
        (
            "pods, one namespace (500 pods)",
            format!("{api}/apis/metrics.k8s.io/v1beta1/namespaces/big/pods"),
            a.big_namespace_pods,
        ),
        ("nodes", format!("{api}/apis/metrics.k8s.io/v1beta1/nodes"), a.nodes),
        (
            "custom metric, pods/* of 500",
            format!("{api}/apis/custom.metrics.k8s.io/v1beta2/namespaces/big/pods/*/http_requests_per_second"),
            a.big_namespace_pods,
        ),
    ];
    println!("| request | items | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, url, want) in &kinds {
        let mut times = Vec::with_capacity(a.requests);
        for i in 0..a.requests {
            let t = Instant::now();
            let body = client
                .get(url)
                .call()
                .with_context(|| format!("GET {url}"))?
                .into_string()?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            if i == 0 {
                let v: serde_json::Value = serde_json::from_str(&body)?;
                let n = v["items"].as_array().map_or(0, Vec::len);
                if n != *want {
                    bail!("{name}: {n} items, want {want}");
                }
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {name} | {want} | {:.1} | {:.1} | {:.1} |",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times.last().copied().unwrap_or(f64::NAN)
        );
    }
    let (rss_after, peak) = (rss(pid)?, proc_stats::peak_rss(pid)?);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!();
    println!(
        "server RSS: {:.0} MiB before the requests, {:.0} MiB after (peak over the run {:.0} MiB); extra {:+.0} MiB",
        mib(rss_before),
        mib(rss_after),
        mib(peak),
        mib(rss_after) - mib(rss_before)
    );
    Ok(())
}
