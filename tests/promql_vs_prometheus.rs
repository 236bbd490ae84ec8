//! Differential check against the real thing: the same data is loaded into
//! Debian's Prometheus (blocks built by `promtool tsdb create-blocks-from
//! openmetrics`) and into Vigil (the import API), and a corpus of queries
//! must give the same answers from both (values within 1e-9 relative).
//!
//! Debian ships Prometheus 2.42, so the corpus leaves out what 3.x changed:
//! sample times never fall on a whole second, so left-open (3.x) and closed
//! (2.x) range and lookback windows select the same samples; no query reads
//! `__name__` after a function dropped it (3.x delays the removal); and no
//! 3.x-only functions or aggregations (`limitk`, `sort_by_label`,
//! `double_exponential_smoothing`, ...). Query times sit 7 s past a whole
//! minute, so subquery steps never fall on a window's edge either. Also left
//! out: `atan2` on vectors (2.42 keeps `__name__`; 3.x drops it as for
//! arithmetic) and rate windows reaching back before a counter's first
//! sample (3.x limits extrapolation to the counter's zero point after the
//! 1.1-interval rule, 2.42 before it).

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCRAPE_MS: i64 = 15_000;
const SCRAPES: i64 = 3 * 240; // three hours

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct SeriesData {
    labels: Vec<(String, String)>,
    points: Vec<(i64, f64)>,
}

fn series(labels: &[(&str, &str)]) -> SeriesData {
    SeriesData {
        labels: labels
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        points: Vec::new(),
    }
}

/// node_exporter-like data with counter resets, a series that stops, and
/// classic histograms. No sample is on a whole second.
fn dataset(start: i64) -> Vec<SeriesData> {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut out = Vec::new();
    for (ii, inst) in ["a:9100", "b:9100", "c:9100"].iter().enumerate() {
        let offset = 1234 + 111 * ii as i64;
        let t = |k: i64| start + k * SCRAPE_MS + offset;
        for cpu in ["0", "1"] {
            for mode in ["idle", "user", "system"] {
                let mut s = series(&[
                    ("__name__", "node_cpu_seconds_total"),
                    ("instance", inst),
                    ("job", "node"),
                    ("cpu", cpu),
                    ("mode", mode),
                ]);
                let mut v = 1000.0 * (ii + 1) as f64;
                for k in 0..SCRAPES {
                    // A restart of host b halfway: counters start over.
                    if ii == 1 && k == SCRAPES / 2 {
                        v = 0.0;
                    }
                    v = ((v + 15.0 * rng.unit()) * 100.0).round() / 100.0;
                    s.points.push((t(k), v));
                }
                out.push(s);
            }
        }
        let mut mem = series(&[
            ("__name__", "node_memory_free_bytes"),
            ("instance", inst),
            ("job", "node"),
        ]);
        let mut load = series(&[
            ("__name__", "node_load1"),
            ("instance", inst),
            ("job", "node"),
        ]);
        let mut up = series(&[("__name__", "up"), ("instance", inst), ("job", "node")]);
        let (mut m, mut l) = (8e9 + 1e9 * ii as f64, 0.5 * ii as f64);
        for k in 0..SCRAPES {
            m = (m + (rng.next() % 64) as f64 * 4096.0 - 32.0 * 4096.0).max(0.0);
            l = ((l + (rng.unit() - 0.5) * 0.3).clamp(0.0, 8.0) * 100.0).round() / 100.0;
            // Host c's memory exporter stops an hour before the end.
            if !(ii == 2 && k > SCRAPES - 240) {
                mem.points.push((t(k), m));
            }
            load.points.push((t(k), l));
            up.points.push((
                t(k),
                if ii == 1 && (300..320).contains(&k) {
                    0.0
                } else {
                    1.0
                },
            ));
        }
        out.extend([mem, load, up]);
        for handler in ["/api", "/metrics"] {
            let bounds = ["0.1", "0.5", "1", "+Inf"];
            let mut counts = [0.0f64; 4];
            let (mut sum, mut count) = (0.0, 0.0);
            let mut buckets: Vec<SeriesData> = bounds
                .iter()
                .map(|le| {
                    series(&[
                        ("__name__", "http_request_duration_seconds_bucket"),
                        ("instance", inst),
                        ("job", "node"),
                        ("handler", handler),
                        ("le", le),
                    ])
                })
                .collect();
            let mut s_sum = series(&[
                ("__name__", "http_request_duration_seconds_sum"),
                ("instance", inst),
                ("job", "node"),
                ("handler", handler),
            ]);
            let mut s_count = series(&[
                ("__name__", "http_request_duration_seconds_count"),
                ("instance", inst),
                ("job", "node"),
                ("handler", handler),
            ]);
            for k in 0..SCRAPES {
                for _ in 0..(rng.next() % 20) {
                    let d = rng.unit() * rng.unit() * 2.0;
                    sum += d;
                    count += 1.0;
                    for (i, b) in [0.1, 0.5, 1.0, f64::INFINITY].iter().enumerate() {
                        if d <= *b {
                            counts[i] += 1.0;
                        }
                    }
                }
                for (i, b) in buckets.iter_mut().enumerate() {
                    b.points.push((t(k), counts[i]));
                }
                s_sum.points.push((t(k), (sum * 1000.0).round() / 1000.0));
                s_count.points.push((t(k), count));
            }
            out.extend(buckets);
            out.extend([s_sum, s_count]);
        }
    }
    out
}

