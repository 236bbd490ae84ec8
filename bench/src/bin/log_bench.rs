//! `log-bench`: Vigil's log path against ripgrep over the raw files and
//! SQLite FTS5 over the same lines, on the same machine in one run.
//!
//! Generates realistic Kubernetes pod logs in the kubelet's layout (CRI
//! lines of nginx access logs, JSON application logs with request ids,
//! Java logs with multi-line stack traces, klog lines), then measures:
//! end-to-end ingest (agent tailing the files → server → indexed), bytes
//! on disk against the raw bytes and `zstd -3` of them, and query latency
//! (median of warm repetitions) for a rare term, a common term, a
//! label-only selection and `count_over_time` by pod.
//!
//! `bash scripts/log-bench.sh` installs ripgrep, sqlite3 and zstd and runs
//! it (docs/BENCHMARKS.md); `--gb 0.2` for a quick look.

#[path = "../proc_stats.rs"]
mod proc_stats;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser, Debug)]
#[command(about = "Vigil's logs vs ripgrep and SQLite FTS5, side by side")]
struct Args {
    /// Raw log bytes to generate, in GB (10^9).
    #[arg(long, default_value_t = 5.0)]
    gb: f64,
    /// Pods (split over four kinds of application).
    #[arg(long, default_value_t = 40)]
    pods: usize,
    /// Hours the generated lines span (ending ten minutes ago).
    #[arg(long, default_value_t = 6)]
    hours: i64,
    /// Repetitions of each query (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    #[arg(long, default_value = "target/release/vigil")]
    vigil_bin: PathBuf,
    /// Where data goes (default: a fresh temporary directory, removed after).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Skip building the SQLite FTS5 index (it takes longest).
    #[arg(long)]
    skip_sqlite: bool,
}

const SEC: i64 = 1_000_000_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Nginx,
    Json,
    Java,
    Klog,
}

const KINDS: [(Kind, &str, &str); 4] = [
    (Kind::Nginx, "web", "nginx"),
    (Kind::Json, "shop", "checkout"),
    (Kind::Java, "billing", "invoicer"),
    (Kind::Klog, "kube-system", "controller"),
];

const PATHS: [&str; 6] = [
    "/api/v1/items",
    "/api/v1/cart",
    "/login",
    "/static/app.js",
    "/api/v1/orders",
    "/healthz",
];
const MSGS: [&str; 6] = [
    "order placed",
    "payment authorised",
    "cart updated",
    "inventory reserved",
    "email queued",
    "price computed",
];

fn civil(ns: i64) -> (i64, u32, u32, i64, i64, i64, i64) {
    let secs = ns.div_euclid(SEC);
    let frac = ns.rem_euclid(SEC);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = vigil_config::civil::civil_from_days(secs.div_euclid(86_400));
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60, frac)
}

fn rfc3339(ns: i64) -> String {
    let (y, m, d, h, mi, s, f) = civil(ns);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{f:09}Z")
}

