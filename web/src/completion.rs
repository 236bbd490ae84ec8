//! PromQL autocompletion: what kind of word the cursor is in (a metric or
//! function name, a label name inside `{}`, a label value after `=`), and
//! the candidates for it.

/// PromQL's functions and aggregations, offered where a metric name is.
pub const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "avg",
    "avg_over_time",
    "bottomk",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count",
    "count_over_time",
    "count_values",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "delta",
    "deriv",
    "exp",
    "floor",
    "group",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "limitk",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "minute",
    "month",
    "predict_linear",
    "present_over_time",
    "quantile",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "stddev",
    "stddev_over_time",
    "stdvar",
    "stdvar_over_time",
    "sum",
    "sum_over_time",
    "time",
    "timestamp",
    "topk",
    "vector",
    "year",
];

#[derive(Clone, Debug, PartialEq)]
pub enum Context {
    /// A metric or function name.
    Name,
    /// A label name inside `{...}` (or `by (...)`).
    LabelName,
    /// A label value, for this label.
    LabelValue(String),
}

/// What is being typed at `cursor` (a char index): its context, the
/// partial word, and where that word starts (char index).
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    pub context: Context,
    pub prefix: String,
    pub start: usize,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

pub fn word_at(text: &str, cursor: usize) -> Option<Word> {
    let chars: Vec<char> = text.chars().collect();
    let cursor = cursor.min(chars.len());
    // Inside a quoted string? Count unescaped quotes before the cursor.
    let mut in_str: Option<usize> = None;
    let mut i = 0;
    while i < cursor {
        let c = chars[i];
        match in_str {
            Some(_) if c == '\\' => i += 1,
            Some(_) if c == '"' => in_str = None,
            None if c == '"' => in_str = Some(i),
            _ => {}
        }
        i += 1;
    }
    if let Some(q) = in_str {
        // `label="pre|` or `label=~"pre|`
        let mut j = q;
        while j > 0 && matches!(chars[j - 1], '=' | '~' | '!' | ' ') {
            j -= 1;
        }
        let end = j;
        while j > 0 && is_name_char(chars[j - 1]) {
            j -= 1;
        }
        if j == end {
            return None;
        }
        let label: String = chars[j..end].iter().collect();
        return Some(Word {
            context: Context::LabelValue(label),
            prefix: chars[q + 1..cursor].iter().collect(),
            start: q + 1,
        });
    }
    let mut start = cursor;
    while start > 0 && is_name_char(chars[start - 1]) {
        start -= 1;
    }
    let prefix: String = chars[start..cursor].iter().collect();
    if prefix.is_empty() || prefix.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    // Inside braces or a by/without list: a label name.
    let mut depth_brace = 0i32;
    let mut k = start;
    let mut context = Context::Name;
    while k > 0 {
        k -= 1;
        match chars[k] {
            '}' => depth_brace -= 1,
            '{' => {
                depth_brace += 1;
                if depth_brace > 0 {
                    context = Context::LabelName;
                    break;
                }
            }
            '(' => {
                let before: String = chars[..k].iter().collect();
                let kw = before.trim_end();
                if kw.ends_with("by") || kw.ends_with("without") {
                    context = Context::LabelName;
                }
                break;
            }
            ')' | '[' | ']' => break,
            _ => {}
        }
    }
    Some(Word {
        context,
        prefix,
        start,
    })
}

/// Up to `limit` candidates starting with the prefix (case-insensitive),
/// exact-prefix matches before the rest.
pub fn candidates<'a>(
    prefix: &str,
    pool: impl Iterator<Item = &'a str>,
    limit: usize,
) -> Vec<String> {
    let p = prefix.to_ascii_lowercase();
    let mut starts = Vec::new();
    let mut contains = Vec::new();
    for c in pool {
        let l = c.to_ascii_lowercase();
        if l == p {
            continue;
        }
        if l.starts_with(&p) {
            starts.push(c.to_string());
        } else if p.len() >= 3 && l.contains(&p) {
            contains.push(c.to_string());
        }
    }
    starts.sort();
    contains.sort();
    starts.extend(contains);
    starts.truncate(limit);
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts() {
        let w = word_at("rate(node_cp", 12).unwrap();
        assert_eq!(
            (w.context, w.prefix.as_str(), w.start),
            (Context::Name, "node_cp", 5)
        );
        let w = word_at("up{jo", 5).unwrap();
        assert_eq!(w.context, Context::LabelName);
        let w = word_at("up{job=\"no", 10).unwrap();
        assert_eq!(w.context, Context::LabelValue("job".into()));
        assert_eq!(w.prefix, "no");
        let w = word_at("up{job=~\"", 9).unwrap();
        assert_eq!(w.context, Context::LabelValue("job".into()));
        assert_eq!(w.prefix, "");
        let w = word_at("sum by (inst", 12).unwrap();
        assert_eq!(w.context, Context::LabelName);
        let w = word_at("up{a=\"b\"} + su", 14).unwrap();
        assert_eq!(w.context, Context::Name);
        assert_eq!(word_at("rate(x[5", 8), None);
        assert_eq!(word_at("", 0), None);
        assert_eq!(
            word_at("up{a=\"x\\\"y", 10).unwrap().context,
            Context::LabelValue("a".into())
        );
    }

    #[test]
    fn ranks_candidates() {
        let pool = [
            "node_cpu_seconds_total",
            "node_load1",
            "up",
            "process_cpu_seconds_total",
        ];
        assert_eq!(
            candidates("node", pool.iter().copied(), 10),
            vec!["node_cpu_seconds_total", "node_load1"]
        );
        assert_eq!(
            candidates("cpu", pool.iter().copied(), 10),
            vec!["node_cpu_seconds_total", "process_cpu_seconds_total"]
        );
        assert_eq!(
            candidates("up", pool.iter().copied(), 10),
            Vec::<String>::new()
        );
        assert_eq!(candidates("n", pool.iter().copied(), 1).len(), 1);
    }
}
