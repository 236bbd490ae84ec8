//! The head's chunk codec: Gorilla-style delta-of-delta timestamps, values
//! as deltas of decimal mantissas when they are exact decimals and as
//! Gorilla XOR otherwise, bit-packed. A chunk holds up to [`MAX_SAMPLES_PER_CHUNK`] samples
//! of one series in time order; once full it is frozen and shared read-only.
//!
//! Values are encoded by their bits, so NaN payloads (staleness markers)
//! round-trip exactly.

use crate::chunk_file::{ChunkFiles, FileChunk};
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

/// Open chunks grow by this many bytes at a time: every series has one,
/// and doubling would leave a third of their memory unused on average.
const GROWTH_BYTES: usize = 32;

impl BitWriter {
    fn push_byte(&mut self) {
        if self.bytes.len() == self.bytes.capacity() {
            self.bytes.reserve_exact(GROWTH_BYTES);
        }
        self.bytes.push(0);
    }

    fn write_bit(&mut self, bit: bool) {
        if self.bits_in_last == 0 {
            self.push_byte();
        }
        if bit {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 0x80 >> self.bits_in_last;
        }
        self.bits_in_last = (self.bits_in_last + 1) % 8;
    }

    /// Writes the low `n` bits of `v`, most significant first: the rest
    /// of the partial last byte, then whole bytes, then the tail.
    fn write_bits(&mut self, v: u64, n: u8) {
        let mut n = u32::from(n.min(64));
        if n == 0 {
            return;
        }
        if self.bits_in_last != 0 {
            let free = 8 - u32::from(self.bits_in_last);
            let take = free.min(n);
            let chunk = (v >> (n - take)) & ((1u64 << take) - 1);
            let last = self.bytes.len() - 1;
            self.bytes[last] |= (chunk << (free - take)) as u8;
            self.bits_in_last = ((u32::from(self.bits_in_last) + take) % 8) as u8;
            n -= take;
        }
        while n >= 8 {
            n -= 8;
            self.push_byte();
            let last = self.bytes.len() - 1;
            self.bytes[last] = (v >> n) as u8;
        }
        if n > 0 {
            self.push_byte();
            let last = self.bytes.len() - 1;
            self.bytes[last] = ((v << (8 - n)) & 0xff) as u8;
            self.bits_in_last = n as u8;
        }
    }
}

/// Reads a chunk's bits, keeping the next 56 to 63 of them in a register:
/// a field is then a count and a shift, not a load, so decoding is not
/// one long chain of dependent loads. Bits past the end read as zero; the
/// decoder checks once per sample that it has not read past the end.
struct BitReader<'a> {
    bytes: &'a [u8],
    /// The next byte to load into `buf`.
    next: usize,
    /// The next `avail` bits of the chunk, left-aligned (bits below them
    /// are the chunk's following bits or zero).
    buf: u64,
    avail: u32,
}

