//! The evaluator: walks the expression tree, evaluating every node for all
//! steps of the query at once.

use crate::error::QueryError;
use crate::label_map::{label_map, LabelMap};
use crate::parallel::{par_map, Budget, SharedBudget};
use crate::positions::{NodeId, Positions};
use crate::selector::selector_matchers;
use crate::value::{
    without_name, InstantSample, Matrix, MatrixSeries, QueryValue, RangeSeries, StepSeries, Val,
};
use crate::{aggregate, binary, functions};
use promql_parser::parser::{self, AtModifier, Call, Expr, Offset, SubqueryExpr, VectorSelector};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tsdb::{LabelSet, Querier, Sample, Series, TimeRange};

/// Limits and defaults of query evaluation.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus: 5 m).
    pub lookback_delta_ms: i64,
    /// Most samples one query may load (Prometheus: 50 million).
    pub max_samples: u64,
    pub timeout: Duration,
    /// Subquery step when the query gives none (Prometheus: the global
    /// evaluation interval, 1 m by default).
    pub default_subquery_step_ms: i64,
    /// Most points per series a range query may return (Prometheus: 11 000).
    pub max_points_per_series: i64,
    /// Samples all queries of this engine's users may hold at once.
    pub shared_budget: Option<std::sync::Arc<SharedBudget>>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60_000,
            max_points_per_series: 11_000,
            shared_budget: None,
        }
    }
}

/// What a query cost, and what it wants the user to know.
#[derive(Clone, Debug, Default)]
pub struct QueryStats {
    pub samples_loaded: u64,
    /// "PromQL warning: ..." annotations: the result may be wrong.
    pub warnings: Vec<String>,
    /// "PromQL info: ..." annotations: the result may surprise.
    pub infos: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Engine {
    pub opts: EngineOptions,
}

/// State shared by every node of one query.
pub(crate) struct Shared<'a> {
    q: &'a dyn Querier,
    pub opts: &'a EngineOptions,
    loaded: AtomicU64,
    /// Samples and step slots the query holds in memory now (the limit
    /// `max_samples` applies to this, as Prometheus's does); also counted
    /// in the shared budget, and given back to it when the query ends.
    held: AtomicU64,
    warnings: RefCell<BTreeSet<String>>,
    infos: RefCell<BTreeSet<String>>,
    deadline: Instant,
    /// The query's own start, end and step (0 for an instant query), for
    /// `@ start()`, `@ end()` and the `start()`, `end()`, `range()` and
    /// `step()` functions.
    pub query_start: i64,
    pub query_end: i64,
    pub query_step: i64,
    /// The query's text and tree, to place annotations (`positions.rs`);
    /// placed on the first annotation only.
    source: Option<&'a str>,
    root: &'a Expr,
    positions: std::cell::OnceCell<Option<Positions>>,
    /// The calls and aggregations being evaluated, innermost last.
    evaluating: RefCell<Vec<NodeId>>,
}

/// The argument of the call or aggregation being evaluated that an
/// annotation is about (an aggregation's: 0 the parameter, 1 the
/// expression).
#[derive(Clone, Copy)]
pub(crate) struct Arg(pub usize);

/// Evaluates nodes over one grid of steps: `start + i * step`, `i < n`.
pub(crate) struct Ev<'a> {
    pub sh: &'a Shared<'a>,
    pub start: i64,
    pub step: i64,
    pub n: usize,
}

pub(crate) type Result<T> = std::result::Result<T, QueryError>;

fn parse(query: &str) -> Result<std::sync::Arc<Expr>> {
    crate::parse_cache::parsed(query, |q| {
        crate::syntax_error::parse(q)
            .map_err(|e| QueryError::bad(format!("invalid parameter \"query\": {e}")))
    })
}

