//! Running a log pipeline over one entry: line filters, parsers that add
//! labels, label filters, formatting, drop/keep. Parse and conversion
//! failures do not drop the line; they set `__error__` (and
//! `__error_details__`) as Loki does, for `| __error__=""` to filter.

use super::ast::*;
use std::borrow::Cow;
use tsdb::{LabelSet, Matcher};

pub const ERROR_LABEL: &str = "__error__";
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";

/// The labels of an entry while its pipeline runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(pub Vec<(String, String)>);

impl Labels {
    pub fn from_set(set: &LabelSet) -> Self {
        Labels(
            set.iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: &str, value: String) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| n != name);
    }

    /// Sorted, without empty values: the form results are keyed by.
    pub fn normalized(mut self) -> Self {
        self.0.retain(|(_, v)| !v.is_empty());
        self.0.sort();
        self.0.dedup_by(|a, b| a.0 == b.0);
        self
    }

    pub fn to_label_set(&self) -> LabelSet {
        LabelSet::from_labels(
            self.0
                .iter()
                .map(|(n, v)| tsdb::Label::new(n.as_str(), v.as_str()))
                .collect(),
        )
    }
}

/// Loki's label name sanitising: anything but `[A-Za-z0-9_]` becomes `_`,
/// and a leading digit gets a `_` before it.
fn sanitize(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A parsed label that collides with a stream label gets `_extracted`.
fn add_parsed(labels: &mut Labels, stream: &LabelSet, key: String, value: String) {
    let key = if stream.get(&key).is_some() {
        format!("{key}_extracted")
    } else {
        key
    };
    labels.set(&key, value);
}

fn set_error(labels: &mut Labels, kind: &str, details: String) {
    if labels.get(ERROR_LABEL).is_none() {
        labels.set(ERROR_LABEL, kind.to_string());
        labels.set(ERROR_DETAILS_LABEL, details);
    }
}

pub fn line_filter_matches(f: &LineFilter, line: &str) -> bool {
    match f.op {
        FilterOp::Contains => f.values.iter().any(|v| line.contains(v.as_str())),
        FilterOp::NotContains => !f.values.iter().any(|v| line.contains(v.as_str())),
        FilterOp::Regex => f.regexes.iter().any(|r| r.is_match(line)),
        FilterOp::NotRegex => !f.regexes.iter().any(|r| r.is_match(line)),
    }
}

fn matcher_holds(m: &Matcher, labels: &Labels) -> bool {
    m.matches(labels.get(&m.name).unwrap_or(""))
}

fn convert(kind: NumKind, v: &str) -> Option<f64> {
    match kind {
        NumKind::Number => v.trim().parse().ok(),
        NumKind::Duration => super::parser::parse_duration(v.trim()).map(|ns| ns as f64 / 1e9),
        NumKind::Bytes => super::parser::parse_bytes(v.trim()),
    }
}

/// `Err` names a value that could not be converted.
fn label_filter_holds(f: &LabelFilter, labels: &Labels) -> Result<bool, String> {
    match f {
        LabelFilter::Matcher(m) => Ok(matcher_holds(m, labels)),
        LabelFilter::Compare {
            name,
            op,
            kind,
            value,
        } => match labels.get(name) {
            None => Ok(false),
            Some(v) => match convert(*kind, v) {
                Some(x) => Ok(op.holds(x, *value)),
                None => Err(format!("cannot convert {name}={v:?} to a {kind:?}")),
            },
        },
        LabelFilter::And(a, b) => {
            Ok(label_filter_holds(a, labels)? && label_filter_holds(b, labels)?)
        }
        LabelFilter::Or(a, b) => {
            Ok(label_filter_holds(a, labels)? || label_filter_holds(b, labels)?)
        }
    }
}

/// Applies label filters the way a pipeline stage does: a conversion
/// failure keeps the entry and marks it.
pub fn apply_label_filter(f: &LabelFilter, labels: &mut Labels) -> bool {
    match label_filter_holds(f, labels) {
        Ok(keep) => keep,
        Err(details) => {
            set_error(labels, "LabelFilterErr", details);
            true
        }
    }
}

fn render(t: &Template, labels: &Labels, line: &str, ts: i64) -> String {
    let mut out = String::new();
    for part in &t.parts {
        match part {
            TemplatePart::Text(s) => out.push_str(s),
            TemplatePart::Value { name, funcs } => {
                let mut v: String = match name.as_str() {
                    "__line__" => line.to_string(),
                    "__timestamp__" => ts.to_string(),
                    n => labels.get(n).unwrap_or("").to_string(),
                };
                for f in funcs {
                    v = match f {
                        TemplateFunc::Upper => v.to_uppercase(),
                        TemplateFunc::Lower => v.to_lowercase(),
                        TemplateFunc::Trim | TemplateFunc::TrimSpace => v.trim().to_string(),
                        TemplateFunc::Title => {
                            let mut c = v.chars();
                            match c.next() {
                                Some(f) => f.to_uppercase().chain(c).collect(),
                                None => v,
                            }
                        }
                    };
                }
                out.push_str(&v);
            }
        }
    }
    out
}

fn json_value_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

fn flatten_json(
    prefix: &str,
    v: &serde_json::Map<String, serde_json::Value>,
    out: &mut Vec<(String, String)>,
) {
    for (k, v) in v {
        let key = if prefix.is_empty() {
            sanitize(k)
        } else {
            format!("{prefix}_{}", sanitize(k))
        };
        match v {
            serde_json::Value::Object(o) => flatten_json(&key, o, out),
            serde_json::Value::Array(_) => {}
            other => {
                if let Some(t) = json_value_text(other) {
                    out.push((key, t));
                }
            }
        }
    }
}

fn json_path<'v>(v: &'v serde_json::Value, path: &[JsonPathPart]) -> Option<&'v serde_json::Value> {
    path.iter().try_fold(v, |v, p| match p {
        JsonPathPart::Key(k) => v.get(k.as_str()),
        JsonPathPart::Index(i) => v.get(*i),
    })
}

