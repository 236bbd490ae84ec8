//! LogQL evaluated over a store holding known lines: answers checked by
//! hand, from the head and again from the index.

use logstore::logql::{evaluate, parse, Direction, QueryParams, QueryResult};
use logstore::{Entry, LogStore, LogStoreOptions, PushStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tsdb::LabelSet;

const SEC: i64 = 1_000_000_000;

/// Two pods of app "api" write one line per second for 60 s from `t0`:
/// pod a logfmt with status 200 (even seconds) or 500 (odd), pod b JSON
/// with latency i ms.
fn fixture() -> (tempfile::TempDir, LogStore, i64) {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(
        dir.path(),
        LogStoreOptions {
            commit_interval: Duration::from_secs(3600),
            ..Default::default()
        },
    )
    .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let t0 = (now / SEC - 600) * SEC;
    let a: Vec<Entry> = (0..60)
        .map(|i| {
            let status = if i % 2 == 0 { 200 } else { 500 };
            Entry::new(
                t0 + i * SEC,
                format!(
                    "level=info status={status} path=/p{} msg=\"req {i}\"",
                    i % 3
                ),
            )
        })
        .collect();
    let b: Vec<Entry> = (0..60)
        .map(|i| {
            Entry::new(
                t0 + i * SEC,
                format!(r#"{{"latency_ms":{i},"user":"u{}","level":"warn"}}"#, i % 2),
            )
        })
        .collect();
    store
        .push(vec![
            PushStream {
                labels: LabelSet::from_pairs(&[("app", "api"), ("pod", "a")]),
                entries: a,
            },
            PushStream {
                labels: LabelSet::from_pairs(&[("app", "api"), ("pod", "b")]),
                entries: b,
            },
        ])
        .unwrap();
    (dir, store, t0)
}

fn run(
    store: &LogStore,
    q: &str,
    start: i64,
    end: i64,
    step: i64,
    limit: usize,
    dir: Direction,
) -> QueryResult {
    let expr = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    let p = QueryParams {
        start,
        end,
        step_ns: step,
        limit,
        direction: dir,
        max_series: 500,
        stop: Default::default(),
    };
    evaluate(store, &expr, &p)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .0
}

fn points(r: &QueryResult) -> Vec<(String, Vec<f64>)> {
    let QueryResult::Matrix(m) = r else {
        panic!("not a matrix: {r:?}")
    };
    m.iter()
        .map(|s| {
            let l: Vec<String> = s.labels.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
            (l.join(","), s.points.iter().map(|p| p.1).collect())
        })
        .collect()
}

fn check(store: &LogStore, t0: i64) {
    let end = t0 + 60 * SEC;
    // Log queries: newest first with a limit, oldest first forward.
    let QueryResult::Streams(s) = run(
        store,
        r#"{app="api"} |= "status=500""#,
        t0,
        end,
        SEC,
        3,
        Direction::Backward,
    ) else {
        panic!()
    };
    assert_eq!(s.len(), 1);
    let ts: Vec<i64> = s[0].entries.iter().map(|e| (e.ts - t0) / SEC).collect();
    assert_eq!(ts, [59, 57, 55]);
    let QueryResult::Streams(s) = run(
        store,
        r#"{pod="b"} | json | latency_ms > 55 | keep user | line_format "{{.user}}""#,
        t0,
        end,
        SEC,
        100,
        Direction::Forward,
    ) else {
        panic!()
    };
    assert_eq!(s.len(), 2, "two streams after the parser: users u0 and u1");
    let lines: Vec<&str> = s
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.line.as_str()))
        .collect();
    assert_eq!(lines, ["u0", "u0", "u1", "u1"]);
    // `end` is exclusive for log queries.
    let QueryResult::Streams(s) = run(
        store,
        r#"{pod="a"}"#,
        t0,
        t0 + 10 * SEC,
        SEC,
        1000,
        Direction::Forward,
    ) else {
        panic!()
    };
    assert_eq!(s[0].entries.len(), 10);

    // Metric queries at steps of 10 s over (t - 10s, t].
    let q = |e: &str| {
        points(&run(
            store,
            e,
            t0 + 10 * SEC,
            t0 + 30 * SEC,
            10 * SEC,
            100,
            Direction::Backward,
        ))
    };
    assert_eq!(
        q(r#"count_over_time({pod="a"}[10s])"#),
        [("app=api,pod=a".to_string(), vec![10.0, 10.0, 10.0])]
    );
    assert_eq!(
        q(r#"sum by (status) (count_over_time({pod="a"} | logfmt [10s]))"#),
        [
            ("status=200".to_string(), vec![5.0, 5.0, 5.0]),
            ("status=500".to_string(), vec![5.0, 5.0, 5.0]),
        ]
    );
    assert_eq!(
        q(r#"sum(rate({app="api"}[10s]))"#),
        [(String::new(), vec![2.0, 2.0, 2.0])]
    );
    // Seconds 11..=20 → latencies 11..20: avg 15.5, max 20.
    assert_eq!(
        q(r#"avg_over_time({pod="b"} | json | unwrap latency_ms [10s]) by (app)"#)[0].1[1],
        15.5
    );
    assert_eq!(
        q(r#"max_over_time({pod="b"} | json | unwrap latency_ms [10s]) by (app)"#)[0].1,
        [10.0, 20.0, 30.0]
    );
    let top = q(r#"topk(1, sum by (pod) (bytes_over_time({app="api"}[10s])))"#);
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].0, "pod=b", "the JSON lines are longer: {top:?}");
    assert_eq!(
        q(
            r#"sum(count_over_time({pod="a"} |= "status=500" [10s])) / sum(count_over_time({pod="a"}[10s])) * 100"#
        ),
        [(String::new(), vec![50.0, 50.0, 50.0])]
    );
    assert_eq!(
        q(r#"count_over_time({pod="a"}[10s]) > 100 or vector(7)"#),
        [(String::new(), vec![7.0, 7.0, 7.0])]
    );
    assert_eq!(
        q(r#"absent_over_time({app="nothing"}[10s])"#),
        [("app=nothing".to_string(), vec![1.0, 1.0, 1.0])]
    );
    assert!(
        q(r#"absent_over_time({app="api"}[10s])"#)
            .iter()
            .all(|s| s.1.is_empty())
            || q(r#"absent_over_time({app="api"}[10s])"#).is_empty()
    );
    assert_eq!(
        run(store, "1 + 2 * 3", t0, t0, SEC, 1, Direction::Backward),
        QueryResult::Scalar(7.0)
    );
}

#[test]
fn answers_hold_from_the_head_and_from_the_index() {
    let (_dir, store, t0) = fixture();
    check(&store, t0);
    store.flush().unwrap();
    assert_eq!(store.stats().head_entries, 0);
    check(&store, t0);
}

/// Counts answered from whole blocks' entry counts must equal counts of
/// the entries themselves, whether window edges cut blocks or not.
#[test]
fn counts_from_block_totals_match_counted_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), LogStoreOptions::default()).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let t0 = (now / SEC - 600) * SEC;
    let ms = 1_000_000;
    // 2000 entries 1 ms apart: blocks of 256 span 256 ms.
    let entries: Vec<Entry> = (0..2000)
        .map(|i| Entry::new(t0 + i * ms, format!("line {i}")))
        .collect();
    store
        .push(vec![PushStream {
            labels: LabelSet::from_pairs(&[("app", "c")]),
            entries,
        }])
        .unwrap();
    store.flush().unwrap();
    let count = |q: &str, start: i64, end: i64, step: i64| -> Vec<f64> {
        let QueryResult::Matrix(m) = run(&store, q, start, end, step, 100, Direction::Backward)
        else {
            panic!()
        };
        m.first()
            .map(|s| s.points.iter().map(|p| p.1).collect())
            .unwrap_or_default()
    };
    // Whole blocks inside one 10 s window.
    assert_eq!(
        count(
            r#"count_over_time({app="c"}[10s])"#,
            t0 + 5 * SEC,
            t0 + 5 * SEC,
            SEC
        ),
        [2000.0]
    );
    // Windows of 100 ms: edges cut every block.
    let w = count(
        r#"count_over_time({app="c"}[100ms])"#,
        t0 + 100 * ms - 1,
        t0 + 1900 * ms - 1,
        100 * ms,
    );
    assert_eq!(w.len(), 19);
    assert!(w.iter().all(|&v| v == 100.0), "{w:?}");
    // Overlapping windows (range > step), offset, bytes.
    let w = count(
        r#"count_over_time({app="c"}[500ms] offset 100ms)"#,
        t0 + 700 * ms - 1,
        t0 + 1500 * ms - 1,
        200 * ms,
    );
    assert!(w.iter().all(|&v| v == 500.0), "{w:?}");
    let b = count(
        r#"bytes_over_time({app="c"}[1m])"#,
        t0 + 30 * SEC,
        t0 + 30 * SEC,
        SEC,
    );
    let want: usize = (0..2000).map(|i| format!("line {i}").len()).sum();
    assert_eq!(b, [want as f64]);
}

#[test]
fn a_query_stops_at_its_deadline_or_when_cancelled() {
    use logstore::logql::{EvalError, Stop};
    let (_dir, store, t0) = fixture();
    let expr = parse(r#"count_over_time({app="api"} |~ "req.*" [1m])"#).unwrap();
    let params = |stop: Stop| QueryParams {
        start: t0,
        end: t0 + 60 * SEC,
        step_ns: SEC,
        limit: 100,
        direction: Direction::Backward,
        max_series: 500,
        stop,
    };
    let past = Stop {
        deadline: Some(std::time::Instant::now() - Duration::from_millis(1)),
        cancelled: None,
    };
    assert!(matches!(
        evaluate(&store, &expr, &params(past)),
        Err(EvalError::Timeout)
    ));
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let cancelled = Stop {
        deadline: None,
        cancelled: Some(flag),
    };
    let logs = parse(r#"{app="api"}"#).unwrap();
    assert!(matches!(
        evaluate(&store, &logs, &params(cancelled)),
        Err(EvalError::Cancelled)
    ));
    assert!(evaluate(&store, &expr, &params(Stop::default())).is_ok());
}

/// A store holding 1 200 JSON lines, each with a unique id, a level and a
/// took field that is sometimes not a number.
fn json_fixture() -> (tempfile::TempDir, LogStore, i64) {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), LogStoreOptions::default()).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let t0 = (now / SEC - 600) * SEC;
    let entries: Vec<Entry> = (0..1200)
        .map(|i| {
            let level = ["info", "warn", "error"][i % 3];
            let took = if i % 100 == 7 {
                "\"n/a\"".to_string()
            } else {
                format!("\"{}ms\"", i % 50)
            };
            Entry::new(
                t0 + i as i64 * 100_000_000,
                format!(r#"{{"id":"req-{i}","level":"{level}","took":{took}}}"#),
            )
        })
        .collect();
    store
        .push(vec![PushStream {
            labels: LabelSet::from_pairs(&[("container", "api")]),
            entries,
        }])
        .unwrap();
    (dir, store, t0)
}

/// An instant evaluation at `t` with the API's limits.
fn instant_params(t: i64) -> QueryParams {
    QueryParams {
        start: t,
        end: t,
        step_ns: SEC,
        limit: 100,
        direction: Direction::Backward,
        max_series: 500,
        stop: Default::default(),
    }
}

#[test]
fn max_series_limits_what_a_query_returns_not_what_it_holds_inside() {
    let (_dir, store, t0) = json_fixture();
    let end = t0 + 200 * SEC;
    // 1 200 series inside (a unique id each), three returned: Loki answers.
    let r = run(
        &store,
        r#"sum by (level) (count_over_time({container="api"} | json [5m]))"#,
        end,
        end,
        SEC,
        100,
        Direction::Backward,
    );
    let got = points(&r);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got.iter().map(|(_, v)| v[0]).sum::<f64>(), 1200.0);
    // Returning them all is over the limit of 500.
    let expr = parse(r#"count_over_time({container="api"} | json [5m])"#).unwrap();
    let e = evaluate(&store, &expr, &instant_params(end))
        .unwrap_err()
        .to_string();
    assert!(e.contains("maximum number of series (500)"), "{e}");
}

#[test]
fn unwrap_errors_fail_the_query_unless_filtered() {
    let (_dir, store, t0) = json_fixture();
    let end = t0 + 200 * SEC;
    let p = |q: &str| {
        let expr = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        evaluate(&store, &expr, &instant_params(end)).map(|r| r.0)
    };
    let e = p(r#"sum(max_over_time({container="api"} | json | unwrap duration(took) [5m]))"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("pipeline error: 'SampleExtractionErr' for series: "),
        "{e}"
    );
    assert!(e.contains("__error__=\"\""), "{e}");
    // Filtered after the unwrap: the bad samples are left out.
    let r = p(r#"max(max_over_time({container="api"} | json | unwrap duration(took) | __error__="" [5m]))"#)
        .unwrap();
    assert_eq!(points(&r)[0].1, vec![0.049]);
    // A parser error left on a series fails it the same way.
    let e = p(r#"count_over_time({container="api"} | logfmt --strict [5m])"#)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("pipeline error: 'LogfmtParserErr'"), "{e}");
    // Dropped, the error label no longer names a series: no error.
    let r = p(r#"count_over_time({container="api"} | logfmt --strict | drop __error__, __error_details__ [5m])"#)
        .unwrap();
    assert_eq!(points(&r)[0].1, vec![1200.0]);
}
