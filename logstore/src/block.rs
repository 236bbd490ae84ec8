//! A block: up to a few hundred consecutive entries of one stream, the unit
//! the index points at. Stored as one tantivy document whose payload is
//! `count`, then per entry a zig-zag varint timestamp delta (from the
//! previous entry, the first from zero), a varint length and the line's
//! bytes. The doc store compresses payloads (zstd) in large blocks.

/// One log line and its timestamp (nanoseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ts: i64,
    pub line: String,
}

impl Entry {
    pub fn new(ts: i64, line: impl Into<String>) -> Self {
        Entry {
            ts,
            line: line.into(),
        }
    }
}

/// Entries per block and bytes per block at which an open block is sealed.
pub(crate) const MAX_BLOCK_ENTRIES: usize = 256;
pub(crate) const MAX_BLOCK_BYTES: usize = 64 << 10;

/// Consecutive runs of `entries` within both block bounds.
pub(crate) fn split(entries: &[Entry]) -> impl Iterator<Item = &[Entry]> {
    let mut rest = entries;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut n = 0;
        while n < rest.len()
            && n < MAX_BLOCK_ENTRIES
            && (n == 0 || bytes + rest[n].line.len() <= MAX_BLOCK_BYTES)
        {
            bytes += rest[n].line.len();
            n += 1;
        }
        let (block, tail) = rest.split_at(n);
        rest = tail;
        Some(block)
    })
}

pub(crate) fn encode(entries: &[Entry], out: &mut Vec<u8>) {
    out.clear();
    put_varint(out, entries.len() as u64);
    let mut prev = 0i64;
    for e in entries {
        put_varint(out, zigzag(e.ts.wrapping_sub(prev)));
        prev = e.ts;
        put_varint(out, e.line.len() as u64);
        out.extend_from_slice(e.line.as_bytes());
    }
}

/// Decodes a payload written by [`encode`]; `Err` names what is wrong.
#[cfg(test)]
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for_each(bytes, |ts, line| out.push(Entry::new(ts, line)))?;
    Ok(out)
}

/// Visits each entry of a payload in stored order, without copying lines.
pub(crate) fn for_each(mut bytes: &[u8], mut f: impl FnMut(i64, &str)) -> Result<(), String> {
    let count = get_varint(&mut bytes).ok_or("truncated entry count")? as usize;
    let mut prev = 0i64;
    for i in 0..count {
        let delta =
            get_varint(&mut bytes).ok_or_else(|| format!("entry {i}: truncated timestamp"))?;
        let ts = prev.wrapping_add(unzigzag(delta));
        prev = ts;
        let len =
            get_varint(&mut bytes).ok_or_else(|| format!("entry {i}: truncated length"))? as usize;
        if len > bytes.len() {
            return Err(format!("entry {i}: line of {len} bytes past the end"));
        }
        let (line, rest) = bytes.split_at(len);
        bytes = rest;
        let line =
            std::str::from_utf8(line).map_err(|_| format!("entry {i}: line is not UTF-8"))?;
        f(ts, line);
    }
    if !bytes.is_empty() {
        return Err(format!("{} bytes after the last entry", bytes.len()));
    }
    Ok(())
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(v);
        }
    }
    None
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_keeps_order_and_out_of_order_times() {
        let entries = vec![
            Entry::new(1_700_000_000_000_000_000, "first"),
            Entry::new(1_699_999_999_000_000_000, "earlier, out of order"),
            Entry::new(i64::MIN, ""),
            Entry::new(i64::MAX, "ünïcode ✓"),
        ];
        let mut buf = Vec::new();
        encode(&entries, &mut buf);
        assert_eq!(decode(&buf).unwrap(), entries);
    }

    #[test]
    fn split_bounds_entries_and_bytes() {
        let small: Vec<Entry> = (0..600).map(|i| Entry::new(i, "x")).collect();
        let sizes: Vec<usize> = split(&small).map(|b| b.len()).collect();
        assert_eq!(
            sizes,
            [
                MAX_BLOCK_ENTRIES,
                MAX_BLOCK_ENTRIES,
                600 - 2 * MAX_BLOCK_ENTRIES
            ]
        );
        let big: Vec<Entry> = (0..5)
            .map(|i| Entry::new(i, "y".repeat(MAX_BLOCK_BYTES / 2 + 1)))
            .collect();
        assert_eq!(
            split(&big).map(|b| b.len()).collect::<Vec<_>>(),
            [1, 1, 1, 1, 1]
        );
        let huge = vec![Entry::new(0, "z".repeat(MAX_BLOCK_BYTES * 2))];
        assert_eq!(split(&huge).count(), 1);
        assert_eq!(split(&[]).count(), 0);
    }

    #[test]
    fn truncated_payloads_name_the_entry() {
        let mut buf = Vec::new();
        encode(&[Entry::new(5, "hello"), Entry::new(6, "world")], &mut buf);
        let err = decode(&buf[..buf.len() - 2]).unwrap_err();
        assert!(err.contains("entry 1"), "{err}");
        assert!(decode(&[]).is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn written_entries_read_back(raw in proptest::collection::vec((any::<i64>(), ".{0,40}"), 0..50)) {
            let entries: Vec<Entry> = raw.into_iter().map(|(ts, l)| Entry::new(ts, l)).collect();
            let mut buf = Vec::new();
            encode(&entries, &mut buf);
            prop_assert_eq!(decode(&buf).unwrap(), entries);
        }
    }
}
