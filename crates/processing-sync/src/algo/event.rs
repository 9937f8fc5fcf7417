//! An event: a flag and its sleepers.

use std::time::Instant;

use super::{counted_sleep, expired, remaining, SharedState};
use crate::loom::{AtomicU32, Ordering};
use crate::sys::Parker;

const SLOT: usize = 0;

#[repr(C)]
#[derive(Debug)]
pub(crate) struct EventState {
    flag: AtomicU32,
    sleepers: AtomicU32,
}

// SAFETY: atomics only; all-zero is "clear, no sleepers".
unsafe impl SharedState for EventState {}

impl EventState {
    #[cfg(loom)]
    pub(crate) fn new() -> EventState {
        EventState {
            flag: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire) != 0
    }

    pub(crate) fn set(&self, park: &Parker) {
        self.flag.store(1, Ordering::SeqCst);
        let sleepers = self.sleepers.load(Ordering::SeqCst);
        if sleepers != 0 {
            park.wake(SLOT, &self.flag, u32::MAX, sleepers);
        }
    }

    pub(crate) fn clear(&self) {
        self.flag.store(0, Ordering::SeqCst);
    }

    /// Waits for the flag until `deadline`; returns whether it is set.
    pub(crate) fn wait(&self, deadline: Option<Instant>, park: &Parker) -> bool {
        loop {
            if self.is_set() {
                return true;
            }
            if expired(deadline) {
                return false;
            }
            let timeout = remaining(deadline);
            counted_sleep(park, SLOT, &self.sleepers, &self.flag, 0, timeout);
        }
    }
}
