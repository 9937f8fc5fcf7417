//! The bare algorithms, exposed under `cfg(loom)` for `tests/loom_*.rs`: each state lives in
//! an `Arc` instead of a segment, and sleeping is a yield.

use std::time::Instant;

use crate::algo::lock::{Acquired, Me};
use crate::sys::Parker;

pub use crate::algo::barrier::BarrierState;
pub use crate::algo::condition::ConditionState;
pub use crate::algo::event::EventState;
pub use crate::algo::lock::LockState;
pub use crate::algo::semaphore::SemaphoreState;

const ME: Me = Me { pid: 1, stamp: 1 };
const PARK: Parker = Parker;

/// A lock state with its operations.
pub fn lock_new() -> LockState {
    LockState::new()
}

/// Acquires (no timeout); true if clean.
pub fn lock_acquire(l: &LockState) -> bool {
    l.acquire(ME, None, &PARK) == Ok(Acquired::Clean)
}

/// Releases; false if it was not held.
pub fn lock_release(l: &LockState) -> bool {
    l.release(&PARK)
}

/// RLock acquire by the current loom thread.
pub fn rlock_acquire(l: &LockState) {
    let _ = l.acquire_recursive(ME, crate::sys::thread_tag(), None, &PARK);
}

/// RLock release by the current loom thread.
pub fn rlock_release(l: &LockState) -> bool {
    l.release_recursive(ME, crate::sys::thread_tag(), &PARK)
}

/// Condition wait (the caller holds `l` as an RLock); returns whether notified.
pub fn cond_wait(c: &ConditionState, l: &LockState) -> bool {
    c.wait(&PARK, l, &PARK, ME, crate::sys::thread_tag(), None)
}

/// Condition wait with a deadline already passed after the first sleep.
pub fn cond_wait_once(c: &ConditionState, l: &LockState) -> bool {
    c.wait(
        &PARK,
        l,
        &PARK,
        ME,
        crate::sys::thread_tag(),
        Some(Instant::now()),
    )
}

/// Notify up to `n` (the caller holds `l`); returns how many were granted.
pub fn cond_notify(c: &ConditionState, n: u32) -> u32 {
    c.notify(&PARK, ME.pid, n)
}

/// Semaphore acquire (no timeout).
pub fn sem_acquire(s: &SemaphoreState) {
    s.acquire(None, &PARK);
}

/// Semaphore release.
pub fn sem_release(s: &SemaphoreState) -> bool {
    s.release(&PARK).is_ok()
}

/// Event set.
pub fn event_set(e: &EventState) {
    e.set(&PARK);
}

/// Event wait (no timeout).
pub fn event_wait(e: &EventState) -> bool {
    e.wait(None, &PARK)
}

/// Barrier wait (no timeout); the arrival index.
pub fn barrier_wait(b: &BarrierState) -> u32 {
    b.wait(&PARK, ME, None, None).unwrap_or(u32::MAX)
}
