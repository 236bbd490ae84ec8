//! Evaluating LogQL over the store: log queries (newest or oldest `limit`
//! entries, grouped into streams by their final labels) and metric
//! queries (range aggregations at each step, then vector aggregations and
//! binary operations).

use super::ast::*;
use super::pipeline::{self, Labels, ERROR_LABEL};
use crate::block::Entry;
use crate::error::LogStoreError;
use crate::select::Selection;
use crate::store::LogStore;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

#[derive(Debug, Clone)]
pub struct QueryParams {
    /// Log queries read `[start, end)`; metric queries evaluate at
    /// `start, start + step, ... <= end`.
    pub start: i64,
    pub end: i64,
    pub step_ns: i64,
    pub limit: usize,
    pub direction: Direction,
    /// Series a metric query may return.
    pub max_series: usize,
    /// When to give up: a deadline and a flag the caller sets when nobody
    /// waits for the answer any more.
    pub stop: Stop,
}

/// When a query stops early: past its deadline, or cancelled (the client
/// went away). Checked before each block, so a query stops within one
/// block's work (at most 256 lines).
#[derive(Debug, Clone, Default)]
pub struct Stop {
    pub deadline: Option<std::time::Instant>,
    pub cancelled: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Stop {
    pub fn check(&self) -> Result<(), EvalError> {
        if self
            .cancelled
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(EvalError::Cancelled);
        }
        if self.deadline.is_some_and(|d| std::time::Instant::now() > d) {
            return Err(EvalError::Timeout);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub labels: Labels,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    /// (step time in ns, value)
    pub points: Vec<(i64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    Streams(Vec<Stream>),
    Matrix(Vec<Series>),
    Scalar(f64),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryStats {
    pub blocks: u64,
    pub entries_scanned: u64,
    pub bytes_scanned: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Store(#[from] LogStoreError),
    #[error("{0}")]
    Limit(String),
    #[error("{0}")]
    Invalid(String),
    /// The query ran past its deadline (Loki: 503 on a query timeout).
    #[error("query timed out")]
    Timeout,
    /// Nobody waits for the answer any more.
    #[error("query cancelled")]
    Cancelled,
}

pub fn evaluate(
    store: &LogStore,
    expr: &Expr,
    p: &QueryParams,
) -> Result<(QueryResult, QueryStats), EvalError> {
    let mut stats = QueryStats::default();
    let result = match expr {
        Expr::Log(l) => QueryResult::Streams(log_query(store, l, p, &mut stats)?),
        Expr::Metric(m) => {
            if p.step_ns <= 0 {
                return Err(EvalError::Invalid("zero or negative query resolution step widths are not accepted. Try a positive integer".into()));
            }
            let steps = (p.end - p.start) / p.step_ns + 1;
            if steps > 11_000 {
                return Err(EvalError::Limit(
                    "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
                ));
            }
            let v = metric(store, m, p, &mut stats)?;
            check_returned_series(&v, p.max_series)?;
            match v {
                Value::Scalar(v) => QueryResult::Scalar(v),
                Value::Matrix(mut s) => {
                    s.retain(|s| !s.points.is_empty());
                    s.sort_by(|a, b| a.labels.cmp(&b.labels));
                    QueryResult::Matrix(s)
                }
            }
        }
    };
    Ok((result, stats))
}

/// A kept entry, ordered so the heap's top is the first to give up.
struct Kept {
    key: (i64, u64),
    backward: bool,
    labels: Labels,
    entry: Entry,
}

impl PartialEq for Kept {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Kept {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Backward keeps the newest: the top (max) is the oldest.
        if self.backward {
            o.key.cmp(&self.key)
        } else {
            self.key.cmp(&o.key)
        }
    }
}

fn log_query(
    store: &LogStore,
    l: &LogExpr,
    p: &QueryParams,
    stats: &mut QueryStats,
) -> Result<Vec<Stream>, EvalError> {
    let contains = pipeline::required_substrings(&l.stages);
    let end_incl = p.end.saturating_sub(1);
    let sel = Selection {
        matchers: &l.matchers,
        start: p.start,
        end: end_incl,
        contains: &contains,
    };
    let mut blocks = store.select(&sel)?;
    let backward = p.direction == Direction::Backward;
    if backward {
        blocks.sort_by_key(|b| std::cmp::Reverse(b.end));
    } else {
        blocks.sort_by_key(|b| b.start);
    }
    let with_labels = pipeline::touches_labels(&l.stages);
    let limit = p.limit.max(1);
    let mut heap: BinaryHeap<Kept> = BinaryHeap::new();
    let mut seq = 0u64;
    for b in &blocks {
        p.stop.check()?;
        if heap.len() >= limit {
            let worst = heap.peek().map(|k| k.key.0);
            let done = match worst {
                Some(w) if backward => b.end < w,
                Some(w) => b.start > w,
                None => false,
            };
            if done {
                break;
            }
        }
        stats.blocks += 1;
        let stream_labels = Labels::from_set(&b.labels);
        b.for_each_entry(|ts, line| {
            if ts < p.start || ts > end_incl {
                return;
            }
            stats.entries_scanned += 1;
            stats.bytes_scanned += line.len() as u64;
            // A full heap keeps only entries better than its worst.
            if heap.len() >= limit {
                if let Some(top) = heap.peek() {
                    let worse = if backward {
                        ts < top.key.0
                    } else {
                        ts > top.key.0
                    };
                    if worse {
                        return;
                    }
                }
            }
            let base = with_labels.then(|| stream_labels.clone());
            let Some((line, labels)) = pipeline::run(&l.stages, &b.labels, ts, line, base) else {
                return;
            };
            seq += 1;
            let key = (ts, if backward { u64::MAX - seq } else { seq });
            let kept = Kept {
                key,
                backward,
                labels: labels.map_or_else(|| stream_labels.clone(), Labels::normalized),
                entry: Entry {
                    ts,
                    line: line.into_owned(),
                },
            };
            if heap.len() < limit {
                heap.push(kept);
            } else if heap.peek().is_some_and(|top| kept < *top) {
                heap.pop();
                heap.push(kept);
            }
        })?;
    }
    let mut kept = heap.into_sorted_vec();
    // Sorted best first: newest first (backward) or oldest first (forward).
    let mut streams: BTreeMap<Labels, Vec<Entry>> = BTreeMap::new();
    for k in kept.drain(..) {
        streams.entry(k.labels).or_default().push(k.entry);
    }
    Ok(streams
        .into_iter()
        .map(|(labels, entries)| Stream { labels, entries })
        .collect())
}

enum Value {
    Scalar(f64),
    Matrix(Vec<Series>),
}

fn step_times(p: &QueryParams) -> Vec<i64> {
    let mut out = Vec::new();
    let mut t = p.start;
    while t <= p.end {
        out.push(t);
        t = match t.checked_add(p.step_ns) {
            Some(n) => n,
            None => break,
        };
    }
    out
}

fn metric(
    store: &LogStore,
    m: &MetricExpr,
    p: &QueryParams,
    stats: &mut QueryStats,
) -> Result<Value, EvalError> {
    match m {
        MetricExpr::Scalar(v) => Ok(Value::Scalar(*v)),
        MetricExpr::VectorLit(v) => Ok(Value::Matrix(vec![Series {
            labels: Labels::default(),
            points: step_times(p).into_iter().map(|t| (t, *v)).collect(),
        }])),
        MetricExpr::Range(r) => range(store, r, p, stats).map(Value::Matrix),
        MetricExpr::Vector { op, param, grouping, inner } => {
            let v = match metric(store, inner, p, stats)? {
                Value::Matrix(s) => s,
                Value::Scalar(_) => return Err(EvalError::Invalid("vector aggregations need a vector, not a scalar".into())),
            };
            Ok(Value::Matrix(aggregate(*op, *param, grouping.as_ref(), v)?))
        }
        MetricExpr::Binary { op, return_bool, matching, lhs, rhs } => {
            let l = metric(store, lhs, p, stats)?;
            let r = metric(store, rhs, p, stats)?;
            binary(*op, *return_bool, matching.as_ref(), l, r)
        }
    }
    .and_then(|v| match v {
        // Inside the query, series may be many more than it returns (a
        // `| json` of a unique id per line, summed by level), as in Loki;
        // a bound still keeps one query from taking all memory.
        Value::Matrix(s) if s.len() > MAX_INTERMEDIATE_SERIES => Err(EvalError::Limit(format!(
            "maximum number of series ({MAX_INTERMEDIATE_SERIES}) reached inside a single query; add more specific stream selectors or label filters, or reduce the time range"
        ))),
        v => Ok(v),
    })
}

/// Series a metric query's inner expressions may hold.
const MAX_INTERMEDIATE_SERIES: usize = 200_000;

/// Loki's `max_query_series`: the series a metric query returns.
fn check_returned_series(v: &Value, max: usize) -> Result<(), EvalError> {
    match v {
        Value::Matrix(s) if s.iter().filter(|s| !s.points.is_empty()).count() > max => {
            Err(EvalError::Limit(format!(
                "maximum number of series ({max}) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating results with a sum by (...)"
            )))
        }
        _ => Ok(()),
    }
}

fn group_labels(labels: &Labels, g: Option<&Grouping>) -> Labels {
    match g {
        None => Labels::default(),
        Some(g) if g.without => Labels(
            labels
                .0
                .iter()
                .filter(|(n, _)| !g.labels.contains(n))
                .cloned()
                .collect(),
        ),
        Some(g) => Labels(
            labels
                .0
                .iter()
                .filter(|(n, _)| g.labels.contains(n))
                .cloned()
                .collect(),
        ),
    }
}

fn unwrap_value(u: &Unwrap, labels: &Labels) -> Result<f64, String> {
    let v = labels
        .get(&u.label)
        .ok_or_else(|| format!("label {} not found", u.label))?;
    let v = v.trim();
    match u.conv {
        UnwrapConv::None => v
            .parse()
            .map_err(|_| format!("cannot parse {v:?} as a number")),
        // Loki converts with Go's time.ParseDuration and Duration.Seconds.
        UnwrapConv::Duration => super::parser::go_duration_ns(v)
            .map(super::parser::go_duration_seconds)
            .ok_or_else(|| format!("time: invalid duration {v:?}")),
        UnwrapConv::Bytes => {
            super::parser::parse_bytes(v).ok_or_else(|| format!("cannot parse {v:?} as bytes"))
        }
    }
}

/// Loki's message for a metric query whose series carries `__error__`.
fn pipeline_error_message(labels: &Labels) -> String {
    let error = labels.get(ERROR_LABEL).unwrap_or_default();
    let series: Vec<String> = labels.0.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!(
        "pipeline error: '{error}' for series: '{{{}}}'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"{error}\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )",
        series.join(", ")
    )
}

fn range(
    store: &LogStore,
    r: &RangeExpr,
    p: &QueryParams,
    stats: &mut QueryStats,
) -> Result<Vec<Series>, EvalError> {
    let steps = step_times(p);
    let lo = p
        .start
        .saturating_sub(r.range_ns)
        .saturating_sub(r.offset_ns);
    let hi = p.end.saturating_sub(r.offset_ns);
    let contains = pipeline::required_substrings(&r.log.stages);
    let sel = Selection {
        matchers: &r.log.matchers,
        start: lo.saturating_add(1),
        end: hi,
        contains: &contains,
    };
    let blocks = store.select(&sel)?;
    let with_labels = pipeline::touches_labels(&r.log.stages) || r.unwrap.is_some();
    let mut samples: HashMap<Labels, Vec<(i64, f64)>> = HashMap::new();
    let mut any = false;
    let mut pipeline_error: Option<Labels> = None;
    for b in &blocks {
        p.stop.check()?;
        stats.blocks += 1;
        // Without label stages every entry of a block has its stream's
        // labels: find their sample list once per block.
        if !with_labels {
            let list = samples
                .entry(Labels::from_set(&b.labels).normalized())
                .or_default();
            // A block inside one set of windows counts as one weighted
            // sample, read from its fast fields without decoding lines.
            let countable = matches!(
                r.func,
                RangeFunc::CountOverTime
                    | RangeFunc::Rate
                    | RangeFunc::BytesOverTime
                    | RangeFunc::BytesRate
            );
            if countable
                && r.log.stages.is_empty()
                && b.start > lo
                && b.end <= hi
                && !crosses_window_edge(b.start, b.end, p, r)
            {
                stats.entries_scanned += b.entries;
                stats.bytes_scanned += b.bytes;
                let value = match r.func {
                    RangeFunc::BytesOverTime | RangeFunc::BytesRate => b.bytes as f64,
                    _ => b.entries as f64,
                };
                if b.entries > 0 {
                    any = true;
                    list.push((b.end, value));
                }
                continue;
            }
            b.for_each_entry(|ts, line| {
                if ts <= lo || ts > hi {
                    return;
                }
                stats.entries_scanned += 1;
                stats.bytes_scanned += line.len() as u64;
                // Only line filters and decolorize here; decolorize does not
                // change what a count or a byte sum of the original sees
                // except through filters after it, so run the stages.
                let Some((line, _)) = pipeline::run(&r.log.stages, &b.labels, ts, line, None)
                else {
                    return;
                };
                let value = match r.func {
                    RangeFunc::BytesOverTime | RangeFunc::BytesRate => line.len() as f64,
                    _ => 1.0,
                };
                any = true;
                list.push((ts, value));
            })?;
            continue;
        }
        b.for_each_entry(|ts, line| {
            if ts <= lo || ts > hi {
                return;
            }
            stats.entries_scanned += 1;
            stats.bytes_scanned += line.len() as u64;
            let base = Some(Labels::from_set(&b.labels));
            let Some((line, labels)) = pipeline::run(&r.log.stages, &b.labels, ts, line, base)
            else {
                return;
            };
            let mut labels = labels.unwrap_or_default();
            let value = match (&r.unwrap, r.func) {
                (Some(u), _) => match unwrap_value(u, &labels) {
                    Ok(v) => {
                        labels.remove(&u.label);
                        v
                    }
                    Err(details) => {
                        labels.remove(&u.label);
                        labels.set(ERROR_LABEL, "SampleExtractionErr".into());
                        labels.set(pipeline::ERROR_DETAILS_LABEL, details);
                        f64::NAN
                    }
                },
                (None, RangeFunc::BytesOverTime | RangeFunc::BytesRate) => line.len() as f64,
                (None, _) => 1.0,
            };
            if !r
                .post_unwrap
                .iter()
                .all(|f| pipeline::apply_label_filter(f, &mut labels))
            {
                return;
            }
            let key = match &r.grouping {
                Some(g) => group_labels(&labels.normalized(), Some(g)),
                None => labels.normalized(),
            };
            // As in Loki: a series of the range aggregation that still
            // carries an error fails the query, unless a filter dropped it
            // (`| __error__=""`) or a grouping left the label out.
            if key.get(ERROR_LABEL).is_some_and(|e| !e.is_empty()) {
                if pipeline_error.is_none() {
                    pipeline_error = Some(key);
                }
                return;
            }
            any = true;
            samples.entry(key).or_default().push((ts, value));
        })?;
    }
    if let Some(labels) = pipeline_error {
        return Err(EvalError::Invalid(pipeline_error_message(&labels)));
    }
    samples.retain(|_, v| !v.is_empty());
    if r.func == RangeFunc::AbsentOverTime {
        return Ok(absent(r, &steps, samples, any));
    }
    let range_s = r.range_ns as f64 / 1e9;
    let mut out = Vec::with_capacity(samples.len());
    for (labels, mut s) in samples {
        s.sort_by_key(|x| x.0);
        let mut points = Vec::new();
        let (mut from, mut to) = (0, 0);
        for &t in &steps {
            let w_hi = t - r.offset_ns;
            let w_lo = w_hi - r.range_ns;
            while to < s.len() && s[to].0 <= w_hi {
                to += 1;
            }
            while from < to && s[from].0 <= w_lo {
                from += 1;
            }
            let window = &s[from..to];
            if window.is_empty() {
                continue;
            }
            if let Some(v) = over_time(r.func, r.param, window, range_s) {
                points.push((t, v));
            }
        }
        out.push(Series { labels, points });
    }
    Ok(out)
}

/// Whether some window edge of the steps (`t - offset`, where a window
/// ends, or `t - offset - range`, where one starts) splits `[start, end]`
/// so that its entries do not all fall in the same windows.
fn crosses_window_edge(start: i64, end: i64, p: &QueryParams, r: &RangeExpr) -> bool {
    let step = p.step_ns.max(1);
    // Entries at or before an edge and entries after it: split when
    // start <= edge < end.
    let first_edge = |base: i64| -> bool {
        // Edges are base + k * step for k in 0..=steps.
        let last = base + (p.end - p.start) / step * step;
        if end <= base || start > last {
            return false;
        }
        let k = if start <= base {
            0
        } else {
            (start - base + step - 1) / step
        };
        let e = base + k * step;
        e >= start && e < end && e <= last
    };
    first_edge(p.start - r.offset_ns) || first_edge(p.start - r.offset_ns - r.range_ns)
}

fn absent(
    r: &RangeExpr,
    steps: &[i64],
    samples: HashMap<Labels, Vec<(i64, f64)>>,
    _any: bool,
) -> Vec<Series> {
    let mut all: Vec<i64> = samples.into_values().flatten().map(|x| x.0).collect();
    all.sort_unstable();
    let labels = Labels(
        r.log
            .matchers
            .iter()
            .filter(|m| m.op == tsdb::MatchOp::Equal)
            .map(|m| (m.name.clone(), m.value.clone()))
            .collect(),
    )
    .normalized();
    let points = steps
        .iter()
        .filter(|&&t| {
            let hi = t - r.offset_ns;
            let lo = hi - r.range_ns;
            let i = all.partition_point(|&x| x <= lo);
            !(i < all.len() && all[i] <= hi)
        })
        .map(|&t| (t, 1.0))
        .collect();
    vec![Series { labels, points }]
}

fn over_time(f: RangeFunc, param: Option<f64>, w: &[(i64, f64)], range_s: f64) -> Option<f64> {
    use RangeFunc::*;
    let vals = || w.iter().map(|x| x.1);
    let n = w.len() as f64;
    let sum: f64 = vals().sum();
    Some(match f {
        // Values are 1 per entry, or a whole block's count.
        CountOverTime => sum,
        Rate => sum / range_s,
        BytesOverTime => sum,
        BytesRate => sum / range_s,
        SumOverTime => sum,
        AvgOverTime => sum / n,
        MinOverTime => vals().fold(f64::INFINITY, f64::min),
        MaxOverTime => vals().fold(f64::NEG_INFINITY, f64::max),
        StddevOverTime | StdvarOverTime => {
            let mean = sum / n;
            let var = vals().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            if f == StddevOverTime {
                var.sqrt()
            } else {
                var
            }
        }
        QuantileOverTime => quantile(param.unwrap_or(0.5), vals().collect()),
        FirstOverTime => w.first()?.1,
        LastOverTime => w.last()?.1,
        RateCounter => {
            let mut inc = 0.0;
            for pair in w.windows(2) {
                let (a, b) = (pair[0].1, pair[1].1);
                inc += if b < a { b } else { b - a };
            }
            inc / range_s
        }
        AbsentOverTime => return None,
    })
}

/// Prometheus's quantile: linear interpolation between closest ranks.
fn quantile(q: f64, mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = q * (v.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let w = rank - lo as f64;
    v[lo] * (1.0 - w) + v[hi] * w
}

fn aggregate(
    op: VecOp,
    param: Option<f64>,
    g: Option<&Grouping>,
    series: Vec<Series>,
) -> Result<Vec<Series>, EvalError> {
    if matches!(op, VecOp::Sort | VecOp::SortDesc) {
        return Ok(series);
    }
    if matches!(op, VecOp::Topk | VecOp::Bottomk) {
        let k = param.unwrap_or(1.0);
        if k < 1.0 {
            return Err(EvalError::Invalid(format!(
                "parameter {k} of topk/bottomk must be at least 1"
            )));
        }
        let k = k as usize;
        // Per group and step, the k best series keep their point.
        let mut by_step: HashMap<(Labels, i64), Vec<(f64, usize)>> = HashMap::new();
        for (i, s) in series.iter().enumerate() {
            let key = group_labels(&s.labels, g);
            for &(t, v) in &s.points {
                by_step.entry((key.clone(), t)).or_default().push((v, i));
            }
        }
        let mut keep: Vec<Vec<(i64, f64)>> = vec![Vec::new(); series.len()];
        for ((_, t), mut c) in by_step {
            c.sort_by(|a, b| {
                if op == VecOp::Topk {
                    b.0.total_cmp(&a.0)
                } else {
                    a.0.total_cmp(&b.0)
                }
            });
            for (v, i) in c.into_iter().take(k) {
                keep[i].push((t, v));
            }
        }
        return Ok(series
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| !k.is_empty())
            .map(|(s, mut points)| {
                points.sort_by_key(|x| x.0);
                Series {
                    labels: s.labels,
                    points,
                }
            })
            .collect());
    }
    let mut groups: BTreeMap<Labels, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
    for s in series {
        let key = group_labels(&s.labels, g);
        let steps = groups.entry(key).or_default();
        for (t, v) in s.points {
            steps.entry(t).or_default().push(v);
        }
    }
    Ok(groups
        .into_iter()
        .map(|(labels, steps)| Series {
            labels,
            points: steps
                .into_iter()
                .map(|(t, v)| {
                    let n = v.len() as f64;
                    let sum: f64 = v.iter().sum();
                    let r = match op {
                        VecOp::Sum => sum,
                        VecOp::Avg => sum / n,
                        VecOp::Min => v.iter().copied().fold(f64::INFINITY, f64::min),
                        VecOp::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        VecOp::Count => n,
                        VecOp::Stddev | VecOp::Stdvar => {
                            let mean = sum / n;
                            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
                            if op == VecOp::Stddev {
                                var.sqrt()
                            } else {
                                var
                            }
                        }
                        _ => f64::NAN,
                    };
                    (t, r)
                })
                .collect(),
        })
        .collect())
}

fn arith(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
        BinOp::Pow => a.powf(b),
        BinOp::Eq => f64::from(u8::from(a == b)),
        BinOp::Ne => f64::from(u8::from(a != b)),
        BinOp::Gt => f64::from(u8::from(a > b)),
        BinOp::Ge => f64::from(u8::from(a >= b)),
        BinOp::Lt => f64::from(u8::from(a < b)),
        BinOp::Le => f64::from(u8::from(a <= b)),
        BinOp::And | BinOp::Or | BinOp::Unless => f64::NAN,
    }
}

/// A point's fate under a vector/scalar operator: `None` drops it.
fn apply(op: BinOp, return_bool: bool, a: f64, b: f64, keep: f64) -> Option<f64> {
    let r = arith(op, a, b);
    if op.is_comparison() {
        if return_bool {
            Some(r)
        } else if r == 1.0 {
            Some(keep)
        } else {
            None
        }
    } else {
        Some(r)
    }
}

fn signature(labels: &Labels, m: Option<&VectorMatching>) -> Labels {
    match m {
        None => labels.clone(),
        Some(m) if m.on => Labels(
            labels
                .0
                .iter()
                .filter(|(n, _)| m.labels.contains(n))
                .cloned()
                .collect(),
        ),
        Some(m) => Labels(
            labels
                .0
                .iter()
                .filter(|(n, _)| !m.labels.contains(n))
                .cloned()
                .collect(),
        ),
    }
}

fn binary(
    op: BinOp,
    return_bool: bool,
    m: Option<&VectorMatching>,
    l: Value,
    r: Value,
) -> Result<Value, EvalError> {
    let map_points = |s: Vec<Series>, f: &dyn Fn(f64) -> Option<f64>| -> Vec<Series> {
        s.into_iter()
            .map(|s| Series {
                labels: s.labels,
                points: s
                    .points
                    .into_iter()
                    .filter_map(|(t, v)| f(v).map(|x| (t, x)))
                    .collect(),
            })
            .collect()
    };
    match (l, r) {
        (Value::Scalar(a), Value::Scalar(b)) => {
            if op.is_set() {
                return Err(EvalError::Invalid(
                    "set operators (and, or, unless) need vectors on both sides".into(),
                ));
            }
            if op.is_comparison() && !return_bool {
                return Err(EvalError::Invalid(
                    "comparisons between scalars must use the bool modifier".into(),
                ));
            }
            Ok(Value::Scalar(arith(op, a, b)))
        }
        (Value::Matrix(s), Value::Scalar(b)) if !op.is_set() => {
            Ok(Value::Matrix(map_points(s, &|a| {
                apply(op, return_bool, a, b, a)
            })))
        }
        (Value::Scalar(a), Value::Matrix(s)) if !op.is_set() => {
            Ok(Value::Matrix(map_points(s, &|b| {
                apply(op, return_bool, a, b, b)
            })))
        }
        (Value::Matrix(ls), Value::Matrix(rs)) => {
            let mut right: HashMap<Labels, BTreeMap<i64, f64>> = HashMap::new();
            for s in &rs {
                let e = right.entry(signature(&s.labels, m)).or_default();
                for &(t, v) in &s.points {
                    if e.insert(t, v).is_some() && !op.is_set() {
                        return Err(EvalError::Invalid(
                            "found duplicate series for the match group on the right hand-side of the operation".into(),
                        ));
                    }
                }
            }
            let mut out = Vec::new();
            match op {
                BinOp::And | BinOp::Unless => {
                    for s in ls {
                        let sig = signature(&s.labels, m);
                        let other = right.get(&sig);
                        let points = s
                            .points
                            .into_iter()
                            .filter(|(t, _)| {
                                other.is_some_and(|o| o.contains_key(t)) == (op == BinOp::And)
                            })
                            .collect();
                        out.push(Series {
                            labels: s.labels,
                            points,
                        });
                    }
                }
                BinOp::Or => {
                    let mut left_steps: HashMap<Labels, Vec<i64>> = HashMap::new();
                    for s in &ls {
                        left_steps
                            .entry(signature(&s.labels, m))
                            .or_default()
                            .extend(s.points.iter().map(|p| p.0));
                    }
                    out.extend(ls);
                    for s in rs {
                        let taken = left_steps.get(&signature(&s.labels, m));
                        let points = s
                            .points
                            .into_iter()
                            .filter(|(t, _)| !taken.is_some_and(|v| v.contains(t)))
                            .collect();
                        out.push(Series {
                            labels: s.labels,
                            points,
                        });
                    }
                }
                _ => {
                    for s in ls {
                        let sig = signature(&s.labels, m);
                        let Some(other) = right.get(&sig) else {
                            continue;
                        };
                        let points = s
                            .points
                            .into_iter()
                            .filter_map(|(t, a)| {
                                other
                                    .get(&t)
                                    .and_then(|&b| apply(op, return_bool, a, b, a))
                                    .map(|v| (t, v))
                            })
                            .collect();
                        // Arithmetic results keep only the matching labels.
                        let labels = if op.is_comparison() && !return_bool {
                            s.labels
                        } else {
                            sig
                        };
                        out.push(Series { labels, points });
                    }
                }
            }
            Ok(Value::Matrix(out))
        }
        _ => Err(EvalError::Invalid(
            "set operators (and, or, unless) need vectors on both sides".into(),
        )),
    }
}
