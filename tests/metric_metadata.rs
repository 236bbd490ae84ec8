//! Metric metadata sent with remote_write is served by `/api/v1/metadata`
//! in Prometheus's shape, with its parameters, and survives a restart.

mod common;

use common::*;
use serde_json::json;

#[test]
fn remote_write_metadata_is_served_and_kept_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = Vigil::start(dir.path(), &[]);
    let body = remote_write_metadata_body(&[
        ("http_requests_total", 1, "Requests served.", ""),
        (
            "node_memory_MemFree_bytes",
            2,
            "Memory information field MemFree_bytes.",
            "bytes",
        ),
        ("request_seconds", 3, "Request latency.", "seconds"),
        ("request_seconds", 3, "Request latency (v2).", "seconds"),
        ("odd", 42, "", ""),
    ]);
    let (code, text) = post(&v.url("/api/v1/write"), "application/x-protobuf", &body);
    assert_eq!(code, 204, "{text}");

    let (code, j) = get_json(&v.url("/api/v1/metadata"));
    assert_eq!(code, 200);
    let expected = json!({
        "http_requests_total": [{"type": "counter", "help": "Requests served.", "unit": ""}],
        "node_memory_MemFree_bytes": [{"type": "gauge", "help": "Memory information field MemFree_bytes.", "unit": "bytes"}],
        "odd": [{"type": "unknown", "help": "", "unit": ""}],
        "request_seconds": [
            {"type": "histogram", "help": "Request latency (v2).", "unit": "seconds"},
            {"type": "histogram", "help": "Request latency.", "unit": "seconds"}
        ]
    });
    assert_eq!(j, json!({"status": "success", "data": expected}));

    let (_, j) = get_json(&v.url("/api/v1/metadata?metric=request_seconds&limit_per_metric=1"));
    assert_eq!(
        j["data"]["request_seconds"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(j["data"].as_object().map(|o| o.len()), Some(1));
    let (_, j) = get_json(&v.url("/api/v1/metadata?limit=2"));
    assert_eq!(j["data"].as_object().map(|o| o.len()), Some(2));
    let (_, j) = get_json(&v.url("/api/v1/metadata?metric=absent"));
    assert_eq!(j["data"], json!({}));
    let (code, j) = get_json(&v.url("/api/v1/metadata?limit_per_metric=many"));
    assert_eq!(code, 400);
    assert_eq!(j["errorType"], "bad_data");

    // Malformed metadata is refused with a message that names it.
    let mut bad = vec![3 << 3 | 2, 3, 2 << 3 | 2, 1, 0xff];
    bad = snap::raw::Encoder::new().compress_vec(&bad).unwrap();
    let (code, text) = post(&v.url("/api/v1/write"), "application/x-protobuf", &bad);
    assert_eq!(code, 400);
    assert!(text.contains("metadata #0"), "{text}");

    assert_eq!(v.terminate(), Some(0));
    let v = Vigil::start(dir.path(), &[]);
    let (_, j) = get_json(&v.url("/api/v1/metadata"));
    assert_eq!(j["data"], expected, "metadata lost across a restart");
}
