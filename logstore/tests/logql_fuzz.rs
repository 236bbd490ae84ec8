//! The LogQL parser on arbitrary input: any text parses or fails with a
//! positioned error, never a panic; queries built from grammar pieces
//! parse, and evaluate without panicking.

use logstore::logql::{evaluate, parse, Direction, QueryParams};
use logstore::{Entry, LogStore, LogStoreOptions, PushStream};
use proptest::prelude::*;
use tsdb::LabelSet;

const PIECES: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "|",
    "|=",
    "!=",
    "|~",
    "!~",
    "=",
    "=~",
    "==",
    ">",
    ">=",
    "<",
    "+",
    "-",
    "*",
    "/",
    "^",
    " or ",
    " and ",
    " by ",
    " without ",
    "\"x\"",
    "`y`",
    "\"(?P<a>\\\\w+)\"",
    "app",
    "a",
    "5m",
    "1s",
    "10KB",
    "3",
    "0.5",
    "json",
    "logfmt",
    "regexp",
    "pattern",
    "\"<a> <_>\"",
    "line_format",
    "\"{{.a}}\"",
    "label_format",
    "drop",
    "keep",
    "unwrap",
    "duration(a)",
    "offset",
    "count_over_time",
    "rate",
    "sum",
    "topk",
    "quantile_over_time",
    "avg_over_time",
    "absent_over_time",
    "bool",
    "on",
    "ignoring",
    "vector",
    "__error__",
    "decolorize",
    " ",
];

fn store() -> (tempfile::TempDir, LogStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), LogStoreOptions::default()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    store
        .push(vec![PushStream {
            labels: LabelSet::from_pairs(&[("app", "x"), ("a", "1")]),
            entries: vec![
                Entry::new(now - 1_000_000_000, r#"{"a":"1","n":2}"#),
                Entry::new(now, "a=1 n=2s x=\"y\""),
            ],
        }])
        .unwrap();
    (dir, store)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_parses_or_fails_with_a_position(s in "\\PC{0,60}") {
        if let Err(e) = parse(&s) {
            prop_assert!(e.to_string().starts_with("parse error at line "));
        }
    }

    #[test]
    fn grammar_soup_parses_or_fails_and_what_parses_evaluates(picks in proptest::collection::vec(0..PIECES.len(), 1..16)) {
        let q: String = picks.iter().map(|&i| PIECES[i]).collect();
        let Ok(expr) = parse(&q) else { return Ok(()) };
        let (_dir, store) = store();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
        let p = QueryParams {
            start: now - 60_000_000_000,
            end: now + 1,
            step_ns: 10_000_000_000,
            limit: 10,
            direction: Direction::Backward,
            max_series: 100,
            stop: Default::default(),
        };
        let _ = evaluate(&store, &expr, &p);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Deep nesting of every kind, up to far past the bound: refused with
    /// the nesting error, never a stack overflow.
    #[test]
    fn deep_nesting_is_refused_not_overflowed(kind in 0usize..4, depth in 1usize..8000) {
        let q = match kind {
            0 => format!("{}vector(1){}", "(".repeat(depth), ")".repeat(depth)),
            1 => vec!["vector(1)"; depth + 1].join(" + "),
            2 => format!("{}vector(1)", "-".repeat(depth)),
            _ => format!("{{a=\"b\"}} | {}x=\"1\"{}", "(".repeat(depth), ")".repeat(depth)),
        };
        let r = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || parse(&q).err().map(|e| e.to_string()))
            .unwrap()
            .join()
            .expect("no stack overflow");
        if depth > 1000 {
            prop_assert!(r.unwrap_or_default().contains("query too deeply nested"));
        }
    }
}
