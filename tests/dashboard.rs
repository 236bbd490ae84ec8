//! The embedded dashboard in a real browser (Debian's headless Chromium):
//! Vigil runs all-in-one with this machine's node metrics, generated pod
//! metrics, a 50-series workload and a firing alert; a person's checks are
//! scripted in tests/browser/dashboard.mjs (playwright-core driving
//! /usr/bin/chromium) and their screenshots kept.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn render(url: &str, profile: &Path) -> String {
    let out = Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn status_page_shows_live_store_stats() {
    if peer_binary("chromium").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(&dir.path().join("data"), &[]);
    let t = now_ms();
    let series: Vec<TestSeries> = ["a", "b", "c"]
        .iter()
        .map(|n| TestSeries {
            labels: vec![("__name__", "dash"), ("n", n)],
            samples: vec![(t, 1.0), (t + 1000, 2.0)],
        })
        .collect();
    assert_eq!(remote_write(&v, &series).0, 204);

    let dom = render(&v.url("/#/status"), &dir.path().join("profile"));
    assert!(dom.contains("Vigil"), "the app did not render:\n{dom}");
    let card = |id: &str| -> String {
        let start = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no card {id}:\n{dom}"));
        let rest = &dom[start..];
        let v = rest.find("card-value\">").expect("card value") + "card-value\">".len();
        rest[v..v + rest[v..].find('<').expect("end of value")].to_string()
    };
    assert_eq!(card("head-series"), "3");
    assert_eq!(card("samples-ingested"), "6");
    assert_eq!(card("samples-rejected"), "0");
    assert!(card("bytes-on-disk").ends_with('B'));
    assert!(dom.contains("id=\"build-info\""), "{dom}");
    assert!(dom.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn dashboard_assets_are_served_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(&dir.path().join("data"), &[]);
    for (path, ty) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app_bg.wasm", "application/wasm"),
    ] {
        let plain = ureq::get(&v.url(path)).call().expect("GET");
        assert!(plain.header("content-encoding").is_none(), "{path}");
        let mut plain_body = Vec::new();
        std::io::Read::read_to_end(&mut plain.into_reader(), &mut plain_body).expect("body");
        let plain_len = plain_body.len();
        let gz = ureq::get(&v.url(path))
            .set("Accept-Encoding", "gzip")
            .call()
            .expect("GET gzip");
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{path}");
        assert!(gz.content_type().starts_with(ty), "{path}");
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut gz.into_reader(), &mut body).expect("gzip body");
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
            .expect("valid gzip");
        assert_eq!(out.len(), plain_len, "{path}");
        assert!(body.len() < plain_len, "{path}");
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Pods' cAdvisor series for the last 10 minutes and 50 series of an hour
/// at 15 s (1 000 points each on a 1 h graph), in the exposition format.
fn workload(now_ms: i64) -> String {
    let mut out = String::new();
    for i in 0..50 {
        for k in 0..=240 {
            let t = now_ms - 3_600_000 + k * 15_000;
            out.push_str(&format!(
                "perf_series{{i=\"{i}\"}} {} {t}\n",
                i * 10 + k % 20
            ));
        }
    }
    for (ns, pod, cores) in [
        ("default", "web-1", 0.5),
        ("default", "web-2", 0.2),
        ("kube-system", "coredns-x", 0.05),
    ] {
        for k in 0..=40 {
            let t = now_ms - 600_000 + k * 15_000;
            let l = format!("namespace=\"{ns}\",pod=\"{pod}\",container=\"app\"");
            out.push_str(&format!(
                "container_cpu_usage_seconds_total{{{l}}} {} {t}\n",
                cores * (k * 15) as f64
            ));
            out.push_str(&format!(
                "container_memory_working_set_bytes{{{l}}} {} {t}\n",
                (cores * 1e9) as i64
            ));
        }
    }
    // One etcd member: leader, a WAL fsync histogram, DB size.
    let member = "instance=\"etcd-0:2379\",job=\"etcd\"";
    for k in 0..=40i64 {
        let t = now_ms - 600_000 + k * 15_000;
        for (le, per_step) in [
            ("0.001", 5),
            ("0.01", 25),
            ("0.1", 28),
            ("1", 29),
            ("+Inf", 29),
        ] {
            out.push_str(&format!(
                "etcd_disk_wal_fsync_duration_seconds_bucket{{{member},le=\"{le}\"}} {} {t}\n",
                per_step * k
            ));
        }
        out.push_str(&format!("etcd_server_has_leader{{{member}}} 1 {t}\n"));
        out.push_str(&format!(
            "etcd_server_leader_changes_seen_total{{{member}}} 1 {t}\n"
        ));
        out.push_str(&format!(
            "etcd_mvcc_db_total_size_in_bytes{{{member}}} 52428800 {t}\n"
        ));
        out.push_str(&format!(
            "etcd_server_quota_backend_bytes{{{member}}} 2147483648 {t}\n"
        ));
    }
    out
}

fn screenshots_dir() -> PathBuf {
    std::env::var_os("VIGIL_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"))
}

