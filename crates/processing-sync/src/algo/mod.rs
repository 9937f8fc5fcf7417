//! The algorithms, written over `#[repr(C)]` structs of atomics and a `Parker`, with no
//! knowledge of where the struct lives (a shared segment in the library, an `Arc` in the loom
//! models).

pub(crate) mod barrier;
pub(crate) mod condition;
pub(crate) mod event;
pub(crate) mod lock;
pub(crate) mod semaphore;

use std::time::{Duration, Instant};

use crate::loom::{AtomicU32, Ordering};
use crate::sys::Parker;

/// How often a sleeper wakes to check whether the process it waits for still runs.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// Time left before `deadline` (`None`: forever); `Some(ZERO)` once it has passed.
pub(crate) fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// The shorter of the time left and `cap`.
pub(crate) fn capped(deadline: Option<Instant>, cap: Duration) -> Duration {
    remaining(deadline).map_or(cap, |r| r.min(cap))
}

/// Whether `deadline` has passed.
pub(crate) fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// One sleep of a waiter counted in `sleepers`, on `word` while it holds `expected` (at most
/// `timeout`; the wake-up may be spurious). The count goes up (SeqCst) before `word` is read
/// again (SeqCst), so a waker that changes `word` and then reads `sleepers` either sees this
/// sleeper (and wakes it) or made the change that the re-read sees (and nobody sleeps).
pub(crate) fn counted_sleep(
    park: &Parker,
    slot: usize,
    sleepers: &AtomicU32,
    word: &AtomicU32,
    expected: u32,
    timeout: Option<Duration>,
) {
    sleepers.fetch_add(1, Ordering::SeqCst);
    if word.load(Ordering::SeqCst) == expected {
        park.wait(slot, word, expected, timeout);
    }
    sleepers.fetch_sub(1, Ordering::SeqCst);
}

/// Marker for types that may be placed in a shared segment and used from any process: a
/// `#[repr(C)]` struct of atomics (or other types valid for every bit pattern, zero
/// included), with no pointers.
///
/// # Safety
/// The all-zero bit pattern must be a valid value, and the type must contain no pointers or
/// process-local data.
pub(crate) unsafe trait SharedState: Sized {}
