//! PromQL over HTTP end to end: data written with the import API, read
//! back with /api/v1/query and /api/v1/query_range as Grafana would.

mod common;

use common::*;
use serde_json::{json, Value};

/// Two counters scraped every 15 s for 10 minutes, ending 1 minute ago.
fn load(v: &Vigil) -> i64 {
    let end = (now_ms() / 1000 - 60) * 1000;
    let start = end - 600_000;
    let mut body = String::new();
    for i in 0..=40 {
        let t = start + i * 15_000;
        body += &format!(
            "http_requests_total{{job=\"api\",instance=\"a\"}} {} {t}\n",
            i * 30
        );
        body += &format!(
            "http_requests_total{{job=\"api\",instance=\"b\"}} {} {t}\n",
            i * 15
        );
    }
    let (code, msg) = post(
        &v.url("/api/v1/import/prometheus"),
        "text/plain",
        body.as_bytes(),
    );
    assert_eq!(code, 204, "{msg}");
    end
}

/// An instant query of `expr` at `t` (seconds).
fn instant(v: &Vigil, expr: &str, t: i64) -> (u16, Value) {
    query(v, &format!("query={}&time={t}", enc(expr)))
}

fn query(v: &Vigil, params: &str) -> (u16, Value) {
    get_json(&v.url(&format!("/api/v1/query?{params}")))
}

#[test]
fn instant_and_range_queries_answer_in_prometheus_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    let end = load(&v);
    let t = end / 1000;

    // rate over 2 m: 30/15 s = 2/s and 1/s.
    let (code, j) = instant(&v, "sum by (instance) (rate(http_requests_total[2m]))", t);
    assert_eq!(code, 200, "{j}");
    assert_eq!(j["status"], "success");
    assert_eq!(j["data"]["resultType"], "vector");
    let mut result = j["data"]["result"].as_array().unwrap().clone();
    result.sort_by_key(|r| r["metric"]["instance"].as_str().unwrap().to_string());
    assert_eq!(result[0]["metric"], json!({"instance": "a"}));
    let value = |r: &Value| -> f64 { r["value"][1].as_str().unwrap().parse().unwrap() };
    assert_eq!(result[0]["value"][0], json!(t));
    assert!((value(&result[0]) - 2.0).abs() < 1e-9, "{j}");
    assert!((value(&result[1]) - 1.0).abs() < 1e-9, "{j}");

    // Scalars and strings.
    let (_, j) = query(&v, &format!("query={}&time={t}.5", enc("1 + 2")));
    assert_eq!(
        j["data"],
        json!({"resultType": "scalar", "result": [t as f64 + 0.5, "3"]})
    );
    let (_, j) = instant(&v, "\"hello\"", t);
    assert_eq!(j["data"]["result"], json!([t, "hello"]));

    // A range query: one point per step, labels sorted, the name kept by selectors.
    let url = v.url(&format!(
        "/api/v1/query_range?query={}&start={}&end={t}&step=60",
        enc(r#"http_requests_total{instance="b"}"#),
        t - 120
    ));
    let (code, j) = get_json(&url);
    assert_eq!(code, 200, "{j}");
    assert_eq!(j["data"]["resultType"], "matrix");
    let series = &j["data"]["result"][0];
    assert_eq!(
        series["metric"],
        json!({"__name__": "http_requests_total", "instance": "b", "job": "api"})
    );
    assert_eq!(
        series["values"],
        json!([[t - 120, "480"], [t - 60, "540"], [t, "600"]])
    );

    // POST with a form body answers the same.
    let form = format!("query={}&time={t}", enc("count(http_requests_total)"));
    let (code, body) = post(
        &v.url("/api/v1/query"),
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let j: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["data"]["result"][0]["value"], json!([t, "2"]));

    // Annotations ride along as Prometheus 3 sends them, ending with the
    // position of what they are about.
    let (code, j) = instant(&v, "quantile(2, http_requests_total)", t);
    assert_eq!(code, 200, "{j}");
    assert_eq!(
        j["warnings"],
        json!(["PromQL warning: quantile value should be between 0 and 1, got 2 (1:10)"])
    );
    let gauge: String = (0..8)
        .map(|i| {
            format!(
                "queue_depth{{job=\"api\"}} {} {}\n",
                i % 3,
                end - i * 15_000
            )
        })
        .collect();
    let (code, msg) = post(
        &v.url("/api/v1/import/prometheus"),
        "text/plain",
        gauge.as_bytes(),
    );
    assert_eq!(code, 204, "{msg}");
    let (code, j) = instant(&v, "sum(\n  rate(queue_depth[2m]))", t);
    assert_eq!(code, 200, "{j}");
    assert_eq!(
        j["infos"],
        json!(["PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"queue_depth\" (2:8)"])
    );

    // RFC 3339 times and a duration step.
    let start = vigil_config::civil::rfc3339_seconds(t - 60);
    let url = v.url(&format!(
        "/api/v1/query_range?query={}&start={start}&end={t}&step=30s",
        enc("vector(1)")
    ));
    let (code, j) = get_json(&url);
    assert_eq!(code, 200, "{j}");
    assert_eq!(
        j["data"]["result"][0]["values"].as_array().unwrap().len(),
        3
    );
}

