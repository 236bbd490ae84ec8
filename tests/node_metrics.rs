//! The agent's built-in node metrics against the real node_exporter
//! (Debian's `prometheus-node-exporter`) on the same machine: both scraped
//! by one agent into one Vigil server, then compared family by family —
//! the same metric names and label sets, values within a tolerance that
//! allows for the moment between the two scrapes (a unit error is off by
//! a factor of 100 or more, far outside it).

mod common;

use common::{free_port, get_json, Vigil};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FAMILIES: &str = "node_(load1|load5|load15|cpu_seconds_total|cpu_guest_seconds_total|memory_.+|network_(receive|transmit)_.+_total|network_(up|mtu_bytes|info|carrier|carrier_.+_total|speed_bytes|flags|iface_.+|dormant|device_id|address_assign_type|name_assign_type|net_dev_group|protocol_type|transmit_queue_length)|boot_time_seconds|context_switches_total|forks_total|intr_total|procs_running|procs_blocked|time_seconds|uname_info|pressure_.+|filesystem_.+|disk_.+)";

/// (name, labels without job and instance) → value, for one job.
fn series_of(v: &Vigil, job: &str) -> BTreeMap<String, f64> {
    let q = format!("{{__name__=~\"{FAMILIES}\",job=\"{job}\"}}");
    let (code, body) = get_json(&v.url(&format!("/api/v1/query?query={}", common::enc(&q))));
    assert_eq!(code, 200, "{body}");
    let mut out = BTreeMap::new();
    for s in body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let mut labels: Vec<String> = s["metric"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| *k != "job" && *k != "instance" && *k != "__name__")
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        labels.sort();
        let name = s["metric"]["__name__"].as_str().unwrap_or("").to_string();
        let value: f64 = s["value"][1]
            .as_str()
            .and_then(|x| x.parse().ok())
            .unwrap_or(f64::NAN);
        out.insert(format!("{name}{{{}}}", labels.join(",")), value);
    }
    out
}

/// How far apart two scrapes a moment apart may be, beyond 10 %.
fn slack(key: &str) -> f64 {
    if key.starts_with("node_memory_") {
        256.0 * 1024.0 * 1024.0
    } else if key.starts_with("node_network_") || key.starts_with("node_filesystem_") {
        10e6
    } else if key.starts_with("node_load") || key.starts_with("node_procs_") {
        4.0
    } else if key.starts_with("node_disk_") {
        // bytes move fast while the tests run; counts and seconds less so
        if key.contains("bytes") {
            512e6
        } else {
            5000.0
        }
    } else {
        // cpu seconds, pressure seconds, time, counters of events
        50.0
    }
}

#[test]
fn node_metrics_match_node_exporter() {
    let Some(ne_bin) = common::peer_binary("prometheus-node-exporter") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Vigil::start(&dir.path().join("data"), &[]);
    let ne_port = free_port();
    let _ne = common::Prometheus {
        child: Command::new(ne_bin)
            .arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
            // Debian patches this default; Vigil follows upstream's.
            .arg("--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node exporter"),
        base: format!("http://127.0.0.1:{ne_port}"),
    };
    let cfg_path = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg_path,
        format!(
            "global:\n  scrape_interval: 1s\nnode:\n  job_name: vigil-node\nscrape_configs:\n  - job_name: node-exporter\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\nremote_write:\n  - url: {}/api/v1/write\n    queue_config: {{batch_send_deadline: 100ms}}\n",
            server.base
        ),
    )
    .expect("write config");
    let agent = common::start_agent(&cfg_path, &dir.path().join("agent"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let (ours, theirs) = loop {
        let ours = series_of(&server, "vigil-node");
        let theirs = series_of(&server, "node-exporter");
        // Both there, and complete: a scrape's series travel in several
        // send shards, so wait until a second later shows no more.
        if !ours.is_empty() && !theirs.is_empty() {
            std::thread::sleep(Duration::from_secs(1));
            let (ours2, theirs2) = (
                series_of(&server, "vigil-node"),
                series_of(&server, "node-exporter"),
            );
            if ours2.len() == ours.len() && theirs2.len() == theirs.len() {
                break (ours2, theirs2);
            }
        }
        assert!(Instant::now() < deadline, "no node metrics from both jobs");
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(agent);

    let only_ours: Vec<&String> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let only_theirs: Vec<&String> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "series differ:\n only Vigil: {only_ours:#?}\n only node_exporter: {only_theirs:#?}"
    );
    for (k, a) in &ours {
        let b = theirs[k];
        let tol = 0.1 * a.abs().max(b.abs()) + slack(k);
        assert!((a - b).abs() <= tol, "{k}: Vigil {a}, node_exporter {b}");
    }
    eprintln!("compared {} series with node_exporter", ours.len());
    assert!(ours.len() > 50, "only {} series compared", ours.len());
}
