//! A counting semaphore: `value` is the number of free permits; sleepers wait for it to leave
//! zero. A killed waiter only leaves `sleepers` too high (an extra wake-up call later).

use std::time::Instant;

use super::{counted_sleep, expired, remaining, SharedState};
use crate::loom::{spin_hint, AtomicU32, Ordering, SPIN};
use crate::sys::Parker;

const SLOT: usize = 0;

#[repr(C)]
#[derive(Debug)]
pub(crate) struct SemaphoreState {
    value: AtomicU32,
    sleepers: AtomicU32,
    /// 0: unbounded; else the most permits a release may bring the value to.
    bound: AtomicU32,
}

// SAFETY: atomics only; all-zero is "no permits, unbounded".
unsafe impl SharedState for SemaphoreState {}

/// Why a release was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReleaseRefused {
    Bound,
    Overflow,
}

impl SemaphoreState {
    #[cfg(loom)]
    pub(crate) fn new(value: u32, bound: u32) -> SemaphoreState {
        SemaphoreState {
            value: AtomicU32::new(value),
            sleepers: AtomicU32::new(0),
            bound: AtomicU32::new(bound),
        }
    }

    pub(crate) fn init(&self, value: u32, bound: u32) {
        self.value.store(value, Ordering::Relaxed);
        self.bound.store(bound, Ordering::Relaxed);
    }

    pub(crate) fn try_acquire(&self) -> bool {
        self.value
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |v| v.checked_sub(1))
            .is_ok()
    }

    /// Takes one permit, waiting until `deadline` (`None`: forever); false on timeout.
    pub(crate) fn acquire(&self, deadline: Option<Instant>, park: &Parker) -> bool {
        if self.try_acquire() {
            return true;
        }
        for _ in 0..SPIN {
            if self.value.load(Ordering::Relaxed) != 0 && self.try_acquire() {
                return true;
            }
            spin_hint();
        }
        loop {
            if expired(deadline) {
                return false;
            }
            let timeout = remaining(deadline);
            counted_sleep(park, SLOT, &self.sleepers, &self.value, 0, timeout);
            if self.try_acquire() {
                return true;
            }
        }
    }

    /// Returns one permit.
    pub(crate) fn release(&self, park: &Parker) -> Result<(), ReleaseRefused> {
        let bound = self.bound.load(Ordering::Relaxed);
        self.value
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |v| {
                if bound != 0 && v >= bound {
                    None
                } else {
                    v.checked_add(1)
                }
            })
            .map_err(|v| {
                if bound != 0 && v >= bound {
                    ReleaseRefused::Bound
                } else {
                    ReleaseRefused::Overflow
                }
            })?;
        let sleepers = self.sleepers.load(Ordering::SeqCst);
        if sleepers != 0 {
            park.wake(SLOT, &self.value, 1, sleepers);
        }
        Ok(())
    }

    pub(crate) fn value(&self) -> u32 {
        self.value.load(Ordering::Relaxed)
    }

    pub(crate) fn bound(&self) -> u32 {
        self.bound.load(Ordering::Relaxed)
    }
}
