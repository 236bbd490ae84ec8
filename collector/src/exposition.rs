//! The Prometheus text exposition format 0.0.4 and OpenMetrics 1.0, parsed
//! without copying: names and label values borrow from the scraped body
//! unless they hold escapes.
//!
//! Like Prometheus, one bad line fails the whole scrape, so the parser stops
//! at the first error and says where it is.

use std::borrow::Cow;
use std::fmt;

/// What a scrape asks for, in Prometheus's order of preference.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,\
application/openmetrics-text;version=0.0.1;q=0.75,\
text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Which grammar a body follows.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4` (and anything unrecognised, as Prometheus
    /// falls back to it).
    Text,
    /// `application/openmetrics-text`.
    OpenMetrics,
}

impl Format {
    /// The format a response's `Content-Type` names.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        let media = content_type
            .and_then(|c| c.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        match media.as_deref() {
            Some("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }
}

/// A metric family's type as a `# TYPE` line declares it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    fn parse(word: &str, format: Format) -> Option<MetricType> {
        Some(match (word, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::Text) | ("unknown", Format::OpenMetrics) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }

    /// The name remote_write's `MetricMetadata.MetricType` and the metadata
    /// API use.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

/// Where and why a body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    /// 1-based, in bytes.
    pub column: usize,
    pub message: String,
}

/// One label of a sample line, borrowed from the body where it can be.
pub type LabelPair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleLine<'a, 'p> {
    pub name: Cow<'a, str>,
    /// In the order the line gives them.
    pub labels: &'p [LabelPair<'a>],
    pub value: f64,
    /// Milliseconds since the epoch, if the line carries a timestamp.
    pub timestamp_ms: Option<i64>,
    /// The line's name and labels as written: the same text means the same
    /// series, so a scraper can key a cache on it.
    pub series_text: &'a str,
}

/// What the next line holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a, 'p> {
    Help {
        family: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    Type {
        family: Cow<'a, str>,
        kind: MetricType,
    },
    Unit {
        family: Cow<'a, str>,
        unit: &'a str,
    },
    Sample(SampleLine<'a, 'p>),
}

/// Reads a body entry by entry:
/// `while let Some(entry) = parser.next_entry()? { ... }`.
pub struct Parser<'a> {
    body: &'a str,
    format: Format,
    /// Start of the next line.
    pos: usize,
    /// 1-based number of the next line.
    line: usize,
    labels: Vec<LabelPair<'a>>,
    seen_eof: bool,
}

impl<'a> Parser<'a> {
    pub fn new(body: &'a str, format: Format) -> Self {
        Parser {
            body,
            format,
            pos: 0,
            line: 1,
            labels: Vec::new(),
            seen_eof: false,
        }
    }

    /// Checks that a raw body is UTF-8 first, naming the first bad byte.
    pub fn from_bytes(body: &'a [u8], format: Format) -> Result<Self, ParseError> {
        match std::str::from_utf8(body) {
            Ok(s) => Ok(Parser::new(s, format)),
            Err(e) => {
                let at = e.valid_up_to();
                let before = &body[..at];
                let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
                let line_start = before
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                Err(ParseError {
                    line,
                    column: at - line_start + 1,
                    message: "invalid UTF-8".into(),
                })
            }
        }
    }

