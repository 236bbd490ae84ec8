//! The log store through its public interface: pushes read back from the
//! head, from the index and after a reopen; crash recovery from the WAL;
//! limits; retention.

use logstore::{Entry, LogStore, LogStoreOptions, PushStream, Rejection, Selection};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tsdb::{LabelSet, MatchOp, Matcher};

const HOUR: i64 = 3_600_000_000_000;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn stream(pairs: &[(&str, &str)], entries: &[(i64, &str)]) -> PushStream {
    PushStream {
        labels: LabelSet::from_pairs(pairs),
        entries: entries.iter().map(|&(t, l)| Entry::new(t, l)).collect(),
    }
}

fn opts() -> LogStoreOptions {
    LogStoreOptions {
        // Only explicit flushes commit.
        commit_interval: Duration::from_secs(3600),
        ..LogStoreOptions::default()
    }
}

/// Lines of the selection that contain every needle, as "labels ts line".
fn read(
    store: &LogStore,
    matchers: &[Matcher],
    start: i64,
    end: i64,
    contains: &[&str],
) -> Vec<String> {
    let contains: Vec<String> = contains.iter().map(|s| s.to_string()).collect();
    let sel = Selection {
        matchers,
        start,
        end,
        contains: &contains,
    };
    let mut out = Vec::new();
    for b in store.select(&sel).unwrap() {
        for e in b.entries().unwrap() {
            if e.ts >= start && e.ts <= end && contains.iter().all(|c| e.line.contains(c.as_str()))
            {
                out.push(format!("{} {} {}", b.labels, e.ts, e.line));
            }
        }
    }
    out.sort();
    out
}

fn app(v: &str) -> Vec<Matcher> {
    vec![Matcher::equal("app", v)]
}

#[test]
fn pushes_read_back_from_head_index_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let t = now() - HOUR;
    let store = LogStore::open(dir.path(), opts()).unwrap();
    let out = store
        .push(vec![
            stream(
                &[("app", "api"), ("namespace", "prod")],
                &[
                    (t - HOUR, "an hour earlier, another partition"),
                    (t, "GET /users/42 200 request_id=7f3a9c2e"),
                    (
                        t + 1,
                        "level=error msg=\"timeout talking to db\" host=10.2.3.4",
                    ),
                ],
            ),
            stream(
                &[("app", "web")],
                &[
                    (t + 2, "GET / 200"),
                    (t + 3, "MyErrorHandler caught ErrorX"),
                ],
            ),
        ])
        .unwrap();
    assert_eq!(out.accepted_entries, 5);
    assert!(out.rejections.is_empty());
    let all = read(&store, &[], t - 2 * HOUR, t + HOUR, &[]);
    assert_eq!(all.len(), 5);
    let check = |store: &LogStore| {
        assert_eq!(read(store, &[], t - 2 * HOUR, t + HOUR, &[]), all);
        let sel = Selection {
            matchers: &[],
            start: t - 2 * HOUR,
            end: t + HOUR,
            contains: &[],
        };
        let blocks = store.select(&sel).unwrap();
        assert_eq!(blocks.iter().map(|b| b.entries).sum::<u64>(), 5);
        let line_bytes = [
            "GET /users/42 200 request_id=7f3a9c2e",
            "level=error msg=\"timeout talking to db\" host=10.2.3.4",
            "an hour earlier, another partition",
            "GET / 200",
            "MyErrorHandler caught ErrorX",
        ]
        .iter()
        .map(|l| l.len() as u64)
        .sum::<u64>();
        assert_eq!(blocks.iter().map(|b| b.bytes).sum::<u64>(), line_bytes);
        assert_eq!(read(store, &app("api"), t, t + 10, &[]).len(), 2);
        let re = Matcher::new(MatchOp::RegexMatch, "app", "we.*").unwrap();
        assert_eq!(read(store, &[re], t - 2 * HOUR, t + HOUR, &[]).len(), 2);
        // Substrings in every position the index plans for.
        assert_eq!(
            read(store, &[], t - 2 * HOUR, t + HOUR, &["9c2e"]).len(),
            1,
            "infix"
        );
        assert_eq!(
            read(store, &[], t - 2 * HOUR, t + HOUR, &["request_id=7f"]).len(),
            1,
            "prefix"
        );
        assert_eq!(
            read(store, &[], t - 2 * HOUR, t + HOUR, &["=\"timeout talking"]).len(),
            1,
            "exact"
        );
        assert_eq!(
            read(store, &[], t - 2 * HOUR, t + HOUR, &["rror"]).len(),
            2,
            "case-sensitive infix"
        );
        assert_eq!(
            read(store, &[], t - 2 * HOUR, t + HOUR, &["10.2.3.4"]).len(),
            1,
            "ip"
        );
        assert_eq!(
            read(store, &[], t - 2 * HOUR, t + HOUR, &["GET", "200"]).len(),
            2,
            "two needles"
        );
        assert!(read(store, &[], t - 2 * HOUR, t + HOUR, &["absent"]).is_empty());
        let series: Vec<String> = store
            .series(&[], t - 2 * HOUR, t + HOUR)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(
            series,
            [r#"{app="api", namespace="prod"}"#, r#"{app="web"}"#]
        );
    };
    check(&store);
    store.flush().unwrap();
    assert_eq!(store.stats().head_entries, 0);
    assert_eq!(store.stats().partitions, 2);
    check(&store);
    store.close().unwrap();
    drop(store);
    let store = LogStore::open(dir.path(), opts()).unwrap();
    assert_eq!(
        store.stats().head_entries,
        0,
        "a clean close leaves nothing to replay"
    );
    check(&store);
}

