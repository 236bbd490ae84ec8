//! The Prometheus remote_write 1.0 payload: snappy-compressed protobuf
//! `WriteRequest { repeated TimeSeries timeseries = 1; ... }`.

use super::protobuf::{as_str, Reader, Value, WireError};
use tsdb::{Label, LabelSet, Sample, SeriesSamples};

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

/// A decoded write and what it contained besides float samples.
#[derive(Debug, Default)]
pub struct DecodedWrite {
    pub series: Vec<SeriesSamples>,
    pub exemplars_dropped: usize,
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

/// Decodes a snappy-compressed WriteRequest.
pub fn decode(body: &[u8]) -> Result<DecodedWrite, RemoteWriteError> {
    decode_uncompressed(&decompress(body)?)
}

pub fn decode_uncompressed(buf: &[u8]) -> Result<DecodedWrite, RemoteWriteError> {
    let mut out = DecodedWrite::default();
    let mut r = Reader::new(buf);
    let mut index = 0usize;
    while let Some((field, value)) = r
        .next_field()
        .map_err(|e| RemoteWriteError::Protobuf(e.0))?
    {
        // Field 3 is metadata; other unknown fields are skipped as protobuf requires.
        if field != 1 {
            continue;
        }
        let Value::Bytes(ts) = value else {
            return Err(RemoteWriteError::Protobuf(format!(
                "timeseries #{index} has the wrong wire type"
            )));
        };
        let (series, exemplars) = decode_series(ts, index)?;
        out.exemplars_dropped += exemplars;
        out.series.push(series);
        index += 1;
    }
    Ok(out)
}

fn decode_series(buf: &[u8], index: usize) -> Result<(SeriesSamples, usize), RemoteWriteError> {
    let mut labels = Vec::new();
    let mut samples = Vec::new();
    let mut exemplars = 0;
    let mut histograms = false;
    let mut r = Reader::new(buf);
    let fail = |labels: &[Label], detail: WireError| RemoteWriteError::Series {
        index,
        labels: if labels.is_empty() {
            String::new()
        } else {
            format!(" ({})", LabelSet::from_labels(labels.to_vec()))
        },
        detail: detail.0,
    };
    loop {
        let next = r.next_field().map_err(|e| fail(&labels, e))?;
        let Some((field, value)) = next else { break };
        match (field, value) {
            (1, Value::Bytes(b)) => labels.push(decode_label(b).map_err(|e| fail(&labels, e))?),
            (2, Value::Bytes(b)) => samples.push(decode_sample(b).map_err(|e| fail(&labels, e))?),
            (3, Value::Bytes(_)) => exemplars += 1,
            (4, Value::Bytes(_)) => histograms = true,
            (1..=4, _) => {
                return Err(fail(
                    &labels,
                    WireError(format!("field {field} has the wrong wire type")),
                ))
            }
            _ => {}
        }
    }
    let labels = LabelSet::from_labels(labels);
    if histograms {
        return Err(RemoteWriteError::NativeHistograms {
            index,
            labels: labels.to_string(),
        });
    }
    Ok((SeriesSamples { labels, samples }, exemplars))
}

fn decode_label(buf: &[u8]) -> Result<Label, WireError> {
    let mut r = Reader::new(buf);
    let (mut name, mut value) = ("", "");
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => name = as_str(&v, "label name")?,
            2 => value = as_str(&v, "label value")?,
            _ => {}
        }
    }
    Ok(Label::new(name, value))
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

/// Encodes a WriteRequest (uncompressed) so tests exercise both sides.
#[cfg(test)]
pub fn encode(series: &[SeriesSamples], out: &mut Vec<u8>) {
    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn put_len(out: &mut Vec<u8>, field: u32, body: &[u8]) {
        put_varint(out, u64::from(field << 3 | 2));
        put_varint(out, body.len() as u64);
        out.extend_from_slice(body);
    }
    let mut ts = Vec::new();
    let mut item = Vec::new();
    for s in series {
        ts.clear();
        for l in s.labels.iter() {
            item.clear();
            put_len(&mut item, 1, l.name.as_bytes());
            put_len(&mut item, 2, l.value.as_bytes());
            put_len(&mut ts, 1, &item);
        }
        for sample in &s.samples {
            item.clear();
            item.push(1 << 3 | 1);
            item.extend_from_slice(&sample.v.to_bits().to_le_bytes());
            put_varint(&mut item, 2 << 3);
            put_varint(&mut item, sample.t as u64);
            put_len(&mut ts, 2, &item);
        }
        put_len(out, 1, &ts);
    }
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
        let got = decode(&body).unwrap();
        assert_eq!(got.series.len(), 1);
        assert_eq!(got.series[0].labels, example()[0].labels);
        assert_eq!(got.series[0].samples, example()[0].samples);
    }

    #[test]
    fn bad_snappy_and_truncated_protobuf_are_named() {
        assert!(matches!(
            decode(b"\xff\xff\xff\xff\xff"),
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
            let _ = decode(&bytes);
        }
    }
}
