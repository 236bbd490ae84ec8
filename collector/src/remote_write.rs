//! The remote_write 1.0 wire format, sending side: a `WriteRequest`
//! protobuf built by hand (three message types do not justify a protobuf
//! code generator), snappy block-compressed as the protocol requires.

use crate::labels::Labels;
use std::sync::Arc;
use vigil_wire::protobuf::{field_len, put_bytes, put_len_prefixed, put_varint, varint_len};
use vigil_wire::snappy::compress as snappy;

/// One sample as the wire carries it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WireSample {
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A series and its samples, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSeries {
    /// Shared with the scrape's series cache: sending a sample copies no
    /// label.
    pub labels: Arc<Labels>,
    pub samples: Vec<WireSample>,
}

/// Appends a `WriteRequest` holding `series` to `out`, uncompressed.
/// Labels go out sorted by name, as the protocol asks.
pub fn encode_write_request<'a>(
    series: impl IntoIterator<Item = &'a WriteSeries>,
    out: &mut Vec<u8>,
) {
    for s in series {
        // Sizes first, so each message is written once, straight into `out`.
        let label_len = |n: &str, v: &str| field_len(n.len()) + field_len(v.len());
        let sample_len = |x: &WireSample| 9 + 1 + varint_len(x.timestamp_ms as u64);
        let ts_len: usize = s
            .labels
            .iter()
            .map(|(n, v)| field_len(label_len(n, v)))
            .sum::<usize>()
            + s.samples
                .iter()
                .map(|x| field_len(sample_len(x)))
                .sum::<usize>();
        put_len_prefixed(out, 1, ts_len);
        for (n, v) in s.labels.iter() {
            put_len_prefixed(out, 1, label_len(n, v));
            put_bytes(out, 1, n.as_bytes());
            put_bytes(out, 2, v.as_bytes());
        }
        for x in &s.samples {
            put_len_prefixed(out, 2, sample_len(x));
            out.push(1 << 3 | 1);
            out.extend_from_slice(&x.value.to_bits().to_le_bytes());
            out.push(2 << 3);
            put_varint(out, x.timestamp_ms as u64);
        }
    }
}

/// The body of a remote_write POST: the request, snappy-compressed.
pub fn encode_body<'a>(series: impl IntoIterator<Item = &'a WriteSeries>) -> Vec<u8> {
    let mut raw = Vec::new();
    encode_write_request(series, &mut raw);
    snappy(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bytes() {
        let s = WriteSeries {
            labels: Arc::new(Labels::from_pairs([("__name__", "up")])),
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
}
