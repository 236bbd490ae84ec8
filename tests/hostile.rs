//! Hostile and careless requests against a running server: deep queries,
//! queries that would hold too much memory, floods of decompression,
//! timestamps at the end of time, pushes that would fill a limit for
//! everyone, oversized state. After each set the server must still be
//! healthy, its memory bounded and what was written before still readable.

mod common;

use common::{enc, get, get_json, post, remote_write, send, TestSeries, Vigil};
use std::io::Write;
use std::time::{Duration, Instant};

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn healthy(v: &Vigil) {
    let (code, body) = get(&v.url("/-/healthy"));
    assert_eq!(code, 200, "{body}");
}

fn start_with(dir: &std::path::Path, config: &str) -> Vigil {
    std::fs::write(
        dir.join("am.yml"),
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .expect("write am.yml");
    let cfg = dir.join("vigil.yaml");
    std::fs::write(&cfg, config).expect("write config");
    Vigil::start(
        &dir.join("data"),
        &["--config", cfg.to_str().expect("utf-8")],
    )
}

fn query(v: &Vigil, path: &str, q: &str, extra: &str) -> (u16, String) {
    get(&v.url(&format!("{path}?query={}{extra}", enc(q))))
}

fn load_series(v: &Vigil, n: usize) {
    let now = common::now_ms();
    let names: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let series: Vec<TestSeries> = names
        .iter()
        .map(|i| TestSeries {
            labels: vec![("__name__", "hostile_load"), ("i", i.as_str())],
            samples: (0..240)
                .map(|k| (now - 3_600_000 + k * 15_000, k as f64))
                .collect(),
        })
        .collect();
    let (code, body) = remote_write(v, &series);
    assert_eq!(code, 204, "{body}");
}

fn count_load(v: &Vigil) -> String {
    let (code, j) = get_json(&v.url(&format!(
        "/api/v1/query?query={}",
        enc("count(hostile_load)")
    )));
    assert_eq!(code, 200, "{j}");
    j["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn hostile_requests_leave_the_server_healthy_and_its_data_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = start_with(
        dir.path(),
        "query:\n  max_samples: 200000\n  max_samples_total: 10000000\nlimits:\n  max_global_series: 1000\n  max_decompressed_body_bytes: 1MB\nlogs:\n  max_concurrent_tail_requests: 2\n  max_global_streams_per_user: 50\nalerting:\n  notifier_config_file: am.yml\n",
    );
    load_series(&v, 200);
    assert_eq!(count_load(&v), "200");

    deep_queries_get_a_400(&v);
    healthy(&v);
    queries_that_would_hold_too_much_get_a_422(&v);
    healthy(&v);
    timestamps_at_the_end_of_time_are_refused(&v);
    series_past_the_limit_are_refused_and_old_ones_still_write(&v);
    long_label_values_are_not_echoed_whole(&v);
    a_push_of_many_streams_cannot_fill_the_stream_limit(&v);
    huge_logql_regexes_are_refused(&v);
    tails_are_capped(&v);
    oversized_bodies_are_refused_before_inflating(&v);
    silences_and_dashboards_are_bounded(&v);

    healthy(&v);
    let rss = rss_kib(v.pid(), "VmRSS:");
    assert!(rss < 600 * 1024, "RSS {rss} KiB after the hostile set");
    assert_eq!(count_load(&v), "200", "data written before reads back");
}

fn deep_queries_get_a_400(v: &Vigil) {
    let chain = vec!["1"; 2000].join("+");
    let abs = format!("{}1{}", "abs(".repeat(2000), ")".repeat(2000));
    let parens = format!("{}1{}", "(".repeat(50_000), ")".repeat(50_000));
    let negs = format!("{}1{}", "-(".repeat(20_000), ")".repeat(20_000));
    let long_chain = vec!["1"; 20_000].join("+");
    for q in [&chain, &abs, &parens, &negs, &long_chain] {
        for (path, extra) in [
            ("/api/v1/query", ""),
            ("/api/v1/query_range", "&start=0&end=60&step=15"),
            ("/api/v1/parse_query", ""),
            ("/api/v1/format_query", ""),
        ] {
            let started = Instant::now();
            // Long queries go as a form body, as Grafana sends them.
            let (code, body) = post(
                &v.url(path),
                "application/x-www-form-urlencoded",
                format!("query={}{extra}", enc(q)).as_bytes(),
            );
            assert_eq!(code, 400, "{path}: {}", &body[..body.len().min(300)]);
            assert!(
                body.contains("query too deeply nested: more than 1000 levels"),
                "{path}: {}",
                &body[..body.len().min(300)]
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{path} took {:?}",
                started.elapsed()
            );
        }
    }
    // Deep but within the bound: answered.
    let (code, j) = get_json(&v.url(&format!(
        "/api/v1/query?query={}",
        enc(&vec!["1"; 900].join("+"))
    )));
    assert_eq!(code, 200, "{j}");
    assert_eq!(j["data"]["result"][1], "900", "{j}");
    let logql = format!(
        "{}count_over_time({{a=\"b\"}}[1m]){}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    for path in ["/loki/api/v1/query", "/loki/api/v1/query_range"] {
        let (code, body) = query(v, path, &logql, "");
        assert_eq!(code, 400, "{path}: {}", &body[..body.len().min(300)]);
        assert!(body.contains("query too deeply nested"), "{body:.300}");
    }
}

fn queries_that_would_hold_too_much_get_a_422(v: &Vigil) {
    let now = common::now_ms() / 1000;
    // 200 series × 3 601 steps are held at once: over the 200 000 limit.
    let (code, body) = query(
        v,
        "/api/v1/query_range",
        "hostile_load",
        &format!("&start={}&end={now}&step=1", now - 3600),
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("query processing would load too many samples into memory"),
        "{body}"
    );
    for q in [
        "count(max_over_time(hostile_load[1h:1s]))",
        "sum_over_time(vector(1)[10h:1ms])",
        "rate(hostile_load[5m]) * 2",
    ] {
        let extra = if q.starts_with("rate") {
            format!("&start={}&end={now}&step=1", now - 3600)
        } else {
            String::new()
        };
        let path = if extra.is_empty() {
            "/api/v1/query"
        } else {
            "/api/v1/query_range"
        };
        let started = Instant::now();
        let (code, body) = query(v, path, q, &extra);
        assert_eq!(code, 422, "{q}: {body}");
        assert!(body.contains("too many samples"), "{q}: {body}");
        assert!(started.elapsed() < Duration::from_secs(10), "{q}");
    }
    // What fits still answers.
    let (code, body) = query(
        v,
        "/api/v1/query_range",
        "sum(rate(hostile_load[5m]))",
        &format!("&start={}&end={now}&step=60", now - 3600),
    );
    assert_eq!(code, 200, "{body}");
}

fn timestamps_at_the_end_of_time_are_refused(v: &Vigil) {
    let series = |t: i64| {
        vec![TestSeries {
            labels: vec![("__name__", "hostile_future")],
            samples: vec![(t, 1.0)],
        }]
    };
    let (code, body) = remote_write(v, &series(i64::MAX));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("too far in the future"), "{body}");
    let (code, body) = remote_write(v, &series(common::now_ms()));
    assert_eq!(code, 204, "a live write after the refused one: {body}");
    let far = common::now_ms() + 3_600_000;
    let (code, body) = post(
        &v.url("/api/v1/import/prometheus"),
        "text/plain",
        format!("hostile_future_import 1 {far}\n").as_bytes(),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("too far in the future"), "{body}");
    let push = format!(
        r#"{{"streams":[{{"stream":{{"job":"hostile"}},"values":[["{}","from the future"]]}}]}}"#,
        i64::MAX
    );
    let (code, body) = post(
        &v.url("/loki/api/v1/push"),
        "application/json",
        push.as_bytes(),
    );
    assert_eq!(code, 400, "{body}");
}

