//! The Prometheus remote_write 1.0 format, both sides: the agent encodes a
//! `WriteRequest { repeated TimeSeries timeseries = 1; repeated
//! MetricMetadata metadata = 3; }` by hand (three message types do not
//! justify a protobuf code generator), snappy block-compressed as the
//! protocol requires; the server decodes it.
//!
//! The encoder takes any series type that can list its label pairs and
//! samples, and the decoder builds the caller's own sample type, so
//! neither side copies its series into a type of this crate.

use crate::names::series_notation;
use crate::protobuf::{
    as_str, field_len, put_bytes, put_len_prefixed, put_varint, varint_len, Reader, Value,
    WireError,
};

/// Decompressed payloads larger than this are refused before allocation.
pub const MAX_DECOMPRESSED_BYTES: usize = 512 << 20;

/// One sample as the wire carries it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WireSample {
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A series the encoder can send: label pairs sorted by name (the
/// protocol asks for sorted labels) and samples in time order.
pub trait SeriesToSend {
    fn label_pairs(&self) -> impl Iterator<Item = (&str, &str)>;
    fn samples(&self) -> &[WireSample];
}

/// Appends a `WriteRequest` holding `series` to `out`, uncompressed.
pub fn encode_write_request<'a, S: SeriesToSend + 'a>(
    series: impl IntoIterator<Item = &'a S>,
    out: &mut Vec<u8>,
) {
    for s in series {
        // Sizes first, so each message is written once, straight into `out`.
        let label_len = |n: &str, v: &str| field_len(n.len()) + field_len(v.len());
        let sample_len = |x: &WireSample| 9 + 1 + varint_len(x.timestamp_ms as u64);
        let ts_len: usize = s
            .label_pairs()
            .map(|(n, v)| field_len(label_len(n, v)))
            .sum::<usize>()
            + s.samples()
                .iter()
                .map(|x| field_len(sample_len(x)))
                .sum::<usize>();
        put_len_prefixed(out, 1, ts_len);
        for (n, v) in s.label_pairs() {
            put_len_prefixed(out, 1, label_len(n, v));
            put_bytes(out, 1, n.as_bytes());
            put_bytes(out, 2, v.as_bytes());
        }
        for x in s.samples() {
            put_len_prefixed(out, 2, sample_len(x));
            out.push(1 << 3 | 1);
            out.extend_from_slice(&x.value.to_bits().to_le_bytes());
            out.push(2 << 3);
            put_varint(out, x.timestamp_ms as u64);
        }
    }
}

/// The body of a remote_write POST: the request, snappy-compressed.
pub fn encode_body<'a, S: SeriesToSend + 'a>(series: impl IntoIterator<Item = &'a S>) -> Vec<u8> {
    let mut raw = Vec::new();
    encode_write_request(series, &mut raw);
    crate::snappy::compress(&raw)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RemoteWriteError {
    #[error("body is not valid snappy (block format): {0}")]
    Snappy(String),
    #[error("decompressed body would be {0} bytes, over the limit of {MAX_DECOMPRESSED_BYTES}")]
    TooLarge(usize),
    #[error("malformed protobuf WriteRequest: {0}")]
    Protobuf(String),
    #[error("malformed protobuf in timeseries #{index}{labels}: {detail}")]
    Series {
        index: usize,
        labels: String,
        detail: String,
    },
    #[error("timeseries #{index} ({labels}) carries native histogram samples, which this server does not store yet")]
    NativeHistograms { index: usize, labels: String },
}

/// A decoded write, borrowing label strings from the decompressed body.
/// Labels and samples of all series sit in two flat arrays, so decoding a
/// request allocates a handful of times, not once per label. `S` is the
/// caller's sample type, built as each sample is read.
#[derive(Debug)]
pub struct DecodedWrite<'a, S> {
    labels: Vec<(&'a str, &'a str)>,
    samples: Vec<S>,
    /// Per series: end of its labels and end of its samples in the arrays.
    ends: Vec<(u32, u32)>,
    pub exemplars_dropped: usize,
    /// `WriteRequest.metadata` (field 3): what senders say about each metric family.
    pub metadata: Vec<MetadataEntry<'a>>,
}

/// One `MetricMetadata` of a write, borrowed from the body.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MetadataEntry<'a> {
    /// `MetricType` enum value (0 = unknown, 1 = counter, ...).
    pub kind: u64,
    pub metric_family_name: &'a str,
    pub help: &'a str,
    pub unit: &'a str,
}

