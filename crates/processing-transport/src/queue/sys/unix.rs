//! Unix: `processing_core::os::futex_wait`/`futex_wake` (Linux: a shared, not process-private,
//! futex, so a wake-up crosses processes; other Unix systems poll the word with short sleeps).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `word` holds `expected`, at most `timeout`. Spurious returns are allowed: the
/// caller re-checks its condition.
#[inline]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    processing_core::os::futex_wait(word, expected, Some(timeout));
}

/// Wakes every process and thread waiting on `word`.
#[inline]
pub(crate) fn wake_all(word: &AtomicU32) {
    processing_core::os::futex_wake(word, u32::MAX);
}
