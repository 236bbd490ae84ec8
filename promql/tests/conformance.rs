//! Runs Prometheus's PromQL test scripts (tests/conformance/*.test) against
//! the engine over a real tsdb, including the `@`-appended re-run of every
//! instant query. Prints per-file counts and `N passed, M failed, K skipped`.

use promql::{Engine, InstantSample, QueryError, QueryValue, RangeSeries};
use promql_parser::parser::{self, AtModifier, Expr};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tsdb::{AppendMode, Db, DbOptions, LabelSet, Sample, SeriesSamples, STALE_NAN_BITS};

/// Relative error allowed between expected and actual values (as promqltest).
const EPSILON: f64 = 1e-6;

fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Some((secs * 1000.0).round() as i64);
    }
    let mut total = 0i64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !c.is_ascii_digit())?;
        let num: i64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[u..];
    }
    Some(total)
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        "stale" => Some(f64::from_bits(STALE_NAN_BITS)),
        _ => s.parse().ok(),
    }
}

/// Expands `1 2 _ 3+1x2 _x3 stale` into optional values.
fn expand_points(tokens: &[&str]) -> Option<Vec<Option<f64>>> {
    let mut out = Vec::new();
    for tok in tokens {
        if *tok == "_" {
            out.push(None);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().ok()?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        if let Some(xi) = tok.rfind('x') {
            let (head, times) = (&tok[..xi], &tok[xi + 1..]);
            let n: usize = times.parse().ok()?;
            // Find the +/- that separates start and increment (not a leading sign or exponent).
            let bytes = head.as_bytes();
            let mut split = None;
            for i in (1..bytes.len()).rev() {
                if (bytes[i] == b'+' || bytes[i] == b'-')
                    && bytes[i - 1] != b'e'
                    && bytes[i - 1] != b'E'
                {
                    split = Some(i);
                    break;
                }
            }
            let (start, inc) = match split {
                Some(i) => {
                    let start = parse_float(&head[..i])?;
                    let inc = parse_float(&head[i + 1..])?;
                    (start, if bytes[i] == b'-' { -inc } else { inc })
                }
                None => (parse_float(head)?, 0.0),
            };
            let mut v = start;
            out.push(Some(v));
            for _ in 0..n {
                v += inc;
                out.push(Some(v));
            }
            continue;
        }
        out.push(Some(parse_float(tok)?));
    }
    Some(out)
}

/// Splits `metric{a="b"} 1 2 3` into the series text and the point tokens.
fn split_series(line: &str) -> (&str, Vec<&str>) {
    let line = line.trim();
    let end = match line.find('{') {
        Some(open) if !line[..open].contains(' ') => {
            // Skip over quoted values that may contain braces or spaces.
            let mut in_str = false;
            let mut esc = false;
            let mut close = line.len();
            for (i, c) in line.char_indices().skip(open) {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    in_str = !in_str;
                } else if c == '}' && !in_str {
                    close = i + 1;
                    break;
                }
            }
            close
        }
        _ => line.find(char::is_whitespace).unwrap_or(line.len()),
    };
    let (series, rest) = line.split_at(end);
    (series, rest.split_whitespace().collect())
}