#[test]
fn every_page_works_in_a_real_browser() {
    if peer_binary("chromium").is_none() {
        return;
    }
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "playwright-core is required in CI; .ci/run installs it"
        );
        eprintln!("skipping: npm ci --prefix tests/browser first");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vigil.yml"),
        "global:\n  evaluation_interval: 1s\nlocal_agent:\n  scrape_interval: 1s\n\
         rule_files: [rules.yml]\nalerting:\n  notifier_config_file: am.yml\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: dashboard\n    rules:\n\
         \x20     - alert: DashboardTestAlert\n        expr: vector(1)\n\
         \x20       labels: {severity: warning}\n        annotations: {summary: Something to look at}\n\
         \x20     - record: job:up:count\n        expr: count by (job) (up)\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("am.yml"),
        "route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n",
    )
    .unwrap();
    let cfg = dir.path().join("vigil.yml");
    let v = Vigil::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap(), "--local-agent"],
    );
    let (code, body) = post(
        &v.url("/api/v1/import/prometheus"),
        "text/plain",
        workload(now_ms()).as_bytes(),
    );
    assert_eq!(code, 204, "{body}");
    let ns = now_ms() * 1_000_000;
    let logs = format!(
        r#"{{"streams":[{{"stream":{{"namespace":"default","pod":"web-1","container":"app"}},"values":[["{}","GET /health 200"],["{}","ERROR database timeout"]]}}]}}"#,
        ns - 2_000_000_000,
        ns - 1_000_000_000
    );
    let (code, body) = post(
        &v.url("/loki/api/v1/push"),
        "application/json",
        logs.as_bytes(),
    );
    assert_eq!(code, 204, "{body}");
    // The overview's node row needs two scrapes of the local agent for a rate.
    let host = hostname();
    wait_for("node CPU of this host", Duration::from_secs(30), || {
        let q = enc(r#"count(rate(node_cpu_seconds_total{mode="idle"}[2m]))"#);
        get_json(&v.url(&format!("/api/v1/query?query={q}")))
            .1
            .pointer("/data/result/0")
            .is_some()
    });

    // ... and a few scrapes of Vigil's own /metrics for the ingest rate.
    wait_for("five scrapes of vigil", Duration::from_secs(30), || {
        let q = enc(r#"count_over_time(vigil_head_series{job="vigil"}[1m]) >= 5"#);
        get_json(&v.url(&format!("/api/v1/query?query={q}")))
            .1
            .pointer("/data/result/0")
            .is_some()
    });

    let shots = screenshots_dir();
    let out = Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .arg(&v.base)
        .arg(&shots)
        .arg(&host)
        .current_dir(&browser_dir)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser checks failed:\n{stderr}\n{stdout}"
    );
    let figures: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("figures JSON");
    println!("browser figures: {figures}");
    let median = figures["render_ms_median"].as_f64().expect("render figure");
    assert!(
        median < 50.0,
        "a 50 x 1000 graph must draw in under 50 ms, took {median} ms"
    );
    for f in [
        "overview.png",
        "explore.png",
        "alerts.png",
        "overview-dark.png",
        "dashboard-pods.png",
        "dashboard-node.png",
        "logs.png",
        "dashboard-etcd.png",
    ] {
        assert!(shots.join(f).is_file(), "screenshot {f}");
    }

    // What the browser created is on the server.
    let (_, silences) = get_json(&v.url("/api/v2/silences"));
    let silenced = silences.as_array().expect("silences").iter().any(|s| {
        s["status"]["state"] == "active"
            && s["comment"] == "silenced by the browser test"
            && s["matchers"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["value"] == "DashboardTestAlert"))
    });
    assert!(silenced, "{silences}");
    let (code, team) = get_json(&v.url("/api/vigil/dashboards/team-a"));
    assert_eq!(code, 200, "{team}");
    assert_eq!(team["dashboard"]["panels"][0]["title"], "Perf 7");
    let (code, imported) = get_json(&v.url("/api/vigil/dashboards/community"));
    assert_eq!(code, 200, "{imported}");
    assert_eq!(imported["dashboard"]["variables"][0]["name"], "series");
}