#[test]
fn the_index_skips_blocks_without_the_word_and_finds_it_in_long_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let t = now() - HOUR;
    let store = LogStore::open(dir.path(), opts()).unwrap();
    let blob = format!("{}needle{}", "a".repeat(60), "b".repeat(60));
    let mut streams = Vec::new();
    for i in 0..50 {
        let line = format!("pod {i} says hello");
        streams.push(stream(&[("pod", &format!("p{i}"))], &[(t + i, &line)]));
    }
    streams.push(stream(&[("pod", "blob")], &[(t, &blob)]));
    store.push(streams).unwrap();
    store.flush().unwrap();
    let blocks = |needle: &str| {
        let contains = vec![needle.to_string()];
        store
            .select(&Selection {
                matchers: &[],
                start: t,
                end: t + HOUR,
                contains: &contains,
            })
            .unwrap()
            .len()
    };
    assert_eq!(
        blocks("hello"),
        50 + 1,
        "every block has hello, plus the long-token block"
    );
    assert_eq!(
        blocks(" 7 says"),
        1,
        "only pod 7's block holds the exact token 7"
    );
    assert_eq!(
        read(&store, &[], t, t + HOUR, &["needle"]),
        [format!("{{pod=\"blob\"}} {t} {blob}")]
    );
}

#[test]
fn a_crash_loses_nothing_acknowledged_and_repeats_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let t = now() - HOUR;
    {
        let store = LogStore::open(dir.path(), opts()).unwrap();
        store
            .push(vec![stream(&[("app", "a")], &[(t, "one"), (t + 1, "two")])])
            .unwrap();
        store.flush().unwrap();
        store
            .push(vec![stream(&[("app", "a")], &[(t + 2, "three")])])
            .unwrap();
        store
            .push(vec![stream(&[("app", "b")], &[(t + 3, "four")])])
            .unwrap();
        // Dropped without close: the last two pushes exist only in the WAL.
    }
    let store = LogStore::open(dir.path(), opts()).unwrap();
    assert_eq!(store.stats().head_entries, 2);
    let expect = [
        format!("{{app=\"a\"}} {t} one"),
        format!("{{app=\"a\"}} {} two", t + 1),
        format!("{{app=\"a\"}} {} three", t + 2),
        format!("{{app=\"b\"}} {} four", t + 3),
    ];
    assert_eq!(read(&store, &[], t, t + 10, &[]), expect);
    store.flush().unwrap();
    drop(store);
    let store = LogStore::open(dir.path(), opts()).unwrap();
    assert_eq!(read(&store, &[], t, t + 10, &[]), expect);
    // The same entry again (a client retry) is dropped, as Loki does.
    let out = store
        .push(vec![stream(&[("app", "b")], &[(t + 3, "four")])])
        .unwrap();
    assert_eq!((out.accepted_entries, out.duplicates), (0, 1));
}

