//! The store as a whole: a data directory holding the WAL and the head,
//! and the [`Querier`] over them.

use crate::error::{RejectReason, TsdbError};
use crate::head::{AppendMode, AppendOutcome, Head, HeadOptions, SeriesSamples};
use crate::labels::LabelSet;
use crate::matcher::Matcher;
use crate::querier::{Querier, Series, TimeRange};
use crate::sample::Timestamp;
use crate::wal::ReplayReport;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

#[derive(Clone, Debug, Default)]
pub struct DbOptions {
    pub head: HeadOptions,
}

/// A point-in-time view of the store's size and activity.
#[derive(Clone, Debug, Default)]
pub struct DbStats {
    pub head_series: u64,
    pub series_created: u64,
    pub samples_appended: u64,
    pub samples_out_of_order_appended: u64,
    pub duplicates_ignored: u64,
    pub rejected: Vec<(RejectReason, u64)>,
    pub wal_bytes: u64,
    pub wal_segments: u64,
    pub min_time: Option<Timestamp>,
    pub max_time: Option<Timestamp>,
}

impl DbStats {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }
    /// Everything the store keeps on disk.
    pub fn bytes_on_disk(&self) -> u64 {
        self.wal_bytes
    }
}

pub struct Db {
    dir: PathBuf,
    head: Head,
    replay: ReplayReport,
}

