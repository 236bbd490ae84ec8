//! Samples, timestamps and series references.

/// Milliseconds since the Unix epoch, as Prometheus counts them.
pub type Timestamp = i64;

/// The head's identifier for one series; dense, assigned in creation order,
/// so postings lists built by appending refs stay sorted.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesRef(pub u64);

/// The exact NaN bit pattern Prometheus writes to mark a series stale.
/// It must survive every encoding bit for bit, so values are compared and
/// stored by their bits, never by float equality.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// One float sample.
#[derive(Copy, Clone, Debug)]
pub struct Sample {
    pub t: Timestamp,
    pub v: f64,
}

impl Sample {
    pub fn new(t: Timestamp, v: f64) -> Self {
        Sample { t, v }
    }

    /// True if this is Prometheus's staleness marker.
    pub fn is_stale(&self) -> bool {
        self.v.to_bits() == STALE_NAN_BITS
    }

    /// Bitwise identity: two samples are the same write only if timestamp
    /// and value bits agree (NaN payloads included).
    pub fn same_as(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

impl PartialEq for Sample {
    fn eq(&self, other: &Self) -> bool {
        self.same_as(other)
    }
}
