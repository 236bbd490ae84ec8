//! The HTTP APIs end to end: write with remote_write and import, read with
//! the Prometheus metadata APIs and export, against the real binary.

mod common;

use common::*;
use serde_json::json;

#[test]
fn import_then_metadata_apis_answer_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    let t = now_ms() - 60_000;
    let body = format!(
        "# TYPE up gauge\nup{{job=\"api\",instance=\"a:1\"}} 1 {t}\nup{{job=\"db\",instance=\"b:1\"}} 0 {t}\nnode_load1{{instance=\"a:1\"}} 0.25 {t}\n"
    );
    let (code, msg) = post(
        &v.url("/api/v1/import/prometheus"),
        "text/plain",
        body.as_bytes(),
    );
    assert_eq!(code, 204, "{msg}");

    let (code, j) = get_json(&v.url(&format!("/api/v1/series?match[]={}", enc("up"))));
    assert_eq!(code, 200);
    assert_eq!(
        j,
        json!({"status": "success", "data": [
            {"__name__": "up", "instance": "a:1", "job": "api"},
            {"__name__": "up", "instance": "b:1", "job": "db"},
        ]})
    );
    let (_, j) = get_json(&v.url("/api/v1/labels"));
    assert_eq!(j["data"], json!(["__name__", "instance", "job"]));
    let (_, j) = get_json(&v.url(&format!("/api/v1/labels?match[]={}", enc("node_load1"))));
    assert_eq!(j["data"], json!(["__name__", "instance"]));
    let (_, j) = get_json(&v.url("/api/v1/label/__name__/values"));
    assert_eq!(j["data"], json!(["node_load1", "up"]));
    let (_, j) = get_json(&v.url(&format!(
        "/api/v1/label/job/values?match[]={}",
        enc(r#"up{job=~"d.*"}"#)
    )));
    assert_eq!(j["data"], json!(["db"]));
    // `or` alternatives and several match[] are unions.
    let (_, j) = get_json(&v.url(&format!(
        "/api/v1/label/instance/values?match[]={}&match[]={}",
        enc(r#"{job="api"}"#),
        enc("node_load1")
    )));
    assert_eq!(j["data"], json!(["a:1"]));

    // Time restriction: nothing before the samples.
    let before = (t - 3_600_000) as f64 / 1000.0;
    let (_, j) = get_json(&v.url(&format!(
        "/api/v1/series?match[]=up&start={}&end={}",
        before,
        before + 60.0
    )));
    assert_eq!(j["data"], json!([]));
    let (_, j) = get_json(&v.url(&format!(
        "/api/v1/label/job/values?start={}&end={}",
        before,
        before + 60.0
    )));
    assert_eq!(j["data"], json!([]));

    // limit truncates and warns, as Prometheus does.
    let (_, j) = get_json(&v.url("/api/v1/label/__name__/values?limit=1"));
    assert_eq!(j["data"], json!(["node_load1"]));
    assert_eq!(j["warnings"], json!(["results truncated due to limit"]));

    // POST with a form body works like GET.
    let form = format!("match[]={}", enc(r#"up{job="db"}"#));
    let (code, body) = post(
        &v.url("/api/v1/series"),
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    );
    assert_eq!(code, 200);
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        j["data"],
        json!([{"__name__": "up", "instance": "b:1", "job": "db"}])
    );
}

#[test]
fn bad_query_parameters_get_prometheus_error_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    for (path, needle) in [
        (
            "/api/v1/series".to_string(),
            "no match[] parameter provided",
        ),
        (
            format!("/api/v1/series?match[]={}", enc("up{")),
            "invalid series selector",
        ),
        (
            format!("/api/v1/series?match[]={}", enc(r#"{job=~".*"}"#)),
            "at least one non-empty matcher",
        ),
        (
            format!("/api/v1/series?match[]={}", enc(r#"{job=~"("}"#)),
            "invalid series selector",
        ),
        (
            "/api/v1/labels?start=yesterday".to_string(),
            "invalid parameter \"start\"",
        ),
        (
            "/api/v1/labels?start=10&end=5".to_string(),
            "end timestamp must not be before start",
        ),
        (
            "/api/v1/labels?limit=-1".to_string(),
            "invalid parameter \"limit\"",
        ),
        ("/api/v1/label/a-b/values".to_string(), "invalid label name"),
    ] {
        let (code, j) = get_json(&v.url(&path));
        assert_eq!(code, 400, "{path}: {j}");
        assert_eq!(j["status"], "error", "{path}");
        assert_eq!(j["errorType"], "bad_data", "{path}");
        let msg = j["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{path}: {msg}");
    }
}

fn metric_value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

#[test]
fn bad_writes_are_refused_with_names_and_counted_without_harm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(
        &cfg,
        "limits:\n  max_labels_per_series: 4\n  max_label_value_length: 16\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let v = Vigil::start(&data, &["--config", cfg.to_str().unwrap()]);
    let t = now_ms();
    let good = TestSeries {
        labels: vec![("__name__", "good"), ("job", "x")],
        samples: vec![(t, 1.0)],
    };
    assert_eq!(remote_write(&v, &[good]).0, 204);

    // Undecodable bodies.
    let (code, msg) = post(
        &v.url("/api/v1/write"),
        "application/x-protobuf",
        b"\xff\xff\xff\xff\xffnot snappy",
    );
    assert_eq!(code, 400);
    assert!(msg.contains("snappy"), "{msg}");
    let mut truncated = remote_write_body(&[TestSeries {
        labels: vec![("__name__", "m")],
        samples: vec![(t, 1.0)],
    }]);
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&truncated)
        .unwrap();
    truncated = snap::raw::Encoder::new()
        .compress_vec(&raw[..raw.len() - 4])
        .unwrap();
    let (code, msg) = post(
        &v.url("/api/v1/write"),
        "application/x-protobuf",
        &truncated,
    );
    assert_eq!(code, 400);
    assert!(msg.contains("protobuf"), "{msg}");

    // Invalid series: each refusal names its series; the valid one is stored.
    let long = "v".repeat(17);
    let cases = vec![
        TestSeries {
            labels: vec![("__name__", "0bad")],
            samples: vec![(t, 1.0)],
        },
        TestSeries {
            labels: vec![("job", "noname")],
            samples: vec![(t, 1.0)],
        },
        TestSeries {
            labels: vec![("__name__", "dup"), ("a", "1"), ("a", "2")],
            samples: vec![(t, 1.0)],
        },
        TestSeries {
            labels: vec![
                ("__name__", "many"),
                ("a", "1"),
                ("b", "1"),
                ("c", "1"),
                ("d", "1"),
            ],
            samples: vec![(t, 1.0)],
        },
        TestSeries {
            labels: vec![("__name__", "longv"), ("a", &long)],
            samples: vec![(t, 1.0)],
        },
        TestSeries {
            labels: vec![("__name__", "badlabel"), ("a.b", "1")],
            samples: vec![(t, 1.0)],
        },
        TestSeries {
            labels: vec![("__name__", "fine")],
            samples: vec![(t, 2.0)],
        },
    ];
    let (code, msg) = remote_write(&v, &cases);
    assert_eq!(code, 400, "{msg}");
    for needle in [
        "\"0bad\"",
        "job=\"noname\"",
        "duplicate label name \"a\"",
        "5 labels exceed",
        "17 bytes",
        "\"a.b\"",
        "1 samples stored",
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in {msg}");
    }

    // Out of order and conflicting duplicates are refused; exact repeats are fine.
    let ooo = TestSeries {
        labels: vec![("__name__", "good"), ("job", "x")],
        samples: vec![(t - 1000, 5.0), (t, 1.0), (t, 7.0)],
    };
    let (code, msg) = remote_write(&v, &[ooo]);
    assert_eq!(code, 400);
    assert!(
        msg.contains("out-of-order sample") && msg.contains(r#"good{job="x"}"#),
        "{msg}"
    );

    let exported = export(&v, r#"{__name__=~"good|fine"}"#);
    assert_eq!(exported.len(), 2);
    assert_eq!(exported[1].1, vec![t], "good keeps exactly its one sample");

    let (_, metrics) = get(&v.url("/metrics"));
    for (reason, n) in [
        ("invalid_metric_name", 1.0),
        ("missing_metric_name", 1.0),
        ("duplicate_label_name", 1.0),
        ("too_many_labels", 1.0),
        ("label_value_too_long", 1.0),
        ("invalid_label_name", 1.0),
        ("out_of_order", 1.0),
        ("duplicate_timestamp", 1.0),
    ] {
        let series = format!("vigil_head_samples_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(metric_value(&metrics, &series), n, "{series}\n{metrics}");
    }
    assert_eq!(
        metric_value(
            &metrics,
            "vigil_write_malformed_requests_total{protocol=\"remote_write\"}"
        ),
        2.0
    );
    assert_eq!(
        metric_value(&metrics, "vigil_head_duplicate_samples_ignored_total"),
        1.0
    );
}

#[test]
fn backfill_of_old_samples_into_a_live_store_is_queryable_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    let now = now_ms();
    let live = |t: i64, val: f64| TestSeries {
        labels: vec![("__name__", "temp"), ("room", "a")],
        samples: vec![(t, val)],
    };
    assert_eq!(remote_write(&v, &[live(now - 30_000, 20.0)]).0, 204);

    // Ten days, five hours and one minute ago: older than the head's live data.
    let days = 86_400_000;
    let old = [now - 10 * days, now - 5 * 3_600_000, now - 60_000];
    let body = format!(
        "temp{{room=\"a\"}} 1.5 {}\ntemp{{room=\"a\"}} NaN {}\ntemp{{room=\"a\"}} +Inf {}\ntemp{{room=\"b\"}} -Inf {}\n",
        old[0], old[1], old[2], old[0]
    );
    let (code, msg) = post(
        &v.url("/api/v1/import/prometheus"),
        "text/plain",
        body.as_bytes(),
    );
    assert_eq!(code, 204, "{msg}");
    // Live ingestion goes on undisturbed.
    assert_eq!(remote_write(&v, &[live(now, 21.0)]).0, 204);

    let got = export(&v, "temp");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, json!({"__name__": "temp", "room": "a"}));
    assert_eq!(got[0].1, vec![old[0], old[1], old[2], now - 30_000, now]);
    assert_eq!(
        got[0].2,
        vec![
            json!(1.5),
            json!("NaN"),
            json!("+Inf"),
            json!(20.0),
            json!(21.0)
        ]
    );
    assert_eq!(got[1].2, vec![json!("-Inf")]);

    // Older than retention (15 days by default) is refused and named.
    let body = format!("temp{{room=\"a\"}} 1 {}\n", now - 20 * days);
    let (code, msg) = post(
        &v.url("/api/v1/import/prometheus"),
        "text/plain",
        body.as_bytes(),
    );
    assert_eq!(code, 400);
    assert!(msg.contains("older than retention"), "{msg}");
}

#[test]
fn import_errors_name_the_line_and_keep_the_good_lines() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    let t = now_ms();
    let body = format!("ok 1 {t}\nbroken{{a=\"1\" 2 {t}\nok2 nope {t}\n");
    let (code, msg) = post(
        &v.url("/api/v1/import/prometheus"),
        "text/plain",
        body.as_bytes(),
    );
    assert_eq!(code, 400);
    assert!(msg.contains("line 2, column"), "{msg}");
    assert!(
        msg.contains("line 3, column 5: invalid value \"nope\""),
        "{msg}"
    );
    assert_eq!(export(&v, "ok")[0].1, vec![t]);
}

#[test]
fn sigterm_shuts_down_cleanly_and_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = Vigil::start(dir.path(), &[]);
    let t = now_ms();
    let s = TestSeries {
        labels: vec![("__name__", "kept")],
        samples: vec![(t, 42.0)],
    };
    assert_eq!(remote_write(&v, &[s]).0, 204);
    assert_eq!(v.terminate(), Some(0));
    let v = Vigil::start(dir.path(), &[]);
    let got = export(&v, "kept");
    assert_eq!(got[0].2, vec![json!(42.0)]);
}

#[test]
fn server_mode_reads_its_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = dir.path().join("from-config");
    let cfg = dir.path().join("server.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen_addr: 127.0.0.1:{port}\ndata_dir: {}\n",
            data.display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["server", "--config", cfg.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while try_get(&format!("{base}/-/ready")).map(|r| r.0) != Ok(200) {
        assert!(
            std::time::Instant::now() < deadline,
            "server from config not ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        data.join("wal").is_dir(),
        "data dir from the config is used"
    );
    let _ = child.kill();
    let _ = child.wait();

    // A bad config file is refused with the field and line named.
    std::fs::write(&cfg, "storage:\n  retention_tme: 1d\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["server", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field `retention_tme`") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn help_documents_every_flag() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen-addr",
        "--data-dir",
        "--config",
        "--log-level",
        "--no-local-agent",
        "server",
        "agent",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn dashboard_assets_and_health_endpoints_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    let (code, html) = get(&v.url("/"));
    assert_eq!(code, 200);
    assert!(html.contains("app.js"));
    let resp = ureq::get(&v.url("/app_bg.wasm")).call().unwrap();
    assert_eq!(resp.header("content-type"), Some("application/wasm"));
    let mut wasm = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut wasm).unwrap();
    assert_eq!(&wasm[..4], b"\0asm");
    assert_eq!(get(&v.url("/-/healthy")).0, 200);
    let (_, j) = get_json(&v.url("/api/vigil/status"));
    assert_eq!(j["head_series"], 0);
    assert!(j["git_commit"].is_string());
}

#[test]
fn status_reports_what_the_head_holds() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    // Inside one 2 h block window (chunks are also cut at its edges), and
    // in the past.
    let t0 = (now_ms() - 600_000).div_euclid(7_200_000) * 7_200_000 + 1000;
    // 250 samples: two full chunks and an open one.
    let samples: Vec<(i64, f64)> = (0..250).map(|i| (t0 + i * 1000, i as f64 * 0.25)).collect();
    let (code, body) = remote_write(
        &v,
        &[TestSeries {
            labels: vec![("__name__", "cpu_seconds_total"), ("cpu", "0")],
            samples,
        }],
    );
    assert_eq!(code, 204, "{body}");
    let (_, j) = get_json(&v.url("/api/vigil/status"));
    assert_eq!(j["head_series"], 1);
    assert_eq!(j["head_samples"], 250);
    assert_eq!(j["head_chunks"], 3);
    let bytes = j["head_chunk_bytes"].as_u64().unwrap();
    // Regular timestamps and quarter steps: about a byte a sample, not 16.
    assert!(bytes > 250 && bytes < 400, "{bytes} bytes for 250 samples");
}
