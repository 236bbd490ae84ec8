//! Dashboard template variables: their values (from `label_values(...)`,
//! `query_result(...)` or a custom list), what is selected (in the URL as
//! `var-NAME`, `$__all` for All), and the substitution of `$name`,
//! `${name}`, `[[name]]` and Grafana's `$__rate_interval`, `$__interval`,
//! `$__range` into queries, as Grafana does it for Prometheus.

use crate::api::{enc, prom_get, ApiError};
use crate::series::{query_instant, series_name};
use dashboards::{Variable, VariableKind};

pub const ALL: &str = "$__all";

/// A variable's choices and what is selected.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub name: String,
    pub options: Vec<String>,
    /// Selected values; `[ALL]` for All.
    pub selected: Vec<String>,
}

impl Resolved {
    /// The values the selection stands for.
    pub fn values(&self) -> Vec<String> {
        if self.selected.iter().any(|s| s == ALL) {
            self.options.clone()
        } else {
            self.selected.clone()
        }
    }
}

/// What a variable's value looks like inside a query: one value as is,
/// several (or All) as a regex alternation of escaped values.
pub fn format_value(r: &Resolved) -> String {
    let all = r.selected.iter().any(|s| s == ALL);
    let values = r.values();
    match values.as_slice() {
        [] if all => ".*".into(),
        [] => String::new(),
        [one] if !all => one.clone(),
        many => format!(
            "({})",
            many.iter()
                .map(|v| regex_escape(v))
                .collect::<Vec<_>>()
                .join("|")
        ),
    }
}

pub fn regex_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The time the panel queries: its step and range, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub step: f64,
    pub range: f64,
}

fn secs(v: f64) -> String {
    format!("{}s", v.round().max(1.0) as u64)
}

/// Replaces variables in `text`. Longer names are tried first so `$pod`
/// does not eat the start of `$pod_name`.
pub fn interpolate(text: &str, vars: &[Resolved], interval: Interval) -> String {
    let mut names: Vec<(String, String)> = vars
        .iter()
        .map(|v| (v.name.clone(), format_value(v)))
        .collect();
    // $__rate_interval as Grafana computes it for a 15 s scrape interval.
    let rate = (interval.step + 15.0).max(60.0);
    names.push(("__rate_interval".into(), secs(rate)));
    names.push(("__interval".into(), secs(interval.step)));
    names.push(("__range".into(), secs(interval.range)));
    names.push((
        "__range_s".into(),
        format!("{}", interval.range.round() as u64),
    ));
    names.sort_by_key(|n| std::cmp::Reverse(n.0.len()));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        for (name, value) in &names {
            for pat in [
                format!("${{{name}}}"),
                format!("[[{name}]]"),
                format!("${name}"),
            ] {
                if let Some(after) = tail.strip_prefix(pat.as_str()) {
                    // `$name` must end at a word boundary.
                    let bare = pat.starts_with('$') && !pat.starts_with("${");
                    if bare
                        && after
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        continue;
                    }
                    out.push_str(value);
                    rest = after;
                    continue 'outer;
                }
            }
        }
        out.push_str(&tail[..1]);
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

/// `label_values(metric{...}, label)` → (Some(selector), label);
/// `label_values(label)` → (None, label).
pub fn parse_label_values(q: &str) -> Option<(Option<String>, String)> {
    let inner = q.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    match inner.rfind(',') {
        Some(i) => Some((
            Some(inner[..i].trim().to_string()),
            inner[i + 1..].trim().to_string(),
        )),
        None => Some((None, inner.trim().to_string())),
    }
}

fn apply_regex(values: Vec<String>, regex: &str) -> Vec<String> {
    if regex.is_empty() {
        return values;
    }
    let re = js_sys::RegExp::new(regex, "");
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if let Some(m) = re.exec(&v) {
            let group = m.get(1).as_string().or_else(|| m.get(0).as_string());
            if let Some(g) = group {
                if !out.contains(&g) {
                    out.push(g);
                }
            }
        }
    }
    out
}