/// Where a [`BitReader`] stands, kept between a lazy iterator's calls.
#[derive(Clone, Copy, Default)]
struct ReaderPos {
    next: usize,
    buf: u64,
    avail: u32,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self::resume(bytes, ReaderPos::default())
    }

    fn resume(bytes: &'a [u8], p: ReaderPos) -> Self {
        let mut r = BitReader {
            bytes,
            next: p.next,
            buf: p.buf,
            avail: p.avail,
        };
        r.refill();
        r
    }

    /// A reader whose next bit is bit `bit` of `bytes`.
    fn at(bytes: &'a [u8], bit: usize) -> Self {
        let mut r = Self::resume(
            bytes,
            ReaderPos {
                next: bit / 8,
                buf: 0,
                avail: 0,
            },
        );
        r.consume((bit % 8) as u32);
        r
    }

    fn pos(&self) -> ReaderPos {
        ReaderPos {
            next: self.next,
            buf: self.buf,
            avail: self.avail,
        }
    }

    /// True once more bits were read than the chunk holds.
    fn overrun(&self) -> bool {
        self.next * 8 - self.avail as usize > self.bytes.len() * 8
    }

    /// Tops the register up to at least 56 bits (whole bytes, loaded as
    /// one word; bits it holds beyond `avail` are the same stream bits,
    /// so loading them again changes nothing).
    #[inline(always)]
    fn refill(&mut self) {
        let i = self.next;
        let w = match self.bytes.get(i..i + 8) {
            Some(b) => u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            None => self.tail_word(i),
        };
        self.buf |= w >> self.avail;
        self.next += ((63 - self.avail) >> 3) as usize;
        self.avail |= 56;
    }

    /// The bytes from `i` to the end, left-aligned and zero-filled: the
    /// last eight bytes loaded as one word and shifted.
    #[cold]
    fn tail_word(&self, i: usize) -> u64 {
        let len = self.bytes.len();
        match self.bytes.get(len.wrapping_sub(8)..) {
            Some(b) if i < len => {
                let w = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                w << (8 * (i + 8 - len))
            }
            _ => {
                let mut w = 0u64;
                for (k, b) in self.bytes.iter().skip(i).take(8).enumerate() {
                    w |= u64::from(*b) << (56 - 8 * k);
                }
                w
            }
        }
    }

    /// The next 56 bits (at least), left-aligned, without consuming them.
    #[inline(always)]
    fn window(&mut self) -> u64 {
        if self.avail < 56 {
            self.refill();
        }
        self.buf
    }

    /// Drops `n` bits of the window (at most 56).
    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.buf <<= n;
        self.avail -= n;
    }

    fn read_bit(&mut self) -> bool {
        let bit = self.window() >> 63 != 0;
        self.consume(1);
        bit
    }

    /// Up to four leading one bits, ended by a zero bit (consumed) or by
    /// the fourth one: the prefix codes of timestamps and values.
    #[inline(always)]
    fn read_prefix(&mut self) -> u8 {
        let ones = (self.window().leading_ones() as u8).min(4);
        self.consume(if ones == 4 { 4 } else { u32::from(ones) + 1 });
        ones
    }

    /// The next `n` bits (at most 64).
    #[inline(always)]
    fn read_bits(&mut self, n: u8) -> u64 {
        if n > 56 {
            let hi = self.read_short(n - 32);
            let lo = self.read_short(32);
            return (hi << 32) | lo;
        }
        self.read_short(n)
    }

    /// The next `n` bits, `n <= 56`: the top `n` of the window (none
    /// when `n` is 0).
    #[inline(always)]
    fn read_short(&mut self, n: u8) -> u64 {
        let v = (self.window() >> 1) >> (63 - n);
        self.consume(u32::from(n));
        v
    }
}

/// Values are stored as decimal mantissas when they are exact decimals
/// (`m / 10^scale`, as most exporter values are): the delta of mantissas
/// takes a few bits where the XOR of the float bits takes forty. Anything
/// else (NaN, ±Inf, -0.0, binary fractions) falls back to Gorilla XOR.
const MAX_SCALE: u8 = 15;
const POW10: [f64; MAX_SCALE as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
/// Mantissas stay exactly representable as f64 integers.
const MAX_MANTISSA: f64 = (1u64 << 53) as f64;
/// The first sample's scale field when its value is not a decimal.
const NO_SCALE: u8 = 31;

/// `v` as `m / 10^scale` with the exact same bits on decoding, if it is one.
fn mantissa_at(v: f64, scale: u8) -> Option<i64> {
    let p = POW10[scale as usize];
    let x = (v * p).round();
    // NaN fails this test too.
    if x.is_nan() || x.abs() >= MAX_MANTISSA {
        return None;
    }
    let m = x as i64;
    (decimal_value(m, scale).to_bits() == v.to_bits()).then_some(m)
}

fn decimal_value(m: i64, scale: u8) -> f64 {
    if scale == 0 {
        // Whole numbers (byte and packet counters) skip the division.
        return m as f64;
    }
    m as f64 / POW10[scale as usize]
}

/// The smallest scale at which `v` is an exact decimal.
fn find_scale(v: f64) -> Option<(u8, i64)> {
    (0..=MAX_SCALE).find_map(|s| mantissa_at(v, s).map(|m| (s, m)))
}

fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Bits needed for `z` (at least 1).
fn width_of(z: u64) -> u8 {
    (64 - z.leading_zeros()).max(1) as u8
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
    dec: DecimalState,
    restarts: [Restart; 2],
}

/// Samples between an open chunk's restart points.
const RESTART_EVERY: u16 = 32;

/// A place inside a chunk where decoding can begin: the decoder's state
/// after `read` samples and the bit the next one starts at, packed into
/// 32 bytes (every series' open chunk holds two). The decimal mantissa is
/// not kept: it is the value's mantissa at `scale`.
#[derive(Clone, Copy, Default)]
struct Restart {
    t: i64,
    t_delta: i64,
    v_bits: u64,
    bit: u16,
    /// Samples before this point; 0 marks an unset point.
    read: u8,
    leading: u8,
    trailing: u8,
    scale: u8,
    width: u8,
    decimal: bool,
}

impl Restart {
    /// The decoder's state at this point.
    fn state(&self) -> Option<DecodeState> {
        let mantissa = match self.decimal {
            true => Some(mantissa_at(f64::from_bits(self.v_bits), self.scale)?),
            false => None,
        };
        Some(DecodeState {
            read: u16::from(self.read),
            t: self.t,
            t_delta: self.t_delta,
            values: ValueDecoder {
                v_bits: self.v_bits,
                leading: self.leading,
                trailing: self.trailing,
                dec: DecimalState {
                    mantissa,
                    scale: self.scale,
                    width: self.width,
                },
            },
        })
    }
}

/// The two latest restart points of an open chunk (every
/// [`RESTART_EVERY`] samples), so that reading its newest samples — an
/// instant query's window at the end of the data — decodes at most
/// `2 * RESTART_EVERY` samples before the window instead of the whole
/// chunk. Points with `state.read == 0` are unset.
#[derive(Clone, Copy, Default)]
pub struct RestartPoints {
    /// The chunk they belong to (its first timestamp).
    chunk_min_t: Timestamp,
    points: [Restart; 2],
}

impl std::fmt::Debug for RestartPoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestartPoints")
            .field("chunk_min_t", &self.chunk_min_t)
            .field("after", &self.points.map(|p| p.read))
            .finish()
    }
}