pub(crate) fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// Evaluates `query` at time `t` (ms).
    pub fn instant(
        &self,
        q: &dyn Querier,
        query: &str,
        t: i64,
    ) -> Result<(QueryValue, QueryStats)> {
        let expr = parse(query)?;
        self.instant_in(q, Some(query), &expr, t)
    }

    pub fn instant_expr(
        &self,
        q: &dyn Querier,
        expr: &Expr,
        t: i64,
    ) -> Result<(QueryValue, QueryStats)> {
        self.instant_in(q, None, expr, t)
    }

    fn instant_in(
        &self,
        q: &dyn Querier,
        source: Option<&str>,
        expr: &Expr,
        t: i64,
    ) -> Result<(QueryValue, QueryStats)> {
        let sh = self.shared(q, source, expr, t, t, 0);
        let ev = Ev {
            sh: &sh,
            start: t,
            step: 1,
            n: 1,
        };
        let val = ev.eval(expr)?;
        let out = finish_instant(val, t, self.opts.lookback_delta_ms)?;
        Ok((out, sh.stats()))
    }

    /// Evaluates `query` at every `step` from `start` to `end` (ms, inclusive).
    pub fn range(
        &self,
        q: &dyn Querier,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(QueryValue, QueryStats)> {
        let expr = parse(query)?;
        self.range_in(q, Some(query), &expr, start, end, step)
    }

    pub fn range_expr(
        &self,
        q: &dyn Querier,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(QueryValue, QueryStats)> {
        self.range_in(q, None, expr, start, end, step)
    }

    fn range_in(
        &self,
        q: &dyn Querier,
        source: Option<&str>,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(QueryValue, QueryStats)> {
        if step <= 0 {
            return Err(QueryError::bad(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if end < start {
            return Err(QueryError::bad(
                "end timestamp must not be before start time",
            ));
        }
        let points = end.checked_sub(start).map_or(i64::MAX, |d| d / step + 1);
        if points > self.opts.max_points_per_series {
            return Err(QueryError::bad(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        match expr.value_type() {
            parser::value::ValueType::Vector | parser::value::ValueType::Scalar => {}
            other => {
                return Err(QueryError::bad(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                type_display(other)
            )))
            }
        }
        let sh = self.shared(q, source, expr, start, end, step);
        let ev = Ev {
            sh: &sh,
            start,
            step,
            n: points as usize,
        };
        if let Some(sort) = find_sort(expr) {
            sh.warn_about(
                NodeId::call(sort),
                None,
                "sort is ineffective for range queries since results are always ordered by labels",
            );
        }
        let val = ev.eval(expr)?;
        let out = finish_range(val, start, step)?;
        Ok((out, sh.stats()))
    }

    fn shared<'a>(
        &'a self,
        q: &'a dyn Querier,
        source: Option<&'a str>,
        root: &'a Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Shared<'a> {
        Shared {
            source,
            root,
            positions: std::cell::OnceCell::new(),
            evaluating: RefCell::default(),
            q,
            opts: &self.opts,
            loaded: AtomicU64::new(0),
            held: AtomicU64::new(0),
            warnings: RefCell::default(),
            infos: RefCell::default(),
            deadline: Instant::now() + self.opts.timeout,
            query_start: start,
            query_end: end,
            query_step: step,
        }
    }
}

/// The first sort call in the expression, if it sorts anywhere (ordering
/// means nothing in a matrix).
fn find_sort(e: &Expr) -> Option<&Call> {
    match e {
        Expr::Paren(p) => find_sort(&p.expr),
        Expr::Unary(u) => find_sort(&u.expr),
        Expr::Binary(b) => find_sort(&b.lhs).or_else(|| find_sort(&b.rhs)),
        Expr::Aggregate(a) => a
            .param
            .as_deref()
            .and_then(find_sort)
            .or_else(|| find_sort(&a.expr)),
        Expr::Subquery(s) => find_sort(&s.expr),
        Expr::Call(c) if c.func.name.starts_with("sort") => Some(c),
        Expr::Call(c) => c.args.args.iter().find_map(|a| find_sort(a)),
        _ => None,
    }
}

fn type_display(t: parser::value::ValueType) -> &'static str {
    match t {
        parser::value::ValueType::Vector => "instant vector",
        parser::value::ValueType::Scalar => "scalar",
        parser::value::ValueType::Matrix => "range vector",
        parser::value::ValueType::String => "string",
    }
}

impl Drop for Shared<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.opts.shared_budget.as_deref() {
            shared.sub(self.held.load(Ordering::Relaxed));
        }
    }
}

impl Shared<'_> {
    fn stats(&self) -> QueryStats {
        QueryStats {
            samples_loaded: self.loaded.load(Ordering::Relaxed),
            warnings: self.warnings.borrow().iter().cloned().collect(),
            infos: self.infos.borrow().iter().cloned().collect(),
        }
    }

    /// A warning about `at` in the call or aggregation being evaluated,
    /// ending with its position as Prometheus writes it.
    pub fn warn_at(&self, at: Arg, msg: impl std::fmt::Display) {
        let text = format!("PromQL warning: {msg}{}", self.position_suffix(at));
        self.warnings.borrow_mut().insert(text);
    }

    /// An info about `at`, as [`Shared::warn_at`].
    pub fn info_at(&self, at: Arg, msg: impl std::fmt::Display) {
        let text = format!("PromQL info: {msg}{}", self.position_suffix(at));
        self.infos.borrow_mut().insert(text);
    }

    fn warn_about(&self, node: NodeId, arg: Option<usize>, msg: &str) {
        let suffix = self.suffix_for(node, arg);
        self.warnings
            .borrow_mut()
            .insert(format!("PromQL warning: {msg}{suffix}"));
    }

    fn position_suffix(&self, at: Arg) -> String {
        let Some(&node) = self.evaluating.borrow().last() else {
            return String::new();
        };
        self.suffix_for(node, Some(at.0))
    }

    /// ` (line:col)` of the node, or nothing where it cannot be placed.
    fn suffix_for(&self, node: NodeId, arg: Option<usize>) -> String {
        let Some(source) = self.source else {
            return String::new();
        };
        let placed = self
            .positions
            .get_or_init(|| Positions::of(source, self.root))
            .as_ref()
            .and_then(|p| p.of_node(node, arg));
        match placed {
            Some(pos) => format!(" ({})", crate::positions::line_col(source, pos)),
            None => String::new(),
        }
    }

    /// Runs `f` as the evaluation of call or aggregation `node`, so the
    /// annotations it makes are placed there.
    pub fn evaluating<T>(&self, node: NodeId, f: impl FnOnce() -> T) -> T {
        self.evaluating.borrow_mut().push(node);
        let out = f();
        self.evaluating.borrow_mut().pop();
        out
    }

    /// Warns once per out-of-range φ of a quantile.
    pub fn check_quantile(&self, q: f64, at: Arg) {
        if q.is_nan() || !(0.0..=1.0).contains(&q) {
            self.warn_at(
                at,
                format_args!(
                    "quantile value should be between 0 and 1, got {}",
                    crate::value::format_value(q)
                ),
            );
        }
    }

    pub fn check_deadline(&self, during: &'static str) -> Result<()> {
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout(during));
        }
        Ok(())
    }

    pub fn budget(&self) -> Budget<'_> {
        Budget {
            loaded: &self.loaded,
            held: &self.held,
            max_samples: self.opts.max_samples,
            shared: self.opts.shared_budget.as_deref(),
            deadline: self.deadline,
        }
    }

    /// A node finished: its children's values are gone and `made` is what
    /// it holds now, so the query holds `before + made`. What was counted
    /// while the node ran (its children, or a selector's series as it read
    /// them) is checked too: that was alive a moment ago.
    fn settle(&self, before: u64, made: u64) -> Result<()> {
        let now = self.held.load(Ordering::Relaxed);
        let after = before.saturating_add(made);
        let peak = now.max(after);
        self.held.store(after, Ordering::Relaxed);
        if let Some(shared) = self.opts.shared_budget.as_deref() {
            shared.adjust(now, after);
        }
        if peak > self.opts.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(())
    }

    /// Series matching a selector (any of its `or` alternatives) in `range`.
    fn select(&self, vs: &VectorSelector, range: TimeRange) -> Result<Vec<Series>> {
        self.check_deadline("query preparation")?;
        let alts = selector_matchers(vs).map_err(QueryError::bad)?;
        if alts.len() == 1 {
            return Ok(self.q.select(&alts[0], range)?);
        }
        let mut by_labels: LabelMap<LabelSet, Series> = label_map();
        for ms in &alts {
            for s in self.q.select(ms, range)? {
                by_labels.entry(s.labels.clone()).or_insert(s);
            }
        }
        let mut out: Vec<Series> = by_labels.into_values().collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}

impl<'a> Ev<'a> {
    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.n).map(move |i| self.start + i as i64 * self.step)
    }

    /// Each step's evaluation time for a node with these modifiers.
    fn node_times(&self, at: &Option<AtModifier>, offset: &Option<Offset>) -> Vec<i64> {
        let off = offset_ms(offset);
        match at {
            None => self.times().map(|t| t.saturating_sub(off)).collect(),
            Some(a) => {
                let t = match a {
                    AtModifier::Start => self.sh.query_start,
                    AtModifier::End => self.sh.query_end,
                    AtModifier::At(st) => system_time_ms(st),
                };
                vec![t.saturating_sub(off); self.n]
            }
        }
    }

    /// Evaluates `e`, counting what its value holds against the sample
    /// limit (see [`Shared::settle`]).
    pub fn eval(&self, e: &Expr) -> Result<Val> {
        let before = self.sh.held.load(Ordering::Relaxed);
        let v = self.eval_node(e)?;
        self.sh.settle(before, v.samples_held())?;
        Ok(v)
    }

    fn eval_node(&self, e: &Expr) -> Result<Val> {
        self.sh.check_deadline("query execution")?;
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; self.n])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(vs) => Ok(Val::Vector(
                    vs.into_iter()
                        .map(|mut s| {
                            for v in s.values.iter_mut().flatten() {
                                *v = -*v;
                            }
                            s.drop_name = true;
                            s
                        })
                        .collect(),
                )),
                other => Err(QueryError::bad(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.eval_vector_selector(vs)?)),
            Expr::MatrixSelector(ms) => {
                let range = ms.range.as_millis() as i64;
                Ok(Val::Matrix(self.eval_matrix_selector(&ms.vs, range)?))
            }
            Expr::Subquery(sq) => Ok(Val::Matrix(self.eval_subquery(sq)?)),
            Expr::Binary(b) => binary::eval(self, b),
            Expr::Aggregate(a) => self
                .sh
                .evaluating(NodeId::aggregate(a), || aggregate::eval(self, a)),
            Expr::Call(c) => self
                .sh
                .evaluating(NodeId::call(c), || functions::eval(self, c)),
            Expr::Extension(_) => Err(QueryError::bad("unsupported expression")),
        }
    }

    pub fn eval_vector_selector(&self, vs: &VectorSelector) -> Result<Vec<StepSeries>> {
        self.select_instant(vs, false)
    }

    /// Like a vector selector, but each value is the selected sample's time in seconds.
    pub fn eval_vector_selector_timestamps(&self, vs: &VectorSelector) -> Result<Vec<StepSeries>> {
        self.select_instant(vs, true)
    }

    fn select_instant(&self, vs: &VectorSelector, timestamps: bool) -> Result<Vec<StepSeries>> {
        let mut out = Vec::new();
        self.select_instant_chunks(vs, timestamps, usize::MAX, |chunk| {
            out.extend(chunk);
            Ok(())
        })?;
        Ok(out)
    }

    /// Evaluates vector selector `vs`, handing its series (those with a
    /// value at some step) to `each` in label order, in chunks of about
    /// `chunk_values` step slots: a consumer that folds them as they come
    /// (an aggregation) never holds the whole selection. What a chunk holds
    /// is counted against the query's limit until `each` returns, then
    /// given back.
    pub(crate) fn select_instant_chunks(
        &self,
        vs: &VectorSelector,
        timestamps: bool,
        chunk_values: usize,
        mut each: impl FnMut(Vec<StepSeries>) -> Result<()>,
    ) -> Result<()> {
        let times = self.node_times(&vs.at, &vs.offset);
        let lookback = self.sh.opts.lookback_delta_ms;
        let lo = times.iter().copied().min().unwrap_or(0);
        let hi = times.iter().copied().max().unwrap_or(0);
        let series = self
            .sh
            .select(vs, TimeRange::new(lo.saturating_sub(lookback - 1), hi))?;
        let budget = self.sh.budget();
        let value = |x: &Sample| if timestamps { x.t as f64 / 1000.0 } else { x.v };
        let per_chunk = (chunk_values / times.len().max(1)).max(MIN_CHUNK_SERIES);
        let streamed = chunk_values != usize::MAX;
        let mut series = series.into_iter();
        loop {
            let chunk: Vec<Series> = series.by_ref().take(per_chunk).collect();
            if chunk.is_empty() {
                break;
            }
            let held = chunk.len() * times.len();
            let out = if lo == hi {
                // One evaluation time (an instant query, or `@`): each
                // series' newest sample in the lookback window is the answer.
                let work = chunk.len() * 4;
                par_map(chunk, work, |s| {
                    budget.check_deadline()?;
                    let v = s
                        .last_sample()?
                        .filter(|x| !x.is_stale())
                        .map(|x| value(&x));
                    budget.load(usize::from(v.is_some()))?;
                    budget.hold(times.len())?;
                    Ok(StepSeries {
                        labels: s.labels,
                        values: vec![v; times.len()],
                        drop_name: false,
                    })
                })?
            } else {
                let work = chunk.len() * times.len().max(4);
                par_map(chunk, work, |s| {
                    budget.check_deadline()?;
                    budget.hold(times.len())?;
                    let samples: Vec<Sample> = s.collect_samples()?;
                    budget.load(samples.len())?;
                    let values: Vec<Option<f64>> = times
                        .iter()
                        .map(|&t| {
                            let i = samples.partition_point(|x| x.t <= t);
                            let x = samples[..i].last()?;
                            (x.t > t - lookback && !x.is_stale()).then(|| value(x))
                        })
                        .collect();
                    Ok(StepSeries {
                        labels: s.labels,
                        values,
                        drop_name: false,
                    })
                })?
            };
            each(out.into_iter().filter(|s| !s.is_empty()).collect())?;
            if streamed {
                budget.release(held);
            }
        }
        Ok(())
    }

    pub fn eval_matrix_selector(&self, vs: &VectorSelector, range: i64) -> Result<Matrix> {
        let (series, ends) =
            self.map_matrix_selector(vs, range, |m, _| Ok((m.samples.len(), m)))?;
        Ok(Matrix {
            series,
            range_ms: range,
            ends,
        })
    }

    /// Selects `vs[range]` and hands each series with samples in its
    /// range, as a [`MatrixSeries`], to `f` with the windows' ends, on the
    /// worker that read it: a range function computed right there reads
    /// the samples while they are in cache, and no whole matrix is held.
    /// `f` also says how many samples its result holds, counted against
    /// the query's limit as each series is done.
    pub fn map_matrix_selector<R: Send>(
        &self,
        vs: &VectorSelector,
        range: i64,
        f: impl Fn(MatrixSeries, &[i64]) -> Result<(usize, R)> + Sync,
    ) -> Result<(Vec<R>, Vec<i64>)> {
        let ends = self.node_times(&vs.at, &vs.offset);
        let lo = ends.iter().copied().min().unwrap_or(0);
        let hi = ends.iter().copied().max().unwrap_or(0);
        let series = self
            .sh
            .select(vs, TimeRange::new(lo.saturating_sub(range - 1), hi))?;
        let budget = self.sh.budget();
        let work = series.len() * self.n.max(4);
        let ends_ref = &ends;
        let out: Vec<Option<R>> = par_map(series, work, |s| {
            budget.check_deadline()?;
            // Staleness markers end a series; they are not samples of a range.
            let mut samples: Vec<Sample> = s.collect_samples()?;
            samples.retain(|x| !x.is_stale());
            budget.load(samples.len())?;
            if samples.is_empty() {
                return Ok(None);
            }
            let m = MatrixSeries {
                labels: s.labels,
                samples,
                drop_name: false,
            };
            let (held, r) = f(m, ends_ref)?;
            budget.hold(held)?;
            Ok(Some(r))
        })?;
        Ok((out.into_iter().flatten().collect(), ends))
    }

    fn eval_subquery(&self, sq: &SubqueryExpr) -> Result<Matrix> {
        let ends = self.node_times(&sq.at, &sq.offset);
        let range = sq.range.as_millis() as i64;
        let step = match &sq.step {
            Some(d) if !d.is_zero() => d.as_millis() as i64,
            _ => self.sh.opts.default_subquery_step_ms,
        }
        .max(1);
        let lo = ends
            .iter()
            .copied()
            .min()
            .unwrap_or(0)
            .saturating_sub(range);
        let hi = ends.iter().copied().max().unwrap_or(0);
        // The first step-aligned time at or after the earliest window start
        // (Go's truncating division, as Prometheus aligns).
        let mut start = step * (lo / step);
        if start < lo {
            start += step;
        }
        let n = if hi < start {
            0
        } else {
            (hi - start) / step + 1
        };
        // Every inner step holds a value per series, and the range vector
        // is built while those still live: a single series' worth of both
        // must fit before the inner expression allocates anything.
        if (n as u64).saturating_mul(2) > self.sh.opts.max_samples {
            return Err(QueryError::TooManySamples("subquery evaluation"));
        }
        let n = n as usize;
        let budget = self.sh.budget();
        budget.hold(n)?;
        let inner = Ev {
            sh: self.sh,
            start,
            step,
            n,
        };
        let inner_val = inner.eval(&sq.expr)?;
        self.sh.check_deadline("subquery evaluation")?;
        // The range vector is built while the inner values still live.
        budget.hold(inner_val.samples_held() as usize)?;
        let series = match inner_val {
            Val::Vector(vs) => vs
                .into_iter()
                .map(|s| MatrixSeries {
                    samples: s
                        .values
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| Sample::new(start + i as i64 * step, v)))
                        .collect(),
                    labels: s.labels,
                    drop_name: s.drop_name,
                })
                .collect(),
            Val::Scalar(vs) => vec![MatrixSeries {
                labels: LabelSet::default(),
                samples: vs
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Sample::new(start + i as i64 * step, *v))
                    .collect(),
                drop_name: false,
            }],
            other => {
                return Err(QueryError::bad(format!(
                    "subquery is only allowed on instant vector, got {}",
                    other.type_name()
                )))
            }
        };
        Ok(Matrix {
            series,
            range_ms: range,
            ends,
        })
    }
}

