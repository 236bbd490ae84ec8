//! The function library: instant-vector functions, label functions,
//! sorting, dates and `absent`; range-vector functions live in
//! `range_functions.rs`, classic histograms in `histogram.rs`.

use crate::engine::{Ev, Result};
use crate::error::QueryError;
use crate::value::{with_label, StepSeries, Val};
use crate::{histogram, range_functions};
use chrono::{DateTime, Datelike, Timelike};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{Call, Expr};
use std::cmp::Ordering;
use tsdb::{Label, LabelSet, METRIC_NAME};

pub(crate) fn vector_arg(ev: &Ev, e: &Expr, f: &str) -> Result<Vec<StepSeries>> {
    match ev.eval(e)? {
        Val::Vector(v) => Ok(v),
        other => Err(QueryError::bad(format!(
            "expected type instant vector in call to function {f:?}, got {}",
            other.type_name()
        ))),
    }
}

pub(crate) fn scalar_arg(ev: &Ev, e: &Expr, f: &str) -> Result<Vec<f64>> {
    match ev.eval(e)? {
        Val::Scalar(v) => Ok(v),
        other => Err(QueryError::bad(format!(
            "expected type scalar in call to function {f:?}, got {}",
            other.type_name()
        ))),
    }
}

fn string_arg(ev: &Ev, e: &Expr, f: &str) -> Result<String> {
    match ev.eval(e)? {
        Val::Str(s) => Ok(s),
        other => Err(QueryError::bad(format!(
            "expected type string in call to function {f:?}, got {}",
            other.type_name()
        ))),
    }
}

/// Go's `math.Max`: NaN wins, and +0 beats -0.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() {
            b
        } else {
            a
        }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN wins, and -0 beats +0.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else if a < b {
        a
    } else {
        b
    }
}

/// Applies `f(value, step)` to every value; drops `__name__`.
fn map_values(mut vs: Vec<StepSeries>, f: impl Fn(f64, usize) -> Option<f64>) -> Vec<StepSeries> {
    for s in &mut vs {
        for (i, v) in s.values.iter_mut().enumerate() {
            if let Some(x) = *v {
                *v = f(x, i);
            }
        }
        s.drop_name = true;
    }
    vs.retain(|s| !s.is_empty());
    vs
}

fn math_fn(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sqrt" => f64::sqrt,
        "sgn" => |v: f64| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        },
        "acos" => f64::acos,
        "acosh" => f64::acosh,
        "asin" => f64::asin,
        "asinh" => f64::asinh,
        "atan" => f64::atan,
        "atanh" => f64::atanh,
        "cos" => f64::cos,
        "cosh" => f64::cosh,
        "sin" => f64::sin,
        "sinh" => f64::sinh,
        "tan" => f64::tan,
        "tanh" => f64::tanh,
        "deg" => |v: f64| v * 180.0 / std::f64::consts::PI,
        "rad" => |v: f64| v * std::f64::consts::PI / 180.0,
        _ => return None,
    })
}

fn date_fn(name: &str) -> Option<fn(DateTime<chrono::Utc>) -> f64> {
    Some(match name {
        "day_of_month" => |d| f64::from(d.day()),
        "day_of_week" => |d| f64::from(d.weekday().num_days_from_sunday()),
        "day_of_year" => |d| f64::from(d.ordinal()),
        "days_in_month" => |d| {
            let (y, m) = (d.year(), d.month());
            let next = if m == 12 {
                chrono::NaiveDate::from_ymd_opt(y + 1, 1, 1)
            } else {
                chrono::NaiveDate::from_ymd_opt(y, m + 1, 1)
            };
            let first = chrono::NaiveDate::from_ymd_opt(y, m, 1);
            match (first, next) {
                (Some(a), Some(b)) => (b - a).num_days() as f64,
                _ => f64::NAN,
            }
        },
        "hour" => |d| f64::from(d.hour()),
        "minute" => |d| f64::from(d.minute()),
        "month" => |d| f64::from(d.month()),
        "year" => |d| f64::from(d.year()),
        _ => return None,
    })
}

