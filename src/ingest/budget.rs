//! The memory that write requests may use at once for decompressing and
//! decoding their bodies, shared by every write route.
//!
//! Each request is bounded on its own (`limits.max_decompressed_body_bytes`),
//! but many requests at once could still add up to an out-of-memory kill.
//! A request reserves what it will need before it decompresses (the size
//! is known up front: snappy's header, gzip's trailer, checked while
//! inflating); when the budget is spent, it waits a little for others to
//! finish, then is refused with 429 so its sender retries later.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many bytes of memory decoding takes per decompressed byte: the
/// decompressed buffer plus the decoded labels, samples or lines that
/// point into it or copy it.
pub const DECODE_FACTOR: u64 = 3;

#[derive(Debug)]
pub struct DecodeBudget {
    used: Mutex<u64>,
    freed: Condvar,
    max: u64,
    /// The largest decompressed body one request may have.
    pub max_body: usize,
}

/// Bytes held from the budget until dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a DecodeBudget,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut used = self
            .budget
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *used = used.saturating_sub(self.bytes);
        self.budget.freed.notify_all();
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BudgetError {
    /// The body alone is over the per-request limit (400).
    #[error("decompressed body would be {size} bytes, over the limit of {max} bytes (limits.max_decompressed_body_bytes)")]
    TooLarge { size: usize, max: usize },
    /// Other requests hold the budget (429: retry later).
    #[error("too many write requests are being decompressed at once (limits.max_inflight_decode_bytes = {max} bytes); retry later")]
    Busy { max: u64 },
}

impl DecodeBudget {
    pub fn new(max_inflight: u64, max_body: usize) -> Self {
        DecodeBudget {
            used: Mutex::new(0),
            freed: Condvar::new(),
            max: max_inflight.max(1),
            max_body,
        }
    }

    /// Reserves memory to decode a body of `decompressed` bytes that arrived
    /// as `compressed` bytes, waiting up to `wait` for room. Runs on a
    /// blocking thread (it may wait).
    pub fn reserve(
        &self,
        compressed: usize,
        decompressed: usize,
        wait: Duration,
    ) -> Result<Reservation<'_>, BudgetError> {
        if decompressed > self.max_body {
            return Err(BudgetError::TooLarge {
                size: decompressed,
                max: self.max_body,
            });
        }
        let bytes = (compressed as u64)
            .saturating_add((decompressed as u64).saturating_mul(DECODE_FACTOR))
            // A request that could never fit still gets the whole budget
            // alone rather than waiting forever.
            .min(self.max);
        let deadline = Instant::now() + wait;
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        while *used + bytes > self.max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BudgetError::Busy { max: self.max });
            }
            used = self
                .freed
                .wait_timeout(used, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *used += bytes;
        Ok(Reservation {
            budget: self,
            bytes,
        })
    }

    /// Bytes reserved now.
    #[cfg(test)]
    pub fn used(&self) -> u64 {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The size a gzip body says it inflates to (its trailer's ISIZE, the
/// size modulo 4 GiB). The decoder must still stop at this size: the
/// trailer is what the sender claims, not a proof.
pub fn gzip_claimed_size(body: &[u8]) -> Option<usize> {
    let tail: [u8; 4] = body.get(body.len().checked_sub(4)?..)?.try_into().ok()?;
    Some(u32::from_le_bytes(tail) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let b = DecodeBudget::new(1000, 200);
        let a = b.reserve(10, 100, Duration::ZERO).unwrap();
        assert_eq!(b.used(), 310);
        let c = b.reserve(10, 200, Duration::ZERO).unwrap();
        assert_eq!(b.used(), 920);
        assert_eq!(
            b.reserve(10, 100, Duration::from_millis(20)).unwrap_err(),
            BudgetError::Busy { max: 1000 }
        );
        drop(a);
        assert!(b.reserve(10, 100, Duration::ZERO).is_ok());
        drop(c);
        assert_eq!(b.used(), 0);
        assert_eq!(
            b.reserve(1, 201, Duration::ZERO).unwrap_err(),
            BudgetError::TooLarge {
                size: 201,
                max: 200
            }
        );
    }

    #[test]
    fn a_waiting_request_gets_room_when_another_ends() {
        let b = std::sync::Arc::new(DecodeBudget::new(100, 100));
        let first = b.reserve(0, 30, Duration::ZERO).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| b.reserve(0, 30, Duration::from_secs(5)).map(|_| ()));
            std::thread::sleep(Duration::from_millis(50));
            drop(first);
            assert!(waiter.join().unwrap().is_ok());
        });
    }

    #[test]
    fn gzip_trailer_is_read() {
        assert_eq!(gzip_claimed_size(&[1, 2, 3]), None);
        assert_eq!(gzip_claimed_size(&[9, 9, 0x10, 0, 0, 0]), Some(16));
    }
}
