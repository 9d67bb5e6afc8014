//! The allocator that the `strata` binary and the benchmarks run on.
//!
//! mimalloc, because a check allocates and frees millions of small
//! syntax-tree nodes on several threads: glibc's malloc took a fifth of a
//! check's instructions, mimalloc a tenth (docs/decisions/0001). The
//! library itself sets no global allocator; a program opts in with
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: strata::alloc::Allocator = strata::alloc::ALLOCATOR;
//! ```
//!
//! and calls [`tune`] first thing in `main`.

/// The global allocator type.
pub type Allocator = mimalloc::MiMalloc;

/// The value to declare it with.
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (mimalloc.h); the
/// Rust bindings name only the options of mimalloc 2.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system after 10 ms instead of mimalloc's
/// default second, which outlasts a whole check: the peak memory of a check
/// of the shared corpora drops from 52 MB to 40 MB, of ten copies from
/// 166 MB to 129 MB, for 5-8% of its time (docs/decisions/0001).
/// `MIMALLOC_PURGE_DELAY` in the environment still decides. Call before any
/// other thread exists.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets one process-wide integer option of mimalloc, which
    // reads it whenever it schedules a purge; no other thread runs yet.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
}
