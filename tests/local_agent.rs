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
    while count(&v, "up{job=\"vigil\"} == 1") == 0 || count(&v, "up{job=\"node\"} == 1") == 0 {
        assert!(
            Instant::now() < deadline,
            "the local agent's targets never came up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(count(&v, "node_load1{job=\"node\"}"), 1);
    assert!(count(&v, "node_cpu_seconds_total{job=\"node\",mode=\"idle\"}") >= 1);
    assert!(count(&v, "vigil_head_series{job=\"vigil\"}") == 1);
}
