//! Spreading per-series work over the cores: heavy queries (many series,
//! many steps) are split into one contiguous slice per core.

use crate::error::QueryError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Below this much work (series × steps or samples) threads cost more than they save.
const MIN_PARALLEL_WORK: usize = 30_000;

/// The limits per-series work must respect, shareable across threads.
pub(crate) struct Budget<'a> {
    pub loaded: &'a AtomicU64,
    pub max_samples: u64,
    pub deadline: Instant,
}

impl Budget<'_> {
    pub fn load(&self, n: usize) -> Result<(), QueryError> {
        let total = self.loaded.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > self.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(())
    }

    pub fn check_deadline(&self) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout("query execution"));
        }
        Ok(())
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
