//! Aggregation operators (`sum`, `topk`, `quantile`, ...) with `by` and
//! `without`, evaluated step by step over each group.

use crate::engine::{Arg, Ev, Result};
use crate::error::QueryError;
use crate::label_map::{label_map, LabelMap};
use crate::value::{format_value, project, with_label, StepSeries, Val};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier, VectorSelector};
use tsdb::{LabelSet, METRIC_NAME};

/// Neumaier-compensated addition, as Prometheus sums.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The mean of `values`, compensated, falling back to an incremental mean
/// when the plain sum would overflow (as Prometheus's `avg`).
pub(crate) fn mean(values: impl Iterator<Item = f64> + Clone) -> f64 {
    // Fast path: a compensated sum with no checks in the loop. A finite
    // final sum means no partial sum was infinite (inf + finite stays
    // infinite, inf - inf is NaN), so the loop below would have done the
    // very same additions.
    let (mut sum, mut c, mut n) = (0.0f64, 0.0f64, 0usize);
    for v in values.clone() {
        let t = sum + v;
        c += if sum.abs() >= v.abs() {
            (sum - t) + v
        } else {
            (v - t) + sum
        };
        sum = t;
        n += 1;
    }
    if sum.is_finite() && n > 0 {
        return (sum + c) / n as f64;
    }
    mean_with_overflow(values)
}

fn mean_with_overflow(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c, mut count) = (0.0, 0.0, 0.0);
    let mut mean = 0.0;
    let mut incremental = false;
    for v in values {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(v, sum, c);
            if count == 1.0 || !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        let corrected = mean + c;
        let (m, nc) = kahan_inc(v / count - corrected / count, mean, c);
        mean = m;
        c = nc;
    }
    if incremental {
        mean + c
    } else {
        (sum + c) / count
    }
}

/// Prometheus's quantile over unsorted values (NaN sorts first).
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let order = |a: &f64, b: &f64| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    };
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    // Only the two order statistics around the rank matter: select them
    // (linear) rather than sort (n log n). They are the values a sort
    // would put there, so the result is the same.
    let (lower, upper) = (lower as usize, upper as usize);
    let (_, at_lower, above) = values.select_nth_unstable_by(lower, order);
    let at_lower = *at_lower;
    let at_upper = if upper == lower {
        at_lower
    } else {
        above.iter().copied().min_by(order).unwrap_or(at_lower)
    };
    at_lower * (1.0 - weight) + at_upper * weight
}

