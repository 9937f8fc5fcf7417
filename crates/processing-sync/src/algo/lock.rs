//! The lock word: 0 when free, else the holder's pid. Waiters spin briefly, then sleep on the
//! word; a sleeper wakes every `POLL` to check that the holder still runs and takes the lock
//! over (reporting it) when it does not.

use std::time::Instant;

use super::{capped, expired, SharedState, POLL};
use crate::loom::{spin_hint, AtomicU32, Ordering, SPIN};
use crate::sys::{self, Parker};

/// The sleep slot of the lock word.
pub(crate) const SLOT: usize = 0;

/// A process-shared lock (also the base of the RLock: `tag` and `count` serve it).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct LockState {
    word: AtomicU32,
    sleepers: AtomicU32,
    /// The holder's process stamp (written just after acquiring; tells pid reuse apart).
    stamp: AtomicU32,
    /// RLock: the holding thread's tag within its process.
    tag: AtomicU32,
    /// RLock: recursion depth.
    count: AtomicU32,
}

// SAFETY: atomics only; all-zero is "free, no sleepers".
unsafe impl SharedState for LockState {}

/// How an acquisition went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The lock was free (or released to us).
    Clean,
    /// Its holder had died; we took it over.
    OwnerDied,
}

/// Who is acquiring: the process's pid and stamp.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Me {
    pub(crate) pid: u32,
    pub(crate) stamp: u32,
}

impl LockState {
    #[cfg(loom)]
    pub(crate) fn new() -> LockState {
        LockState {
            word: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            stamp: AtomicU32::new(0),
            tag: AtomicU32::new(0),
            count: AtomicU32::new(0),
        }
    }