pub(crate) fn eval(ev: &Ev, c: &Call) -> Result<Val> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
    let arg = |i: usize| -> Result<&Expr> {
        args.get(i)
            .copied()
            .ok_or_else(|| QueryError::bad(format!("missing argument {} to {name}()", i + 1)))
    };
    if let Some(f) = math_fn(name) {
        let v = vector_arg(ev, arg(0)?, name)?;
        return Ok(Val::Vector(map_values(v, |x, _| Some(f(x)))));
    }
    if let Some(f) = date_fn(name) {
        let v = match args.first() {
            Some(e) => vector_arg(ev, e, name)?,
            None => vec![StepSeries {
                labels: LabelSet::default(),
                values: ev.times().map(|t| Some(t as f64 / 1000.0)).collect(),
                drop_name: false,
            }],
        };
        return Ok(Val::Vector(map_values(v, |x, _| {
            if !x.is_finite() || x.abs() > 1e17 {
                return Some(f64::NAN);
            }
            let secs = x.floor() as i64;
            DateTime::from_timestamp(secs, 0).map(f)
        })));
    }
    if range_functions::is_range_function(name) {
        return range_functions::eval(ev, name, &args);
    }
    match name {
        "time" => Ok(Val::Scalar(ev.times().map(|t| t as f64 / 1000.0).collect())),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; ev.n])),
        // The query's own bounds and step in seconds (Prometheus 3's
        // experimental duration functions): constant over the query.
        "start" | "end" | "range" | "step" => {
            let sh = ev.sh;
            let ms = match name {
                "start" => sh.query_start,
                "end" => sh.query_end,
                "range" => sh.query_end.saturating_sub(sh.query_start),
                _ => sh.query_step,
            };
            Ok(Val::Scalar(vec![ms as f64 / 1000.0; ev.n]))
        }
        "min_of" | "max_of" => {
            let a = scalar_arg(ev, arg(0)?, name)?;
            let b = scalar_arg(ev, arg(1)?, name)?;
            let pick = |x: f64, y: f64| {
                if x.is_nan() || y.is_nan() {
                    f64::NAN
                } else if name == "min_of" {
                    x.min(y)
                } else {
                    x.max(y)
                }
            };
            Ok(Val::Scalar(
                a.into_iter().zip(b).map(|(x, y)| pick(x, y)).collect(),
            ))
        }
        "vector" => {
            let v = scalar_arg(ev, arg(0)?, name)?;
            Ok(Val::Vector(vec![StepSeries {
                labels: LabelSet::default(),
                values: v.into_iter().map(Some).collect(),
                drop_name: false,
            }]))
        }
        "scalar" => {
            let v = vector_arg(ev, arg(0)?, name)?;
            Ok(Val::Scalar(
                (0..ev.n)
                    .map(|i| {
                        let mut present = v.iter().filter_map(|s| s.values[i]);
                        match (present.next(), present.next()) {
                            (Some(x), None) => x,
                            _ => f64::NAN,
                        }
                    })
                    .collect(),
            ))
        }
        "timestamp" => timestamp(ev, arg(0)?),
        "round" => {
            let v = vector_arg(ev, arg(0)?, name)?;
            let to = match args.get(1) {
                Some(e) => scalar_arg(ev, e, name)?,
                None => vec![1.0; ev.n],
            };
            Ok(Val::Vector(map_values(v, |x, i| {
                // Prometheus rounds half up, to a multiple of `to`.
                let inv = 1.0 / to[i];
                Some((x * inv + 0.5).floor() / inv)
            })))
        }
        "clamp" => {
            let v = vector_arg(ev, arg(0)?, name)?;
            let lo = scalar_arg(ev, arg(1)?, name)?;
            let hi = scalar_arg(ev, arg(2)?, name)?;
            Ok(Val::Vector(map_values(v, |x, i| {
                (lo[i] <= hi[i] || lo[i].is_nan() || hi[i].is_nan())
                    .then(|| go_max(lo[i], go_min(hi[i], x)))
            })))
        }
        "clamp_min" | "clamp_max" => {
            let v = vector_arg(ev, arg(0)?, name)?;
            let b = scalar_arg(ev, arg(1)?, name)?;
            let is_min = name == "clamp_min";
            Ok(Val::Vector(map_values(v, |x, i| {
                Some(if is_min {
                    go_max(b[i], x)
                } else {
                    go_min(b[i], x)
                })
            })))
        }
        "label_replace" => label_replace(ev, &args),
        "label_join" => label_join(ev, &args),
        "sort" | "sort_desc" => {
            let mut v = vector_arg(ev, arg(0)?, name)?;
            if ev.n == 1 {
                let desc = name == "sort_desc";
                let val = |s: &StepSeries| s.values[0].unwrap_or(f64::NAN);
                v.sort_by(|a, b| {
                    let (x, y) = (val(a), val(b));
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => Ordering::Equal,
                        (true, false) => Ordering::Greater,
                        (false, true) => Ordering::Less,
                        _ if desc => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
                        _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                    }
                });
            }
            Ok(Val::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = vector_arg(ev, arg(0)?, name)?;
            let mut names = Vec::new();
            for e in args.iter().skip(1) {
                names.push(string_arg(ev, e, name)?);
            }
            let desc = name == "sort_by_label_desc";
            v.sort_by(|a, b| {
                let mut ord = Ordering::Equal;
                for n in &names {
                    ord = natural_cmp(a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                    if ord != Ordering::Equal {
                        break;
                    }
                }
                let ord = ord.then_with(|| a.labels.cmp(&b.labels));
                if desc {
                    ord.reverse()
                } else {
                    ord
                }
            });
            Ok(Val::Vector(v))
        }
        "absent" => {
            let e = arg(0)?;
            let v = vector_arg(ev, e, name)?;
            Ok(Val::Vector(absent(ev.n, &v, e)))
        }
        "histogram_quantile" => {
            let q = scalar_arg(ev, arg(0)?, name)?;
            let v = vector_arg(ev, arg(1)?, name)?;
            let at = histogram::ArgsAt {
                quantile: 0,
                buckets: 1,
            };
            histogram::quantile(ev, &q, v, at).map(Val::Vector)
        }
        "histogram_quantiles" => {
            // One histogram_quantile per φ, each result labelled with φ.
            let v = vector_arg(ev, arg(0)?, name)?;
            let label = string_arg(ev, arg(1)?, name)?;
            if !tsdb::labels::is_valid_label_name(&label) {
                return Err(QueryError::bad(format!(
                    "invalid label name {label:?} in {name}()"
                )));
            }
            if let Some(s) = v.iter().find(|s| s.labels.get(&label).is_some()) {
                return Err(QueryError::Execution(format!(
                    "{name}(): label {label:?} already exists on input series {}",
                    s.labels
                )));
            }
            let mut out = Vec::new();
            for (i, e) in args.iter().enumerate().skip(2) {
                let q = scalar_arg(ev, e, name)?;
                let at = histogram::ArgsAt {
                    quantile: i,
                    buckets: 0,
                };
                // φ is a number, constant over the steps in practice; the
                // label carries its first step's value.
                let phi = q.first().copied().unwrap_or(f64::NAN);
                let text = quantile_label(phi);
                for mut s in histogram::quantile(ev, &q, v.clone(), at)? {
                    s.labels = with_label(&s.labels, &label, &text);
                    out.push(s);
                }
            }
            Ok(Val::Vector(out))
        }
        "histogram_fraction" => {
            let lo = scalar_arg(ev, arg(0)?, name)?;
            let hi = scalar_arg(ev, arg(1)?, name)?;
            let v = vector_arg(ev, arg(2)?, name)?;
            histogram::fraction(ev, &lo, &hi, v, 2).map(Val::Vector)
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            // Float series carry no native histograms: the result is empty.
            vector_arg(ev, arg(0)?, name)?;
            Ok(Val::Vector(Vec::new()))
        }
        other => Err(QueryError::bad(format!(
            "unknown function with name {other:?}"
        ))),
    }
}

