//! The owner-checked lock word: the one way a word in shared memory names the process that
//! holds something, and the one algorithm that takes it over when that process died.
//!
//! An [`OwnerWord`] is two `u32`s: the holder's pid (0 when free) and the holder's start stamp
//! ([`liveness::current_stamp`](crate::liveness::current_stamp)), which tells a live process
//! from a later one that reuses a dead holder's pid. Acquiring is one compare-and-swap of the
//! pid followed by a store of the stamp; releasing is one swap. How a waiter sleeps is the
//! user's business (each user sleeps on [`OwnerWord::word`] with its own parking scheme);
//! how it decides that the holder is dead is this module's:
//!
//! - no running process has the pid (it exited, or is an unreaped zombie): dead at once;
//! - a running process has the pid but another start stamp: the holder died and its pid was
//!   reused, **or** a new holder won the compare-and-swap and has not stored its stamp yet.
//!   Only the same `(pid, stamp)` observed twice, by calls spaced apart (the caller spaces
//!   them: 10–100 ms), counts as dead ([`Suspect`] remembers the first observation).
//!
//! A dead holder's word is taken over by a compare-and-swap from its pid to the taker's, so
//! exactly one waiter takes it over (a model of this is `tests/loom_u01_owner_word.rs`).
//!
//! ```
//! use processing::shm::owner::{Owner, OwnerWord, Suspect};
//! let word = OwnerWord::new();
//! let me = Owner::current();
//! assert!(word.try_lock(me));
//! assert!(!word.try_lock(me));
//! // The holder runs (it is this process): nothing to take over.
//! assert!(!word.take_over_if_dead(me, &mut Suspect::default()));
//! assert!(word.unlock());
//! ```

use crate::loom::{AtomicU32, Ordering};

/// Who holds (or wants) an [`OwnerWord`]: a pid (never 0) and its start stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The process id (never 0).
    pub pid: u32,
    /// Its start stamp (0: unknown, then only the pid is checked).
    pub stamp: u32,
}

impl Owner {
    /// This process (cached; correct after `fork`).
    #[inline]
    pub fn current() -> Owner {
        Owner {
            pid: crate::liveness::current_pid().max(1),
            stamp: crate::liveness::current_stamp(),
        }
    }
}

/// The first observation of a holder that looked like a reused pid (see the module docs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Suspect(Option<(u32, u32)>);

/// A lock word in shared memory: holder pid + start stamp (`#[repr(C)]`, 8 bytes, all-zero is
/// free).
#[repr(C)]
#[derive(Debug, Default)]
pub struct OwnerWord {
    pid: AtomicU32,
    stamp: AtomicU32,
}

impl OwnerWord {
    /// A free word.
    #[cfg(not(loom))]
    pub const fn new() -> OwnerWord {
        OwnerWord {
            pid: AtomicU32::new(0),
            stamp: AtomicU32::new(0),
        }
    }

    /// A free word.
    #[cfg(loom)]
    pub fn new() -> OwnerWord {
        OwnerWord {
            pid: AtomicU32::new(0),
            stamp: AtomicU32::new(0),
        }
    }

