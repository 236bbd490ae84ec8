//! LogQL text to [`Expr`]: a lexer and a recursive-descent parser. Errors
//! name the line and column, as Loki's do (`parse error at line 1, col 9:
//! ...`).

use super::ast::*;
use regex::Regex;
use tsdb::{MatchOp, Matcher};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Pipe,
    PipeEq,
    PipeTilde,
    BangEq,
    BangTilde,
    Eq,
    EqEq,
    EqTilde,
    Gt,
    Ge,
    Lt,
    Le,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Str(String),
    Num(f64),
    /// Nanoseconds.
    Dur(i64),
    Bytes(f64),
    Ident(String),
    Flag(String),
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Num(n) => format!("number {n}"),
            Tok::Dur(_) => "duration".into(),
            Tok::Bytes(_) => "byte size".into(),
            Tok::Ident(s) => format!("{s:?}"),
            Tok::Flag(s) => format!("flag {s:?}"),
            Tok::Eof => "end of query".into(),
            other => format!("{:?}", symbol(other)),
        }
    }
}

fn symbol(t: &Tok) -> &'static str {
    match t {
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::Comma => ",",
        Tok::Pipe => "|",
        Tok::PipeEq => "|=",
        Tok::PipeTilde => "|~",
        Tok::BangEq => "!=",
        Tok::BangTilde => "!~",
        Tok::Eq => "=",
        Tok::EqEq => "==",
        Tok::EqTilde => "=~",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::Lt => "<",
        Tok::Le => "<=",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::Percent => "%",
        Tok::Caret => "^",
        _ => "?",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at line {line}, col {col}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

/// Go's duration syntax (`1h30m`, `500ms`), plus `d`, `w`, `y` as Loki
/// and Prometheus accept.
pub fn parse_duration(s: &str) -> Option<i64> {
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            "w" => 7.0 * 86400e9,
            "y" => 365.0 * 86400e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += value * unit;
    }
    (total.abs() < 9.2e18).then_some(total as i64)
}

/// Go's `time.ParseDuration` exactly: integer nanoseconds, each fraction
/// scaled through a float as Go scales it, so `unwrap duration(x)` gives
/// Loki's values to the last bit. Optional sign; units ns, us, µs, μs, ms,
/// s, m, h.
pub fn go_duration_ns(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if let Some(r) = rest.strip_prefix('.') {
            frac_len = r.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for d in r[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                match frac
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(u64::from(d - b'0')))
                {
                    Some(f) => {
                        frac = f;
                        scale *= 10.0;
                    }
                    // Go stops taking digits once they would overflow.
                    None => overflow = true,
                }
            }
            rest = &r[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return None;
        }
        let v: u64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        let mut part = v.checked_mul(unit)?;
        if frac > 0 {
            part = part.checked_add((frac as f64 * (unit as f64 / scale)) as u64)?;
        }
        total = total.checked_add(part)?;
    }
    let limit = if neg { 1u64 << 63 } else { (1u64 << 63) - 1 };
    if total > limit {
        return None;
    }
    Some(if neg {
        (total as i128).wrapping_neg() as i64
    } else {
        total as i64
    })
}

/// Seconds of a duration as Go's `Duration.Seconds` computes them.
pub fn go_duration_seconds(ns: i64) -> f64 {
    let (sec, nsec) = (ns / 1_000_000_000, ns % 1_000_000_000);
    sec as f64 + nsec as f64 / 1e9
}

/// Humanized sizes as Loki's label filters read them (`10KB`, `1.5MiB`).
pub fn parse_bytes(s: &str) -> Option<f64> {
    let n = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let value: f64 = s[..n].parse().ok()?;
    let mult = match s[n..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" | "ki" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" | "mi" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" | "gi" => 1024f64.powi(3),
        "t" | "tb" => 1e12,
        "tib" | "ti" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pib" | "pi" => 1024f64.powi(5),
        _ => return None,
    };
    Some(value * mult)
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let two = |s: &str| src[i..].starts_with(s);
        let (tok, len) = if two("|=") {
            (Tok::PipeEq, 2)
        } else if two("|~") {
            (Tok::PipeTilde, 2)
        } else if two("!=") {
            (Tok::BangEq, 2)
        } else if two("!~") {
            (Tok::BangTilde, 2)
        } else if two("==") {
            (Tok::EqEq, 2)
        } else if two("=~") {
            (Tok::EqTilde, 2)
        } else if two(">=") {
            (Tok::Ge, 2)
        } else if two("<=") {
            (Tok::Le, 2)
        } else if two("--") && b.get(i + 2).is_some_and(|c| c.is_ascii_alphabetic()) {
            let mut j = i + 2;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'-' || b[j] == b'_') {
                j += 1;
            }
            (Tok::Flag(src[i..j].to_string()), j - i)
        } else {
            match c {
                b'{' => (Tok::LBrace, 1),
                b'}' => (Tok::RBrace, 1),
                b'(' => (Tok::LParen, 1),
                b')' => (Tok::RParen, 1),
                b'[' => (Tok::LBracket, 1),
                b']' => (Tok::RBracket, 1),
                b',' => (Tok::Comma, 1),
                b'|' => (Tok::Pipe, 1),
                b'=' => (Tok::Eq, 1),
                b'>' => (Tok::Gt, 1),
                b'<' => (Tok::Lt, 1),
                b'+' => (Tok::Plus, 1),
                b'-' => (Tok::Minus, 1),
                b'*' => (Tok::Star, 1),
                b'/' => (Tok::Slash, 1),
                b'%' => (Tok::Percent, 1),
                b'^' => (Tok::Caret, 1),
                b'"' => {
                    let (s, len) = lex_quoted(src, i)?;
                    (Tok::Str(s), len)
                }
                b'`' => match src[i + 1..].find('`') {
                    Some(end) => (Tok::Str(src[i + 1..i + 1 + end].to_string()), end + 2),
                    None => return Err(error_at(src, i, "unterminated raw string")),
                },
                b'0'..=b'9' | b'.' => {
                    let mut j = i;
                    while j < b.len() {
                        if b[j].is_ascii_alphanumeric() || b[j] == b'.' {
                            j += 1;
                        } else if src[j..].starts_with('µ') {
                            j += 'µ'.len_utf8();
                        } else {
                            break;
                        }
                    }
                    let text = &src[i..j];
                    let tok = if let Ok(n) = text.parse::<f64>() {
                        Tok::Num(n)
                    } else if let Some(d) = parse_duration(text) {
                        Tok::Dur(d)
                    } else if let Some(v) = parse_bytes(text) {
                        Tok::Bytes(v)
                    } else {
                        return Err(error_at(
                            src,
                            i,
                            &format!("invalid number, duration or size {text:?}"),
                        ));
                    };
                    (tok, j - i)
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let mut j = i;
                    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                        j += 1;
                    }
                    (Tok::Ident(src[i..j].to_string()), j - i)
                }
                _ => {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return Err(error_at(src, i, &format!("unexpected character {ch:?}")));
                }
            }
        };
        out.push((tok, start));
        i += len;
    }
    out.push((Tok::Eof, src.len()));
    Ok(out)
}

