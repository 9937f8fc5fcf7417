//! The lock: processing-shm's owner-checked word (holder pid + start stamp, 0 when free) plus a
//! sleeper count. Waiters spin briefly, then sleep on the pid word; a sleeper wakes every
//! `POLL` to check that the holder still runs and takes the lock over (reporting it) when it
//! does not (`OwnerWord::take_over_if`: a dead or zombie pid at once, a reused pid when seen
//! twice a poll apart).

use std::time::Instant;

use super::{capped, expired, SharedState, POLL};
use processing_shm::owner::{OwnerWord, Suspect};

use crate::loom::{spin_hint, AtomicU32, Ordering, SPIN};
use crate::sys::{self, Parker};

/// The sleep slot of the lock word.
pub(crate) const SLOT: usize = 0;

/// A process-shared lock (also the base of the RLock: `tag` and `count` serve it).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct LockState {
    /// The holder (pid + start stamp); its pid word is the sleep word.
    owner: OwnerWord,
    sleepers: AtomicU32,
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
pub(crate) type Me = processing_shm::owner::Owner;

impl LockState {
    #[cfg(loom)]
    pub(crate) fn new() -> LockState {
        LockState {
            owner: OwnerWord::new(),
            sleepers: AtomicU32::new(0),
            tag: AtomicU32::new(0),
            count: AtomicU32::new(0),
        }
    }

    #[inline]
    pub(crate) fn try_acquire(&self, me: Me) -> bool {
        self.owner.try_lock(me)
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
            if self.owner.holder() == 0 && self.try_acquire(me) {
                return Ok(Acquired::Clean);
            }
            spin_hint();
        }
        let mut last_check = Instant::now();
        // (pid, stamp) seen at the previous check with a live pid but a different stamp.
        let mut suspect = Suspect::default();
        loop {
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            let cur = self.owner.word().load(Ordering::SeqCst);
            if cur != 0 {
                park.wait(SLOT, self.owner.word(), cur, Some(capped(deadline, POLL)));
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

    /// One attempt that does not wait (an awaited acquire's): the lock if it is free, else,
    /// when `check` (the caller checks at most every `POLL`, as a sleeping waiter does), the
    /// lock taken over from a holder that no longer runs.
    #[cfg(feature = "async")]
    pub(crate) fn try_acquire_or_recover(
        &self,
        me: Me,
        check: bool,
        suspect: &mut Suspect,
    ) -> Option<Acquired> {
        if self.try_acquire(me) {
            return Some(Acquired::Clean);
        }
        if check {
            return self.recover_if_dead(me, suspect);
        }
        None
    }

    /// Takes the lock over if its holder no longer runs.
    fn recover_if_dead(&self, me: Me, suspect: &mut Suspect) -> Option<Acquired> {
        if self.owner.take_over_if(me, suspect, sys::owner_alive) {
            self.tag.store(0, Ordering::Relaxed);
            self.count.store(0, Ordering::Relaxed);
            return Some(Acquired::OwnerDied);
        }
        None
    }

    /// Releases; `false` if the lock was not held.
    #[inline]
    pub(crate) fn release(&self, park: &Parker) -> bool {
        if !self.owner.unlock() {
            return false;
        }
        let sleepers = self.sleepers.load(Ordering::SeqCst);
        if sleepers != 0 {
            park.wake(SLOT, self.owner.word(), 1, sleepers);
        }
        true
    }

    /// Whether any process holds the lock.
    pub(crate) fn is_locked(&self) -> bool {
        self.owner.holder() != 0
    }

    /// RLock: whether thread `tag` of process `me` holds the lock.
    #[inline]
    pub(crate) fn owned_by(&self, me: Me, tag: u32) -> bool {
        self.owner.holder() == me.pid && self.tag.load(Ordering::Relaxed) == tag
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
