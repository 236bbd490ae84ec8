//! Fuzzes the query path: queries assembled from PromQL fragments (valid
//! and not) are parsed and evaluated over a small store, as instant and
//! range queries. Any answer or error is fine; a panic is not.

use promql::Engine;
use proptest::prelude::*;
use tsdb::{AppendMode, Db, DbOptions, LabelSet, Sample, SeriesSamples, STALE_NAN_BITS};

const FRAGMENTS: &[&str] = &[
    "m",
    "m{a=\"1\"}",
    "{__name__=~\"m|n\"}",
    "n",
    "[5m]",
    "[1m:10s]",
    "[1h:]",
    " offset 1m",
    " offset -10m",
    " @ 100",
    " @ start()",
    " @ end()",
    "(",
    ")",
    ",",
    " + ",
    " - ",
    " * ",
    " / ",
    " % ",
    " ^ ",
    " == ",
    " != ",
    " > bool ",
    " < ",
    " and ",
    " or ",
    " unless ",
    " on(a) ",
    " ignoring(a) ",
    " group_left(b) ",
    " group_right ",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "topk(2,",
    "bottomk(-1,",
    "quantile(0.5,",
    "count_values(\"v\",",
    "limitk(1,",
    "limit_ratio(0.5,",
    "stddev",
    " by (a) ",
    " without (b) ",
    "rate(",
    "irate(",
    "increase(",
    "delta(",
    "deriv(",
    "predict_linear(",
    "resets(",
    "changes(",
    "avg_over_time(",
    "quantile_over_time(2,",
    "stddev_over_time(",
    "last_over_time(",
    "absent(",
    "absent_over_time(",
    "histogram_quantile(0.9,",
    "histogram_fraction(0, 1,",
    "label_replace(",
    "label_join(",
    "\"a\"",
    "\"(.*)\"",
    "\"$1\"",
    "sort(",
    "sort_by_label(",
    "clamp(",
    "round(",
    "timestamp(",
    "vector(",
    "scalar(",
    "time()",
    "1",
    "0",
    "-1",
    "NaN",
    "Inf",
    "1e308",
    "9223372036854775807",
    "holt_winters(",
    "double_exponential_smoothing(",
    "0.5",
    "month(",
    "days_in_month(",
];

fn store() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    let mut write = Vec::new();
    for (name, a, b) in [
        ("m", "1", "x"),
        ("m", "2", "y"),
        ("n", "1", "x"),
        ("n", "3", "+Inf"),
    ] {
        let samples = (0..40)
            .map(|i| {
                let v = match i % 13 {
                    7 => f64::from_bits(STALE_NAN_BITS),
                    11 => f64::NAN,
                    _ => (i * i) as f64 / 3.0 - 5.0,
                };
                Sample::new(i * 15_000, v)
            })
            .collect();
        write.push(SeriesSamples {
            labels: LabelSet::from_pairs(&[("__name__", name), ("a", a), ("b", b), ("le", b)]),
            samples,
        });
    }
    db.append(&write, AppendMode::Backfill, 0).unwrap();
    (dir, db)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn queries_never_panic(parts in proptest::collection::vec(0..FRAGMENTS.len(), 1..12),
                           t in -100_000i64..1_000_000, step in 1i64..100_000) {
        let (_dir, db) = store();
        let q: String = parts.iter().map(|i| FRAGMENTS[*i]).collect();
        let engine = Engine::default();
        let _ = engine.instant(&db, &q, t);
        let _ = engine.range(&db, &q, t, t + 600_000, step);
    }
}

/// Openers and chain links that each add a level to the syntax tree.
const NESTERS: &[(&str, &str)] = &[
    ("(", ")"),
    ("abs(", ")"),
    ("-", ""),
    ("-(", ")"),
    ("1 + ", ""),
    ("sum(", ")"),
    ("m or ", ""),
    ("rate(m[1m]) * ", ""),
    ("max_over_time((", ")[1m:10s])"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Deep nesting, up to far past the bound, on a small stack: refused
    /// with the nesting error past the bound, never a stack overflow.
    #[test]
    fn deep_nesting_is_refused_not_overflowed(picks in proptest::collection::vec(0..NESTERS.len(), 1..4),
                                              depth in 1usize..6000) {
        let mut q = String::new();
        let mut tail = String::new();
        for i in 0..depth {
            let (open, close) = NESTERS[picks[i % picks.len()]];
            q.push_str(open);
            tail.insert_str(0, close);
        }
        q.push('m');
        q.push_str(&tail);
        let bound = promql::nesting::depth_bound(&q);
        let run = move || {
            let (_dir, db) = store();
            let engine = Engine::new(promql::EngineOptions {
                timeout: std::time::Duration::from_secs(5),
                ..Default::default()
            });
            let r = engine.instant(&db, &q, 60_000).map(|_| ());
            (r.err().map(|e| e.to_string()), q.len())
        };
        // The server's query threads have 32 MiB; 8 MiB here leaves room.
        let (err, _) = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(run)
            .unwrap()
            .join()
            .expect("no stack overflow");
        if bound > promql::nesting::MAX_DEPTH {
            prop_assert!(err.unwrap_or_default().contains("query too deeply nested"));
        }
    }
}