fn series_past_the_limit_are_refused_and_old_ones_still_write(v: &Vigil) {
    let names: Vec<String> = (0..1000).map(|i| format!("n{i}")).collect();
    let now = common::now_ms();
    let series: Vec<TestSeries> = names
        .iter()
        .map(|i| TestSeries {
            labels: vec![("__name__", "hostile_new"), ("i", i.as_str())],
            samples: vec![(now, 1.0)],
        })
        .collect();
    let (code, body) = remote_write(v, &series);
    assert_eq!(code, 400, "{body:.500}");
    assert!(body.contains("limits.max_global_series"), "{body:.500}");
    assert!(
        body.len() < 8 << 10,
        "the answer lists a few refusals, not all"
    );
    // Series that exist still take samples.
    let (code, body) = remote_write(
        v,
        &[TestSeries {
            labels: vec![("__name__", "hostile_load"), ("i", "0")],
            samples: vec![(now, 7.0)],
        }],
    );
    assert_eq!(code, 204, "{body}");
    let (_, j) = get_json(&v.url("/api/v1/status/tsdb"));
    let head = j["data"]["headStats"]["numSeries"].as_u64().unwrap_or(0);
    assert!(head <= 1000, "head holds {head} series: {j}");
    let (_, metrics) = get(&v.url("/metrics"));
    assert!(
        metrics.contains("per_user_series_limit"),
        "the refusals are counted"
    );
}

