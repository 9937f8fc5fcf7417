//! The bare algorithms, exposed under `cfg(loom)` for `tests/loom_*.rs`: each state lives in
//! an `Arc` instead of a segment, and sleeping is a yield.
#![allow(missing_docs, missing_debug_implementations)]

use std::time::Instant;

use crate::algo::lock::{Acquired, Me};
use crate::sys::Parker;

const ME: Me = Me { pid: 1, stamp: 1 };
const PARK: Parker = Parker;

pub struct LockState(crate::algo::lock::LockState);
pub struct ConditionState(crate::algo::condition::ConditionState);
pub struct SemaphoreState(crate::algo::semaphore::SemaphoreState);
pub struct EventState(crate::algo::event::EventState);
pub struct BarrierState(crate::algo::barrier::BarrierState);

impl ConditionState {
    pub fn new() -> Self {
        ConditionState(crate::algo::condition::ConditionState::new())
    }
}

impl SemaphoreState {
    pub fn new(value: u32, bound: u32) -> Self {
        SemaphoreState(crate::algo::semaphore::SemaphoreState::new(value, bound))
    }
}

impl EventState {
    pub fn new() -> Self {
        EventState(crate::algo::event::EventState::new())
    }
}

impl BarrierState {
    pub fn new(parties: u32) -> Self {
        BarrierState(crate::algo::barrier::BarrierState::new(parties))
    }
}

pub fn lock_new() -> LockState {
    LockState(crate::algo::lock::LockState::new())
}

/// Acquires (no timeout); true if clean.
pub fn lock_acquire(l: &LockState) -> bool {
    l.0.acquire(ME, None, &PARK) == Ok(Acquired::Clean)
}

/// Releases; false if it was not held.
pub fn lock_release(l: &LockState) -> bool {
    l.0.release(&PARK)
}

/// RLock acquire by the current loom thread.
pub fn rlock_acquire(l: &LockState) {
    let _ =
        l.0.acquire_recursive(ME, crate::sys::thread_tag(), None, &PARK);
}

/// RLock release by the current loom thread.
pub fn rlock_release(l: &LockState) -> bool {
    l.0.release_recursive(ME, crate::sys::thread_tag(), &PARK)
}

/// Condition wait (the caller holds `l` as an RLock); returns whether notified.
pub fn cond_wait(c: &ConditionState, l: &LockState) -> bool {
    c.0.wait(&PARK, &l.0, &PARK, ME, crate::sys::thread_tag(), None)
}

/// Condition wait whose deadline passes after the first sleep.
pub fn cond_wait_once(c: &ConditionState, l: &LockState) -> bool {
    c.0.wait(
        &PARK,
        &l.0,
        &PARK,
        ME,
        crate::sys::thread_tag(),
        Some(Instant::now()),
    )
}

/// Notify up to `n` (the caller holds the lock); returns how many were granted.
pub fn cond_notify(c: &ConditionState, n: u32) -> u32 {
    c.0.notify(&PARK, ME.pid, n)
}

pub fn sem_acquire(s: &SemaphoreState) {
    s.0.acquire(None, &PARK);
}

pub fn sem_release(s: &SemaphoreState) -> bool {
    s.0.release(&PARK).is_ok()
}

pub fn event_set(e: &EventState) {
    e.0.set(&PARK);
}

pub fn event_wait(e: &EventState) -> bool {
    e.0.wait(None, &PARK)
}

/// Barrier wait (no timeout); the arrival index.
pub fn barrier_wait(b: &BarrierState) -> u32 {
    b.0.wait(&PARK, ME, None, None).unwrap_or(u32::MAX)
}

/// A dropped async barrier wait: arrives, and if the pass waits for others, takes the arrival
/// back. Whether this arrival's pass completed.
pub fn barrier_arrive_and_leave(b: &BarrierState) -> bool {
    use crate::algo::barrier::Arrived;
    match b.0.arrive(&PARK, ME, None) {
        Ok(Arrived::Passed(_)) => true,
        Ok(Arrived::Waiting(a)) => {
            b.0.withdraw(&a, &PARK, ME);
            b.0.check(&a, &PARK, ME, false).is_some()
        }
        Err(_) => false,
    }
}

/// Parties counted in the current pass.
pub fn barrier_n_waiting(b: &BarrierState) -> u32 {
    b.0.n_waiting()
}
