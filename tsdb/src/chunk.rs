//! The head's chunk codec: Gorilla-style delta-of-delta timestamps and XOR
//! values, bit-packed. A chunk holds up to [`MAX_SAMPLES_PER_CHUNK`] samples
//! of one series in time order; once full it is frozen and shared read-only.
//!
//! Values are encoded by their bits, so NaN payloads (staleness markers)
//! round-trip exactly.

use crate::sample::{Sample, Timestamp};
use std::sync::Arc;

/// 120 samples is two hours of 1-minute data or 30 minutes of 15 s data:
/// small enough that reads decode little they do not need, large enough
/// that the 16-byte first sample amortises.
pub const MAX_SAMPLES_PER_CHUNK: u16 = 120;

#[derive(Default, Clone)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 means the last byte is full or there is none).
    bits_in_last: u8,
}

impl BitWriter {
    fn write_bit(&mut self, bit: bool) {
        if self.bits_in_last == 0 {
            self.bytes.push(0);
        }
        if bit {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 0x80 >> self.bits_in_last;
        }
        self.bits_in_last = (self.bits_in_last + 1) % 8;
    }

    /// Writes the low `n` bits of `v`, most significant first.
    fn write_bits(&mut self, v: u64, mut n: u8) {
        while n > 0 {
            if self.bits_in_last == 0 {
                self.bytes.push(0);
            }
            let free = 8 - self.bits_in_last;
            let take = free.min(n);
            let shift = n - take;
            let chunk = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= chunk << (free - take);
            self.bits_in_last = (self.bits_in_last + take) % 8;
            n -= take;
        }
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn read_bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.pos / 8)?;
        let bit = byte & (0x80 >> (self.pos % 8)) != 0;
        self.pos += 1;
        Some(bit)
    }

    fn read_bits(&mut self, mut n: u8) -> Option<u64> {
        let mut out = 0u64;
        while n > 0 {
            let byte = *self.bytes.get(self.pos / 8)?;
            let used = (self.pos % 8) as u8;
            let avail = 8 - used;
            let take = avail.min(n);
            let bits = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            out = (out << take) | u64::from(bits);
            self.pos += take as usize;
            n -= take;
        }
        Some(out)
    }
}

/// The chunk a series is currently appending to.
#[derive(Clone)]
pub struct OpenChunk {
    w: BitWriter,
    n: u16,
    min_t: Timestamp,
    max_t: Timestamp,
    t_delta: i64,
    v_bits: u64,
    /// Leading/trailing zero window of the previous XOR; `leading == NO_WINDOW` if none.
    leading: u8,
    trailing: u8,
}

const NO_WINDOW: u8 = 0xff;

