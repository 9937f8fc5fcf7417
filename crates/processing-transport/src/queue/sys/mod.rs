//! Platform seam of the queue: waiting on a 32-bit word of shared memory until it changes, and
//! waking the processes that wait on it. The rest of `queue` never writes `#[cfg]` for a platform.

#[cfg(all(unix, not(loom)))]
mod unix;
#[cfg(all(unix, not(loom)))]
pub(crate) use unix::{wait, wake_all};

#[cfg(all(windows, not(loom)))]
mod windows;
#[cfg(all(windows, not(loom)))]
pub(crate) use windows::{wait, wake_all};

/// loom: a sleep is a yield (a spurious wake-up, which every waiter tolerates); nothing to wake.
#[cfg(loom)]
pub(crate) fn wait(_word: &crate::loom::AtomicU32, _expected: u32, _timeout: std::time::Duration) {
    loom::thread::yield_now();
}

/// loom: sleepers only yield, so there is nobody to wake.
#[cfg(loom)]
pub(crate) fn wake_all(_word: &crate::loom::AtomicU32) {}
