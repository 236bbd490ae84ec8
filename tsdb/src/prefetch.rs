//! A cache prefetch hint, for loops that know which memory they will touch
//! a few iterations ahead (the head's series lookup and chunk appends walk
//! 1 000 unrelated series per write, each a cache miss).

/// Asks the CPU to start loading the cache line at `p`. Only a hint: it
/// never faults, whatever `p` is, and does nothing on other architectures.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: prefetch has no architectural effect and cannot fault on
        // any address; x86_64 always has SSE.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