/// The decimal view of the previous value, shared by encoder and decoder.
#[derive(Clone, Copy, Default)]
struct DecimalState {
    /// The previous value's mantissa, if it was a decimal at `scale`.
    mantissa: Option<i64>,
    scale: u8,
    /// Bit width of the last written mantissa delta.
    width: u8,
}

const NO_WINDOW: u8 = 0xff;

impl Default for OpenChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenChunk {
    /// Starts loading the byte the next sample is written into.
    pub(crate) fn prefetch_tail(&self) {
        let b = &self.w.bytes;
        crate::prefetch::prefetch(b.as_ptr().wrapping_add(b.len().saturating_sub(1)));
    }

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
            dec: DecimalState::default(),
            restarts: [Restart::default(); 2],
        }
    }

    /// Where a reader of this chunk's current bytes may start decoding.
    pub fn restart_points(&self) -> RestartPoints {
        RestartPoints {
            chunk_min_t: self.min_t,
            points: self.restarts,
        }
    }

    /// Bits written so far.
    fn bit_len(&self) -> u32 {
        let len = self.w.bytes.len() as u32 * 8;
        match self.w.bits_in_last {
            0 => len,
            used => len - 8 + u32::from(used),
        }
    }

    /// The decoder's state after the samples written so far (the
    /// encoder's state, in the decoder's terms).
    fn restart_here(&self) -> Option<Restart> {
        Some(Restart {
            t: self.max_t,
            t_delta: self.t_delta,
            v_bits: self.v_bits,
            bit: u16::try_from(self.bit_len()).ok()?,
            read: u8::try_from(self.n).ok()?,
            // Before the first XOR header the decoder's window is unused.
            leading: if self.leading == NO_WINDOW {
                0
            } else {
                self.leading
            },
            trailing: self.trailing,
            scale: self.dec.scale,
            width: self.dec.width,
            decimal: self.dec.mantissa.is_some(),
        })
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
                // Most chunks fill to 120 samples of a few bits each.
                self.w.bytes.reserve(48);
                self.w.write_bits(s.t as u64, 64);
                self.w.write_bits(v_bits, 64);
                match find_scale(s.v) {
                    Some((scale, m)) => {
                        self.w.write_bits(u64::from(scale), 5);
                        self.dec = DecimalState {
                            mantissa: Some(m),
                            scale,
                            width: 0,
                        };
                    }
                    None => {
                        self.w.write_bits(u64::from(NO_SCALE), 5);
                        self.dec = DecimalState::default();
                    }
                }
                self.min_t = s.t;
            }
            _ => {
                let delta = s.t.wrapping_sub(self.max_t);
                let dod = delta.wrapping_sub(self.t_delta);
                self.write_dod(dod);
                self.t_delta = delta;
                self.write_value(s.v);
            }
        }
        self.max_t = s.t;
        self.v_bits = v_bits;
        self.n += 1;
        if self.n % RESTART_EVERY == 0 && !self.is_full() {
            if let Some(here) = self.restart_here() {
                self.restarts = [self.restarts[1], here];
            }
        }
    }

    fn write_value(&mut self, v: f64) {
        let bits = v.to_bits();
        if bits == self.v_bits {
            self.w.write_bit(false);
            return;
        }
        if let Some(prev) = self.dec.mantissa {
            if let Some(m) = mantissa_at(v, self.dec.scale) {
                let z = zigzag(m - prev);
                let need = width_of(z);
                let have = self.dec.width;
                // Keep a wider window unless it wastes more than a new header costs.
                if have != 0 && need <= have && have - need <= 6 {
                    self.w.write_bits(0b10, 2);
                    self.w.write_bits(z, have);
                } else {
                    self.w.write_bits(0b110, 3);
                    self.w.write_bits(u64::from(need - 1), 6);
                    self.w.write_bits(z, need);
                    self.dec.width = need;
                }
                self.dec.mantissa = Some(m);
                return;
            }
        }
        match find_scale(v) {
            Some((scale, m)) => {
                self.w.write_bits(0b1110, 4);
                self.w.write_bits(u64::from(scale), 4);
                self.dec = DecimalState {
                    mantissa: Some(m),
                    scale,
                    width: 0,
                };
            }
            None => {
                self.w.write_bits(0b1111, 4);
                self.dec.mantissa = None;
            }
        }
        self.write_xor(bits ^ self.v_bits);
    }

    fn write_dod(&mut self, dod: i64) {
        let fits = |bits: u32| {
            let lim = 1i64 << (bits - 1);
            (-lim..lim).contains(&dod)
        };
        // Scrapes jitter by a few milliseconds: the smallest bucket holds that.
        if dod == 0 {
            self.w.write_bit(false);
        } else if fits(6) {
            self.w.write_bits(0b10, 2);
            self.w.write_bits(dod as u64, 6);
        } else if fits(14) {
            self.w.write_bits(0b110, 3);
            self.w.write_bits(dod as u64, 14);
        } else if fits(20) {
            self.w.write_bits(0b1110, 4);
            self.w.write_bits(dod as u64, 20);
        } else {
            self.w.write_bits(0b1111, 4);
            self.w.write_bits(dod as u64, 64);
        }
    }

    /// Gorilla XOR of a value that differs from the previous one (`xor != 0`).
    fn write_xor(&mut self, xor: u64) {
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.w.write_bits(xor >> self.trailing, sig);
        } else {
            let sig = 64 - leading - trailing;
            self.w.write_bit(true);
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
            bytes: ChunkBytes::Heap(Arc::from(self.w.bytes.as_slice())),
            n: self.n,
            min_t: self.min_t,
            max_t: self.max_t,
        }
    }

    /// Freezes the chunk, keeping its bytes in memory.
    pub fn freeze(self) -> FrozenChunk {
        FrozenChunk {
            bytes: ChunkBytes::Heap(Arc::from(self.w.bytes.as_slice())),
            n: self.n,
            min_t: self.min_t,
            max_t: self.max_t,
        }
    }

    /// Freezes the chunk into the head chunk files; keeps it in memory if
    /// the write fails (the WAL still has its samples, so nothing is lost).
    pub fn freeze_into(self, files: &ChunkFiles) -> FrozenChunk {
        let bytes = match files.write(&self.w.bytes) {
            Ok(f) => ChunkBytes::File(f),
            Err(e) => {
                if files
                    .failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    == 0
                {
                    tracing::warn!(error = %e, "cannot write head chunk file; keeping chunks in memory");
                }
                ChunkBytes::Heap(Arc::from(self.w.bytes.as_slice()))
            }
        };
        FrozenChunk {
            bytes,
            n: self.n,
            min_t: self.min_t,
            max_t: self.max_t,
        }
    }
}

