//! Type and argument errors with positions and wording as Prometheus
//! prints them (`1:6: parse error: expected type range vector in call to
//! function "rate", got instant vector`).
//!
//! promql-parser refuses such queries with a message of its own and no
//! position. For a query it refused that has no syntax error, this module
//! builds a small tree of the query (node kinds and where each starts,
//! with PromQL's operator precedence) and runs Prometheus's checks on it:
//! first the ones its grammar makes while parsing (aggregation argument
//! counts, misplaced `offset` / `@` / ranges), then its type check, top
//! down. It only describes errors; it never decides whether a query is
//! valid, so when it finds nothing the caller keeps promql-parser's word.

use crate::syntax_error::{is_binary_keyword, tokenize, Kind, Tok, AGGREGATIONS};

/// A located type error: byte offset and message.
pub(crate) struct TypeError {
    pub pos: usize,
    pub message: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Vt {
    Scalar,
    Vector,
    Matrix,
    Str,
}

impl Vt {
    /// Prometheus's `DocumentedType`.
    fn documented(self) -> &'static str {
        match self {
            Vt::Scalar => "scalar",
            Vt::Vector => "instant vector",
            Vt::Matrix => "range vector",
            Vt::Str => "string",
        }
    }
}

enum Node {
    Num(usize),
    Str(usize),
    Selector(usize),
    Paren(usize, Box<Node>),
    Call {
        pos: usize,
        name: String,
        args: Vec<Node>,
    },
    Agg {
        pos: usize,
        op: String,
        param: Option<Box<Node>>,
        expr: Option<Box<Node>>,
    },
    Unary(usize, Box<Node>),
    Binary {
        lhs: Box<Node>,
        rhs: Box<Node>,
        op: String,
        op_pos: usize,
        bool_modifier: bool,
        matching_labels: bool,
    },
    Matrix(Box<Node>),
    Subquery(Box<Node>),
}

impl Node {
    fn pos(&self) -> usize {
        match self {
            Node::Num(p) | Node::Str(p) | Node::Selector(p) | Node::Paren(p, _) => *p,
            Node::Unary(p, _) => *p,
            Node::Call { pos, .. } | Node::Agg { pos, .. } => *pos,
            Node::Binary { lhs, .. } => lhs.pos(),
            Node::Matrix(n) | Node::Subquery(n) => n.pos(),
        }
    }

    /// The node's type; `None` where this module does not know it (a
    /// function missing from [`signature`]), which skips checks on it.
    fn ty(&self) -> Option<Vt> {
        Some(match self {
            Node::Num(_) => Vt::Scalar,
            Node::Str(_) => Vt::Str,
            Node::Selector(_) | Node::Agg { .. } => Vt::Vector,
            Node::Paren(_, n) | Node::Unary(_, n) => return n.ty(),
            Node::Call { name, .. } => return signature(name).map(|s| s.ret),
            Node::Binary { lhs, rhs, .. } => match (lhs.ty()?, rhs.ty()?) {
                (Vt::Scalar, Vt::Scalar) => Vt::Scalar,
                _ => Vt::Vector,
            },
            Node::Matrix(_) | Node::Subquery(_) => Vt::Matrix,
        })
    }
}

struct Signature {
    args: &'static [Vt],
    /// As Prometheus: 0 exact, > 0 that many optional trailing arguments,
    /// < 0 any number of repeats of the last argument type.
    variadic: i32,
    ret: Vt,
}

