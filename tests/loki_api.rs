//! Loki's API end to end: pushes in every encoding, queries of every
//! result shape, metadata endpoints, errors, and durability of
//! acknowledged pushes across SIGKILL.

mod common;

use collector::labels::Labels;
use collector::logs::push::{encode_push_body, PushEntry, PushStream};
use common::*;
use serde_json::Value;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SEC: i64 = 1_000_000_000;

fn now_ns() -> i64 {
    now_ms() * 1_000_000
}

fn protobuf_push(v: &Vigil, labels: &[(&str, &str)], entries: &[(i64, String)]) -> (u16, String) {
    let body = encode_push_body(&[PushStream {
        labels: Labels::from_pairs(labels.iter().copied()),
        entries: entries
            .iter()
            .map(|(t, l)| PushEntry {
                time_ns: *t,
                line: l.clone(),
            })
            .collect(),
    }]);
    post(&v.url("/loki/api/v1/push"), "application/x-protobuf", &body)
}

fn query_range(v: &Vigil, q: &str, extra: &str) -> (u16, Value) {
    get_json(&v.url(&format!("/loki/api/v1/query_range?query={}{extra}", enc(q))))
}

/// Every (stream labels, line) of a streams answer, in answer order.
fn lines(body: &Value) -> Vec<(String, String)> {
    assert_eq!(body["data"]["resultType"], "streams", "{body}");
    let mut out = Vec::new();
    for s in body["data"]["result"].as_array().unwrap() {
        for v in s["values"].as_array().unwrap() {
            out.push((s["stream"].to_string(), v[1].as_str().unwrap().to_string()));
        }
    }
    out
}

