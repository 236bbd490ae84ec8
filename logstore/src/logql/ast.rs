//! LogQL's syntax tree.

use regex::Regex;
use tsdb::Matcher;

#[derive(Debug, Clone)]
pub enum Expr {
    Log(LogExpr),
    Metric(MetricExpr),
}

/// A stream selector and the pipeline its lines go through.
#[derive(Debug, Clone)]
pub struct LogExpr {
    pub matchers: Vec<Matcher>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Contains,
    NotContains,
    Regex,
    NotRegex,
}

#[derive(Debug, Clone)]
pub struct LineFilter {
    pub op: FilterOp,
    /// Alternatives joined by `or` (one for a plain filter).
    pub values: Vec<String>,
    pub regexes: Vec<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }
}

/// What a numeric label filter compares the label's value as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumKind {
    Number,
    /// Go durations, compared in seconds.
    Duration,
    /// Humanized byte sizes, compared in bytes.
    Bytes,
}

#[derive(Debug, Clone)]
pub enum LabelFilter {
    Matcher(Matcher),
    Compare {
        name: String,
        op: CmpOp,
        kind: NumKind,
        value: f64,
    },
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
}

/// A `line_format` / `label_format` template: text and `{{ }}` actions.
#[derive(Debug, Clone)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone)]
pub enum TemplatePart {
    Text(String),
    /// A label's value (`__line__` and `__timestamp__` are the entry's) and
    /// the functions it is piped through.
    Value {
        name: String,
        funcs: Vec<TemplateFunc>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateFunc {
    Upper,
    Lower,
    Trim,
    TrimSpace,
    Title,
}

#[derive(Debug, Clone)]
pub enum LabelFormat {
    Rename { dst: String, src: String },
    Template { dst: String, template: Template },
}

#[derive(Debug, Clone)]
pub enum PatternPart {
    Literal(String),
    /// A named capture; `None` for `<_>`.
    Capture(Option<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnwrapConv {
    None,
    Duration,
    Bytes,
}

#[derive(Debug, Clone)]
pub struct Unwrap {
    pub label: String,
    pub conv: UnwrapConv,
}

#[derive(Debug, Clone)]
pub enum Stage {
    LineFilter(LineFilter),
    /// `| json` (all fields) or `| json a="path"`.
    Json(Vec<(String, Vec<JsonPathPart>)>),
    /// `| logfmt [--strict] [--keep-empty] [name="key", ...]`.
    Logfmt {
        params: Vec<(String, String)>,
        /// Stop at the first malformed pair with `__error__` (otherwise
        /// malformed tokens are skipped, as Loki 3 does).
        strict: bool,
        /// Keep standalone keys (`key` without `=`) with an empty value.
        keep_empty: bool,
    },
    Regexp(Regex),
    Pattern(Vec<PatternPart>),
    LabelFilter(LabelFilter),
    LineFormat(Template),
    LabelFormat(Vec<LabelFormat>),
    /// Names, or matchers that drop (keep) a label only when its value matches.
    Drop(Vec<Matcher>),
    Keep(Vec<Matcher>),
    Decolorize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonPathPart {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFunc {
    CountOverTime,
    Rate,
    BytesOverTime,
    BytesRate,
    AbsentOverTime,
    SumOverTime,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    FirstOverTime,
    LastOverTime,
    RateCounter,
}

impl RangeFunc {
    pub fn from_name(s: &str) -> Option<Self> {
        use RangeFunc::*;
        Some(match s {
            "count_over_time" => CountOverTime,
            "rate" => Rate,
            "bytes_over_time" => BytesOverTime,
            "bytes_rate" => BytesRate,
            "absent_over_time" => AbsentOverTime,
            "sum_over_time" => SumOverTime,
            "avg_over_time" => AvgOverTime,
            "min_over_time" => MinOverTime,
            "max_over_time" => MaxOverTime,
            "stddev_over_time" => StddevOverTime,
            "stdvar_over_time" => StdvarOverTime,
            "quantile_over_time" => QuantileOverTime,
            "first_over_time" => FirstOverTime,
            "last_over_time" => LastOverTime,
            "rate_counter" => RateCounter,
            _ => return None,
        })
    }

    /// Whether the function reads unwrapped values (else it counts lines or bytes).
    pub fn needs_unwrap(self) -> bool {
        use RangeFunc::*;
        matches!(
            self,
            SumOverTime
                | AvgOverTime
                | MinOverTime
                | MaxOverTime
                | StddevOverTime
                | StdvarOverTime
                | QuantileOverTime
                | FirstOverTime
                | LastOverTime
                | RateCounter
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VecOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Sort,
    SortDesc,
}

impl VecOp {
    pub fn from_name(s: &str) -> Option<Self> {
        use VecOp::*;
        Some(match s {
            "sum" => Sum,
            "avg" => Avg,
            "min" => Min,
            "max" => Max,
            "count" => Count,
            "stddev" => Stddev,
            "stdvar" => Stdvar,
            "topk" => Topk,
            "bottomk" => Bottomk,
            "sort" => Sort,
            "sort_desc" => SortDesc,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le
        )
    }

    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorMatching {
    pub on: bool,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RangeExpr {
    pub func: RangeFunc,
    pub param: Option<f64>,
    pub log: LogExpr,
    pub unwrap: Option<Unwrap>,
    /// Label filters after `unwrap` (usually `__error__=""`).
    pub post_unwrap: Vec<LabelFilter>,
    pub range_ns: i64,
    pub offset_ns: i64,
    pub grouping: Option<Grouping>,
}

#[derive(Debug, Clone)]
pub enum MetricExpr {
    Range(Box<RangeExpr>),
    Vector {
        op: VecOp,
        param: Option<f64>,
        grouping: Option<Grouping>,
        inner: Box<MetricExpr>,
    },
    Binary {
        op: BinOp,
        return_bool: bool,
        matching: Option<VectorMatching>,
        lhs: Box<MetricExpr>,
        rhs: Box<MetricExpr>,
    },
    Scalar(f64),
    /// `vector(v)`: one series without labels.
    VectorLit(f64),
}
