//! What the second grammar costs (issue 28's "one PromQL grammar"): the
//! time promql-parser takes on valid queries, what Vigil's parse entry
//! adds to it (the nesting bound), and what placing an error costs on the
//! queries promql-parser refuses — the only time the shadow grammar in
//! `syntax_error.rs` / `type_error.rs` runs.
//!
//! `cargo run --release -p promql --example parse_cost`

use std::time::Instant;

const VALID: &[&str] = &[
    "sum by (instance) (rate(node_cpu_seconds_total[5m]))",
    "topk(10, rate(node_network_transmit_bytes_total[5m]))",
    "quantile_over_time(0.9, node_load1[1h])",
    "node_cpu_seconds_total{mode=~\"user|system\", cpu=~\"1|3\"}",
    "count by (job) ({__name__=~\"node_.+\"})",
    "rate(node_cpu_seconds_total{mode=\"user\"}[5m]) * on(instance) group_left(version) node_exporter_build_info{collector=\"c0\"}",
    "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "max_over_time(rate(node_network_receive_bytes_total{device=\"eth0\"}[5m])[1h:1m])",
    "sort_desc(sum by (instance) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m])))",
    "sum(rate(http_request_duration_seconds_sum[5m])) / sum(rate(http_request_duration_seconds_count[5m]))",
];

const INVALID: &[&str] = &[
    "sum(rate(node_cpu_seconds_total[5m])",
    "node_cpu_seconds_total{mode=}",
    "rate(node_cpu_seconds_total)",
    "sum by (instance) rate(x[5m])",
    "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) +",
    "foo @ bar",
];

fn per_call(n: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() / n as f64 * 1e6
}

fn main() {
    const N: usize = 20_000;
    let parser = per_call(N, || {
        for q in VALID {
            std::hint::black_box(promql_parser::parser::parse(q).is_ok());
        }
    }) / VALID.len() as f64;
    let ours = per_call(N, || {
        for q in VALID {
            std::hint::black_box(promql::syntax_error::parse(q).is_ok());
        }
    }) / VALID.len() as f64;
    println!("valid queries ({}): promql-parser {parser:.2} µs each, Vigil's parse entry {ours:.2} µs (+{:.2} µs: the nesting bound)", VALID.len(), ours - parser);
    let refused = per_call(N / 10, || {
        for q in INVALID {
            std::hint::black_box(promql_parser::parser::parse(q).is_err());
        }
    }) / INVALID.len() as f64;
    let placed = per_call(N / 10, || {
        for q in INVALID {
            std::hint::black_box(promql::syntax_error::parse(q).unwrap_err());
        }
    }) / INVALID.len() as f64;
    println!("refused queries ({}): promql-parser {refused:.2} µs each, with the error placed {placed:.2} µs", INVALID.len());
    for q in INVALID {
        println!("  {q:?} -> {}", promql::syntax_error::parse(q).unwrap_err());
    }
    // A long refused query: the shadow grammar is linear in its length.
    let long = format!("sum({}", vec!["rate(x{a=\"b\"}[5m])"; 500].join(" + "));
    let long_ms = per_call(20, || {
        std::hint::black_box(promql::syntax_error::parse(&long).unwrap_err());
    }) / 1e3;
    println!(
        "a refused query of {} bytes: {long_ms:.2} ms with the error placed",
        long.len()
    );
}
