//! The two side locks of a queue (one for producers, one for consumers), living in the queue's
//! header: a 32-bit word holding the owner's pid (0 when free) and a wake flag.
//!
//! A lock whose owner process died is taken over by the next locker, which learns it
//! (`Acquired::owner_died`). Liveness is checked only after spinning, with
//! `processing_shm::liveness` (a zombie counts as dead; a reused pid would be taken for the
//! dead owner, a risk bounded by the time a pid takes to be reused).

use std::sync::atomic::{AtomicU32, Ordering};

use super::park::{self, Backoff, Deadline};

/// A pid-word lock in shared memory (two consecutive `u32`s of the queue header).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct PidLock {
    owner: AtomicU32,
    wake_flag: AtomicU32,
}

/// How a lock was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Acquired {
    /// The previous owner died while holding it; the state it protected may need repair.
    pub(crate) owner_died: bool,
}

/// The pid stored in the lock word; never 0.
fn me() -> u32 {
    processing_shm::liveness::current_pid().max(1)
}

impl PidLock {
    /// Takes the lock, or returns `None` when the deadline passes first.
    pub(crate) fn lock(&self, deadline: Deadline) -> Option<Acquired> {
        let me = me();
        if self
            .owner
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Some(Acquired { owner_died: false });
        }
        let mut backoff = Backoff::new();
        loop {
            let cur = self.owner.load(Ordering::Relaxed);
            if cur == 0 {
                if self
                    .owner
                    .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some(Acquired { owner_died: false });
                }
                continue;
            }
            if backoff.snooze() {
                continue;
            }
            if cur != me && !processing_shm::liveness::is_alive(cur, 0) {
                if self
                    .owner
                    .compare_exchange(cur, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    tracing::warn!(dead_owner = cur, "queue lock recovered from a dead process");
                    return Some(Acquired { owner_died: true });
                }
                continue;
            }
            let still_held = || {
                let now = self.owner.load(Ordering::SeqCst);
                now != cur
            };
            if !park::sleep_on(&self.owner, &self.wake_flag, deadline, still_held) {
                return None;
            }
        }
    }

    /// Releases the lock (the caller holds it).
    pub(crate) fn unlock(&self) {
        self.owner.store(0, Ordering::SeqCst);
        park::wake(&self.owner, &self.wake_flag);
    }

    /// Test hook: stores `pid` as the owner.
    #[cfg(test)]
    pub(crate) fn force_owner(&self, pid: u32) {
        self.owner.store(pid, Ordering::SeqCst);
    }
}