fn labels_text(labels: &[(String, String)]) -> String {
    let name = &labels.iter().find(|(k, _)| k == "__name__").unwrap().1;
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

fn start_prometheus(
    bin: &std::path::Path,
    dir: &std::path::Path,
    data: &[SeriesData],
) -> Prometheus {
    // OpenMetrics: one family's samples together, times in seconds, `# EOF`.
    let mut om = String::new();
    let mut by_name: BTreeMap<String, Vec<&SeriesData>> = BTreeMap::new();
    for s in data {
        let name = s
            .labels
            .iter()
            .find(|(k, _)| k == "__name__")
            .unwrap()
            .1
            .clone();
        by_name.entry(name).or_default().push(s);
    }
    for (_, family) in by_name {
        for s in family {
            let l = labels_text(&s.labels);
            for (t, v) in &s.points {
                om += &format!("{l} {v} {}.{:03}\n", t / 1000, t % 1000);
            }
        }
    }
    om += "# EOF\n";
    let om_path = dir.join("data.om");
    std::fs::write(&om_path, om).unwrap();
    let tsdb = dir.join("prom-data");
    let status = Command::new("/usr/bin/promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om_path)
        .arg(&tsdb)
        .stdout(Stdio::null())
        .status()
        .expect("run promtool");
    assert!(
        status.success(),
        "promtool create-blocks-from openmetrics failed"
    );
    let port = free_port();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1m\n").unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg("--storage.tsdb.retention.time=30d")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let p = Prometheus {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while try_get(&format!("{}/-/ready", p.base)).map(|r| r.0) != Ok(200) {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    p
}

/// The query corpus: every template with every argument it takes.
fn corpus() -> Vec<String> {
    let mut q: Vec<String> = Vec::new();
    let counters = [
        "node_cpu_seconds_total",
        "node_cpu_seconds_total{mode=\"idle\"}",
        "http_request_duration_seconds_count",
    ];
    let gauges = ["node_load1", "node_memory_free_bytes", "up"];
    for f in [
        "rate", "irate", "increase", "resets", "changes", "deriv", "delta", "idelta",
    ] {
        for s in counters.iter().chain(&gauges[..1]) {
            for r in ["1m", "5m", "17m"] {
                q.push(format!("{f}({s}[{r}])"));
            }
        }
    }
    for f in [
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "stddev_over_time",
        "stdvar_over_time",
        "last_over_time",
        "present_over_time",
    ] {
        for s in gauges {
            for r in ["2m", "10m"] {
                q.push(format!("{f}({s}[{r}])"));
            }
        }
    }
    for s in gauges {
        q.push(format!("quantile_over_time(0.3, {s}[10m])"));
        q.push(format!("predict_linear({s}[10m], 600)"));
        q.push(format!("absent_over_time({s}[5m])"));
    }
    let inner = "rate(node_cpu_seconds_total[5m])";
    for agg in [
        "sum", "avg", "min", "max", "count", "stddev", "stdvar", "group",
    ] {
        for m in ["", " by (instance)", " without (cpu)", " by (mode, job)"] {
            q.push(format!("{agg}{m} ({inner})"));
        }
    }
    for m in ["", " by (instance)"] {
        q.push(format!("topk{m} (2, {inner})"));
        q.push(format!("bottomk{m} (3, {inner})"));
        q.push(format!("quantile{m} (0.9, {inner})"));
        q.push(format!("count_values{m} (\"v\", up)"));
    }
    for qn in ["0.5", "0.9", "0.99"] {
        q.push(format!(
            "histogram_quantile({qn}, sum by (le, instance) (rate(http_request_duration_seconds_bucket[5m])))"
        ));
        q.push(format!(
            "histogram_quantile({qn}, rate(http_request_duration_seconds_bucket[10m]))"
        ));
    }
    for f in [
        "abs", "ceil", "floor", "sqrt", "ln", "log2", "log10", "exp", "sgn", "sin", "cos", "atan",
        "deg", "rad",
    ] {
        q.push(format!("{f}(node_load1)"));
    }
    q.extend(
        [
            "round(node_load1, 0.5)",
            "clamp(node_load1, 0.2, 0.6)",
            "clamp_min(node_load1, 0.3)",
            "clamp_max(node_load1, 0.3)",
            "node_load1 * 2 + 1",
            "node_load1 > 0.4",
            "node_load1 > bool 0.4",
            "0.4 < node_load1",
            "node_load1 == bool node_load1",
            "node_memory_free_bytes / 1024 / 1024",
            "node_memory_free_bytes % 7",
            "2 ^ node_load1",
            "rate(node_cpu_seconds_total[5m]) / on(instance, cpu) group_left sum by (instance, cpu) (rate(node_cpu_seconds_total[5m]))",
            "sum by (instance) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m])) / sum by (instance) (rate(node_cpu_seconds_total[5m]))",
            "node_load1 * on(instance) group_left(job) up",
            "up * on(instance) group_right node_load1",
            "node_load1 + ignoring(job) node_load1",
            "node_load1 and up == 1",
            "node_load1 or node_memory_free_bytes",
            "node_load1 unless up == 0",
            "node_memory_free_bytes unless on(instance) up == 0",
            "up == 0",
            "-node_load1",
            "sum(rate(http_request_duration_seconds_sum[5m])) / sum(rate(http_request_duration_seconds_count[5m]))",
            "rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])",
            "label_replace(node_load1, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
            "label_replace(node_load1, \"instance\", \"x\", \"nope\", \"\")",
            "label_join(node_load1, \"id\", \"-\", \"instance\", \"job\")",
            "max_over_time(rate(node_cpu_seconds_total[5m])[30m:1m])",
            "avg_over_time(node_load1[20m:2m])",
            "min_over_time(sum by (instance) (node_load1)[10m:])",
            "rate(node_cpu_seconds_total[5m] offset 10m)",
            "node_load1 offset 30m",
            "avg_over_time(node_load1[5m] offset 1h)",
            "absent(nonexistent{job=\"x\"})",
            "absent(node_load1)",
            "vector(1) + vector(2)",
            "scalar(sum(up))",
            "time()",
            "timestamp(node_load1)",
            "count(node_memory_free_bytes)",
            "sum({__name__=~\"node_load1|up\"})",
            "count by (__name__) ({__name__=~\"node_.*\"})",
            "sort(node_load1)",
            "sort_desc(rate(node_cpu_seconds_total[5m]))",
            "day_of_week()",
            "hour(timestamp(node_load1))",
            "days_in_month()",
            "node_load1{instance=~\"a.*|c.*\"}",
            "node_cpu_seconds_total{cpu!=\"0\",mode=~\"user|system\"}",
            "stddev by (instance) (node_load1)",
            "sum without (instance) (node_load1)",
            "1 + 2 * 3",
            "(1 + 2) * 3 > bool 8",
            "changes(up[30m])",
            "resets(node_cpu_seconds_total[2h])",
            "increase(node_cpu_seconds_total{instance=\"b:9100\"}[1h])",
            "rate(node_cpu_seconds_total[1h] @ end())",
            "node_load1 @ start()",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    q
}

/// A result as comparable data: series labels → points (t ms, value).
fn normalize(j: &Value) -> Normalized {
    if j["status"] != "success" {
        return Err(format!("{} {}", j["errorType"], j["error"]));
    }
    let data = &j["data"];
    let ty = data["resultType"].as_str().unwrap_or("").to_string();
    let num = |p: &Value| -> (i64, f64) {
        let t = (p[0].as_f64().unwrap_or(f64::NAN) * 1000.0).round() as i64;
        let v = match p[1].as_str().unwrap_or("") {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            s => s.parse().unwrap_or(f64::NAN),
        };
        (t, v)
    };
    let mut out = BTreeMap::new();
    match ty.as_str() {
        "scalar" => {
            out.insert(String::new(), vec![num(&data["result"])]);
        }
        _ => {
            for r in data["result"].as_array().cloned().unwrap_or_default() {
                let pts = if let Some(v) = r.get("value") {
                    vec![num(v)]
                } else {
                    r["values"]
                        .as_array()
                        .map(|a| a.iter().map(num).collect())
                        .unwrap_or_default()
                };
                out.insert(r["metric"].to_string(), pts);
            }
        }
    }
    Ok((ty, out))
}

type Normalized = Result<(String, BTreeMap<String, Vec<(i64, f64)>>), String>;

/// The first place two answers part, briefly.
fn first_difference(p: &Normalized, v: &Normalized) -> String {
    match (p, v) {
        (Ok((pt, ps)), Ok((vt, vs))) => {
            if pt != vt {
                return format!("result type: prometheus {pt}, vigil {vt}");
            }
            for (k, pp) in ps {
                let Some(vp) = vs.get(k) else {
                    return format!("series {k} missing in vigil");
                };
                if vp.len() != pp.len() {
                    return format!(
                        "series {k}: prometheus {} points, vigil {}",
                        pp.len(),
                        vp.len()
                    );
                }
                for (a, b) in pp.iter().zip(vp) {
                    if a.0 != b.0 || !same(a.1, b.1) {
                        return format!("series {k} at {}: prometheus {:?}, vigil {:?}", a.0, a, b);
                    }
                }
            }
            let extra: Vec<&String> = vs.keys().filter(|k| !ps.contains_key(*k)).collect();
            format!("series only in vigil: {extra:?}")
        }
        (p, v) => format!(
            "prometheus {:?} / vigil {:?}",
            p.as_ref().err(),
            v.as_ref().err()
        ),
    }
}

fn same(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() || a == b {
        return true;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[test]
fn vigil_answers_the_corpus_as_prometheus_does() {
    let Some(bin) = peer_binary("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Whole minutes, ending well in the past; samples sit 1.234 s+ past a scrape tick.
    let start = (now_ms() / 60_000) * 60_000 - 4 * 3_600_000;
    let data = dataset(start);
    let prom = start_prometheus(&bin, dir.path(), &data);

    let vigil = Vigil::start(&dir.path().join("vigil"), &[]);
    let mut body = String::new();
    for s in &data {
        let l = labels_text(&s.labels);
        for (t, v) in &s.points {
            body += &format!("{l} {v} {t}\n");
        }
    }
    let (code, msg) = post(
        &vigil.url("/api/v1/import/prometheus"),
        "text/plain",
        body.as_bytes(),
    );
    assert_eq!(code, 204, "{msg}");

    let end_s = (start + SCRAPES * SCRAPE_MS) / 1000 + 7;
    let instants = [end_s - 7200, end_s - 1800, end_s + 60];
    let queries = corpus();
    assert!(queries.len() >= 200, "corpus has {} queries", queries.len());
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut both_failed = 0;
    for q in &queries {
        let mut requests: Vec<String> = instants
            .iter()
            .map(|t| format!("/api/v1/query?query={}&time={t}", enc(q)))
            .collect();
        requests.push(format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=60",
            enc(q),
            end_s - 3 * 3600 + 2400,
            end_s
        ));
        for r in requests {
            let (_, pj) = get_json(&format!("{}{r}", prom.base));
            let (_, vj) = get_json(&vigil.url(&r));
            compared += 1;
            let (p, v) = (normalize(&pj), normalize(&vj));
            let ok = match (&p, &v) {
                (Ok((pt, ps)), Ok((vt, vs))) => {
                    pt == vt
                        && ps.len() == vs.len()
                        && ps.iter().all(|(k, pp)| {
                            vs.get(k).is_some_and(|vp| {
                                vp.len() == pp.len()
                                    && vp.iter().zip(pp).all(|(a, b)| a.0 == b.0 && same(a.1, b.1))
                            })
                        })
                }
                (Err(_), Err(_)) => {
                    both_failed += 1;
                    true
                }
                _ => false,
            };
            if !ok {
                failures.push(format!(
                    "{q} ({})\n  {}",
                    &r[..r.find('?').unwrap_or(0)],
                    first_difference(&p, &v)
                ));
            }
        }
    }
    promtool_sees_the_same(&prom.base, &vigil.base, end_s);
    println!(
        "{} queries, {compared} comparisons, {} differ, {both_failed} failed on both",
        queries.len(),
        failures.len()
    );
    // Only the deliberate duplicate-labelset query fails on both sides.
    assert!(
        both_failed <= 4,
        "{both_failed} comparisons failed on both sides"
    );
    for f in failures.iter().take(20) {
        println!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} answers differ from Prometheus",
        failures.len()
    );
}

/// Runs promtool against a server; its output with lines sorted (instant
/// vectors come back in evaluation order, which is not defined).
fn promtool(args: &[&str]) -> String {
    let out = Command::new("/usr/bin/promtool")
        .args(args)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

/// `promtool query instant|range|series|labels` print the same for both
/// (queries without sums: 2.42 adds plainly, 3.x with compensation, so the
/// last digit of a printed sum may differ).
fn promtool_sees_the_same(prom: &str, vigil: &str, end_s: i64) {
    let t = (end_s - 600).to_string();
    let start = (end_s - 1800).to_string();
    let end = end_s.to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "query",
            "instant",
            "--time",
            &t,
            "SERVER",
            "max by (instance) (rate(node_cpu_seconds_total[5m]))",
        ],
        vec!["query", "instant", "--time", &t, "SERVER", "node_load1"],
        vec![
            "query",
            "instant",
            "--time",
            &t,
            "SERVER",
            "scalar(sum(up))",
        ],
        vec![
            "query",
            "instant",
            "-o",
            "json",
            "--time",
            &t,
            "SERVER",
            "topk(1, node_load1)",
        ],
        vec![
            "query",
            "range",
            "--start",
            &start,
            "--end",
            &end,
            "--step",
            "5m",
            "SERVER",
            "min by (instance) (node_load1)",
        ],
        vec![
            "query",
            "range",
            "--start",
            &start,
            "--end",
            &end,
            "--step",
            "150s",
            "SERVER",
            "rate(http_request_duration_seconds_count[5m])",
        ],
        vec![
            "query",
            "series",
            "--match",
            "node_load1",
            "--match",
            "up{instance=\"a:9100\"}",
            "--start",
            &start,
            "--end",
            &end,
            "SERVER",
        ],
        vec![
            "query", "labels", "--start", &start, "--end", &end, "SERVER", "instance",
        ],
        vec![
            "query",
            "labels",
            "--match",
            "node_cpu_seconds_total",
            "SERVER",
            "mode",
        ],
    ];
    for case in cases {
        let with = |server: &str| -> Vec<String> {
            case.iter()
                .map(|a| {
                    if *a == "SERVER" {
                        server.to_string()
                    } else {
                        a.to_string()
                    }
                })
                .collect()
        };
        let (p_args, v_args) = (with(prom), with(vigil));
        let p = promtool(&p_args.iter().map(String::as_str).collect::<Vec<_>>());
        let v = promtool(&v_args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            !p.is_empty(),
            "promtool {case:?} printed nothing for Prometheus"
        );
        assert_eq!(
            p, v,
            "promtool {case:?} differs:\nprometheus:\n{p}\nvigil:\n{v}"
        );
    }
}
