//! Lexing and parsing templates into nodes.

use super::funcs;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Action(Pipeline),
    If {
        pipe: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    /// `{{template "name" pipeline}}` (also what `{{block}}` leaves).
    Template {
        name: String,
        pipe: Option<Pipeline>,
    },
}

/// Templates named by `{{define}}` or `{{block}}`.
pub type Defs = BTreeMap<String, Vec<Node>>;

/// What a parse yields: the main template and the named ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    pub nodes: Vec<Node>,
    pub defs: Defs,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// `$x :=` (or `$i, $e :=` in a range); `assign` for `$x =`.
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Vec<Term>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// A function name.
    Func(String),
    /// `$name` then fields.
    Var(String, Vec<String>),
    /// `.a.b` (empty: `.` itself).
    Field(Vec<String>),
    Str(String),
    Int(i64),
    Num(f64),
    Bool(bool),
    Nil,
    Sub(Box<Pipeline>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Var(String, Vec<String>),
    Field(Vec<String>),
    Str(String),
    Int(i64),
    Num(f64),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

type PErr = (usize, String);

/// One `{{ }}` action's tokens, with the line it starts on.
struct Action {
    line: usize,
    toks: Vec<Tok>,
}

enum Piece {
    Text(String),
    Action(Action),
}

fn lex_action(src: &str, line: usize, d: Delims) -> Result<(Vec<Tok>, usize), PErr> {
    // Returns the tokens and the byte length consumed up to (not including)
    // the right delimiter.
    let b = src.as_bytes();
    let mut i = 0;
    let mut toks = Vec::new();
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let fields = |i: &mut usize| -> Vec<String> {
        let mut out = Vec::new();
        while *i < b.len() && b[*i] == b'.' && *i + 1 < b.len() && ident_char(b[*i + 1]) {
            let s = *i + 1;
            *i += 1;
            while *i < b.len() && ident_char(b[*i]) {
                *i += 1;
            }
            out.push(src[s..*i].to_string());
        }
        out
    };
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b'\n' || b[i] == b'\r') {
            i += 1;
        }
        if i >= b.len() {
            return Err((line, "unclosed action".into()));
        }
        if src[i..].starts_with(d.right) {
            return Ok((toks, i));
        }
        if src[i..].starts_with('-')
            && src[i + 1..].starts_with(d.right)
            && i > 0
            && b[i - 1].is_ascii_whitespace()
        {
            return Ok((toks, i));
        }
        let c = b[i];
        match c {
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            b'(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            b')' => {
                toks.push(Tok::Close);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            b'"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = b.get(i) else {
                        return Err((line, "unterminated quoted string".into()));
                    };
                    match c {
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\n' => return Err((line, "unterminated quoted string".into())),
                        b'\\' => {
                            let e = b.get(i + 1).copied();
                            s.push(match e {
                                Some(b'n') => '\n',
                                Some(b't') => '\t',
                                Some(b'\\') => '\\',
                                Some(b'"') => '"',
                                Some(b'r') => '\r',
                                _ => return Err((line, "invalid syntax".into())),
                            });
                            i += 2;
                        }
                        _ => {
                            let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
                            s.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                toks.push(Tok::Str(s));
            }
            b'`' => {
                let Some(end) = src[i + 1..].find('`') else {
                    return Err((line, "unterminated raw quoted string".into()));
                };
                toks.push(Tok::Str(src[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            b'$' => {
                let s = i;
                i += 1;
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                let name = src[s..i].to_string();
                let f = fields(&mut i);
                toks.push(Tok::Var(name, f));
            }
            b'.' => {
                if b.get(i + 1)
                    .is_some_and(|&c| ident_char(c) && !c.is_ascii_digit())
                {
                    toks.push(Tok::Field(fields(&mut i)));
                } else {
                    toks.push(Tok::Field(Vec::new()));
                    i += 1;
                }
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let s = i;
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'.'
                        || b[i] == b'_'
                        || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                let text = &src[s..i];
                if let Ok(n) = text.parse::<i64>() {
                    toks.push(Tok::Int(n));
                } else if let Some(n) = text
                    .strip_prefix("0x")
                    .and_then(|h| i64::from_str_radix(h, 16).ok())
                {
                    toks.push(Tok::Int(n));
                } else if let Ok(n) = text.parse::<f64>() {
                    toks.push(Tok::Num(n));
                } else {
                    return Err((line, format!("bad number syntax: {text:?}")));
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let s = i;
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                toks.push(Tok::Ident(src[s..i].to_string()));
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err((line, format!("unexpected {ch:?} in command")));
            }
        }
    }
}

/// An action's delimiters: Go's `{{ }}` by default, `Template.Delims`
/// otherwise (prometheus-adapter's `<< >>`).
#[derive(Debug, Clone, Copy)]
pub struct Delims {
    pub left: &'static str,
    pub right: &'static str,
}

impl Delims {
    pub const GO: Delims = Delims {
        left: "{{",
        right: "}}",
    };

    /// `-` then the right delimiter: the action trims the text after it.
    fn closes_trimming(&self, tail: &str) -> bool {
        tail.strip_prefix('-')
            .is_some_and(|t| t.starts_with(self.right))
    }
}

fn lex(src: &str, d: Delims) -> Result<Vec<Piece>, PErr> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find(d.left) else {
            let text = if trim_next { rest.trim_start() } else { rest };
            out.push(Piece::Text(text.to_string()));
            break;
        };
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut after = &rest[open + d.left.len()..];
        let trim_before =
            after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_before {
            text = text.trim_end();
            after = &after[1..];
        }
        if !text.is_empty() {
            out.push(Piece::Text(text.to_string()));
        }
        line += rest[..open].matches('\n').count();
        let trimmed = after.trim_start();
        if trimmed.starts_with("/*") {
            let Some(end) = trimmed.find("*/") else {
                return Err((line, "unclosed comment".into()));
            };
            let tail = trimmed[end + 2..].trim_start();
            let (trim_after, close_len) = if d.closes_trimming(tail) {
                (true, d.right.len() + 1)
            } else if tail.starts_with(d.right) {
                (false, d.right.len())
            } else {
                return Err((line, "comment ends before closing delimiter".into()));
            };
            let consumed = after.len() - tail.len() + close_len;
            line += after[..consumed].matches('\n').count();
            rest = &after[consumed..];
            trim_next = trim_after;
            continue;
        }
        let (toks, len) = lex_action(after, line, d)?;
        let tail = &after[len..];
        let (trim_after, close_len) = if d.closes_trimming(tail) {
            (true, d.right.len() + 1)
        } else {
            (false, d.right.len())
        };
        line += after[..len].matches('\n').count();
        out.push(Piece::Action(Action { line, toks }));
        rest = &after[len + close_len..];
        trim_next = trim_after;
    }
    Ok(out)
}

struct Parser {
    pieces: std::vec::IntoIter<Piece>,
    line: usize,
    /// Variables in scope, innermost last; using another is a parse error,
    /// as in Go.
    vars: Vec<String>,
    defs: Defs,
    /// Controls open around the current list (`define` only at 0).
    depth: usize,
}

/// The variables Prometheus declares before an alert's template.
const ALERT_VARS: [&str; 5] = ["$", "$labels", "$externalLabels", "$externalURL", "$value"];

/// How a list of nodes ended.
enum ListEnd {
    Eof,
    EndAction,
    Else(Vec<Tok>),
}

fn keyword(toks: &[Tok]) -> Option<&str> {
    match toks.first() {
        Some(Tok::Ident(k))
            if [
                "if", "else", "end", "range", "with", "define", "template", "block", "break",
                "continue",
            ]
            .contains(&k.as_str()) =>
        {
            Some(k.as_str())
        }
        _ => None,
    }
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, ListEnd), PErr> {
        let mut nodes = Vec::new();
        while let Some(p) = self.pieces.next() {
            let a = match p {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Piece::Action(a) => a,
            };
            self.line = a.line;
            let toks = a.toks;
            match keyword(&toks) {
                Some("end") => {
                    if toks.len() > 1 {
                        return Err((self.line, "unexpected tokens after {{end}}".into()));
                    }
                    return Ok((nodes, ListEnd::EndAction));
                }
                Some("else") => return Ok((nodes, ListEnd::Else(toks[1..].to_vec()))),
                Some(k @ ("if" | "range" | "with")) => {
                    let k = k.to_string();
                    // A control's variables end with its {{end}}.
                    let mark = self.vars.len();
                    let pipe = self.pipeline(&toks[1..], &k)?;
                    self.depth += 1;
                    let node = self.control(&k, pipe);
                    self.depth -= 1;
                    nodes.push(node?);
                    self.vars.truncate(mark);
                }
                Some("define") => {
                    if self.depth > 0 {
                        return Err((self.line, "unexpected <define> in control".into()));
                    }
                    let name = self.template_name(&toks, "define")?;
                    if toks.len() > 2 {
                        return Err((self.line, "unexpected tokens in define clause".into()));
                    }
                    let body = self.named_body("define")?;
                    self.define(name, body)?;
                }
                Some(k @ ("template" | "block")) => {
                    let k = k.to_string();
                    let name = self.template_name(&toks, &k)?;
                    let context = format!("{k} clause");
                    let pipe = match (&toks[2..], k.as_str()) {
                        ([], "template") => None,
                        (rest, _) => Some(self.pipeline(rest, &context)?),
                    };
                    if k == "block" {
                        let body = self.named_body("block")?;
                        self.define(name.clone(), body)?;
                    }
                    nodes.push(Node::Template { name, pipe });
                }
                Some(k) => {
                    return Err((self.line, format!("{{{{{k}}}}} is not supported")));
                }
                None => {
                    if toks.is_empty() {
                        return Err((self.line, "missing value for command".into()));
                    }
                    nodes.push(Node::Action(self.pipeline(&toks, "command")?));
                }
            }
        }
        Ok((nodes, ListEnd::Eof))
    }

    /// The quoted name after `define`, `template` or `block`.
    fn template_name(&self, toks: &[Tok], kind: &str) -> Result<String, PErr> {
        match toks.get(1) {
            Some(Tok::Str(n)) => Ok(n.clone()),
            _ => Err((
                self.line,
                format!("unexpected token in {kind} clause: want a quoted template name"),
            )),
        }
    }

    /// The body of a `define` or `block` up to its {{end}}; it sees only `$`.
    fn named_body(&mut self, kind: &str) -> Result<Vec<Node>, PErr> {
        let outer = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        self.depth += 1;
        let r = self.list();
        self.depth -= 1;
        self.vars = outer;
        match r? {
            (body, ListEnd::EndAction) => Ok(body),
            (_, ListEnd::Eof) => Err((self.line, format!("unexpected EOF in {kind}"))),
            (_, ListEnd::Else(_)) => Err((self.line, format!("unexpected {{{{else}}}} in {kind}"))),
        }
    }

    /// Go's rule: a name may be defined again only if one of the two
    /// definitions is empty.
    fn define(&mut self, name: String, body: Vec<Node>) -> Result<(), PErr> {
        let blank = |b: &[Node]| {
            b.iter()
                .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
        };
        match self.defs.get(&name) {
            Some(old) if !blank(old) && !blank(&body) => Err((
                self.line,
                format!("template: multiple definition of template {name:?}"),
            )),
            Some(old) if blank(&body) && !blank(old) => Ok(()),
            _ => {
                self.defs.insert(name, body);
                Ok(())
            }
        }
    }

    fn control(&mut self, kind: &str, pipe: Pipeline) -> Result<Node, PErr> {
        let (body, end) = self.list()?;
        let otherwise = match end {
            ListEnd::Eof => return Err((self.line, "unexpected EOF".into())),
            ListEnd::EndAction => Vec::new(),
            ListEnd::Else(rest) if rest.is_empty() => {
                let (o, end) = self.list()?;
                match end {
                    ListEnd::EndAction => o,
                    ListEnd::Eof => return Err((self.line, "unexpected EOF".into())),
                    ListEnd::Else(_) => {
                        return Err((self.line, "expected end; found {{else}}".into()))
                    }
                }
            }
            ListEnd::Else(rest) => {
                // `{{else if ...}}` / `{{else with ...}}`: a nested control
                // that shares this one's {{end}}.
                match keyword(&rest) {
                    Some(k @ ("if" | "with")) if k == kind || k == "if" => {
                        let k = k.to_string();
                        let p = self.pipeline(&rest[1..], &k)?;
                        vec![self.control(&k, p)?]
                    }
                    _ => return Err((self.line, "unexpected tokens after {{else}}".into())),
                }
            }
        };
        Ok(match kind {
            "if" => Node::If {
                pipe,
                then: body,
                otherwise,
            },
            "range" => Node::Range {
                pipe,
                body,
                otherwise,
            },
            _ => Node::With {
                pipe,
                body,
                otherwise,
            },
        })
    }

    fn pipeline(&mut self, toks: &[Tok], context: &str) -> Result<Pipeline, PErr> {
        let mut toks = toks;
        let mut decl = Vec::new();
        let mut assign = false;
        // `$x :=`, `$i, $e :=`, `$x =`.
        let decl_end = toks
            .iter()
            .position(|t| matches!(t, Tok::Declare | Tok::Assign));
        if let Some(end) = decl_end {
            let names: Vec<Option<String>> = toks[..end]
                .iter()
                .filter(|t| !matches!(t, Tok::Comma))
                .map(|t| match t {
                    Tok::Var(n, f) if f.is_empty() => Some(n.clone()),
                    _ => None,
                })
                .collect();
            if !names.is_empty() && names.iter().all(Option::is_some) {
                decl = names.into_iter().flatten().collect();
                assign = matches!(toks[end], Tok::Assign);
                toks = &toks[end + 1..];
                if assign {
                    if let Some(n) = decl.iter().find(|n| !self.vars.contains(n)) {
                        return Err((self.line, format!("undefined variable {n:?}")));
                    }
                } else {
                    self.vars.extend(decl.iter().cloned());
                }
            }
        }
        let mut cmds = Vec::new();
        let mut cur = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            match &toks[i] {
                Tok::Pipe => {
                    if cur.is_empty() {
                        return Err((self.line, "missing command".into()));
                    }
                    cmds.push(std::mem::take(&mut cur));
                }
                Tok::Open => {
                    let mut depth = 1;
                    let mut j = i + 1;
                    while j < toks.len() && depth > 0 {
                        match toks[j] {
                            Tok::Open => depth += 1,
                            Tok::Close => depth -= 1,
                            _ => {}
                        }
                        j += 1;
                    }
                    if depth != 0 {
                        return Err((self.line, "unclosed left paren".into()));
                    }
                    let inner = self.pipeline(&toks[i + 1..j - 1], "parenthesized pipeline")?;
                    cur.push(Term::Sub(Box::new(inner)));
                    i = j;
                    continue;
                }
                Tok::Close => return Err((self.line, "unexpected right paren".into())),
                Tok::Comma | Tok::Declare | Tok::Assign => {
                    return Err((self.line, format!("unexpected {:?} in {context}", toks[i])))
                }
                Tok::Ident(n) => cur.push(match n.as_str() {
                    "true" => Term::Bool(true),
                    "false" => Term::Bool(false),
                    "nil" => Term::Nil,
                    f if funcs::exists(f) => Term::Func(f.to_string()),
                    f => return Err((self.line, format!("function {f:?} not defined"))),
                }),
                Tok::Var(n, f) => {
                    if !self.vars.contains(n) {
                        return Err((self.line, format!("undefined variable {n:?}")));
                    }
                    cur.push(Term::Var(n.clone(), f.clone()))
                }
                Tok::Field(f) => cur.push(Term::Field(f.clone())),
                Tok::Str(s) => cur.push(Term::Str(s.clone())),
                Tok::Int(n) => cur.push(Term::Int(*n)),
                Tok::Num(n) => cur.push(Term::Num(*n)),
            }
            i += 1;
        }
        if cur.is_empty() {
            return Err((self.line, format!("missing value for {context}")));
        }
        cmds.push(cur);
        Ok(Pipeline { decl, assign, cmds })
    }
}

/// Parses an alert's label or annotation template (Prometheus's alert
/// variables in scope).
pub fn parse(src: &str) -> Result<Parsed, PErr> {
    parse_with(src, Delims::GO, &ALERT_VARS)
}

/// Parses with other delimiters and other variables in scope.
pub fn parse_with(src: &str, d: Delims, vars: &[&str]) -> Result<Parsed, PErr> {
    let pieces = lex(src, d)?;
    let mut p = Parser {
        pieces: pieces.into_iter(),
        line: 1,
        vars: vars.iter().map(|v| v.to_string()).collect(),
        defs: Defs::new(),
        depth: 0,
    };
    let (nodes, end) = p.list()?;
    match end {
        ListEnd::Eof => Ok(Parsed {
            nodes,
            defs: p.defs,
        }),
        ListEnd::EndAction => Err((p.line, "unexpected {{end}}".into())),
        ListEnd::Else(_) => Err((p.line, "unexpected {{else}}".into())),
    }
}