    /// The next entry, `None` at the end of the body.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'a, '_>>, ParseError> {
        loop {
            if self.pos >= self.body.len() {
                if self.format == Format::OpenMetrics && !self.seen_eof {
                    return Err(self.error_at(self.pos, "data does not end with # EOF"));
                }
                return Ok(None);
            }
            let start = self.pos;
            let end = self.body[start..]
                .find('\n')
                .map_or(self.body.len(), |i| start + i);
            self.pos = (end + 1).min(self.body.len().max(end + 1));
            let line_no = self.line;
            self.line += 1;
            let line = &self.body[start..end];
            let line = line.strip_suffix('\r').unwrap_or(line);
            if self.seen_eof {
                return Err(ParseError {
                    line: line_no,
                    column: 1,
                    message: "unexpected content after # EOF".into(),
                });
            }
            let mut cur = Cursor {
                s: line,
                at: 0,
                line: line_no,
                body_offset: start,
            };
            cur.skip_blanks();
            if cur.done() {
                if self.format == Format::OpenMetrics {
                    return Err(cur.error("empty line"));
                }
                continue;
            }
            if cur.peek() == Some(b'#') {
                match self.comment(cur)? {
                    Some(entry) => return Ok(Some(entry)),
                    None => continue,
                }
            }
            return self.sample(cur).map(|s| Some(Entry::Sample(s)));
        }
    }

    /// `# HELP`, `# TYPE`, `# UNIT`, `# EOF`, or a comment (`None`).
    fn comment<'p>(&mut self, mut cur: Cursor<'a>) -> Result<Option<Entry<'a, 'p>>, ParseError> {
        cur.at += 1;
        let spaced = cur.skip_blanks();
        let keyword_at = cur.at;
        let keyword = cur.take_while(|b| !b.is_ascii_whitespace());
        if self.format == Format::OpenMetrics && keyword == "EOF" && spaced {
            cur.skip_blanks();
            if !cur.done() {
                return Err(cur.error("unexpected text after # EOF"));
            }
            self.seen_eof = true;
            return Ok(None);
        }
        let kind = match keyword {
            "HELP" | "TYPE" => keyword,
            "UNIT" if self.format == Format::OpenMetrics => keyword,
            _ if self.format == Format::OpenMetrics => {
                return Err(Cursor {
                    at: keyword_at,
                    ..cur
                }
                .error("expected HELP, TYPE, UNIT or EOF after #"))
            }
            _ => return Ok(None),
        };
        if !spaced || !cur.skip_blanks() {
            if self.format == Format::Text && !spaced {
                // `#HELP` is an ordinary comment in the text format.
                return Ok(None);
            }
            return Err(cur.error(&format!("expected a metric name after # {kind}")));
        }
        let family = cur.metric_name()?;
        let had_blank = cur.skip_one_blank();
        let rest = &cur.s[cur.at..];
        if !had_blank && !rest.is_empty() {
            return Err(cur.error("expected a space after the metric name"));
        }
        Ok(Some(match kind {
            "HELP" => Entry::Help {
                family,
                text: unescape(rest, false),
            },
            "TYPE" => {
                let word = rest.trim_end();
                let kind = MetricType::parse(word, self.format)
                    .ok_or_else(|| cur.error(&format!("invalid metric type {word:?}")))?;
                Entry::Type { family, kind }
            }
            _ => Entry::Unit {
                family,
                unit: rest.trim_end(),
            },
        }))
    }

    fn sample(&mut self, mut cur: Cursor<'a>) -> Result<SampleLine<'a, '_>, ParseError> {
        let series_start = cur.at;
        self.labels.clear();
        let mut name = if cur.peek() == Some(b'{') {
            None
        } else {
            Some(cur.metric_name()?)
        };
        let mut series_end = cur.at;
        let mut spaced = cur.skip_blanks();
        if cur.peek() == Some(b'{') {
            cur.at += 1;
            self.label_pairs(&mut cur, &mut name)?;
            series_end = cur.at;
            spaced = cur.skip_blanks();
        }
        let series_text = &cur.s[series_start..series_end];
        let Some(name) = name else {
            return Err(Cursor {
                at: series_start,
                ..cur
            }
            .error("sample has no metric name"));
        };
        if cur.done() {
            return Err(cur.error("expected a value"));
        }
        if !spaced && !series_text.ends_with('}') {
            return Err(cur.error("expected a space before the value"));
        }
        let value_at = cur.at;
        let value_text = cur.take_while(|b| !b.is_ascii_whitespace());
        if value_text.is_empty() {
            return Err(cur.error("expected a value"));
        }
        let value = parse_float(value_text).ok_or_else(|| {
            Cursor {
                at: value_at,
                ..cur
            }
            .error(&format!("invalid value {value_text:?}"))
        })?;
        cur.skip_blanks();
        let mut timestamp_ms = None;
        if !cur.done() && cur.peek() != Some(b'#') {
            let ts_at = cur.at;
            let ts_text = cur.take_while(|b| !b.is_ascii_whitespace());
            let parsed = match self.format {
                Format::Text => ts_text.parse::<i64>().ok(),
                Format::OpenMetrics => parse_float(ts_text)
                    .filter(|s| s.is_finite())
                    .map(|s| (s * 1000.0).round() as i64),
            };
            timestamp_ms = Some(parsed.ok_or_else(|| {
                Cursor { at: ts_at, ..cur }.error(&format!("invalid timestamp {ts_text:?}"))
            })?);
            cur.skip_blanks();
        }
        if !cur.done() {
            if self.format == Format::OpenMetrics && cur.peek() == Some(b'#') {
                exemplar(&mut cur)?;
            } else {
                return Err(cur.error("unexpected text after the sample"));
            }
        }
        for (i, (n, _)) in self.labels.iter().enumerate() {
            if self.labels[..i].iter().any(|(m, _)| m == n) {
                return Err(Cursor {
                    at: series_start,
                    ..cur
                }
                .error(&format!("label name {n:?} is not unique")));
            }
        }
        Ok(SampleLine {
            name,
            labels: &self.labels,
            value,
            timestamp_ms,
            series_text,
        })
    }

    /// Reads `name="value", ...}` after the `{`. A quoted string without `=`
    /// names the metric (the UTF-8 form of Prometheus 3).
    fn label_pairs(
        &mut self,
        cur: &mut Cursor<'a>,
        name: &mut Option<Cow<'a, str>>,
    ) -> Result<(), ParseError> {
        loop {
            cur.skip_blanks();
            match cur.peek() {
                Some(b'}') => {
                    cur.at += 1;
                    return Ok(());
                }
                None => return Err(cur.error("unclosed label set: expected }")),
                _ => {}
            }
            let label = if cur.peek() == Some(b'"') {
                cur.quoted()?
            } else {
                Cow::Borrowed(cur.label_name()?)
            };
            cur.skip_blanks();
            if cur.peek() != Some(b'=') {
                let quoted_name = cur.s.as_bytes()[cur.at.saturating_sub(1)] == b'"';
                if quoted_name && name.is_none() && matches!(cur.peek(), Some(b',' | b'}')) {
                    *name = Some(label);
                } else {
                    return Err(cur.error(&format!("expected = after label name {label:?}")));
                }
            } else {
                cur.at += 1;
                cur.skip_blanks();
                if cur.peek() != Some(b'"') {
                    return Err(cur.error(&format!("expected a quoted value for label {label:?}")));
                }
                let value = cur.quoted()?;
                self.labels.push((label, value));
            }
            cur.skip_blanks();
            match cur.peek() {
                Some(b',') => cur.at += 1,
                Some(b'}') => {}
                _ => return Err(cur.error("expected , or } after a label")),
            }
        }
    }

    fn error_at(&self, offset: usize, message: &str) -> ParseError {
        let before = &self.body[..offset.min(self.body.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        ParseError {
            line,
            column: offset - line_start + 1,
            message: message.into(),
        }
    }
}

/// Parses and discards ` # {labels} value [timestamp]` (OpenMetrics).
fn exemplar(cur: &mut Cursor<'_>) -> Result<(), ParseError> {
    cur.at += 1;
    cur.skip_blanks();
    if cur.peek() != Some(b'{') {
        return Err(cur.error("expected { to start an exemplar"));
    }
    cur.at += 1;
    let mut runes = 0usize;
    loop {
        cur.skip_blanks();
        match cur.peek() {
            Some(b'}') => {
                cur.at += 1;
                break;
            }
            None => return Err(cur.error("unclosed exemplar labels")),
            _ => {}
        }
        let name = cur.label_name()?;
        cur.skip_blanks();
        if cur.peek() != Some(b'=') {
            return Err(cur.error("expected = in exemplar labels"));
        }
        cur.at += 1;
        cur.skip_blanks();
        let value = cur.quoted()?;
        runes += name.chars().count() + value.chars().count();
        cur.skip_blanks();
        if cur.peek() == Some(b',') {
            cur.at += 1;
        }
    }
    if runes > 128 {
        return Err(cur.error("exemplar labels are longer than 128 characters"));
    }
    cur.skip_blanks();
    let value = cur.take_while(|b| !b.is_ascii_whitespace());
    if parse_float(value).is_none() {
        return Err(cur.error(&format!("invalid exemplar value {value:?}")));
    }
    cur.skip_blanks();
    if !cur.done() {
        let ts = cur.take_while(|b| !b.is_ascii_whitespace());
        if parse_float(ts).is_none() {
            return Err(cur.error(&format!("invalid exemplar timestamp {ts:?}")));
        }
        cur.skip_blanks();
        if !cur.done() {
            return Err(cur.error("unexpected text after the exemplar"));
        }
    }
    Ok(())
}

/// A float as Go's `strconv.ParseFloat` reads the common cases: decimal,
/// exponent, `NaN`, `+Inf`/`-Inf` in any case.
fn parse_float(s: &str) -> Option<f64> {
    let first = *s.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.' | b'i' | b'I' | b'n' | b'N'))
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Resolves `\\`, `\n` and (in label values) `\"`; other backslashes stay,
/// as Prometheus leaves them.
fn unescape(s: &str, quotes: bool) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// A position inside one line.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    s: &'a str,
    at: usize,
    line: usize,
    body_offset: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at >= self.s.len()
    }

    /// Skips spaces and tabs; says whether there were any.
    fn skip_blanks(&mut self) -> bool {
        let start = self.at;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
        self.at > start
    }

    fn skip_one_blank(&mut self) -> bool {
        if matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.at;
        while self.peek().is_some_and(&keep) {
            self.at += 1;
        }
        &self.s[start..self.at]
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`, or a quoted name.
    fn metric_name(&mut self) -> Result<Cow<'a, str>, ParseError> {
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        let start = self.at;
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => self.at += 1,
            _ => return Err(self.error("expected a metric name")),
        }
        self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
        Ok(Cow::Borrowed(&self.s[start..self.at]))
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    fn label_name(&mut self) -> Result<&'a str, ParseError> {
        let start = self.at;
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => self.at += 1,
            _ => return Err(self.error("expected a label name")),
        }
        self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
        Ok(&self.s[start..self.at])
    }

    /// A `"..."` string; the cursor sits on the opening quote.
    fn quoted(&mut self) -> Result<Cow<'a, str>, ParseError> {
        let open = self.at;
        self.at += 1;
        let bytes = self.s.as_bytes();
        let start = self.at;
        while self.at < bytes.len() {
            match bytes[self.at] {
                b'"' => {
                    let raw = &self.s[start..self.at];
                    self.at += 1;
                    return Ok(unescape(raw, true));
                }
                b'\\' => self.at += 2,
                _ => self.at += 1,
            }
        }
        self.at = open;
        Err(self.error("unterminated quoted string"))
    }

    fn error(&self, message: &str) -> ParseError {
        let _ = self.body_offset;
        ParseError {
            line: self.line,
            column: self.at.min(self.s.len()) + 1,
            message: message.into(),
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry as text, for compact assertions.
    fn entries(body: &str, format: Format) -> Result<Vec<String>, ParseError> {
        let mut p = Parser::new(body, format);
        let mut out = Vec::new();
        while let Some(e) = p.next_entry()? {
            out.push(match e {
                Entry::Help { family, text } => format!("HELP {family} {text:?}"),
                Entry::Type { family, kind } => format!("TYPE {family} {kind}"),
                Entry::Unit { family, unit } => format!("UNIT {family} {unit}"),
                Entry::Sample(s) => {
                    let labels: Vec<String> =
                        s.labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
                    format!(
                        "{}{{{}}} {} {:?}",
                        s.name,
                        labels.join(","),
                        s.value,
                        s.timestamp_ms
                    )
                }
            });
        }
        Ok(out)
    }

    #[test]
    fn text_format_with_comments_escapes_and_timestamps() {
        let body = "# HELP http_requests_total The total \\\\ of\\n requests.\n\
# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\",}    3\t1395066363000\n\
\n\
# A normal comment\n\
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find \\\"file\\\"\\n\"} 1.458255915e9\n\
metric_without_timestamp_and_labels 12.47\n\
something_weird{problem=\"division by zero\"} +Inf -3982045\n\
nan_value NaN\n\
empty_braces{} -Inf\n";
        let got = entries(body, Format::Text).unwrap();
        assert_eq!(
            got,
            vec![
                "HELP http_requests_total \"The total \\\\ of\\n requests.\"",
                "TYPE http_requests_total counter",
                "http_requests_total{method=\"post\",code=\"200\"} 1027 Some(1395066363000)",
                "http_requests_total{method=\"post\",code=\"400\"} 3 Some(1395066363000)",
                "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find \\\"file\\\"\\n\"} 1458255915 None",
                "metric_without_timestamp_and_labels{} 12.47 None",
                "something_weird{problem=\"division by zero\"} inf Some(-3982045)",
                "nan_value{} NaN None",
                "empty_braces{} -inf None",
            ]
        );
    }

    #[test]
    fn series_text_is_the_name_and_labels_as_written() {
        let mut p = Parser::new("a{x=\"1\"} 2 3\nb 4\n", Format::Text);
        let Some(Entry::Sample(s)) = p.next_entry().unwrap() else {
            panic!("expected a sample")
        };
        assert_eq!(s.series_text, "a{x=\"1\"}");
        let Some(Entry::Sample(s)) = p.next_entry().unwrap() else {
            panic!("expected a sample")
        };
        assert_eq!(s.series_text, "b");
    }

    #[test]
    fn openmetrics_with_units_exemplars_and_eof() {
        let body = "# TYPE acme_http_router_request_seconds summary\n\
# UNIT acme_http_router_request_seconds seconds\n\
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.\n\
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0 1520879607.789\n\
foo_bucket{le=\"0.01\"} 0 # {trace_id=\"KOO5S4vxi0o\"} 0.009\n\
foo_bucket{le=\"+Inf\"} 17 # {trace_id=\"oHg5SJYRHA0\"} 9.8 1520879607.789\n\
# TYPE state stateset\n\
state{state=\"a\"} 1\n\
# EOF\n";
        let got = entries(body, Format::OpenMetrics).unwrap();
        assert_eq!(got.len(), 9, "{got:?}");
        assert_eq!(got[1], "UNIT acme_http_router_request_seconds seconds");
        assert_eq!(
            got[4],
            "acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283 Some(1520879607789)"
        );
        assert_eq!(got[6], "foo_bucket{le=\"+Inf\"} 17 None");
        assert_eq!(got[7], "TYPE state stateset");
    }

    #[test]
    fn openmetrics_needs_eof_and_nothing_after_it() {
        let e = entries("a 1\n", Format::OpenMetrics).unwrap_err();
        assert_eq!(e.message, "data does not end with # EOF");
        let e = entries("a 1\n# EOF\nb 2\n", Format::OpenMetrics).unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (3, "unexpected content after # EOF")
        );
        assert!(entries("# EOF", Format::OpenMetrics).unwrap().is_empty());
    }

    #[test]
    fn quoted_utf8_names() {
        let got = entries("{\"my.metric\",\"some.label\"=\"v\"} 1\n", Format::Text).unwrap();
        assert_eq!(got, vec!["my.metric{some.label=\"v\"} 1 None"]);
    }

    #[test]
    fn errors_name_line_column_and_problem() {
        let cases = [
            (
                "ok 1\nbad{a=\"1\" 2\n",
                2,
                11,
                "expected , or } after a label",
            ),
            (
                "x{a=1} 2\n",
                1,
                5,
                "expected a quoted value for label \"a\"",
            ),
            ("x 1\ny abc\n", 2, 3, "invalid value \"abc\""),
            ("x 1 1.5\n", 1, 5, "invalid timestamp \"1.5\""),
            ("x 1 2 3\n", 1, 7, "unexpected text after the sample"),
            (
                "x{a=\"1\",a=\"2\"} 1\n",
                1,
                1,
                "label name \"a\" is not unique",
            ),
            ("x{a=\"1} 1\n", 1, 5, "unterminated quoted string"),
            ("# TYPE x countr\n", 1, 10, "invalid metric type \"countr\""),
            ("0abc 1\n", 1, 1, "expected a metric name"),
            ("x\n", 1, 2, "expected a value"),
            ("{a=\"b\"} 1\n", 1, 1, "sample has no metric name"),
        ];
        for (body, line, column, message) in cases {
            let e = entries(body, Format::Text).unwrap_err();
            assert_eq!(
                (e.line, e.column, e.message.as_str()),
                (line, column, message),
                "{body:?}"
            );
        }
    }

    #[test]
    fn invalid_utf8_is_named() {
        let e = Parser::from_bytes(b"a 1\nb{x=\"\xff\"} 2\n", Format::Text)
            .err()
            .unwrap();
        assert_eq!((e.line, e.column), (2, 6));
    }

    #[test]
    fn content_negotiation() {
        assert_eq!(
            Format::from_content_type(Some(
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type(Some("text/plain; version=0.0.4")),
            Format::Text
        );
        assert_eq!(Format::from_content_type(None), Format::Text);
    }

    #[test]
    fn text_format_treats_unknown_comments_as_comments() {
        let got = entries(
            "#HELP x y\n# foo bar\n# TYPE x untyped\nx 1\n",
            Format::Text,
        )
        .unwrap();
        assert_eq!(got, vec!["TYPE x unknown", "x{} 1 None"]);
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// A label value with characters that need escaping.
        fn label_value() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just('a'),
                    Just('"'),
                    Just('\\'),
                    Just('\n'),
                    Just(' '),
                    Just('é'),
                    Just('}'),
                    Just(',')
                ],
                0..8,
            )
            .prop_map(|cs| cs.into_iter().collect())
        }

        fn escape(v: &str) -> String {
            v.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        }

        proptest! {
            /// Whatever a target sends, the parser answers with entries or
            /// an error and never panics or loops.
            #[test]
            fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200),
                                           openmetrics in any::<bool>()) {
                let format = if openmetrics { Format::OpenMetrics } else { Format::Text };
                if let Ok(mut p) = Parser::from_bytes(&body, format) {
                    let mut n = 0;
                    while let Ok(Some(_)) = p.next_entry() {
                        n += 1;
                        prop_assert!(n <= body.len() + 1);
                    }
                }
            }

            /// Mutations of a valid body never panic either.
            #[test]
            fn mutated_exposition_never_panics(cut in 0usize..120, byte in any::<u8>(), at in 0usize..120) {
                let mut body = b"# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\\\"\",m=\"\"} 1.5e3 1700000000000\nb NaN\n# EOF\n".to_vec();
                let at = at.min(body.len().saturating_sub(1));
                body[at] = byte;
                body.truncate(cut.max(1).min(body.len()));
                for format in [Format::Text, Format::OpenMetrics] {
                    if let Ok(mut p) = Parser::from_bytes(&body, format) {
                        while let Ok(Some(_)) = p.next_entry() {}
                    }
                }
            }

            /// Labels and values written as a target writes them read back
            /// exactly, in both formats.
            #[test]
            fn written_samples_read_back(values in proptest::collection::vec((label_value(), -1e300f64..1e300, proptest::option::of(0i64..4_000_000_000_000)), 1..6)) {
                for format in [Format::Text, Format::OpenMetrics] {
                    let mut body = String::new();
                    for (i, (v, x, ts)) in values.iter().enumerate() {
                        body.push_str(&format!("m_{i}{{a=\"{}\",b=\"{i}\"}} {x:?}", escape(v)));
                        if let Some(ts) = ts {
                            match format {
                                Format::Text => body.push_str(&format!(" {ts}")),
                                // OpenMetrics timestamps are seconds.
                                Format::OpenMetrics => body.push_str(&format!(" {}.{:03}", ts / 1000, ts % 1000)),
                            }
                        }
                        body.push('\n');
                    }
                    if format == Format::OpenMetrics {
                        body.push_str("# EOF\n");
                    }
                    let mut p = Parser::new(&body, format);
                    for (i, (v, x, ts)) in values.iter().enumerate() {
                        match p.next_entry() {
                            Ok(Some(Entry::Sample(s))) => {
                                prop_assert_eq!(s.name.as_ref(), format!("m_{i}"));
                                prop_assert_eq!(s.labels.len(), 2);
                                prop_assert_eq!(s.labels[0].1.as_ref(), v.as_str());
                                prop_assert_eq!(s.value, *x);
                                prop_assert_eq!(s.timestamp_ms, *ts);
                            }
                            other => prop_assert!(false, "{:?} in {:?}: {:?}", format, body, other),
                        }
                    }
                    prop_assert!(matches!(p.next_entry(), Ok(None)));
                }
            }
        }
    }
}