impl<'a, S> DecodedWrite<'a, S> {
    /// Each series: its label pairs (sorted by name, no empty values) and
    /// its samples as sent.
    pub fn series(&self) -> impl ExactSizeIterator<Item = (&[(&'a str, &'a str)], &[S])> + '_ {
        let mut l0 = 0usize;
        let mut s0 = 0usize;
        self.ends.iter().map(move |&(l1, s1)| {
            let (l1, s1) = (l1 as usize, s1 as usize);
            let one = (&self.labels[l0..l1], &self.samples[s0..s1]);
            (l0, s0) = (l1, s1);
            one
        })
    }
}

/// Inflates a snappy block, refusing one that claims more than
/// [`MAX_DECOMPRESSED_BYTES`] before allocating.
pub fn decompress(body: &[u8]) -> Result<Vec<u8>, RemoteWriteError> {
    let len =
        snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    if len > MAX_DECOMPRESSED_BYTES {
        return Err(RemoteWriteError::TooLarge(len));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| RemoteWriteError::Snappy(e.to_string()))
}

/// Decodes an uncompressed `WriteRequest`; `sample(timestamp_ms, value)`
/// builds each sample in the caller's type.
pub fn decode_uncompressed<S>(
    buf: &[u8],
    sample: impl Fn(i64, f64) -> S + Copy,
) -> Result<DecodedWrite<'_, S>, RemoteWriteError> {
    // Sized for node_exporter-like series (about 14 bytes per label and
    // 120 per series), so the arrays rarely grow while decoding.
    let mut out = DecodedWrite {
        labels: Vec::with_capacity(buf.len() / 14),
        samples: Vec::with_capacity(buf.len() / 120),
        ends: Vec::with_capacity(buf.len() / 120),
        exemplars_dropped: 0,
        metadata: Vec::new(),
    };
    let mut r = Reader::new(buf);
    while let Some((field, value)) = r
        .next_field()
        .map_err(|e| RemoteWriteError::Protobuf(e.0))?
    {
        // Field 3 is metadata; other unknown fields are skipped as protobuf requires.
        if field == 3 {
            let index = out.metadata.len();
            let Value::Bytes(b) = value else {
                return Err(RemoteWriteError::Protobuf(format!(
                    "metadata #{index} has the wrong wire type"
                )));
            };
            let m = decode_metadata(b)
                .map_err(|e| RemoteWriteError::Protobuf(format!("metadata #{index}: {}", e.0)))?;
            out.metadata.push(m);
            continue;
        }
        if field != 1 {
            continue;
        }
        let index = out.ends.len();
        let Value::Bytes(ts) = value else {
            return Err(RemoteWriteError::Protobuf(format!(
                "timeseries #{index} has the wrong wire type"
            )));
        };
        decode_series(ts, index, &mut out, sample)?;
    }
    Ok(out)
}

/// ` (name{a="b"})` for an error, from labels not yet sorted.
fn labels_for_error(labels: &[(&str, &str)]) -> String {
    let mut sorted = labels.to_vec();
    sorted.sort_unstable();
    series_notation(sorted.iter().copied())
}

