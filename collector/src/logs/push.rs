//! Loki's push API, sending side: a `logproto.PushRequest` protobuf
//! (streams of `{labels}` and timestamped lines), snappy-compressed, as
//! Promtail sends it to `POST /loki/api/v1/push`.

use crate::labels::Labels;
use vigil_wire::protobuf::{
    field_len, put_bytes, put_len_prefixed, put_varint_field, varint_field_len,
};
use vigil_wire::snappy::compress as snappy;

/// One log line as pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEntry {
    /// Nanoseconds since the epoch.
    pub time_ns: i64,
    pub line: String,
}

/// A stream (one label set) and its entries, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushStream {
    pub labels: Labels,
    pub entries: Vec<PushEntry>,
}

/// `{a="x", b="y"}`, as Loki reads a stream's labels (values escaped as
/// in PromQL strings).
pub fn label_string(labels: &Labels) -> String {
    let mut out = String::from("{");
    for (i, (n, v)) in labels.iter().enumerate() {
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
pub fn encode_push_request(streams: &[PushStream], out: &mut Vec<u8>) {
    for s in streams {
        let labels = label_string(&s.labels);
        let stream_len = field_len(labels.len())
            + s.entries
                .iter()
                .map(|e| field_len(entry_len(e)))
                .sum::<usize>();
        put_len_prefixed(out, 1, stream_len);
        put_bytes(out, 1, labels.as_bytes());
        for e in &s.entries {
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
pub fn encode_push_body(streams: &[PushStream]) -> Vec<u8> {
    let mut raw = Vec::new();
    encode_push_request(streams, &mut raw);
    snappy(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let streams = vec![PushStream {
            labels: Labels::from_pairs([("pod", "web-0"), ("namespace", "shop"), ("msg", "a\"b")]),
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
}
