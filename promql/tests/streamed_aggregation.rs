//! Folding aggregations (`sum`, `count`, `group`, `min`, `max`) straight
//! over a selector read its series in chunks instead of holding them all:
//! the answers must be exactly those of the held path, and a selection
//! larger than the query's sample limit must still aggregate.

use promql::{Engine, EngineOptions, QueryError, QueryValue};
use tsdb::{AppendMode, Db, DbOptions, LabelSet, Sample, SeriesSamples};

const SERIES: usize = 300;
const STEP_MS: i64 = 15_000;
/// Enough steps that 300 series span several streamed chunks.
const STEPS: i64 = 4_000;

fn store(dir: &std::path::Path) -> Db {
    let db = Db::open(dir, DbOptions::default()).unwrap();
    let writes: Vec<SeriesSamples> = (0..SERIES)
        .map(|i| {
            let group = format!("g{}", i % 7);
            let instance = format!("i{i:03}");
            SeriesSamples {
                labels: LabelSet::from_pairs(&[
                    ("__name__", "x"),
                    ("group", &group),
                    ("instance", &instance),
                ]),
                // Gaps (every 11th series misses every 5th scrape) and
                // values whose sums depend on the order they are added in.
                samples: (0..STEPS)
                    .filter(|s| i % 11 != 0 || s % 5 != 0)
                    .map(|s| Sample::new(s * STEP_MS, 1e15 / (i as f64 + 1.0) + s as f64 * 0.1))
                    .collect(),
            }
        })
        .collect();
    db.append(&writes, AppendMode::Backfill, 0).unwrap();
    // Half the data in blocks, half in the head, as a running server has it.
    db.flush_head().unwrap();
    db
}

fn range(engine: &Engine, db: &Db, q: &str) -> Result<QueryValue, QueryError> {
    // 6 000 steps of 10 s over 15 s samples (the lookback picks across
    // gaps): a chunk of 256 Ki step slots is 64 series (the fewest), so
    // 300 series take five.
    engine
        .range(db, q, 0, (STEPS - 1) * STEP_MS, 10_000)
        .map(|(v, _)| v)
}

#[test]
fn streamed_folds_answer_exactly_as_held_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path());
    let engine = Engine::new(EngineOptions::default());
    for op in ["sum", "count", "group", "min", "max"] {
        for grouping in ["", " by (group)", " without (instance)"] {
            for sel in ["x", "x offset 2m", "(x{group=~\"g[1-3]\"})"] {
                let streamed = format!("{op}{grouping} ({sel})");
                // `* 1` keeps every value but makes the input a computed
                // vector, which is held whole before it is folded.
                let held = format!("{op}{grouping} ({sel} * 1)");
                let a = range(&engine, &db, &streamed).unwrap();
                let b = range(&engine, &db, &held).unwrap();
                assert_eq!(a, b, "{streamed}");
                let QueryValue::Matrix(m) = &a else {
                    panic!("{streamed}: not a matrix")
                };
                assert!(!m.is_empty(), "{streamed}");
            }
        }
        let t = (STEPS - 1) * STEP_MS;
        let instant = |q: &str| engine.instant(&db, q, t).unwrap().0;
        let q = format!("{op} by (group) (x)");
        assert_eq!(
            instant(&q),
            instant(&format!("{op} by (group) (x * 1)")),
            "{q}"
        );
    }
}

#[test]
fn a_streamed_fold_holds_a_chunk_not_the_selection() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path());
    // 300 series × 6 000 steps = 1.8 M step slots, over the limit; one
    // chunk of 64 series and the 7 groups' steps are under it.
    let engine = Engine::new(EngineOptions {
        max_samples: 600_000,
        ..EngineOptions::default()
    });
    let summed = range(&engine, &db, "sum by (group) (x)").unwrap();
    let QueryValue::Matrix(m) = summed else {
        panic!("not a matrix")
    };
    assert_eq!(m.len(), 7);
    // Holding the selection whole is refused, as before; so is a fold
    // whose groups hold as much as the selection (one group per series,
    // counted as the groups are made).
    for q in ["sum by (group) (x * 1)", "sum without (group) (x)"] {
        let refused = matches!(range(&engine, &db, q), Err(QueryError::TooManySamples(_)));
        assert!(refused, "{q} was not refused for too many samples");
    }
}