/// Prometheus's function signatures (float functions).
fn signature(name: &str) -> Option<Signature> {
    use Vt::*;
    let s = |args: &'static [Vt], variadic: i32, ret: Vt| {
        Some(Signature {
            args,
            variadic,
            ret,
        })
    };
    match name {
        "abs" | "ceil" | "floor" | "exp" | "ln" | "log2" | "log10" | "sqrt" | "sgn" | "acos"
        | "acosh" | "asin" | "asinh" | "atan" | "atanh" | "cos" | "cosh" | "sin" | "sinh"
        | "tan" | "tanh" | "deg" | "rad" | "timestamp" | "sort" | "sort_desc" | "absent"
        | "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => s(&[Vector], 0, Vector),
        "round" => s(&[Vector, Scalar], 1, Vector),
        "clamp" => s(&[Vector, Scalar, Scalar], 0, Vector),
        "clamp_min" | "clamp_max" => s(&[Vector, Scalar], 0, Vector),
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => s(&[Vector], 1, Vector),
        "time" | "pi" => s(&[], 0, Scalar),
        "vector" => s(&[Scalar], 0, Vector),
        "scalar" => s(&[Vector], 0, Scalar),
        "rate"
        | "irate"
        | "increase"
        | "delta"
        | "idelta"
        | "deriv"
        | "resets"
        | "changes"
        | "avg_over_time"
        | "min_over_time"
        | "max_over_time"
        | "sum_over_time"
        | "count_over_time"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "last_over_time"
        | "first_over_time"
        | "present_over_time"
        | "mad_over_time"
        | "absent_over_time"
        | "ts_of_min_over_time"
        | "ts_of_max_over_time"
        | "ts_of_last_over_time"
        | "ts_of_first_over_time" => s(&[Matrix], 0, Vector),
        "quantile_over_time" => s(&[Scalar, Matrix], 0, Vector),
        "predict_linear" => s(&[Matrix, Scalar], 0, Vector),
        "double_exponential_smoothing" | "holt_winters" => s(&[Matrix, Scalar, Scalar], 0, Vector),
        "histogram_quantile" => s(&[Scalar, Vector], 0, Vector),
        "histogram_fraction" => s(&[Scalar, Scalar, Vector], 0, Vector),
        "label_replace" => s(&[Vector, Str, Str, Str, Str], 0, Vector),
        "label_join" => s(&[Vector, Str, Str, Str], -1, Vector),
        "sort_by_label" | "sort_by_label_desc" => s(&[Vector, Str], -1, Vector),
        _ => None,
    }
}

/// The tree of a whole query and the first error Prometheus's grammar
/// actions report while building it; `None` if tokens are left over.
fn tree(toks: &[Tok<'_>]) -> Option<(Node, Option<TypeError>)> {
    let mut b = Builder {
        toks,
        i: 0,
        grammar_error: None,
    };
    let root = b.expr(0)?;
    (b.i == toks.len()).then_some((root, b.grammar_error))
}

/// The first type or argument error in `query`, as Prometheus reports it.
pub(crate) fn locate(query: &str) -> Option<TypeError> {
    let toks = tokenize(query).ok()?;
    let (root, grammar_error) = tree(&toks)?;
    if let Some(e) = grammar_error {
        return Some(e);
    }
    let mut errors = Vec::new();
    check(&root, &mut errors);
    errors.into_iter().next()
}

/// Where a function call or aggregation starts, and where each of its
/// arguments does (an aggregation's: its parameter, if any, then its
/// expression), as byte offsets.
pub(crate) struct CallSite {
    pub name: String,
    pub pos: usize,
    pub args: Vec<Option<usize>>,
}

/// Every call and aggregation of `query`, in source order (a parent before
/// its arguments); `None` if the query does not build.
pub(crate) fn call_sites(query: &str) -> Option<Vec<CallSite>> {
    let toks = tokenize(query).ok()?;
    let (root, _) = tree(&toks)?;
    let mut out = Vec::new();
    collect_sites(&root, &mut out);
    Some(out)
}

fn collect_sites(n: &Node, out: &mut Vec<CallSite>) {
    match n {
        Node::Num(_) | Node::Str(_) | Node::Selector(_) => {}
        Node::Paren(_, x) | Node::Unary(_, x) | Node::Matrix(x) | Node::Subquery(x) => {
            collect_sites(x, out)
        }
        Node::Call { pos, name, args } => {
            out.push(CallSite {
                name: name.clone(),
                pos: *pos,
                args: args.iter().map(|a| Some(a.pos())).collect(),
            });
            for a in args {
                collect_sites(a, out);
            }
        }
        Node::Agg {
            pos,
            op,
            param,
            expr,
        } => {
            out.push(CallSite {
                name: op.clone(),
                pos: *pos,
                args: vec![
                    param.as_ref().map(|p| p.pos()),
                    expr.as_ref().map(|e| e.pos()),
                ],
            });
            for x in [param, expr].into_iter().flatten() {
                collect_sites(x, out);
            }
        }
        Node::Binary { lhs, rhs, .. } => {
            collect_sites(lhs, out);
            collect_sites(rhs, out);
        }
    }
}

fn error(pos: usize, message: String) -> TypeError {
    TypeError { pos, message }
}

/// Prometheus's binary operator precedence (higher binds tighter).
fn precedence(op: &str) -> Option<u8> {
    Some(match op {
        "or" => 1,
        "and" | "unless" => 2,
        "==" | "!=" | "<=" | "<" | ">=" | ">" => 3,
        "+" | "-" => 4,
        "*" | "/" | "%" | "atan2" => 5,
        "^" => 6,
        _ => return None,
    })
}

fn is_comparison(op: &str) -> bool {
    precedence(op) == Some(3)
}

fn is_set_operator(op: &str) -> bool {
    matches!(op, "and" | "or" | "unless")
}

struct Builder<'t, 'q> {
    toks: &'t [Tok<'q>],
    i: usize,
    /// The first error Prometheus's grammar actions report while parsing.
    grammar_error: Option<TypeError>,
}