#[test]
fn limits_refuse_what_they_must_and_keep_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.limits.max_line_size = 40;
    o.limits.max_streams = 2;
    o.limits.max_label_names_per_stream = 3;
    let store = LogStore::open(dir.path(), o).unwrap();
    let t = now();
    let out = store
        .push(vec![
            stream(
                &[("app", "a")],
                &[
                    (t, "fine"),
                    (t - 8 * 24 * HOUR, "too old"),
                    (t + HOUR, "too new"),
                ],
            ),
            stream(&[("app", "b")], &[(t, &"x".repeat(100))]),
            stream(
                &[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")],
                &[(t, "four labels")],
            ),
            stream(&[], &[(t, "no labels")]),
        ])
        .unwrap();
    assert_eq!(out.accepted_entries, 2);
    assert_eq!(out.truncated_lines, 1);
    assert_eq!(out.rejected_entries, 4);
    let reasons: Vec<&str> = out.rejections.iter().map(Rejection::reason).collect();
    assert_eq!(
        reasons,
        [
            "greater_than_max_sample_age",
            "too_far_in_future",
            "max_label_names_per_series",
            "missing_labels",
        ]
    );
    let msg = out.error_message(6).unwrap();
    assert!(
        msg.starts_with("entry for stream '{app=\"a\"}' has timestamp too old: "),
        "{msg}"
    );
    assert!(msg.ends_with("total ignored: 4 out of 6"), "{msg}");
    // Two streams are active, the limit: a push with new streams creates
    // none of them (all or nothing), while streams already active still
    // take their entries.
    let out = store
        .push(vec![
            stream(&[("app", "a")], &[(t + 1, "still fine")]),
            stream(&[("app", "c")], &[(t, "a third stream")]),
            stream(&[("app", "d")], &[(t, "a fourth")]),
        ])
        .unwrap();
    assert_eq!((out.accepted_entries, out.rejected_entries), (1, 2));
    assert!(out.rejections.iter().all(Rejection::is_rate_limit));
    assert_eq!(out.rejections.len(), 1, "one rejection names the push");
    let msg = out.error_message(3).unwrap();
    assert!(msg.contains("this push has 2 new streams"), "{msg}");
    let lines = read(&store, &app("b"), t - 1, t + 1, &[]);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].ends_with("…[truncated]"), "{lines:?}");
    let line = lines[0].rsplit(' ').next().unwrap();
    assert!(line.len() <= 40, "{line:?}");
}

#[test]
fn out_of_order_entries_are_taken_within_half_the_chunk_age_as_loki_3_does() {
    let dir = tempfile::tempdir().unwrap();
    let t = now() - 3 * HOUR;
    let store = LogStore::open(dir.path(), opts()).unwrap();
    let min = 60_000_000_000;
    let out = store
        .push(vec![stream(
            &[("app", "a")],
            &[
                (t, "newest first"),
                (t - 30 * min, "half an hour behind"),
                (t - 61 * min, "too far behind"),
                (t + 90 * min, "moves the window"),
                (t - 20 * min, "now too far behind"),
                (t + 31 * min, "inside the moved window"),
            ],
        )])
        .unwrap();
    assert_eq!((out.accepted_entries, out.rejected_entries), (4, 2));
    let reasons: Vec<&str> = out.rejections.iter().map(|r| r.reason()).collect();
    assert_eq!(reasons, ["too_far_behind", "too_far_behind"]);
    let msg = out.error_message(6).unwrap();
    assert!(
        msg.contains("reason: 'entry too far behind, entry timestamp is: "),
        "{msg}"
    );
    assert!(!out.rejections.iter().any(Rejection::is_rate_limit));
    // Another stream has its own window; the window outlives the push.
    let out = store
        .push(vec![
            stream(&[("app", "b")], &[(t - 2 * HOUR, "b's first")]),
            stream(&[("app", "a")], &[(t + 29 * min, "a behind its newest")]),
        ])
        .unwrap();
    assert_eq!((out.accepted_entries, out.rejected_entries), (1, 1));
    let lines = read(&store, &app("a"), t - HOUR, t + 2 * HOUR, &[]);
    assert_eq!(lines.len(), 4, "{lines:?}");
    drop(store);

    let mut o = opts();
    o.limits.unordered_writes = false;
    let store = LogStore::open(dir.path(), o).unwrap();
    let out = store
        .push(vec![stream(
            &[("app", "c")],
            &[(t, "one"), (t - 1, "behind"), (t, "same time, other line")],
        )])
        .unwrap();
    assert_eq!((out.accepted_entries, out.rejected_entries), (2, 1));
    assert_eq!(out.rejections[0].reason(), "out_of_order");
}