#[test]
fn pushes_queries_metadata_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(dir.path(), &[]);
    let t0 = (now_ns() / SEC - 300) * SEC;
    let a: Vec<(i64, String)> = (0..20)
        .map(|i| {
            (
                t0 + i * SEC,
                format!(
                    "level={} msg=\"request {i}\" took={}ms",
                    if i % 4 == 0 { "error" } else { "info" },
                    i * 10
                ),
            )
        })
        .collect();
    assert_eq!(
        protobuf_push(&v, &[("app", "api"), ("namespace", "prod")], &a).0,
        204
    );
    let json = format!(
        r#"{{"streams":[{{"stream":{{"app":"web","namespace":"prod"}},"values":[["{}","GET /index.html 200"],["{}","GET /missing 404"]]}}]}}"#,
        t0,
        t0 + SEC
    );
    assert_eq!(
        post(
            &v.url("/loki/api/v1/push"),
            "application/json",
            json.as_bytes()
        )
        .0,
        204
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let gz_json = format!(
        r#"{{"streams":[{{"stream":{{"app":"batch"}},"values":[["{}","job done"]]}}]}}"#,
        t0 + 2 * SEC
    );
    gz.write_all(gz_json.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let r = ureq::post(&v.url("/loki/api/v1/push"))
        .set("Content-Type", "application/json")
        .set("Content-Encoding", "gzip")
        .send_bytes(&gz)
        .unwrap();
    assert_eq!(r.status(), 204);

    let range = format!("&start={}&end={}", t0, t0 + 60 * SEC);
    // Newest first, limited; oldest first forward.
    let (code, body) = query_range(
        &v,
        r#"{app="api"} |= "level=error""#,
        &format!("{range}&limit=2"),
    );
    assert_eq!(code, 200, "{body}");
    let got: Vec<String> = lines(&body).into_iter().map(|(_, l)| l).collect();
    assert_eq!(
        got,
        [
            "level=error msg=\"request 16\" took=160ms",
            "level=error msg=\"request 12\" took=120ms"
        ]
    );
    let (_, body) = query_range(
        &v,
        r#"{namespace="prod"} != "level=""#,
        &format!("{range}&direction=forward"),
    );
    let got = lines(&body);
    assert_eq!(got.len(), 2);
    assert!(got[0].0.contains(r#""app":"web""#), "{got:?}");
    let stats = &body["data"]["stats"]["summary"];
    assert!(
        stats["totalLinesProcessed"].as_u64().unwrap() >= 2,
        "{body}"
    );
    // A parser's labels become stream labels; line_format rewrites lines.
    let (_, body) = query_range(
        &v,
        r#"{app="api"} | logfmt | took > 150ms | line_format "{{.msg}}""#,
        &range,
    );
    let got: Vec<String> = lines(&body).into_iter().map(|(_, l)| l).collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got.iter().all(|l| l.starts_with("request 1")), "{got:?}");

    // Metric queries: a matrix over steps, a vector at one time.
    let (code, body) = query_range(
        &v,
        r#"sum by (level) (count_over_time({app="api"} | logfmt [1m]))"#,
        &format!("&start={}&end={}&step=60s", t0 + 60 * SEC, t0 + 120 * SEC),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "matrix");
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{body}");
    assert_eq!(result[0]["metric"]["level"], "error");
    // (t0, t0 + 60s]: entries 1..=19, four of them errors.
    assert_eq!(result[0]["values"][0][1], "4");
    assert_eq!(result[1]["values"][0][1], "15");
    assert_eq!(
        result[0]["values"][0][0],
        (t0 / SEC + 60),
        "times in seconds"
    );
    let (code, body) = get_json(&v.url(&format!(
        "/loki/api/v1/query?query={}&time={}",
        enc(r#"sum(count_over_time({namespace="prod"}[10m]))"#),
        t0 + 100 * SEC
    )));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "vector");
    assert_eq!(body["data"]["result"][0]["value"][1], "22");

    // Metadata.
    let (_, body) = get_json(&v.url(&format!("/loki/api/v1/labels?start={t0}")));
    assert_eq!(body["data"], serde_json::json!(["app", "namespace"]));
    let (_, body) = get_json(&v.url(&format!("/loki/api/v1/label/app/values?start={t0}")));
    assert_eq!(body["data"], serde_json::json!(["api", "batch", "web"]));
    let (_, body) = get_json(&v.url(&format!(
        "/loki/api/v1/series?start={t0}&match[]={}",
        enc(r#"{app=~"a.*|w.*"}"#)
    )));
    assert_eq!(body["data"].as_array().unwrap().len(), 2, "{body}");

    let (_, body) = get_json(&v.url(&format!(
        "/loki/api/v1/index/stats?start={t0}&query={}",
        enc(r#"{namespace="prod"}"#)
    )));
    assert_eq!(body["streams"], 2, "{body}");
    assert_eq!(body["entries"], 22, "{body}");
    assert!(body["bytes"].as_u64().unwrap() > 22 * 10, "{body}");
    assert!(body["chunks"].as_u64().unwrap() >= 2, "{body}");

    // Errors name what is wrong.
    let (code, msg) = post(
        &v.url("/loki/api/v1/push"),
        "application/json",
        b"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"x\",\"y\"]]}]}",
    );
    assert_eq!(code, 400);
    assert!(
        msg.contains("entry #0") && msg.contains("Unix nanoseconds"),
        "{msg}"
    );
    let (code, msg) = post(
        &v.url("/loki/api/v1/push"),
        "application/x-protobuf",
        b"\xff\xff\xff",
    );
    assert_eq!(code, 400);
    assert!(msg.contains("snappy"), "{msg}");
    let (code, msg) = try_get(&v.url(&format!(
        "/loki/api/v1/query_range?query={}",
        enc(r#"{app="api"} |= error"#)
    )))
    .unwrap();
    assert_eq!(code, 400);
    assert!(msg.starts_with("parse error at line 1, col 16:"), "{msg}");
    let (code, msg) = try_get(&v.url(&format!(
        "/loki/api/v1/query?query={}",
        enc(r#"{app="api"}"#)
    )))
    .unwrap();
    assert_eq!(code, 400);
    assert!(msg.contains("not supported as an instant query"), "{msg}");
    let (code, msg) = try_get(&v.url(&format!(
        "/loki/api/v1/query_range?query={}&limit=0",
        enc(r#"{app="api"}"#)
    )))
    .unwrap();
    assert_eq!(code, 400, "{msg}");
    let old = format!(
        r#"{{"streams":[{{"stream":{{"app":"old"}},"values":[["1000","ancient"],["{}","fresh"]]}}]}}"#,
        now_ns()
    );
    let (code, msg) = post(
        &v.url("/loki/api/v1/push"),
        "application/json",
        old.as_bytes(),
    );
    assert_eq!(code, 400);
    assert!(
        msg.contains("timestamp too old") && msg.contains("total ignored: 1 out of 2"),
        "{msg}"
    );
    let (_, body) = query_range(
        &v,
        r#"{app="old"}"#,
        &format!("&start={}", now_ns() - 60 * SEC),
    );
    assert_eq!(
        lines(&body).len(),
        1,
        "the valid entry of a partly refused push is stored"
    );
    let (_, metrics) = get(&v.url("/metrics"));
    assert!(
        metrics.contains(
            "vigil_logs_discarded_problems_total{reason=\"greater_than_max_sample_age\"} 1"
        ),
        "{metrics}"
    );
    vigil_logs_prints_like_logcli(&v, t0);
    tail_streams_new_entries(&v, t0);
}

fn tail_streams_new_entries(v: &Vigil, t0: i64) {
    let url = format!(
        "{}/loki/api/v1/tail?start={t0}&query={}",
        v.url("").replacen("http://", "ws://", 1),
        enc(r#"{app="web"} != "missing""#)
    );
    let (mut ws, _) = tungstenite::connect(url.as_str()).expect("tail WebSocket");
    let mut next = || -> Value {
        loop {
            match ws.read().expect("tail message") {
                tungstenite::Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                tungstenite::Message::Close(c) => panic!("tail closed: {c:?}"),
                _ => {}
            }
        }
    };
    let first = next();
    assert_eq!(first["streams"][0]["stream"]["app"], "web", "{first}");
    assert_eq!(
        first["streams"][0]["values"].as_array().unwrap().len(),
        1,
        "{first}"
    );
    assert_eq!(first["streams"][0]["values"][0][1], "GET /index.html 200");
    let push = format!(
        r#"{{"streams":[{{"stream":{{"app":"web","namespace":"prod"}},"values":[["{}","GET /missing 404"],["{}","GET /new 200"]]}}]}}"#,
        now_ns(),
        now_ns() + 1
    );
    assert_eq!(
        post(
            &v.url("/loki/api/v1/push"),
            "application/json",
            push.as_bytes()
        )
        .0,
        204
    );
    let second = next();
    let values = second["streams"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 1, "filtered and only new lines: {second}");
    assert_eq!(values[0][1], "GET /new 200");
    // A bad query is refused before the upgrade.
    let bad = format!(
        "{}/loki/api/v1/tail?query={}",
        v.url("").replacen("http://", "ws://", 1),
        enc("sum(x)")
    );
    assert!(tungstenite::connect(bad.as_str()).is_err());
}

fn vigil_logs(v: &Vigil, args: &[&str]) -> std::process::Output {
    let addr = v
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["logs", "--listen-addr", &addr])
        .args(args)
        .output()
        .unwrap()
}

fn vigil_logs_prints_like_logcli(v: &Vigil, t0: i64) {
    let from = t0.to_string();
    let out = vigil_logs(
        v,
        &[
            r#"{app="api"} |= "level=error""#,
            "--from",
            &from,
            "--limit",
            "2",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].contains(r#"{app="api", namespace="prod"} level=error msg="request 16""#),
        "{text}"
    );
    assert!(rows[0].starts_with("20"), "an RFC 3339 time first: {text}");
    let out = vigil_logs(
        v,
        &[r#"{app="web"}"#, "--from", &from, "--forward", "-o", "raw"],
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "GET /index.html 200\nGET /missing 404\n"
    );
    let out = vigil_logs(
        v,
        &[
            r#"sum(count_over_time({app="web"}[10m]))"#,
            "--from",
            &from,
            "--step",
            "1m",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8(out.stdout).unwrap().contains("  2"),
        "a table of points"
    );
    let out = vigil_logs(v, &[r#"{app="web"} |= nope"#]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("parse error at line 1"),
        "{out:?}"
    );
    // --follow prints lines pushed after it started.
    let addr = v
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "logs",
            "--listen-addr",
            &addr,
            r#"{app="follow"}"#,
            "-f",
            "-o",
            "raw",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let line = format!(
        r#"{{"streams":[{{"stream":{{"app":"follow"}},"values":[["{}","followed line"]]}}]}}"#,
        now_ns()
    );
    assert_eq!(
        post(
            &v.url("/loki/api/v1/push"),
            "application/json",
            line.as_bytes()
        )
        .0,
        204
    );
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(l.unwrap_or_default());
        }
    });
    let got = rx.recv_timeout(Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(got.ok().as_deref(), Some("followed line"));
}

#[test]
fn acknowledged_pushes_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let mut v = Vigil::start_on(dir.path(), &port, &[]);
    let base = v.url("");
    let t0 = (now_ns() / SEC - 600) * SEC;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (acked, stop, base) = (acked.clone(), stop.clone(), base.clone());
            std::thread::spawn(move || {
                for b in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let lines: Vec<String> = (0..20)
                        .map(|i| format!("writer {w} batch {b} line {i}"))
                        .collect();
                    let body = encode_push_body(&[PushStream {
                        labels: Labels::from_pairs([("writer", if w == 0 { "w0" } else { "w1" })]),
                        entries: lines
                            .iter()
                            .enumerate()
                            .map(|(i, l)| PushEntry {
                                time_ns: t0 + b * 1_000_000 + i as i64,
                                line: l.clone(),
                            })
                            .collect(),
                    }]);
                    match try_post(
                        &format!("{base}/loki/api/v1/push"),
                        "application/x-protobuf",
                        &body,
                    ) {
                        Ok((204, _)) => acked.lock().unwrap().extend(lines),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    wait_for("some acknowledged pushes", Duration::from_secs(30), || {
        acked.lock().unwrap().len() >= 4000
    });
    v.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let mut acked = acked.lock().unwrap().clone();
    acked.sort();
    let v = Vigil::start_on(dir.path(), &port, &[]);
    let got = read_all(&v, t0);
    // Everything acknowledged, nothing twice; pushes in flight at the kill
    // may have landed without their acknowledgement.
    let mut dedup = got.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), got.len(), "no line twice");
    let missing: Vec<&String> = acked
        .iter()
        .filter(|l| got.binary_search(l).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged lines lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    assert!(
        got.len() - acked.len() <= 2 * 20,
        "at most the in-flight pushes extra"
    );
    // The same after the index has committed them, and after a restart.
    let (code, body) = post(&v.url("/api/vigil/flush"), "application/json", b"");
    assert_eq!(code, 200, "{body}");
    assert_eq!(read_all(&v, t0), got);
    drop(v);
    let v = Vigil::start_on(dir.path(), &port, &[]);
    assert_eq!(read_all(&v, t0), got);
}

/// Every line of both writers' streams, sorted, read in forward pages.
fn read_all(v: &Vigil, t0: i64) -> Vec<String> {
    let mut got = Vec::new();
    for w in ["w0", "w1"] {
        // Forward pages of at most 5000 entries.
        let mut start = t0;
        loop {
            let (code, body) = query_range(
                v,
                &format!(r#"{{writer="{w}"}}"#),
                &format!(
                    "&start={start}&end={}&limit=5000&direction=forward",
                    t0 + 3600 * SEC
                ),
            );
            assert_eq!(code, 200, "{body}");
            let page = body["data"]["result"][0]["values"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let Some(last) = page.last() else { break };
            let last_ts: i64 = last[0].as_str().unwrap().parse().unwrap();
            let full = page.len() == 5000;
            for e in &page {
                let ts: i64 = e[0].as_str().unwrap().parse().unwrap();
                // The next page starts after this one's last time.
                if !full || ts < last_ts {
                    got.push(e[1].as_str().unwrap().to_string());
                }
            }
            if !full {
                break;
            }
            start = last_ts;
        }
    }
    got.sort();
    got
}
