//! Go's template builtins and Prometheus's template functions.

use super::exec::{Ctx, Value};
use super::format::{go_float, go_printf};
use std::collections::BTreeMap;

const NAMES: &[&str] = &[
    // Go builtins.
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "slice",
    // Prometheus.
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "title",
    "toUpper",
    "toLower",
    "match",
    "reReplaceAll",
    "safeHtml",
    "stripPort",
    "stripDomain",
    "args",
    "externalURL",
    "pathPrefix",
    "parseDuration",
    "graphLink",
    "tableLink",
];

pub fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn string(name: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!("{name}: expected string; found {}", other.print())),
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (x @ (Value::Int(_) | Value::Num(_)), y @ (Value::Int(_) | Value::Num(_))) => {
            let (x, y) = (x.as_f64()?, y.as_f64()?);
            x.partial_cmp(&y)
                .ok_or_else(|| "cannot compare NaN".to_string())
        }
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.print(),
            b.print()
        )),
    }
}

fn num(name: &str, args: &[Value]) -> Result<f64, String> {
    want(name, args, 1)?;
    args[0].as_f64().map_err(|e| format!("{name}: {e}"))
}

fn sample_labels(v: &Value) -> BTreeMap<String, Value> {
    match v {
        Value::Map(m) => match m.get("Labels") {
            Some(Value::Map(l)) => l.clone(),
            _ => BTreeMap::new(),
        },
        _ => BTreeMap::new(),
    }
}