fn long_label_values_are_not_echoed_whole(v: &Vigil) {
    let value = "x".repeat(512 << 10);
    let (code, body) = remote_write(
        v,
        &[TestSeries {
            labels: vec![("__name__", "hostile_long"), ("v", value.as_str())],
            samples: vec![(common::now_ms(), 1.0)],
        }],
    );
    assert_eq!(code, 400);
    assert!(body.len() < 4096, "a {} byte answer", body.len());
    assert!(body.contains("bytes in all"), "{body}");
}

fn a_push_of_many_streams_cannot_fill_the_stream_limit(v: &Vigil) {
    let ns = common::now_ms() * 1_000_000;
    let one = |app: &str| format!(r#"{{"stream":{{"app":"{app}"}},"values":[["{ns}","line"]]}}"#);
    let flood: Vec<String> = (0..300).map(|i| one(&format!("flood-{i}"))).collect();
    let (code, body) = post(
        &v.url("/loki/api/v1/push"),
        "application/json",
        format!(r#"{{"streams":[{}]}}"#, flood.join(",")).as_bytes(),
    );
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("300 new streams"), "{body}");
    assert!(body.len() < 4096);
    // The limit is not used up: a legitimate new stream is taken.
    let (code, body) = post(
        &v.url("/loki/api/v1/push"),
        "application/json",
        format!(r#"{{"streams":[{}]}}"#, one("legit")).as_bytes(),
    );
    assert_eq!(code, 204, "{body}");
}

fn huge_logql_regexes_are_refused(v: &Vigil) {
    let q = format!(r#"{{app="legit"}} |~ "{}""#, "a".repeat(100_000));
    let started = Instant::now();
    let (code, body) = post(
        &v.url("/loki/api/v1/query_range"),
        "application/x-www-form-urlencoded",
        format!("query={}", enc(&q)).as_bytes(),
    );
    assert_eq!(code, 400, "{body:.300}");
    assert!(body.contains("regex too long"), "{body:.300}");
    assert!(body.len() < 1024, "{} bytes", body.len());
    assert!(started.elapsed() < Duration::from_secs(2));
}

fn tails_are_capped(v: &Vigil) {
    let url = format!(
        "{}/loki/api/v1/tail?query={}",
        v.url("").replacen("http://", "ws://", 1),
        enc(r#"{app="legit"}"#)
    );
    let first = tungstenite::connect(url.as_str()).expect("tail 1");
    let _second = tungstenite::connect(url.as_str()).expect("tail 2");
    match tungstenite::connect(url.as_str()) {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429);
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or(&[])).to_string();
            assert!(body.contains("max concurrent tail requests"), "{body}");
        }
        Ok(_) => panic!("a third tail was accepted over the limit of 2"),
        Err(e) => panic!("third tail: {e}"),
    }
    let (mut ws, _) = first;
    let _ = ws.close(None);
    drop(ws);
    common::wait_for("a tail slot to free up", Duration::from_secs(10), || {
        tungstenite::connect(url.as_str()).is_ok()
    });
}

fn oversized_bodies_are_refused_before_inflating(v: &Vigil) {
    // Snappy's header says 2 MiB; the limit is 1 MiB.
    let body = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 2 << 20])
        .expect("snappy");
    let (code, text) = post(&v.url("/api/v1/write"), "application/x-protobuf", &body);
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("limits.max_decompressed_body_bytes"),
        "{text}"
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&vec![b' '; 2 << 20]).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let resp = common::agent()
        .post(&v.url("/loki/api/v1/push"))
        .set("Content-Type", "application/json")
        .set("Content-Encoding", "gzip")
        .send_bytes(&gz);
    let (code, text) = common::into_pair(resp).expect("push");
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("limits.max_decompressed_body_bytes"),
        "{text}"
    );
}

