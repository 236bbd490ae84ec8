//! Binary operators: arithmetic, comparisons (filtering or `bool`), and the
//! set operators, with Prometheus's vector matching rules.

use crate::engine::{Ev, Result};
use crate::error::QueryError;
use crate::label_map::{label_map, LabelMap};
use crate::value::{labels_string, project, StepSeries, Val};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use tsdb::{LabelSet, METRIC_NAME};

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            _ => return None,
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    /// The value of `l op r`, and for comparisons whether it holds.
    pub(crate) fn apply(self, l: f64, r: f64) -> (f64, bool) {
        match self {
            Op::Add => (l + r, true),
            Op::Sub => (l - r, true),
            Op::Mul => (l * r, true),
            Op::Div => (l / r, true),
            Op::Mod => (l % r, true),
            Op::Pow => (l.powf(r), true),
            Op::Atan2 => (l.atan2(r), true),
            Op::Eq => (l, l == r),
            Op::Ne => (l, l != r),
            Op::Gt => (l, l > r),
            Op::Lt => (l, l < r),
            Op::Ge => (l, l >= r),
            Op::Le => (l, l <= r),
            Op::And | Op::Or | Op::Unless => (f64::NAN, false),
        }
    }
}

/// How two vectors are matched.
struct Matching {
    card: VectorMatchCardinality,
    /// `on(...)` when true, `ignoring(...)` (or nothing) when false.
    on: bool,
    labels: Vec<String>,
    include: Vec<String>,
}

impl Matching {
    fn of(b: &BinaryExpr) -> Matching {
        let Some(m) = &b.modifier else {
            return Matching {
                card: VectorMatchCardinality::OneToOne,
                on: false,
                labels: Vec::new(),
                include: Vec::new(),
            };
        };
        let (on, labels) = match &m.matching {
            Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
            None => (false, Vec::new()),
        };
        let include = match &m.card {
            VectorMatchCardinality::ManyToOne(l) | VectorMatchCardinality::OneToMany(l) => {
                l.labels.clone()
            }
            _ => Vec::new(),
        };
        Matching {
            card: m.card.clone(),
            on,
            labels,
            include,
        }
    }

    /// The labels two series must share to match.
    fn signature(&self, labels: &LabelSet) -> LabelSet {
        if self.on {
            project(labels, &self.labels, true)
        } else {
            labels
                .filtered(|l| l.name != METRIC_NAME && !self.labels.iter().any(|n| **n == *l.name))
        }
    }
}

pub(crate) fn eval(ev: &Ev, b: &BinaryExpr) -> Result<Val> {
    let op_text = b.op.to_string();
    let op = Op::parse(&op_text)
        .ok_or_else(|| QueryError::bad(format!("unknown binary operator {op_text:?}")))?;
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs)?;
    let rhs = ev.eval(&b.rhs)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
            l.iter()
                .zip(&r)
                .map(|(a, b)| {
                    let (v, keep) = op.apply(*a, *b);
                    if op.is_comparison() {
                        f64::from(u8::from(keep))
                    } else {
                        v
                    }
                })
                .collect(),
        )),
        (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(vector_scalar(v, &s, op, return_bool, false))),
        (Val::Scalar(s), Val::Vector(v)) => Ok(Val::Vector(vector_scalar(v, &s, op, return_bool, true))),
        (Val::Vector(l), Val::Vector(r)) => {
            let m = Matching::of(b);
            match op {
                Op::And | Op::Or | Op::Unless => Ok(Val::Vector(set_op(ev.n, l, r, op, &m))),
                _ => Ok(Val::Vector(vector_vector(ev.n, l, r, op, &m, return_bool)?)),
            }
        }
        (l, r) => Err(QueryError::bad(format!(
            "binary expression must contain only scalar and instant vector types, got {} {op_text} {}",
            l.type_name(),
            r.type_name()
        ))),
    }
}

fn vector_scalar(
    vs: Vec<StepSeries>,
    scalar: &[f64],
    op: Op,
    return_bool: bool,
    scalar_left: bool,
) -> Vec<StepSeries> {
    let mut out = Vec::with_capacity(vs.len());
    for mut s in vs {
        for (v, sc) in s.values.iter_mut().zip(scalar) {
            let Some(x) = *v else { continue };
            let (l, r) = if scalar_left { (*sc, x) } else { (x, *sc) };
            let (mut value, keep) = op.apply(l, r);
            // A comparison keeps the vector's own value, whichever side it is on.
            if op.is_comparison() && scalar_left {
                value = x;
            }
            *v = if return_bool {
                Some(f64::from(u8::from(keep)))
            } else if keep {
                Some(value)
            } else {
                None
            };
        }
        if !op.is_comparison() || return_bool {
            s.drop_name = true;
        }
        if !s.is_empty() {
            out.push(s);
        }
    }
    out
}