/// Where a frozen chunk's bytes live.
#[derive(Clone, Debug)]
enum ChunkBytes {
    Heap(Arc<[u8]>),
    File(FileChunk),
}

impl ChunkBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            ChunkBytes::Heap(b) => b,
            ChunkBytes::File(f) => f.bytes(),
        }
    }
}

/// An immutable chunk, cheap to share between the head and readers.
#[derive(Clone, Debug)]
pub struct FrozenChunk {
    bytes: ChunkBytes,
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
        match &self.bytes {
            ChunkBytes::Heap(b) => b.len(),
            ChunkBytes::File(f) => f.len(),
        }
    }

    /// The same chunk with its bytes in memory, read without mapping a
    /// file chunk (a cut reads every chunk once; through the map that
    /// would make the whole window resident).
    pub fn detached(&self) -> FrozenChunk {
        let bytes = match &self.bytes {
            ChunkBytes::Heap(_) => return self.clone(),
            ChunkBytes::File(f) => match f.read_detached() {
                Ok(b) => ChunkBytes::Heap(b.into()),
                // An unreadable scratch file: fall back to the map.
                Err(_) => return self.clone(),
            },
        };
        FrozenChunk { bytes, ..*self }
    }

    /// Appends the samples with `start <= t <= end` to `out`, decoding
    /// no further than `end` (the bulk path of a query's read).
    pub fn decode_into(&self, start: Timestamp, end: Timestamp, out: &mut Vec<Sample>) {
        self.decode_into_with(None, start, end, out);
    }

    /// [`Self::decode_into`], starting at the latest of `restarts` (taken
    /// from the open chunk this is a snapshot of) that lies before `start`.
    pub fn decode_into_with(
        &self,
        restarts: Option<&RestartPoints>,
        start: Timestamp,
        end: Timestamp,
        out: &mut Vec<Sample>,
    ) {
        if self.max_t < start || self.min_t > end {
            return;
        }
        let bytes = self.bytes.as_slice();
        let from = restarts
            .filter(|rp| rp.chunk_min_t == self.min_t)
            .and_then(|rp| {
                rp.points
                    .iter()
                    .rev()
                    .filter(|p| {
                        p.read > 0
                            && u16::from(p.read) <= self.n
                            && p.t < start
                            && usize::from(p.bit) <= bytes.len() * 8
                    })
                    .find_map(|p| Some((usize::from(p.bit), p.state()?)))
            });
        let (mut r, mut st) = match from {
            Some((bit, state)) => (BitReader::at(bytes, bit), state),
            None => (BitReader::new(bytes), DecodeState::default()),
        };
        out.reserve(usize::from(self.n));
        while st.read < self.n {
            // A short read means the chunk is damaged; stop rather than invent data.
            let Some(s) = decode_one(&mut st, &mut r) else {
                break;
            };
            if s.t > end {
                break;
            }
            if s.t >= start {
                out.push(s);
            }
        }
    }

    pub fn iter(&self) -> ChunkIter {
        ChunkIter {
            chunk: self.clone(),
            pos: ReaderPos::default(),
            state: DecodeState::default(),
        }
    }
}