#[test]
fn retention_drops_whole_partitions_by_age_and_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    {
        let store = LogStore::open(dir.path(), opts()).unwrap();
        for h in (0..5).rev() {
            let line = format!("hour {h} {}", "padding ".repeat(200));
            store
                .push(vec![stream(&[("app", "a")], &[(t - h * HOUR, &line)])])
                .unwrap();
        }
        store.close().unwrap();
        assert_eq!(store.stats().partitions, 5);
    }
    let mut o = opts();
    o.retention = Some(Duration::from_secs(3 * 3600));
    let store = LogStore::open(dir.path(), o).unwrap();
    store.flush().unwrap();
    let s = store.stats();
    assert_eq!(
        (s.partitions, s.partitions_dropped),
        (4, 1),
        "hour 4 ends before the cutoff"
    );
    let per_partition = s.partition_bytes / 4;
    drop(store);
    let mut o = opts();
    o.max_bytes = Some(per_partition * 2 + per_partition / 2);
    let store = LogStore::open(dir.path(), o).unwrap();
    store.flush().unwrap();
    assert_eq!(store.stats().partitions, 2);
    let left = read(&store, &[], t - 10 * HOUR, t + HOUR, &[]);
    assert_eq!(left.len(), 2);
    assert!(
        left.iter()
            .all(|l| l.contains("hour 0") || l.contains("hour 1")),
        "{left:?}"
    );
}

#[test]
fn an_idle_partition_is_sealed_into_one_segment_and_still_takes_late_entries() {
    let dir = tempfile::tempdir().unwrap();
    let t = now() - 2 * HOUR;
    let store = LogStore::open(dir.path(), opts()).unwrap();
    for i in 0..4 {
        let line = format!("early {i} req-{i:04}");
        store
            .push(vec![stream(&[("app", "a")], &[(t + i, &line)])])
            .unwrap();
        store.flush().unwrap();
    }
    assert_eq!(store.stats().segments, 4, "a commit adds a segment");
    // Writes elsewhere; the first partition idles through three cycles.
    for i in 0..3 {
        let line = format!("later {i}");
        store
            .push(vec![stream(&[("app", "a")], &[(t + HOUR + i, &line)])])
            .unwrap();
        store.flush().unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store.stats().segments > 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "not sealed: {} segments",
            store.stats().segments
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let early = read(&store, &app("a"), t, t + HOUR - 1, &[]);
    assert_eq!(early.len(), 4, "{early:?}");
    assert_eq!(
        read(&store, &app("a"), t, t + HOUR - 1, &["req-0002"]).len(),
        1
    );
    // A late entry for the sealed hour opens a writer again.
    store
        .push(vec![stream(&[("app", "a")], &[(t + 10, "early late")])])
        .unwrap();
    store.flush().unwrap();
    store.close().unwrap();
    drop(store);
    let store = LogStore::open(dir.path(), opts()).unwrap();
    assert_eq!(read(&store, &app("a"), t, t + HOUR - 1, &[]).len(), 5);
    assert_eq!(
        read(&store, &app("a"), t + HOUR, t + 2 * HOUR, &[]).len(),
        3
    );
}

#[test]
fn a_full_head_holds_pushes_until_a_commit_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.max_head_bytes = 4096;
    let store = LogStore::open(dir.path(), o).unwrap();
    let t = now() - HOUR;
    let line = "x".repeat(1000);
    for i in 0..100 {
        store
            .push(vec![stream(&[("app", "a")], &[(t + i, &line)])])
            .unwrap();
        // The head and the one being indexed: each at most twice the limit
        // (plus the push that crossed it).
        assert!(
            store.stats().head_entries <= 2 * (2 * 4096 / 1000 + 1),
            "{:?}",
            store.stats()
        );
    }
    assert!(store.stats().commits >= 10, "{:?}", store.stats());
    assert_eq!(read(&store, &[], t, t + 100, &[]).len(), 100);
}
