//! Functions over range vectors: rates, deltas, regressions and the
//! `*_over_time` family. Each is computed per series and per step over the
//! step's left-open window `(end - range, end]`.

use crate::aggregate::{kahan_inc, mean, quantile};
use crate::engine::{Arg, Ev, Result};
use crate::error::QueryError;
use crate::functions::{absent_labels, scalar_arg};
use crate::parallel::par_map;
use crate::value::{format_value, Matrix, MatrixSeries, StepSeries, Val};
use promql_parser::parser::Expr;
use tsdb::Sample;

const NAMES: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "predict_linear",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "mad_over_time",
    "absent_over_time",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
    "double_exponential_smoothing",
    "holt_winters",
];

pub(crate) fn is_range_function(name: &str) -> bool {
    NAMES.contains(&name)
}

/// One step's view: the window's samples and where the window ends.
struct Window<'a> {
    samples: &'a [Sample],
    /// End of the window (eval time minus offset, or the `@` time).
    end: i64,
    range_ms: i64,
    /// The step's evaluation time.
    step_time: i64,
    /// False when the window is known to hold no counter reset, so rates
    /// skip looking for one.
    may_reset: bool,
}

fn matrix_arg(ev: &Ev, e: &Expr, f: &str) -> Result<Matrix> {
    match ev.eval(e)? {
        Val::Matrix(m) => Ok(m),
        other => Err(QueryError::bad(format!(
            "expected type range vector in call to function {f:?}, got {}",
            other.type_name()
        ))),
    }
}

pub(crate) fn eval(ev: &Ev, name: &str, args: &[&Expr]) -> Result<Val> {
    let arg = |i: usize| -> Result<&Expr> {
        args.get(i)
            .copied()
            .ok_or_else(|| QueryError::bad(format!("missing argument {} to {name}()", i + 1)))
    };
    // Scalar parameters come first for quantile_over_time, after for the rest.
    let (matrix_pos, params): (usize, Vec<Vec<f64>>) = match name {
        "quantile_over_time" => (1, vec![scalar_arg(ev, arg(0)?, name)?]),
        "predict_linear" => (0, vec![scalar_arg(ev, arg(1)?, name)?]),
        "double_exponential_smoothing" | "holt_winters" => (
            0,
            vec![
                scalar_arg(ev, arg(1)?, name)?,
                scalar_arg(ev, arg(2)?, name)?,
            ],
        ),
        _ => (0, Vec::new()),
    };
    let matrix_expr = arg(matrix_pos)?;
    if name == "double_exponential_smoothing" || name == "holt_winters" {
        for (p, what) in params.iter().zip(["smoothing", "trend"]) {
            if let Some(bad) = p.iter().find(|x| !(**x > 0.0 && **x < 1.0)) {
                let sym = if what == "smoothing" { "sf" } else { "tf" };
                return Err(QueryError::exec(format!(
                    "invalid {what} factor. Expected: 0 < {sym} < 1, got: {}",
                    format_value(*bad)
                )));
            }
        }
    }
    if name == "absent_over_time" {
        let m = matrix_arg(ev, matrix_expr, name)?;
        let values: Vec<Option<f64>> = (0..ev.n)
            .map(|i| {
                let any = m
                    .series
                    .iter()
                    .any(|s| !window_of(&m, &s.samples, i).is_empty());
                (!any).then_some(1.0)
            })
            .collect();
        let s = StepSeries {
            labels: absent_labels(arg(0)?),
            values,
            drop_name: false,
        };
        return Ok(Val::Vector(if s.is_empty() { Vec::new() } else { vec![s] }));
    }
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    let step_times: Vec<i64> = ev.times().collect();
    if name == "quantile_over_time" {
        for &q in &params[0] {
            ev.sh.check_quantile(q, Arg(0));
        }
    }
    let n = ev.n;
    let counter = matches!(name, "rate" | "increase");
    let per_series = |s: &MatrixSeries, ends: &[i64], range_ms: i64| -> Result<StepSeries> {
        let bounds: Vec<std::ops::Range<usize>> =
            window_bounds(ends, range_ms, &s.samples).collect();
        // Resets before each sample, so a window learns in O(1) that it has
        // none (the common case) instead of scanning its samples.
        let resets: Vec<u32> = if counter {
            let mut acc = 0u32;
            std::iter::once(0)
                .chain(s.samples.windows(2).map(|p| {
                    acc += u32::from(p[1].v < p[0].v);
                    acc
                }))
                .collect()
        } else {
            Vec::new()
        };
        let values: Vec<Option<f64>> = (0..n)
            .map(|i| {
                let b = bounds[i].clone();
                let may_reset = !counter || b.is_empty() || resets[b.end - 1] != resets[b.start];
                let w = Window {
                    samples: &s.samples[b],
                    end: ends[i],
                    range_ms,
                    step_time: step_times[i],
                    may_reset,
                };
                if w.samples.is_empty() {
                    return None;
                }
                let p = |k: usize| params.get(k).map_or(f64::NAN, |v| v[i]);
                apply(name, &w, p(0), p(1))
            })
            .collect();
        Ok(StepSeries {
            labels: s.labels.clone(),
            values,
            drop_name: s.drop_name || !keep_name,
        })
    };
    let out: Vec<StepSeries> = match matrix_expr {
        // Straight over a selector: each series is computed as it is read.
        Expr::MatrixSelector(ms) => {
            let range_ms = ms.range.as_millis() as i64;
            let out = ev
                .map_matrix_selector(&ms.vs, range_ms, |s, ends| {
                    per_series(&s, ends, range_ms).map(|r| (r.values.len(), r))
                })?
                .0;
            if counter {
                note_possible_non_counters(ev, &out);
            }
            out
        }
        other => {
            let m = matrix_arg(ev, other, name)?;
            let budget = ev.sh.budget();
            let work = m.series.len() * n.max(16);
            par_map(m.series.iter().collect(), work, |s| {
                budget.check_deadline()?;
                per_series(s, &m.ends, m.range_ms)
            })?
        }
    };
    Ok(Val::Vector(
        out.into_iter().filter(|s| !s.is_empty()).collect(),
    ))
}