fn parse_labels(series: &str) -> Option<LabelSet> {
    if series == "{}" {
        return Some(LabelSet::default());
    }
    let Expr::VectorSelector(vs) = parser::parse(series).ok()? else {
        return None;
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(n) = &vs.name {
        pairs.push(("__name__".into(), n.clone()));
    }
    for m in &vs.matchers.matchers {
        pairs.push((m.name.clone(), m.value.clone()));
    }
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Some(LabelSet::from_pairs(&refs))
}

#[derive(Debug)]
enum Expected {
    Vector(Vec<(LabelSet, f64)>),
    Scalar(f64),
    Str(String),
    Matrix(Vec<(LabelSet, Vec<Option<f64>>)>),
}

struct EvalCase {
    line: usize,
    range: Option<(i64, i64, i64)>,
    at: i64,
    query: String,
    fail: bool,
    fail_msg: Option<String>,
    ordered: bool,
    result_lines: Vec<String>,
    expect_string: Option<String>,
    range_vector: Option<(i64, i64, i64)>,
    /// `expect warn|info|no_warn|no_info`, with an optional message or regex.
    annotations: Vec<AnnotationExpectation>,
}

struct AnnotationExpectation {
    info: bool,
    present: bool,
    msg: Option<String>,
    regex: Option<regex::Regex>,
}

fn parse_annotation(e: &str) -> Option<AnnotationExpectation> {
    let (head, rest) = e.split_once(' ').unwrap_or((e, ""));
    let (info, present) = match head {
        "warn" => (false, true),
        "info" => (true, true),
        "no_warn" => (false, false),
        "no_info" => (true, false),
        _ => return None,
    };
    let rest = rest.trim();
    // Messages are compared whole, the position Prometheus appends included.
    let msg = rest.strip_prefix("msg:").map(|m| m.trim().to_string());
    let regex = rest
        .strip_prefix("regex:")
        .and_then(|r| regex::Regex::new(r.trim()).ok());
    Some(AnnotationExpectation {
        info,
        present,
        msg,
        regex,
    })
}

fn check_annotations(c: &EvalCase, stats: &promql::QueryStats) -> Result<(), String> {
    for a in &c.annotations {
        let got = if a.info {
            &stats.infos
        } else {
            &stats.warnings
        };
        let kind = if a.info { "info" } else { "warning" };
        if !a.present {
            if !got.is_empty() {
                return Err(format!("expected no {kind}, got {got:?}"));
            }
            continue;
        }
        let ok = match (&a.msg, &a.regex) {
            (Some(m), _) => got.iter().any(|g| g == m),
            (_, Some(r)) => got.iter().any(|g| r.is_match(g)),
            _ => !got.is_empty(),
        };
        if !ok {
            return Err(format!(
                "expected {kind} {:?}, got {got:?}",
                a.msg.as_deref().or(a.regex.as_ref().map(|r| r.as_str()))
            ));
        }
    }
    Ok(())
}

#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    skipped: usize,
    /// `file:line` of each skipped case, checked against `SKIPPED`.
    skipped_at: Vec<String>,
}

/// Whether a case needs native histograms, decided before it runs: its
/// expected output holds one, or one of its selectors can match a series
/// loaded as a native histogram, or it calls a function defined only for
/// native histograms.
fn needs_native(c: &EvalCase, native_series: &[LabelSet]) -> bool {
    if c.result_lines.iter().any(|l| l.contains("{{")) {
        return true;
    }
    let Ok(expr) = parser::parse(&c.query) else {
        return false;
    };
    let mut found = false;
    visit_selectors(&expr, &mut |vs| {
        found |= native_series.iter().any(|ls| selects(vs, ls));
    });
    found
        || [
            "histogram_count",
            "histogram_sum",
            "histogram_avg",
            "histogram_stddev",
            "histogram_stdvar",
        ]
        .iter()
        .any(|f| c.query.contains(f))
}

/// Whether the selector's matchers all match the label set.
fn selects(vs: &parser::VectorSelector, ls: &LabelSet) -> bool {
    let value = |name: &str| ls.get(name).unwrap_or("").to_string();
    let name_ok = vs.name.as_ref().is_none_or(|n| value("__name__") == *n);
    let all = |ms: &[promql_parser::label::Matcher]| ms.iter().all(|m| m.is_match(&value(&m.name)));
    name_ok
        && (all(&vs.matchers.matchers)
            && (vs.matchers.or_matchers.is_empty()
                || vs.matchers.or_matchers.iter().any(|alt| all(alt))))
}