/// A double-quoted string with Go's escapes; returns it and its length.
/// Where the tokens first nest deeper than `max`, if they do: every open
/// parenthesis, brace or bracket is a level, and every operator (binary,
/// unary, `and`, `or`, `unless`) one more within its group, since a chain
/// of `n` left-associative operators is a tree `n` deep.
fn too_deep_at(toks: &[(Tok, usize)], max: usize) -> Option<usize> {
    let mut groups: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    for (t, at) in toks {
        match t {
            Tok::LParen | Tok::LBrace | Tok::LBracket => {
                groups.push(0);
                depth += 1;
            }
            Tok::RParen | Tok::RBrace | Tok::RBracket => {
                if let Some(ops) = groups.pop() {
                    depth -= 1 + ops;
                }
            }
            Tok::Plus
            | Tok::Minus
            | Tok::Star
            | Tok::Slash
            | Tok::Percent
            | Tok::Caret
            | Tok::EqEq
            | Tok::BangEq
            | Tok::Gt
            | Tok::Ge
            | Tok::Lt
            | Tok::Le => {
                if let Some(ops) = groups.last_mut() {
                    *ops += 1;
                }
                depth += 1;
            }
            Tok::Ident(w) if matches!(w.as_str(), "and" | "or" | "unless") => {
                if let Some(ops) = groups.last_mut() {
                    *ops += 1;
                }
                depth += 1;
            }
            _ => {}
        }
        if depth > max {
            return Some(*at);
        }
    }
    None
}

fn lex_quoted(src: &str, at: usize) -> Result<(String, usize), ParseError> {
    let mut out = String::new();
    let mut chars = src[at + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 2)),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n)
                            .filter_map(|_| chars.next().map(|(_, c)| c))
                            .collect();
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| {
                                error_at(src, at + 1 + i, &format!("invalid escape \\{e}{hex}"))
                            })?;
                        out.push(ch);
                    }
                    other => {
                        return Err(error_at(
                            src,
                            at + 1 + i,
                            &format!("invalid escape \\{other} in string"),
                        ));
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(error_at(src, at, "unterminated string"))
}

fn error_at(src: &str, at: usize, msg: &str) -> ParseError {
    let before = &src[..at.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |n| before[n + 1..].chars().count())
        + 1;
    ParseError {
        line,
        col,
        msg: format!("syntax error: {msg}"),
    }
}

/// Whether a token compares a label (so the identifier before it is a
/// label filter, not a stage or keyword).
fn is_label_comparison(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Eq
            | Tok::BangEq
            | Tok::EqTilde
            | Tok::BangTilde
            | Tok::Gt
            | Tok::Ge
            | Tok::Lt
            | Tok::Le
            | Tok::EqEq
    )
}

const PARSERS: &[&str] = &[
    "json",
    "logfmt",
    "regexp",
    "pattern",
    "line_format",
    "label_format",
    "drop",
    "keep",
    "unwrap",
    "decolorize",
    "unpack",
];

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

/// Parses a LogQL query.
/// Deepest nesting a LogQL query may have: the parser, the evaluator and
/// dropping the tree recurse once per level, so a query of thousands of
/// parentheses or a chain of thousands of operators would overflow the
/// stack and abort the process.
pub const MAX_DEPTH: usize = 1000;

/// Longest regex a query may give (`|~`, `=~`, `regexp`): matching every
/// line against a huge pattern burns CPU for little use.
pub const MAX_REGEX_LEN: usize = 8 << 10;
/// Compiled size a regex may reach (the regex crate's own default is 10 MiB).
const MAX_REGEX_PROGRAM: usize = 2 << 20;

use tsdb::quote::prefix;

pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    if let Some(at) = too_deep_at(&toks, MAX_DEPTH) {
        return Err(error_at(
            src,
            at,
            &format!("query too deeply nested: more than {MAX_DEPTH} levels"),
        ));
    }
    let mut p = Parser { src, toks, pos: 0 };
    let expr = if matches!(p.peek(), Tok::LBrace) {
        let log = p.log_expr()?;
        Expr::Log(log)
    } else {
        Expr::Metric(p.metric(0)?)
    };
    if !matches!(p.peek(), Tok::Eof) {
        return Err(p.unexpected("the end of the query"));
    }
    Ok(expr)
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].0
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].0
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn offset(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].1
    }

    fn err(&self, msg: &str) -> ParseError {
        error_at(self.src, self.offset(), msg)
    }

    fn unexpected(&self, wanted: &str) -> ParseError {
        self.err(&format!(
            "unexpected {}, expecting {wanted}",
            self.peek().describe()
        ))
    }

    fn expect(&mut self, t: Tok) -> Result<(), ParseError> {
        if *self.peek() == t {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected(&format!("{:?}", symbol(&t))))
        }
    }

    fn is_ident(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == word)
    }

    fn ident(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn regex(&self, pattern: &str, anchored: bool) -> Result<Regex, ParseError> {
        if pattern.len() > MAX_REGEX_LEN {
            return Err(self.err(&format!(
                "regex too long: {} bytes, at most {MAX_REGEX_LEN} (starts {:?})",
                pattern.len(),
                prefix(pattern, 40)
            )));
        }
        let p = if anchored {
            format!("^(?:{pattern})$")
        } else {
            pattern.to_string()
        };
        regex::RegexBuilder::new(&p)
            .size_limit(MAX_REGEX_PROGRAM)
            .build()
            .map_err(|e| {
                self.err(&format!(
                    "invalid regex {:?}: {}",
                    prefix(pattern, 200),
                    prefix(&e.to_string(), 400)
                ))
            })
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, ParseError> {
        self.expect(Tok::LBrace)?;
        let mut matchers = Vec::new();
        while !matches!(self.peek(), Tok::RBrace) {
            let name = self.ident("a label name")?;
            let op = match self.next() {
                Tok::Eq => MatchOp::Equal,
                Tok::BangEq => MatchOp::NotEqual,
                Tok::EqTilde => MatchOp::RegexMatch,
                Tok::BangTilde => MatchOp::RegexNoMatch,
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected("=, !=, =~ or !~"));
                }
            };
            let at = self.offset();
            let value = self.string("a quoted label value")?;
            let m = Matcher::new(op, name, value)
                .map_err(|e| error_at(self.src, at, &e.to_string()))?;
            matchers.push(m);
            if matches!(self.peek(), Tok::Comma) {
                self.next();
            } else if !matches!(self.peek(), Tok::RBrace) {
                return Err(self.unexpected("',' or '}'"));
            }
        }
        let at = self.offset();
        self.next();
        if matchers.is_empty() {
            return Err(error_at(
                self.src,
                at,
                "a stream selector needs at least one matcher",
            ));
        }
        if matchers.iter().all(|m| m.matches_empty()) {
            return Err(error_at(
                self.src,
                at,
                "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will",
            ));
        }
        Ok(matchers)
    }

    fn log_expr(&mut self) -> Result<LogExpr, ParseError> {
        let matchers = self.selector()?;
        let mut stages = Vec::new();
        self.stages(&mut stages, &mut None)?;
        Ok(LogExpr { matchers, stages })
    }

    /// Pipeline stages up to something that is not one. An `unwrap` (only
    /// allowed when `unwrap` is `Some`) ends the line stages; label filters
    /// after it go to `post`.
    fn stages(
        &mut self,
        stages: &mut Vec<Stage>,
        unwrap: &mut Option<(Option<Unwrap>, Vec<LabelFilter>)>,
    ) -> Result<(), ParseError> {
        loop {
            let op = match self.peek() {
                Tok::PipeEq => Some(FilterOp::Contains),
                Tok::BangEq => Some(FilterOp::NotContains),
                Tok::PipeTilde => Some(FilterOp::Regex),
                Tok::BangTilde => Some(FilterOp::NotRegex),
                Tok::Pipe => None,
                _ => return Ok(()),
            };
            let at = self.offset();
            self.next();
            if let Some(op) = op {
                let mut values = vec![self.string("a quoted line filter")?];
                while self.is_ident("or") && matches!(self.peek_at(1), Tok::Str(_)) {
                    self.next();
                    values.push(self.string("a quoted line filter")?);
                }
                let regexes = match op {
                    FilterOp::Regex | FilterOp::NotRegex => values
                        .iter()
                        .map(|v| self.regex(v, false))
                        .collect::<Result<_, _>>()?,
                    _ => Vec::new(),
                };
                if unwrap.as_ref().is_some_and(|u| u.0.is_some()) {
                    return Err(error_at(
                        self.src,
                        at,
                        "line filters are not allowed after unwrap",
                    ));
                }
                stages.push(Stage::LineFilter(LineFilter {
                    op,
                    values,
                    regexes,
                }));
                continue;
            }
            let word = match self.peek() {
                Tok::Ident(w)
                    if PARSERS.contains(&w.as_str()) && !is_label_comparison(self.peek_at(1)) =>
                {
                    Some(w.clone())
                }
                _ => None,
            };
            let Some(word) = word else {
                let f = self.label_filter()?;
                match unwrap {
                    Some((Some(_), post)) => post.push(f),
                    _ => stages.push(Stage::LabelFilter(f)),
                }
                continue;
            };
            if unwrap.as_ref().is_some_and(|u| u.0.is_some()) {
                return Err(error_at(
                    self.src,
                    at,
                    &format!("{word} is not allowed after unwrap (only label filters)"),
                ));
            }
            self.next();
            let stage = match word.as_str() {
                "json" => Stage::Json(self.json_params()?),
                "logfmt" => {
                    let (mut strict, mut keep_empty) = (false, false);
                    while let Tok::Flag(f) = self.peek().clone() {
                        match f.as_str() {
                            "strict" | "--strict" => strict = true,
                            "keep-empty" | "--keep-empty" => keep_empty = true,
                            other => {
                                return Err(self.err(&format!(
                                    "unknown logfmt flag {other:?} (--strict, --keep-empty)"
                                )))
                            }
                        }
                        self.next();
                    }
                    let mut params = Vec::new();
                    if matches!(self.peek(), Tok::Ident(_)) && matches!(self.peek_at(1), Tok::Eq) {
                        loop {
                            let name = self.ident("a label name")?;
                            self.expect(Tok::Eq)?;
                            params.push((name, self.string("a quoted key")?));
                            if !matches!(self.peek(), Tok::Comma) {
                                break;
                            }
                            self.next();
                        }
                    }
                    Stage::Logfmt {
                        params,
                        strict,
                        keep_empty,
                    }
                }
                "regexp" => {
                    let at = self.offset();
                    let r = self.string("a quoted regular expression")?;
                    let re = self.regex(&r, false)?;
                    if re.capture_names().flatten().next().is_none() {
                        return Err(error_at(
                            self.src,
                            at,
                            "regexp must contain at least one named capture group",
                        ));
                    }
                    Stage::Regexp(re)
                }
                "pattern" => {
                    let at = self.offset();
                    let p = self.string("a quoted pattern")?;
                    Stage::Pattern(parse_pattern(&p).map_err(|m| error_at(self.src, at, &m))?)
                }
                "line_format" => {
                    let at = self.offset();
                    let t = self.string("a quoted template")?;
                    Stage::LineFormat(parse_template(&t).map_err(|m| error_at(self.src, at, &m))?)
                }
                "label_format" => {
                    let mut items = Vec::new();
                    loop {
                        let dst = self.ident("a label name")?;
                        self.expect(Tok::Eq)?;
                        let at = self.offset();
                        match self.next() {
                            Tok::Ident(src) => items.push(LabelFormat::Rename { dst, src }),
                            Tok::Str(t) => items.push(LabelFormat::Template {
                                dst,
                                template: parse_template(&t)
                                    .map_err(|m| error_at(self.src, at, &m))?,
                            }),
                            _ => {
                                self.pos -= 1;
                                return Err(self.unexpected("a label name or a quoted template"));
                            }
                        }
                        if !matches!(self.peek(), Tok::Comma) {
                            break;
                        }
                        self.next();
                    }
                    Stage::LabelFormat(items)
                }
                "drop" | "keep" => {
                    let mut list = Vec::new();
                    loop {
                        let name = self.ident("a label name")?;
                        let op = match self.peek() {
                            Tok::Eq => Some(MatchOp::Equal),
                            Tok::BangEq => Some(MatchOp::NotEqual),
                            Tok::EqTilde => Some(MatchOp::RegexMatch),
                            Tok::BangTilde => Some(MatchOp::RegexNoMatch),
                            _ => None,
                        };
                        let m = match op {
                            Some(op) => {
                                self.next();
                                let at = self.offset();
                                let v = self.string("a quoted value")?;
                                Matcher::new(op, name, v)
                                    .map_err(|e| error_at(self.src, at, &e.to_string()))?
                            }
                            // Any value, including none.
                            None => Matcher::new(MatchOp::RegexMatch, name, ".*")
                                .map_err(|e| self.err(&e.to_string()))?,
                        };
                        list.push(m);
                        if !matches!(self.peek(), Tok::Comma) {
                            break;
                        }
                        self.next();
                    }
                    if word == "drop" {
                        Stage::Drop(list)
                    } else {
                        Stage::Keep(list)
                    }
                }
                "decolorize" => Stage::Decolorize,
                "unpack" => return Err(error_at(self.src, at, "unpack is not supported")),
                "unwrap" => {
                    let Some(slot) = unwrap.as_mut() else {
                        return Err(error_at(
                            self.src,
                            at,
                            "unwrap is only allowed inside a range aggregation",
                        ));
                    };
                    let first = self.ident("a label name")?;
                    let u = if matches!(self.peek(), Tok::LParen)
                        && matches!(first.as_str(), "duration" | "duration_seconds" | "bytes")
                    {
                        self.next();
                        let label = self.ident("a label name")?;
                        self.expect(Tok::RParen)?;
                        Unwrap {
                            label,
                            conv: if first == "bytes" {
                                UnwrapConv::Bytes
                            } else {
                                UnwrapConv::Duration
                            },
                        }
                    } else {
                        Unwrap {
                            label: first,
                            conv: UnwrapConv::None,
                        }
                    };
                    slot.0 = Some(u);
                    continue;
                }
                _ => return Err(error_at(self.src, at, &format!("unknown stage {word}"))),
            };
            stages.push(stage);
        }
    }

    fn json_params(&mut self) -> Result<Vec<(String, Vec<JsonPathPart>)>, ParseError> {
        let mut params = Vec::new();
        if !(matches!(self.peek(), Tok::Ident(_)) && matches!(self.peek_at(1), Tok::Eq)) {
            return Ok(params);
        }
        loop {
            let name = self.ident("a label name")?;
            self.expect(Tok::Eq)?;
            let at = self.offset();
            let path = self.string("a quoted JSON path")?;
            params.push((
                name,
                parse_json_path(&path).map_err(|m| error_at(self.src, at, &m))?,
            ));
            if !matches!(self.peek(), Tok::Comma)
                || !matches!(self.peek_at(1), Tok::Ident(_))
                || !matches!(self.peek_at(2), Tok::Eq)
            {
                break;
            }
            self.next();
        }
        Ok(params)
    }

    fn label_filter(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.label_filter_and()?;
        while self.is_ident("or") {
            self.next();
            let rhs = self.label_filter_and()?;
            lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_and(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.label_filter_atom()?;
        loop {
            let and = self.is_ident("and");
            let comma = matches!(self.peek(), Tok::Comma);
            // `a="x" b="y"` (space-separated) also means and.
            let implicit = matches!(self.peek(), Tok::Ident(w) if w != "or" && w != "and" && !PARSERS.contains(&w.as_str()))
                && is_label_comparison(self.peek_at(1));
            if !(and || comma || implicit) {
                return Ok(lhs);
            }
            if and || comma {
                self.next();
            }
            let rhs = self.label_filter_atom()?;
            lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
        }
    }

    fn label_filter_atom(&mut self) -> Result<LabelFilter, ParseError> {
        if matches!(self.peek(), Tok::LParen) {
            self.next();
            let f = self.label_filter()?;
            self.expect(Tok::RParen)?;
            return Ok(f);
        }
        let name = self.ident("a label filter, parser or line filter")?;
        let op_at = self.offset();
        let op = self.next();
        let negative = if matches!(self.peek(), Tok::Minus) {
            self.next();
            true
        } else {
            false
        };
        let sign = if negative { -1.0 } else { 1.0 };
        let value = self.next();
        let cmp = match op {
            Tok::Eq | Tok::EqEq => CmpOp::Eq,
            Tok::BangEq => CmpOp::Ne,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::EqTilde | Tok::BangTilde => CmpOp::Eq,
            _ => {
                return Err(error_at(
                    self.src,
                    op_at,
                    "expecting a comparison (=, !=, =~, !~, ==, >, >=, <, <=)",
                ))
            }
        };
        match (&op, value) {
            (Tok::Eq | Tok::BangEq | Tok::EqTilde | Tok::BangTilde, Tok::Str(v)) if !negative => {
                let mop = match op {
                    Tok::Eq => MatchOp::Equal,
                    Tok::BangEq => MatchOp::NotEqual,
                    Tok::EqTilde => MatchOp::RegexMatch,
                    _ => MatchOp::RegexNoMatch,
                };
                Matcher::new(mop, name, v)
                    .map(LabelFilter::Matcher)
                    .map_err(|e| error_at(self.src, op_at, &e.to_string()))
            }
            (Tok::EqTilde | Tok::BangTilde, _) => Err(error_at(
                self.src,
                op_at,
                "=~ and !~ need a quoted regular expression",
            )),
            (_, Tok::Num(n)) => Ok(LabelFilter::Compare {
                name,
                op: cmp,
                kind: NumKind::Number,
                value: sign * n,
            }),
            (_, Tok::Dur(d)) => Ok(LabelFilter::Compare {
                name,
                op: cmp,
                kind: NumKind::Duration,
                value: sign * d as f64 / 1e9,
            }),
            (_, Tok::Bytes(b)) => Ok(LabelFilter::Compare {
                name,
                op: cmp,
                kind: NumKind::Bytes,
                value: sign * b,
            }),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("a quoted string, number, duration or byte size"))
            }
        }
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = if self.is_ident("by") {
            false
        } else if self.is_ident("without") {
            true
        } else {
            return Ok(None);
        };
        self.next();
        Ok(Some(Grouping {
            without,
            labels: self.label_list()?,
        }))
    }

    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(Tok::LParen)?;
        let mut labels = Vec::new();
        while !matches!(self.peek(), Tok::RParen) {
            labels.push(self.ident("a label name")?);
            if matches!(self.peek(), Tok::Comma) {
                self.next();
            } else if !matches!(self.peek(), Tok::RParen) {
                return Err(self.unexpected("',' or ')'"));
            }
        }
        self.next();
        Ok(labels)
    }

    fn number(&mut self) -> Result<f64, ParseError> {
        let neg = matches!(self.peek(), Tok::Minus);
        if neg {
            self.next();
        }
        match self.next() {
            Tok::Num(n) => Ok(if neg { -n } else { n }),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("a number"))
            }
        }
    }

    fn binop(&self) -> Option<(BinOp, u8)> {
        Some(match self.peek() {
            Tok::Ident(w) if w == "or" => (BinOp::Or, 1),
            Tok::Ident(w) if w == "and" => (BinOp::And, 2),
            Tok::Ident(w) if w == "unless" => (BinOp::Unless, 2),
            Tok::EqEq => (BinOp::Eq, 3),
            Tok::BangEq => (BinOp::Ne, 3),
            Tok::Gt => (BinOp::Gt, 3),
            Tok::Ge => (BinOp::Ge, 3),
            Tok::Lt => (BinOp::Lt, 3),
            Tok::Le => (BinOp::Le, 3),
            Tok::Plus => (BinOp::Add, 4),
            Tok::Minus => (BinOp::Sub, 4),
            Tok::Star => (BinOp::Mul, 5),
            Tok::Slash => (BinOp::Div, 5),
            Tok::Percent => (BinOp::Mod, 5),
            Tok::Caret => (BinOp::Pow, 6),
            _ => return None,
        })
    }

    /// Precedence climbing over binary operators; `^` is right-associative.
    fn metric(&mut self, min_prec: u8) -> Result<MetricExpr, ParseError> {
        let mut lhs = self.metric_unary()?;
        while let Some((op, prec)) = self.binop() {
            if prec < min_prec.max(1) {
                break;
            }
            self.next();
            let return_bool = if self.is_ident("bool") {
                self.next();
                true
            } else {
                false
            };
            if return_bool && !op.is_comparison() {
                return Err(self.err("bool modifier can only be used on comparison operators"));
            }
            let matching = if self.is_ident("on") || self.is_ident("ignoring") {
                let on = self.is_ident("on");
                self.next();
                let labels = self.label_list()?;
                if self.is_ident("group_left") || self.is_ident("group_right") {
                    return Err(self.err("group_left and group_right are not supported"));
                }
                Some(VectorMatching { on, labels })
            } else {
                None
            };
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.metric(next_min)?;
            lhs = MetricExpr::Binary {
                op,
                return_bool,
                matching,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
        Ok(lhs)
    }

    fn metric_unary(&mut self) -> Result<MetricExpr, ParseError> {
        match self.peek().clone() {
            Tok::Minus => {
                self.next();
                let e = self.metric_unary()?;
                Ok(MetricExpr::Binary {
                    op: BinOp::Mul,
                    return_bool: false,
                    matching: None,
                    lhs: Box::new(MetricExpr::Scalar(-1.0)),
                    rhs: Box::new(e),
                })
            }
            Tok::Num(n) => {
                self.next();
                Ok(MetricExpr::Scalar(n))
            }
            Tok::LParen => {
                self.next();
                let e = self.metric(0)?;
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            Tok::LBrace => Err(self.err("a log query cannot be used here: wrap it in a range aggregation such as count_over_time(...[5m])")),
            Tok::Ident(name) => {
                if let Some(func) = RangeFunc::from_name(&name) {
                    self.next();
                    return self.range_agg(func);
                }
                if let Some(op) = VecOp::from_name(&name) {
                    self.next();
                    return self.vector_agg(op);
                }
                if name == "vector" {
                    self.next();
                    self.expect(Tok::LParen)?;
                    let v = self.number()?;
                    self.expect(Tok::RParen)?;
                    return Ok(MetricExpr::VectorLit(v));
                }
                Err(self.err(&format!("unknown function or aggregation {name:?}")))
            }
            _ => Err(self.unexpected("a metric query")),
        }
    }

    fn range_agg(&mut self, func: RangeFunc) -> Result<MetricExpr, ParseError> {
        self.expect(Tok::LParen)?;
        let param = if func == RangeFunc::QuantileOverTime {
            let q = self.number()?;
            self.expect(Tok::Comma)?;
            Some(q)
        } else {
            None
        };
        let matchers = self.selector()?;
        let mut stages = Vec::new();
        let mut unwrap = Some((None, Vec::new()));
        self.stages(&mut stages, &mut unwrap)?;
        let at = self.offset();
        let range_ns = if matches!(self.peek(), Tok::LBracket) {
            self.next();
            let d = match self.next() {
                Tok::Dur(d) => d,
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected("a duration such as 5m"));
                }
            };
            self.expect(Tok::RBracket)?;
            d
        } else {
            return Err(self.unexpected("a range such as [5m]"));
        };
        if range_ns <= 0 {
            return Err(error_at(self.src, at, "the range must be positive"));
        }
        let offset_ns = if self.is_ident("offset") {
            self.next();
            match self.next() {
                Tok::Dur(d) => d,
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected("a duration"));
                }
            }
        } else {
            0
        };
        self.stages(&mut stages, &mut unwrap)?;
        self.expect(Tok::RParen)?;
        let grouping = self.grouping()?;
        let (unwrap, post_unwrap) = unwrap.unwrap_or((None, Vec::new()));
        if func.needs_unwrap() && unwrap.is_none() {
            return Err(error_at(
                self.src,
                at,
                &format!(
                    "{} needs an unwrapped label: add | unwrap <label>",
                    func_name(func)
                ),
            ));
        }
        if !func.needs_unwrap() && !matches!(func, RangeFunc::Rate) && unwrap.is_some() {
            return Err(error_at(
                self.src,
                at,
                &format!("{} does not take an unwrapped label", func_name(func)),
            ));
        }
        if grouping.is_some() && unwrap.is_none() {
            return Err(error_at(
                self.src,
                at,
                "grouping is only allowed on range aggregations of unwrapped labels",
            ));
        }
        Ok(MetricExpr::Range(Box::new(RangeExpr {
            func,
            param,
            log: LogExpr { matchers, stages },
            unwrap,
            post_unwrap,
            range_ns,
            offset_ns,
            grouping,
        })))
    }

    fn vector_agg(&mut self, op: VecOp) -> Result<MetricExpr, ParseError> {
        let mut grouping = self.grouping()?;
        self.expect(Tok::LParen)?;
        let param = if matches!(op, VecOp::Topk | VecOp::Bottomk) {
            let k = self.number()?;
            self.expect(Tok::Comma)?;
            Some(k)
        } else {
            None
        };
        let inner = self.metric(0)?;
        self.expect(Tok::RParen)?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        Ok(MetricExpr::Vector {
            op,
            param,
            grouping,
            inner: Box::new(inner),
        })
    }
}