    #[inline]
    pub(crate) fn try_acquire(&self, me: Me) -> bool {
        if self
            .word
            .compare_exchange(0, me.pid, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            self.stamp.store(me.stamp, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Acquires, waiting until `deadline` (`None`: forever). `Err(())` on timeout.
    #[inline]
    pub(crate) fn acquire(
        &self,
        me: Me,
        deadline: Option<Instant>,
        park: &Parker,
    ) -> Result<Acquired, ()> {
        if self.try_acquire(me) {
            return Ok(Acquired::Clean);
        }
        self.acquire_slow(me, deadline, park)
    }

    #[cold]
    fn acquire_slow(
        &self,
        me: Me,
        deadline: Option<Instant>,
        park: &Parker,
    ) -> Result<Acquired, ()> {
        for _ in 0..SPIN {
            if self.word.load(Ordering::Relaxed) == 0 && self.try_acquire(me) {
                return Ok(Acquired::Clean);
            }
            spin_hint();
        }
        let mut last_check = Instant::now();
        // (word, stamp) seen at the previous check with a live pid but a different stamp.
        let mut suspect: Option<(u32, u32)> = None;
        loop {
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            let cur = self.word.load(Ordering::SeqCst);
            if cur != 0 {
                park.wait(SLOT, &self.word, cur, Some(capped(deadline, POLL)));
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            if self.try_acquire(me) {
                return Ok(Acquired::Clean);
            }
            if last_check.elapsed() >= POLL || expired(deadline) {
                last_check = Instant::now();
                if let Some(got) = self.recover_if_dead(me, &mut suspect) {
                    return Ok(got);
                }
            }
            if expired(deadline) {
                return Err(());
            }
        }
    }

    /// Takes the lock over if its holder no longer runs.
    fn recover_if_dead(&self, me: Me, suspect: &mut Option<(u32, u32)>) -> Option<Acquired> {
        let cur = self.word.load(Ordering::Acquire);
        if cur == 0 {
            return None;
        }
        let stamp = self.stamp.load(Ordering::Relaxed);
        let dead = if !sys::owner_alive(cur, 0) {
            true
        } else if stamp != 0 && !sys::owner_alive(cur, stamp) {
            // A live process has this pid but another start time: either the holder died and
            // the pid was reused, or a new holder has not written its stamp yet. Only the
            // same observation twice, a poll apart, counts.
            let seen = *suspect == Some((cur, stamp));
            *suspect = Some((cur, stamp));
            seen
        } else {
            *suspect = None;
            false
        };
        if dead
            && self
                .word
                .compare_exchange(cur, me.pid, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            self.stamp.store(me.stamp, Ordering::Relaxed);
            self.tag.store(0, Ordering::Relaxed);
            self.count.store(0, Ordering::Relaxed);
            return Some(Acquired::OwnerDied);
        }
        None
    }

    /// Releases; `false` if the lock was not held.
    #[inline]
    pub(crate) fn release(&self, park: &Parker) -> bool {
        let prev = self.word.swap(0, Ordering::SeqCst);
        if prev == 0 {
            return false;
        }
        let sleepers = self.sleepers.load(Ordering::SeqCst);
        if sleepers != 0 {
            park.wake(SLOT, &self.word, 1, sleepers);
        }
        true
    }

    /// Whether any process holds the lock.
    pub(crate) fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) != 0
    }

    /// RLock: whether thread `tag` of process `me` holds the lock.
    #[inline]
    pub(crate) fn owned_by(&self, me: Me, tag: u32) -> bool {
        self.word.load(Ordering::Relaxed) == me.pid && self.tag.load(Ordering::Relaxed) == tag
    }

    /// RLock: acquires for thread `tag`, recursively if it holds the lock already. `Err(())`
    /// on timeout.
    pub(crate) fn acquire_recursive(
        &self,
        me: Me,
        tag: u32,
        deadline: Option<Instant>,
        park: &Parker,
    ) -> Result<Acquired, ()> {
        if self.owned_by(me, tag) {
            // Only the holder touches count while it holds the lock.
            let c = self.count.load(Ordering::Relaxed);
            self.count.store(c.saturating_add(1), Ordering::Relaxed);
            return Ok(Acquired::Clean);
        }
        let got = self.acquire(me, deadline, park)?;
        self.tag.store(tag, Ordering::Relaxed);
        self.count.store(1, Ordering::Relaxed);
        Ok(got)
    }

    /// RLock: acquires for thread `tag` if free now or already held by it.
    pub(crate) fn try_acquire_recursive(&self, me: Me, tag: u32) -> bool {
        if self.owned_by(me, tag) {
            let c = self.count.load(Ordering::Relaxed);
            self.count.store(c.saturating_add(1), Ordering::Relaxed);
            return true;
        }
        if self.try_acquire(me) {
            self.tag.store(tag, Ordering::Relaxed);
            self.count.store(1, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// RLock: one level of release by thread `tag`; `false` if it does not hold the lock.
    pub(crate) fn release_recursive(&self, me: Me, tag: u32, park: &Parker) -> bool {
        if !self.owned_by(me, tag) {
            return false;
        }
        let c = self.count.load(Ordering::Relaxed);
        if c > 1 {
            self.count.store(c - 1, Ordering::Relaxed);
            return true;
        }
        self.release_all(park);
        true
    }

    /// RLock: releases every level (the caller holds it); returns the depth to restore.
    pub(crate) fn release_all(&self, park: &Parker) -> u32 {
        let depth = self.count.load(Ordering::Relaxed).max(1);
        self.count.store(0, Ordering::Relaxed);
        self.tag.store(0, Ordering::Relaxed);
        self.release(park);
        depth
    }

    /// RLock: re-acquires with a saved depth (after a condition wait). A dead holder's lock is
    /// taken over silently here.
    pub(crate) fn acquire_restore(&self, me: Me, tag: u32, depth: u32, park: &Parker) {
        let _ = self.acquire(me, None, park);
        self.tag.store(tag, Ordering::Relaxed);
        self.count.store(depth, Ordering::Relaxed);
    }
}