fn visit_selectors(e: &Expr, f: &mut impl FnMut(&parser::VectorSelector)) {
    match e {
        Expr::VectorSelector(vs) => f(vs),
        Expr::MatrixSelector(ms) => f(&ms.vs),
        Expr::Paren(p) => visit_selectors(&p.expr, f),
        Expr::Unary(u) => visit_selectors(&u.expr, f),
        Expr::Binary(b) => {
            visit_selectors(&b.lhs, f);
            visit_selectors(&b.rhs, f);
        }
        Expr::Aggregate(a) => {
            visit_selectors(&a.expr, f);
            if let Some(p) = &a.param {
                visit_selectors(p, f);
            }
        }
        Expr::Subquery(sq) => visit_selectors(&sq.expr, f),
        Expr::Call(c) => {
            for a in &c.args.args {
                visit_selectors(a, f);
            }
        }
        _ => {}
    }
}

fn almost_equal(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() || a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < EPSILON * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

fn expected_of(c: &EvalCase) -> Result<Expected, String> {
    if let Some(s) = &c.expect_string {
        return Ok(Expected::Str(s.clone()));
    }
    let grid = c.range.or(c.range_vector);
    if let Some((start, end, step)) = grid {
        let mut out = Vec::new();
        for l in &c.result_lines {
            let (series, pts) = split_series(l);
            let labels = parse_labels(series).ok_or(format!("bad series {series:?}"))?;
            let vals = expand_points(&pts).ok_or(format!("bad points {l:?}"))?;
            let _ = (start, end, step);
            out.push((labels, vals));
        }
        return Ok(Expected::Matrix(out));
    }
    if c.result_lines.len() == 1 {
        if let Some(v) = parse_float(c.result_lines[0].trim()) {
            return Ok(Expected::Scalar(v));
        }
    }
    let mut out = Vec::new();
    for l in &c.result_lines {
        let (series, pts) = split_series(l);
        let labels = parse_labels(series).ok_or(format!("bad series {series:?}"))?;
        let v = expand_points(&pts)
            .and_then(|v| v.first().copied().flatten())
            .ok_or(format!("bad value in {l:?}"))?;
        out.push((labels, v));
    }
    Ok(Expected::Vector(out))
}

fn compare(c: &EvalCase, exp: &Expected, got: &QueryValue) -> Result<(), String> {
    match (exp, got) {
        (Expected::Str(s), QueryValue::String { v, .. }) if s == v => Ok(()),
        (Expected::Scalar(e), QueryValue::Scalar { v, .. }) => {
            if almost_equal(*e, *v) {
                Ok(())
            } else {
                Err(format!("expected scalar {e}, got {v}"))
            }
        }
        (Expected::Vector(e), QueryValue::Vector(g)) => compare_vector(e, g, c.ordered),
        (Expected::Matrix(e), QueryValue::Matrix(g)) => {
            let (start, _, step) = c.range.or(c.range_vector).unwrap_or((0, 0, 1));
            compare_matrix(e, g, start, step)
        }
        (Expected::Vector(e), QueryValue::Matrix(g)) if e.is_empty() && g.is_empty() => Ok(()),
        (Expected::Matrix(e), QueryValue::Vector(g)) if e.is_empty() && g.is_empty() => Ok(()),
        _ => Err(format!("expected {exp:?}, got {got:?}")),
    }
}

fn compare_vector(e: &[(LabelSet, f64)], g: &[InstantSample], ordered: bool) -> Result<(), String> {
    if e.len() != g.len() {
        return Err(format!(
            "expected {} samples, got {}: {:?}",
            e.len(),
            g.len(),
            g.iter()
                .map(|s| format!("{} {}", s.labels, s.v))
                .collect::<Vec<_>>()
        ));
    }
    for (i, (labels, v)) in e.iter().enumerate() {
        let found = if ordered {
            (g[i].labels == *labels).then_some(&g[i])
        } else {
            g.iter().find(|s| s.labels == *labels)
        };
        match found {
            Some(s) if almost_equal(*v, s.v) => {}
            Some(s) => return Err(format!("{labels}: expected {v}, got {}", s.v)),
            None => {
                return Err(format!(
                    "{labels} missing (or out of order); got {:?}",
                    g.iter().map(|s| s.labels.to_string()).collect::<Vec<_>>()
                ))
            }
        }
    }
    Ok(())
}

fn compare_matrix(
    e: &[(LabelSet, Vec<Option<f64>>)],
    g: &[RangeSeries],
    start: i64,
    step: i64,
) -> Result<(), String> {
    let expected: Vec<(&LabelSet, Vec<(i64, f64)>)> = e
        .iter()
        .map(|(l, vals)| {
            let pts = vals
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (start + i as i64 * step, v)))
                .collect();
            (l, pts)
        })
        .filter(|(_, p): &(&LabelSet, Vec<(i64, f64)>)| !p.is_empty())
        .collect();
    if expected.len() != g.len() {
        return Err(format!(
            "expected {} series, got {}: {:?}",
            expected.len(),
            g.len(),
            g.iter()
                .map(|s| format!("{} {:?}", s.labels, s.points))
                .collect::<Vec<_>>()
        ));
    }
    for (labels, pts) in expected {
        let Some(s) = g.iter().find(|s| s.labels == *labels) else {
            return Err(format!("{labels} missing"));
        };
        let ok = s.points.len() == pts.len()
            && s.points
                .iter()
                .zip(&pts)
                .all(|(a, b)| a.0 == b.0 && almost_equal(a.1, b.1));
        if !ok {
            return Err(format!("{labels}: expected {pts:?}, got {:?}", s.points));
        }
    }
    Ok(())
}

