//! Snappy block compression, as remote_write and Loki push want their
//! bodies.

/// `raw` snappy-compressed (block format).
pub fn compress(raw: &[u8]) -> Vec<u8> {
    // Compressing a slice we own cannot fail: snap errors only on inputs
    // over 4 GiB, and one batch is far below that.
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        let raw = b"remote_write remote_write remote_write".repeat(10);
        let body = super::compress(&raw);
        assert!(body.len() < raw.len());
        assert_eq!(
            snap::raw::Decoder::new().decompress_vec(&body).unwrap(),
            raw
        );
    }
}