/// Welford's running variance, as Prometheus's stddev/stdvar.
fn variance(values: &[f64]) -> f64 {
    let (mut count, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for &v in values {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        m2 += delta * (v - mean);
    }
    m2 / count
}

fn group_labels(labels: &LabelSet, modifier: &Option<LabelModifier>) -> LabelSet {
    match modifier {
        None => LabelSet::default(),
        Some(LabelModifier::Include(l)) => project(labels, &l.labels, true),
        Some(LabelModifier::Exclude(l)) => {
            labels.filtered(|x| x.name != METRIC_NAME && !l.labels.iter().any(|n| **n == *x.name))
        }
    }
}

fn scalar_param(ev: &Ev, a: &AggregateExpr, op: &str) -> Result<Vec<f64>> {
    let Some(p) = &a.param else {
        return Err(QueryError::bad(format!("{op} requires a parameter")));
    };
    match ev.eval(p)? {
        Val::Scalar(v) => Ok(v),
        other => Err(QueryError::bad(format!(
            "expected scalar parameter for {op}, got {}",
            other.type_name()
        ))),
    }
}

pub(crate) fn eval(ev: &Ev, a: &AggregateExpr) -> Result<Val> {
    let op = a.op.to_string().to_lowercase();
    let param_scalar = match op.as_str() {
        "topk" | "bottomk" | "quantile" | "limitk" | "limit_ratio" => {
            Some(scalar_param(ev, a, &op)?)
        }
        _ => None,
    };
    let param_string = if op == "count_values" {
        match a.param.as_deref().map(|p| ev.eval(p)).transpose()? {
            Some(Val::Str(s)) => Some(s),
            _ => return Err(QueryError::bad("count_values requires a string parameter")),
        }
    } else {
        None
    };
    if let (Some(fold), Some(vs)) = (Fold::of(&op), as_selector(&a.expr)) {
        return fold_selector(ev, a, vs, fold);
    }
    let input = match ev.eval(&a.expr)? {
        Val::Vector(v) => v,
        other => {
            return Err(QueryError::bad(format!(
                "expected instant vector in aggregation, got {}",
                other.type_name()
            )))
        }
    };
    // Group the input series.
    let mut group_of: Vec<usize> = Vec::with_capacity(input.len());
    let mut groups: Vec<LabelSet> = Vec::new();
    let mut index: LabelMap<LabelSet, usize> = label_map();
    for s in &input {
        let g = group_labels(&s.labels, &a.modifier);
        let i = *index.entry(g.clone()).or_insert_with(|| {
            groups.push(g);
            groups.len() - 1
        });
        group_of.push(i);
    }
    let n = ev.n;
    match op.as_str() {
        "topk" | "bottomk" | "limitk" | "limit_ratio" => {
            let k = param_scalar.unwrap_or_default();
            select_series(ev, input, &group_of, groups.len(), &op, &k)
        }
        "count_values" => {
            let label = param_string.unwrap_or_default();
            if !tsdb::labels::is_valid_label_name(&label) {
                return Err(QueryError::exec(format!("invalid label name {label:?}")));
            }
            let mut out: Vec<StepSeries> = Vec::new();
            let mut out_index: LabelMap<LabelSet, usize> = label_map();
            for (s, &g) in input.iter().zip(&group_of) {
                for (step, v) in s.values.iter().enumerate() {
                    let Some(v) = v else { continue };
                    let labels = with_label(&groups[g], &label, &format_value(*v));
                    let i = *out_index.entry(labels.clone()).or_insert_with(|| {
                        out.push(StepSeries {
                            labels,
                            values: vec![None; n],
                            drop_name: false,
                        });
                        out.len() - 1
                    });
                    let slot = &mut out[i].values[step];
                    *slot = Some(slot.unwrap_or(0.0) + 1.0);
                }
            }
            Ok(Val::Vector(out))
        }
        _ => {
            if let Some(fold) = Fold::of(&op) {
                let mut folder = Folder::new(fold, n);
                for g in groups {
                    folder.add_group(g);
                }
                for (s, &g) in input.iter().zip(&group_of) {
                    folder.add(g, s);
                }
                return Ok(folder.finish());
            }
            let mut out: Vec<StepSeries> = groups
                .iter()
                .map(|g| StepSeries {
                    labels: g.clone(),
                    values: vec![None; n],
                    drop_name: false,
                })
                .collect();
            for (s, &g) in input.iter().zip(&group_of) {
                out[g].drop_name |= s.drop_name;
            }
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
            for (i, &g) in group_of.iter().enumerate() {
                members[g].push(i);
            }
            let mut buf = Vec::new();
            for step in 0..n {
                for (g, idx) in members.iter().enumerate() {
                    buf.clear();
                    buf.extend(idx.iter().filter_map(|&i| input[i].values[step]));
                    if buf.is_empty() {
                        continue;
                    }
                    let v = match op.as_str() {
                        "sum" => {
                            let (s, c) =
                                buf.iter().fold((0.0, 0.0), |(s, c), v| kahan_inc(*v, s, c));
                            s + c
                        }
                        "avg" => mean(buf.iter().copied()),
                        "count" => buf.len() as f64,
                        "group" => 1.0,
                        "min" => {
                            buf.iter()
                                .skip(1)
                                .fold(buf[0], |m, &v| if m > v || m.is_nan() { v } else { m })
                        }
                        "max" => {
                            buf.iter()
                                .skip(1)
                                .fold(buf[0], |m, &v| if m < v || m.is_nan() { v } else { m })
                        }
                        "stdvar" => variance(&buf),
                        "stddev" => variance(&buf).sqrt(),
                        "quantile" => {
                            let q = param_scalar.as_ref().map_or(f64::NAN, |p| p[step]);
                            ev.sh.check_quantile(q, Arg(0));
                            quantile(q, &mut buf)
                        }
                        other => {
                            return Err(QueryError::bad(format!("unknown aggregation {other:?}")))
                        }
                    };
                    out[g].values[step] = Some(v);
                }
            }
            Ok(Val::Vector(
                out.into_iter().filter(|s| !s.is_empty()).collect(),
            ))
        }
    }
}

/// The operators folded series by series (each series' values read in
/// order, not one step across all series at a time), adding in input order
/// per step as Prometheus does, so results are identical.
#[derive(Clone, Copy, PartialEq)]
enum Fold {
    Sum,
    Count,
    Group,
    Min,
    Max,
}

impl Fold {
    fn of(op: &str) -> Option<Fold> {
        Some(match op {
            "sum" => Fold::Sum,
            "count" => Fold::Count,
            "group" => Fold::Group,
            "min" => Fold::Min,
            "max" => Fold::Max,
            _ => return None,
        })
    }
}

/// A folding aggregation's groups as series arrive: per group and step the
/// running value and, for sums, its compensation.
struct Folder {
    fold: Fold,
    n: usize,
    acc: Vec<(f64, f64)>,
    /// One output series per group; a step's slot is set once a value came.
    out: Vec<StepSeries>,
}

impl Folder {
    fn new(fold: Fold, n: usize) -> Self {
        Folder {
            fold,
            n,
            acc: Vec::new(),
            out: Vec::new(),
        }
    }

    /// A new group with these labels; returns its index.
    fn add_group(&mut self, labels: LabelSet) -> usize {
        self.out.push(StepSeries {
            labels,
            values: vec![None; self.n],
            drop_name: false,
        });
        self.acc.resize(self.out.len() * self.n, (0.0, 0.0));
        self.out.len() - 1
    }

    /// Folds series `s` into group `g`.
    fn add(&mut self, g: usize, s: &StepSeries) {
        let n = self.n;
        let cells = &mut self.acc[g * n..(g + 1) * n];
        let out = &mut self.out[g];
        out.drop_name |= s.drop_name;
        for ((v, cell), seen) in s.values.iter().zip(cells.iter_mut()).zip(&mut out.values) {
            let Some(v) = *v else { continue };
            let first = seen.is_none();
            *seen = Some(0.0);
            match self.fold {
                Fold::Sum => *cell = kahan_inc(v, cell.0, cell.1),
                Fold::Count => cell.0 += 1.0,
                Fold::Group => cell.0 = 1.0,
                Fold::Min => {
                    if first || cell.0 > v || cell.0.is_nan() {
                        cell.0 = v;
                    }
                }
                Fold::Max => {
                    if first || cell.0 < v || cell.0.is_nan() {
                        cell.0 = v;
                    }
                }
            }
        }
    }

    fn finish(mut self) -> Val {
        let n = self.n;
        for (g, series) in self.out.iter_mut().enumerate() {
            for (step, slot) in series.values.iter_mut().enumerate() {
                if slot.is_some() {
                    let (v, c) = self.acc[g * n + step];
                    *slot = Some(if self.fold == Fold::Sum { v + c } else { v });
                }
            }
        }
        Val::Vector(self.out.into_iter().filter(|s| !s.is_empty()).collect())
    }
}

/// Step slots a streamed selector hands to a folding aggregation at once
/// (16 bytes each): the selection is never held whole, however wide.
const STREAM_CHUNK_VALUES: usize = 1 << 18;

/// A folding aggregation straight over a vector selector: the selector's
/// series are folded chunk by chunk as they are read, so `count by (job)
/// ({__name__=~"node_.+"})` over hours of 100 000 series holds one chunk
/// and the groups, not every series' steps.
fn fold_selector(ev: &Ev, a: &AggregateExpr, vs: &VectorSelector, fold: Fold) -> Result<Val> {
    let mut folder = Folder::new(fold, ev.n);
    let mut index: LabelMap<LabelSet, usize> = label_map();
    let budget = ev.sh.budget();
    ev.select_instant_chunks(vs, false, STREAM_CHUNK_VALUES, |chunk| {
        for s in &chunk {
            let labels = group_labels(&s.labels, &a.modifier);
            let g = match index.get(&labels) {
                Some(&g) => g,
                None => {
                    // A group holds its steps and their running values
                    // (`sum without (instance)` can make one per series):
                    // counted as they are made, settled when the node ends.
                    budget.hold(2 * ev.n)?;
                    let g = folder.add_group(labels.clone());
                    index.insert(labels, g);
                    g
                }
            };
            folder.add(g, s);
        }
        Ok(())
    })?;
    Ok(folder.finish())
}

/// The vector selector an expression is, under any parentheses.
fn as_selector(e: &Expr) -> Option<&VectorSelector> {
    match e {
        Expr::Paren(p) => as_selector(&p.expr),
        Expr::VectorSelector(vs) => Some(vs),
        _ => None,
    }
}

/// Prometheus's label hash position in [0, 1], for `limit_ratio`.
fn ratio_position(labels: &LabelSet) -> f64 {
    crate::label_hash::prometheus_label_hash(labels) as f64 / u64::MAX as f64
}

/// topk, bottomk, limitk, limit_ratio: keep some input series per group and step.
// Steps index several parallel arrays at once.
#[allow(clippy::needless_range_loop)]
fn select_series(
    ev: &Ev,
    mut input: Vec<StepSeries>,
    group_of: &[usize],
    groups: usize,
    op: &str,
    k: &[f64],
) -> Result<Val> {
    let n = ev.n;
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (i, &g) in group_of.iter().enumerate() {
        members[g].push(i);
    }
    let mut keep = vec![vec![false; n]; input.len()];
    // For instant queries, the order Prometheus returns: by group, then value.
    let mut order: Vec<usize> = Vec::new();
    let mut present: Vec<usize> = Vec::new();
    for step in 0..n {
        let mut kv = k.get(step).copied().unwrap_or(f64::NAN);
        if op == "limit_ratio" {
            if kv.is_nan() {
                return Err(QueryError::exec("Ratio value is NaN"));
            }
            // Out of range: capped, with Prometheus 3's warning.
            if !(-1.0..=1.0).contains(&kv) {
                let capped = kv.clamp(-1.0, 1.0);
                ev.sh.warn_at(
                    Arg(0),
                    format_args!(
                        "ratio value should be between -1 and 1, got {}, capping to {}",
                        format_value(kv),
                        format_value(capped)
                    ),
                );
                kv = capped;
            }
        } else if kv.is_nan() {
            return Err(QueryError::exec("Parameter value is NaN"));
        } else if kv.abs() >= 9.2e18 {
            return Err(QueryError::exec(format!(
                "scalar value {} overflows int64",
                format_value(kv)
            )));
        }
        let kk = if op == "limit_ratio" { 0 } else { kv as i64 };
        let k_keep = kk.max(0) as usize;
        for idx in &members {
            present.clear();
            present.extend(
                idx.iter()
                    .copied()
                    .filter(|&i| input[i].values[step].is_some()),
            );
            match op {
                "limitk" => present.truncate(k_keep),
                "limit_ratio" => present.retain(|&i| {
                    let p = ratio_position(&input[i].labels);
                    (kv >= 0.0 && p < kv) || (kv < 0.0 && p >= 1.0 + kv)
                }),
                _ => {
                    let top = op == "topk";
                    let val = |i: usize| input[i].values[step].unwrap_or(f64::NAN);
                    // NaN ranks below every number for both topk and bottomk;
                    // ties keep input order, so selecting the first k under
                    // this total order picks what a stable sort would.
                    let rank = |a: &usize, b: &usize| {
                        let (x, y) = (val(*a), val(*b));
                        let by_value = match (x.is_nan(), y.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ if top => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                            _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                        };
                        by_value.then(a.cmp(b))
                    };
                    if k_keep == 0 {
                        present.clear();
                    } else if k_keep < present.len() {
                        present.select_nth_unstable_by(k_keep - 1, rank);
                        present.truncate(k_keep);
                    }
                    // Only an instant vector's order is visible.
                    if n == 1 {
                        present.sort_unstable_by(rank);
                    }
                }
            };
            let chosen = &present;
            for &i in chosen {
                keep[i][step] = true;
            }
            if n == 1 {
                order.extend_from_slice(chosen);
            }
        }
    }
    for (s, kp) in input.iter_mut().zip(&keep) {
        for (v, k) in s.values.iter_mut().zip(kp) {
            if !k {
                *v = None;
            }
        }
    }
    if n == 1 {
        let mut slots: Vec<Option<StepSeries>> = input.into_iter().map(Some).collect();
        return Ok(Val::Vector(
            order.into_iter().filter_map(|i| slots[i].take()).collect(),
        ));
    }
    Ok(Val::Vector(
        input.into_iter().filter(|s| !s.is_empty()).collect(),
    ))
}
