//! What acknowledging a push costs: the WAL (fsync'd record, indexing
//! later) against committing the tantivy index before every
//! acknowledgement. Pushes of 100 and 1000 lines, one after another.
//!
//! `cargo run --release -p logstore --example ack_cost` (docs/BENCHMARKS.md).

use logstore::{Entry, LogStore, LogStoreOptions, PushStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tsdb::LabelSet;

fn pushes(batch: usize, n: usize, t0: i64) -> Vec<Vec<PushStream>> {
    (0..n)
        .map(|p| {
            let entries = (0..batch)
                .map(|i| {
                    let k = p * batch + i;
                    Entry::new(
                        t0 + k as i64 * 1000,
                        format!(
                            "level=info msg=\"request {k}\" request_id={:016x} took={}ms",
                            (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                            k % 900
                        ),
                    )
                })
                .collect();
            vec![PushStream {
                labels: LabelSet::from_pairs(&[("app", "bench"), ("pod", &format!("p{}", p % 8))]),
                entries,
            }]
        })
        .collect()
}

fn run(batch: usize, n: usize, commit_each: bool) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::open(
        dir.path(),
        LogStoreOptions {
            commit_interval: Duration::from_secs(3600),
            ..Default::default()
        },
    )
    .expect("open");
    let t0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as i64
        - 3_600_000_000_000;
    let work = pushes(batch, n, t0);
    let started = Instant::now();
    for p in work {
        store.push(p).expect("push");
        if commit_each {
            store.flush().expect("commit");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    (batch * n) as f64 / secs
}

fn main() {
    println!("| push size | WAL, then index (lines/s) | commit before ack (lines/s) | ratio |");
    println!("| --- | --- | --- | --- |");
    for (batch, n) in [(100, 300), (1000, 100)] {
        let wal = run(batch, n, false);
        let commit = run(batch, n, true);
        println!(
            "| {batch} lines | {wal:.0} | {commit:.0} | {:.1}× |",
            wal / commit
        );
    }
}
