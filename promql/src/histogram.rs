//! Classic (bucket-series) histograms: `histogram_quantile` and
//! `histogram_fraction` over series carrying an `le` label.

use crate::engine::{Arg, Ev, Result};
use crate::label_map::{label_map, LabelMap};
use crate::value::{project, StepSeries};
use tsdb::LabelSet;

const BUCKET_LABEL: &str = "le";
/// Relative difference below which bucket counts are taken as equal.
const SMALL_DELTA: f64 = 1e-12;

#[derive(Clone, Copy)]
struct Bucket {
    upper: f64,
    count: f64,
}

/// Prometheus's `almost.Equal`.
fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() || a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

/// Sorts, merges equal bounds, and forces counts to be monotonic (saying
/// whether it had to). `None` unless the highest bucket is `+Inf`.
fn prepare(mut buckets: Vec<Bucket>) -> Option<(Vec<Bucket>, bool)> {
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if buckets.last()?.upper != f64::INFINITY {
        return None;
    }
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => merged.push(b),
        }
    }
    let mut prev = merged[0].count;
    let mut forced = false;
    for b in merged.iter_mut().skip(1) {
        let cur = b.count;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, SMALL_DELTA) {
            b.count = prev;
            continue;
        }
        if cur < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    Some((merged, forced))
}

/// The quantile, and whether the counts had to be made monotonic.
fn bucket_quantile(q: f64, buckets: Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    let Some((b, forced)) = prepare(buckets) else {
        return (f64::NAN, false);
    };
    (interpolate(q, &b), forced)
}

fn interpolate(q: f64, b: &[Bucket]) -> f64 {
    if b.len() < 2 {
        return f64::NAN;
    }
    let observations = b[b.len() - 1].count;
    if observations == 0.0 || observations.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let i = b[..b.len() - 1].partition_point(|x| x.count < rank);
    if i == b.len() - 1 {
        return b[b.len() - 2].upper;
    }
    if i == 0 && b[0].upper <= 0.0 {
        return b[0].upper;
    }
    let (mut start, end, mut count) = (0.0, b[i].upper, b[i].count);
    if i > 0 {
        start = b[i - 1].upper;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    start + (end - start) * (rank / count)
}

fn bucket_fraction(lower: f64, upper: f64, buckets: Vec<Bucket>) -> f64 {
    let Some((b, _)) = prepare(buckets) else {
        return f64::NAN;
    };
    let count = b[b.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, bk) in b.iter().enumerate() {
        // The first bucket starts at 0 when its bound is positive, as in quantiles.
        let lb = if i > 0 {
            b[i - 1].upper
        } else if bk.upper > 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let ub = bk.upper;
        let interp = |v: f64| rank + (bk.count - rank) * (v - lb) / (ub - lb);
        if !lower_set && lb >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lb >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        // A bucket of infinite width is not interpolated: a bound inside
        // it takes none of its observations (Prometheus 3).
        if !lower_set && lb < lower && ub > lower {
            lower_rank = if lb.is_infinite() {
                bk.count
            } else {
                interp(lower)
            };
            lower_set = true;
        }
        if !upper_set && lb < upper && ub > upper {
            upper_rank = if lb.is_infinite() {
                rank
            } else {
                interp(upper)
            };
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = bk.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// Groups bucket series by their labels without `le`; evaluates `f` per
/// group and step. `f` says whether the buckets needed fixing.
fn per_group(
    ev: &Ev,
    v: Vec<StepSeries>,
    buckets_arg: usize,
    f: impl Fn(usize, Vec<Bucket>) -> (f64, bool),
) -> Result<Vec<StepSeries>> {
    let mut groups: Vec<(LabelSet, Vec<(f64, StepSeries)>)> = Vec::new();
    let mut index: LabelMap<LabelSet, usize> = label_map();
    for s in v {
        let le = s.labels.get(BUCKET_LABEL);
        let Some(le) = le.and_then(parse_bound) else {
            ev.sh.warn_at(Arg(buckets_arg), format_args!(
                "bucket label {BUCKET_LABEL:?} is missing or has a malformed value of {:?} for metric name {:?}",
                le.unwrap_or(""),
                s.labels.metric_name().unwrap_or("")
            ));
            continue;
        };
        let key = project(&s.labels, &[BUCKET_LABEL.to_string()], false);
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push((le, s));
    }
    let mut out = Vec::new();
    for (key, members) in groups {
        let values: Vec<Option<f64>> = (0..ev.n)
            .map(|step| {
                let buckets: Vec<Bucket> = members
                    .iter()
                    .filter_map(|(le, s)| s.values[step].map(|c| Bucket { upper: *le, count: c }))
                    .collect();
                if buckets.is_empty() {
                    return None;
                }
                let (v, fixed) = f(step, buckets);
                if fixed {
                    ev.sh.info_at(Arg(buckets_arg), format_args!(
                        "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}",
                        key.metric_name().unwrap_or("")
                    ));
                }
                Some(v)
            })
            .collect();
        let s = StepSeries {
            labels: key,
            values,
            drop_name: true,
        };
        if !s.is_empty() {
            out.push(s);
        }
    }
    Ok(out)
}

/// A bucket bound as Go's ParseFloat reads it.
fn parse_bound(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// The call's arguments an annotation about a classic histogram function
/// points at.
#[derive(Clone, Copy)]
pub(crate) struct ArgsAt {
    /// φ (for histogram_quantile).
    pub quantile: usize,
    /// The bucket series.
    pub buckets: usize,
}

pub(crate) fn quantile(
    ev: &Ev,
    q: &[f64],
    v: Vec<StepSeries>,
    at: ArgsAt,
) -> Result<Vec<StepSeries>> {
    for &x in q {
        ev.sh.check_quantile(x, Arg(at.quantile));
    }
    per_group(ev, v, at.buckets, |step, b| bucket_quantile(q[step], b))
}

pub(crate) fn fraction(
    ev: &Ev,
    lo: &[f64],
    hi: &[f64],
    v: Vec<StepSeries>,
    buckets_arg: usize,
) -> Result<Vec<StepSeries>> {
    per_group(ev, v, buckets_arg, |step, b| {
        (bucket_fraction(lo[step], hi[step], b), false)
    })
}
