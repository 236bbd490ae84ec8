//! End to end: the agent tails a fabricated node's pod logs (the kubelet's
//! layout, CRI lines, a long line in pieces, a rotation) and pushes them to
//! a Loki-compatible receiver (a fake that decodes the protobuf push and,
//! like Loki, drops exact duplicates). Killed with SIGKILL and restarted,
//! it delivers every line exactly once. And into Vigil itself: a server
//! stopped while the agent tails (and a copytruncate meanwhile) gets every
//! line once it is back.

mod common;

use common::wait_for;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// (labels, time, line) as received, duplicates dropped as Loki drops them.
type Received = Arc<Mutex<BTreeSet<(String, i64, String)>>>;

fn varint(b: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&byte, rest)) = b.split_first() else {
            break;
        };
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            break;
        }
    }
    v
}

/// (field, value bytes or varint) of one protobuf message.
fn fields(mut b: &[u8]) -> Vec<(u64, Vec<u8>, u64)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        match key & 7 {
            0 => out.push((key >> 3, Vec::new(), varint(&mut b))),
            2 => {
                let len = varint(&mut b) as usize;
                let len = len.min(b.len());
                out.push((key >> 3, b[..len].to_vec(), 0));
                b = &b[len..];
            }
            _ => break,
        }
    }
    out
}

fn decode_push(body: &[u8], into: &Received) {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .expect("snappy body");
    let mut got = into.lock().unwrap();
    for (_, stream, _) in fields(&raw).into_iter().filter(|f| f.0 == 1) {
        let parts = fields(&stream);
        let labels = parts
            .iter()
            .find(|f| f.0 == 1)
            .map(|f| String::from_utf8_lossy(&f.1).to_string())
            .unwrap_or_default();
        for (_, entry, _) in parts.iter().filter(|f| f.0 == 2) {
            let e = fields(entry);
            let ts = e
                .iter()
                .find(|f| f.0 == 1)
                .map(|f| fields(&f.1))
                .unwrap_or_default();
            let secs = ts.iter().find(|f| f.0 == 1).map_or(0, |f| f.2 as i64);
            let nanos = ts.iter().find(|f| f.0 == 2).map_or(0, |f| f.2 as i64);
            let line = e
                .iter()
                .find(|f| f.0 == 2)
                .map(|f| String::from_utf8_lossy(&f.1).to_string());
            got.insert((
                labels.clone(),
                secs * 1_000_000_000 + nanos,
                line.unwrap_or_default(),
            ));
        }
    }
}

/// A receiver at `/loki/api/v1/push`; returns its port.
fn fake_loki(received: Received) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let received = Arc::clone(&received);
            std::thread::spawn(move || {
                let mut out = conn.try_clone().expect("clone");
                let mut reader = BufReader::new(conn);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
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
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0u8; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let ok = line.starts_with("POST /loki/api/v1/push ");
                    if ok {
                        decode_push(&body, &received);
                    }
                    let status = if ok {
                        "204 No Content"
                    } else {
                        "404 Not Found"
                    };
                    let _ = out.write_all(
                        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                    );
                }
            });
        }
    });
    port
}

fn append(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    f.write_all(text.as_bytes()).expect("write log");
}

/// CRI lines `line <from>` .. `line <to - 1>` on stdout.
fn cri_lines(from: usize, to: usize) -> String {
    (from..to)
        .map(|i| {
            format!(
                "2026-12-03T10:{:02}:{:02}.{i:09}Z stdout F line {i}\n",
                i / 60 % 60,
                i % 60
            )
        })
        .collect()
}

fn lines_of(received: &Received) -> Vec<String> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, l)| l.clone())
        .collect()
}