/// Fetches a variable's options; earlier variables are substituted into
/// its query (a pod list that follows the namespace).
pub async fn options(
    v: &Variable,
    earlier: &[Resolved],
    start: f64,
    end: f64,
) -> Result<Vec<String>, ApiError> {
    let interval = Interval {
        step: 15.0,
        range: end - start,
    };
    let q = interpolate(&v.query, earlier, interval);
    let values = match v.kind {
        VariableKind::Custom => q
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        VariableKind::Query => {
            if let Some((selector, label)) = parse_label_values(&q) {
                let mut url = format!(
                    "/api/v1/label/{}/values?start={start:.0}&end={end:.0}",
                    enc(&label)
                );
                if let Some(s) = selector {
                    url.push_str(&format!("&match[]={}", enc(&s)));
                }
                prom_get::<Vec<String>>(&url).await?
            } else if let Some(expr) = q
                .trim()
                .strip_prefix("query_result(")
                .and_then(|r| r.strip_suffix(')'))
            {
                let data = query_instant(expr, end).await?;
                data.series()
                    .map_err(ApiError)?
                    .iter()
                    .map(|s| {
                        let (t, val) = s.points.last().copied().unwrap_or((end, f64::NAN));
                        format!("{} {val} {}", series_name(&s.labels), (t * 1000.0) as i64)
                    })
                    .collect()
            } else {
                return Err(ApiError(format!(
                    "variable {}: {q:?} is neither label_values(...) nor query_result(...)",
                    v.name
                )));
            }
        }
    };
    Ok(apply_regex(values, &v.regex))
}

/// What is selected: the URL's choice if it still exists, else All (when
/// offered) or the first option.
pub fn select(v: &Variable, options: &[String], from_url: &[String]) -> Vec<String> {
    let kept: Vec<String> = from_url
        .iter()
        .filter(|s| (s.as_str() == ALL && v.include_all) || options.contains(s))
        .cloned()
        .collect();
    if !kept.is_empty() {
        return if v.multi { kept } else { kept[..1].to_vec() };
    }
    if v.include_all {
        vec![ALL.to_string()]
    } else {
        options.first().cloned().into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, options: &[&str], selected: &[&str]) -> Resolved {
        Resolved {
            name: name.into(),
            options: options.iter().map(|s| s.to_string()).collect(),
            selected: selected.iter().map(|s| s.to_string()).collect(),
        }
    }

    const I: Interval = Interval {
        step: 30.0,
        range: 3600.0,
    };

    #[test]
    fn substitutes_like_grafana() {
        let vars = [
            r("pod", &["a", "b.c"], &["a"]),
            r("pod_name", &["x"], &["x"]),
            r("ns", &["a", "b.c"], &[ALL]),
            r("multi", &["a", "b"], &["a", "b"]),
        ];
        assert_eq!(
            interpolate(
                r#"up{pod="$pod", p2="$pod_name", ns=~"${ns}", m=~"[[multi]]"}"#,
                &vars,
                I
            ),
            r#"up{pod="a", p2="x", ns=~"(a|b\.c)", m=~"(a|b)"}"#
        );
        assert_eq!(
            interpolate("rate(x[$__rate_interval])", &vars, I),
            "rate(x[60s])"
        );
        assert_eq!(
            interpolate("rate(x[$__interval]) $__range $__range_s", &vars, I),
            "rate(x[30s]) 3600s 3600"
        );
        assert_eq!(interpolate("$unknown $ [x]", &vars, I), "$unknown $ [x]");
        assert_eq!(format_value(&r("e", &[], &[ALL])), ".*");
    }

    #[test]
    fn parses_label_values() {
        assert_eq!(
            parse_label_values("label_values(up{job=\"a,b\"}, instance)"),
            Some((Some("up{job=\"a,b\"}".into()), "instance".into()))
        );
        assert_eq!(
            parse_label_values("label_values(job)"),
            Some((None, "job".into()))
        );
        assert_eq!(parse_label_values("query_result(up)"), None);
    }

    #[test]
    fn selection_rules() {
        let v = Variable {
            name: "x".into(),
            query: "a,b".into(),
            include_all: true,
            multi: true,
            ..Default::default()
        };
        let opts = vec!["a".to_string(), "b".to_string()];
        assert_eq!(select(&v, &opts, &[]), vec![ALL]);
        assert_eq!(select(&v, &opts, &["b".into(), "gone".into()]), vec!["b"]);
        let single = Variable {
            include_all: false,
            multi: false,
            ..v
        };
        assert_eq!(select(&single, &opts, &["a".into(), "b".into()]), vec!["a"]);
        assert_eq!(select(&single, &opts, &[ALL.into()]), vec!["a"]);
    }
}