/// Prometheus 3's info for rate or increase straight over a selector whose
/// series' names do not look like counters' (and which gave a value).
fn note_possible_non_counters(ev: &Ev, out: &[StepSeries]) {
    for s in out.iter().filter(|s| !s.is_empty()) {
        let Some(name) = s.labels.metric_name() else {
            continue;
        };
        if !["_total", "_sum", "_count", "_bucket"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
        {
            ev.sh.info_at(
                Arg(0),
                format_args!(
                    "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name:?}"
                ),
            );
        }
    }
}

/// The window `(end - range, end]` of `samples` for each of `ends`, found
/// with two pointers that only move forward while the ends increase (a
/// range query's steps), by binary search otherwise.
fn window_bounds<'a>(
    ends: &'a [i64],
    range_ms: i64,
    samples: &'a [Sample],
) -> impl Iterator<Item = std::ops::Range<usize>> + 'a {
    let (mut lo, mut hi, mut prev) = (0usize, 0usize, i64::MIN);
    ends.iter().map(move |&end| {
        let start = end - range_ms;
        if end < prev {
            lo = samples.partition_point(|s| s.t <= start);
            hi = samples.partition_point(|s| s.t <= end);
        } else {
            while lo < samples.len() && samples[lo].t <= start {
                lo += 1;
            }
            hi = hi.max(lo);
            while hi < samples.len() && samples[hi].t <= end {
                hi += 1;
            }
        }
        prev = end;
        lo..hi.max(lo)
    })
}

fn window_of<'a>(m: &Matrix, samples: &'a [Sample], i: usize) -> &'a [Sample] {
    let end = m.ends[i];
    let lo = samples.partition_point(|s| s.t <= end - m.range_ms);
    let hi = samples.partition_point(|s| s.t <= end);
    &samples[lo..hi.max(lo)]
}

