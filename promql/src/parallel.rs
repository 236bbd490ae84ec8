//! Spreading per-series work over the cores: heavy queries (many series,
//! many steps) are split into one contiguous slice per core.

use crate::error::QueryError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Below this much work (series × steps or samples) threads cost more than they save.
const MIN_PARALLEL_WORK: usize = 30_000;

/// The limits per-series work must respect, shareable across threads.
pub(crate) struct Budget<'a> {
    /// Samples read from storage so far (the query's statistics).
    pub loaded: &'a AtomicU64,
    /// Samples (and step slots) the query holds in memory now.
    pub held: &'a AtomicU64,
    pub max_samples: u64,
    /// What all running queries hold together, if shared.
    pub shared: Option<&'a SharedBudget>,
    pub deadline: Instant,
}

impl Budget<'_> {
    /// `n` samples read from storage into a buffer that lives while one
    /// series is worked on: counted, and refused when they would not fit
    /// beside what the query already holds.
    pub fn load(&self, n: usize) -> Result<(), QueryError> {
        self.loaded.fetch_add(n as u64, Ordering::Relaxed);
        if self.held.load(Ordering::Relaxed) + n as u64 > self.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(())
    }

    /// `n` more samples kept in memory (until the node that made them is
    /// reconciled): refused past the query's limit or the shared budget.
    pub fn hold(&self, n: usize) -> Result<(), QueryError> {
        let total = self.held.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        // Counted in both before either is checked: what the query holds
        // is given back from both when it ends.
        let shared = self.shared.map_or(Ok(()), |s| s.add(n as u64));
        if total > self.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        shared
    }

    /// `n` samples counted by [`Self::hold`] are no longer kept: a
    /// streamed consumer folded them into its own result.
    pub fn release(&self, n: usize) {
        let n = n as u64;
        let _ = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                Some(h.saturating_sub(n))
            });
        if let Some(s) = self.shared {
            s.sub(n);
        }
    }

    pub fn check_deadline(&self) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout("query execution"));
        }
        Ok(())
    }
}

/// Samples held in memory by all queries at once, bounded, so that many
/// heavy queries in their slots cannot together exhaust memory while each
/// stays under its own limit. Each query gives back what it held when it
/// ends, also when it fails.
#[derive(Debug)]
pub struct SharedBudget {
    held: AtomicU64,
    max: u64,
}

impl SharedBudget {
    pub fn new(max_samples: u64) -> Self {
        SharedBudget {
            held: AtomicU64::new(0),
            max: max_samples,
        }
    }

    /// Samples all running queries hold now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    fn add(&self, n: u64) -> Result<(), QueryError> {
        let total = self.held.fetch_add(n, Ordering::Relaxed) + n;
        if total > self.max {
            return Err(QueryError::MemoryBudget);
        }
        Ok(())
    }

    pub(crate) fn sub(&self, n: u64) {
        // Never below zero, whatever the order of updates.
        let _ = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                Some(h.saturating_sub(n))
            });
    }

    /// Moves this budget's count from `from` to `to` samples for one query.
    pub(crate) fn adjust(&self, from: u64, to: u64) {
        if to >= from {
            self.held.fetch_add(to - from, Ordering::Relaxed);
        } else {
            self.sub(from - to);
        }
    }
}

/// Worker threads for heavy work. Asked once: `available_parallelism`
/// reads cgroup files on every call, which cost a cheap query ~3 % of its
/// time.
fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8)
    })
}

/// `f` over every item, in order; in parallel when `work` is large.
pub(crate) fn par_map<T, R, F>(items: Vec<T>, work: usize, f: F) -> Result<Vec<R>, QueryError>
where
    T: Send,
    R: Send,
    F: Fn(T) -> Result<R, QueryError> + Sync,
{
    if work < MIN_PARALLEL_WORK || items.len() < 2 || threads() < 2 {
        return items.into_iter().map(f).collect();
    }
    let n = threads();
    let per = items.len().div_ceil(n);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(n);
    let mut it = items.into_iter();
    loop {
        let c: Vec<T> = it.by_ref().take(per).collect();
        if c.is_empty() {
            break;
        }
        chunks.push(c);
    }
    let f = &f;
    let results: Vec<Result<Vec<R>, QueryError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| scope.spawn(move || c.into_iter().map(f).collect::<Result<Vec<R>, _>>()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(QueryError::exec("a query worker thread failed")))
            })
            .collect()
    });
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_reports_errors_in_parallel() {
        let items: Vec<usize> = (0..10_000).collect();
        let out = par_map(items.clone(), MIN_PARALLEL_WORK, |x| Ok(x * 2)).unwrap();
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let err = par_map(items, MIN_PARALLEL_WORK, |x| {
            if x == 7_777 {
                Err(QueryError::exec("boom"))
            } else {
                Ok(x)
            }
        });
        assert!(matches!(err, Err(QueryError::Execution(m)) if m == "boom"));
    }
}