#[test]
fn nocache_reads_blocks_without_the_shared_cache_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    let end = load(&v);
    let t = end / 1000;
    let (code, msg) = post(&v.url("/api/vigil/flush"), "application/json", b"");
    assert_eq!(code, 200, "{msg}");
    let q = enc("sum by (instance) (rate(http_requests_total[2m]))");
    let range = format!("query={q}&start={}&end={t}&step=30", t - 600);
    let get = |path: &str, params: &str| get_json(&v.url(&format!("{path}?{params}")));
    for (path, params) in [
        ("/api/v1/query", format!("query={q}&time={t}")),
        ("/api/v1/query_range", range),
    ] {
        let (code, cold) = get(path, &format!("{params}&nocache=1"));
        assert_eq!(code, 200, "{cold}");
        let (code, warm) = get(path, &params);
        assert_eq!(code, 200, "{warm}");
        assert_eq!(cold["data"], warm["data"], "{path}");
        assert!(
            !cold["data"]["result"].as_array().unwrap().is_empty(),
            "{cold}"
        );
        let (code, bad) = get(path, &format!("{params}&nocache=maybe"));
        assert_eq!(code, 400, "{bad}");
        assert_eq!(bad["errorType"], "bad_data");
        assert!(
            bad["error"].as_str().unwrap().contains("\"nocache\""),
            "{bad}"
        );
    }
}

#[test]
fn query_errors_have_prometheus_types_and_codes() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    let end = load(&v);
    let t = end / 1000;
    let cases: Vec<(String, u16, &str, &str)> = vec![
        (
            format!("query={}", enc("sum(")),
            400,
            "bad_data",
            // Exactly Prometheus's message, position included.
            "invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis",
        ),
        (
            format!("query={}", enc("sum by (a b) (x)")),
            400,
            "bad_data",
            "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\"",
        ),
        ("query=".into(), 400, "bad_data", "no expression found"),
        (
            "query=up&time=yesterday".to_string(),
            400,
            "bad_data",
            "invalid parameter \"time\"",
        ),
        (
            format!(
                "query={}&time={t}",
                enc("http_requests_total + on() group_left http_requests_total")
            ),
            422,
            "execution",
            "many-to-many matching not allowed",
        ),
        (
            format!(
                "query={}&time={t}",
                enc("label_replace(http_requests_total, \"instance\", \"x\", \"\", \"\")")
            ),
            422,
            "execution",
            "same labelset",
        ),
        (
            "query=up&timeout=abc".to_string(),
            400,
            "bad_data",
            "invalid parameter \"timeout\"",
        ),
    ];
    for (params, code, ty, msg) in cases {
        let (c, j) = query(&v, &params);
        assert_eq!(c, code, "{params}: {j}");
        assert_eq!(j["status"], "error", "{params}");
        assert_eq!(j["errorType"], ty, "{params}: {j}");
        assert!(j["error"].as_str().unwrap().contains(msg), "{params}: {j}");
    }
    let range = |params: &str| get_json(&v.url(&format!("/api/v1/query_range?{params}")));
    let (c, j) = range(&format!("query=up&start={}&end={t}&step=0", t - 60));
    assert_eq!((c, j["errorType"].as_str()), (400, Some("bad_data")), "{j}");
    let (c, j) = range(&format!("query=up&start={}&end={t}&step=1", t - 20_000));
    assert_eq!(c, 400, "{j}");
    assert!(
        j["error"].as_str().unwrap().contains("11,000 points"),
        "{j}"
    );
    let (c, j) = range(&format!(
        "query={}&start={}&end={t}&step=15",
        enc("up[5m]"),
        t - 60
    ));
    assert_eq!(c, 400, "{j}");
    assert!(j["error"].as_str().unwrap().contains("range vector"), "{j}");
    let (c, j) = range(&format!("query=up&start={t}&end={}&step=15", t - 60));
    assert_eq!(c, 400, "{j}");
}