/// Decodes a chunk lazily, one sample at a time.
pub struct ChunkIter {
    chunk: FrozenChunk,
    pos: ReaderPos,
    state: DecodeState,
}

/// The value half of the decoder state.
#[derive(Clone, Copy, Default)]
struct ValueDecoder {
    v_bits: u64,
    leading: u8,
    trailing: u8,
    dec: DecimalState,
}

impl ChunkIter {
    fn decode_next(&mut self) -> Option<Sample> {
        let mut r = BitReader::resume(self.chunk.bytes.as_slice(), self.pos);
        let s = decode_one(&mut self.state, &mut r)?;
        self.pos = r.pos();
        Some(s)
    }
}

/// The decoder's running state between samples.
#[derive(Clone, Copy, Default)]
struct DecodeState {
    read: u16,
    t: i64,
    t_delta: i64,
    values: ValueDecoder,
}

/// Decodes the sample after `st` from `r`.
#[inline(always)]
fn decode_one(st: &mut DecodeState, r: &mut BitReader) -> Option<Sample> {
    if st.read == 0 {
        st.t = r.read_bits(64) as i64;
        st.values.read_first(r)?;
    } else {
        let dod = read_dod(r);
        st.t_delta = st.t_delta.wrapping_add(dod);
        st.t = st.t.wrapping_add(st.t_delta);
        st.values.read_next(r)?;
    }
    // Reads past the end see zero bits; a chunk that runs out is damaged.
    if r.overrun() {
        return None;
    }
    st.read += 1;
    Some(Sample::new(st.t, f64::from_bits(st.values.v_bits)))
}

/// Byte `i` of a little table packed into a word: a shift, not a load,
/// on the decoder's dependency chain.
#[inline(always)]
fn packed(table: u32, i: u8) -> u8 {
    (table >> (8 * u32::from(i))) as u8
}

impl ValueDecoder {
    fn read_first(&mut self, r: &mut BitReader) -> Option<()> {
        self.v_bits = r.read_bits(64);
        let scale = r.read_bits(5) as u8;
        self.dec = DecimalState::default();
        if scale <= MAX_SCALE {
            self.dec.scale = scale;
            self.dec.mantissa = Some(mantissa_at(f64::from_bits(self.v_bits), scale)?);
        }
        Some(())
    }

