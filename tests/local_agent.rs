//! All-in-one runs an agent for its own host: within a scrape or two the
//! store holds this machine's node metrics and Vigil's own /metrics,
//! without any configuration.

mod common;

use common::{get_json, Vigil};
use std::time::{Duration, Instant};

fn count(v: &Vigil, q: &str) -> usize {
    let (code, body) = get_json(&v.url(&format!("/api/v1/query?query={}", common::enc(q))));
    assert_eq!(code, 200, "{body}");
    body["data"]["result"].as_array().map_or(0, Vec::len)
}

#[test]
fn all_in_one_collects_its_host_and_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(&cfg, "local_agent:\n  scrape_interval: 1s\n").expect("write config");
    let v = Vigil::start(
        &dir.path().join("data"),
        &["--local-agent", "--config", cfg.to_str().unwrap_or("")],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    // Every series asserted on below (one scrape's series travel in
    // several send shards).
    let all_there = |v: &Vigil| {
        [
            "up{job=\"vigil\"} == 1",
            "up{job=\"node\"} == 1",
            "node_load1{job=\"node\"}",
            "node_cpu_seconds_total{job=\"node\",mode=\"idle\"}",
            "vigil_head_series{job=\"vigil\"}",
        ]
        .iter()
        .all(|q| count(v, q) > 0)
    };
    while !all_there(&v) {
        assert!(
            Instant::now() < deadline,
            "the local agent's targets never came up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(count(&v, "node_load1{job=\"node\"}"), 1);
    assert!(count(&v, "node_cpu_seconds_total{job=\"node\",mode=\"idle\"}") >= 1);
    assert!(count(&v, "vigil_head_series{job=\"vigil\"}") == 1);

    // The agent reports its targets: /api/v1/targets as Prometheus shows it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let targets = loop {
        let (code, body) = get_json(&v.url("/api/v1/targets?state=active"));
        assert_eq!(code, 200, "{body}");
        let t = body["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if t.len() == 2 && t.iter().all(|x| x["health"] == "up") {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "targets never reported up: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let vigil = targets
        .iter()
        .find(|t| t["scrapePool"] == "vigil")
        .expect("the vigil target");
    assert_eq!(vigil["labels"]["job"], "vigil");
    assert_eq!(vigil["scrapeUrl"], format!("{}/metrics", v.base));
    assert_eq!(vigil["scrapeInterval"], "1s");
    assert_eq!(vigil["lastError"], "");
    assert!(vigil["discoveredLabels"]["__address__"].is_string());
    assert!(vigil["lastScrape"]
        .as_str()
        .is_some_and(|s| s.starts_with("20")));
    assert!(vigil["lastScrapeDuration"]
        .as_f64()
        .is_some_and(|d| d > 0.0));
    let (code, body) = get_json(&v.url("/api/v1/targets?state=dropped"));
    assert_eq!(code, 200);
    assert!(body["data"]["activeTargets"].is_null());
    assert_eq!(body["data"]["droppedTargets"], serde_json::json!([]));
    let (code, body) = get_json(&v.url("/api/v1/targets?state=bogus"));
    assert_eq!((code, body["errorType"].as_str()), (400, Some("bad_data")));
    let (code, body) = common::post(
        &v.url("/api/vigil/agent/targets"),
        "application/json",
        b"{\"agent\": 3}",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid targets report"), "{body}");

    // On SIGTERM the agent stops first, while the server still takes its
    // staleness markers: after a restart nothing it wrote looks live.
    let mut v = v;
    assert_eq!(v.terminate(), Some(0));
    drop(v);
    let v = Vigil::start(&dir.path().join("data"), &[]);
    assert_eq!(count(&v, "up"), 0, "up is stale after the stop");
    assert!(
        count(&v, "count_over_time(up[5m])") >= 2,
        "but it was stored"
    );
}

fn log_lines(v: &Vigil, selector: &str) -> usize {
    let (code, body) = get_json(&v.url(&format!(
        "/loki/api/v1/query_range?limit=100&query={}",
        common::enc(selector)
    )));
    assert_eq!(code, 200, "{body}");
    body["data"]["result"].as_array().map_or(0, |streams| {
        streams
            .iter()
            .map(|s| s["values"].as_array().map_or(0, Vec::len))
            .sum()
    })
}

/// A fresh all-in-one shows logs at once: Vigil's own, this host's
/// `/var/log/*.log` and its systemd journal (through journalctl; a fake
/// one here, first on PATH, prints one entry and follows).
#[test]
fn all_in_one_ships_its_own_and_its_hosts_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    // What this host has decides what is checked, before anything runs.
    let var_log_files = std::fs::read_dir("/var/log")
        .map(|d| {
            d.flatten().any(|e| {
                e.file_name().to_string_lossy().ends_with(".log")
                    && e.metadata().is_ok_and(|m| m.is_file() && m.len() > 0)
            })
        })
        .unwrap_or(false);
    let has_journal = ["/run/log/journal", "/var/log/journal"]
        .iter()
        .any(|d| std::path::Path::new(d).is_dir());
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let fake = bin.join("journalctl");
    std::fs::write(
        &fake,
        "#!/bin/sh\nnow=$(date +%s%6N)\necho \"{\\\"__CURSOR\\\":\\\"c1\\\",\\\"__REALTIME_TIMESTAMP\\\":\\\"$now\\\",\\\"MESSAGE\\\":\\\"hello from the journal\\\",\\\"PRIORITY\\\":\\\"4\\\",\\\"_SYSTEMD_UNIT\\\":\\\"fake.service\\\"}\"\nexec sleep 60\n",
    )
    .expect("fake journalctl");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = std::env::var("PATH").unwrap_or_default();
    // The only test in this file that starts a child with this PATH.
    std::env::set_var("PATH", format!("{}:{path}", bin.display()));
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(&cfg, "local_agent:\n  scrape_interval: 1s\n").expect("write config");
    let v = Vigil::start(
        &dir.path().join("data"),
        &["--local-agent", "--config", cfg.to_str().unwrap_or("")],
    );
    std::env::set_var("PATH", path);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut wanted = vec![r#"{job="vigil"}"#];
    if var_log_files {
        wanted.push(r#"{job="varlogs"}"#);
    }
    if has_journal {
        wanted.push(r#"{job="systemd-journal", unit="fake.service", level="warning"} |= "hello from the journal""#);
    }
    for selector in wanted {
        while log_lines(&v, selector) == 0 {
            assert!(Instant::now() < deadline, "no lines for {selector}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}