#[test]
fn pod_logs_arrive_exactly_once_across_a_kill_and_a_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pods = dir.path().join("pods");
    let log = pods.join("shop_web-0_3f2a9c1e-7b4d/app/0.log");
    append(&log, &cri_lines(0, 100));
    // A long line in two pieces.
    append(
        &log,
        "2026-12-03T11:00:00Z stderr P Exception in \n2026-12-03T11:00:00Z stderr F thread main\n",
    );
    let received: Received = Arc::default();
    let port = fake_loki(Arc::clone(&received));
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "logs:\n  pods_dir: {}\n  node_name: node-1\n  poll_interval: 200ms\n  push:\n    url: http://127.0.0.1:{port}/loki/api/v1/push\n    queue_config: {{batch_send_deadline: 100ms, max_backoff: 300ms}}\n",
            pods.display()
        ),
    )
    .expect("write config");
    let data = dir.path().join("agent");
    let mut agent = common::start_agent(&cfg, &data);
    wait_for("the first lines", Duration::from_secs(20), || {
        lines_of(&received).len() == 101
    });
    let got = received.lock().unwrap().clone();
    let (labels, _, _) = got.iter().find(|(_, _, l)| l == "line 0").expect("line 0");
    assert_eq!(
        labels,
        &format!(
            "{{container=\"app\", filename=\"{}\", namespace=\"shop\", node=\"node-1\", pod=\"web-0\", stream=\"stdout\"}}",
            log.display()
        )
    );
    assert!(lines_of(&received).contains(&"Exception in thread main".to_string()));

    // SIGKILL, more lines meanwhile, a restart: nothing lost or repeated
    // (a batch sent just before the kill may be sent again; the receiver
    // drops exact duplicates, as Loki does).
    let _ = agent.child.kill();
    let _ = agent.child.wait();
    append(&log, &cri_lines(100, 200));
    let mut agent = common::start_agent(&cfg, &data);
    wait_for(
        "the lines written while it was down",
        Duration::from_secs(20),
        || lines_of(&received).len() == 201,
    );

    // Rotation by rename while running: the old file's last lines and the
    // new file's all arrive.
    append(&log, &cri_lines(200, 250));
    std::fs::rename(&log, log.with_extension("log.20261203-110000")).expect("rotate");
    append(&log, &cri_lines(250, 300));
    wait_for(
        "the rotated and the new file",
        Duration::from_secs(20),
        || lines_of(&received).len() == 301,
    );
    // The agent's own account of it.
    let (code, text) = common::get(&format!("{}/metrics", agent.base));
    assert_eq!(code, 200);
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert!(
        value("vigil_agent_log_entries_total").is_some_and(|n| n >= 200.0),
        "{text}"
    );
    assert!(
        value("vigil_agent_log_files").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(agent.terminate(), Some(0));
    let mut want: Vec<String> = (0..300).map(|i| format!("line {i}")).collect();
    want.push("Exception in thread main".into());
    want.sort();
    let mut got = lines_of(&received);
    got.sort();
    assert_eq!(got, want);
}

/// CRI lines `<tag> <from>` .. `<tag> <to - 1>`, stamped a second apart
/// ending about now (the server refuses lines older than a week).
fn recent_cri_lines(tag: &str, from: usize, to: usize) -> String {
    let base = chrono::Utc::now() - chrono::Duration::seconds(600);
    (from..to)
        .map(|i| {
            let t = base + chrono::Duration::milliseconds(i as i64 * 10);
            format!(
                "{} stdout F {tag} {i}\n",
                t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            )
        })
        .collect()
}

/// Every line Vigil holds for the pod, sorted (forward pages of 5000).
fn lines_in_vigil(v: &common::Vigil) -> Vec<String> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let url = v.url(&format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}&limit=5000&direction=forward",
        common::enc(r#"{namespace="shop", pod="web-0"}"#),
        now - 3_600_000_000_000,
        now + 60_000_000_000
    ));
    let Ok((200, body)) = common::try_get(&url) else {
        return Vec::new();
    };
    let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let mut out: Vec<String> = body["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v[1].as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

#[test]
fn pod_logs_reach_vigil_across_a_server_outage_and_a_copytruncate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pods = dir.path().join("pods");
    let log = pods.join("shop_web-0_3f2a9c1e-7b4d/app/0.log");
    append(&log, &recent_cri_lines("line", 0, 100));
    let port = common::free_port().to_string();
    let server_dir = dir.path().join("server");
    let mut v = common::Vigil::start_on(&server_dir, &port, &[]);
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "logs:\n  pods_dir: {}\n  node_name: node-1\n  poll_interval: 200ms\n  push:\n    url: http://127.0.0.1:{port}/loki/api/v1/push\n    queue_config: {{batch_send_deadline: 100ms, max_backoff: 300ms}}\n",
            pods.display()
        ),
    )
    .expect("write config");
    let mut agent = common::start_agent(&cfg, &dir.path().join("agent"));
    wait_for("the first lines in Vigil", Duration::from_secs(20), || {
        lines_in_vigil(&v).len() == 100
    });

    // The server goes away; the agent keeps tailing (and the file is
    // rotated by copytruncate meanwhile); all of it arrives once the
    // server is back.
    assert_eq!(v.terminate(), Some(0));
    append(&log, &recent_cri_lines("line", 100, 200));
    std::thread::sleep(Duration::from_millis(800));
    std::fs::copy(&log, log.with_extension("log.1")).expect("copy");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .expect("open")
        .set_len(0)
        .expect("truncate");
    append(&log, &recent_cri_lines("after", 0, 50));
    std::thread::sleep(Duration::from_secs(1));
    let v = common::Vigil::start_on(&server_dir, &port, &[]);
    let mut want: Vec<String> = (0..200)
        .map(|i| format!("line {i}"))
        .chain((0..50).map(|i| format!("after {i}")))
        .collect();
    want.sort();
    wait_for(
        "every line after the outage",
        Duration::from_secs(30),
        || lines_in_vigil(&v).len() >= want.len(),
    );
    assert_eq!(
        lines_in_vigil(&v),
        want,
        "every line once, in the server's own store"
    );
    assert_eq!(agent.terminate(), Some(0));
}