pub fn func_name(f: RangeFunc) -> &'static str {
    use RangeFunc::*;
    match f {
        CountOverTime => "count_over_time",
        Rate => "rate",
        BytesOverTime => "bytes_over_time",
        BytesRate => "bytes_rate",
        AbsentOverTime => "absent_over_time",
        SumOverTime => "sum_over_time",
        AvgOverTime => "avg_over_time",
        MinOverTime => "min_over_time",
        MaxOverTime => "max_over_time",
        StddevOverTime => "stddev_over_time",
        StdvarOverTime => "stdvar_over_time",
        QuantileOverTime => "quantile_over_time",
        FirstOverTime => "first_over_time",
        LastOverTime => "last_over_time",
        RateCounter => "rate_counter",
    }
}

fn parse_json_path(path: &str) -> Result<Vec<JsonPathPart>, String> {
    let mut out = Vec::new();
    let mut rest = path.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("JSON path {path:?}: unclosed ["))?;
            let inner = r[..end].trim();
            if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                out.push(JsonPathPart::Key(q.to_string()));
            } else {
                let n = inner
                    .parse()
                    .map_err(|_| format!("JSON path {path:?}: [{inner}] is not an index"))?;
                out.push(JsonPathPart::Index(n));
            }
            rest = &r[end + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(format!("JSON path {path:?}: empty key"));
            }
            out.push(JsonPathPart::Key(r[..end].to_string()));
            rest = &r[end..];
        }
    }
    if out.is_empty() {
        return Err("empty JSON path".into());
    }
    Ok(out)
}

