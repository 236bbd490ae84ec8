//! The query APIs' JSON, written straight into one buffer: a range answer
//! can hold hundreds of thousands of points, and building a
//! `serde_json::Value` per point cost more than evaluating the query.

use promql::{QueryStats, QueryValue};
use std::fmt::Write;
use std::time::Duration;
use tsdb::LabelSet;

/// A successful query answer: `{"status":"success","data":{...}}` with
/// `stats`, `warnings` and `infos` as Prometheus adds them.
pub struct QueryAnswer<'a> {
    pub value: &'a QueryValue,
    pub stats: &'a QueryStats,
    /// Most series (or samples) returned; 0 for all.
    pub limit: usize,
    /// `Some` when the client asked for `stats`.
    pub elapsed: Option<Duration>,
}

impl QueryAnswer<'_> {
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str(r#"{"status":"success","data":"#);
        let truncated = write_data(&mut out, self.value, self.limit);
        if let Some(elapsed) = self.elapsed {
            // The closing brace of `data` is reopened to add its stats.
            out.pop();
            let secs = elapsed.as_secs_f64();
            let n = self.stats.samples_loaded;
            let _ = write!(
                out,
                r#","stats":{{"timings":{{"evalTotalTime":{secs},"execTotalTime":{secs}}},"samples":{{"totalQueryableSamples":{n},"peakSamples":{n}}}}}}}"#
            );
        }
        let mut warnings: Vec<&str> = self.stats.warnings.iter().map(String::as_str).collect();
        if truncated {
            warnings.push("results truncated due to limit");
        }
        write_string_list(&mut out, "warnings", &warnings);
        let infos: Vec<&str> = self.stats.infos.iter().map(String::as_str).collect();
        write_string_list(&mut out, "infos", &infos);
        out.push('}');
        out
    }
}

fn write_string_list(out: &mut String, key: &str, items: &[&str]) {
    if items.is_empty() {
        return;
    }
    let _ = write!(out, r#","{key}":["#);
    write_joined(out, items, |out, s| write_str(out, s));
    out.push(']');
}

/// `items` written by `f`, separated by commas.
fn write_joined<T>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
    mut f: impl FnMut(&mut String, T),
) {
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        f(out, item);
    }
}