/// Appends one application line (possibly several, for a stack trace).
fn app_lines(kind: Kind, rng: &mut Rng, ns: i64, out: &mut Vec<String>, rare: &mut Option<String>) {
    let (y, m, d, h, mi, s, f) = civil(ns);
    match kind {
        Kind::Nginx => {
            let status = [200, 200, 200, 200, 200, 201, 304, 404, 500, 502][rng.below(10) as usize];
            out.push(format!(
                "10.{}.{}.{} - - [{d:02}/Dec/{y}:{h:02}:{mi:02}:{s:02} +0000] \"GET {}/{}?page={} HTTP/1.1\" {status} {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\" {}.{:03}",
                rng.below(256), rng.below(256), rng.below(256), PATHS[rng.below(6) as usize], rng.below(100_000), rng.below(20),
                rng.below(50_000), rng.below(3), rng.below(1000)
            ));
        }
        Kind::Json => {
            let id = format!("{:016x}", rng.next());
            if rare.is_none() && rng.below(1000) == 0 {
                *rare = Some(id.clone());
            }
            let level = if rng.below(20) == 0 { "error" } else { "info" };
            out.push(format!(
                "{{\"ts\":\"{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z\",\"level\":\"{level}\",\"logger\":\"checkout.service\",\"msg\":\"{}\",\"request_id\":\"{id}\",\"user_id\":{},\"duration_ms\":{}}}",
                f / 1_000_000, MSGS[rng.below(6) as usize], rng.below(1_000_000), rng.below(2000)
            ));
        }
        Kind::Java => {
            let ts = format!(
                "{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:03}",
                f / 1_000_000
            );
            if rng.below(60) == 0 {
                out.push(format!("{ts} ERROR [pool-2-thread-{}] c.e.billing.InvoiceService - Failed to render invoice {}", rng.below(16), rng.below(10_000_000)));
                out.push("java.lang.IllegalStateException: template variable 'customer.address' is undefined".into());
                for i in 0..(8 + rng.below(10)) {
                    out.push(format!("\tat com.example.billing.render.TemplateEngine.eval{}(TemplateEngine.java:{})", i, 100 + rng.below(400)));
                }
                out.push("\tat java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1136)".into());
            } else {
                out.push(format!("{ts} INFO  [pool-2-thread-{}] c.e.billing.InvoiceService - Invoice {} generated for customer {} in {} ms", rng.below(16), rng.below(10_000_000), rng.below(100_000), rng.below(900)));
            }
        }
        Kind::Klog => {
            out.push(format!(
                "I{m:02}{d:02} {h:02}:{mi:02}:{s:02}.{:06}       1 controller.go:{}] \"Reconciling\" pod=\"default/web-{}\" generation={} resourceVersion=\"{}\"",
                f / 1000, 100 + rng.below(300), rng.below(500), rng.below(20), rng.below(100_000_000)
            ));
        }
    }
}

struct Generated {
    raw_bytes: u64,
    lines: u64,
    rare: String,
    start: i64,
    end: i64,
}

