//! Parse errors with positions, as Prometheus prints them
//! (`1:16: parse error: unclosed left parenthesis`).
//!
//! promql-parser reports a syntax error only as "invalid promql query",
//! without saying where. When it rejects a query, this module tokenizes the
//! query itself and walks PromQL's grammar to find the first token that
//! cannot continue it, and names that token and its line and column the way
//! Prometheus does. It only ever runs on queries promql-parser refused, so
//! it cannot make a valid query fail; when it finds nothing, errors about
//! types and argument counts are placed by [`crate::type_error`], and
//! failing that promql-parser's own message is kept.

use promql_parser::parser::{self, Expr};

/// Parses `query`; errors carry a position where one can be found. A
/// query nested deeper than [`crate::nesting::MAX_DEPTH`] is refused before
/// the parser sees it (its recursion would overflow the stack).
pub fn parse(query: &str) -> Result<Expr, String> {
    crate::nesting::check(query, crate::nesting::MAX_DEPTH)?;
    parser::parse(query).map_err(|msg| describe(query, &msg))
}

/// The message for a query promql-parser refused with `msg`.
pub fn describe(query: &str, msg: &str) -> String {
    match locate(query) {
        Some(SyntaxError { pos, message }) => {
            let (line, col) = line_col(query, pos);
            format!("{line}:{col}: parse error: {message}")
        }
        None => match crate::type_error::locate(query) {
            Some(e) => {
                let (line, col) = line_col(query, e.pos);
                format!("{line}:{col}: parse error: {}", e.message)
            }
            None => format!("parse error: {msg}"),
        },
    }
}

/// Where a query stops being PromQL, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset (the query's length for "end of input").
    pub pos: usize,
    pub message: String,
}

fn line_col(query: &str, pos: usize) -> (usize, usize) {
    let before = &query.as_bytes()[..pos.min(query.len())];
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    (line, pos - line_start + 1)
}

/// The first syntax error in `query`, if any.
pub fn locate(query: &str) -> Option<SyntaxError> {
    let toks = match tokenize(query) {
        Ok(t) => t,
        Err(e) => return Some(e),
    };
    let depth = |open: Kind, close: Kind| {
        toks.iter().filter(|t| t.kind == open).count() as i64
            - toks.iter().filter(|t| t.kind == close).count() as i64
    };
    let mut p = Parser {
        toks: &toks,
        i: 0,
        end: query.len(),
        open_at_end: if depth(Kind::LBrace, Kind::RBrace) > 0 {
            Some("unexpected end of input inside braces")
        } else if depth(Kind::LParen, Kind::RParen) > 0 {
            Some("unclosed left parenthesis")
        } else if depth(Kind::LBracket, Kind::RBracket) > 0 {
            Some("unclosed left bracket")
        } else {
            None
        },
    };
    p.top().err()
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    Ident,
    Number,
    Duration,
    Str,
    Op,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
}

#[derive(Clone, Debug)]
pub(crate) struct Tok<'a> {
    pub kind: Kind,
    pub text: &'a str,
    pub pos: usize,
}

impl Tok<'_> {
    /// How Prometheus names a token in "unexpected …".
    fn describe(&self) -> String {
        match self.kind {
            Kind::Ident if KEYWORDS.contains(&self.text) => format!("<{}>", self.text),
            Kind::Ident if is_binary_keyword(self.text) => format!("<op:{}>", self.text),
            Kind::Ident => format!("identifier {:?}", self.text),
            Kind::Number => format!("number {:?}", self.text),
            Kind::Duration => format!("duration {:?}", self.text),
            Kind::Str => format!("string {:?}", self.text),
            Kind::Op => format!("<op:{}>", self.text),
            Kind::RParen => "right parenthesis ')'".into(),
            Kind::RBracket => "right bracket ']'".into(),
            _ => format!("{:?}", self.text),
        }
    }
}

