//! The algorithms, written over `#[repr(C)]` structs of atomics and a `Parker`, with no
//! knowledge of where the struct lives (a shared segment in the library, an `Arc` in the loom
//! models).

pub(crate) mod barrier;
pub(crate) mod condition;
pub(crate) mod event;
pub(crate) mod lock;
pub(crate) mod semaphore;

use std::time::{Duration, Instant};

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

/// Marker for types that may be placed in a shared segment and used from any process: a
/// `#[repr(C)]` struct of atomics (or other types valid for every bit pattern, zero
/// included), with no pointers.
///
/// # Safety
/// The all-zero bit pattern must be a valid value, and the type must contain no pointers or
/// process-local data.
pub(crate) unsafe trait SharedState: Sized {}