fn set_op(
    n: usize,
    l: Vec<StepSeries>,
    r: Vec<StepSeries>,
    op: Op,
    m: &Matching,
) -> Vec<StepSeries> {
    let rsig: Vec<LabelSet> = r.iter().map(|s| m.signature(&s.labels)).collect();
    let lsig: Vec<LabelSet> = l.iter().map(|s| m.signature(&s.labels)).collect();
    // Per signature, the steps at which the other side has a value.
    let presence = |sigs: &[LabelSet], side: &[StepSeries]| {
        let mut p: LabelMap<LabelSet, Vec<bool>> = label_map();
        for (sig, s) in sigs.iter().zip(side) {
            let e = p.entry(sig.clone()).or_insert_with(|| vec![false; n]);
            for (i, v) in s.values.iter().enumerate() {
                e[i] |= v.is_some();
            }
        }
        p
    };
    match op {
        Op::And | Op::Unless => {
            let rp = presence(&rsig, &r);
            let want = op == Op::And;
            let mut out = Vec::new();
            for (mut s, sig) in l.into_iter().zip(&lsig) {
                let p = rp.get(sig);
                for (i, v) in s.values.iter_mut().enumerate() {
                    let present = p.is_some_and(|p| p[i]);
                    if present != want {
                        *v = None;
                    }
                }
                if !s.is_empty() {
                    out.push(s);
                }
            }
            out
        }
        _ => {
            let lp = presence(&lsig, &l);
            let mut out = l;
            for (mut s, sig) in r.into_iter().zip(&rsig) {
                if let Some(p) = lp.get(sig) {
                    for (i, v) in s.values.iter_mut().enumerate() {
                        if p[i] {
                            *v = None;
                        }
                    }
                }
                if !s.is_empty() {
                    out.push(s);
                }
            }
            out
        }
    }
}

fn vector_vector(
    n: usize,
    l: Vec<StepSeries>,
    r: Vec<StepSeries>,
    op: Op,
    m: &Matching,
    return_bool: bool,
) -> Result<Vec<StepSeries>> {
    let one_to_many = matches!(m.card, VectorMatchCardinality::OneToMany(_));
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    // `many` is the side whose series are kept; `one` must be unique per signature.
    let (many, one) = if one_to_many { (r, l) } else { (l, r) };
    let one_side = if one_to_many { "left" } else { "right" };
    // Per signature: the one-side series, and (one-to-one) which steps a
    // many-side series has matched already.
    let mut one_by_sig: LabelMap<LabelSet, (Vec<usize>, Vec<bool>)> = label_map();
    for (i, s) in one.iter().enumerate() {
        one_by_sig
            .entry(m.signature(&s.labels))
            .or_default()
            .0
            .push(i);
    }
    // Check the "one" side is unique per signature at every step.
    for (sig, (idx, _)) in &one_by_sig {
        if idx.len() < 2 {
            continue;
        }
        for step in 0..n {
            let present: Vec<usize> = idx
                .iter()
                .copied()
                .filter(|&i| one[i].values[step].is_some())
                .collect();
            if present.len() > 1 {
                return Err(QueryError::exec(format!(
                    "found duplicate series for the match group {} on the {one_side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    labels_string(sig),
                    labels_string(&one[present[0]].labels),
                    labels_string(&one[present[1]].labels)
                )));
            }
        }
    }
    let drop_name = !op.is_comparison() || return_bool;
    // Output series keyed by their labels, to merge and to detect collisions.
    let mut out: Vec<StepSeries> = Vec::new();
    let mut out_index: LabelMap<(LabelSet, bool), usize> = label_map();
    // An instant one-to-one result cannot collide: two many-side series
    // with one result label set share a signature, an error below.
    let index_output = !(one_to_one && n == 1);
    for ms in &many {
        let sig = m.signature(&ms.labels);
        let Some((idx, matched)) = one_by_sig.get_mut(&sig) else {
            continue;
        };
        if one_to_one && matched.is_empty() {
            matched.resize(n, false);
        }
        for &oi in idx.iter() {
            let os = &one[oi];
            let labels = result_labels(&ms.labels, &os.labels, m, one_to_one);
            let mut values = vec![None; n];
            let mut any = false;
            for step in 0..n {
                let (Some(mv), Some(ov)) = (ms.values[step], os.values[step]) else {
                    continue;
                };
                // Matches are checked before comparisons filter: a
                // many-to-one match without group_x is an error either way.
                if one_to_one {
                    if matched[step] {
                        return Err(QueryError::exec(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                        ));
                    }
                    matched[step] = true;
                }
                let (lv, rv) = if one_to_many { (ov, mv) } else { (mv, ov) };
                let (mut value, keep) = op.apply(lv, rv);
                if op.is_comparison() && one_to_many {
                    value = mv;
                }
                let v = if return_bool {
                    f64::from(u8::from(keep))
                } else if keep {
                    value
                } else {
                    continue;
                };
                values[step] = Some(v);
                any = true;
            }
            if !any {
                continue;
            }
            if !index_output {
                out.push(StepSeries {
                    labels,
                    values,
                    drop_name: drop_name || ms.drop_name,
                });
                continue;
            }
            let key = (labels.clone(), drop_name || ms.drop_name);
            match out_index.get(&key) {
                Some(&i) => {
                    let target = &mut out[i].values;
                    for (d, s) in target.iter_mut().zip(values) {
                        if s.is_some() {
                            if d.is_some() {
                                return Err(QueryError::exec(if one_to_one {
                                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                                } else {
                                    "multiple matches for labels: grouping labels must ensure unique matches"
                                }));
                            }
                            *d = s;
                        }
                    }
                }
                None => {
                    out_index.insert(key, out.len());
                    out.push(StepSeries {
                        labels,
                        values,
                        drop_name: drop_name || ms.drop_name,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The labels of a matched pair's result: the "many" side's, trimmed to
/// the matching labels for one-to-one, plus `group_x` labels from the "one" side.
fn result_labels(many: &LabelSet, one: &LabelSet, m: &Matching, one_to_one: bool) -> LabelSet {
    let mut labels = many.clone();
    if one_to_one {
        if m.on {
            labels = project(&labels, &m.labels, true);
        } else if !m.labels.is_empty() {
            labels = project(&labels, &m.labels, false);
        }
    }
    for name in &m.include {
        labels = crate::value::with_label(&labels, name, one.get(name).unwrap_or(""));
    }
    labels
}
