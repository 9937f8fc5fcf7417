//! A condition variable over a recursive lock, with exact notification counts.
//!
//! Everything but the sleep happens under the lock. A waiter counts itself in `waiting`,
//! remembers `seq`, releases the lock and sleeps until `seq` moves. `notify(n)` (under the
//! lock) grants `k = min(n, waiting - to_wake)` wake-ups by adding `k` to `to_wake`, bumps
//! `seq` and wakes `k` sleepers. A waiter that gets the lock back consumes a grant if one is
//! left (returns true) or, if its time is up, leaves without one (returns false); otherwise it
//! sleeps again. So each notify releases exactly the waiters it counted, and a waiter that
//! already left on timeout is never counted by a later `notify_all`.
//!
//! A waiter killed while waiting would stay counted; each waiting process is recorded in a
//! small table, and a notifier first drops the counts of processes that no longer exist.

use std::time::Instant;

use super::lock::{LockState, Me};
use super::{expired, remaining, SharedState};
use crate::loom::{AtomicU32, Ordering};
use crate::sys::{self, Parker};

const SLOT: usize = 0;
#[cfg(not(loom))]
const WAITER_SLOTS: usize = 32;
#[cfg(loom)]
const WAITER_SLOTS: usize = 2;

#[repr(C)]
#[derive(Debug)]
struct WaiterSlot {
    pid: AtomicU32,
    count: AtomicU32,
}

#[repr(C)]
#[derive(Debug)]
pub(crate) struct ConditionState {
    seq: AtomicU32,
    sleepers: AtomicU32,
    waiting: AtomicU32,
    to_wake: AtomicU32,
    slots: [WaiterSlot; WAITER_SLOTS],
}

// SAFETY: atomics only; all-zero is "no waiters".
unsafe impl SharedState for ConditionState {}

impl ConditionState {
    #[cfg(loom)]
    pub(crate) fn new() -> ConditionState {
        ConditionState {
            seq: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
            to_wake: AtomicU32::new(0),
            slots: std::array::from_fn(|_| WaiterSlot {
                pid: AtomicU32::new(0),
                count: AtomicU32::new(0),
            }),
        }
    }

    fn enter(&self, pid: u32) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let slot = self
            .slots
            .iter()
            .find(|s| s.count.load(Ordering::Relaxed) != 0 && s.pid.load(Ordering::Relaxed) == pid)
            .or_else(|| {
                self.slots
                    .iter()
                    .find(|s| s.count.load(Ordering::Relaxed) == 0)
            });
        if let Some(slot) = slot {
            slot.pid.store(pid, Ordering::Relaxed);
            slot.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn leave(&self, pid: u32) {
        let _ = self
            .waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| w.checked_sub(1));
        if let Some(slot) = self
            .slots
            .iter()
            .find(|s| s.count.load(Ordering::Relaxed) != 0 && s.pid.load(Ordering::Relaxed) == pid)
        {
            slot.count.fetch_sub(1, Ordering::Relaxed);
        }
        let waiting = self.waiting.load(Ordering::Relaxed);
        if self.to_wake.load(Ordering::Relaxed) > waiting {
            self.to_wake.store(waiting, Ordering::Relaxed);
        }
    }

    /// Forgets the waiters of processes that no longer exist (under the lock).
    fn purge_dead(&self, me: u32) {
        for slot in &self.slots {
            let count = slot.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let pid = slot.pid.load(Ordering::Relaxed);
            if pid != me && !sys::process_exists(pid) {
                slot.count.store(0, Ordering::Relaxed);
                let _ = self
                    .waiting
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                        Some(w.saturating_sub(count))
                    });
            }
        }
        let waiting = self.waiting.load(Ordering::Relaxed);
        if self.to_wake.load(Ordering::Relaxed) > waiting {
            self.to_wake.store(waiting, Ordering::Relaxed);
        }
    }

    /// Waits for a notification until `deadline`; the caller (thread `tag` of `me`) holds
    /// `lock` and holds it again on return. Returns whether it was notified.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn wait(
        &self,
        park: &Parker,
        lock: &LockState,
        lock_park: &Parker,
        me: Me,
        tag: u32,
        deadline: Option<Instant>,
    ) -> bool {
        self.enter(me.pid);
        let mut seq = self.seq.load(Ordering::Relaxed);
        let mut depth = lock.release_all(lock_park);
        loop {
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            if self.seq.load(Ordering::SeqCst) == seq && !expired(deadline) {
                park.wait(SLOT, &self.seq, seq, remaining(deadline));
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            lock.acquire_restore(me, tag, depth, lock_park);
            let grants = self.to_wake.load(Ordering::Relaxed);
            if grants > 0 {
                self.to_wake.store(grants - 1, Ordering::Relaxed);
                self.leave(me.pid);
                return true;
            }
            if expired(deadline) {
                self.leave(me.pid);
                return false;
            }
            seq = self.seq.load(Ordering::Relaxed);
            depth = lock.release_all(lock_park);
        }
    }

    /// Wakes up to `n` current waiters (the caller holds the lock); returns how many.
    pub(crate) fn notify(&self, park: &Parker, me: u32, n: u32) -> u32 {
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.purge_dead(me);
        let waiting = self.waiting.load(Ordering::Relaxed);
        let granted = self.to_wake.load(Ordering::Relaxed);
        let k = n.min(waiting.saturating_sub(granted));
        if k == 0 {
            return 0;
        }
        self.to_wake.store(granted + k, Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::SeqCst);
        let sleepers = self.sleepers.load(Ordering::SeqCst);
        if sleepers != 0 {
            park.wake(SLOT, &self.seq, k, sleepers);
        }
        k
    }

    /// Waiters not yet notified (the caller holds the lock).
    #[allow(dead_code)]
    pub(crate) fn n_waiting(&self) -> u32 {
        self.waiting
            .load(Ordering::Relaxed)
            .saturating_sub(self.to_wake.load(Ordering::Relaxed))
    }
}
