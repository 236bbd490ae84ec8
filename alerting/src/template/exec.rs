//! Rendering parsed templates.

use super::format::go_float;
use super::funcs;
use super::parse::{Defs, Node, Parsed, Pipeline, Term};
use std::collections::BTreeMap;

/// A value a template handles.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    Map(BTreeMap<String, Value>),
    List(Vec<Value>),
}

impl Value {
    /// Go's truth: false, 0, nil and empty strings, maps and lists are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Num(n) => *n != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
        }
    }

    /// As `{{ . }}` prints it (Go's `%v`).
    pub fn print(&self) -> String {
        match self {
            Value::Nil => "<no value>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(n) => n.to_string(),
            Value::Num(n) => go_float(*n, 'g', None),
            Value::Str(s) => s.clone(),
            Value::Map(m) => {
                let inner: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.print()))
                    .collect();
                format!("map[{}]", inner.join(" "))
            }
            Value::List(l) => {
                let inner: Vec<String> = l.iter().map(Value::print).collect();
                format!("[{}]", inner.join(" "))
            }
        }
    }

    pub fn as_f64(&self) -> Result<f64, String> {
        match self {
            Value::Int(n) => Ok(*n as f64),
            Value::Num(n) => Ok(*n),
            Value::Str(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
            Value::Bool(_) | Value::Nil | Value::Map(_) | Value::List(_) => {
                Err(format!("can't convert {} to float", self.print()))
            }
        }
    }
}

/// Runs a PromQL query for `query "..."`: samples as maps with `Labels`
/// and `Value`.
pub type QueryFn<'a> = dyn Fn(&str) -> Result<Vec<Value>, String> + 'a;

pub(super) struct Ctx<'q, 'a> {
    vars: Vec<(String, Value)>,
    pub query: Option<&'q QueryFn<'a>>,
    /// Bounds output and loops so a template cannot run away.
    budget: usize,
    defs: &'q Defs,
    /// `{{template}}` calls open, bounded so recursion cannot overflow.
    depth: usize,
}

const MAX_OUTPUT: usize = 1 << 20;
const MAX_TEMPLATE_DEPTH: usize = 100;

pub fn render(
    parsed: &Parsed,
    dot: Value,
    vars: Vec<(String, Value)>,
    query: Option<&QueryFn<'_>>,
) -> Result<String, String> {
    let mut ctx = Ctx {
        vars,
        query,
        budget: 1_000_000,
        defs: &parsed.defs,
        depth: 0,
    };
    ctx.vars.push(("$".into(), dot.clone()));
    let mut out = String::new();
    ctx.nodes(&parsed.nodes, &dot, &mut out)?;
    Ok(out)
}

fn field(v: &Value, name: &str) -> Result<Value, String> {
    match v {
        // Prometheus's label maps are map[string]string under
        // missingkey=zero: a missing label is "". The other maps templates
        // see stand for Go structs (`.`, a query's samples), never all strings.
        Value::Map(m) => Ok(m.get(name).cloned().unwrap_or_else(|| {
            if m.values().all(|v| matches!(v, Value::Str(_))) {
                Value::Str(String::new())
            } else {
                Value::Nil
            }
        })),
        Value::Nil => Ok(Value::Nil),
        _ => Err(format!(
            "can't evaluate field {name} in type {}",
            type_name(v)
        )),
    }
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Num(_) => "float64",
        Value::Str(_) => "string",
        Value::Map(_) => "map",
        Value::List(_) => "slice",
    }
}