pub(super) fn call(ctx: &mut Ctx<'_, '_>, name: &str, args: Vec<Value>) -> Result<Value, String> {
    use std::cmp::Ordering::*;
    let s = |v: String| Ok(Value::Str(v));
    match name {
        "and" => Ok(args
            .iter()
            .find(|a| !a.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Nil)),
        "or" => Ok(args
            .iter()
            .find(|a| a.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Nil)),
        "not" => {
            want(name, &args, 1)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "len" => {
            want(name, &args, 1)?;
            Ok(Value::Int(match &args[0] {
                Value::Str(s) => s.len(),
                Value::Map(m) => m.len(),
                Value::List(l) => l.len(),
                other => return Err(format!("len of type {}", other.print())),
            } as i64))
        }
        "index" => {
            let mut it = args.into_iter();
            let mut v = it.next().ok_or("index of nothing")?;
            for k in it {
                v = match (&v, &k) {
                    (Value::Map(m), Value::Str(k)) => m.get(k).cloned().unwrap_or(Value::Nil),
                    (Value::List(l), Value::Int(i)) => l
                        .get(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    _ => return Err(format!("can't index item of type {}", v.print())),
                };
            }
            Ok(v)
        }
        "slice" => {
            let (v, from, to) = match args.as_slice() {
                [Value::Str(s)] => (s.clone(), 0, s.len()),
                [Value::Str(s), Value::Int(a)] => (s.clone(), *a as usize, s.len()),
                [Value::Str(s), Value::Int(a), Value::Int(b)] => {
                    (s.clone(), *a as usize, *b as usize)
                }
                _ => return Err("slice: expected a string and indexes".into()),
            };
            v.get(from..to)
                .map(|x| Value::Str(x.to_string()))
                .ok_or_else(|| format!("slice: index out of range [{from}:{to}]"))
        }
        "print" => {
            // Go adds spaces between operands when neither is a string.
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
                    out.push(' ');
                }
                out.push_str(&a.print());
            }
            s(out)
        }
        "println" => {
            let parts: Vec<String> = args.iter().map(Value::print).collect();
            s(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            let (f, rest) = args.split_first().ok_or("printf: missing format")?;
            s(go_printf(&string(name, f)?, rest))
        }
        "eq" => {
            let (first, rest) = args
                .split_first()
                .ok_or("missing argument for comparison")?;
            for r in rest {
                if compare(first, r)? == Equal {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(name, &args, 2)?;
            let o = compare(&args[0], &args[1])?;
            Ok(Value::Bool(match name {
                "ne" => o != Equal,
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            }))
        }
        "html" | "safeHtml" => {
            want(name, &args, 1)?;
            let t = args[0].print();
            if name == "safeHtml" {
                return s(t);
            }
            s(t.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\'', "&#39;"))
        }
        "js" => {
            want(name, &args, 1)?;
            s(args[0]
                .print()
                .replace('\\', "\\\\")
                .replace('\'', "\\'")
                .replace('"', "\\\"")
                .replace('<', "\\u003C")
                .replace('>', "\\u003E"))
        }
        "urlquery" => {
            let t: String = args.iter().map(Value::print).collect();
            s(crate::notifier::query_escape(&t))
        }
        "query" => {
            want(name, &args, 1)?;
            let q = string(name, &args[0])?;
            let f = ctx.query.ok_or("query: not available here")?;
            Ok(Value::List(
                f(&q).map_err(|e| format!("error executing query: {e}"))?,
            ))
        }
        "first" => {
            want(name, &args, 1)?;
            match &args[0] {
                Value::List(l) => l
                    .first()
                    .cloned()
                    .ok_or_else(|| "first() called on vector with no elements".into()),
                other => Err(format!(
                    "first: expected a query result; found {}",
                    other.print()
                )),
            }
        }
        "label" => {
            want(name, &args, 2)?;
            let l = string(name, &args[0])?;
            Ok(sample_labels(&args[1])
                .get(&l)
                .cloned()
                .unwrap_or(Value::Str(String::new())))
        }
        "value" => {
            want(name, &args, 1)?;
            match &args[0] {
                Value::Map(m) => Ok(m.get("Value").cloned().unwrap_or(Value::Nil)),
                other => Err(format!("value: expected a sample; found {}", other.print())),
            }
        }
        "strvalue" => {
            want(name, &args, 1)?;
            Ok(sample_labels(&args[0])
                .get("__value__")
                .cloned()
                .unwrap_or(Value::Str(String::new())))
        }
        "sortByLabel" => {
            want(name, &args, 2)?;
            let l = string(name, &args[0])?;
            let Value::List(mut items) = args[1].clone() else {
                return Err("sortByLabel: expected a query result".into());
            };
            items.sort_by_key(|v| {
                sample_labels(v)
                    .get(&l)
                    .map(Value::print)
                    .unwrap_or_default()
            });
            Ok(Value::List(items))
        }
        "humanize" => s(humanize(num(name, &args)?)),
        "humanize1024" => s(humanize1024(num(name, &args)?)),
        "humanizeDuration" => s(humanize_duration(num(name, &args)?)),
        "humanizePercentage" => s(format!(
            "{}%",
            go_float(num(name, &args)? * 100.0, 'g', Some(4))
        )),
        "humanizeTimestamp" => s(humanize_timestamp(num(name, &args)?)),
        "toTime" => s(humanize_timestamp(num(name, &args)?)),
        "title" => {
            want(name, &args, 1)?;
            s(go_title(&args[0].print()))
        }
        "toUpper" => {
            want(name, &args, 1)?;
            s(args[0].print().chars().map(go_upper).collect())
        }
        "toLower" => {
            want(name, &args, 1)?;
            s(args[0].print().chars().map(go_lower).collect())
        }
        "match" => {
            want(name, &args, 2)?;
            let re =
                regex::Regex::new(&string(name, &args[0])?).map_err(|e| format!("match: {e}"))?;
            Ok(Value::Bool(re.is_match(&string(name, &args[1])?)))
        }
        "reReplaceAll" => {
            want(name, &args, 3)?;
            let re = regex::Regex::new(&string(name, &args[0])?)
                .map_err(|e| format!("reReplaceAll: {e}"))?;
            let with = string(name, &args[1])?;
            s(re.replace_all(&string(name, &args[2])?, with.as_str())
                .into_owned())
        }
        "stripPort" => {
            want(name, &args, 1)?;
            let h = string(name, &args[0])?;
            if let Some(inner) = h.strip_prefix('[').and_then(|r| r.split_once(']')) {
                return s(inner.0.to_string());
            }
            match h.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') && !port.is_empty() => {
                    s(host.to_string())
                }
                _ => s(h),
            }
        }
        "stripDomain" => {
            want(name, &args, 1)?;
            let h = string(name, &args[0])?;
            let (host, port) = match h.rsplit_once(':') {
                Some((a, p)) if !a.contains(':') => (a.to_string(), format!(":{p}")),
                _ => (h.clone(), String::new()),
            };
            if host.parse::<std::net::IpAddr>().is_ok() {
                return s(h);
            }
            s(format!("{}{port}", host.split('.').next().unwrap_or("")))
        }
        "args" => {
            let m = args
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v))
                .collect();
            Ok(Value::Map(m))
        }
        "externalURL" => ctx_var(ctx, "$externalURL"),
        "pathPrefix" => s(String::new()),
        "parseDuration" => {
            want(name, &args, 1)?;
            let d = crate::duration::parse(&string(name, &args[0])?)?;
            Ok(Value::Num(d.as_secs_f64()))
        }
        "graphLink" | "tableLink" => {
            want(name, &args, 1)?;
            let q = string(name, &args[0])?;
            let tab = if name == "graphLink" { 0 } else { 1 };
            let enc = call(ctx, "urlquery", vec![Value::Str(q)])?.print();
            s(format!("/graph?g0.expr={enc}&g0.tab={tab}"))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

fn ctx_var(ctx: &Ctx<'_, '_>, name: &str) -> Result<Value, String> {
    Ok(ctx.var(name).unwrap_or(Value::Str(String::new())))
}

fn g4(v: f64) -> String {
    go_float(v, 'g', Some(4))
}

pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", g4(v));
    }
    let (v, prefix) = small_prefix(v);
    format!("{}{prefix}", g4(v))
}