fn parse_pattern(p: &str) -> Result<Vec<PatternPart>, String> {
    let mut parts = Vec::new();
    let mut rest = p;
    let mut literal = String::new();
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>');
        let name = close.map(|c| &after[..c]);
        match name {
            Some(n) if n == "_" || (!n.is_empty() && tsdb::labels::is_valid_label_name(n)) => {
                literal.push_str(&rest[..open]);
                if !literal.is_empty() {
                    parts.push(PatternPart::Literal(std::mem::take(&mut literal)));
                }
                if matches!(parts.last(), Some(PatternPart::Capture(_))) {
                    return Err(format!(
                        "pattern {p:?}: two captures must be separated by literal text"
                    ));
                }
                parts.push(PatternPart::Capture((n != "_").then(|| n.to_string())));
                rest = &after[n.len() + 1..];
            }
            _ => {
                literal.push_str(&rest[..open + 1]);
                rest = after;
            }
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(PatternPart::Literal(literal));
    }
    if !parts
        .iter()
        .any(|x| matches!(x, PatternPart::Capture(Some(_))))
    {
        return Err(format!("pattern {p:?} has no named capture (<name>)"));
    }
    Ok(parts)
}

/// The subset of Go templates Loki users write in `line_format` and
/// `label_format`: text, `{{.label}}` and pipes into upper / lower / trim /
/// title (also as `{{ ToUpper .label }}`).
fn parse_template(t: &str) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TemplatePart::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("template {t:?}: unclosed {{{{"))?;
        let action = after[..close]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let mut name = None;
        let mut funcs = Vec::new();
        for (i, seg) in action.split('|').enumerate() {
            let words: Vec<&str> = seg.split_whitespace().collect();
            for w in words {
                if let Some(label) = w.strip_prefix('.') {
                    if name.is_some() {
                        return Err(format!("template {t:?}: one label per action ({action:?})"));
                    }
                    name = Some(label.to_string());
                } else {
                    let f = match w {
                        "ToUpper" | "upper" => TemplateFunc::Upper,
                        "ToLower" | "lower" => TemplateFunc::Lower,
                        "trim" => TemplateFunc::Trim,
                        "TrimSpace" | "trimSpace" => TemplateFunc::TrimSpace,
                        "title" | "Title" => TemplateFunc::Title,
                        "__line__" | "__timestamp__" if name.is_none() => {
                            name = Some(w.to_string());
                            continue;
                        }
                        other => {
                            return Err(format!(
                                "template {t:?}: unsupported function or value {other:?}"
                            ))
                        }
                    };
                    let _ = i;
                    funcs.push(f);
                }
            }
        }
        let name = name.ok_or_else(|| {
            format!("template {t:?}: action {action:?} names no label (write {{{{.label}}}})")
        })?;
        parts.push(TemplatePart::Value { name, funcs });
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_string()));
    }
    Ok(Template { parts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &str) -> Expr {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    #[test]
    fn log_queries_with_every_stage_parse() {
        let Expr::Log(l) = ok(
            r#"{app="api", ns=~"prod|dev"} |= "error" != `debug` |~ "time(out)?" or "fail" !~ "x+"
            | json | logfmt --strict | regexp "(?P<code>\\d+)" | pattern "<ip> - <_> <status>"
            | status >= 400 and duration > 1.5s or size < 10KB, method="GET" | line_format "{{.ip}} {{ .method | ToUpper }}"
            | label_format dst=src, x="{{.status}}!" | drop a, b="1" | keep ip, status | decolorize"#,
        ) else {
            panic!("not a log query")
        };
        assert_eq!(l.matchers.len(), 2);
        assert_eq!(l.stages.len(), 14, "{:#?}", l.stages);
        let Stage::LineFilter(f) = &l.stages[2] else {
            panic!()
        };
        assert_eq!(f.values, ["time(out)?", "fail"]);
    }

    #[test]
    fn metric_queries_parse_with_precedence() {
        let Expr::Metric(MetricExpr::Binary { op, lhs, .. }) = ok(
            r#"sum by (app) (rate({app="a"} |= "x" [5m])) / sum(count_over_time({app="a"}[5m])) * 100 or vector(0)"#,
        ) else {
            panic!()
        };
        assert_eq!(op, BinOp::Or);
        assert!(matches!(*lhs, MetricExpr::Binary { op: BinOp::Mul, .. }));
        let Expr::Metric(MetricExpr::Range(r)) = ok(
            r#"quantile_over_time(0.99, {app="a"} | logfmt | unwrap duration(latency) | __error__="" [1m] offset 5m) by (path)"#,
        ) else {
            panic!()
        };
        assert_eq!(r.param, Some(0.99));
        assert_eq!(
            r.unwrap.as_ref().map(|u| u.conv),
            Some(UnwrapConv::Duration)
        );
        assert_eq!(r.post_unwrap.len(), 1);
        assert_eq!((r.range_ns, r.offset_ns), (60_000_000_000, 300_000_000_000));
        assert_eq!(
            r.grouping.as_ref().map(|g| g.labels.clone()),
            Some(vec!["path".to_string()])
        );
        ok(r#"topk(3, sum(bytes_rate({app="a"}[1h])) by (pod))"#);
        ok(r#"count_over_time({app="a"}[5m] |= "x")"#);
        ok(r#"sum(count_over_time({app="a"}[5m])) > bool 10"#);
    }

    #[test]
    fn errors_name_line_and_column() {
        let cases = [
            (r#"{app="a"} |= error"#, "line 1, col 14: syntax error: unexpected \"error\", expecting a quoted line filter"),
            (r#"{app=~".*"}"#, "at least one regexp or equality matcher"),
            (r#"{}"#, "at least one matcher"),
            (r#"rate({app="a"})"#, "expecting a range such as [5m]"),
            (r#"sum_over_time({app="a"}[5m])"#, "needs an unwrapped label"),
            ("{app=\"a\"}\n | json | unwrap x", "line 2, col 9: syntax error: unwrap is only allowed inside a range aggregation"),
            (r#"{app="a"} |~ "(""#, "invalid regex"),
            (r#"{app="a"} | regexp "\\d+""#, "named capture"),
            (r#"{app="a"} | line_format "{{.x""#, "unclosed"),
            (r#"foo({app="a"}[5m])"#, "unknown function"),
            (r#"{app="a"} | status > "x""#, "expecting a quoted string, number"),
            (r#"{app="a""#, "expecting ',' or '}'"),
        ];
        for (q, want) in cases {
            let e = parse(q)
                .err()
                .unwrap_or_else(|| panic!("{q} parsed"))
                .to_string();
            assert!(e.contains(want), "{q}: {e}");
            assert!(e.starts_with("parse error at line "), "{q}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_before_it_recurses() {
        let parens = format!("{}vector(1){}", "(".repeat(5000), ")".repeat(5000));
        let chain = vec!["vector(1)"; 2000].join(" + ");
        let negs = format!("{}vector(1)", "-".repeat(20_000));
        let filters = format!(
            "{{a=\"b\"}} | {}x=\"1\"{}",
            "(".repeat(5000),
            ")".repeat(5000)
        );
        for q in [parens, chain, negs, filters] {
            let e = parse(&q).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                e.contains("query too deeply nested: more than 1000 levels"),
                "{e}"
            );
        }
        let fine = format!("{}vector(1){}", "(".repeat(200), ")".repeat(200));
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn go_durations_are_integer_nanoseconds() {
        assert_eq!(go_duration_ns("62.6ms"), Some(62_600_000));
        assert_eq!(go_duration_ns("1h0.5m"), Some(3_630_000_000_000));
        assert_eq!(go_duration_ns("-1.5s"), Some(-1_500_000_000));
        assert_eq!(go_duration_ns("0"), Some(0));
        assert_eq!(go_duration_ns("1.000000001s"), Some(1_000_000_001));
        assert_eq!(go_duration_ns("1d"), None);
        assert_eq!(go_duration_ns("."), None);
        assert_eq!(go_duration_ns("3000000h"), None);
        // 0.1s + 0.2s is exactly 0.3 s here, where float seconds are not.
        assert_eq!(
            go_duration_seconds(go_duration_ns("0.1s").unwrap() + go_duration_ns("0.2s").unwrap()),
            0.3
        );
        assert_eq!(
            go_duration_seconds(go_duration_ns("62.6ms").unwrap()),
            0.0626
        );
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_duration("10x"), None);
        assert_eq!(parse_bytes("10KB"), Some(10_000.0));
        assert_eq!(parse_bytes("1KiB"), Some(1024.0));
        assert_eq!(parse_bytes("5"), Some(5.0));
    }
}