#[inline]
fn decode_series<'a, S>(
    buf: &'a [u8],
    index: usize,
    out: &mut DecodedWrite<'a, S>,
    sample: impl Fn(i64, f64) -> S,
) -> Result<(), RemoteWriteError> {
    let label_start = out.labels.len();
    let mut histograms = false;
    let mut r = Reader::new(buf);
    let fail = |labels: &[(&str, &str)], detail: WireError| RemoteWriteError::Series {
        index,
        labels: if labels.is_empty() {
            String::new()
        } else {
            format!(" ({})", labels_for_error(labels))
        },
        detail: detail.0,
    };
    loop {
        let next = r
            .next_field()
            .map_err(|e| fail(&out.labels[label_start..], e))?;
        let Some((field, value)) = next else { break };
        match (field, value) {
            (1, Value::Bytes(b)) => {
                let (n, v) = decode_label(b).map_err(|e| fail(&out.labels[label_start..], e))?;
                // An empty value means "no such label", as in Prometheus.
                if !v.is_empty() {
                    out.labels.push((n, v));
                }
            }
            (2, Value::Bytes(b)) => {
                let (t, v) = decode_sample(b).map_err(|e| fail(&out.labels[label_start..], e))?;
                out.samples.push(sample(t, v));
            }
            (3, Value::Bytes(_)) => out.exemplars_dropped += 1,
            (4, Value::Bytes(_)) => histograms = true,
            (1..=4, _) => {
                return Err(fail(
                    &out.labels[label_start..],
                    WireError(format!("field {field} has the wrong wire type")),
                ))
            }
            _ => {}
        }
    }
    let labels = &mut out.labels[label_start..];
    if !labels.windows(2).all(|w| w[0] <= w[1]) {
        labels.sort_unstable();
    }
    if histograms {
        return Err(RemoteWriteError::NativeHistograms {
            index,
            labels: labels_for_error(labels),
        });
    }
    out.ends
        .push((out.labels.len() as u32, out.samples.len() as u32));
    Ok(())
}

#[inline]
fn decode_label(buf: &[u8]) -> Result<(&str, &str), WireError> {
    let mut r = Reader::new(buf);
    let (mut name, mut value) = ("", "");
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => name = as_str(&v, "label name")?,
            2 => value = as_str(&v, "label value")?,
            _ => {}
        }
    }
    Ok((name, value))
}

fn decode_metadata(buf: &[u8]) -> Result<MetadataEntry<'_>, WireError> {
    let mut r = Reader::new(buf);
    let mut m = MetadataEntry::default();
    while let Some((field, v)) = r.next_field()? {
        match (field, v) {
            (1, Value::Varint(k)) => m.kind = k,
            (1, _) => return Err(WireError("metadata type has the wrong wire type".into())),
            (2, v) => m.metric_family_name = as_str(&v, "metric family name")?,
            (4, v) => m.help = as_str(&v, "help")?,
            (5, v) => m.unit = as_str(&v, "unit")?,
            _ => {}
        }
    }
    Ok(m)
}