fn apply(name: &str, w: &Window, p0: f64, p1: f64) -> Option<f64> {
    let s = w.samples;
    let vals = || s.iter().map(|x| x.v);
    Some(match name {
        "rate" => extrapolated_rate(w, true, true)?,
        "increase" => extrapolated_rate(w, true, false)?,
        "delta" => extrapolated_rate(w, false, false)?,
        "irate" | "idelta" => {
            if s.len() < 2 {
                return None;
            }
            let (prev, last) = (s[s.len() - 2], s[s.len() - 1]);
            let mut v = last.v - prev.v;
            if name == "irate" {
                if last.v < prev.v {
                    v = last.v;
                }
                let dt = last.t - prev.t;
                if dt == 0 {
                    return None;
                }
                v /= dt as f64 / 1000.0;
            }
            v
        }
        "deriv" => {
            if s.len() < 2 {
                return None;
            }
            linear_regression(s, s[0].t).0
        }
        "predict_linear" => {
            if s.len() < 2 {
                return None;
            }
            let (slope, intercept) = linear_regression(s, w.step_time);
            slope * p0 + intercept
        }
        "resets" => s.windows(2).filter(|p| p[1].v < p[0].v).count() as f64,
        "changes" => s
            .windows(2)
            .filter(|p| !(p[1].v == p[0].v || (p[1].v.is_nan() && p[0].v.is_nan())))
            .count() as f64,
        "avg_over_time" => mean(vals()),
        "min_over_time" => vals().fold(s[0].v, |m, v| if v < m || m.is_nan() { v } else { m }),
        "max_over_time" => vals().fold(s[0].v, |m, v| if v > m || m.is_nan() { v } else { m }),
        "sum_over_time" => {
            let (sum, c) = vals().fold((0.0, 0.0), |(s, c), v| kahan_inc(v, s, c));
            if sum.is_infinite() {
                sum
            } else {
                sum + c
            }
        }
        "count_over_time" => s.len() as f64,
        "quantile_over_time" => quantile(p0, &mut vals().collect::<Vec<_>>()),
        "stddev_over_time" => variance_over_time(s).sqrt(),
        "stdvar_over_time" => variance_over_time(s),
        "last_over_time" => s[s.len() - 1].v,
        "first_over_time" => s[0].v,
        "present_over_time" => 1.0,
        "mad_over_time" => {
            let mut v: Vec<f64> = vals().collect();
            // A NaN in the window makes the deviation NaN, as in Prometheus.
            if v.iter().any(|x| x.is_nan()) {
                return Some(f64::NAN);
            }
            let median = quantile(0.5, &mut v);
            let mut dev: Vec<f64> = vals().map(|x| (x - median).abs()).collect();
            quantile(0.5, &mut dev)
        }
        "ts_of_last_over_time" => s[s.len() - 1].t as f64 / 1000.0,
        "ts_of_first_over_time" => s[0].t as f64 / 1000.0,
        "ts_of_min_over_time" | "ts_of_max_over_time" => {
            let max = name == "ts_of_max_over_time";
            let mut best = s[0];
            for x in &s[1..] {
                let better = if max { x.v >= best.v } else { x.v <= best.v };
                if better || best.v.is_nan() {
                    best = *x;
                }
            }
            best.t as f64 / 1000.0
        }
        "double_exponential_smoothing" | "holt_winters" => {
            if s.len() < 2 {
                return None;
            }
            let (sf, tf) = (p0, p1);
            let (mut s0, mut s1) = (0.0, s[0].v);
            let mut b = s[1].v - s[0].v;
            for (i, x) in s.iter().enumerate().skip(1) {
                if i > 1 {
                    b = tf * (s1 - s0) + (1.0 - tf) * b;
                }
                let y = (1.0 - sf) * (s1 + b);
                s0 = s1;
                s1 = sf * x.v + y;
            }
            s1
        }
        _ => return None,
    })
}

/// Prometheus's extrapolated rate/increase/delta over a window.
fn extrapolated_rate(w: &Window, is_counter: bool, is_rate: bool) -> Option<f64> {
    let s = w.samples;
    if s.len() < 2 {
        return None;
    }
    let range_start = w.end - w.range_ms;
    let range_end = w.end;
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut result = last.v - first.v;
    if is_counter && w.may_reset {
        let mut prev = first.v;
        for x in &s[1..] {
            if x.v < prev {
                result += prev;
            }
            prev = x.v;
        }
    }
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_step = sampled / (s.len() - 1) as f64;
    let threshold = avg_step * 1.1;
    if to_start >= threshold {
        to_start = avg_step / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
        // A counter cannot have been below zero: extrapolate at most to where it was zero.
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_step / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= w.range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// Least-squares slope and intercept (at `intercept_time`), compensated.
fn linear_regression(s: &[Sample], intercept_time: i64) -> (f64, f64) {
    let init = s[0].v;
    let const_y = s.iter().all(|x| x.v == init);
    if const_y {
        if init.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init);
    }
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    for p in s {
        n += 1.0;
        let x = (p.t - intercept_time) as f64 / 1000.0;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn variance_over_time(s: &[Sample]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for x in s {
        count += 1.0;
        let delta = x.v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (x.v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds_match_binary_search_for_any_order_of_ends() {
        let samples: Vec<Sample> = (0..50)
            .map(|i| Sample::new(i * 15 + (i % 3), 1.0))
            .collect();
        let ends = [0, 10, 100, 100, 400, 390, 900, 2000, -5, 750];
        for range in [1, 15, 60, 300] {
            let got: Vec<_> = window_bounds(&ends, range, &samples).collect();
            for (i, &end) in ends.iter().enumerate() {
                let lo = samples.partition_point(|s| s.t <= end - range);
                let hi = samples.partition_point(|s| s.t <= end).max(lo);
                assert_eq!(got[i], lo..hi, "end {end} range {range}");
            }
        }
    }
}
