//! A cyclic barrier: an internal lock guards `count` (arrivals in this pass), `broken` and
//! the arrivals' pids; `generation` (the sleep word) moves on every pass, abort, timeout and
//! reset. A sleeper of generation `g` that sees it move returns its index, unless
//! `broken_generation == g` (that pass was broken: abort, reset, timeout or a dead party).

use std::time::Instant;

use super::lock::{LockState, Me};
use super::{capped, counted_sleep, expired, SharedState, POLL};
use crate::loom::{AtomicU32, Ordering};
use crate::sys::{self, Parker};

const SLOT: usize = 1;
#[cfg(not(loom))]
const ARRIVAL_SLOTS: usize = 64;
#[cfg(loom)]
const ARRIVAL_SLOTS: usize = 3;

#[repr(C)]
#[derive(Debug)]
pub(crate) struct BarrierState {
    lock: LockState,
    generation: AtomicU32,
    sleepers: AtomicU32,
    count: AtomicU32,
    parties: AtomicU32,
    broken: AtomicU32,
    broken_generation: AtomicU32,
    arrivals: [AtomicU32; ARRIVAL_SLOTS],
}

// SAFETY: atomics only; all-zero is a barrier of 0 parties, which `init` fixes before use.
unsafe impl SharedState for BarrierState {}

/// A counted arrival whose pass has not completed yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    generation: u32,
    index: u32,
}

/// What an arrival did.
#[derive(Debug)]
pub(crate) enum Arrived {
    /// It was the pass's last arrival: the pass is complete; its index.
    Passed(u32),
    /// It is counted; the pass waits for others.
    Waiting(Arrival),
}

/// How a wait ended badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitFailed {
    Broken,
    Timeout,
    ActionPanicked,
}

impl BarrierState {
    #[cfg(loom)]
    pub(crate) fn new(parties: u32) -> BarrierState {
        let b = BarrierState {
            lock: LockState::new(),
            generation: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            count: AtomicU32::new(0),
            parties: AtomicU32::new(0),
            broken: AtomicU32::new(0),
            broken_generation: AtomicU32::new(0),
            arrivals: std::array::from_fn(|_| AtomicU32::new(0)),
        };
        b.init(parties);
        b
    }

    pub(crate) fn init(&self, parties: u32) {
        self.parties.store(parties, Ordering::Relaxed);
        self.broken_generation.store(u32::MAX, Ordering::Relaxed);
    }

    pub(crate) fn parties(&self) -> u32 {
        self.parties.load(Ordering::Relaxed)
    }