/// (timestamp in ms, value)
#[inline]
fn decode_sample(buf: &[u8]) -> Result<(i64, f64), WireError> {
    let mut r = Reader::new(buf);
    let (mut v, mut t) = (0.0, 0i64);
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Value::Fixed64(bits)) => v = f64::from_bits(bits),
            (2, Value::Varint(x)) => t = x as i64,
            (1 | 2, _) => {
                return Err(WireError(format!(
                    "sample field {field} has the wrong wire type"
                )))
            }
            _ => {}
        }
    }
    Ok((t, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Series {
        labels: Vec<(&'static str, &'static str)>,
        samples: Vec<WireSample>,
    }

    impl SeriesToSend for Series {
        fn label_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
            self.labels.iter().copied()
        }
        fn samples(&self) -> &[WireSample] {
            &self.samples
        }
    }

    fn example() -> Vec<Series> {
        vec![Series {
            labels: vec![("__name__", "up"), ("job", "node")],
            samples: vec![
                WireSample {
                    timestamp_ms: 1_700_000_000_000,
                    value: 1.0,
                },
                WireSample {
                    timestamp_ms: -1,
                    value: f64::from_bits(0x7ff0_0000_0000_0002),
                },
            ],
        }]
    }

    fn pair(t: i64, v: f64) -> (i64, u64) {
        (t, v.to_bits())
    }

    #[test]
    fn known_bytes() {
        let s = Series {
            labels: vec![("__name__", "up")],
            samples: vec![WireSample {
                timestamp_ms: 1,
                value: 1.0,
            }],
        };
        let mut out = Vec::new();
        encode_write_request([&s], &mut out);
        let label = [
            0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 0x12, 0x02, b'u', b'p',
        ];
        let mut want = vec![0x0a, 2 + 14 + 2 + 11, 0x0a, 14];
        want.extend_from_slice(&label);
        want.extend_from_slice(&[0x12, 11, 0x09]);
        want.extend_from_slice(&1.0f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0x01]);
        assert_eq!(out, want);
        let body = encode_body([&s]);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        assert_eq!(raw, want);
    }

    #[test]
    fn roundtrip_through_snappy() {
        let body = encode_body(&example());
        let buf = decompress(&body).unwrap();
        let got = decode_uncompressed(&buf, pair).unwrap();
        let series: Vec<_> = got.series().collect();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].0, &example()[0].labels[..]);
        let want: Vec<_> = example()[0]
            .samples
            .iter()
            .map(|s| pair(s.timestamp_ms, s.value))
            .collect();
        assert_eq!(series[0].1, &want[..]);
    }

    #[test]
    fn metadata_is_decoded_and_bad_metadata_named() {
        fn len_field(out: &mut Vec<u8>, field: u8, body: &[u8]) {
            out.push(field << 3 | 2);
            out.push(body.len() as u8);
            out.extend_from_slice(body);
        }
        let mut meta = vec![1 << 3, 1]; // type = COUNTER
        len_field(&mut meta, 2, b"http_requests_total");
        len_field(&mut meta, 4, b"Requests served.");
        len_field(&mut meta, 5, b"requests");
        let mut body = Vec::new();
        encode_write_request(&example(), &mut body);
        len_field(&mut body, 3, &meta);
        let d = decode_uncompressed(&body, pair).unwrap();
        assert_eq!(d.series().len(), 1);
        assert_eq!(
            d.metadata,
            vec![MetadataEntry {
                kind: 1,
                metric_family_name: "http_requests_total",
                help: "Requests served.",
                unit: "requests",
            }]
        );
        let mut bad = Vec::new();
        len_field(&mut bad, 3, &[2 << 3 | 2, 1, 0xff]);
        let e = decode_uncompressed(&bad, pair).unwrap_err().to_string();
        assert!(e.contains("metadata #0") && e.contains("UTF-8"), "{e}");
    }

    /// A `TimeSeries`' label fields, in the order given (short strings only).
    fn labels_as_sent(labels: &[(&str, &str)]) -> Vec<u8> {
        let mut ts = Vec::new();
        for (n, v) in labels {
            let mut l = vec![0x0a, n.len() as u8];
            l.extend_from_slice(n.as_bytes());
            l.extend_from_slice(&[0x12, v.len() as u8]);
            l.extend_from_slice(v.as_bytes());
            ts.extend_from_slice(&[0x0a, l.len() as u8]);
            ts.extend_from_slice(&l);
        }
        ts
    }

    #[test]
    fn unsorted_labels_are_sorted_and_empty_values_dropped() {
        // One series whose labels arrive unsorted, one with an empty value.
        let ts = labels_as_sent(&[("z", "1"), ("__name__", "up"), ("e", "")]);
        let mut req = vec![0x0a, ts.len() as u8];
        req.extend_from_slice(&ts);
        let got = decode_uncompressed(&req, pair).unwrap();
        let pairs = got.series().next().unwrap().0.to_vec();
        assert_eq!(pairs, [("__name__", "up"), ("z", "1")]);
    }

    #[test]
    fn errors_name_the_series_in_prometheus_notation() {
        let mut raw = Vec::new();
        encode_write_request(&example(), &mut raw);
        // Cut inside the sample: the series (with its labels) is named.
        raw.truncate(raw.len() - 3);
        let e = decode_uncompressed(&raw, pair).unwrap_err().to_string();
        assert!(
            e.contains("length-delimited field runs past the end"),
            "{e}"
        );
        // A native histogram (field 4) in a series with unsorted labels.
        let mut ts = labels_as_sent(&[("job", "a\"b"), ("__name__", "h")]);
        ts.extend_from_slice(&[4 << 3 | 2, 0]);
        let mut req = vec![0x0a, ts.len() as u8];
        req.extend_from_slice(&ts);
        let e = decode_uncompressed(&req, pair).unwrap_err();
        assert_eq!(
            e,
            RemoteWriteError::NativeHistograms {
                index: 0,
                labels: r#"h{job="a\"b"}"#.into()
            }
        );
    }

    #[test]
    fn bad_snappy_is_named() {
        assert!(matches!(
            decompress(b"\xff\xff\xff\xff\xff"),
            Err(RemoteWriteError::Snappy(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_uncompressed(&bytes, pair);
            let _ = decompress(&bytes);
        }
    }
}