/// `{"resultType":kind,"result":[...]}` with at most `limit` items (0: all);
/// true when `limit` cut the result.
fn write_result<T>(
    out: &mut String,
    kind: &str,
    items: &[T],
    limit: usize,
    f: impl FnMut(&mut String, &T),
) -> bool {
    let truncated = limit > 0 && items.len() > limit;
    let n = if truncated { limit } else { items.len() };
    let _ = write!(out, r#"{{"resultType":"{kind}","result":["#);
    write_joined(out, &items[..n], f);
    out.push_str("]}");
    truncated
}

/// Writes the `data` object; true when `limit` cut the result.
fn write_data(out: &mut String, v: &QueryValue, limit: usize) -> bool {
    match v {
        QueryValue::Scalar { t, v } => {
            out.push_str(r#"{"resultType":"scalar","result":"#);
            write_point(out, *t, *v);
            out.push('}');
            false
        }
        QueryValue::String { t, v } => {
            out.push_str(r#"{"resultType":"string","result":["#);
            write_ts(out, *t);
            out.push(',');
            write_str(out, v);
            out.push_str("]}");
            false
        }
        QueryValue::Vector(samples) => write_result(out, "vector", samples, limit, |out, s| {
            out.push_str(r#"{"metric":"#);
            write_labels(out, &s.labels);
            out.push_str(r#","value":"#);
            write_point(out, s.t, s.v);
            out.push('}');
        }),
        QueryValue::Matrix(series) => write_result(out, "matrix", series, limit, |out, s| {
            out.push_str(r#"{"metric":"#);
            write_labels(out, &s.labels);
            out.push_str(r#","values":["#);
            out.reserve(s.points.len() * 24);
            write_joined(out, &s.points, |out, (t, v)| write_point(out, *t, *v));
            out.push_str("]}");
        }),
    }
}

/// `{"name":"value",...}` in label order, as Prometheus writes a metric.
pub fn write_labels(out: &mut String, labels: &LabelSet) {
    out.push('{');
    write_joined(out, labels.iter(), |out, l| {
        write_str(out, l.name);
        out.push(':');
        write_str(out, l.value);
    });
    out.push('}');
}

/// `[<seconds>,"<value>"]`.
pub(crate) fn write_point(out: &mut String, t_ms: i64, v: f64) {
    out.push('[');
    write_ts(out, t_ms);
    out.push_str(",\"");
    write_value(out, v);
    out.push_str("\"]");
}

/// Seconds, an integer when whole (as Prometheus writes timestamps).
fn write_ts(out: &mut String, t_ms: i64) {
    if t_ms % 1000 == 0 {
        out.push_str(itoa::Buffer::new().format(t_ms / 1000));
    } else if t_ms.unsigned_abs() < 1_000_000_000_000_000 / 1000 {
        // The shortest digits of `t_ms / 1000.0` are the milliseconds
        // written as a decimal (see `write_decimal`).
        write_decimal(out, t_ms, 3);
    } else {
        write_float(out, t_ms as f64 / 1000.0);
    }
}

/// `m / 10^scale` written out, trailing zeros dropped.
fn write_decimal(out: &mut String, m: i64, scale: u32) {
    if m < 0 {
        out.push('-');
    }
    let a = m.unsigned_abs();
    let p = 10u64.pow(scale);
    out.push_str(itoa::Buffer::new().format(a / p));
    let mut frac = a % p;
    if frac == 0 {
        return;
    }
    let mut digits = scale;
    while frac % 10 == 0 {
        frac /= 10;
        digits -= 1;
    }
    out.push('.');
    let mut buf = itoa::Buffer::new();
    let f = buf.format(frac);
    for _ in f.len()..digits as usize {
        out.push('0');
    }
    out.push_str(f);
}

/// `v` as `m / 10^s` for the smallest `s` of 1 to 3 that gives `v`'s
/// exact bits. Below 10^12 a step of 10^-3 is wider than the float's
/// spacing, so that decimal is the only one of its length that reads back
/// as `v`, and the smallest scale gives the fewest digits: it is the
/// shortest round-trip form, as ryu would print it.
fn short_decimal(v: f64) -> Option<(i64, u32)> {
    // Zero is whole (and -0 keeps its sign through the float path).
    if v.is_nan() || v.abs() >= 1e12 || v == 0.0 {
        return None;
    }
    for (s, p) in [(1u32, 10.0), (2, 100.0), (3, 1000.0)] {
        let m = (v * p).round();
        if m / p == v {
            return Some((m as i64, s));
        }
    }
    None
}

/// A finite float in its shortest round-trip digits, never with an
/// exponent (Go's `FormatFloat(v, 'f', -1, 64)`, which Prometheus uses).
fn write_float(out: &mut String, v: f64) {
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v);
    // Up to 15 significant digits the shortest form is unique; with 16 or
    // 17 two forms can tie and ryu breaks ties unlike std (and
    // `promql::format_value`), so std decides those, and exponents.
    let significant = s
        .bytes()
        .take_while(|b| *b != b'e' && *b != b'E')
        .filter(u8::is_ascii_digit)
        .skip_while(|b| *b == b'0')
        .count();
    if significant > 15 || s.contains(['e', 'E']) {
        let _ = write!(out, "{v}");
    } else {
        out.push_str(s.strip_suffix(".0").unwrap_or(s));
    }
}

/// A float as Prometheus prints it (see `promql::format_value`), without
/// allocating.
fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 && !(v == 0.0 && v.is_sign_negative()) {
        // Whole numbers (most counters and gauges) print as integers,
        // which is what the float formatting gives, at a fraction of its cost.
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else if let Some((m, s)) = short_decimal(v) {
        // Exporters' values are mostly short decimals (CPU seconds with two
        // digits): written from their mantissa, skipping the float search.
        write_decimal(out, m, s);
    } else {
        write_float(out, v);
    }
}

/// A JSON string literal, escaped as serde_json escapes.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql::{InstantSample, RangeSeries};
    use serde_json::{json, Value};
    use tsdb::Label;

    fn labels() -> LabelSet {
        LabelSet::from_labels(vec![
            Label::new("__name__", "up"),
            Label::new("job", "a\"b\\c\n\u{1}é<>"),
        ])
    }

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
    }

    proptest::proptest! {
        /// Every float prints as `promql::format_value` prints it.
        #[test]
        fn values_print_as_format_value(bits in proptest::prelude::any::<u64>(), small in -1e6f64..1e6) {
            let cents = (small * 100.0).round() / 100.0;
            for v in [f64::from_bits(bits), small, small.round(), small / 1000.0, cents, cents * 1e6, -cents / 10.0] {
                let mut out = String::new();
                write_value(&mut out, v);
                proptest::prop_assert_eq!(out, promql::format_value(v));
            }
        }
    }

    proptest::proptest! {
        /// Timestamps print as the float `t / 1000` prints.
        #[test]
        fn timestamps_print_as_seconds(t in proptest::prelude::any::<i64>(), near in -5_000_000_000_000i64..5_000_000_000_000) {
            for t in [t, near] {
                let mut out = String::new();
                write_ts(&mut out, t);
                let want = if t % 1000 == 0 { (t / 1000).to_string() } else { promql::format_value(t as f64 / 1000.0) };
                proptest::prop_assert_eq!(out, want);
            }
        }
    }

    #[test]
    fn strings_escape_like_serde_json() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "\n\r\t\u{8}\u{c}\u{0}\u{1f}",
            "é→🙂",
            "",
        ] {
            let mut out = String::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn vector_matrix_scalar_and_string_answers() {
        let stats = QueryStats {
            samples_loaded: 7,
            warnings: vec!["PromQL warning: w".into()],
            infos: vec!["PromQL info: i".into()],
        };
        let v = QueryValue::Vector(vec![InstantSample {
            labels: labels(),
            t: 1_500,
            v: f64::NAN,
        }]);
        let a = QueryAnswer {
            value: &v,
            stats: &stats,
            limit: 0,
            elapsed: None,
        };
        assert_eq!(
            parse(&a.to_json()),
            json!({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {"__name__": "up", "job": "a\"b\\c\n\u{1}é<>"}, "value": [1.5, "NaN"]}
            ]}, "warnings": ["PromQL warning: w"], "infos": ["PromQL info: i"]})
        );
        let m = QueryValue::Matrix(vec![
            RangeSeries {
                labels: labels(),
                points: vec![(1000, 1.0), (2000, f64::INFINITY), (-3000, -0.5)],
            },
            RangeSeries {
                labels: LabelSet::default(),
                points: vec![(4001, f64::NEG_INFINITY)],
            },
        ]);
        let none = QueryStats::default();
        let a = QueryAnswer {
            value: &m,
            stats: &none,
            limit: 1,
            elapsed: Some(Duration::from_millis(250)),
        };
        assert_eq!(
            parse(&a.to_json()),
            json!({"status": "success", "data": {"resultType": "matrix", "result": [
                {"metric": {"__name__": "up", "job": "a\"b\\c\n\u{1}é<>"},
                 "values": [[1, "1"], [2, "+Inf"], [-3, "-0.5"]]}
            ], "stats": {"timings": {"evalTotalTime": 0.25, "execTotalTime": 0.25},
                         "samples": {"totalQueryableSamples": 0, "peakSamples": 0}}},
             "warnings": ["results truncated due to limit"]})
        );
        for v in [
            0.0,
            -0.0,
            1.0,
            -7.0,
            123456789.0,
            8.9e15,
            9.1e15,
            0.5,
            1e-7,
            1e300,
        ] {
            let mut out = String::new();
            write_value(&mut out, v);
            assert_eq!(out, promql::format_value(v), "{v}");
        }
        let s = QueryValue::Scalar { t: 0, v: 1e21 };
        let a = QueryAnswer {
            value: &s,
            stats: &none,
            limit: 0,
            elapsed: None,
        };
        assert_eq!(
            parse(&a.to_json()),
            json!({"status": "success", "data": {"resultType": "scalar", "result": [0, "1000000000000000000000"]}})
        );
        let st = QueryValue::String {
            t: 12_345,
            v: "x\"y".into(),
        };
        let a = QueryAnswer {
            value: &st,
            stats: &none,
            limit: 0,
            elapsed: None,
        };
        assert_eq!(
            parse(&a.to_json()),
            json!({"status": "success", "data": {"resultType": "string", "result": [12.345, "x\"y"]}})
        );
    }
}