impl Ctx<'_, '_> {
    fn tick(&mut self) -> Result<(), String> {
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or("template ran too long (more than a million steps)")?;
        Ok(())
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), String> {
        for n in nodes {
            self.tick()?;
            if out.len() > MAX_OUTPUT {
                return Err("template output is larger than 1 MiB".into());
            }
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        out.push_str(&v.print());
                    }
                }
                Node::Template { name, pipe } => {
                    let defs = self.defs;
                    let Some(body) = defs.get(name) else {
                        return Err(format!("template {name:?} not defined"));
                    };
                    let v = match pipe {
                        Some(p) => self.pipeline(p, dot)?,
                        None => Value::Nil,
                    };
                    if self.depth >= MAX_TEMPLATE_DEPTH {
                        return Err(format!(
                            "exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"
                        ));
                    }
                    // A named template sees only `$`, bound to its argument.
                    let outer = std::mem::replace(&mut self.vars, vec![("$".into(), v.clone())]);
                    self.depth += 1;
                    let r = self.nodes(body, &v, out);
                    self.depth -= 1;
                    self.vars = outer;
                    r?;
                }
                Node::If {
                    pipe,
                    then,
                    otherwise,
                } => {
                    let inner = self.vars.len();
                    let v = self.pipeline(pipe, dot)?;
                    if v.truthy() {
                        self.nodes(then, dot, out)?;
                    } else {
                        self.nodes(otherwise, dot, out)?;
                    }
                    self.vars.truncate(inner);
                }
                Node::With {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let inner = self.vars.len();
                    let v = self.pipeline(pipe, dot)?;
                    if v.truthy() {
                        self.nodes(body, &v, out)?;
                    } else {
                        self.nodes(otherwise, dot, out)?;
                    }
                    self.vars.truncate(inner);
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mut p = pipe.clone();
                    let names = std::mem::take(&mut p.decl);
                    let v = self.pipeline(&p, dot)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::List(l) => l
                            .into_iter()
                            .enumerate()
                            .map(|(i, e)| (Value::Int(i as i64), e))
                            .collect(),
                        Value::Map(m) => m.into_iter().map(|(k, e)| (Value::Str(k), e)).collect(),
                        Value::Int(n) if n > self.budget as i64 => {
                            return Err("template ran too long (more than a million steps)".into())
                        }
                        Value::Int(n) => (0..n.max(0))
                            .map(|i| (Value::Int(i), Value::Int(i)))
                            .collect(),
                        Value::Nil => Vec::new(),
                        other => return Err(format!("range can't iterate over {}", other.print())),
                    };
                    if items.is_empty() {
                        self.nodes(otherwise, dot, out)?;
                        continue;
                    }
                    for (k, e) in items {
                        let inner = self.vars.len();
                        match names.as_slice() {
                            [one] => self.vars.push((one.clone(), e.clone())),
                            [a, b] => {
                                self.vars.push((a.clone(), k));
                                self.vars.push((b.clone(), e.clone()));
                            }
                            _ => {}
                        }
                        self.nodes(body, &e, out)?;
                        self.vars.truncate(inner);
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn var(&self, name: &str) -> Result<Value, String> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable {name:?}"))
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, String> {
        let mut piped: Option<Value> = None;
        for cmd in &p.cmds {
            piped = Some(self.command(cmd, dot, piped.take())?);
        }
        let v = piped.unwrap_or(Value::Nil);
        if let Some(name) = p.decl.first() {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return Err(format!("undefined variable {name:?}")),
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn term(&mut self, t: &Term, dot: &Value) -> Result<Value, String> {
        Ok(match t {
            Term::Func(f) => funcs::call(self, f, Vec::new())?,
            Term::Var(name, fields) => {
                let mut v = self.var(name)?;
                for f in fields {
                    v = field(&v, f)?;
                }
                v
            }
            Term::Field(fields) => {
                let mut v = dot.clone();
                for f in fields {
                    v = field(&v, f)?;
                }
                v
            }
            Term::Str(s) => Value::Str(s.clone()),
            Term::Int(n) => Value::Int(*n),
            Term::Num(n) => Value::Num(*n),
            Term::Bool(b) => Value::Bool(*b),
            Term::Nil => Value::Nil,
            Term::Sub(p) => self.pipeline(p, dot)?,
        })
    }

    fn command(
        &mut self,
        cmd: &[Term],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, String> {
        match cmd.first() {
            Some(Term::Func(f)) => {
                let mut args = Vec::with_capacity(cmd.len());
                for t in &cmd[1..] {
                    args.push(self.term(t, dot)?);
                }
                args.extend(piped);
                funcs::call(self, f, args)
            }
            Some(t) => {
                if cmd.len() > 1 || piped.is_some() {
                    return Err(format!("can't give argument to non-function {t:?}"));
                }
                self.term(t, dot)
            }
            None => Err("empty command".into()),
        }
    }
}
