//! The Prometheus remote_write 1.0 payload: snappy-compressed protobuf
//! `WriteRequest { repeated TimeSeries timeseries = 1; ... }`.

use tsdb::head::SeriesInput;
#[cfg(test)]
use tsdb::SeriesSamples;
use tsdb::{Label, LabelSet, LabelsRef, Sample};
use vigil_wire::protobuf::{as_str, Reader, Value, WireError};

/// Decompressed payloads larger than this are refused before allocation.
pub const MAX_DECOMPRESSED_BYTES: usize = 512 << 20;

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
/// request allocates a handful of times, not once per label.
#[derive(Debug, Default)]
pub struct DecodedWrite<'a> {
    labels: Vec<(&'a str, &'a str)>,
    samples: Vec<Sample>,
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

impl<'a> DecodedWrite<'a> {
    /// The series as the store takes them.
    pub fn inputs(&self) -> Vec<SeriesInput<'_>> {
        let mut out = Vec::with_capacity(self.ends.len());
        let (mut l0, mut s0) = (0usize, 0usize);
        for &(l1, s1) in &self.ends {
            let (l1, s1) = (l1 as usize, s1 as usize);
            out.push(SeriesInput {
                labels: LabelsRef::from_sorted(&self.labels[l0..l1]),
                samples: &self.samples[s0..s1],
            });
            (l0, s0) = (l1, s1);
        }
        out
    }
}

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

pub fn decode_uncompressed(buf: &[u8]) -> Result<DecodedWrite<'_>, RemoteWriteError> {
    // Sized for node_exporter-like series (about 14 bytes per label and
    // 120 per series), so the arrays rarely grow while decoding.
    let mut out = DecodedWrite {
        labels: Vec::with_capacity(buf.len() / 14),
        samples: Vec::with_capacity(buf.len() / 120),
        ends: Vec::with_capacity(buf.len() / 120),
        ..DecodedWrite::default()
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
        decode_series(ts, index, &mut out)?;
    }
    Ok(out)
}

fn decode_series<'a>(
    buf: &'a [u8],
    index: usize,
    out: &mut DecodedWrite<'a>,
) -> Result<(), RemoteWriteError> {
    let label_start = out.labels.len();
    let mut histograms = false;
    let mut r = Reader::new(buf);
    let fail = |labels: &[(&str, &str)], detail: WireError| RemoteWriteError::Series {
        index,
        labels: if labels.is_empty() {
            String::new()
        } else {
            let ls: Vec<Label> = labels.iter().map(|(n, v)| Label::new(*n, *v)).collect();
            format!(" ({})", LabelSet::from_labels(ls))
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
                let s = decode_sample(b).map_err(|e| fail(&out.labels[label_start..], e))?;
                out.samples.push(s);
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
        let ls: Vec<Label> = labels.iter().map(|(n, v)| Label::new(*n, *v)).collect();
        return Err(RemoteWriteError::NativeHistograms {
            index,
            labels: LabelSet::from_labels(ls).to_string(),
        });
    }
    out.ends
        .push((out.labels.len() as u32, out.samples.len() as u32));
    Ok(())
}

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

fn decode_sample(buf: &[u8]) -> Result<Sample, WireError> {
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
    Ok(Sample::new(t, v))
}

/// Encodes a WriteRequest (uncompressed) with the agent's encoder, so
/// tests exercise both sides.
#[cfg(test)]
pub fn encode(series: &[SeriesSamples], out: &mut Vec<u8>) {
    use collector::remote_write::{encode_write_request, WireSample, WriteSeries};
    let wire: Vec<WriteSeries> = series
        .iter()
        .map(|s| WriteSeries {
            labels: std::sync::Arc::new(collector::labels::Labels::from_pairs(
                s.labels.iter().map(|l| (l.name, l.value)),
            )),
            samples: s
                .samples
                .iter()
                .map(|x| WireSample {
                    timestamp_ms: x.t,
                    value: x.v,
                })
                .collect(),
        })
        .collect();
    encode_write_request(&wire, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn example() -> Vec<SeriesSamples> {
        vec![SeriesSamples {
            labels: LabelSet::from_pairs(&[("__name__", "up"), ("job", "node")]),
            samples: vec![
                Sample::new(1_700_000_000_000, 1.0),
                Sample::new(-1, f64::from_bits(tsdb::STALE_NAN_BITS)),
            ],
        }]
    }

    #[test]
    fn roundtrip_through_snappy() {
        let mut raw = Vec::new();
        encode(&example(), &mut raw);
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let buf = decompress(&body).unwrap();
        let got = decode_uncompressed(&buf).unwrap();
        let inputs = got.inputs();
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].labels.to_label_set(), example()[0].labels);
        assert_eq!(inputs[0].samples, &example()[0].samples[..]);
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
        encode(&example(), &mut body);
        len_field(&mut body, 3, &meta);
        let d = decode_uncompressed(&body).unwrap();
        assert_eq!(d.inputs().len(), 1);
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
        let e = decode_uncompressed(&bad).unwrap_err().to_string();
        assert!(e.contains("metadata #0") && e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn unsorted_labels_are_sorted_and_empty_values_dropped() {
        // One series whose labels arrive unsorted, one with an empty value.
        let mut ts = Vec::new();
        for (n, v) in [("z", "1"), ("__name__", "up"), ("e", "")] {
            let mut l = Vec::new();
            l.extend_from_slice(&[0x0a, n.len() as u8]);
            l.extend_from_slice(n.as_bytes());
            l.extend_from_slice(&[0x12, v.len() as u8]);
            l.extend_from_slice(v.as_bytes());
            ts.extend_from_slice(&[0x0a, l.len() as u8]);
            ts.extend_from_slice(&l);
        }
        let mut req = vec![0x0a, ts.len() as u8];
        req.extend_from_slice(&ts);
        let got = decode_uncompressed(&req).unwrap();
        let pairs = got.inputs()[0].labels.pairs().to_vec();
        assert_eq!(pairs, [("__name__", "up"), ("z", "1")]);
    }

    #[test]
    fn bad_snappy_and_truncated_protobuf_are_named() {
        assert!(matches!(
            decompress(b"\xff\xff\xff\xff\xff"),
            Err(RemoteWriteError::Snappy(_))
        ));
        let mut raw = Vec::new();
        encode(&example(), &mut raw);
        // Cut inside the sample: the series (with its labels) is named.
        raw.truncate(raw.len() - 3);
        let e = decode_uncompressed(&raw).unwrap_err().to_string();
        assert!(
            e.contains("length-delimited field runs past the end"),
            "{e}"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_uncompressed(&bytes);
            let _ = decompress(&bytes);
        }
    }
}
