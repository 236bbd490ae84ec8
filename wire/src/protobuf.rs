//! Protobuf's wire format by hand, both ways: a minimal reader that walks
//! messages field by field without generated code, borrowing strings from
//! the input, and the writer primitives (varints, length-delimited fields,
//! sizes computed first so each message is written once). The hot reader
//! functions are `#[inline]`: callers in other crates (the agent's and
//! the server's own messages) get them inlined too, and the ingest rate
//! depends on that.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A field's payload.
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        // Keys, lengths of labels and small numbers are one byte.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_slow()
    }

    #[inline]
    fn varint_slow(&mut self) -> Result<u64, WireError> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    #[inline]
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let end = self.pos + N;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.err("truncated fixed-width field"))?;
        self.pos = end;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn err(&self, what: &str) -> WireError {
        WireError(format!("{what} at byte {}", self.pos))
    }

    /// The next field as (field number, value), or `None` at the end.
    #[inline]
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| self.err("field number out of range"))?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.fixed::<8>()?)),
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| self.err("length out of range"))?;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|e| *e <= self.buf.len())
                    .ok_or_else(|| self.err("length-delimited field runs past the end"))?;
                let b = &self.buf[self.pos..end];
                self.pos = end;
                Value::Bytes(b)
            }
            5 => {
                self.fixed::<4>()?;
                Value::Fixed32
            }
            other => return Err(self.err(&format!("unsupported wire type {other}"))),
        };
        Ok(Some((field, value)))
    }
}

#[inline]
pub fn as_str<'a>(v: &Value<'a>, what: &str) -> Result<&'a str, WireError> {
    match v {
        Value::Bytes(b) => utf8(b).ok_or_else(|| WireError(format!("{what} is not valid UTF-8"))),
        _ => Err(WireError(format!("{what} has the wrong wire type"))),
    }
}

/// `b` as text if it is valid UTF-8. Label names and values are nearly
/// always ASCII, which one word-at-a-time scan proves, skipping the full
/// UTF-8 validator's per-call setup (10 000 short strings per request).
#[inline]
fn utf8(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        // SAFETY: every ASCII byte sequence is valid UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(b) });
    }
    std::str::from_utf8(b).ok()
}

#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// The key and length of a length-delimited field whose body follows.
#[inline]
pub fn put_len_prefixed(out: &mut Vec<u8>, field: u32, len: usize) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, len as u64);
}

#[inline]
pub fn put_bytes(out: &mut Vec<u8>, field: u32, body: &[u8]) {
    put_len_prefixed(out, field, body.len());
    out.extend_from_slice(body);
}

/// Bytes a length-delimited field with a `len`-byte body takes (fields
/// numbered below 16).
#[inline]
pub fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// A varint field (number below 16), key included.
#[inline]
pub fn put_varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    put_varint(out, u64::from(field << 3));
    put_varint(out, v);
}

/// Bytes a varint field takes.
#[inline]
pub fn varint_field_len(v: u64) -> usize {
    1 + varint_len(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_of_every_length() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut buf = Vec::new();
            let mut x = v;
            while x >= 0x80 {
                buf.push((x as u8) | 0x80);
                x >>= 7;
            }
            buf.push(x as u8);
            assert_eq!(Reader::new(&buf).varint(), Ok(v));
            assert!(Reader::new(&buf[..buf.len() - 1]).varint().is_err());
        }
    }

    #[test]
    fn text_is_checked() {
        assert_eq!(as_str(&Value::Bytes(b"job"), "x"), Ok("job"));
        assert_eq!(as_str(&Value::Bytes("größe".as_bytes()), "x"), Ok("größe"));
        let bad = as_str(&Value::Bytes(&[b'a', 0xff]), "label name");
        assert_eq!(bad, Err(WireError("label name is not valid UTF-8".into())));
    }
}
