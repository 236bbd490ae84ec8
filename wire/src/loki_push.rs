//! Loki's push API, both sides. The agent encodes a `logproto.PushRequest`
//! protobuf (streams of `{labels}` and timestamped lines), snappy-compressed,
//! as Promtail sends it to `POST /loki/api/v1/push`; the server decodes that
//! and the JSON form scripts send
//! (`{"streams":[{"stream":{...},"values":[["<ns>","<line>"],...]}]}`).
//! Both decode to the same streams; errors name the stream and entry that
//! is wrong. Lines that are not UTF-8 are kept, with replacement characters.

use crate::names::{is_valid_label_name, series_notation};
use crate::protobuf::{
    as_str, field_len, put_bytes, put_len_prefixed, put_varint_field, varint_field_len, Reader,
    Value, WireError,
};

/// One log line as pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEntry {
    /// Nanoseconds since the epoch.
    pub time_ns: i64,
    pub line: String,
}

/// A stream the encoder can send: its label pairs sorted by name and
/// its entries, oldest first.
pub trait StreamToSend {
    fn label_pairs(&self) -> impl Iterator<Item = (&str, &str)>;
    fn entries(&self) -> &[PushEntry];
}

/// `{a="x", b="y"}`, as Loki reads a stream's labels (values escaped as
/// in PromQL strings).
pub fn label_string<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("{");
    for (i, (n, v)) in labels.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(n);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// Seconds and nanoseconds of a `google.protobuf.Timestamp` (nanos never
/// negative, as the type requires).
fn split_time(ns: i64) -> (i64, i64) {
    (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000))
}

fn timestamp_len(ns: i64) -> usize {
    let (s, n) = split_time(ns);
    let mut len = 0;
    if s != 0 {
        len += varint_field_len(s as u64);
    }
    if n != 0 {
        len += varint_field_len(n as u64);
    }
    len
}

fn entry_len(e: &PushEntry) -> usize {
    field_len(timestamp_len(e.time_ns)) + field_len(e.line.len())
}

/// The uncompressed `PushRequest`.
pub fn encode_push_request<S: StreamToSend>(streams: &[S], out: &mut Vec<u8>) {
    for s in streams {
        let labels = label_string(s.label_pairs());
        let stream_len = field_len(labels.len())
            + s.entries()
                .iter()
                .map(|e| field_len(entry_len(e)))
                .sum::<usize>();
        put_len_prefixed(out, 1, stream_len);
        put_bytes(out, 1, labels.as_bytes());
        for e in s.entries() {
            put_len_prefixed(out, 2, entry_len(e));
            put_len_prefixed(out, 1, timestamp_len(e.time_ns));
            let (secs, nanos) = split_time(e.time_ns);
            if secs != 0 {
                put_varint_field(out, 1, secs as u64);
            }
            if nanos != 0 {
                put_varint_field(out, 2, nanos as u64);
            }
            put_bytes(out, 2, e.line.as_bytes());
        }
    }
}

/// The body of a push: the request, snappy-compressed.
pub fn encode_push_body<S: StreamToSend>(streams: &[S]) -> Vec<u8> {
    let mut raw = Vec::new();
    encode_push_request(streams, &mut raw);
    crate::snappy::compress(&raw)
}

/// Decompressed payloads larger than this are refused before allocation.
pub const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