/// Writes the pods' CRI files (and the same lines for SQLite's import).
fn generate(a: &Args, pods_dir: &Path, sqlite_file: Option<&Path>) -> Result<Generated> {
    let total = (a.gb * 1e9) as u64;
    let per_pod = total / a.pods as u64;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as i64;
    let end = now - 600 * SEC;
    let start = end - a.hours * 3600 * SEC;
    let mut sql = match sqlite_file {
        Some(p) => Some(BufWriter::with_capacity(1 << 20, File::create(p)?)),
        None => None,
    };
    let (mut raw_bytes, mut lines) = (0u64, 0u64);
    let mut rare = None;
    let mut buf = Vec::new();
    for p in 0..a.pods {
        let (kind, ns, app) = KINDS[p % 4];
        let pod = format!("{app}-{p}");
        let dir = pods_dir
            .join(format!("{ns}_{pod}_{:08x}-0000-4000-8000-{:012x}", p, p))
            .join(app);
        std::fs::create_dir_all(&dir)?;
        let mut f = BufWriter::with_capacity(1 << 20, File::create(dir.join("0.log"))?);
        let mut rng =
            Rng(0x9e37_79b9_7f4a_7c15 ^ (p as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
        // Lines are about 200 bytes: space them to span the hours.
        let step = (end - start) / (per_pod as i64 / 200).max(1);
        let mut t = start;
        let mut written = 0u64;
        while written < per_pod {
            buf.clear();
            app_lines(kind, &mut rng, t, &mut buf, &mut rare);
            for l in &buf {
                let line = format!("{} stdout F {l}\n", rfc3339(t));
                f.write_all(line.as_bytes())?;
                written += line.len() as u64;
                lines += 1;
                if let Some(s) = sql.as_mut() {
                    write!(s, "{t}\x1f{ns}\x1f{pod}\x1f{l}\x1e")?;
                }
                t += 1000;
            }
            t = (t + step - 1000 * buf.len() as i64 + rng.below(1000) as i64).min(end);
        }
        f.flush()?;
        raw_bytes += written;
    }
    if let Some(mut s) = sql {
        s.flush()?;
    }
    Ok(Generated {
        raw_bytes,
        lines,
        rare: rare.context("no rare id picked")?,
        start,
        end: end + SEC,
    })
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn get_json(url: &str) -> Result<Value> {
    let r = ureq::get(url).timeout(Duration::from_secs(600)).call();
    let text = match r {
        Ok(r) => r.into_string()?,
        Err(ureq::Error::Status(c, r)) => {
            bail!("{url}: {c} {}", r.into_string().unwrap_or_default())
        }
        Err(e) => return Err(e.into()),
    };
    Ok(serde_json::from_str(&text)?)
}

fn metric(base: &str, name: &str) -> Option<f64> {
    let text = ureq::get(&format!("{base}/metrics"))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median wall time of `reps` runs of `f` (after one warm-up), and its last answer.
fn timed<T>(reps: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut last = f()?;
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        last = f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok((median(times), last))
}

fn run_cmd(cmd: &str) -> Result<String> {
    let out = Command::new("sh").arg("-c").arg(cmd).output()?;
    if !out.status.success() && out.status.code() != Some(1) {
        bail!("{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() -> Result<()> {
    let a = Args::parse();
    let tmp;
    let work = match &a.work_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    std::fs::create_dir_all(&work)?;
    let pods_dir = work.join("pods");
    let _ = std::fs::remove_dir_all(&pods_dir);
    let sqlite_file = work.join("lines.sqlite-import");
    eprintln!(
        "generating {:.1} GB of pod logs in {}",
        a.gb,
        pods_dir.display()
    );
    let t = Instant::now();
    let g = generate(
        &a,
        &pods_dir,
        (!a.skip_sqlite).then_some(sqlite_file.as_path()),
    )?;
    eprintln!(
        "  {} lines, {} bytes in {:.0} s; rare term {}",
        g.lines,
        g.raw_bytes,
        t.elapsed().as_secs_f64(),
        g.rare
    );
    let raw_mb = g.raw_bytes as f64 / 1e6;

    let zstd_bytes: u64 = run_cmd(&format!(
        "find {} -name '*.log' -print0 | sort -z | xargs -0 cat | zstd -3 -T2 -c | wc -c",
        pods_dir.display()
    ))?
    .trim()
    .parse()
    .context("zstd size")?;

    // Vigil: server + agent tailing the files; done when every line is
    // stored and the head is indexed.
    let vigil_dir = work.join("vigil");
    let _ = std::fs::remove_dir_all(&vigil_dir);
    std::fs::create_dir_all(&vigil_dir)?;
    let port = free_port()?;
    let server_cfg = vigil_dir.join("server.yaml");
    std::fs::write(&server_cfg, "logs:\n  retention_period: 0s\n")?;
    let server = Server {
        child: Command::new(&a.vigil_bin)
            .args([
                "server",
                "--listen-addr",
                &format!("127.0.0.1:{port}"),
                "--log-level",
                "warn",
            ])
            .arg("--data-dir")
            .arg(vigil_dir.join("data"))
            .arg("--config")
            .arg(&server_cfg)
            .stdout(Stdio::null())
            .spawn()
            .context("start vigil server")?,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while ureq::get(&format!("{}/-/ready", server.base))
        .call()
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("vigil server did not become ready");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let agent_cfg = vigil_dir.join("agent.yaml");
    std::fs::write(
        &agent_cfg,
        format!(
            "logs:\n  pods_dir: {}\n  node_name: bench\n  poll_interval: 250ms\n  push:\n    url: {}/loki/api/v1/push\n",
            pods_dir.display(),
            server.base
        ),
    )?;
    let started = Instant::now();
    let mut agent = Command::new(&a.vigil_bin)
        .args([
            "agent",
            "--listen-addr",
            &format!("127.0.0.1:{}", free_port()?),
            "--log-level",
            "warn",
        ])
        .arg("--config")
        .arg(&agent_cfg)
        .arg("--data-dir")
        .arg(vigil_dir.join("agent"))
        .stdout(Stdio::null())
        .spawn()
        .context("start vigil agent")?;
    let agent_pid = agent.id();
    loop {
        let stored = metric(&server.base, "vigil_logs_entries_total").unwrap_or(0.0) as u64;
        if stored >= g.lines {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!(
                "ingest did not finish within an hour ({stored} of {} lines)",
                g.lines
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ureq::post(&format!("{}/api/vigil/flush", server.base))
        .timeout(Duration::from_secs(600))
        .call()?;
    let ingest_s = started.elapsed().as_secs_f64();
    let agent_cpu = proc_stats::cpu_seconds(agent_pid).unwrap_or(0.0);
    let server_cpu = proc_stats::cpu_seconds(server.child.id()).unwrap_or(0.0);
    let server_rss = proc_stats::peak_rss(server.child.id()).unwrap_or(0);
    let _ = agent.kill();
    let _ = agent.wait();
    // Let merges settle (idle partitions close their writers after merging).
    std::thread::sleep(Duration::from_secs(20));
    ureq::post(&format!("{}/api/vigil/flush", server.base)).call()?;
    let vigil_bytes = dir_size(&vigil_dir.join("data").join("logs"));
    eprintln!(
        "  vigil: ingest {:.0} s, {} bytes on disk",
        ingest_s, vigil_bytes
    );

    // SQLite FTS5 over the same lines.
    let sqlite_db = work.join("fts.db");
    let mut sqlite = None;
    if !a.skip_sqlite {
        let _ = std::fs::remove_file(&sqlite_db);
        let t = Instant::now();
        run_cmd(&format!(
            "sqlite3 {} \"PRAGMA journal_mode=OFF;\" \"PRAGMA synchronous=OFF;\" \"CREATE VIRTUAL TABLE logs USING fts5(ts UNINDEXED, ns UNINDEXED, pod UNINDEXED, line);\" \".mode ascii\" \".import {} logs\"",
            sqlite_db.display(),
            sqlite_file.display()
        ))?;
        let secs = t.elapsed().as_secs_f64();
        let count: u64 = run_cmd(&format!(
            "sqlite3 {} 'SELECT count(*) FROM logs'",
            sqlite_db.display()
        ))?
        .trim()
        .parse()
        .unwrap_or(0);
        let size = std::fs::metadata(&sqlite_db)?.len();
        eprintln!("  sqlite: {count} rows in {secs:.0} s, {size} bytes");
        sqlite = Some((secs, size, count));
        let _ = std::fs::remove_file(&sqlite_file);
    }

    // Queries.
    let range = format!("&start={}&end={}", g.start, g.end);
    let q = |query: &str, extra: &str| -> Result<Value> {
        get_json(&format!(
            "{}/loki/api/v1/query_range?query={}{range}{extra}",
            server.base,
            enc(query)
        ))
    };
    let entries = |v: &Value| -> usize {
        v["data"]["result"].as_array().map_or(0, |r| {
            r.iter()
                .map(|s| s["values"].as_array().map_or(0, Vec::len))
                .sum()
        })
    };
    let pods = pods_dir.display().to_string();
    let sq = |sql: &str| -> Result<String> {
        run_cmd(&format!("sqlite3 {} \"{sql}\"", sqlite_db.display()))
    };
    let mut rows: Vec<(String, f64, f64, Option<f64>, String)> = Vec::new();

    let (v_rare, ans) = timed(a.reps, || {
        q(
            &format!(r#"{{namespace=~".+"}} |= "{}""#, g.rare),
            "&limit=100",
        )
    })?;
    let (rg_rare, rg_ans) = timed(a.reps, || {
        run_cmd(&format!("rg -F -j2 --no-filename -N '{}' {pods}", g.rare))
    })?;
    let sq_rare = match &sqlite {
        Some(_) => Some(
            timed(a.reps, || {
                sq(&format!(
                    "SELECT count(*) FROM logs WHERE logs MATCH '\\\"{}\\\"'",
                    g.rare
                ))
            })?
            .0,
        ),
        None => None,
    };
    rows.push((
        "rare term (one line)".into(),
        v_rare,
        rg_rare,
        sq_rare,
        format!(
            "vigil {} line(s), rg {}",
            entries(&ans),
            rg_ans.lines().count()
        ),
    ));

    let common = r#"sum(count_over_time({namespace=~".+"} |= "error" [7d]))"#;
    let (v_common, ans) = timed(a.reps, || {
        get_json(&format!(
            "{}/loki/api/v1/query?query={}&time={}",
            server.base,
            enc(common),
            g.end
        ))
    })?;
    let (rg_common, rg_ans) = timed(a.reps, || {
        run_cmd(&format!(
            "rg -F -j2 -c --no-filename error {pods} | paste -sd+ | bc"
        ))
    })?;
    let sq_common = match &sqlite {
        Some(_) => Some(
            timed(a.reps, || {
                sq("SELECT count(*) FROM logs WHERE logs MATCH 'error'")
            })?
            .0,
        ),
        None => None,
    };
    rows.push((
        "common term, count all (`error`)".into(),
        v_common,
        rg_common,
        sq_common,
        format!(
            "vigil {}, rg {}",
            ans["data"]["result"][0]["value"][1].as_str().unwrap_or("?"),
            rg_ans.trim()
        ),
    ));

    let (v_latest, _) = timed(a.reps, || {
        q(r#"{namespace=~".+"} |= "error""#, "&limit=100")
    })?;
    let (rg_latest, _) = timed(a.reps, || {
        run_cmd(&format!(
            "rg -F -j2 --no-filename error {pods} | tail -n 100"
        ))
    })?;
    let sq_latest = match &sqlite {
        Some(_) => Some(timed(a.reps, || sq("SELECT ts, line FROM logs WHERE logs MATCH 'error' ORDER BY CAST(ts AS INTEGER) DESC LIMIT 100"))?.0),
        None => None,
    };
    rows.push((
        "common term, newest 100".into(),
        v_latest,
        rg_latest,
        sq_latest,
        String::new(),
    ));

    let (v_label, ans) = timed(a.reps, || {
        q(r#"{namespace="shop", pod="checkout-1"}"#, "&limit=1000")
    })?;
    let pod_file = run_cmd(&format!("ls -d {pods}/shop_checkout-1_*/checkout/0.log"))?
        .trim()
        .to_string();
    let (rg_label, _) = timed(a.reps, || {
        run_cmd(&format!("rg -j2 -N '' {pod_file} | tail -n 1000"))
    })?;
    let sq_label = match &sqlite {
        Some(_) => Some(timed(a.reps, || sq("SELECT ts, line FROM logs WHERE pod = 'checkout-1' ORDER BY CAST(ts AS INTEGER) DESC LIMIT 1000"))?.0),
        None => None,
    };
    rows.push((
        "label-only selection, newest 1000".into(),
        v_label,
        rg_label,
        sq_label,
        format!("vigil {} lines", entries(&ans)),
    ));

    let by_pod = r#"sum by (pod) (count_over_time({namespace=~".+"}[1h]))"#;
    let (v_count, ans) = timed(a.reps.min(3), || q(by_pod, "&step=3600"))?;
    let (rg_count, _) = timed(a.reps.min(3), || run_cmd(&format!("rg -j2 -c '' {pods}")))?;
    let sq_count = match &sqlite {
        Some(_) => Some(timed(a.reps.min(3), || sq("SELECT pod, CAST(ts AS INTEGER) / 3600000000000, count(*) FROM logs GROUP BY 1, 2"))?.0),
        None => None,
    };
    rows.push((
        "count_over_time by pod, 1 h steps".into(),
        v_count,
        rg_count,
        sq_count,
        format!(
            "vigil {} series",
            ans["data"]["result"].as_array().map_or(0, Vec::len)
        ),
    ));

    println!(
        "\n## Log benchmark: {:.2} GB raw, {} lines, {} pods over {} h\n",
        g.raw_bytes as f64 / 1e9,
        g.lines,
        a.pods,
        a.hours
    );
    println!("| ingest and storage | Vigil | SQLite FTS5 | reference |");
    println!("| --- | --- | --- | --- |");
    let (sq_secs, sq_size) = sqlite.map_or((f64::NAN, 0), |s| (s.0, s.1));
    println!(
        "| ingest, files → indexed (MB/s) | {:.1} (agent {:.0} + server {:.0} CPU s) | {:.1} (import only) | goal ≥ 50 |",
        raw_mb / ingest_s,
        agent_cpu,
        server_cpu,
        raw_mb / sq_secs
    );
    println!(
        "| bytes on disk / raw | {:.3} | {:.3} | zstd -3: {:.3}; goal ≤ 0.3 |",
        vigil_bytes as f64 / g.raw_bytes as f64,
        sq_size as f64 / g.raw_bytes as f64,
        zstd_bytes as f64 / g.raw_bytes as f64
    );
    println!(
        "| server peak RSS (MiB) | {:.0} | | |",
        server_rss as f64 / (1 << 20) as f64
    );
    println!("\n| query (median of {} warm runs) | Vigil (ms) | rg (ms) | SQLite FTS5 (ms) | rg / Vigil | answers |", a.reps);
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, v, r, s, note) in rows {
        println!(
            "| {name} | {:.1} | {:.1} | {} | {:.1}× | {note} |",
            v * 1e3,
            r * 1e3,
            s.map_or("–".into(), |s| format!("{:.1}", s * 1e3)),
            r / v
        );
    }
    if a.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let base = std::env::temp_dir().join(format!("vigil-log-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base)?;
    Ok(base)
}