/// logfmt pairs, or `Err` naming the problem. Strict, the first malformed
/// pair is an error; otherwise, as Loki 3 does, a malformed token is
/// skipped and parsing goes on, so a klog line (`I0101 01:59:40 1 x.go:8]
/// "Sync done" elapsed="62.6ms"`) still gives `elapsed`. Standalone keys
/// (no `=`) are kept, with an empty value, only with `keep_empty`.
fn logfmt_pairs(
    line: &str,
    strict: bool,
    keep_empty: bool,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    // Skips to the end of the token at `i` (a quoted string is one token).
    let skip_token = |mut i: usize| {
        let mut quoted = false;
        while i < b.len() {
            match b[i] {
                b'"' => quoted = !quoted,
                b'\\' if quoted => i += 1,
                b' ' | b'\t' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        i.min(b.len())
    };
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        let mut bad_key = false;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' && b[i] != b'\t' {
            if b[i] == b'"' {
                if strict {
                    return Err(format!("unexpected '\"' at byte {i}"));
                }
                bad_key = true;
                break;
            }
            i += 1;
        }
        if bad_key {
            i = skip_token(i);
            continue;
        }
        let key = &line[ks..i];
        if i >= b.len() || b[i] != b'=' {
            if keep_empty && !key.is_empty() {
                out.push((key.to_string(), String::new()));
            }
            continue;
        }
        i += 1;
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = String::new();
            let mut closed = false;
            while let Some(&c) = b.get(i) {
                match c {
                    b'"' => {
                        i += 1;
                        closed = true;
                        break;
                    }
                    b'\\' => {
                        match b.get(i + 1) {
                            Some(b'n') => v.push('\n'),
                            Some(b't') => v.push('\t'),
                            Some(&e) => v.push(e as char),
                            None => break,
                        }
                        i += 2;
                    }
                    _ => {
                        let ch_len = line[i..].chars().next().map_or(1, char::len_utf8);
                        v.push_str(&line[i..i + ch_len]);
                        i += ch_len;
                    }
                }
            }
            if !closed {
                if strict {
                    return Err(format!("unterminated quoted value of {key:?}"));
                }
                break;
            }
            v
        } else {
            let vs = i;
            while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                i += 1;
            }
            line[vs..i].to_string()
        };
        if !key.is_empty() {
            out.push((key.to_string(), value));
        }
    }
    Ok(out)
}

