//! The text import format (as VictoriaMetrics's `/api/v1/import/prometheus`
//! takes it): Prometheus exposition lines `name{labels} value [timestamp_ms]`,
//! `#` comments ignored, a missing timestamp meaning "now".

use std::collections::HashMap;
use std::fmt;
use tsdb::{Label, LabelSet, Sample, SeriesSamples, Timestamp, METRIC_NAME};

/// One refused line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based byte column where the problem was found.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Parsed lines grouped by series, and the lines that could not be parsed.
#[derive(Debug, Default)]
pub struct ParsedImport {
    pub series: Vec<SeriesSamples>,
    pub errors: Vec<LineError>,
    pub samples: usize,
}

pub fn parse(body: &str, now_ms: Timestamp) -> ParsedImport {
    let mut out = ParsedImport::default();
    let mut by_series: HashMap<LabelSet, usize> = HashMap::new();
    for (i, line) in body.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_line(line, now_ms) {
            Ok((labels, sample)) => {
                out.samples += 1;
                let idx = *by_series.entry(labels.clone()).or_insert_with(|| {
                    out.series.push(SeriesSamples {
                        labels,
                        samples: Vec::new(),
                    });
                    out.series.len() - 1
                });
                out.series[idx].samples.push(sample);
            }
            Err((column, message)) => out.errors.push(LineError {
                line: i + 1,
                column: column + 1,
                message,
            }),
        }
    }
    for s in &mut out.series {
        s.samples.sort_by_key(|s| s.t);
    }
    out
}

type LineResult<T> = Result<T, (usize, String)>;

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }
    fn err<T>(&self, msg: impl Into<String>) -> LineResult<T> {
        Err((self.pos, msg.into()))
    }
    fn ident(&mut self, metric: bool) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            let ok = b.is_ascii_alphanumeric() || b == b'_' || (metric && b == b':');
            if !ok {
                break;
            }
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
    fn expect(&mut self, c: u8) -> LineResult<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            let found = self.s[self.pos..]
                .chars()
                .next()
                .map_or("end of line".to_string(), |c| format!("{c:?}"));
            self.err(format!("expected {:?}, found {found}", c as char))
        }
    }
    fn quoted(&mut self) -> LineResult<String> {
        self.expect(b'"')?;
        let mut out = String::new();
        let mut chars = self.s[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    Some((j, other)) => {
                        return Err((
                            self.pos + j,
                            format!("invalid escape sequence \\{other} in label value"),
                        ))
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err((
            self.s.len(),
            "unterminated label value (missing closing quote)".into(),
        ))
    }
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while matches!(self.peek(), Some(b) if b != b' ' && b != b'\t') {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
}

fn parse_line(line: &str, now_ms: Timestamp) -> LineResult<(LabelSet, Sample)> {
    let mut c = Cursor { s: line, pos: 0 };
    c.skip_ws();
    let mut labels = Vec::new();
    let name = c.ident(true);
    if !name.is_empty() {
        if name.as_bytes()[0].is_ascii_digit() {
            return Err((c.pos - name.len(), format!("invalid metric name {name:?}")));
        }
        labels.push(Label::new(METRIC_NAME, name));
    }
    if c.peek() == Some(b'{') {
        c.pos += 1;
        loop {
            c.skip_ws();
            if c.peek() == Some(b'}') {
                c.pos += 1;
                break;
            }
            let lname = c.ident(false);
            if lname.is_empty() {
                return c.err("expected a label name");
            }
            c.skip_ws();
            c.expect(b'=')?;
            c.skip_ws();
            let value = c.quoted()?;
            if labels.iter().any(|l: &Label| &*l.name == lname) {
                return Err((c.pos, format!("duplicate label name {lname:?}")));
            }
            labels.push(Label::new(lname, value));
            c.skip_ws();
            match c.peek() {
                Some(b',') => c.pos += 1,
                Some(b'}') => {}
                _ => return c.err("expected ',' or '}' after a label"),
            }
        }
    } else if name.is_empty() {
        return c.err("expected a metric name or '{'");
    }
    if !labels.iter().any(|l| &*l.name == METRIC_NAME) {
        return c.err("series has no metric name");
    }
    let before = c.pos;
    c.skip_ws();
    if c.pos == before {
        return c.err("expected whitespace before the value");
    }
    let value_at = c.pos;
    let value_text = c.token();
    if value_text.is_empty() {
        return c.err("missing value");
    }
    let v = parse_value(value_text).ok_or((value_at, format!("invalid value {value_text:?}")))?;
    c.skip_ws();
    let t = if c.pos < line.len() {
        let ts_at = c.pos;
        let ts_text = c.token();
        let t: Timestamp = ts_text.parse().map_err(|_| {
            (
                ts_at,
                format!("invalid timestamp {ts_text:?} (want integer milliseconds)"),
            )
        })?;
        c.skip_ws();
        if c.pos < line.len() {
            return c.err("unexpected text after the timestamp");
        }
        t
    } else {
        now_ms
    };
    Ok((LabelSet::from_labels(labels), Sample::new(t, v)))
}

/// Go's ParseFloat spellings as Prometheus writes them: `NaN`, `+Inf`, `-Inf`.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if s
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            None
        }
        _ => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_lines_and_groups_series() {
        let body = "# HELP x y\nup{job=\"a\",instance=\"h:1\"} 1 1000\n\nup{job=\"a\",instance=\"h:1\"} 0 500\nnode_load1 0.5\n{__name__=\"m\", esc=\"a\\\"b\\\\c\\nd\"} -Inf 7\nx NaN 1\n";
        let p = parse(body, 42);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.samples, 5);
        assert_eq!(p.series.len(), 4);
        assert_eq!(
            p.series[0].samples.iter().map(|s| s.t).collect::<Vec<_>>(),
            [500, 1000]
        );
        assert_eq!(p.series[1].samples[0].t, 42);
        assert_eq!(p.series[2].labels.get("esc"), Some("a\"b\\c\nd"));
        assert_eq!(p.series[2].samples[0].v, f64::NEG_INFINITY);
        assert!(p.series[3].samples[0].v.is_nan());
    }

    #[test]
    fn errors_name_line_and_column() {
        let body =
            "ok 1\nbad{a=\"x} 1\nm{a=\"1\",a=\"2\"} 1\nm 1 12.5\nm abc\n1m 3\nm{a=\"b\" c=\"d\"} 1";
        let p = parse(body, 0);
        assert_eq!(p.samples, 1);
        let lines: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7]);
        assert!(
            p.errors[0].to_string().contains("unterminated"),
            "{}",
            p.errors[0]
        );
        assert!(p.errors[1].message.contains("duplicate label name \"a\""));
        assert!(p.errors[2].message.contains("invalid timestamp"));
        assert!(p.errors[3].message.contains("invalid value \"abc\""));
        assert_eq!(p.errors[3].column, 3);
    }

    proptest! {
        // Fuzz target: any text parses or fails cleanly, never panics.
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = parse(&s, 0);
        }

        #[test]
        fn never_panics_on_near_valid(s in "[a-z_]{1,5}(\\{[a-z]{1,3}=\"[^\"]{0,4}\"(,[a-z]=\"[a-z\\\\]{0,3}\")?\\})? [-+0-9.eEInfNa]{1,6}( [0-9-]{1,5})?") {
            let _ = parse(&s, 0);
        }
    }
}