    /// The value after the first. The common codes (same value, decimal
    /// delta at the same width, decimal delta at a new width) are read
    /// from one window without branching on which of them it is: the
    /// code changes from sample to sample, so a branch on it mispredicts.
    #[inline(always)]
    fn read_next(&mut self, r: &mut BitReader) -> Option<()> {
        let w = r.window();
        let ones = (w.leading_ones() as u8).min(4);
        if ones == 4 {
            // Not a decimal: Gorilla XOR of the float bits.
            r.consume(4);
            self.read_xor(r)?;
            self.dec.mantissa = None;
            return Some(());
        }
        if ones == 3 {
            return self.read_new_scale(r);
        }
        // Header bits: `0`, `10`, or `110` + 6 bits of width.
        let header = packed(0x09_02_01, ones);
        let new_width = ((w << 3) >> 58) as u8 + 1;
        let width = if ones == 2 { new_width } else { self.dec.width };
        let payload = if ones == 0 { 0 } else { width };
        if header + payload > 56 {
            return self.read_wide(r, ones);
        }
        // The top `payload` bits after the header (none when payload is 0).
        let z = ((w << header) >> 1) >> (63 - payload);
        r.consume(u32::from(header + payload));
        if ones != 0 {
            let m = self.dec.mantissa?.checked_add(unzigzag(z))?;
            self.dec.mantissa = Some(m);
            self.dec.width = width;
            self.v_bits = decimal_value(m, self.dec.scale).to_bits();
        }
        Some(())
    }

    /// A decimal delta too wide for one window.
    #[cold]
    fn read_wide(&mut self, r: &mut BitReader, ones: u8) -> Option<()> {
        r.read_prefix();
        if ones == 2 {
            self.dec.width = r.read_bits(6) as u8 + 1;
        }
        let d = unzigzag(r.read_bits(self.dec.width));
        let m = self.dec.mantissa?.checked_add(d)?;
        self.dec.mantissa = Some(m);
        self.v_bits = decimal_value(m, self.dec.scale).to_bits();
        Some(())
    }

    /// A value that starts a new decimal scale: its XOR'd float bits,
    /// then the scale's mantissa.
    #[cold]
    fn read_new_scale(&mut self, r: &mut BitReader) -> Option<()> {
        r.read_prefix();
        let scale = r.read_bits(4) as u8;
        self.read_xor(r)?;
        self.dec = DecimalState {
            mantissa: Some(mantissa_at(f64::from_bits(self.v_bits), scale)?),
            scale,
            width: 0,
        };
        Some(())
    }

    #[inline(always)]
    fn read_xor(&mut self, r: &mut BitReader) -> Option<()> {
        if r.read_bit() {
            self.leading = r.read_bits(5) as u8;
            let sig = match r.read_bits(6) as u8 {
                0 => 64,
                s => s,
            };
            self.trailing = 64u8.checked_sub(self.leading + sig)?;
        }
        let sig = 64u8.checked_sub(self.leading + self.trailing)?;
        let bits = r.read_bits(sig);
        self.v_bits ^= bits.checked_shl(u32::from(self.trailing)).unwrap_or(0);
        Some(())
    }
}

/// A timestamp's delta of delta. The short forms are read from one window
/// without branching on which one it is (scrape jitter makes that vary).
#[inline(always)]
fn read_dod(r: &mut BitReader) -> i64 {
    let w = r.window();
    let ones = (w.leading_ones() as u8).min(4);
    if ones == 4 {
        r.read_prefix();
        return r.read_bits(64) as i64;
    }
    // Payload bits of the prefixes `0`, `10`, `110`, `1110`.
    let bits = packed(0x14_0E_06_00, ones);
    let used = ones + 1;
    r.consume(u32::from(used + bits));
    // Sign-extended top `bits` bits after the prefix; zero when bits is 0.
    let v = (((w << used) as i64) >> 1) >> (63 - bits);
    v & -i64::from(bits != 0)
}

