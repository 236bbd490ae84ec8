//! Prometheus's label-set hash (xxHash64 of `name 0xff value 0xff ...`),
//! needed where results depend on it (`limit_ratio`).

use tsdb::LabelSet;

/// xxHash64 with seed 0 (the maintained `xxhash-rust` crate).
pub(crate) fn xxh64(data: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(data, 0)
}

/// The hash Prometheus's `Labels.Hash()` gives this label set.
pub(crate) fn prometheus_label_hash(labels: &LabelSet) -> u64 {
    let mut b = Vec::with_capacity(256);
    for l in labels.iter() {
        b.extend_from_slice(l.name.as_bytes());
        b.push(0xff);
        b.extend_from_slice(l.value.as_bytes());
        b.push(0xff);
    }
    xxh64(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_xxh64_values() {
        assert_eq!(xxh64(b""), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"abc"), 0x44BC_2CF5_AD77_0999);
        // Exercises the 32-byte stripes, 8- and 4-byte tails and single bytes.
        let long: Vec<u8> = (0u8..=100).collect();
        assert_ne!(xxh64(&long), xxh64(&long[..99]));
    }
}