/// Labels as returned: `__name__` removed where an operation dropped it.
fn final_labels(labels: &LabelSet, drop_name: bool) -> LabelSet {
    if drop_name {
        without_name(labels)
    } else {
        labels.clone()
    }
}

/// The fewest series a streamed selector hands over at once, however many
/// steps each has: fewer would cost more in thread hand-offs than it saves.
const MIN_CHUNK_SERIES: usize = 64;

const DUPLICATE_LABELSET: &str = "vector cannot contain metrics with the same labelset";

fn finish_instant(val: Val, t: i64, _lookback: i64) -> Result<QueryValue> {
    Ok(match val {
        Val::Scalar(v) => QueryValue::Scalar {
            t,
            v: v.first().copied().unwrap_or(f64::NAN),
        },
        Val::Str(s) => QueryValue::String { t, v: s },
        Val::Vector(vs) => {
            let mut out = Vec::with_capacity(vs.len());
            // Series whose name was dropped: they must not collide.
            let mut renamed = Vec::new();
            for s in vs {
                let Some(v) = s.values.first().copied().flatten() else {
                    continue;
                };
                if s.drop_name {
                    renamed.push(out.len());
                }
                let labels = final_labels(&s.labels, s.drop_name);
                out.push(InstantSample { labels, t, v });
            }
            if !renamed.is_empty() {
                let mut seen = crate::label_map::label_map::<&LabelSet, ()>();
                seen.reserve(renamed.len());
                for i in renamed {
                    if seen.insert(&out[i].labels, ()).is_some() {
                        return Err(QueryError::exec(DUPLICATE_LABELSET));
                    }
                }
            }
            QueryValue::Vector(out)
        }
        Val::Matrix(m) => {
            let mut out: Vec<RangeSeries> = Vec::new();
            for s in &m.series {
                let window = m.windows(&s.samples).next().unwrap_or(&[]);
                if window.is_empty() {
                    continue;
                }
                out.push(RangeSeries {
                    labels: final_labels(&s.labels, s.drop_name),
                    points: window.iter().map(|x| (x.t, x.v)).collect(),
                });
            }
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            QueryValue::Matrix(out)
        }
    })
}