impl Iterator for ChunkIter {
    type Item = Sample;
    fn next(&mut self) -> Option<Sample> {
        if self.state.read >= self.chunk.n {
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
    fn decode_into_keeps_exactly_the_range() {
        let samples: Vec<_> = (0..120)
            .map(|i| Sample::new(1_000 + i * 15_000 + (i * 7) % 11, (i * i) as f64 / 4.0))
            .collect();
        let mut c = OpenChunk::new();
        for s in &samples {
            c.push(*s);
        }
        let frozen = c.freeze();
        for (start, end) in [
            (0, i64::MAX),
            (1_000, 1_000),
            (50_000, 400_000),
            (2_000, 14_000),
            (5_000_000, 6_000_000),
        ] {
            let mut out = vec![Sample::new(-1, 0.0)];
            frozen.decode_into(start, end, &mut out);
            let want: Vec<_> = std::iter::once(Sample::new(-1, 0.0))
                .chain(
                    samples
                        .iter()
                        .copied()
                        .filter(|s| start <= s.t && s.t <= end),
                )
                .collect();
            assert_eq!(out, want, "{start}..={end}");
        }
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
    fn jittered_scrapes_take_about_a_byte_per_timestamp() {
        let samples: Vec<_> = (0..120)
            .map(|i| Sample::new(1_700_000_000_000 + i * 15_000 + (i * 7) % 11 - 5, 1.0))
            .collect();
        let mut c = OpenChunk::new();
        for s in &samples {
            c.push(*s);
        }
        assert!(c.byte_len() < 17 + 120 * 9 / 8, "{} bytes", c.byte_len());
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

    fn encoded_len(values: &[f64]) -> usize {
        let mut c = OpenChunk::new();
        for (i, v) in values.iter().enumerate() {
            c.push(Sample::new(i as i64 * 15_000, *v));
        }
        let samples: Vec<_> = c.snapshot().iter().collect();
        assert_eq!(samples.len(), values.len());
        for (s, v) in samples.iter().zip(values) {
            assert_eq!(s.v.to_bits(), v.to_bits(), "{v} came back as {}", s.v);
        }
        c.byte_len()
    }

    #[test]
    fn decimal_values_take_a_few_bits() {
        // A CPU-seconds counter with two decimals, as node_exporter reports.
        let mut v = 1234.56;
        let counter: Vec<f64> = (0..120)
            .map(|i| {
                v = ((v + 0.37 + (i % 7) as f64 * 0.11) * 100.0_f64).round() / 100.0;
                v
            })
            .collect();
        let len = encoded_len(&counter);
        assert!(len < 16 + 2 + 120 * 2, "{len} bytes for a cents counter");
        // Durations from a nanosecond clock reported in seconds.
        let gauge: Vec<f64> = (0..120)
            .map(|i| (100_000 + (i * 7_919_993) % 50_000_000) as f64 / 1e9)
            .collect();
        let len = encoded_len(&gauge);
        assert!(len < 16 + 2 + 120 * 4, "{len} bytes for a ns duration");
    }

    #[test]
    fn values_that_are_not_decimals_fall_back_exactly() {
        let values = vec![
            1.5,
            1.0 / 3.0,
            2.25,
            -0.0,
            0.0,
            f64::from_bits(STALE_NAN_BITS),
            7.0,
            1e300,
            -1e-300,
            f64::INFINITY,
            9_007_199_254_740_993.0,
            0.1,
            0.1 + 0.2,
            123.456,
            123.4567,
            1e15,
        ];
        encoded_len(&values);
    }

    #[test]
    fn chunks_frozen_into_files_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let files = ChunkFiles::open(dir.path()).unwrap();
        let mut c = OpenChunk::new();
        for i in 0..120 {
            c.push(Sample::new(i * 15_000, i as f64 * 0.25));
        }
        let expected: Vec<Sample> = c.snapshot().iter().collect();
        let frozen = c.freeze_into(&files);
        assert!(matches!(frozen.bytes, ChunkBytes::File(_)));
        assert_eq!(frozen.iter().collect::<Vec<_>>(), expected);
        let detached = frozen.detached();
        assert!(matches!(detached.bytes, ChunkBytes::Heap(_)));
        assert_eq!(detached.iter().collect::<Vec<_>>(), expected);
        assert_eq!(detached.byte_len(), frozen.byte_len());
    }

    #[test]
    fn a_window_at_the_end_is_decoded_from_a_restart_point() {
        let mut c = OpenChunk::new();
        for i in 0..120 {
            c.push(Sample::new(i * 15_000, (i * 37 % 11) as f64));
        }
        let rp = c.restart_points();
        let good = c.snapshot();
        // Spoil everything before the last restart point (after 96 samples):
        // a reader that starts there still reads the window right.
        let mut bytes = good.bytes.as_slice().to_vec();
        let keep = usize::from(rp.points[1].bit) / 8;
        for b in &mut bytes[..keep] {
            *b = 0xff;
        }
        let spoiled = FrozenChunk {
            bytes: ChunkBytes::Heap(Arc::from(bytes)),
            ..good.clone()
        };
        let (start, end) = (100 * 15_000, 119 * 15_000);
        let (mut want, mut got) = (Vec::new(), Vec::new());
        good.decode_into(start, end, &mut want);
        spoiled.decode_into_with(Some(&rp), start, end, &mut got);
        assert_eq!(want.len(), 20);
        assert_eq!(got, want);
        // Every series' open chunk holds two of these.
        assert_eq!(std::mem::size_of::<Restart>(), 32);
    }

    #[test]
    fn damaged_chunks_stop_without_panicking() {
        let mut c = OpenChunk::new();
        for i in 0..120 {
            c.push(Sample::new(i * 15_000, (i * i) as f64 / 8.0));
        }
        let whole = c.freeze();
        let bytes = whole.bytes.as_slice();
        for cut in 0..bytes.len() {
            let short = FrozenChunk {
                bytes: ChunkBytes::Heap(Arc::from(&bytes[..cut])),
                ..whole.clone()
            };
            assert!(short.iter().count() < 120);
        }
        let mut flipped = bytes.to_vec();
        for b in flipped.iter_mut().skip(16) {
            *b = !*b;
        }
        let bad = FrozenChunk {
            bytes: ChunkBytes::Heap(Arc::from(flipped)),
            ..whole
        };
        let _ = bad.iter().count();
    }

    proptest! {
        #[test]
        fn decimal_series_roundtrip(
            scale in 0u32..12,
            start in -1_000_000_000i64..1_000_000_000,
            steps in proptest::collection::vec(-100_000i64..100_000, 119),
        ) {
            let p = 10f64.powi(scale as i32);
            let mut m = start;
            let mut values = vec![m as f64 / p];
            for d in steps {
                m += d;
                values.push(m as f64 / p);
            }
            encoded_len(&values);
        }

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
            prop_assert_eq!(roundtrip(&samples), samples.clone());
            let mut bulk = Vec::new();
            let mut c = OpenChunk::new();
            for s in &samples {
                c.push(*s);
            }
            c.freeze().decode_into(i64::MIN, i64::MAX, &mut bulk);
            prop_assert_eq!(bulk, samples);
        }

        /// Decoding from an open chunk's restart points reads exactly what
        /// decoding from its start does, for any window.
        #[test]
        fn restart_points_decode_the_same(
            start in any::<i64>().prop_map(|t| t / 4),
            deltas in proptest::collection::vec(1i64..100_000, 0..119),
            values in proptest::collection::vec(
                prop_oneof![
                    (0u64..1_000_000).prop_map(|m| m as f64 / 100.0),
                    any::<u64>().prop_map(f64::from_bits),
                    Just(7.0),
                ],
                120,
            ),
            lo in 0usize..120,
            len in 0usize..120,
        ) {
            let mut c = OpenChunk::new();
            let mut t = start;
            let mut ts = vec![t];
            c.push(Sample::new(t, values[0]));
            for (i, d) in deltas.iter().enumerate() {
                t += d;
                ts.push(t);
                c.push(Sample::new(t, values[i + 1]));
            }
            let rp = c.restart_points();
            let frozen = c.snapshot();
            let from = ts[lo.min(ts.len() - 1)];
            let to = ts[(lo + len).min(ts.len() - 1)];
            let (mut plain, mut restarted) = (Vec::new(), Vec::new());
            frozen.decode_into(from, to, &mut plain);
            frozen.decode_into_with(Some(&rp), from, to, &mut restarted);
            let bits = |v: &[Sample]| -> Vec<(i64, u64)> { v.iter().map(|s| (s.t, s.v.to_bits())).collect() };
            prop_assert_eq!(bits(&restarted), bits(&plain));
        }

        /// Whatever the bytes, both decoders stop without panicking and
        /// agree on what they read.
        #[test]
        fn arbitrary_bytes_decode_alike_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            n in 0u16..300,
        ) {
            let c = FrozenChunk {
                bytes: ChunkBytes::Heap(Arc::from(bytes)),
                n,
                min_t: i64::MIN,
                max_t: i64::MAX,
            };
            let bits = |v: Vec<Sample>| -> Vec<(i64, u64)> {
                v.into_iter().map(|s| (s.t, s.v.to_bits())).collect()
            };
            let lazy = bits(c.iter().collect());
            let mut bulk = Vec::new();
            c.decode_into(i64::MIN, i64::MAX, &mut bulk);
            prop_assert!(lazy.len() <= usize::from(n));
            prop_assert_eq!(bits(bulk), lazy);
        }
    }
}