impl<'q> Builder<'_, 'q> {
    fn peek(&self) -> Option<&Tok<'q>> {
        self.toks.get(self.i)
    }

    fn peek_kind(&self, n: usize) -> Option<&Kind> {
        self.toks.get(self.i + n).map(|t| &t.kind)
    }

    fn bump(&mut self) -> Option<Tok<'q>> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }

    fn is(&self, kind: Kind) -> bool {
        self.peek_kind(0) == Some(&kind)
    }

    fn is_word(&self, w: &str) -> bool {
        self.peek()
            .is_some_and(|t| t.kind == Kind::Ident && t.text.eq_ignore_ascii_case(w))
    }

    fn expect(&mut self, kind: Kind) -> Option<()> {
        self.is(kind).then(|| {
            self.i += 1;
        })
    }

    fn grammar(&mut self, pos: usize, message: String) {
        self.grammar_error.get_or_insert(error(pos, message));
    }

    /// The binary operator at the cursor, lowercased.
    fn binary_op(&self) -> Option<String> {
        let t = self.peek()?;
        let op = match t.kind {
            Kind::Op if !matches!(t.text, "=" | "=~" | "!~") => t.text.to_string(),
            Kind::Ident if is_binary_keyword(&t.text.to_ascii_lowercase()) => {
                t.text.to_ascii_lowercase()
            }
            _ => return None,
        };
        precedence(&op).map(|_| op)
    }

    fn expr(&mut self, min_prec: u8) -> Option<Node> {
        let mut lhs = self.unary()?;
        while let Some(op) = self.binary_op() {
            let prec = precedence(&op)?;
            if prec < min_prec {
                break;
            }
            let op_pos = self.bump()?.pos;
            let bool_modifier = self.is_word("bool");
            if bool_modifier {
                self.bump();
            }
            let mut matching_labels = false;
            if self.is_word("on") || self.is_word("ignoring") {
                self.bump();
                matching_labels = self.label_list()? > 0;
            }
            if self.is_word("group_left") || self.is_word("group_right") {
                self.bump();
                if self.is(Kind::LParen) {
                    self.label_list()?;
                }
            }
            // `^` is right-associative; the rest associate to the left.
            let next = if op == "^" { prec } else { prec + 1 };
            let rhs = self.expr(next)?;
            lhs = Node::Binary {
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                op,
                op_pos,
                bool_modifier,
                matching_labels,
            };
        }
        Some(lhs)
    }

    fn unary(&mut self) -> Option<Node> {
        if let Some(t) = self.peek() {
            if t.kind == Kind::Op && (t.text == "+" || t.text == "-") {
                let pos = t.pos;
                self.bump();
                // A sign binds like `*`: only `^` binds tighter.
                let inner = self.expr(6)?;
                return Some(Node::Unary(pos, Box::new(inner)));
            }
        }
        let primary = self.primary()?;
        self.postfix(primary)
    }

    fn postfix(&mut self, mut node: Node) -> Option<Node> {
        loop {
            if self.is(Kind::LBracket) {
                self.bump();
                self.bump()?; // the range or subquery range
                if self.is(Kind::Colon) {
                    self.bump();
                    if !self.is(Kind::RBracket) {
                        self.bump();
                    }
                    self.expect(Kind::RBracket)?;
                    node = Node::Subquery(Box::new(node));
                } else {
                    self.expect(Kind::RBracket)?;
                    if !matches!(node, Node::Selector(_)) {
                        self.grammar(
                            node.pos(),
                            "ranges only allowed for vector selectors".into(),
                        );
                    }
                    node = Node::Matrix(Box::new(node));
                }
            } else if self.is_word("offset") || self.is(Kind::At) {
                let what = if self.is(Kind::At) { "@" } else { "offset" };
                self.bump();
                if self.peek().is_some_and(|t| t.text == "-") {
                    self.bump();
                }
                if self.peek_kind(1) == Some(&Kind::LParen) {
                    // @ start() / @ end()
                    self.bump();
                    self.bump();
                }
                if what == "@" && self.is(Kind::RParen) {
                    self.bump();
                } else if what == "offset" || !self.is(Kind::RParen) {
                    self.bump()?;
                }
                if !matches!(
                    node,
                    Node::Selector(_) | Node::Matrix(_) | Node::Subquery(_)
                ) {
                    self.grammar(
                        node.pos(),
                        format!("{what} modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
                    );
                }
            } else {
                return Some(node);
            }
        }
    }

    fn primary(&mut self) -> Option<Node> {
        let t = self.peek()?.clone();
        match t.kind {
            Kind::Number => {
                self.bump();
                Some(Node::Num(t.pos))
            }
            Kind::Str => {
                self.bump();
                Some(Node::Str(t.pos))
            }
            Kind::LParen => {
                self.bump();
                let inner = self.expr(0)?;
                self.expect(Kind::RParen)?;
                Some(Node::Paren(t.pos, Box::new(inner)))
            }
            Kind::LBrace => {
                self.skip_braces()?;
                Some(Node::Selector(t.pos))
            }
            Kind::Ident => {
                let word = t.text.to_ascii_lowercase();
                let next = self.peek_kind(1).cloned();
                let grouped_next = self
                    .toks
                    .get(self.i + 1)
                    .is_some_and(|n| n.text == "by" || n.text == "without");
                if AGGREGATIONS.contains(&word.as_str())
                    && (next == Some(Kind::LParen) || grouped_next)
                {
                    return self.aggregation(t.pos, word);
                }
                self.bump();
                if next == Some(Kind::LParen) {
                    self.bump();
                    let args = self.args()?;
                    return Some(Node::Call {
                        pos: t.pos,
                        name: t.text.to_string(),
                        args,
                    });
                }
                if self.is(Kind::LBrace) {
                    self.skip_braces()?;
                }
                Some(Node::Selector(t.pos))
            }
            _ => None,
        }
    }

    /// After `(`: comma-separated expressions and the `)`.
    fn args(&mut self) -> Option<Vec<Node>> {
        let mut args = Vec::new();
        if self.expect(Kind::RParen).is_some() {
            return Some(args);
        }
        loop {
            args.push(self.expr(0)?);
            if self.expect(Kind::Comma).is_some() {
                continue;
            }
            self.expect(Kind::RParen)?;
            return Some(args);
        }
    }

    fn aggregation(&mut self, pos: usize, op: String) -> Option<Node> {
        self.bump();
        if self.is_word("by") || self.is_word("without") {
            self.bump();
            self.label_list()?;
        }
        self.expect(Kind::LParen)?;
        let mut args = self.args()?;
        if self.is_word("by") || self.is_word("without") {
            self.bump();
            self.label_list()?;
        }
        let with_param = matches!(
            op.as_str(),
            "topk" | "bottomk" | "count_values" | "quantile" | "limitk" | "limit_ratio"
        );
        let desired = if with_param { 2 } else { 1 };
        if args.len() != desired {
            if !args.is_empty() {
                self.grammar(
                    pos,
                    format!(
                        "wrong number of arguments for aggregate expression provided, expected {desired}, got {}",
                        args.len()
                    ),
                );
            }
            return Some(Node::Agg {
                pos,
                op,
                param: None,
                expr: None,
            });
        }
        let expr = args.pop().map(Box::new);
        let param = args.pop().map(Box::new);
        Some(Node::Agg {
            pos,
            op,
            param,
            expr,
        })
    }

    /// `(a, b)`: the number of labels.
    fn label_list(&mut self) -> Option<usize> {
        self.expect(Kind::LParen)?;
        let mut n = 0;
        while !self.is(Kind::RParen) {
            let t = self.bump()?;
            if t.kind != Kind::Comma {
                n += 1;
            }
        }
        self.bump();
        Some(n)
    }

    fn skip_braces(&mut self) -> Option<()> {
        self.expect(Kind::LBrace)?;
        while !self.is(Kind::RBrace) {
            self.bump()?;
        }
        self.bump();
        Some(())
    }
}

