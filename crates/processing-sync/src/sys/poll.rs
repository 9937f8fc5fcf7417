//! Other Unix: no portable process-shared futex, so sleepers poll with short sleeps.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Sleeps in short steps until the word changes or the timeout passes.
#[derive(Debug)]
pub(crate) struct Parker;

impl Parker {
    pub(crate) fn new(_segment: &str) -> std::io::Result<Parker> {
        Ok(Parker)
    }

    pub(crate) fn wait(
        &self,
        _slot: usize,
        word: &AtomicU32,
        expected: u32,
        timeout: Option<Duration>,
    ) {
        let start = Instant::now();
        let mut step = Duration::from_micros(50);
        while word.load(Ordering::SeqCst) == expected {
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                return;
            }
            std::thread::sleep(step);
            step = (step * 2).min(Duration::from_millis(2));
        }
    }

    pub(crate) fn wake(&self, _slot: usize, _word: &AtomicU32, _n: u32, _sleepers: u32) {}
}