pub(crate) const AGGREGATIONS: [&str; 15] = [
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
    "mad",
];
const KEYWORDS: [&str; 8] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
];

pub(crate) fn is_binary_keyword(s: &str) -> bool {
    matches!(s, "and" | "or" | "unless" | "atan2")
}

fn err<T>(pos: usize, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        pos,
        message: message.into(),
    })
}

pub(crate) fn tokenize(q: &str) -> Result<Vec<Tok<'_>>, SyntaxError> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut braces, mut brackets) = (0usize, 0usize, 0usize);
    while i < b.len() {
        let c = b[i];
        let start = i;
        let tok = |kind, end: usize| Tok {
            kind,
            text: &q[start..end],
            pos: start,
        };
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' | b'`' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return err(start, "unterminated quoted string"),
                        Some(b'\n') if c != b'`' => {
                            return err(start, "unterminated quoted string")
                        }
                        Some(b'\\') if c != b'`' => i += 2,
                        Some(x) if *x == c => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
                out.push(tok(Kind::Str, i.min(b.len())));
            }
            b'0'..=b'9' | b'.' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    // An exponent's sign belongs to the number.
                    if (b[i] == b'e' || b[i] == b'E')
                        && matches!(b.get(i + 1), Some(b'+' | b'-'))
                        && !q[start..i].starts_with("0x")
                    {
                        i += 1;
                    }
                    i += 1;
                }
                let text = &q[start..i];
                let hex = text.starts_with("0x") || text.starts_with("0X");
                let is_duration = !hex
                    && text
                        .bytes()
                        .any(|c| c.is_ascii_alphabetic() && c != b'e' && c != b'E');
                out.push(tok(
                    if is_duration {
                        Kind::Duration
                    } else {
                        Kind::Number
                    },
                    i,
                ));
            }
            c if c.is_ascii_alphabetic() || c == b'_' || (c == b':' && brackets == 0) => {
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || (b[i] == b':' && brackets == 0 && braces == 0))
                {
                    i += 1;
                }
                out.push(tok(Kind::Ident, i));
            }
            b'}' if braces == 0 => return err(start, "unexpected character: '}'"),
            b'(' | b')' | b'{' | b'}' | b'[' | b']' | b',' | b':' | b'@' => {
                let kind = match c {
                    b'(' => Kind::LParen,
                    b')' => Kind::RParen,
                    b'{' => Kind::LBrace,
                    b'}' => Kind::RBrace,
                    b'[' => Kind::LBracket,
                    b']' => Kind::RBracket,
                    b',' => Kind::Comma,
                    b':' => Kind::Colon,
                    _ => Kind::At,
                };
                match kind {
                    Kind::LBrace => braces += 1,
                    Kind::RBrace => braces -= 1,
                    Kind::LBracket => brackets += 1,
                    Kind::RBracket => brackets = brackets.saturating_sub(1),
                    _ => {}
                }
                i += 1;
                out.push(tok(kind, i));
            }
            b'!' => match b.get(i + 1) {
                Some(b'=' | b'~') => {
                    i += 2;
                    out.push(tok(Kind::Op, i));
                }
                Some(n) => {
                    return err(
                        start,
                        format!("unexpected character after '!': '{}'", *n as char),
                    )
                }
                None => return err(start, "unexpected end of input after '!'"),
            },
            b'=' | b'<' | b'>' => {
                i += 1;
                if matches!(b.get(i), Some(b'=')) || (c == b'=' && matches!(b.get(i), Some(b'~'))) {
                    i += 1;
                }
                out.push(tok(Kind::Op, i));
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' => {
                i += 1;
                out.push(tok(Kind::Op, i));
            }
            _ => {
                let ch = q[start..].chars().next().unwrap_or('?');
                return err(start, format!("unexpected character: {ch:?}"));
            }
        }
    }
    Ok(out)
}