fn pattern_captures(parts: &[PatternPart], line: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = line;
    let mut i = 0;
    while i < parts.len() {
        match &parts[i] {
            PatternPart::Literal(l) => {
                rest = rest.strip_prefix(l.as_str())?;
                i += 1;
            }
            PatternPart::Capture(name) => {
                let (value, after) = match parts.get(i + 1) {
                    Some(PatternPart::Literal(l)) => {
                        let at = rest.find(l.as_str())?;
                        (&rest[..at], &rest[at..])
                    }
                    _ => (rest, ""),
                };
                if let Some(n) = name {
                    out.push((n.clone(), value.to_string()));
                }
                rest = after;
                i += 1;
            }
        }
    }
    Some(out)
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether any stage reads or changes labels (else the stream's labels
/// are the entry's, and no per-entry label set is built).
pub fn touches_labels(stages: &[Stage]) -> bool {
    stages
        .iter()
        .any(|s| !matches!(s, Stage::LineFilter(_) | Stage::Decolorize))
}

/// Runs `stages` over one entry; `None` when a filter drops it. The labels
/// come back only when `labels` was given (see [`touches_labels`]).
pub fn run<'l>(
    stages: &[Stage],
    stream: &LabelSet,
    ts: i64,
    line: &'l str,
    mut labels: Option<Labels>,
) -> Option<(Cow<'l, str>, Option<Labels>)> {
    let mut line: Cow<'l, str> = Cow::Borrowed(line);
    for stage in stages {
        match stage {
            Stage::LineFilter(f) => {
                if !line_filter_matches(f, &line) {
                    return None;
                }
            }
            Stage::Decolorize => line = Cow::Owned(strip_ansi(&line)),
            _ => {
                let l = labels.get_or_insert_with(|| Labels::from_set(stream));
                match stage {
                    Stage::Json(params) => match serde_json::from_str::<serde_json::Value>(&line) {
                        Ok(v) if params.is_empty() => match &v {
                            serde_json::Value::Object(o) => {
                                let mut pairs = Vec::new();
                                flatten_json("", o, &mut pairs);
                                for (k, val) in pairs {
                                    add_parsed(l, stream, k, val);
                                }
                            }
                            _ => set_error(
                                l,
                                "JSONParserErr",
                                "the line is not a JSON object".into(),
                            ),
                        },
                        Ok(v) => {
                            for (name, path) in params {
                                if let Some(t) = json_path(&v, path).and_then(json_value_text) {
                                    add_parsed(l, stream, name.clone(), t);
                                }
                            }
                        }
                        Err(e) => set_error(l, "JSONParserErr", e.to_string()),
                    },
                    Stage::Logfmt {
                        params,
                        strict,
                        keep_empty,
                    } => match logfmt_pairs(&line, *strict, *keep_empty) {
                        Ok(pairs) if params.is_empty() => {
                            for (k, v) in pairs {
                                add_parsed(l, stream, sanitize(&k), v);
                            }
                        }
                        Ok(pairs) => {
                            for (name, key) in params {
                                if let Some((_, v)) = pairs.iter().find(|(k, _)| k == key) {
                                    add_parsed(l, stream, name.clone(), v.clone());
                                }
                            }
                        }
                        Err(e) => set_error(l, "LogfmtParserErr", e),
                    },
                    Stage::Regexp(re) => {
                        if let Some(caps) = re.captures(&line) {
                            for name in re.capture_names().flatten() {
                                if let Some(m) = caps.name(name) {
                                    add_parsed(l, stream, sanitize(name), m.as_str().to_string());
                                }
                            }
                        }
                    }
                    Stage::Pattern(parts) => {
                        if let Some(caps) = pattern_captures(parts, &line) {
                            for (k, v) in caps {
                                add_parsed(l, stream, k, v);
                            }
                        }
                    }
                    Stage::LabelFilter(f) => {
                        if !apply_label_filter(f, l) {
                            return None;
                        }
                    }
                    Stage::LineFormat(t) => line = Cow::Owned(render(t, l, &line, ts)),
                    Stage::LabelFormat(items) => {
                        for item in items {
                            match item {
                                LabelFormat::Rename { dst, src } => {
                                    let v = l.get(src).unwrap_or("").to_string();
                                    l.remove(src);
                                    l.set(dst, v);
                                }
                                LabelFormat::Template { dst, template } => {
                                    let v = render(template, l, &line, ts);
                                    l.set(dst, v);
                                }
                            }
                        }
                    }
                    Stage::Drop(ms) => {
                        l.0.retain(|(n, v)| !ms.iter().any(|m| m.name == *n && m.matches(v)))
                    }
                    Stage::Keep(ms) => {
                        l.0.retain(|(n, v)| ms.iter().any(|m| m.name == *n && m.matches(v)))
                    }
                    Stage::LineFilter(_) | Stage::Decolorize => {}
                }
            }
        }
    }
    Some((line, labels))
}

/// Substrings every selected line contains before any stage rewrites it:
/// index hints for the store.
pub fn required_substrings(stages: &[Stage]) -> Vec<String> {
    let mut out = Vec::new();
    for s in stages {
        match s {
            Stage::LineFilter(LineFilter {
                op: FilterOp::Contains,
                values,
                ..
            }) if values.len() == 1 && !values[0].is_empty() => out.push(values[0].clone()),
            Stage::LineFormat(_) | Stage::Decolorize => break,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse;
    use super::*;

    fn pipeline(q: &str) -> Vec<Stage> {
        match parse(q).unwrap() {
            Expr::Log(l) => l.stages,
            _ => panic!(),
        }
    }

    fn run_one(q: &str, line: &str) -> Option<(String, Vec<(String, String)>)> {
        let stream = LabelSet::from_pairs(&[("app", "api"), ("level", "x")]);
        let stages = pipeline(q);
        let (line, labels) = run(
            &stages,
            &stream,
            1_000,
            line,
            Some(Labels::from_set(&stream)),
        )?;
        Some((line.into_owned(), labels.unwrap_or_default().normalized().0))
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = p
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn json_flattens_sanitizes_and_marks_errors() {
        let (_, l) = run_one(
            r#"{app="api"} | json"#,
            r#"{"a":{"b-c":1,"d":[1]},"level":"warn","ok":true,"n":null}"#,
        )
        .unwrap();
        assert_eq!(
            l,
            pairs(&[
                ("app", "api"),
                ("level", "x"),
                ("a_b_c", "1"),
                ("level_extracted", "warn"),
                ("ok", "true")
            ])
        );
        let (_, l) = run_one(
            r#"{app="api"} | json x="a.b", y="arr[1]""#,
            r#"{"a":{"b":"v"},"arr":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(
            l,
            pairs(&[("app", "api"), ("level", "x"), ("x", "v"), ("y", "2")])
        );
        let (_, l) = run_one(r#"{app="api"} | json"#, "not json").unwrap();
        assert!(
            l.iter()
                .any(|(n, v)| n == "__error__" && v == "JSONParserErr"),
            "{l:?}"
        );
        assert!(run_one(r#"{app="api"} | json | __error__="""#, "not json").is_none());
    }

    #[test]
    fn logfmt_regexp_pattern_and_filters() {
        let q = r#"{app="api"} | logfmt | status >= 400 | duration > 1s"#;
        assert!(run_one(q, r#"status=500 duration=1.5s msg="a b""#).is_some());
        assert!(run_one(q, "status=200 duration=2s").is_none());
        assert!(run_one(q, "status=500 duration=10ms").is_none());
        let (_, l) = run_one(r#"{app="api"} | logfmt | status > 1"#, "status=abc").unwrap();
        assert!(l
            .iter()
            .any(|(n, v)| n == "__error__" && v == "LabelFilterErr"));
        let (_, l) = run_one(
            r#"{app="api"} | regexp "(?P<ip>\\S+) (?P<code>\\d+)""#,
            "1.2.3.4 200",
        )
        .unwrap();
        assert!(
            l.contains(&("code".into(), "200".into()))
                && l.contains(&("ip".into(), "1.2.3.4".into()))
        );
        let (_, l) = run_one(
            r#"{app="api"} | pattern "<ip> - <_> \"<method> <path> <_>\" <code>""#,
            r#"10.0.0.1 - bob "GET /x HTTP/1.1" 404"#,
        )
        .unwrap();
        assert!(
            l.contains(&("method".into(), "GET".into()))
                && l.contains(&("code".into(), "404".into())),
            "{l:?}"
        );
        assert!(run_one(r#"{app="api"} |= "a" or "zzz" != "b""#, "xa").is_some());
        assert!(run_one(r#"{app="api"} |= "a" != "b""#, "ab").is_none());
        assert!(run_one(r#"{app="api"} |~ "(?i)ERROR""#, "an error").is_some());
        assert!(run_one(r#"{app="api"} | logfmt | size > 1KB"#, "size=2kb").is_some());
    }

    fn logql_parse(q: &str) -> Result<crate::logql::ast::Expr, crate::logql::ParseError> {
        crate::logql::parse(q)
    }

    #[test]
    fn logfmt_skips_malformed_tokens_unless_strict() {
        let klog =
            r#"I0101 01:59:40.775266 1 proxier.go:823] "SyncProxyRules complete" elapsed="62.6ms""#;
        let (_, l) = run_one(r#"{app="api"} | logfmt"#, klog).unwrap();
        assert!(l.contains(&("elapsed".into(), "62.6ms".into())), "{l:?}");
        assert!(!l.iter().any(|(n, _)| n == "__error__"), "{l:?}");
        // Standalone keys are left out unless --keep-empty.
        assert!(!l.iter().any(|(n, _)| n == "I0101"), "{l:?}");
        // Kept empty during the pipeline; an empty label is no label in the
        // result, as in Loki.
        let (_, l) = run_one(r#"{app="api"} | logfmt --keep-empty"#, klog).unwrap();
        assert!(l.contains(&("elapsed".into(), "62.6ms".into())), "{l:?}");
        assert!(logql_parse(r#"{app="api"} | logfmt --lenient"#).is_err());
        let (_, l) = run_one(r#"{app="api"} | logfmt --strict"#, klog).unwrap();
        assert!(
            l.contains(&("__error__".into(), "LogfmtParserErr".into())),
            "{l:?}"
        );
        assert!(!l.iter().any(|(n, _)| n == "elapsed"), "{l:?}");
    }

    #[test]
    fn formatting_and_label_shaping() {
        let (line, l) = run_one(
            r#"{app="api"} | logfmt | line_format "{{.method | ToUpper}} {{ .path }} ({{.app}})" | label_format p=path, m="{{.method}}!" | drop level | keep app, p, m"#,
            "method=get path=/x",
        )
        .unwrap();
        assert_eq!(line, "GET /x (api)");
        assert_eq!(l, pairs(&[("app", "api"), ("p", "/x"), ("m", "get!")]));
        let (line, _) = run_one(r#"{app="api"} | decolorize"#, "\x1b[31mred\x1b[0m text").unwrap();
        assert_eq!(line, "red text");
    }

    #[test]
    fn hints_stop_at_rewrites() {
        let s = pipeline(
            r#"{a="b"} |= "x" |= "y" or "z" != "w" | json |= "v" | line_format "{{.a}}" |= "after""#,
        );
        assert_eq!(required_substrings(&s), ["x", "v"]);
    }
}