/// The query with `@ t` on every selector and subquery that lacks one
/// (not inside a subquery that has one), or None if it uses time-dependent functions.
fn with_at(query: &str, t_ms: i64) -> Option<Expr> {
    let mut e = parser::parse(query).ok()?;
    let at = AtModifier::At(if t_ms >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_millis(t_ms as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_millis((-t_ms) as u64)
    });
    let mut unsafe_fn = false;
    set_at(&mut e, &at, &mut unsafe_fn);
    (!unsafe_fn).then_some(e)
}

fn set_at(e: &mut Expr, at: &AtModifier, unsafe_fn: &mut bool) {
    match e {
        Expr::VectorSelector(vs) if vs.at.is_none() => vs.at = Some(at.clone()),
        Expr::MatrixSelector(ms) if ms.vs.at.is_none() => ms.vs.at = Some(at.clone()),
        Expr::Subquery(sq) => {
            // Selectors inside a subquery keep times relative to it.
            if sq.at.is_none() {
                sq.at = Some(at.clone());
            }
            check_unsafe(&sq.expr, unsafe_fn);
        }
        Expr::Aggregate(a) => {
            set_at(&mut a.expr, at, unsafe_fn);
            if let Some(p) = &mut a.param {
                set_at(p, at, unsafe_fn);
            }
        }
        Expr::Unary(u) => set_at(&mut u.expr, at, unsafe_fn),
        Expr::Binary(b) => {
            set_at(&mut b.lhs, at, unsafe_fn);
            set_at(&mut b.rhs, at, unsafe_fn);
        }
        Expr::Paren(p) => set_at(&mut p.expr, at, unsafe_fn),
        Expr::Call(c) => {
            if AT_UNSAFE.contains(&c.func.name) {
                *unsafe_fn = true;
            }
            for a in &mut c.args.args {
                set_at(a, at, unsafe_fn);
            }
        }
        _ => {}
    }
}

const AT_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
    // The query's own bounds: an instant query's start and end are its
    // evaluation time, which the @ re-run changes (Prometheus 3 lists them
    // for the same reason).
    "start",
    "end",
];

fn check_unsafe(e: &Expr, unsafe_fn: &mut bool) {
    match e {
        Expr::Call(c) => {
            if AT_UNSAFE.contains(&c.func.name) {
                *unsafe_fn = true;
            }
            for a in &c.args.args {
                check_unsafe(a, unsafe_fn);
            }
        }
        Expr::Aggregate(a) => {
            check_unsafe(&a.expr, unsafe_fn);
            if let Some(p) = &a.param {
                check_unsafe(p, unsafe_fn);
            }
        }
        Expr::Unary(u) => check_unsafe(&u.expr, unsafe_fn),
        Expr::Binary(b) => {
            check_unsafe(&b.lhs, unsafe_fn);
            check_unsafe(&b.rhs, unsafe_fn);
        }
        Expr::Paren(p) => check_unsafe(&p.expr, unsafe_fn),
        Expr::Subquery(s) => check_unsafe(&s.expr, unsafe_fn),
        _ => {}
    }
}

