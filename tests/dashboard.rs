//! The embedded dashboard, rendered by a real browser (headless Chromium):
//! the WASM app loads, fetches the store status and shows it.

mod common;

use common::*;
use std::process::Command;

fn render(url: &str, profile: &std::path::Path) -> String {
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
fn dashboard_shows_live_store_stats_in_a_browser() {
    if peer_binary("chromium").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(&dir.path().join("data"), &[]);
    let t = now_ms();
    let names = ["a", "b", "c"];
    let series: Vec<TestSeries> = names
        .iter()
        .map(|n| TestSeries {
            labels: vec![("__name__", "dash"), ("n", n)],
            samples: vec![(t, 1.0), (t + 1000, 2.0)],
        })
        .collect();
    assert_eq!(remote_write(&v, &series).0, 204);

    let dom = render(&v.url("/"), &dir.path().join("profile"));
    assert!(
        dom.contains("<h1>Vigil</h1>"),
        "the app did not render:\n{dom}"
    );
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
    assert!(dom.contains("<canvas id=\"ingest-chart\""));
}