/// One pushed stream: its labels (sorted by name) and entries as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedStream {
    pub labels: Vec<(String, String)>,
    /// (nanoseconds since the epoch, line)
    pub entries: Vec<(i64, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushError {
    #[error("body is not valid snappy (block format): {0}")]
    Snappy(String),
    #[error("decompressed body would be {0} bytes, over the limit of {MAX_DECOMPRESSED_BYTES}")]
    TooLarge(usize),
    #[error("malformed protobuf PushRequest: {0}")]
    Protobuf(String),
    #[error("malformed JSON push body: {0}")]
    Json(String),
    #[error("stream #{index}: {detail}")]
    Stream { index: usize, detail: String },
    #[error("stream #{stream} {labels}, entry #{entry}: {detail}")]
    Entry {
        stream: usize,
        labels: String,
        entry: usize,
        detail: String,
    },
}

/// Reads a stream's label string, `{name="value", ...}`, as Loki does
/// (values are Go-quoted strings); names must be valid label names and
/// appear once.
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let t = text.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("labels {text:?} must be of the form {{name=\"value\", ...}}"))?;
    let mut out: Vec<(String, String)> = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("labels {text:?}: expected name=\"value\" at {rest:?}"))?;
        let name = rest[..eq].trim();
        if !is_valid_label_name(name) {
            return Err(format!(
                "labels {text:?}: {name:?} is not a valid label name"
            ));
        }
        let (value, after) = unquote(rest[eq + 1..].trim_start()).ok_or_else(|| {
            format!("labels {text:?}: the value of {name:?} is not a quoted string")
        })?;
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("labels {text:?}: duplicate label name {name:?}"));
        }
        out.push((name.to_string(), value));
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return Err(format!("labels {text:?}: expected ',' or '}}' at {rest:?}")),
        }
    }
    if out.is_empty() {
        return Err(format!(
            "labels {text:?}: a stream needs at least one label"
        ));
    }
    out.sort();
    Ok(out)
}

/// A double-quoted string with Go's common escapes at the start of `s`,
/// and what follows it.
fn unquote(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '\\' => '\\',
                    '"' => '"',
                    '\'' => '\'',
                    'u' => {
                        let hex: String = (0..4)
                            .filter_map(|_| chars.next().map(|(_, c)| c))
                            .collect();
                        char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                    }
                    _ => return None,
                });
            }
            c => out.push(c),
        }
    }
    None
}

fn wire(e: WireError) -> String {
    e.0
}

/// Decodes a snappy-compressed protobuf `PushRequest`.
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<PushedStream>, PushError> {
    let len = snap::raw::decompress_len(body).map_err(|e| PushError::Snappy(e.to_string()))?;
    if len > MAX_DECOMPRESSED_BYTES {
        return Err(PushError::TooLarge(len));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| PushError::Snappy(e.to_string()))?;
    let mut out = Vec::new();
    let mut top = Reader::new(&raw);
    while let Some((field, v)) = top.next_field().map_err(|e| PushError::Protobuf(e.0))? {
        let (1, Value::Bytes(stream)) = (field, v) else {
            continue;
        };
        let index = out.len();
        let bad = |detail: String| PushError::Stream { index, detail };
        let mut labels_text = None;
        let mut entries = Vec::new();
        let mut r = Reader::new(stream);
        while let Some((f, v)) = r.next_field().map_err(|e| bad(e.0))? {
            match (f, v) {
                (1, v) => labels_text = Some(as_str(&v, "labels").map_err(|e| bad(wire(e)))?),
                (2, Value::Bytes(entry)) => entries.push(entry),
                _ => {}
            }
        }
        let labels_text = labels_text.ok_or_else(|| bad("no labels".into()))?;
        let labels = parse_labels(labels_text).map_err(bad)?;
        let mut decoded = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let bad_entry = |detail: String| PushError::Entry {
                stream: index,
                labels: labels_text.to_string(),
                entry: i,
                detail,
            };
            let (mut secs, mut nanos, mut line) = (0i64, 0i64, String::new());
            let mut e = Reader::new(entry);
            while let Some((f, v)) = e.next_field().map_err(|e| bad_entry(e.0))? {
                match (f, v) {
                    (1, Value::Bytes(ts)) => {
                        let mut t = Reader::new(ts);
                        while let Some((tf, tv)) = t.next_field().map_err(|e| bad_entry(e.0))? {
                            match (tf, tv) {
                                (1, Value::Varint(s)) => secs = s as i64,
                                (2, Value::Varint(n)) => nanos = i64::from(n as i32),
                                _ => {}
                            }
                        }
                    }
                    (2, Value::Bytes(b)) => line = String::from_utf8_lossy(b).into_owned(),
                    _ => {}
                }
            }
            if !(0..1_000_000_000).contains(&nanos) {
                return Err(bad_entry(format!("timestamp nanos {nanos} out of range")));
            }
            let ns = secs
                .checked_mul(1_000_000_000)
                .and_then(|s| s.checked_add(nanos))
                .ok_or_else(|| bad_entry(format!("timestamp {secs} s out of range")))?;
            decoded.push((ns, line));
        }
        out.push(PushedStream {
            labels,
            entries: decoded,
        });
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(serde::Deserialize)]
struct JsonStream {
    stream: std::collections::BTreeMap<String, String>,
    values: Vec<Vec<serde_json::Value>>,
}

