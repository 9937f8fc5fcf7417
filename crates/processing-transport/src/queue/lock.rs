//! The two side locks of a queue (one for producers, one for consumers), living in the queue's
//! header: processing-shm's owner-checked word (holder pid + start stamp) and a wake flag.
//!
//! A lock whose owner process died is taken over by the next locker, which learns it
//! (`Acquired::owner_died`). A waiter first spins as its `SpinPolicy` allows (see `park`),
//! trying the lock whenever it looks free; liveness is checked only after that spin, with
//! `OwnerWord::take_over_if_dead`: a pid that runs nothing (or a zombie) is dead at once; a pid
//! reused by an unrelated process (another start stamp) is dead when seen twice, `CHECK_EVERY`
//! apart.

use crate::loom::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use processing_core::os::SpinPolicy;
use processing_shm::owner::{Owner, OwnerWord, Suspect};

use super::park::{self, Deadline};

/// Least time between two liveness checks of one waiter (the second observation of a suspected
/// reused pid must come after the new holder had time to store its stamp).
const CHECK_EVERY: Duration = Duration::from_millis(20);

/// An owner-word lock in shared memory (three consecutive `u32`s of the queue header).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct PidLock {
    owner: OwnerWord,
    wake_flag: AtomicU32,
}

/// How a lock was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Acquired {
    /// The previous owner died while holding it; the state it protected may need repair.
    pub(crate) owner_died: bool,
}

impl PidLock {
    /// A free lock (loom's atomics cannot be zero bytes of a mapping: a model builds them).
    #[cfg(loom)]
    pub(crate) fn new() -> PidLock {
        PidLock {
            owner: OwnerWord::new(),
            wake_flag: AtomicU32::new(0),
        }
    }

    /// Takes the lock, or returns `None` when the deadline passes first. A wait spins as
    /// `waits` allows (and is recorded there) before it checks the holder's liveness and sleeps.
    pub(crate) fn lock(&self, deadline: Deadline, waits: &SpinPolicy) -> Option<Acquired> {
        let me = Owner::current();
        if self.owner.try_lock(me) {
            return Some(Acquired { owner_died: false });
        }
        if deadline.passed() {
            // A look, not a wait (a zero timeout): no spin, nothing to record.
            return self.lock_contended(me, deadline);
        }
        // Spin before the first liveness check and sleep (a holder only copies one item; a
        // sleeper is woken by the unlock).
        let began = Instant::now();
        let free_and_taken = || self.owner.holder() == 0 && self.owner.try_lock(me);
        let got = if waits.spin_until_before(deadline.instant(), free_and_taken) {
            Some(Acquired { owner_died: false })
        } else {
            self.lock_contended(me, deadline)
        };
        park::record(waits, began);
        got
    }

    fn lock_contended(&self, me: Owner, deadline: Deadline) -> Option<Acquired> {
        let mut suspect = Suspect::default();
        let mut last_check: Option<Instant> = None;
        loop {
            crate::loom::model_yield();
            let cur = self.owner.holder();
            if cur == 0 {
                if self.owner.try_lock(me) {
                    return Some(Acquired { owner_died: false });
                }
                continue;
            }
            // (Under loom every thread is this live process: no liveness check, whose timing
            // would make the model's runs differ.)
            let due = !cfg!(loom)
                && match last_check {
                    None => true,
                    Some(t) => t.elapsed() >= CHECK_EVERY,
                };
            if due {
                last_check = Some(Instant::now());
                if self.owner.take_over_if_dead(me, &mut suspect) {
                    tracing::warn!(dead_owner = cur, "queue lock recovered from a dead process");
                    return Some(Acquired { owner_died: true });
                }
            }
            let still_held = || self.owner.word().load(Ordering::SeqCst) != cur;
            if !park::sleep_on(self.owner.word(), &self.wake_flag, deadline, still_held) {
                return None;
            }
        }
    }

    /// Releases the lock (the caller holds it).
    pub(crate) fn unlock(&self) {
        self.owner.unlock();
        park::wake(self.owner.word(), &self.wake_flag);
    }

    /// Test hook: stores `owner` as the holder, as if it died holding the lock.
    #[cfg(test)]
    pub(crate) fn plant(&self, owner: Owner) {
        self.owner.plant(owner);
    }
}
