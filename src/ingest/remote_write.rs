//! The Prometheus remote_write 1.0 payload as the store takes it: the
//! format is decoded by `vigil_wire::remote_write` straight into tsdb's
//! samples; this module hands the decoded series to the head without
//! copying them.

use tsdb::head::SeriesInput;
use tsdb::{LabelsRef, Sample};
pub use vigil_wire::remote_write::{decompress, DecodedWrite, RemoteWriteError};

/// Decodes an uncompressed `WriteRequest` into tsdb samples.
pub fn decode_uncompressed(buf: &[u8]) -> Result<DecodedWrite<'_, Sample>, RemoteWriteError> {
    vigil_wire::remote_write::decode_uncompressed(buf, Sample::new)
}

/// The series of a decoded write as the store takes them.
pub fn inputs<'w>(write: &'w DecodedWrite<'_, Sample>) -> Vec<SeriesInput<'w>> {
    write
        .series()
        .map(|(labels, samples)| SeriesInput {
            // The decoder sorted each series' labels and dropped empty values.
            labels: LabelsRef::from_sorted(labels),
            samples,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use collector::labels::Labels;
    use collector::remote_write::{encode_body, WireSample, WriteSeries};
    use std::sync::Arc;
    use tsdb::LabelSet;

    #[test]
    fn the_agents_writes_reach_the_store_as_sent() {
        let sent = WriteSeries {
            labels: Arc::new(Labels::from_pairs([("job", "node"), ("__name__", "up")])),
            samples: vec![
                WireSample {
                    timestamp_ms: 1_700_000_000_000,
                    value: 1.0,
                },
                WireSample {
                    timestamp_ms: -1,
                    value: f64::from_bits(tsdb::STALE_NAN_BITS),
                },
            ],
        };
        let buf = decompress(&encode_body([&sent])).unwrap();
        let write = decode_uncompressed(&buf).unwrap();
        let got = inputs(&write);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].labels.to_label_set(),
            LabelSet::from_pairs(&[("__name__", "up"), ("job", "node")])
        );
        assert_eq!(got[0].samples.len(), 2);
        assert_eq!(got[0].samples[0], Sample::new(1_700_000_000_000, 1.0));
        assert_eq!(got[0].samples[1].v.to_bits(), tsdb::STALE_NAN_BITS);
    }
}