    pub(crate) fn n_waiting(&self) -> u32 {
        if self.broken.load(Ordering::Relaxed) != 0 {
            return 0;
        }
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed) != 0
    }

    fn lock(&self, me: Me, park: &Parker) {
        // A party that died inside this short critical section leaves the counters as they
        // were mid-update; the barrier is then broken by the dead-party check or a timeout.
        let _ = self.lock.acquire(me, None, park);
    }

    fn unlock(&self, park: &Parker) {
        self.lock.release(park);
    }

    /// Breaks the current pass (under the lock); `keep_broken` leaves the barrier broken for
    /// new arrivals (abort, timeout) rather than fresh (reset).
    fn break_locked(&self, keep_broken: bool) {
        let g = self.generation.load(Ordering::Relaxed);
        self.broken_generation.store(g, Ordering::Relaxed);
        self.broken.store(u32::from(keep_broken), Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        self.generation.store(g.wrapping_add(1), Ordering::SeqCst);
    }

    fn wake_all(&self, park: &Parker) {
        let sleepers = self.sleepers.load(Ordering::SeqCst);
        if sleepers != 0 {
            park.wake(SLOT, &self.generation, u32::MAX, sleepers);
        }
    }

    /// Arrives: completes the pass if this is its last arrival (running `action`, if any,
    /// before releasing the others), else counts this arrival and returns it to wait for.
    pub(crate) fn arrive(
        &self,
        park: &Parker,
        me: Me,
        action: Option<&dyn Fn() -> bool>,
    ) -> Result<Arrived, WaitFailed> {
        self.lock(me, park);
        if self.broken.load(Ordering::Relaxed) != 0 {
            self.unlock(park);
            return Err(WaitFailed::Broken);
        }
        let g = self.generation.load(Ordering::Relaxed);
        let index = self.count.load(Ordering::Relaxed);
        if let Some(slot) = self.arrivals.get(index as usize) {
            slot.store(me.pid, Ordering::Relaxed);
        }
        let arrived = index + 1;
        if arrived >= self.parties() {
            if let Some(action) = action {
                if !action() {
                    self.break_locked(true);
                    self.unlock(park);
                    self.wake_all(park);
                    return Err(WaitFailed::ActionPanicked);
                }
            }
            self.count.store(0, Ordering::Relaxed);
            self.generation.store(g.wrapping_add(1), Ordering::SeqCst);
            self.unlock(park);
            self.wake_all(park);
            return Ok(Arrived::Passed(index));
        }
        self.count.store(arrived, Ordering::Relaxed);
        self.unlock(park);
        Ok(Arrived::Waiting(Arrival {
            generation: g,
            index,
        }))
    }

    /// Without waiting: how `arrival`'s pass ended, or `None` while it goes on. With
    /// `check_parties`, a pass that a dead party can no longer complete is broken first.
    #[cfg(any(feature = "async", loom))]
    pub(crate) fn check(
        &self,
        arrival: &Arrival,
        park: &Parker,
        me: Me,
        check_parties: bool,
    ) -> Option<Result<u32, WaitFailed>> {
        let g = arrival.generation;
        if self.generation.load(Ordering::Acquire) != g {
            return Some(self.outcome(g, arrival.index));
        }
        if !check_parties {
            return None;
        }
        self.lock(me, park);
        if self.generation.load(Ordering::Relaxed) != g {
            self.unlock(park);
            return Some(self.outcome(g, arrival.index));
        }
        if self.a_party_died() {
            self.break_locked(true);
            self.unlock(park);
            self.wake_all(park);
            return Some(Err(WaitFailed::Broken));
        }
        self.unlock(park);
        None
    }

    /// Takes back `arrival` if its pass is still going on (a waiter that gave up without
    /// breaking the barrier: a dropped async wait). The pass then needs one more arrival; a
    /// pass that already ended is left as it ended.
    #[cfg(any(feature = "async", loom))]
    pub(crate) fn withdraw(&self, arrival: &Arrival, park: &Parker, me: Me) {
        self.lock(me, park);
        if self.generation.load(Ordering::Relaxed) == arrival.generation {
            let count = self.count.load(Ordering::Relaxed);
            if count > 0 {
                // Keep the arrivals' pids contiguous: one slot with our pid takes the last one.
                let last = (count - 1) as usize;
                let known = (count as usize).min(ARRIVAL_SLOTS);
                if let Some(mine) = self.arrivals[..known]
                    .iter()
                    .rposition(|p| p.load(Ordering::Relaxed) == me.pid)
                {
                    if let Some(moved) = self.arrivals.get(last) {
                        let pid = moved.load(Ordering::Relaxed);
                        self.arrivals[mine].store(pid, Ordering::Relaxed);
                    }
                }
                self.count.store(count - 1, Ordering::Relaxed);
            }
        }
        self.unlock(park);
    }

    /// Arrives and waits for the pass to complete; returns this arrival's index. The last
    /// arriver runs `action` (if any) before releasing the others.
    pub(crate) fn wait(
        &self,
        park: &Parker,
        me: Me,
        deadline: Option<Instant>,
        action: Option<&dyn Fn() -> bool>,
    ) -> Result<u32, WaitFailed> {
        let (g, index) = match self.arrive(park, me, action)? {
            Arrived::Passed(index) => return Ok(index),
            Arrived::Waiting(a) => (a.generation, a.index),
        };

        let mut last_check = Instant::now();
        loop {
            let timeout = Some(capped(deadline, POLL));
            counted_sleep(park, SLOT, &self.sleepers, &self.generation, g, timeout);
            if self.generation.load(Ordering::Acquire) != g {
                return self.outcome(g, index);
            }
            let timed_out = expired(deadline);
            if timed_out || last_check.elapsed() >= POLL {
                last_check = Instant::now();
                self.lock(me, park);
                if self.generation.load(Ordering::Relaxed) != g {
                    self.unlock(park);
                    return self.outcome(g, index);
                }
                if timed_out || self.a_party_died() {
                    self.break_locked(true);
                    self.unlock(park);
                    self.wake_all(park);
                    return Err(if timed_out {
                        WaitFailed::Timeout
                    } else {
                        WaitFailed::Broken
                    });
                }
                self.unlock(park);
            }
        }
    }

    fn outcome(&self, g: u32, index: u32) -> Result<u32, WaitFailed> {
        if self.broken_generation.load(Ordering::Acquire) == g {
            Err(WaitFailed::Broken)
        } else {
            Ok(index)
        }
    }

    /// Whether a process that arrived in this pass no longer runs (under the lock).
    fn a_party_died(&self) -> bool {
        let count = self.count.load(Ordering::Relaxed) as usize;
        self.arrivals
            .iter()
            .take(count)
            .any(|pid| !sys::owner_alive(pid.load(Ordering::Relaxed), 0))
    }

    /// Breaks the barrier: current and future waiters fail until `reset`.
    pub(crate) fn abort(&self, park: &Parker, me: Me) {
        self.lock(me, park);
        self.break_locked(true);
        self.unlock(park);
        self.wake_all(park);
    }

    /// Fails current waiters and makes the barrier fresh again.
    pub(crate) fn reset(&self, park: &Parker, me: Me) {
        self.lock(me, park);
        if self.count.load(Ordering::Relaxed) > 0 {
            self.break_locked(false);
        } else {
            self.broken.store(0, Ordering::Relaxed);
        }
        self.unlock(park);
        self.wake_all(park);
    }
}