fn run_case(engine: &Engine, db: &Db, c: &EvalCase) -> Result<(), String> {
    let result = match c.range {
        Some((s, e, st)) => engine.range(db, &c.query, s, e, st),
        None => engine.instant(db, &c.query, c.at),
    };
    if c.fail {
        return match result {
            Err(err) => match &c.fail_msg {
                Some(m) if *m != err.to_string() => {
                    Err(format!("expected error {m:?}, got {:?}", err.to_string()))
                }
                _ => Ok(()),
            },
            Ok((v, _)) => Err(format!("expected failure, got {v:?}")),
        };
    }
    let (got, stats) = result.map_err(|e: QueryError| format!("query failed: {e}"))?;
    let exp = expected_of(c)?;
    compare(c, &exp, &got)?;
    check_annotations(c, &stats)?;
    if c.range.is_none() {
        let t = c.at;
        let times: Vec<i64> = if t == 0 {
            vec![-1_000_000, 0, 1_000_000]
        } else {
            vec![-10 * t, 0, t / 5, t, 10 * t]
        };
        if let Some(expr) = with_at(&c.query, t) {
            for et in times {
                let (got, _) = engine
                    .instant_expr(db, &expr, et)
                    .map_err(|e| format!("@-modified query at {et} failed: {e}"))?;
                compare(c, &exp, &got).map_err(|e| format!("@-modified query at {et}: {e}"))?;
            }
        }
    }
    Ok(())
}

fn load(db: &Db, interval: i64, lines: &[String]) -> Result<(), String> {
    let mut write: Vec<SeriesSamples> = Vec::new();
    for l in lines {
        let (series, pts) = split_series(l);
        let labels = parse_labels(series).ok_or(format!("bad series {series:?}"))?;
        let vals = expand_points(&pts).ok_or(format!("bad points in {l:?}"))?;
        let samples: Vec<Sample> = vals
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| Sample::new(i as i64 * interval, v)))
            .collect();
        // As in Prometheus's test loader, a series defined twice in one
        // load block keeps its last definition.
        write.retain(|s| s.labels != labels);
        write.push(SeriesSamples { labels, samples });
    }
    let out = db
        .append(&write, AppendMode::Backfill, 0)
        .map_err(|e| e.to_string())?;
    if !out.errors.is_empty() {
        return Err(format!("load rejected: {:?}", out.errors));
    }
    Ok(())
}