/// φ as `histogram_quantiles` labels it: `0.0`, `0.25`, `-0.1`, `NaN`, `+Inf`.
fn quantile_label(phi: f64) -> String {
    if phi.is_nan() {
        "NaN".into()
    } else if phi.is_infinite() {
        if phi > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if phi.fract() == 0.0 && phi.abs() < 1e15 {
        format!("{phi:.1}")
    } else {
        format!("{phi}")
    }
}

/// Compares strings with digit runs compared as numbers.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (&x[..nx], &y[..ny]);
                let tx = dx.iter().skip_while(|c| **c == b'0').count();
                let ty = dy.iter().skip_while(|c| **c == b'0').count();
                let ord = tx
                    .cmp(&ty)
                    .then_with(|| dx[nx - tx..].cmp(&dy[ny - ty..]))
                    .then_with(|| nx.cmp(&ny));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

/// `timestamp(v)`: the time of each sample, in seconds.
fn timestamp(ev: &Ev, e: &Expr) -> Result<Val> {
    let inner = match e {
        Expr::Paren(p) => p.expr.as_ref(),
        other => other,
    };
    if let Expr::VectorSelector(vs) = inner {
        let mut out = ev.eval_vector_selector_timestamps(vs)?;
        for s in &mut out {
            s.drop_name = true;
        }
        return Ok(Val::Vector(out));
    }
    let v = vector_arg(ev, e, "timestamp")?;
    let times: Vec<f64> = ev.times().map(|t| t as f64 / 1000.0).collect();
    Ok(Val::Vector(map_values(v, |_, i| Some(times[i]))))
}

/// Labels for `absent(...)`: the equality matchers of a plain selector.
pub(crate) fn absent_labels(e: &Expr) -> LabelSet {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return LabelSet::default(),
    };
    let ms = &vs.matchers.matchers;
    // A label constrained more than once has no single value to report.
    let once = |name: &str| ms.iter().filter(|m| m.name == name).count() == 1;
    let labels: Vec<Label> = ms
        .iter()
        .filter(|m| m.name != METRIC_NAME && matches!(m.op, PMatchOp::Equal) && once(&m.name))
        .map(|m| Label::new(m.name.as_str(), m.value.as_str()))
        .collect();
    LabelSet::from_labels(labels)
}