struct Parser<'t, 'q> {
    toks: &'t [Tok<'q>],
    i: usize,
    /// The query's length: where "end of input" is.
    end: usize,
    /// What Prometheus's lexer says on reaching the end with a brace,
    /// parenthesis or bracket still open (before any parser error there).
    open_at_end: Option<&'static str>,
}

type Step = Result<(), SyntaxError>;

impl<'q> Parser<'_, 'q> {
    fn peek(&self) -> Option<&Tok<'q>> {
        self.toks.get(self.i)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok<'q>> {
        self.toks.get(self.i + n)
    }

    fn bump(&mut self) -> Option<Tok<'q>> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }

    fn is(&self, kind: Kind) -> bool {
        self.peek().is_some_and(|t| t.kind == kind)
    }

    fn is_word(&self, w: &str) -> bool {
        self.peek()
            .is_some_and(|t| t.kind == Kind::Ident && t.text.eq_ignore_ascii_case(w))
    }

    /// An error at the end of input: the open bracket Prometheus's lexer
    /// complains about, or `message`.
    fn at_end<T>(&self, message: String) -> Result<T, SyntaxError> {
        err(self.end, self.open_at_end.map_or(message, String::from))
    }

    /// "unexpected X" (plus context) at the next token or the end.
    fn unexpected<T>(&self, context: &str) -> Result<T, SyntaxError> {
        match self.peek() {
            None => self.at_end(format!("unexpected end of input{context}")),
            // Prometheus's lexer reports a stray `)` just after it.
            Some(t) if t.kind == Kind::RParen => err(t.pos + 1, "unexpected right parenthesis ')'"),
            Some(t) => err(t.pos, format!("unexpected {}{context}", t.describe())),
        }
    }

    fn top(&mut self) -> Step {
        if self.toks.is_empty() {
            return err(self.end, "no expression found in input");
        }
        self.expr()?;
        match self.peek() {
            None => Ok(()),
            Some(_) => self.unexpected(""),
        }
    }

    fn expr(&mut self) -> Step {
        self.unary()?;
        while self.binary_operator() {
            self.bump();
            if self.is_word("bool") {
                self.bump();
            }
            if self.is_word("on") || self.is_word("ignoring") {
                self.bump();
                self.label_list(" in grouping opts")?;
            }
            if self.is_word("group_left") || self.is_word("group_right") {
                self.bump();
                if self.is(Kind::LParen) {
                    self.label_list(" in grouping opts")?;
                }
            }
            self.unary()?;
        }
        Ok(())
    }

    fn binary_operator(&self) -> bool {
        self.peek().is_some_and(|t| match t.kind {
            Kind::Op => t.text != "=" && t.text != "=~" && t.text != "!~",
            Kind::Ident => is_binary_keyword(&t.text.to_ascii_lowercase()),
            _ => false,
        })
    }

    fn unary(&mut self) -> Step {
        while self
            .peek()
            .is_some_and(|t| t.kind == Kind::Op && (t.text == "+" || t.text == "-"))
        {
            self.bump();
        }
        self.primary()?;
        self.postfix()
    }

    fn postfix(&mut self) -> Step {
        loop {
            if self.is(Kind::LBracket) {
                let open = self.bump();
                self.range_or_subquery(open.map_or(self.end, |t| t.pos))?;
            } else if self.is_word("offset") {
                self.bump();
                if self
                    .peek()
                    .is_some_and(|t| t.kind == Kind::Op && t.text == "-")
                {
                    self.bump();
                }
                match self.peek() {
                    Some(t) if t.kind == Kind::Duration || t.kind == Kind::Number => {
                        self.bump();
                    }
                    _ => return self.unexpected(" in offset, expected duration"),
                }
            } else if self.is(Kind::At) {
                self.bump();
                if self
                    .peek()
                    .is_some_and(|t| t.kind == Kind::Op && t.text == "-")
                {
                    self.bump();
                }
                match self.peek() {
                    Some(t) if t.kind == Kind::Number => {
                        self.bump();
                    }
                    Some(t)
                        if t.kind == Kind::Ident
                            && (t.text == "start" || t.text == "end")
                            && self.peek_at(1).is_some_and(|n| n.kind == Kind::LParen) =>
                    {
                        self.bump();
                        self.bump();
                        if !self.is(Kind::RParen) {
                            return self.unexpected(" in @, expected \")\"");
                        }
                        self.bump();
                    }
                    _ => return self.unexpected(" in @, expected timestamp"),
                }
            } else {
                return Ok(());
            }
        }
    }

    /// After `[`: `5m]`, `5m:]`, `5m:1m]`.
    fn range_or_subquery(&mut self, _open: usize) -> Step {
        let duration = |p: &Parser| {
            p.peek()
                .is_some_and(|t| t.kind == Kind::Duration || t.kind == Kind::Number)
        };
        if duration(self) {
            self.bump();
        } else if self.peek().is_none() {
            return self.at_end("unclosed left bracket".into());
        } else {
            return self.unexpected(" in range, expected duration");
        }
        if self.is(Kind::Colon) {
            self.bump();
            if duration(self) {
                self.bump();
            }
        }
        self.close(
            Kind::RBracket,
            "unclosed left bracket",
            " in range, expected \"]\"",
        )
    }

    fn primary(&mut self) -> Step {
        let Some(t) = self.peek().cloned() else {
            return self.at_end("unexpected end of input".into());
        };
        match t.kind {
            Kind::Number | Kind::Str => {
                self.bump();
                Ok(())
            }
            Kind::LParen => {
                self.bump();
                self.expr()?;
                self.close_paren()
            }
            Kind::LBrace => self.matchers(),
            Kind::Ident => {
                let word = t.text.to_ascii_lowercase();
                let next = self.peek_at(1).map(|n| n.kind.clone());
                if AGGREGATIONS.contains(&word.as_str())
                    && (next == Some(Kind::LParen)
                        || self
                            .peek_at(1)
                            .is_some_and(|n| n.text == "by" || n.text == "without"))
                {
                    return self.aggregation();
                }
                if KEYWORDS.contains(&word.as_str()) || is_binary_keyword(&word) {
                    return self.unexpected("");
                }
                self.bump();
                if next == Some(Kind::LParen) {
                    self.bump();
                    return self.call_args();
                }
                if self.is(Kind::LBrace) {
                    self.matchers()?;
                }
                Ok(())
            }
            _ => self.unexpected(""),
        }
    }

    fn close_paren(&mut self) -> Step {
        self.close(Kind::RParen, "unclosed left parenthesis", "")
    }

    /// The closing token `kind`, or what Prometheus says when it is missing.
    fn close(&mut self, kind: Kind, unclosed: &str, context: &str) -> Step {
        match self.peek() {
            None => self.at_end(unclosed.into()),
            Some(t) if t.kind == kind => {
                self.bump();
                Ok(())
            }
            Some(_) => self.unexpected(context),
        }
    }

    /// After a function's `(`: arguments and the closing `)`.
    fn call_args(&mut self) -> Step {
        if self.is(Kind::RParen) {
            self.bump();
            return Ok(());
        }
        loop {
            self.expr()?;
            if self.is(Kind::Comma) {
                let comma = self.bump().map_or(self.end, |t| t.pos);
                if self.is(Kind::RParen) {
                    return err(comma, "trailing commas not allowed in function call args");
                }
                continue;
            }
            return self.close_paren();
        }
    }

    fn aggregation(&mut self) -> Step {
        self.bump();
        let mut grouped = false;
        if self.is_word("by") || self.is_word("without") {
            self.bump();
            self.label_list(" in grouping opts")?;
            grouped = true;
        }
        if !self.is(Kind::LParen) {
            return self.unexpected(" in aggregation");
        }
        self.bump();
        self.call_args()?;
        if !grouped && (self.is_word("by") || self.is_word("without")) {
            self.bump();
            self.label_list(" in grouping opts")?;
        }
        Ok(())
    }

    /// `(a, b)` after by/without/on/ignoring/group_*.
    fn label_list(&mut self, context: &str) -> Step {
        if !self.is(Kind::LParen) {
            return self.unexpected(&format!("{context}, expected \"(\""));
        }
        self.bump();
        loop {
            match self.peek() {
                Some(t) if t.kind == Kind::RParen => {
                    self.bump();
                    return Ok(());
                }
                Some(t) if t.kind == Kind::Ident || t.kind == Kind::Str => {
                    self.bump();
                    match self.peek() {
                        Some(t) if t.kind == Kind::Comma => {
                            self.bump();
                        }
                        Some(t) if t.kind == Kind::RParen => {}
                        _ => {
                            return self.unexpected(&format!("{context}, expected \",\" or \")\""))
                        }
                    }
                }
                _ => return self.unexpected(&format!("{context}, expected label")),
            }
        }
    }

    /// `{…}` label matchers, at the `{`.
    fn matchers(&mut self) -> Step {
        self.bump();
        loop {
            match self.peek() {
                None => return self.at_end("unexpected end of input inside braces".into()),
                Some(t) if t.kind == Kind::RBrace => {
                    self.bump();
                    return Ok(());
                }
                Some(t) if t.kind == Kind::Ident || t.kind == Kind::Str => {
                    let quoted_name = t.kind == Kind::Str;
                    self.bump();
                    match self.peek() {
                        Some(o)
                            if o.kind == Kind::Op && matches!(o.text, "=" | "!=" | "=~" | "!~") =>
                        {
                            self.bump();
                            match self.peek() {
                                Some(v) if v.kind == Kind::Str => {
                                    self.bump();
                                }
                                None => {
                                    return self
                                        .at_end("unexpected end of input inside braces".into())
                                }
                                Some(_) => {
                                    return self.unexpected(" in label matching, expected string")
                                }
                            }
                        }
                        // A quoted metric name alone: {"metric"}.
                        Some(o)
                            if quoted_name && (o.kind == Kind::Comma || o.kind == Kind::RBrace) => {
                        }
                        None => return self.at_end("unexpected end of input inside braces".into()),
                        Some(_) => {
                            return self
                                .unexpected(" in label matching, expected label matching operator")
                        }
                    }
                    match self.peek() {
                        Some(c) if c.kind == Kind::Comma => {
                            self.bump();
                        }
                        Some(c) if c.kind == Kind::RBrace => {}
                        None => return self.at_end("unexpected end of input inside braces".into()),
                        Some(_) => {
                            return self.unexpected(" in label matching, expected \",\" or \"}\"")
                        }
                    }
                }
                Some(_) => {
                    return self.unexpected(" in label matching, expected identifier or \"}\"")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case: query and the message Prometheus 2.42 gives for it
    /// (recorded with `promtool check rules`).
    const PROMETHEUS: &[(&str, &str)] = &[
        ("sum(rate(x[5m])", "1:16: parse error: unclosed left parenthesis"),
        ("sum(rate(x[5m])))", "1:18: parse error: unexpected right parenthesis ')'"),
        ("foo{a=\"b\"", "1:10: parse error: unexpected end of input inside braces"),
        ("foo{a=~}", "1:8: parse error: unexpected \"}\" in label matching, expected string"),
        ("rate(x[5m", "1:10: parse error: unclosed left parenthesis"),
        ("x +", "1:4: parse error: unexpected end of input"),
        (
            "sum by (a b) (x)",
            "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\"",
        ),
        ("x[5m", "1:5: parse error: unclosed left bracket"),
        ("1 +* 2", "1:4: parse error: unexpected <op:*>"),
        ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
        ("x[5m:1m", "1:8: parse error: unclosed left bracket"),
        ("x offset", "1:9: parse error: unexpected end of input in offset, expected duration"),
        ("{a=\"b\"", "1:7: parse error: unexpected end of input inside braces"),
        (
            "sum(x) by",
            "1:10: parse error: unexpected end of input in grouping opts, expected \"(\"",
        ),
        ("x @", "1:4: parse error: unexpected end of input in @, expected timestamp"),
        ("foo{a=\"b}", "1:7: parse error: unterminated quoted string"),
        ("(x", "1:3: parse error: unclosed left parenthesis"),
        ("x)", "1:3: parse error: unexpected right parenthesis ')'"),
        ("x]", "1:2: parse error: unexpected right bracket ']'"),
        ("}", "1:1: parse error: unexpected character: '}'"),
        ("sum(x,)", "1:6: parse error: trailing commas not allowed in function call args"),
        (
            "x{a=\"b\",,}",
            "1:9: parse error: unexpected \",\" in label matching, expected identifier or \"}\"",
        ),
        (
            "x{,}",
            "1:3: parse error: unexpected \",\" in label matching, expected identifier or \"}\"",
        ),
        ("1 + (2", "1:7: parse error: unclosed left parenthesis"),
        ("abs(x", "1:6: parse error: unclosed left parenthesis"),
        ("foo{a!~\"b\"}}", "1:12: parse error: unexpected character: '}'"),
        ("x y z", "1:3: parse error: unexpected identifier \"y\""),
        ("sum(x) by (a) (y)", "1:15: parse error: unexpected \"(\""),
        ("x ! y", "1:3: parse error: unexpected character after '!': ' '"),
        ("sum(", "1:5: parse error: unclosed left parenthesis"),
        ("up{job=\"a\"", "1:11: parse error: unexpected end of input inside braces"),
        ("rate(x[5m]", "1:11: parse error: unclosed left parenthesis"),
        ("x[1m]]", "1:6: parse error: unexpected right bracket ']'"),
    ];

    #[test]
    fn syntax_errors_are_named_and_placed_as_prometheus_does() {
        let mut wrong = Vec::new();
        for (q, want) in PROMETHEUS {
            let got = match parse(q) {
                Ok(_) => "parsed".to_string(),
                Err(e) => e,
            };
            if got != *want {
                wrong.push(format!("{q:?}: got {got:?}, want {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn lines_and_columns_count_from_one() {
        let e = parse("sum(\n  rate(x[5m]\n").unwrap_err();
        assert_eq!(e, "3:1: parse error: unclosed left parenthesis");
    }

    #[test]
    fn valid_queries_find_no_syntax_error() {
        for q in [
            "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m] offset -1h @ start()))",
            "a / on(instance) group_left(version) b > bool 0.5",
            "max_over_time(x[1h:5m]) unless y or z and w",
            "-x ^ 2 % 3 atan2 y",
            "topk(3, x) without (a)",
            "{\"metric.with.dots\", a=\"b\"}",
            "1e3 + 0x1F + .5 + Inf",
            "x # comment\n + 1",
        ] {
            assert_eq!(locate(q), None, "{q}");
        }
    }

    proptest::proptest! {
        // Fuzz target: any text gets an answer, never a panic, and every
        // position points into the query or just past its end.
        #[test]
        fn any_text_is_located_without_panicking(q in "[a-z0-9_:{}()\\[\\],=~!\"'`@+*/ .\n-]{0,40}") {
            if let Some(e) = locate(&q) {
                proptest::prop_assert!(e.pos <= q.len());
            }
            let _ = parse(&q);
        }

        #[test]
        fn arbitrary_unicode_never_panics(q in "\\PC{0,30}") {
            let _ = parse(&q);
        }
    }

    #[test]
    fn errors_nobody_places_keep_promql_parsers_message() {
        let e = describe("nosuchfn(x)", "unknown function with name \"nosuchfn\"");
        assert_eq!(e, "parse error: unknown function with name \"nosuchfn\"");
    }
}