fn run_file(path: &Path, verbose: bool) -> Counts {
    let text = std::fs::read_to_string(path).expect("read script");
    let lines: Vec<&str> = text.lines().collect();
    let engine = Engine::default();
    let mut dir = tempfile::tempdir().expect("tempdir");
    let mut db = Db::open(dir.path(), DbOptions::default()).expect("open db");
    // Label sets of the series loaded as native histograms since the last
    // `clear` (the engine stores floats only; these are left out).
    let mut native_series: Vec<LabelSet> = Vec::new();
    let mut counts = Counts::default();
    let mut i = 0;
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with(char::is_whitespace) {
            i += 1;
            continue;
        }
        // Gather this command's indented lines.
        let mut body = Vec::new();
        let mut j = i + 1;
        while j < lines.len()
            && (lines[j].starts_with(char::is_whitespace) || lines[j].trim().starts_with('#'))
            && !lines[j].trim().is_empty()
        {
            if !lines[j].trim().starts_with('#') {
                body.push(lines[j].trim().to_string());
            }
            j += 1;
        }
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        match words[0] {
            "clear" => {
                drop(db);
                dir = tempfile::tempdir().expect("tempdir");
                db = Db::open(dir.path(), DbOptions::default()).expect("open db");
                native_series.clear();
            }
            "load" | "load_with_nhcb" => {
                for l in body.iter().filter(|l| l.contains("{{")) {
                    match parse_labels(split_series(l).0) {
                        Some(ls) => native_series.push(ls),
                        None => {
                            counts.failed += 1;
                            println!("  FAIL {name}:{}: bad histogram series {l:?}", i + 1);
                        }
                    }
                }
                // load_with_nhcb also turns classic buckets (`x_bucket`
                // with `le`) into native histograms named `x`: those are
                // native series too (the float buckets stay loaded).
                if words[0] == "load_with_nhcb" {
                    for l in body.iter().filter(|l| !l.contains("{{")) {
                        let Some(ls) = parse_labels(split_series(l).0) else {
                            continue;
                        };
                        let Some(base) = ls.metric_name().and_then(|n| n.strip_suffix("_bucket"))
                        else {
                            continue;
                        };
                        let mut pairs: Vec<(String, String)> = ls
                            .iter()
                            .filter(|l| l.name != "le" && l.name != "__name__")
                            .map(|l| (l.name.to_string(), l.value.to_string()))
                            .collect();
                        pairs.push(("__name__".into(), base.to_string()));
                        let refs: Vec<(&str, &str)> = pairs
                            .iter()
                            .map(|(n, v)| (n.as_str(), v.as_str()))
                            .collect();
                        native_series.push(LabelSet::from_pairs(&refs));
                    }
                }
                let interval = match words.get(1).map(|w| parse_duration_ms(w)) {
                    Some(Some(ms)) => ms,
                    _ => {
                        counts.failed += 1;
                        println!("  FAIL {name}:{}: bad load interval in {trimmed:?}", i + 1);
                        i = j;
                        continue;
                    }
                };
                let plain: Vec<String> =
                    body.iter().filter(|l| !l.contains("{{")).cloned().collect();
                if let Err(e) = load(&db, interval, &plain) {
                    counts.failed += 1;
                    println!("  FAIL {name}:{}: load failed: {e}", i + 1);
                }
            }
            cmd if cmd.starts_with("eval") => {
                let mut c = EvalCase {
                    line: i + 1,
                    range: None,
                    at: 0,
                    query: String::new(),
                    fail: cmd == "eval_fail",
                    fail_msg: None,
                    ordered: cmd == "eval_ordered",
                    result_lines: Vec::new(),
                    expect_string: None,
                    range_vector: None,
                    annotations: Vec::new(),
                };
                match cmd {
                    "eval_warn" => c.annotations.extend(parse_annotation("warn")),
                    "eval_info" => c.annotations.extend(parse_annotation("info")),
                    _ => {}
                }
                let rest = trimmed[cmd.len()..].trim();
                if let Some(r) = rest.strip_prefix("instant at ") {
                    let (t, q) = r.split_once(' ').unwrap_or((r, ""));
                    c.at = parse_duration_ms(t).unwrap_or(0);
                    c.query = q.trim().to_string();
                } else if let Some(r) = rest.strip_prefix("range from ") {
                    let parts: Vec<&str> = r.splitn(6, ' ').collect();
                    if parts.len() == 6 {
                        c.range = Some((
                            parse_duration_ms(parts[0]).unwrap_or(0),
                            parse_duration_ms(parts[2]).unwrap_or(0),
                            parse_duration_ms(parts[4]).unwrap_or(1),
                        ));
                        c.query = parts[5].to_string();
                    }
                }
                for b in &body {
                    if let Some(e) = b.strip_prefix("expect ") {
                        if let Some(f) = e.strip_prefix("fail") {
                            c.fail = true;
                            let f = f.trim();
                            if let Some(m) = f.strip_prefix("msg:") {
                                c.fail_msg = Some(m.trim().to_string());
                            }
                        } else if e.starts_with("ordered") {
                            c.ordered = true;
                        } else if let Some(s) = e.strip_prefix("string ") {
                            let s = s.trim();
                            c.expect_string = Some(s[1..s.len().saturating_sub(1)].to_string());
                        } else if let Some(r) = e.strip_prefix("range vector from ") {
                            let p: Vec<&str> = r.split_whitespace().collect();
                            if p.len() == 5 {
                                c.range_vector = Some((
                                    parse_duration_ms(p[0]).unwrap_or(0),
                                    parse_duration_ms(p[2]).unwrap_or(0),
                                    parse_duration_ms(p[4]).unwrap_or(1),
                                ));
                            }
                        } else if let Some(a) = parse_annotation(e) {
                            c.annotations.push(a);
                        }
                    } else {
                        c.result_lines.push(b.clone());
                    }
                }
                if needs_native(&c, &native_series) {
                    counts.skipped += 1;
                    counts.skipped_at.push(format!("{name}:{}", c.line));
                    if std::env::var("PROMQL_CONFORMANCE_SKIPPED").is_ok() {
                        println!("  SKIP {name}:{}: {}", c.line, c.query);
                    }
                    i = j;
                    continue;
                }
                match run_case(&engine, &db, &c) {
                    Ok(()) => counts.passed += 1,
                    Err(e) => {
                        counts.failed += 1;
                        if verbose {
                            println!("  FAIL {name}:{}: {}\n       {e}", c.line, c.query);
                        }
                    }
                }
            }
            other => {
                counts.failed += 1;
                println!("  FAIL {name}:{}: unknown command {other:?}", i + 1);
            }
        }
        i = j;
    }
    counts
}

