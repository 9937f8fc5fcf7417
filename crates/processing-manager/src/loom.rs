//! The atomics of the mailbox (`sys/mailbox_linux.rs`): std's normally, loom's under
//! `cfg(loom)` so that the model checker explores their interleavings (see `tests/loom_*.rs`
//! and [`crate::model`]). Also the seams loom needs: the futex sleep as a yield, and reports
//! of plain copies into and out of the shared slots (checked against processing-shm's model
//! cells under loom, nothing otherwise).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, Ordering};

use std::time::Duration;

/// Sleeps on the futex `word` while it holds `expected` (a yield under loom: a spurious
/// wake-up, which the mailbox tolerates).
#[inline]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    #[cfg(loom)]
    {
        let _ = (word, expected, timeout);
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    processing_core::os::futex_wait(word, expected, timeout);
}

/// Wakes up to `n` sleepers on the futex `word` (nobody sleeps under loom).
#[inline]
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) {
    #[cfg(loom)]
    let _ = (word, n);
    #[cfg(not(loom))]
    processing_core::os::futex_wake(word, n);
}

/// Reports a plain write of `len` shared bytes at `ptr` (checked for data races under loom).
#[inline(always)]
pub(crate) fn wrote(ptr: *const u8, len: usize) {
    #[cfg(loom)]
    processing_shm::model::wrote(ptr, len);
    #[cfg(not(loom))]
    let _ = (ptr, len);
}

/// Reports a plain read of `len` shared bytes at `ptr` (checked for data races under loom).
#[inline(always)]
pub(crate) fn read(ptr: *const u8, len: usize) {
    #[cfg(loom)]
    processing_shm::model::read(ptr, len);
    #[cfg(not(loom))]
    let _ = (ptr, len);
}