/// Decodes the JSON push body.
pub fn decode_json(body: &[u8]) -> Result<Vec<PushedStream>, PushError> {
    let push: JsonPush =
        serde_json::from_slice(body).map_err(|e| PushError::Json(e.to_string()))?;
    let mut out = Vec::with_capacity(push.streams.len());
    for (index, s) in push.streams.into_iter().enumerate() {
        let bad = |detail: String| PushError::Stream { index, detail };
        if s.stream.is_empty() {
            return Err(bad("a stream needs at least one label".into()));
        }
        for name in s.stream.keys() {
            if !is_valid_label_name(name) {
                return Err(bad(format!("{name:?} is not a valid label name")));
            }
        }
        let labels: Vec<(String, String)> = s.stream.into_iter().collect();
        // As the stream is stored: a label with an empty value is no label.
        let labels_text = series_notation(
            labels
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        let mut entries = Vec::with_capacity(s.values.len());
        for (i, v) in s.values.into_iter().enumerate() {
            let bad_entry = |detail: &str| PushError::Entry {
                stream: index,
                labels: labels_text.clone(),
                entry: i,
                detail: detail.to_string(),
            };
            let (Some(ts), Some(line)) = (v.first(), v.get(1)) else {
                return Err(bad_entry("want [\"<unix nanoseconds>\", \"<line>\"]"));
            };
            let ns: i64 = ts
                .as_str()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| bad_entry("the timestamp must be a string of Unix nanoseconds"))?;
            let line = line
                .as_str()
                .ok_or_else(|| bad_entry("the line must be a string"))?;
            entries.push((ns, line.to_string()));
        }
        out.push(PushedStream { labels, entries });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Stream {
        labels: Vec<(&'static str, &'static str)>,
        entries: Vec<PushEntry>,
    }

    impl StreamToSend for Stream {
        fn label_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
            self.labels.iter().copied()
        }
        fn entries(&self) -> &[PushEntry] {
            &self.entries
        }
    }

    /// A minimal protobuf reader: (field, wire type, varint or bytes).
    fn fields(mut b: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
        fn varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    break;
                }
            }
            v
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = varint(&mut b);
            let (field, wire) = (key >> 3, key & 7);
            match wire {
                0 => out.push((field, wire, varint(&mut b).to_le_bytes().to_vec())),
                2 => {
                    let len = varint(&mut b) as usize;
                    out.push((field, wire, b[..len].to_vec()));
                    b = &b[len..];
                }
                _ => panic!("unexpected wire type {wire}"),
            }
        }
        out
    }

    #[test]
    fn a_push_request_as_loki_reads_it() {
        // Labels sorted by name, as the agent hands them over.
        let streams = vec![Stream {
            labels: vec![("msg", "a\"b"), ("namespace", "shop"), ("pod", "web-0")],
            entries: vec![
                PushEntry {
                    time_ns: 1_796_294_960_123_456_789,
                    line: "GET / 200".into(),
                },
                PushEntry {
                    time_ns: 0,
                    line: String::new(),
                },
            ],
        }];
        let body = encode_push_body(&streams);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let top = fields(&raw);
        assert_eq!(top.len(), 1);
        let stream = fields(&top[0].2);
        assert_eq!(stream[0].0, 1);
        assert_eq!(
            String::from_utf8(stream[0].2.clone()).unwrap(),
            r#"{msg="a\"b", namespace="shop", pod="web-0"}"#
        );
        let entry = fields(&stream[1].2);
        let ts = fields(&entry[0].2);
        let n = |v: &[u8]| u64::from_le_bytes(v.try_into().unwrap());
        assert_eq!((ts[0].0, n(&ts[0].2)), (1, 1_796_294_960));
        assert_eq!((ts[1].0, n(&ts[1].2)), (2, 123_456_789));
        assert_eq!(entry[1].2, b"GET / 200");
        // The epoch itself: an empty timestamp, an empty line.
        let zero = fields(&stream[2].2);
        assert!(zero[0].2.is_empty());
        assert!(zero[1].2.is_empty());
    }

    #[test]
    fn times_before_the_epoch_keep_nanos_positive() {
        assert_eq!(split_time(-1), (-1, 999_999_999));
    }

    fn pair(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn label_strings_as_loki_reads_them() {
        assert_eq!(
            parse_labels(r#"{pod="web-0", namespace="shop"}"#).unwrap(),
            [pair("namespace", "shop"), pair("pod", "web-0")]
        );
        assert_eq!(
            parse_labels(r#"{msg="a\"b\\c\n\u00e9"}"#).unwrap(),
            [pair("msg", "a\"b\\c\né")]
        );
        for (bad, why) in [
            ("pod=\"x\"", "must be of the form"),
            ("{}", "at least one label"),
            ("{1a=\"x\"}", "not a valid label name"),
            ("{a=x}", "not a quoted string"),
            ("{a=\"x\" b=\"y\"}", "expected ','"),
            ("{a=\"x\", a=\"y\"}", "duplicate label name"),
        ] {
            let e = parse_labels(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn encoded_pushes_decode() {
        let streams = vec![Stream {
            labels: vec![("msg", "q\"x"), ("pod", "web-0")],
            entries: vec![
                PushEntry {
                    time_ns: 1_796_294_960_123_456_789,
                    line: "GET / 200".into(),
                },
                PushEntry {
                    time_ns: 5,
                    line: String::new(),
                },
            ],
        }];
        let got = decode_protobuf(&encode_push_body(&streams)).unwrap();
        assert_eq!(
            got,
            [PushedStream {
                labels: vec![pair("msg", "q\"x"), pair("pod", "web-0")],
                entries: vec![
                    (1_796_294_960_123_456_789, "GET / 200".into()),
                    (5, String::new())
                ],
            }]
        );
    }

    #[test]
    fn json_pushes_decode_and_errors_name_the_entry() {
        let body = br#"{"streams":[{"stream":{"job":"x"},"values":[["1796294960000000001","hello"],["2","bye",{"trace_id":"t"}]]}]}"#;
        let got = decode_json(body).unwrap();
        assert_eq!(
            got[0].entries,
            [
                (1_796_294_960_000_000_001, "hello".into()),
                (2, "bye".into())
            ]
        );
        let e = decode_json(br#"{"streams":[{"stream":{"job":"x"},"values":[["soon","x"]]}]}"#)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("entry #0: the timestamp must be a string of Unix nanoseconds"),
            "{e}"
        );
        let e = decode_json(
            br#"{"streams":[{"stream":{"job":"x","env":""},"values":[["soon","x"]]}]}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with(r#"stream #0 {job="x"}, entry #0"#),
            "{e}"
        );
        let e = decode_json(br#"{"streams":[{"stream":{},"values":[]}]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "stream #0: a stream needs at least one label"
        );
        assert!(decode_json(b"not json")
            .unwrap_err()
            .to_string()
            .starts_with("malformed JSON push body"));
        assert!(decode_protobuf(b"\xff\xff\xff")
            .unwrap_err()
            .to_string()
            .starts_with("body is not valid snappy"));
    }

    proptest! {
        #[test]
        fn any_body_decodes_or_fails_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_json(&body);
            let _ = decode_protobuf(&body);
            let raw = snap::raw::Encoder::new().compress_vec(&body).unwrap_or_default();
            let _ = decode_protobuf(&raw);
        }

        #[test]
        fn any_label_text_parses_or_fails_without_panicking(text in ".{0,60}") {
            let _ = parse_labels(&text);
        }
    }
}