fn silences_and_dashboards_are_bounded(v: &Vigil) {
    let now = chrono::Utc::now();
    let silence = |comment: String| {
        serde_json::json!({
            "matchers": [{"name": "alertname", "value": "X", "isRegex": false, "isEqual": true}],
            "startsAt": now.to_rfc3339(),
            "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
            "createdBy": "test",
            "comment": comment,
        })
        .to_string()
    };
    let (code, body) = post(
        &v.url("/api/v2/silences"),
        "application/json",
        silence("c".repeat(10 << 20)).as_bytes(),
    );
    assert_eq!(code, 400, "{body:.300}");
    assert!(body.contains("over the limit"), "{body:.300}");
    assert!(body.len() < 1024);
    let (code, body) = post(
        &v.url("/api/v2/silences"),
        "application/json",
        silence("maintenance".into()).as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let big = format!(
        r#"{{"uid":"huge","title":"{}","panels":[]}}"#,
        "t".repeat(2 << 20)
    );
    let (code, body) = send("PUT", &v.url("/api/vigil/dashboards/huge"), Some(&big));
    assert_eq!(code, 400, "{body:.300}");
    assert!(body.contains("over the limit"), "{body:.300}");
    assert!(body.len() < 1024);
}

/// Concurrent writes whose bodies inflate a lot: memory stays within the
/// decode budget and health checks stay quick throughout.
#[test]
fn decompression_floods_stay_within_the_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = start_with(dir.path(), "limits:\n  max_inflight_decode_bytes: 256MB\n");
    let pid = v.pid();
    let before = rss_kib(pid, "VmRSS:");
    // 32 MiB (the default per-request limit) of protobuf that is valid
    // only at the start: the server inflates it all before decoding.
    let snappy = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 32 << 20])
        .expect("snappy");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&vec![b'x'; 32 << 20]).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut worst = Duration::ZERO;
    let mut codes: Vec<Result<u16, String>> = Vec::new();
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut worst = Duration::ZERO;
            let stop_at = Instant::now() + Duration::from_secs(300);
            while !done.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < stop_at {
                let t = Instant::now();
                let (code, _) = get(&v.url("/-/healthy"));
                assert_eq!(code, 200);
                worst = worst.max(t.elapsed());
                std::thread::sleep(Duration::from_millis(20));
            }
            worst
        });
        let senders: Vec<_> = (0..16)
            .map(|i| {
                let (snappy, gz, v) = (&snappy, &gz, &v);
                s.spawn(move || {
                    (0..2)
                        .map(|_| {
                            if i % 2 == 0 {
                                common::try_post(
                                    &v.url("/api/v1/write"),
                                    "application/x-protobuf",
                                    snappy,
                                )
                                .map(|r| r.0)
                            } else {
                                common::into_pair(
                                    common::agent()
                                        .post(&v.url("/loki/api/v1/push"))
                                        .set("Content-Type", "application/json")
                                        .set("Content-Encoding", "gzip")
                                        .send_bytes(gz),
                                )
                                .map(|r| r.0)
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in senders {
            codes.extend(h.join().unwrap_or_default());
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        worst = watcher.join().expect("watcher");
    });
    assert_eq!(codes.len(), 32, "every write answered");
    for c in &codes {
        // Zeros are an empty remote_write request (204), x is not JSON
        // (400); a write that waited too long for the budget gets 429.
        assert!(matches!(c, Ok(204 | 400 | 429)), "{c:?}");
    }
    let peak = rss_kib(pid, "VmHWM:");
    eprintln!("RSS before {before} KiB, peak {peak} KiB; slowest /-/healthy {worst:?}");
    assert!(
        peak.saturating_sub(before) < (256 + 96) * 1024,
        "RSS rose from {before} to {peak} KiB with a 256 MiB decode budget"
    );
    assert!(
        worst < Duration::from_millis(250),
        "slowest /-/healthy {worst:?}"
    );
    healthy(&v);
}

/// Running queries share one budget: a query that fits its own limit but
/// not what is left of the shared one gets 503, and the budget is given
/// back when queries end.
#[test]
fn queries_share_one_memory_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = start_with(
        dir.path(),
        "query:\n  max_samples: 10000000\n  max_samples_total: 100000\n",
    );
    load_series(&v, 200);
    let now = common::now_ms() / 1000;
    for _ in 0..3 {
        let (code, body) = query(
            &v,
            "/api/v1/query_range",
            "hostile_load",
            &format!("&start={}&end={now}&step=1", now - 3600),
        );
        assert_eq!(code, 503, "{body}");
        assert!(body.contains("query.max_samples_total"), "{body}");
    }
    // Given back: a query that fits runs.
    let (code, body) = query(
        &v,
        "/api/v1/query_range",
        "hostile_load",
        &format!("&start={}&end={now}&step=300", now - 3600),
    );
    assert_eq!(code, 200, "{body:.300}");
}

/// Starts vigil with its stderr in a file; answers the base URL.
fn start_logging_to(
    dir: &std::path::Path,
    log: &std::path::Path,
    extra: &[&str],
) -> (std::process::Child, String) {
    let port = common::free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["--no-local-agent", "--listen-addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn vigil");
    let base = format!("http://127.0.0.1:{port}");
    common::wait_for("vigil ready", Duration::from_secs(60), || {
        matches!(common::try_get(&format!("{base}/-/ready")), Ok((200, _)))
    });
    (child, base)
}

/// Writes and admin actions leave a line in the request log; ingest and
/// queries do not, and query strings never appear.
#[test]
fn admin_actions_are_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("stderr.log");
    let (mut child, base) = start_logging_to(dir.path(), &log, &[]);
    let doc = r#"{"uid":"team","title":"Team","panels":[]}"#;
    let (code, body) = send(
        "PUT",
        &format!("{base}/api/vigil/dashboards/team"),
        Some(doc),
    );
    assert_eq!(code, 201, "{body}");
    let (code, _) = send("DELETE", &format!("{base}/api/vigil/dashboards/team"), None);
    assert_eq!(code, 204);
    let _ = get(&format!("{base}/api/v1/query?query=up&secret=hunter2"));
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("read log");
    let access: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("vigil::access"))
        .collect();
    assert!(
        access.iter().any(|l| l.contains("PUT")
            && l.contains("/api/vigil/dashboards/team")
            && l.contains("status=201")),
        "{text}"
    );
    assert!(
        access
            .iter()
            .any(|l| l.contains("DELETE") && l.contains("status=204")),
        "{text}"
    );
    assert!(
        !text.contains("hunter2"),
        "a query string was logged: {text}"
    );
    assert!(
        !access.iter().any(|l| l.contains("/api/v1/query")),
        "{text}"
    );
    // Not a terminal: no colour escapes.
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escapes in a log that is not a terminal"
    );
}

/// `--log-format json`: every line one JSON object, as log shippers and
/// `kubectl logs` processors expect.
#[test]
fn json_log_lines_are_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("stderr.log");
    let (mut child, base) = start_logging_to(dir.path(), &log, &["--log-format", "json"]);
    let (code, _) = send("POST", &format!("{base}/-/reload"), None);
    assert_eq!(code, 200);
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("read log");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "{text}");
    for l in &lines {
        let j: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(j["level"].is_string() && j["timestamp"].is_string(), "{l}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"target\":\"vigil::access\"") && l.contains("/-/reload")),
        "{text}"
    );
}

