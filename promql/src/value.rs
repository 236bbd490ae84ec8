//! Values: what a query returns, and what evaluation passes between nodes.

use tsdb::{Label, LabelSet, Sample, METRIC_NAME};

/// A query's result, as the HTTP API presents it.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Scalar { t: i64, v: f64 },
    String { t: i64, v: String },
    Vector(Vec<InstantSample>),
    Matrix(Vec<RangeSeries>),
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    pub labels: LabelSet,
    pub t: i64,
    pub v: f64,
}

/// One series of a range vector (sorted by time).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: LabelSet,
    pub points: Vec<(i64, f64)>,
}

/// A float as Prometheus prints it (Go's `FormatFloat(v, 'f', -1, 64)`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's shortest round-trip form never uses an exponent, like 'f', -1.
        format!("{v}")
    }
}

/// An instant-vector series during evaluation: one value per step.
#[derive(Debug, Clone)]
pub(crate) struct StepSeries {
    pub labels: LabelSet,
    pub values: Vec<Option<f64>>,
    /// `__name__` is to be removed when the result is returned (Prometheus
    /// 3 delays the removal so `label_replace` can still read it).
    pub drop_name: bool,
}

impl StepSeries {
    pub fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }
}

/// A range-vector series: raw samples covering every step's window.
#[derive(Debug, Clone)]
pub(crate) struct MatrixSeries {
    pub labels: LabelSet,
    pub samples: Vec<Sample>,
    pub drop_name: bool,
}

/// A range vector: for step `i` the window is `(ends[i] - range, ends[i]]`.
#[derive(Debug, Clone)]
pub(crate) struct Matrix {
    pub series: Vec<MatrixSeries>,
    pub range_ms: i64,
    pub ends: Vec<i64>,
}

impl Matrix {
    /// Start index and end index (exclusive) of each step's window in `samples`.
    pub fn windows<'a>(&'a self, samples: &'a [Sample]) -> impl Iterator<Item = &'a [Sample]> + 'a {
        self.ends.iter().map(move |&end| {
            let lo = samples.partition_point(|s| s.t <= end - self.range_ms);
            let hi = samples.partition_point(|s| s.t <= end);
            &samples[lo..hi.max(lo)]
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    Str(String),
    Vector(Vec<StepSeries>),
    Matrix(Matrix),
}

impl Val {
    /// Points this value holds in memory, as the sample limit counts them:
    /// a step slot of every vector series (present or not: the slot is
    /// allocated), a scalar's steps, a range vector's samples.
    pub fn samples_held(&self) -> u64 {
        match self {
            Val::Scalar(v) => v.len() as u64,
            Val::Str(_) => 0,
            Val::Vector(vs) => vs.iter().map(|s| s.values.len() as u64).sum(),
            Val::Matrix(m) => m.series.iter().map(|s| s.samples.len() as u64).sum(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
        }
    }
}

/// `labels` without `__name__`.
pub(crate) fn without_name(labels: &LabelSet) -> LabelSet {
    if labels.get(METRIC_NAME).is_none() {
        return labels.clone();
    }
    labels.filtered(|l| l.name != METRIC_NAME)
}

/// `labels` with `name` set to `value` (removed when `value` is empty).
pub(crate) fn with_label(labels: &LabelSet, name: &str, value: &str) -> LabelSet {
    let mut out: Vec<Label> = labels
        .iter()
        .filter(|l| l.name != name)
        .map(Label::from)
        .collect();
    if !value.is_empty() {
        out.push(Label::new(name, value));
    }
    LabelSet::from_labels(out)
}

/// Only the labels named in `names` (`keep = true`) or all but those.
pub(crate) fn project(labels: &LabelSet, names: &[String], keep: bool) -> LabelSet {
    labels.filtered(|l| names.iter().any(|n| **n == *l.name) == keep)
}

/// A label set as Prometheus prints it in messages: `{a="1", b="2"}`.
pub(crate) fn labels_string(labels: &LabelSet) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", parts.join(", "))
}