impl Db {
    /// Opens (or creates) the store in `dir` and replays its WAL.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, TsdbError> {
        std::fs::create_dir_all(dir).map_err(|e| TsdbError::io(dir, e))?;
        let (head, replay) = Head::open(&dir.join("wal"), opts.head)?;
        tracing::info!(
            dir = %dir.display(), series = head.num_series(), records = replay.records,
            segments = replay.segments, "store opened"
        );
        Ok(Db {
            dir: dir.to_path_buf(),
            head,
            replay,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What WAL replay found when the store was opened.
    pub fn replay_report(&self) -> &ReplayReport {
        &self.replay
    }

    pub fn append(
        &self,
        write: &[SeriesSamples],
        mode: AppendMode,
        now_ms: Timestamp,
    ) -> Result<AppendOutcome, TsdbError> {
        self.head.append(write, mode, now_ms)
    }

    /// Makes everything acknowledged so far survive power loss.
    pub fn sync(&self) -> Result<(), TsdbError> {
        self.head.sync_wal()
    }

    pub fn stats(&self) -> DbStats {
        let c = &self.head.counters;
        let (wal_bytes, wal_segments) = dir_size(&self.dir.join("wal"));
        let bounds = self.head.time_bounds();
        DbStats {
            head_series: self.head.num_series() as u64,
            series_created: c.series_created.load(Ordering::Relaxed),
            samples_appended: c.samples_appended.load(Ordering::Relaxed),
            samples_out_of_order_appended: c.samples_out_of_order_appended.load(Ordering::Relaxed),
            duplicates_ignored: c.duplicates_ignored.load(Ordering::Relaxed),
            rejected: RejectReason::ALL
                .iter()
                .map(|r| (*r, c.rejected(*r)))
                .collect(),
            wal_bytes,
            wal_segments,
            min_time: bounds.map(|b| b.0),
            max_time: bounds.map(|b| b.1),
        }
    }
}

/// Total bytes and number of files directly inside `dir`.
fn dir_size(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .fold((0, 0), |(b, n), m| (b + m.len(), n + 1))
}

impl Querier for Db {
    fn select(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<Series>, TsdbError> {
        Ok(self.head.select(matchers, range))
    }

    fn series(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<LabelSet>, TsdbError> {
        Ok(self.head.series(matchers, range))
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<Vec<String>, TsdbError> {
        Ok(self.head.label_names(matchers, range))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<Vec<String>, TsdbError> {
        Ok(self.head.label_values(name, matchers, range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Sample, STALE_NAN_BITS};
    use crate::MatchOp;

    fn write(name: &str, job: &str, samples: &[(i64, f64)]) -> SeriesSamples {
        SeriesSamples {
            labels: LabelSet::from_pairs(&[("__name__", name), ("job", job)]),
            samples: samples.iter().map(|(t, v)| Sample::new(*t, *v)).collect(),
        }
    }

    fn all_samples(db: &Db, m: &[Matcher], range: TimeRange) -> Vec<(String, Vec<Sample>)> {
        db.select(m, range)
            .unwrap()
            .into_iter()
            .map(|s| (s.labels.to_string(), s.samples().collect()))
            .collect()
    }

    #[test]
    fn append_query_and_replay() {
        let dir = tempfile::tempdir().unwrap();
        let stale = f64::from_bits(STALE_NAN_BITS);
        {
            let db = Db::open(dir.path(), DbOptions::default()).unwrap();
            let out = db
                .append(
                    &[
                        write("up", "a", &[(1000, 1.0), (2000, 0.0), (3000, stale)]),
                        write("up", "b", &[(1000, 1.0)]),
                    ],
                    AppendMode::Live,
                    0,
                )
                .unwrap();
            assert_eq!(out.appended, 4);
            assert!(out.errors.is_empty());
        }
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let got = all_samples(&db, &[Matcher::equal("job", "a")], TimeRange::ALL);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, r#"up{job="a"}"#);
        assert_eq!(got[0].1.len(), 3);
        assert!(got[0].1[2].is_stale());
        let got = all_samples(
            &db,
            &[Matcher::equal("__name__", "up")],
            TimeRange::new(1500, 2500),
        );
        assert_eq!(got.len(), 1, "only job=a has data in range");
        assert_eq!(got[0].1, vec![Sample::new(2000, 0.0)]);
        assert_eq!(db.stats().head_series, 2);
    }

    #[test]
    fn out_of_order_refused_duplicates_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        db.append(
            &[write("m", "a", &[(1000, 1.0), (2000, 2.0)])],
            AppendMode::Live,
            0,
        )
        .unwrap();
        let out = db
            .append(
                &[write(
                    "m",
                    "a",
                    &[(1500, 9.0), (2000, 2.0), (2000, 3.0), (3000, 3.0)],
                )],
                AppendMode::Live,
                0,
            )
            .unwrap();
        assert_eq!(out.appended, 1);
        assert_eq!(out.duplicates, 1);
        let reasons: Vec<_> = out.errors.iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            [RejectReason::OutOfOrder, RejectReason::DuplicateTimestamp]
        );
        assert!(
            out.errors[0].message.contains(r#"m{job="a"}"#),
            "{}",
            out.errors[0].message
        );
        assert_eq!(db.stats().rejected_total(), 2);
    }

    #[test]
    fn out_of_order_window_and_backfill_merge_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = DbOptions::default();
        opts.head.out_of_order_window_ms = 1000;
        {
            let db = Db::open(dir.path(), opts.clone()).unwrap();
            db.append(
                &[write("m", "a", &[(10_000, 1.0), (20_000, 2.0)])],
                AppendMode::Live,
                0,
            )
            .unwrap();
            let out = db
                .append(
                    &[write("m", "a", &[(19_500, 1.5), (5_000, 0.5)])],
                    AppendMode::Live,
                    0,
                )
                .unwrap();
            assert_eq!(out.appended, 1, "{:?}", out.errors);
            let out = db
                .append(
                    &[write("m", "a", &[(5_000, 0.5), (15_000, f64::NAN)])],
                    AppendMode::Backfill,
                    0,
                )
                .unwrap();
            assert_eq!(out.appended, 2);
        }
        let db = Db::open(dir.path(), opts).unwrap();
        let got = all_samples(&db, &[Matcher::equal("__name__", "m")], TimeRange::ALL);
        let ts: Vec<i64> = got[0].1.iter().map(|s| s.t).collect();
        assert_eq!(ts, [5_000, 10_000, 15_000, 19_500, 20_000]);
        assert!(got[0].1[2].v.is_nan());
    }

    #[test]
    fn invalid_series_refused_with_names() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let out = db
            .append(
                &[
                    write("1bad", "a", &[(1, 1.0)]),
                    SeriesSamples {
                        labels: LabelSet::from_pairs(&[("job", "x")]),
                        samples: vec![Sample::new(1, 1.0)],
                    },
                    SeriesSamples {
                        labels: LabelSet::from_pairs(&[("__name__", "ok"), ("a-b", "x")]),
                        samples: vec![Sample::new(1, 1.0)],
                    },
                    write("good", "a", &[(1, 1.0)]),
                ],
                AppendMode::Live,
                0,
            )
            .unwrap();
        assert_eq!(out.appended, 1);
        let reasons: Vec<_> = out.errors.iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            [
                RejectReason::InvalidMetricName,
                RejectReason::MissingMetricName,
                RejectReason::InvalidLabelName
            ]
        );
        assert!(out.errors[2].message.contains("a-b"));
        assert_eq!(db.stats().head_series, 1);
    }

    #[test]
    fn label_apis_respect_matchers_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        db.append(
            &[
                write("up", "a", &[(1000, 1.0)]),
                write("up", "b", &[(5000, 1.0)]),
                write("down", "c", &[(5000, 1.0)]),
            ],
            AppendMode::Live,
            0,
        )
        .unwrap();
        assert_eq!(
            db.label_names(&[], TimeRange::ALL).unwrap(),
            ["__name__", "job"]
        );
        assert_eq!(
            db.label_values("job", &[], TimeRange::ALL).unwrap(),
            ["a", "b", "c"]
        );
        assert_eq!(
            db.label_values("job", &[], TimeRange::new(4000, 6000))
                .unwrap(),
            ["b", "c"]
        );
        let m = Matcher::new(MatchOp::RegexMatch, "__name__", "up").unwrap();
        assert_eq!(
            db.label_values("job", &[m], TimeRange::new(0, 2000))
                .unwrap(),
            ["a"]
        );
    }
}
