//! Persisted blocks are ordinary Parquet: pyarrow alone reads them, and what
//! it reads is exactly what the API returns.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;

fn pyarrow_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pyarrow"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!("pyarrow is required in CI; scripts/test.sh installs it");
    }
    ok
}

#[test]
fn blocks_read_with_pyarrow_match_the_export_api() {
    if !pyarrow_available() {
        eprintln!("skipping: pyarrow not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let v = Vigil::start(&data, &[]);
    // Three days ago, 6 h of 15 s scrapes from two hosts, plus odd values.
    let start = (now_ms() - 3 * 86_400_000) / 1000 * 1000;
    let mut body = String::new();
    for k in 0..(6 * 240) {
        let t = start + k * 15_000;
        for host in ["a", "b"] {
            let jitter = if host == "b" { 3 } else { 0 };
            body.push_str(&format!(
                "node_cpu_seconds_total{{host=\"{host}\",cpu=\"0\"}} {} {}\n",
                k as f64 * 1.25,
                t + jitter
            ));
            body.push_str(&format!(
                "node_load1{{host=\"{host}\"}} {} {}\n",
                (k % 50) as f64 / 100.0,
                t + jitter
            ));
            body.push_str(&format!(
                "node_ratio{{host=\"{host}\"}} {} {}\n",
                1.0 / (k as f64 + 3.0),
                t + jitter
            ));
            // KiB-valued (a common factor), with labels named like the block's own columns.
            body.push_str(&format!(
                "node_memory_free_bytes{{host=\"{host}\",scale=\"x\",__scale=\"y\"}} {} {}\n",
                8_589_934_592 + (k % 7) * 4096,
                t + jitter
            ));
        }
    }
    body.push_str(&format!("odd{{kind=\"special\"}} NaN {start}\nodd{{kind=\"special\"}} +Inf {}\nodd{{kind=\"special\"}} -0 {}\n", start + 1, start + 2));
    let (code, msg) = post(
        &v.url("/api/v1/import/prometheus"),
        "text/plain",
        body.as_bytes(),
    );
    assert_eq!(code, 204, "{msg}");

    let (code, flushed) = post(&v.url("/api/vigil/flush"), "application/json", b"");
    assert_eq!(code, 200, "{flushed}");
    let (_, status) = get_json(&v.url("/api/vigil/status"));
    assert!(status["blocks"].as_u64().unwrap() >= 1, "{status}");
    assert_eq!(
        status["head_series"], 0,
        "the head was persisted whole: {status}"
    );

    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/scripts/read_blocks.py"
        ))
        .arg(&data)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // pyarrow's view: series -> (timestamp -> value), across blocks.
    let mut from_parquet: BTreeMap<String, BTreeMap<i64, Value>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let j: Value = serde_json::from_str(line).unwrap();
        let key = j["metric"].to_string();
        let entry = from_parquet.entry(key).or_default();
        for (t, val) in j["timestamps"]
            .as_array()
            .unwrap()
            .iter()
            .zip(j["values"].as_array().unwrap())
        {
            assert!(
                entry.insert(t.as_i64().unwrap(), val.clone()).is_none(),
                "timestamp twice in blocks"
            );
        }
    }
    // The API's view.
    let mut from_api: BTreeMap<String, BTreeMap<i64, Value>> = BTreeMap::new();
    for (metric, ts, vals) in export(&v, r#"{__name__=~".+"}"#) {
        from_api.insert(metric.to_string(), ts.into_iter().zip(vals).collect());
    }
    assert_eq!(from_parquet.len(), 9);
    assert_eq!(from_parquet, from_api);
    let odd = &from_api[&json!({"__name__": "odd", "kind": "special"}).to_string()];
    assert_eq!(
        odd.values().cloned().collect::<Vec<_>>(),
        [json!("NaN"), json!("+Inf"), json!(-0.0)]
    );
}
