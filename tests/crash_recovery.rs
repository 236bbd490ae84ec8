//! Durability: a write acknowledged with 2xx survives SIGKILL, exactly once.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SERIES: usize = 50;

const WRITERS: usize = 2;

/// Writer `w`'s batch `b` carries one sample for each of its SERIES series
/// (named `w*1000+s`) at a timestamp unique to the batch, with a value
/// derived from both. Writers own disjoint series, so each stays in order.
/// Batches are this far apart in time: close enough that even thousands of
/// them stay inside one head window, so no head cut persists early batches
/// into a block during the test (a repeat of a persisted sample is refused
/// as out of order, as Prometheus refuses it as out of bounds).
const BATCH_SPACING_MS: i64 = 10;

fn batch(w: usize, b: i64, t0: i64) -> Vec<(String, i64, f64)> {
    (0..SERIES)
        .map(|s| {
            let id = (w * 1000 + s) as i64;
            (
                format!("{id}"),
                t0 + b * BATCH_SPACING_MS,
                (b * 100_000 + id) as f64,
            )
        })
        .collect()
}

fn send(base_url: &str, rows: &[(String, i64, f64)]) -> Result<(u16, String), String> {
    let series: Vec<TestSeries> = rows
        .iter()
        .map(|(s, t, v)| TestSeries {
            labels: vec![("__name__", "crash_test"), ("series", s.as_str())],
            samples: vec![(*t, *v)],
        })
        .collect();
    try_post(
        &format!("{base_url}/api/v1/write"),
        "application/x-protobuf",
        &remote_write_body(&series),
    )
}

#[test]
fn acknowledged_samples_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = Vigil::start(dir.path(), &[]);
    let t0 = now_ms() - 3_600_000;
    let acked: Arc<Mutex<Vec<(usize, i64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    // Two writers in parallel so the kill lands while requests are in flight.
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (acked, stop, base) = (acked.clone(), stop.clone(), v.base.clone());
            std::thread::spawn(move || {
                let mut b = 0;
                while !stop.load(Ordering::Relaxed) {
                    match send(&base, &batch(w, b, t0)) {
                        Ok((204, _)) => acked.lock().unwrap().push((w, b)),
                        Ok((code, body)) => {
                            panic!("unexpected status {code} for batch {b}: {body}")
                        }
                        Err(_) => break, // the server is gone
                    }
                    b += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    v.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "only {} batches were acknowledged before the kill",
        acked.len()
    );

    let v = Vigil::start(dir.path(), &[]);
    let check = |v: &Vigil| {
        let got = export(v, "crash_test");
        assert_eq!(got.len(), SERIES * WRITERS);
        for (metric, ts, vals) in &got {
            let id: i64 = metric["series"].as_str().unwrap().parse().unwrap();
            let w = (id / 1000) as usize;
            let stored: BTreeMap<i64, f64> = ts
                .iter()
                .copied()
                .zip(vals.iter().map(|x| x.as_f64().unwrap()))
                .collect();
            assert_eq!(
                stored.len(),
                ts.len(),
                "series {id}: a timestamp is stored twice"
            );
            for (_, b) in acked.iter().filter(|(aw, _)| *aw == w) {
                let t = t0 + b * BATCH_SPACING_MS;
                assert_eq!(
                    stored.get(&t),
                    Some(&((b * 100_000 + id) as f64)),
                    "series {id}: acknowledged batch {b} lost"
                );
            }
            // Anything beyond the acknowledged set must be a write that was in flight, intact.
            for (t, val) in &stored {
                let b = (t - t0) / BATCH_SPACING_MS;
                assert_eq!(
                    *val,
                    (b * 100_000 + id) as f64,
                    "series {id}: sample at {t} is corrupt"
                );
            }
        }
    };
    check(&v);

    // Writers retry everything acknowledged: exact repeats change nothing.
    for (w, b) in &acked {
        let (code, body) = send(&v.base, &batch(*w, *b, t0)).unwrap();
        assert_eq!(code, 204, "retry of batch {b} of writer {w}: {body}");
    }
    check(&v);
}