/// Scales `v` (|v| < 1) up by thousands to a milli, micro, ... prefix.
fn small_prefix(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

pub fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (secs, mins, hours, days) = (d % 60, d / 60 % 60, d / 3600 % 24, d / 86400);
        return if days != 0 {
            format!("{sign}{days}d {hours}h {mins}m {secs}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {mins}m {secs}s")
        } else if mins != 0 {
            format!("{sign}{mins}m {secs}s")
        } else {
            format!("{sign}{}s", g4(v))
        };
    }
    let (v, prefix) = small_prefix(v);
    format!("{}{prefix}s", g4(v))
}

/// Go's `time.Time.String()` of a Unix time in seconds, in UTC.
pub fn humanize_timestamp(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let secs = v.floor() as i64;
    let nanos = ((v - v.floor()) * 1e9).round() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = vigil_config::civil::civil_from_days(days);
    let mut frac = String::new();
    if nanos > 0 {
        frac = format!(".{nanos:09}").trim_end_matches('0').to_string();
    }
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}{frac} +0000 UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Go's `unicode.ToUpper`: the simple, one-rune case mapping (`ß` stays
/// `ß`, where Rust's full mapping gives `SS`).
fn go_upper(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Go's `unicode.ToLower`: one rune for one rune, and `Σ` is always `σ`
/// (Rust's `str::to_lowercase` gives `ς` at a word's end).
fn go_lower(c: char) -> char {
    // Only `İ` lowercases to more than one rune; its simple mapping is the
    // first of them (`i`).
    c.to_lowercase().next().unwrap_or(c)
}

/// Go's `strings.Title`: the first letter of each word mapped to title
/// case, words separated as Go's `isSeparator` separates them (any ASCII
/// other than letters, digits and `_`; Unicode spaces).
fn go_title(t: &str) -> String {
    let separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !c.is_alphanumeric() && c.is_whitespace()
        }
    };
    let mut prev_sep = true;
    t.chars()
        .map(|c| {
            let out = if prev_sep { go_upper(c) } else { c };
            prev_sep = separator(c);
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_functions_map_rune_by_rune_as_go_does() {
        assert_eq!("straße".chars().map(go_upper).collect::<String>(), "STRAßE");
        assert_eq!("ΟΔΟΣ".chars().map(go_lower).collect::<String>(), "οδοσ");
        assert_eq!("İ".chars().map(go_lower).collect::<String>(), "i");
        assert_eq!(
            go_title("hello wORLD-foo_bar don't ßx"),
            "Hello WORLD-Foo_bar Don'T ßx"
        );
    }
}