fn finish_range(val: Val, start: i64, step: i64) -> Result<QueryValue> {
    let at = |i: usize| start + i as i64 * step;
    Ok(match val {
        Val::Scalar(v) => QueryValue::Matrix(vec![RangeSeries {
            labels: LabelSet::default(),
            points: v.iter().enumerate().map(|(i, x)| (at(i), *x)).collect(),
        }]),
        Val::Vector(vs) => {
            // Series that became equal when their names were dropped are
            // one series, unless they both have a value at some step.
            let mut index: LabelMap<LabelSet, usize> = label_map();
            let mut merged: Vec<(LabelSet, Vec<Option<f64>>)> = Vec::new();
            for s in vs {
                let labels = final_labels(&s.labels, s.drop_name);
                match index.get(&labels) {
                    Some(&i) => {
                        let target = &mut merged[i].1;
                        for (dst, src) in target.iter_mut().zip(&s.values) {
                            if src.is_some() {
                                if dst.is_some() {
                                    return Err(QueryError::exec(DUPLICATE_LABELSET));
                                }
                                *dst = *src;
                            }
                        }
                    }
                    None => {
                        index.insert(labels.clone(), merged.len());
                        merged.push((labels, s.values));
                    }
                }
            }
            let mut out: Vec<RangeSeries> = merged
                .into_iter()
                .map(|(labels, values)| RangeSeries {
                    labels,
                    points: values
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| (at(i), v)))
                        .collect(),
                })
                .filter(|s| !s.points.is_empty())
                .collect();
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            QueryValue::Matrix(out)
        }
        other => {
            return Err(QueryError::bad(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                other.type_name()
            )))
        }
    })
}
