//! How a queue operation waits: a short bounded spin, a few yields, then a sleep on a futex word.
//!
//! A blocking wake-up across cores costs tens of microseconds, busy-polling a fraction of one,
//! so a waiter first spins briefly; an unbounded spin on a shared core would cost a whole time
//! slice, so it soon yields and then sleeps. A sleeper raises a `wake_flag` word before its last
//! check; the waking side makes a system call only when it finds the flag raised, and lowers
//! it in the same atomic swap, so a sleeper that is slow to run costs one wake-up, not one per
//! operation of the waking side.

use crate::loom::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::sys;

/// Longest single sleep: sleepers wake up this often to re-check conditions nobody signals
/// (a lock owner that died, a deadline).
const MAX_SLEEP: Duration = Duration::from_millis(50);

pub(crate) use crate::wait::Deadline;

impl Deadline {
    /// Time left before the deadline (`None`: it has passed), capped at [`MAX_SLEEP`].
    fn sleep_slice(self) -> Option<Duration> {
        match self {
            Deadline::Now => None,
            Deadline::Never => Some(MAX_SLEEP),
            Deadline::At(t) => {
                let left = t.checked_duration_since(Instant::now())?;
                if left.is_zero() {
                    None
                } else {
                    Some(left.min(MAX_SLEEP))
                }
            }
        }
    }
}

/// The state of one waiting loop.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    step: u32,
}

const SPIN_LIMIT: u32 = 6;
const YIELD_LIMIT: u32 = 16;

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { step: 0 }
    }

    /// Spins or yields once if the budget allows; returns false when it is time to sleep.
    pub(crate) fn snooze(&mut self) -> bool {
        // Under loom every wait goes straight to `sleep_on`, whose sleep is a yield.
        if cfg!(loom) {
            return false;
        }
        if self.step <= SPIN_LIMIT {
            for _ in 0..(1u32 << self.step) {
                std::hint::spin_loop();
            }
        } else if self.step <= YIELD_LIMIT {
            std::thread::yield_now();
        } else {
            return false;
        }
        self.step += 1;
        true
    }
}

/// Sleeps on `seq` unless `ready()` holds after raising `wake_flag`. Returns false if the
/// deadline has passed (nothing waited then).
///
/// The waking side changes `seq` with `SeqCst` and then swaps `wake_flag` with `SeqCst`; here
/// the flag is raised with `SeqCst` before `seq` is read, so either the waker sees the flag or
/// the sleeper sees the new `seq` (and `ready()` then sees what was published before it).
pub(crate) fn sleep_on(
    seq: &AtomicU32,
    wake_flag: &AtomicU32,
    deadline: Deadline,
    ready: impl Fn() -> bool,
) -> bool {
    let Some(slice) = deadline.sleep_slice() else {
        return false;
    };
    wake_flag.store(1, Ordering::SeqCst);
    let seen = seq.load(Ordering::SeqCst);
    if !ready() {
        sys::wait(seq, seen, slice);
    }
    true
}

/// Wakes the sleepers on `seq` (whose change was already published with `SeqCst`), if any.
pub(crate) fn wake(seq: &AtomicU32, wake_flag: &AtomicU32) {
    if wake_flag.load(Ordering::SeqCst) != 0 && wake_flag.swap(0, Ordering::SeqCst) != 0 {
        sys::wake_all(seq);
    }
}

/// Publishes a change of `seq` and wakes its sleepers, if any.
pub(crate) fn bump_and_wake(seq: &AtomicU32, wake_flag: &AtomicU32) {
    seq.fetch_add(1, Ordering::SeqCst);
    wake(seq, wake_flag);
}