/// Prometheus's `expectType`: the node's own errors, then its type.
fn expect_type(n: &Node, want: Vt, context: &str, errors: &mut Vec<TypeError>) {
    check(n, errors);
    if let Some(got) = n.ty() {
        if got != want {
            errors.push(error(
                n.pos(),
                format!(
                    "expected type {} in {context}, got {}",
                    want.documented(),
                    got.documented()
                ),
            ));
        }
    }
}

/// Prometheus's `checkAST`, top down, collecting errors in its order.
fn check(n: &Node, errors: &mut Vec<TypeError>) {
    match n {
        Node::Num(_) | Node::Str(_) | Node::Selector(_) => {}
        Node::Paren(_, inner) | Node::Matrix(inner) | Node::Subquery(inner) => check(inner, errors),
        Node::Unary(pos, inner) => {
            check(inner, errors);
            if let Some(t @ (Vt::Matrix | Vt::Str)) = inner.ty() {
                errors.push(error(
                    *pos,
                    format!(
                        "unary expression only allowed on expressions of type scalar or instant vector, got {:?}",
                        t.documented()
                    ),
                ));
            }
        }
        Node::Call { pos, name, args } => {
            let Some(sig) = signature(name) else {
                for a in args {
                    check(a, errors);
                }
                return;
            };
            let nargs = sig.args.len();
            if sig.variadic == 0 {
                if nargs != args.len() {
                    errors.push(error(
                        *pos,
                        format!(
                            "expected {nargs} argument(s) in call to {name:?}, got {}",
                            args.len()
                        ),
                    ));
                }
            } else {
                let least = nargs - 1;
                if least > args.len() {
                    errors.push(error(
                        *pos,
                        format!(
                            "expected at least {least} argument(s) in call to {name:?}, got {}",
                            args.len()
                        ),
                    ));
                } else if sig.variadic > 0 {
                    let most = least + sig.variadic as usize;
                    if most < args.len() {
                        errors.push(error(
                            *pos,
                            format!(
                                "expected at most {most} argument(s) in call to {name:?}, got {}",
                                args.len()
                            ),
                        ));
                    }
                }
            }
            let context = format!("call to function {name:?}");
            for (i, a) in args.iter().enumerate() {
                let want = match sig.args.get(i) {
                    Some(t) => *t,
                    None if sig.variadic != 0 && nargs > 0 => sig.args[nargs - 1],
                    None => break,
                };
                expect_type(a, want, &context, errors);
            }
        }
        Node::Agg {
            op, param, expr, ..
        } => {
            if let Some(e) = expr {
                expect_type(e, Vt::Vector, "aggregation expression", errors);
            }
            if let Some(p) = param {
                match op.as_str() {
                    "count_values" => expect_type(p, Vt::Str, "aggregation parameter", errors),
                    _ => expect_type(p, Vt::Scalar, "aggregation parameter", errors),
                }
            }
        }
        Node::Binary {
            lhs,
            rhs,
            op,
            op_pos,
            bool_modifier,
            matching_labels,
        } => {
            check(lhs, errors);
            check(rhs, errors);
            let (Some(lt), Some(rt)) = (lhs.ty(), rhs.ty()) else {
                return;
            };
            if *bool_modifier && !is_comparison(op) {
                errors.push(error(
                    *op_pos,
                    "bool modifier can only be used on comparison operators".into(),
                ));
            }
            if is_comparison(op) && !bool_modifier && lt == Vt::Scalar && rt == Vt::Scalar {
                errors.push(error(
                    *op_pos,
                    "comparisons between scalars must use BOOL modifier".into(),
                ));
            }
            let operand = |t: Vt| t == Vt::Scalar || t == Vt::Vector;
            if !operand(lt) {
                errors.push(error(
                    lhs.pos(),
                    "binary expression must contain only scalar and instant vector types".into(),
                ));
            }
            if !operand(rt) {
                errors.push(error(
                    rhs.pos(),
                    "binary expression must contain only scalar and instant vector types".into(),
                ));
            }
            if (lt != Vt::Vector || rt != Vt::Vector) && *matching_labels {
                errors.push(error(
                    n.pos(),
                    "vector matching only allowed between instant vectors".into(),
                ));
            }
            if (lt == Vt::Scalar || rt == Vt::Scalar) && is_set_operator(op) {
                errors.push(error(
                    n.pos(),
                    format!("set operator {op:?} not allowed in binary scalar expression"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::syntax_error::parse;

    /// Messages recorded from Prometheus 2.42's /api/v1/query.
    #[test]
    fn type_errors_are_named_and_placed_as_prometheus_does() {
        let cases = [
            ("rate(x)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"),
            ("topk(x)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1"),
            ("sum(rate(x[5m])) + on() foo[5m]", "1:25: parse error: binary expression must contain only scalar and instant vector types"),
            ("abs(x, y)", "1:1: parse error: expected 1 argument(s) in call to \"abs\", got 2"),
            ("x + \"a\"", "1:5: parse error: binary expression must contain only scalar and instant vector types"),
            ("label_replace(x, \"a\")", "1:1: parse error: expected 5 argument(s) in call to \"label_replace\", got 2"),
            ("sum(x) by (a) > bool \"s\"", "1:22: parse error: binary expression must contain only scalar and instant vector types"),
            ("rate(x[5m]) offset -1h[5m]", "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
            ("foo and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"),
            ("sum(x[5m])", "1:5: parse error: expected type instant vector in aggregation expression, got range vector"),
            ("abs(\"s\")", "1:5: parse error: expected type instant vector in call to function \"abs\", got string"),
            ("1 + rate(x)", "1:10: parse error: expected type range vector in call to function \"rate\", got instant vector"),
            ("histogram_quantile(x, y)", "1:20: parse error: expected type scalar in call to function \"histogram_quantile\", got instant vector"),
            ("count_values(1, x)", "1:14: parse error: expected type string in aggregation parameter, got scalar"),
            ("x[5m] + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"),
            ("-\"a\"", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\""),
            ("quantile_over_time(x[5m])", "1:1: parse error: expected 2 argument(s) in call to \"quantile_over_time\", got 1"),
            ("sort(x[5m])", "1:6: parse error: expected type instant vector in call to function \"sort\", got range vector"),
            ("time(1)", "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1"),
            ("absent(x, y, z)", "1:1: parse error: expected 1 argument(s) in call to \"absent\", got 3"),
        ];
        for (q, want) in cases {
            assert_eq!(parse(q).unwrap_err(), want, "{q}");
        }
    }

    #[test]
    fn valid_queries_are_untouched() {
        for q in [
            "sum by (a) (rate(x[5m])) / on(a) group_left(b) y",
            "-2 ^ 2 > bool 1",
            "max_over_time(rate(x[5m])[1h:1m] offset 5m)",
            "label_join(x, \"d\", \",\", \"a\", \"b\", \"c\")",
            "round(x, 0.5) and on() vector(1)",
        ] {
            assert!(parse(q).is_ok(), "{q}");
            assert!(super::locate(q).is_none(), "{q}");
        }
    }
}