impl Default for OpenChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenChunk {
    pub fn new() -> Self {
        OpenChunk {
            w: BitWriter::default(),
            n: 0,
            min_t: 0,
            max_t: 0,
            t_delta: 0,
            v_bits: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    pub fn len(&self) -> u16 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn is_full(&self) -> bool {
        self.n >= MAX_SAMPLES_PER_CHUNK
    }

    pub fn min_t(&self) -> Timestamp {
        self.min_t
    }

    pub fn max_t(&self) -> Timestamp {
        self.max_t
    }

    pub fn byte_len(&self) -> usize {
        self.w.bytes.len()
    }

    /// Appends a sample. The caller guarantees `s.t > self.max_t()` when the
    /// chunk is not empty; the head checks order before it gets here.
    pub fn push(&mut self, s: Sample) {
        let v_bits = s.v.to_bits();
        match self.n {
            0 => {
                self.w.write_bits(s.t as u64, 64);
                self.w.write_bits(v_bits, 64);
                self.min_t = s.t;
            }
            _ => {
                let delta = s.t.wrapping_sub(self.max_t);
                let dod = delta.wrapping_sub(self.t_delta);
                self.write_dod(dod);
                self.t_delta = delta;
                self.write_xor(v_bits ^ self.v_bits);
            }
        }
        self.max_t = s.t;
        self.v_bits = v_bits;
        self.n += 1;
    }

    fn write_dod(&mut self, dod: i64) {
        let fits = |bits: u32| {
            let lim = 1i64 << (bits - 1);
            (-lim..lim).contains(&dod)
        };
        if dod == 0 {
            self.w.write_bit(false);
        } else if fits(14) {
            self.w.write_bits(0b10, 2);
            self.w.write_bits(dod as u64, 14);
        } else if fits(17) {
            self.w.write_bits(0b110, 3);
            self.w.write_bits(dod as u64, 17);
        } else if fits(20) {
            self.w.write_bits(0b1110, 4);
            self.w.write_bits(dod as u64, 20);
        } else {
            self.w.write_bits(0b1111, 4);
            self.w.write_bits(dod as u64, 64);
        }
    }

    fn write_xor(&mut self, xor: u64) {
        if xor == 0 {
            self.w.write_bit(false);
            return;
        }
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bits(0b10, 2);
            let sig = 64 - self.leading - self.trailing;
            self.w.write_bits(xor >> self.trailing, sig);
        } else {
            let sig = 64 - leading - trailing;
            self.w.write_bits(0b11, 2);
            self.w.write_bits(u64::from(leading), 5);
            // 64 significant bits is stored as 0; 0 can never occur otherwise.
            self.w.write_bits(u64::from(sig % 64), 6);
            self.w.write_bits(xor >> trailing, sig);
            self.leading = leading;
            self.trailing = trailing;
        }
    }

    /// A read-only copy of what has been written so far.
    pub fn snapshot(&self) -> FrozenChunk {
        FrozenChunk {
            bytes: Arc::from(self.w.bytes.as_slice()),
            n: self.n,
            min_t: self.min_t,
            max_t: self.max_t,
        }
    }

    /// Freezes the chunk, keeping its bytes without a copy when possible.
    pub fn freeze(self) -> FrozenChunk {
        FrozenChunk {
            bytes: Arc::from(self.w.bytes.into_boxed_slice()),
            n: self.n,
            min_t: self.min_t,
            max_t: self.max_t,
        }
    }
}

/// An immutable chunk, cheap to share between the head and readers.
#[derive(Clone, Debug)]
pub struct FrozenChunk {
    bytes: Arc<[u8]>,
    n: u16,
    min_t: Timestamp,
    max_t: Timestamp,
}

impl FrozenChunk {
    pub fn len(&self) -> u16 {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    pub fn min_t(&self) -> Timestamp {
        self.min_t
    }
    pub fn max_t(&self) -> Timestamp {
        self.max_t
    }
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }
    pub fn iter(&self) -> ChunkIter {
        ChunkIter {
            chunk: self.clone(),
            pos: 0,
            read: 0,
            t: 0,
            t_delta: 0,
            v_bits: 0,
            leading: 0,
            trailing: 0,
        }
    }
}

/// Decodes a chunk lazily, one sample at a time.
pub struct ChunkIter {
    chunk: FrozenChunk,
    pos: usize,
    read: u16,
    t: i64,
    t_delta: i64,
    v_bits: u64,
    leading: u8,
    trailing: u8,
}

impl ChunkIter {
    fn decode_next(&mut self) -> Option<Sample> {
        let mut r = BitReader {
            bytes: &self.chunk.bytes,
            pos: self.pos,
        };
        if self.read == 0 {
            self.t = r.read_bits(64)? as i64;
            self.v_bits = r.read_bits(64)?;
        } else {
            let dod = read_dod(&mut r)?;
            self.t_delta = self.t_delta.wrapping_add(dod);
            self.t = self.t.wrapping_add(self.t_delta);
            if r.read_bit()? {
                if r.read_bit()? {
                    self.leading = r.read_bits(5)? as u8;
                    let sig = match r.read_bits(6)? as u8 {
                        0 => 64,
                        s => s,
                    };
                    self.trailing = 64u8.checked_sub(self.leading + sig)?;
                }
                let sig = 64 - self.leading - self.trailing;
                let bits = r.read_bits(sig)?;
                self.v_bits ^= bits << self.trailing;
            }
        }
        self.pos = r.pos;
        self.read += 1;
        Some(Sample::new(self.t, f64::from_bits(self.v_bits)))
    }
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

fn read_dod(r: &mut BitReader) -> Option<i64> {
    let mut prefix = 0;
    while prefix < 4 && r.read_bit()? {
        prefix += 1;
    }
    Some(match prefix {
        0 => 0,
        1 => sign_extend(r.read_bits(14)?, 14),
        2 => sign_extend(r.read_bits(17)?, 17),
        3 => sign_extend(r.read_bits(20)?, 20),
        _ => r.read_bits(64)? as i64,
    })
}

impl Iterator for ChunkIter {
    type Item = Sample;
    fn next(&mut self) -> Option<Sample> {
        if self.read >= self.chunk.n {
            return None;
        }
        // A short read means the chunk is damaged; stop rather than invent data.
        self.decode_next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::STALE_NAN_BITS;
    use proptest::prelude::*;

    fn roundtrip(samples: &[Sample]) -> Vec<Sample> {
        let mut c = OpenChunk::new();
        for s in samples {
            c.push(*s);
        }
        c.freeze().iter().collect()
    }

    #[test]
    fn regular_scrapes_compress_well() {
        let samples: Vec<_> = (0..120)
            .map(|i| Sample::new(1_700_000_000_000 + i * 15_000, (i * 3) as f64))
            .collect();
        let mut c = OpenChunk::new();
        for s in &samples {
            c.push(*s);
        }
        assert!(c.byte_len() < 120 * 2, "{} bytes", c.byte_len());
        assert_eq!(c.freeze().iter().collect::<Vec<_>>(), samples);
    }

    #[test]
    fn special_values_roundtrip_bit_exact() {
        let samples = vec![
            Sample::new(-5, f64::NAN),
            Sample::new(0, f64::from_bits(STALE_NAN_BITS)),
            Sample::new(1, f64::INFINITY),
            Sample::new(i64::MAX / 2, f64::NEG_INFINITY),
            Sample::new(i64::MAX, -0.0),
            Sample::new(i64::MAX, 0.0),
        ];
        let out = roundtrip(&samples);
        assert_eq!(out, samples);
        assert!(out[1].is_stale());
    }

    proptest! {
        #[test]
        fn any_increasing_series_roundtrips(
            start in any::<i64>().prop_map(|t| t / 4),
            deltas in proptest::collection::vec(1i64..1_000_000_000, 0..119),
            values in proptest::collection::vec(any::<u64>(), 120),
        ) {
            let mut t = start;
            let mut samples = vec![Sample::new(t, f64::from_bits(values[0]))];
            for (i, d) in deltas.iter().enumerate() {
                t += d;
                samples.push(Sample::new(t, f64::from_bits(values[i + 1])));
            }
            prop_assert_eq!(roundtrip(&samples), samples);
        }
    }
}
