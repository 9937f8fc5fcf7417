//! loom: sleeping is a yield (a spurious wake-up, which every algorithm must tolerate).

use std::time::Duration;

use crate::loom::AtomicU32;

#[derive(Debug)]
pub(crate) struct Parker;

impl Parker {
    pub(crate) fn new(_segment: &str) -> std::io::Result<Parker> {
        Ok(Parker)
    }

    pub(crate) fn wait(
        &self,
        _slot: usize,
        _word: &AtomicU32,
        _expected: u32,
        _timeout: Option<Duration>,
    ) {
        loom::thread::yield_now();
    }

    pub(crate) fn wake(&self, _slot: usize, _word: &AtomicU32, _n: u32, _sleepers: u32) {}
}