    /// Takes the word if it is free (Acquire on success).
    #[inline]
    pub fn try_lock(&self, me: Owner) -> bool {
        if self
            .pid
            .compare_exchange(0, me.pid, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            self.stamp.store(me.stamp, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// The holder's pid, 0 when free.
    #[inline]
    pub fn holder(&self) -> u32 {
        self.pid.load(Ordering::Relaxed)
    }

    /// The pid word itself: what a waiter sleeps on (it changes on every release and takeover).
    #[inline]
    pub fn word(&self) -> &AtomicU32 {
        &self.pid
    }

    /// Releases (`SeqCst`, so that a waker's following check of its sleepers is ordered after
    /// it); `false` if the word was free.
    #[inline]
    pub fn unlock(&self) -> bool {
        self.pid.swap(0, Ordering::SeqCst) != 0
    }

    /// Takes the word over if its holder no longer runs (see the module docs); `true` when this
    /// call took it (the caller now holds it, and the state it guards may be half-updated).
    pub fn take_over_if_dead(&self, me: Owner, suspect: &mut Suspect) -> bool {
        self.take_over_if(me, suspect, crate::liveness::is_alive)
    }

    /// [`take_over_if_dead`](Self::take_over_if_dead) with the liveness check given:
    /// `alive(pid, stamp)` says whether the process `pid` with start stamp `stamp` (0: any)
    /// still runs. Model checks pass their own.
    pub fn take_over_if(
        &self,
        me: Owner,
        suspect: &mut Suspect,
        alive: impl Fn(u32, u32) -> bool,
    ) -> bool {
        let cur = self.pid.load(Ordering::Acquire);
        if cur == 0 {
            *suspect = Suspect(None);
            return false;
        }
        let stamp = self.stamp.load(Ordering::Relaxed);
        let dead = if !alive(cur, 0) {
            true
        } else if stamp != 0 && !alive(cur, stamp) {
            // A live process has this pid but another start time: either the holder died and
            // the pid was reused, or a new holder has not written its stamp yet. Only the
            // same observation twice, a check apart, counts.
            let seen = suspect.0 == Some((cur, stamp));
            *suspect = Suspect(Some((cur, stamp)));
            seen
        } else {
            *suspect = Suspect(None);
            false
        };
        if dead
            && self
                .pid
                .compare_exchange(cur, me.pid, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            self.stamp.store(me.stamp, Ordering::Relaxed);
            *suspect = Suspect(None);
            return true;
        }
        false
    }

    /// Stores `owner` as the holder, whatever the word held: for tests that plant the word of
    /// a process that died holding it.
    #[doc(hidden)]
    pub fn plant(&self, owner: Owner) {
        self.stamp.store(owner.stamp, Ordering::Relaxed);
        self.pid.store(owner.pid, Ordering::SeqCst);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A word held by a child that has ended: reaped (its pid runs nothing, or something
    /// younger) or still a zombie. Either way the holder is dead at the first look. (Unix:
    /// the child is `true`; on Windows the liveness check has its own tests under Wine.)
    #[cfg(unix)]
    fn holder_that_ended(reap: bool) {
        let w = OwnerWord::new();
        let me = Owner::current();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        if reap {
            child.wait().unwrap();
        } else {
            // Not reaped: wait until it is a zombie.
            while crate::liveness::stamp_of(pid).is_some() {
                std::thread::yield_now();
            }
        }
        w.plant(Owner { pid, stamp: 7 });
        // (A reaped pid may already run something younger: then the second look decides.)
        let mut s = Suspect::default();
        assert!(w.take_over_if_dead(me, &mut s) || (reap && w.take_over_if_dead(me, &mut s)));
        assert_eq!(w.holder(), me.pid);
        let _ = child.wait();
    }

    #[cfg(unix)]
    #[test]
    fn a_dead_pid_is_taken_over_at_once() {
        holder_that_ended(true);
    }

    #[cfg(unix)]
    #[test]
    fn a_zombie_holder_is_dead() {
        holder_that_ended(false);
    }

    #[test]
    fn a_reused_pid_is_dead_when_seen_twice() {
        let w = OwnerWord::new();
        let me = Owner::current();
        // A live process (this one) with another start stamp: a reused pid.
        let wrong = me.stamp.wrapping_add(1).max(1);
        w.plant(Owner {
            pid: me.pid,
            stamp: wrong,
        });
        let mut s = Suspect::default();
        assert!(
            !w.take_over_if_dead(me, &mut s),
            "one observation is not enough"
        );
        assert!(w.take_over_if_dead(me, &mut s));
    }

    #[test]
    fn a_live_holder_is_kept() {
        let w = OwnerWord::new();
        let me = Owner::current();
        w.plant(me);
        let mut s = Suspect::default();
        for _ in 0..3 {
            assert!(!w.take_over_if_dead(me, &mut s));
        }
    }
}