#[test]
fn prometheus_conformance_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let verbose = std::env::var("PROMQL_CONFORMANCE_VERBOSE").is_ok();
    let only = std::env::var("PROMQL_CONFORMANCE_FILE").ok();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("conformance dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .filter(|p| {
            only.as_ref()
                .is_none_or(|o| p.to_string_lossy().contains(o.as_str()))
        })
        .collect();
    files.sort();
    let mut total = Counts::default();
    let mut per_file: HashMap<String, (usize, usize, usize)> = HashMap::new();
    for f in &files {
        let c = run_file(f, verbose);
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        println!(
            "{name}: {} passed, {} failed, {} skipped",
            c.passed, c.failed, c.skipped
        );
        per_file.insert(name, (c.passed, c.failed, c.skipped));
        total.passed += c.passed;
        total.failed += c.failed;
        total.skipped += c.skipped;
        total.skipped_at.extend(c.skipped_at);
    }
    println!(
        "{} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    if only.is_some() {
        return;
    }
    // Every skip is listed by file:line in SKIPPED: a new skip fails the
    // test as a new failure does, and a listed case that now runs must be
    // taken off the list.
    let listed: std::collections::BTreeSet<String> = std::fs::read_to_string(dir.join("SKIPPED"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let skipped: std::collections::BTreeSet<String> = total.skipped_at.iter().cloned().collect();
    let new: Vec<&String> = skipped.difference(&listed).collect();
    let stale: Vec<&String> = listed.difference(&skipped).collect();
    if std::env::var("PROMQL_CONFORMANCE_WRITE_SKIPPED").is_ok() {
        let mut text = String::from("# Conformance cases skipped because they need native histograms (file:line),\n# decided before each case runs. Regenerate: PROMQL_CONFORMANCE_WRITE_SKIPPED=1\n# cargo test --release -p promql --test conformance\n");
        for k in &skipped {
            text.push_str(k);
            text.push('\n');
        }
        std::fs::write(dir.join("SKIPPED"), text).expect("write SKIPPED");
    } else {
        assert!(
            new.is_empty() && stale.is_empty(),
            "skipped cases differ from tests/conformance/SKIPPED: new {new:?}, no longer skipped {stale:?}"
        );
    }
    let baseline: usize = std::fs::read_to_string(dir.join("BASELINE"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        total.failed <= baseline,
        "{} conformance cases fail, more than the {baseline} in tests/conformance/BASELINE (run with PROMQL_CONFORMANCE_VERBOSE=1 to list them)",
        total.failed
    );
    if total.failed < baseline {
        println!(
            "fewer failures than BASELINE ({baseline}): lower it to {}",
            total.failed
        );
    }
}