fn absent(n: usize, v: &[StepSeries], e: &Expr) -> Vec<StepSeries> {
    let values: Vec<Option<f64>> = (0..n)
        .map(|i| (!v.iter().any(|s| s.values[i].is_some())).then_some(1.0))
        .collect();
    let s = StepSeries {
        labels: absent_labels(e),
        values,
        drop_name: false,
    };
    if s.is_empty() {
        Vec::new()
    } else {
        vec![s]
    }
}

/// Series that now have equal labels become one, unless two of them have
/// a value at the same step.
fn merge_same_labels(v: Vec<StepSeries>) -> Result<Vec<StepSeries>> {
    let mut index: crate::label_map::LabelMap<LabelSet, usize> = crate::label_map::label_map();
    let mut out: Vec<StepSeries> = Vec::with_capacity(v.len());
    for s in v {
        match index.get(&s.labels) {
            Some(&i) => {
                let target = &mut out[i];
                for (d, x) in target.values.iter_mut().zip(&s.values) {
                    if x.is_some() {
                        if d.is_some() {
                            return Err(QueryError::exec(
                                "vector cannot contain metrics with the same labelset",
                            ));
                        }
                        *d = *x;
                    }
                }
                target.drop_name &= s.drop_name;
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    Ok(out)
}

fn label_replace(ev: &Ev, args: &[&Expr]) -> Result<Val> {
    const F: &str = "label_replace";
    if args.len() != 5 {
        return Err(QueryError::bad("label_replace takes 5 arguments"));
    }
    let mut v = vector_arg(ev, args[0], F)?;
    let dst = string_arg(ev, args[1], F)?;
    let repl = string_arg(ev, args[2], F)?;
    let src = string_arg(ev, args[3], F)?;
    let re_text = string_arg(ev, args[4], F)?;
    let re = regex::Regex::new(&format!("^(?s:{re_text})$")).map_err(|e| {
        QueryError::bad(format!(
            "invalid regular expression in label_replace(): {e}"
        ))
    })?;
    if !tsdb::labels::is_valid_label_name(&dst) {
        return Err(QueryError::bad(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    for s in &mut v {
        let src_val = s.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&src_val) {
            let mut out = String::new();
            caps.expand(&repl, &mut out);
            s.labels = with_label(&s.labels, &dst, &out);
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
    }
    Ok(Val::Vector(merge_same_labels(v)?))
}

fn label_join(ev: &Ev, args: &[&Expr]) -> Result<Val> {
    const F: &str = "label_join";
    if args.len() < 3 {
        return Err(QueryError::bad("label_join takes at least 3 arguments"));
    }
    let mut v = vector_arg(ev, args[0], F)?;
    let dst = string_arg(ev, args[1], F)?;
    let sep = string_arg(ev, args[2], F)?;
    let mut srcs = Vec::new();
    for e in &args[3..] {
        let s = string_arg(ev, e, F)?;
        if !tsdb::labels::is_valid_label_name(&s) {
            return Err(QueryError::bad(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if !tsdb::labels::is_valid_label_name(&dst) {
        return Err(QueryError::bad(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    for s in &mut v {
        let joined: Vec<&str> = srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
        let joined = joined.join(&sep);
        s.labels = with_label(&s.labels, &dst, &joined);
        if dst == METRIC_NAME {
            s.drop_name = false;
        }
    }
    Ok(Val::Vector(merge_same_labels(v)?))
}