#[test]
fn status_and_metadata_endpoints_answer_in_prometheus_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    load(&v);
    let (code, j) = get_json(&v.url("/api/v1/status/buildinfo"));
    assert_eq!(code, 200);
    assert_eq!(j["data"]["version"], env!("CARGO_PKG_VERSION"));
    let (_, j) = get_json(&v.url("/api/v1/status/flags"));
    assert_eq!(j["data"]["query.max-samples"], "50000000");
    assert_eq!(j["data"]["query.lookback-delta"], "300s");
    let (_, j) = get_json(&v.url("/api/v1/status/runtimeinfo"));
    assert!(j["data"]["startTime"].is_string(), "{j}");
    let (_, j) = get_json(&v.url("/api/v1/status/tsdb"));
    assert_eq!(j["data"]["headStats"]["numSeries"], 2, "{j}");
    assert_eq!(
        j["data"]["seriesCountByMetricName"],
        json!([{"name": "http_requests_total", "value": 2}])
    );
    assert_eq!(
        j["data"]["labelValueCountByLabelName"][0],
        json!({"name": "instance", "value": 2})
    );
    let (_, j) = get_json(&v.url("/api/v1/metadata"));
    assert_eq!(j, json!({"status": "success", "data": {}}));
    let (code, _) = get(&v.url("/api/v1/metadata?limit=x"));
    assert_eq!(code, 400);
    let (_, j) = get_json(&v.url("/api/v1/query_exemplars?query=up&start=0&end=1"));
    assert_eq!(j["data"], json!([]));
    let (_, j) = get_json(&v.url(&format!(
        "/api/v1/format_query?query={}",
        enc("sum(rate(x[5m]))by(job)")
    )));
    assert_eq!(j["data"], "sum by (job) (rate(x[5m]))");
    let (_, j) = get_json(&v.url(&format!("/api/v1/parse_query?query={}", enc("up + 1"))));
    assert!(j["data"].is_object(), "{j}");
    let (code, j) = get_json(&v.url(&format!("/api/v1/format_query?query={}", enc("up +"))));
    assert_eq!((code, j["errorType"].as_str()), (400, Some("bad_data")));
}

#[test]
fn query_limits_give_prometheus_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(&cfg, "query:\n  max_samples: 50\n  max_concurrency: 2\n").unwrap();
    let v = Vigil::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let end = load(&v);
    let t = end / 1000;
    // As in Prometheus, the limit is on what is held at once: a range
    // function reads one series at a time (41 samples each, under 50)...
    let (code, j) = instant(&v, "count_over_time(http_requests_total[10m])", t);
    assert_eq!(code, 200, "{j}");
    // ...while a range query holds two series × 41 steps: more than 50.
    let (code, j) = get_json(&v.url(&format!(
        "/api/v1/query_range?query=http_requests_total&start={}&end={t}&step=15",
        t - 600
    )));
    assert_eq!(code, 422, "{j}");
    assert_eq!(j["errorType"], "execution");
    assert!(
        j["error"].as_str().unwrap().contains("too many samples"),
        "{j}"
    );
    // Under the limit it answers.
    let (code, j) = instant(&v, "count_over_time(http_requests_total[2m])", t);
    assert_eq!(code, 200, "{j}");
}

#[test]
fn a_query_past_its_timeout_gives_a_timeout_error() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    let t = load(&v) / 1000;
    // A request timeout that the evaluation cannot meet: 2.6 M subquery steps in 1 ms.
    let (code, j) = query(
        &v,
        &format!(
            "query={}&time={t}&timeout=0.001",
            enc("count_over_time(vector(1)[30d:1s])")
        ),
    );
    assert_eq!(code, 503, "{j}");
    assert_eq!(j["errorType"], "timeout");
}

#[test]
fn queries_beyond_max_concurrency_wait_for_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(&cfg, "query:\n  max_concurrency: 1\n").unwrap();
    let v = Vigil::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let t = load(&v) / 1000;
    let slow = v.url(&format!(
        "/api/v1/query?query={}&time={t}",
        enc("count_over_time(vector(1)[90d:1s])")
    ));
    let first = std::thread::spawn(move || get_json(&slow));
    std::thread::sleep(std::time::Duration::from_millis(20));
    // The slot is taken: this one waits in the queue and gives up after 50 ms.
    let (code, j) = query(&v, &format!("query=1&time={t}&timeout=0.05"));
    assert_eq!(code, 503, "{j}");
    assert!(j["error"].as_str().unwrap().contains("queue"), "{j}");
    let (code, j) = first.join().unwrap();
    assert_eq!(code, 200, "{j}");
    // Once the slot is free, queries run again.
    assert_eq!(query(&v, &format!("query=1&time={t}")).0, 200);
}

#[test]
fn vigil_query_prints_tables_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    let t = load(&v) / 1000;
    let addr = v.base.trim_start_matches("http://").to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["--listen-addr", &addr, "query"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let ts = t.to_string();
    let (ok, out, err) = run(&["max by (instance) (http_requests_total)", "--time", &ts]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("SERIES"), "{out}");
    assert!(
        out.contains("{instance=\"a\"}  1200  ") && out.contains("{instance=\"b\"}  600  "),
        "{out}"
    );

    let start = (t - 60).to_string();
    let (ok, out, err) = run(&[
        "http_requests_total{instance=\"b\"}",
        "--start",
        &start,
        "--end",
        &ts,
        "--step",
        "30s",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("http_requests_total{instance=\"b\", job=\"api\"}"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 4, "{out}");

    let (ok, out, err) = run(&["vector(2)", "-o", "json", "--time", &ts]);
    assert!(ok, "{err}");
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["result"][0]["value"], json!([t, "2"]));

    let (ok, _, err) = run(&["sum(", "--time", &ts]);
    assert!(!ok);
    assert!(err.contains("bad_data"), "{err}");
}
