//! Writing protobuf by hand for the two wire formats the agent sends
//! (remote_write's `WriteRequest`, Loki's `PushRequest`): varints and
//! length-delimited fields, sizes computed first so each message is
//! written once.

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// The key and length of a length-delimited field whose body follows.
pub(crate) fn put_len_prefixed(out: &mut Vec<u8>, field: u32, len: usize) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, len as u64);
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u32, body: &[u8]) {
    put_len_prefixed(out, field, body.len());
    out.extend_from_slice(body);
}

/// Bytes a length-delimited field with a `len`-byte body takes (fields
/// numbered below 16).
pub(crate) fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// A varint field (number below 16), key included.
pub(crate) fn put_varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    put_varint(out, u64::from(field << 3));
    put_varint(out, v);
}

/// Bytes a varint field takes.
pub(crate) fn varint_field_len(v: u64) -> usize {
    1 + varint_len(v)
}

/// Snappy block compression, as both protocols want their bodies.
pub(crate) fn snappy(raw: &[u8]) -> Vec<u8> {
    // Compressing a slice we own cannot fail: snap errors only on inputs
    // over 4 GiB, and one batch is far below that.
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .unwrap_or_default()
}
