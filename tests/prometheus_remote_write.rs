//! Real Prometheus (the Debian package) scrapes itself and remote-writes to
//! Vigil; what Vigil stores must match what Prometheus stored.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn start_prometheus(bin: &std::path::Path, dir: &std::path::Path, vigil: &Vigil) -> Prometheus {
    let port = free_port();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n\
             remote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      batch_send_deadline: 200ms\n      min_backoff: 50ms\n      max_backoff: 500ms\n    metadata_config:\n      send_interval: 1s\n",
            vigil.base
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prom-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    Prometheus {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// Prometheus's own samples of a series via a range-vector instant query.
fn prometheus_samples(p: &Prometheus, selector: &str, at_s: f64) -> Vec<(i64, String)> {
    let q = enc(&format!("{selector}[10m]"));
    let (code, j) = get_json(&format!("{}/api/v1/query?query={q}&time={at_s}", p.base));
    assert_eq!(code, 200, "{j}");
    j["data"]["result"][0]["values"]
        .as_array()
        .map(|vals| {
            vals.iter()
                .map(|pair| {
                    let t = (pair[0].as_f64().unwrap() * 1000.0).round() as i64;
                    (t, pair[1].as_str().unwrap().to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn prometheus_remote_writes_into_vigil() {
    let Some(bin) = peer_binary("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let vigil = Vigil::start(&dir.path().join("vigil"), &[]);
    let prom = start_prometheus(&bin, dir.path(), &vigil);

    // Wait until Vigil holds several scrapes of `up`.
    let deadline = Instant::now() + Duration::from_secs(60);
    let up = r#"up{job="prometheus"}"#;
    loop {
        let got = export(&vigil, up);
        if got.first().is_some_and(|(_, ts, _)| ts.len() >= 4) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Vigil did not receive 4 scrapes of up from Prometheus in 60 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // Every sample Vigil has for `up` and for a busy counter is the one Prometheus has.
    for selector in [up, r#"prometheus_http_requests_total{handler="/metrics"}"#] {
        let ours = export(&vigil, selector);
        assert_eq!(ours.len(), 1, "{selector}: {ours:?}");
        let (_, ts, vals) = &ours[0];
        let last = *ts.last().unwrap();
        let theirs = prometheus_samples(&prom, selector, last as f64 / 1000.0);
        let theirs: std::collections::BTreeMap<i64, String> = theirs.into_iter().collect();
        assert!(ts.len() >= 2);
        for (t, v) in ts.iter().zip(vals) {
            let v = v.as_f64().map(|f| f.to_string()).unwrap_or_default();
            assert_eq!(
                theirs.get(t),
                Some(&v),
                "{selector} at {t}: Prometheus has {:?}",
                theirs.get(t)
            );
        }
    }

    // The series Vigil knows for the job are series Prometheus knows, labels and all.
    let m = enc(
        r#"{job="prometheus",__name__=~"prometheus_build_info|up|prometheus_tsdb_head_series"}"#,
    );
    let (_, ours) = get_json(&vigil.url(&format!("/api/v1/series?match[]={m}")));
    let (_, theirs) = get_json(&format!("{}/api/v1/series?match[]={m}", prom.base));
    assert_eq!(ours["data"], theirs["data"]);

    // Metric metadata arrives with the writes and reads back as Prometheus
    // serves its own.
    let families = [
        "prometheus_http_requests_total",
        "prometheus_build_info",
        "prometheus_http_request_duration_seconds",
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    for family in families {
        let url = format!("/api/v1/metadata?metric={family}");
        let ours = loop {
            let (code, j) = get_json(&vigil.url(&url));
            assert_eq!(code, 200, "{j}");
            if j["data"].get(family).is_some() {
                break j;
            }
            assert!(
                Instant::now() < deadline,
                "no metadata for {family} from Prometheus in 60 s: {j}"
            );
            std::thread::sleep(Duration::from_millis(250));
        };
        let (_, theirs) = get_json(&format!("{}{url}", prom.base));
        assert_eq!(ours["data"], theirs["data"], "{family}");
    }

    // Nothing was refused.
    let (_, metrics) = get(&vigil.url("/metrics"));
    assert!(
        !metrics.contains("outcome=\"partial\"") && !metrics.contains("outcome=\"bad_request\""),
        "{metrics}"
    );
}