/// LogQL queries stop at `query.timeout` as PromQL queries do (503), where
/// before they ran to the end however long that took.
#[test]
fn logql_queries_stop_at_the_query_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = start_with(dir.path(), "query:\n  timeout: 1ms\n");
    let ns = common::now_ms() * 1_000_000 - 600_000_000_000;
    // 50 000 lines in 50 streams: evaluating them takes far more than 1 ms.
    let streams: Vec<String> = (0..50)
        .map(|s| {
            let values: Vec<String> = (0..1000)
                .map(|i| format!(r#"["{}","line {s} {i}"]"#, ns + i * 1_000_000))
                .collect();
            format!(
                r#"{{"stream":{{"app":"slow","s":"{s}"}},"values":[{}]}}"#,
                values.join(",")
            )
        })
        .collect();
    let (code, body) = post(
        &v.url("/loki/api/v1/push"),
        "application/json",
        format!(r#"{{"streams":[{}]}}"#, streams.join(",")).as_bytes(),
    );
    assert_eq!(code, 204, "{body}");
    let (code, body) = query(
        &v,
        "/loki/api/v1/query_range",
        r#"sum(count_over_time({app="slow"} |~ "line .* 9.9$" [1h]))"#,
        "",
    );
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("query timed out"), "{body}");
    healthy(&v);
}
