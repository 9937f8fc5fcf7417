//! Unix: sleeps on the word itself with `processing_core::os::futex_wait` (Linux: a shared
//! futex on the mapping; other Unix: short polling sleeps, where the wake is a no-op).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use processing_core::os::{futex_wait, futex_wake};

/// Sleeps on and wakes the word itself; holds nothing.
#[derive(Debug)]
pub(crate) struct Parker;

impl Parker {
    pub(crate) fn new(_segment: &str) -> std::io::Result<Parker> {
        Ok(Parker)
    }

    #[inline]
    pub(crate) fn wait(
        &self,
        _slot: usize,
        word: &AtomicU32,
        expected: u32,
        timeout: Option<Duration>,
    ) {
        futex_wait(word, expected, timeout);
    }

    #[inline]
    pub(crate) fn wake(&self, _slot: usize, word: &AtomicU32, n: u32, _sleepers: u32) {
        futex_wake(word, n);
    }
}
