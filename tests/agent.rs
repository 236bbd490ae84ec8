//! End to end: `vigil agent` scrapes targets over HTTP (a target served by
//! this test, Vigil's own /metrics, an address nobody listens on) and ships
//! them by remote_write to a Vigil server; the results are read back with
//! PromQL like a user would.

mod common;

use common::{free_port, get_json, wait_for, Vigil};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Serves whatever `body` holds at the moment, as the text format; `{n}`
/// in it becomes the number of the request (1, 2, ...).
fn serve_exposition(body: Arc<Mutex<String>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind target");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut served = 0u64;
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            served += 1;
            let text = body.lock().unwrap().replace("{n}", &served.to_string());
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = conn.write_all(resp.as_bytes());
        }
    });
    port
}

/// The instant query's result as (labels without __name__ → value) pairs.
fn query(v: &Vigil, q: &str) -> Vec<(serde_json::Value, String)> {
    let (code, body) = get_json(&v.url(&format!("/api/v1/query?query={}", common::enc(q))));
    assert_eq!(code, 200, "{q}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            (
                s["metric"].clone(),
                s["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn agent_scrapes_targets_and_ships_to_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Vigil::start(&dir.path().join("data"), &[]);
    let body = Arc::new(Mutex::new(
        "# TYPE demo_requests_total counter\ndemo_requests_total{path=\"/a\"} 10\n# TYPE demo_gauge gauge\ndemo_gauge 3.5\n"
            .to_string(),
    ));
    let target_port = serve_exposition(Arc::clone(&body));
    let dead_port = free_port();
    let server_addr = server.base.trim_start_matches("http://").to_string();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
  external_labels:
    cluster: test
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: ['127.0.0.1:{target_port}']
        labels:
          env: e2e
    metric_relabel_configs:
      - source_labels: [path]
        target_label: route
  - job_name: vigil
    static_configs:
      - targets: ['{server_addr}']
  - job_name: down
    static_configs:
      - targets: ['127.0.0.1:{dead_port}']
remote_write:
  - url: {base}/api/v1/write
    queue_config:
      batch_send_deadline: 200ms
vigil_server:
  url: {base}
  agent_name: e2e-agent
  report_interval: 1s
"#,
        base = server.base
    );
    let cfg_path = dir.path().join("agent.yaml");
    std::fs::write(&cfg_path, config).expect("write config");
    let mut agent = common::start_agent(&cfg_path, &dir.path().join("agent"));

    // Everything asserted on next: one scrape's series travel in several
    // send shards, so they may land a moment apart.
    wait_for("up for all three jobs", Duration::from_secs(30), || {
        query(&server, "up").len() == 3
            && !query(&server, "demo_requests_total").is_empty()
            && !query(&server, "scrape_samples_scraped{job=\"demo\"}").is_empty()
            && !query(&server, "vigil_head_series{job=\"vigil\"}").is_empty()
    });
    let mut up: Vec<(String, String)> = query(&server, "up")
        .into_iter()
        .map(|(m, v)| (m["job"].as_str().unwrap_or("").to_string(), v))
        .collect();
    up.sort();
    assert_eq!(
        up,
        [
            ("demo".to_string(), "1".to_string()),
            ("down".to_string(), "0".to_string()),
            ("vigil".to_string(), "1".to_string())
        ]
    );
    let demo = query(&server, "demo_requests_total");
    assert_eq!(demo.len(), 1);
    let (m, v) = &demo[0];
    assert_eq!(v, "10");
    assert_eq!(m["job"], "demo");
    assert_eq!(m["instance"], format!("127.0.0.1:{target_port}"));
    assert_eq!(m["env"], "e2e");
    assert_eq!(m["cluster"], "test", "external label");
    assert_eq!(m["route"], "/a", "metric relabeling");
    assert_eq!(
        query(&server, "scrape_samples_scraped{job=\"demo\"}")[0].1,
        "2"
    );
    assert!(
        !query(&server, "vigil_head_series{job=\"vigil\"}").is_empty(),
        "Vigil's own metrics are scraped"
    );

    // A series that leaves the exposition is marked stale: gone at once
    // from instant queries, though inside the lookback window.
    *body.lock().unwrap() = "demo_requests_total{path=\"/a\"} 12\n".to_string();
    wait_for("demo_gauge to go stale", Duration::from_secs(15), || {
        query(&server, "demo_gauge").is_empty()
    });
    assert!(!query(&server, "last_over_time(demo_gauge[5m])").is_empty());
    wait_for("the new counter value", Duration::from_secs(15), || {
        query(&server, "demo_requests_total")
            .first()
            .is_some_and(|(_, v)| v == "12")
    });

    // The agent reports its targets; the dead one says why it is down.
    wait_for(
        "the down target in /api/v1/targets",
        Duration::from_secs(15),
        || {
            let (_, body) = get_json(&server.url("/api/v1/targets?scrapePool=down"));
            body["data"]["activeTargets"]
                .as_array()
                .is_some_and(|t| t.len() == 1 && t[0]["health"] == "down")
        },
    );
    let (_, body) = get_json(&server.url("/api/v1/targets?scrapePool=down"));
    let down = &body["data"]["activeTargets"][0];
    assert!(
        down["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("onnection")),
        "{down}"
    );
    assert_eq!(down["labels"]["instance"], format!("127.0.0.1:{dead_port}"));

    // The agent's own metrics and probes.
    assert_eq!(common::get(&format!("{}/-/ready", agent.base)).0, 200);
    let (code, own) = common::get(&format!("{}/metrics", agent.base));
    assert_eq!(code, 200);
    let sent = own
        .lines()
        .find(|l| l.starts_with("prometheus_remote_storage_samples_total{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert!(sent.is_some_and(|n| n > 0.0), "{own}");
    assert!(
        own.contains("vigil_agent_targets{health=\"down\"} 1"),
        "{own}"
    );

    // Stopping the agent marks everything it wrote stale.
    assert_eq!(agent.terminate(), Some(0));
    let (_, body) = get_json(&server.url("/api/v1/targets"));
    assert_eq!(
        body["data"]["activeTargets"],
        serde_json::json!([]),
        "a stopped agent's targets are gone"
    );
    wait_for(
        "series to go stale on stop",
        Duration::from_secs(15),
        || query(&server, "up").is_empty() && query(&server, "demo_requests_total").is_empty(),
    );
}

#[test]
fn agent_refuses_a_bad_config_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg_path = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg_path,
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["agent", "--config"])
        .arg(&cfg_path)
        .output()
        .expect("run agent");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("agent.yaml")
            && err.contains(
                "scrape timeout greater than scrape interval for scrape config with job name \"a\""
            ),
        "{err}"
    );
}

/// The values of the first series of a range-vector instant query.
fn range_values(base: &str, selector: &str) -> Vec<f64> {
    let (code, j) = get_json(&format!(
        "{base}/api/v1/query?query={}",
        common::enc(selector)
    ));
    assert_eq!(code, 200, "{j}");
    j["data"]["result"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p[1].as_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// The server goes away for a while (and the agent restarts meanwhile):
/// every scrape still arrives, in order, once it is back. The target
/// counts its scrapes, so the stored counter must hold 1, 2, ..., N.
#[test]
fn a_server_outage_loses_no_sample() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Vigil::start(&data, &[]);
    let port = server.base.rsplit(':').next().unwrap_or("").to_string();
    let body = Arc::new(Mutex::new(
        "# TYPE demo_scrapes_total counter\ndemo_scrapes_total {n}\n".to_string(),
    ));
    let target_port = serve_exposition(Arc::clone(&body));
    let cfg_path = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg_path,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\nremote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      batch_send_deadline: 100ms\n      max_backoff: 300ms\n",
            server.base
        ),
    )
    .expect("write config");
    let agent_dir = dir.path().join("agent");
    let mut agent = common::start_agent(&cfg_path, &agent_dir);
    wait_for("the first scrapes", Duration::from_secs(20), || {
        !query(&server, "demo_scrapes_total").is_empty()
    });
    // Outage: the server stops; the agent keeps scraping into its queue,
    // and is itself restarted in the middle of it.
    assert_eq!(server.terminate(), Some(0));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(agent.terminate(), Some(0));
    let mut agent = common::start_agent(&cfg_path, &agent_dir);
    std::thread::sleep(Duration::from_secs(3));
    // Back on the same port and data.
    let server = Vigil::start_on(&data, &port, &[]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(agent.terminate(), Some(0));
    let got = range_values(&server.base, "demo_scrapes_total[10m]");
    let n = got.len();
    assert!(n >= 8, "only {n} scrapes stored");
    let want: Vec<f64> = (1..=n).map(|i| i as f64).collect();
    assert_eq!(got, want, "every scrape, in order, none lost");
}

/// The sum of a metric's samples in the agent's own /metrics.
fn agent_metric(agent: &common::Agent, name: &str) -> f64 {
    let (code, text) = common::get(&format!("{}/metrics", agent.base));
    assert_eq!(code, 200, "agent /metrics: {text}");
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Under load (10 000 series a second from four targets, four send
/// shards), the server stops for a while and comes back: every series
/// still holds every scrape from the first, in order, and the backlog
/// drains.
#[test]
fn an_outage_under_load_loses_no_sample() {
    const TARGETS: usize = 4;
    const SERIES: usize = 2500;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Vigil::start(&data, &[]);
    let port = server.base.rsplit(':').next().unwrap_or("").to_string();
    let mut targets = Vec::new();
    for t in 0..TARGETS {
        let mut text = String::from("# TYPE load_series counter\n");
        for i in 0..SERIES {
            text.push_str(&format!(
                "load_series{{series=\"{i}\",shard_test=\"{t}\"}} {{n}}\n"
            ));
        }
        let port = serve_exposition(Arc::new(Mutex::new(text)));
        targets.push(format!("'127.0.0.1:{port}'"));
    }
    let cfg_path = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg_path,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: load\n    static_configs:\n      - targets: [{}]\nremote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      max_shards: 4\n      max_samples_per_send: 2000\n      batch_send_deadline: 100ms\n      max_backoff: 500ms\n",
            targets.join(", "),
            server.base
        ),
    )
    .expect("write config");
    let mut agent = common::start_agent(&cfg_path, &dir.path().join("agent"));
    let all = (TARGETS * SERIES).to_string();
    wait_for("every series", Duration::from_secs(30), || {
        query(&server, "count(load_series)")
            .first()
            .is_some_and(|(_, v)| *v == all)
    });
    assert_eq!(
        agent_metric(&agent, "prometheus_remote_storage_shards"),
        4.0
    );
    assert_eq!(server.terminate(), Some(0));
    std::thread::sleep(Duration::from_secs(8));
    let backlog = agent_metric(&agent, "vigil_agent_pending_samples");
    assert!(
        backlog >= (5 * TARGETS * SERIES) as f64,
        "only {backlog} samples queued after 8 s of outage"
    );
    assert!(agent_metric(&agent, "prometheus_remote_storage_samples_retried_total") > 0.0);
    let server = Vigil::start_on(&data, &port, &[]);
    wait_for("the backlog to drain", Duration::from_secs(60), || {
        agent_metric(&agent, "vigil_agent_pending_samples") < (2 * TARGETS * SERIES) as f64
    });
    assert_eq!(
        agent_metric(&agent, "prometheus_remote_storage_samples_failed_total"),
        0.0
    );
    assert_eq!(
        agent_metric(&agent, "vigil_agent_samples_dropped_backlog_total"),
        0.0
    );
    assert_eq!(agent.terminate(), Some(0));
    assert_eq!(
        query(&server, "count(count_over_time(load_series[10m]))"),
        vec![(serde_json::json!({}), all.clone())]
    );
    // Every series holds 1, 2, ..., N: as many samples as its last value,
    // starting at the first scrape.
    let gaps = query(
        &server,
        "count_over_time(load_series[10m]) != max_over_time(load_series[10m])",
    );
    assert!(
        gaps.is_empty(),
        "series with lost samples: {:?}",
        &gaps[..gaps.len().min(5)]
    );
    let late = query(&server, "min_over_time(load_series[10m]) != 1");
    assert!(
        late.is_empty(),
        "series missing their first scrapes: {:?}",
        &late[..late.len().min(5)]
    );
    let scrapes = query(&server, "min(count_over_time(load_series[10m]))");
    let n: f64 = scrapes[0].1.parse().unwrap_or(0.0);
    // The first scrapes, eight seconds of outage, and the drain after.
    assert!(n >= 8.0, "only {n} scrapes per series stored");
}

/// The agent ships to the real receivers users have: Prometheus's
/// remote-write receiver and VictoriaMetrics. Both must store every scrape.
#[test]
fn agent_ships_to_prometheus_and_victoria_metrics() {
    let (Some(prom_bin), Some(vm_bin)) = (
        common::peer_binary("prometheus"),
        common::peer_binary("victoria-metrics"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let prom_port = free_port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        "global:\n  scrape_interval: 1h\n",
    )
    .expect("write prometheus.yml");
    let _prom = common::Prometheus {
        child: Command::new(prom_bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
        base: format!("http://127.0.0.1:{prom_port}"),
    };
    let vm_port = free_port();
    let _vm = common::Prometheus {
        child: Command::new(vm_bin)
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("vm").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{vm_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start victoria-metrics"),
        base: format!("http://127.0.0.1:{vm_port}"),
    };
    for base in [&_prom.base, &_vm.base] {
        let ready = format!("{base}/-/ready");
        let health = format!("{base}/health");
        wait_for(&format!("{base} ready"), Duration::from_secs(60), || {
            matches!(common::try_get(&ready), Ok((200, _)))
                || matches!(common::try_get(&health), Ok((200, _)))
        });
    }
    let body = Arc::new(Mutex::new(
        "# TYPE demo_scrapes_total counter\ndemo_scrapes_total{kind=\"e2e\"} {n}\n".to_string(),
    ));
    let target_port = serve_exposition(Arc::clone(&body));
    let cfg_path = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg_path,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\nremote_write:\n  - url: http://127.0.0.1:{prom_port}/api/v1/write\n    queue_config: {{batch_send_deadline: 100ms}}\n  - url: http://127.0.0.1:{vm_port}/api/v1/write\n    queue_config: {{batch_send_deadline: 100ms}}\n"
        ),
    )
    .expect("write config");
    let mut agent = common::start_agent(&cfg_path, &dir.path().join("agent"));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(agent.terminate(), Some(0));

    let prom_values = || {
        range_values(
            &format!("http://127.0.0.1:{prom_port}"),
            "demo_scrapes_total{job=\"demo\",kind=\"e2e\"}[10m]",
        )
    };
    let vm_values = || -> Vec<f64> {
        let url = format!(
            "http://127.0.0.1:{vm_port}/api/v1/export?match[]={}",
            common::enc("demo_scrapes_total{job=\"demo\"}")
        );
        let (_, text) = common::get(&url);
        let mut out = Vec::new();
        for line in text.lines() {
            let j: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            for v in j["values"].as_array().cloned().unwrap_or_default() {
                // VictoriaMetrics keeps staleness markers as NaN (null here).
                if let Some(x) = v.as_f64().filter(|x| !x.is_nan()) {
                    out.push(x);
                }
            }
        }
        out
    };
    let mut prom = Vec::new();
    let mut vm = Vec::new();
    wait_for(
        "both receivers to hold the scrapes",
        Duration::from_secs(30),
        || {
            prom = prom_values();
            vm = vm_values();
            prom.len() >= 3 && vm == prom
        },
    );
    let want: Vec<f64> = (1..=prom.len()).map(|i| i as f64).collect();
    assert_eq!(prom, want, "Prometheus holds every scrape");
}

/// Targets from file_sd_configs come and go with the file: a new target is
/// scraped within seconds, a removed one is marked stale and leaves the
/// targets list.
#[test]
fn file_sd_targets_follow_their_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Vigil::start(&dir.path().join("data"), &[]);
    let body = Arc::new(Mutex::new("fsd_metric 7\n".to_string()));
    let target_port = serve_exposition(Arc::clone(&body));
    let sd_dir = dir.path().join("sd");
    std::fs::create_dir_all(&sd_dir).expect("sd dir");
    let cfg_path = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg_path,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fsd\n    file_sd_configs:\n      - files: ['{}/*.json']\n        refresh_interval: 1m\nremote_write:\n  - url: {base}/api/v1/write\n    queue_config: {{batch_send_deadline: 100ms}}\nvigil_server:\n  url: {base}\n  report_interval: 1s\n",
            sd_dir.display(),
            base = server.base
        ),
    )
    .expect("write config");
    let _agent = common::start_agent(&cfg_path, &dir.path().join("agent"));
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(
        sd_dir.join("targets.json"),
        format!(r#"[{{"targets": ["127.0.0.1:{target_port}"], "labels": {{"team": "a"}}}}]"#),
    )
    .expect("write sd file");
    wait_for(
        "the file_sd target's samples",
        Duration::from_secs(20),
        || query(&server, "fsd_metric{team=\"a\",job=\"fsd\"}").len() == 1,
    );
    // Reports go out every second: wait for the one that lists it.
    let mut active = Vec::new();
    wait_for(
        "the file_sd target in /api/v1/targets",
        Duration::from_secs(10),
        || {
            let (_, t) = get_json(&server.url("/api/v1/targets"));
            active = t["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            active.len() == 1
        },
    );
    assert!(active[0]["discoveredLabels"]["__meta_filepath"]
        .as_str()
        .is_some_and(|p| p.ends_with("targets.json")));
    // The file empties: the target stops and its series go stale.
    std::fs::write(sd_dir.join("targets.json"), "[]").expect("empty sd file");
    wait_for(
        "the removed target to go stale",
        Duration::from_secs(20),
        || query(&server, "fsd_metric").is_empty(),
    );
    wait_for(
        "the removed target to leave /api/v1/targets",
        Duration::from_secs(10),
        || {
            let (_, t) = get_json(&server.url("/api/v1/targets"));
            t["data"]["activeTargets"]
                .as_array()
                .is_some_and(Vec::is_empty)
        },
    );
}
