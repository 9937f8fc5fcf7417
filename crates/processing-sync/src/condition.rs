//! `Condition`.

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::algo::condition::ConditionState;
use crate::error::{ConditionError, SyncError};
use crate::lock::{RLock, RLockGuard};
use crate::shared::{me, Shared};
use crate::sys;

/// A condition variable shared between processes, like `threading.Condition`, over an
/// [`RLock`] (its own, or one given with [`Condition::with_lock`]).
///
/// `wait` and `notify` must be called while holding the lock (else
/// [`ConditionError::NotOwner`]). Each `notify` wakes exactly one current waiter, `notify_n`
/// wakes `n`, `notify_all` all current waiters (never one that already gave up on timeout).
///
/// ```
/// let cond = processing::sync::Condition::new().unwrap();
/// let guard = cond.acquire().unwrap();
/// assert!(!cond.wait_timeout(std::time::Duration::from_millis(5)).unwrap());
/// cond.notify_all().unwrap();
/// drop(guard);
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct Condition {
    lock: RLock,
    shared: Shared<ConditionState>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("segment", &self.shared)
            .field("lock", &self.lock)
            .finish()
    }
}

impl Condition {
    /// Creates a condition over `lock`.
    pub fn with_lock(lock: RLock) -> Result<Condition, SyncError> {
        Ok(Condition {
            lock,
            shared: Shared::create(|_| {})?,
        })
    }

    crate::__condition_methods!(RLock, RLockGuard);

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, ConditionError> {
        self.check_owner()?;
        Ok(self.shared.state().wait(
            self.shared.park(),
            self.lock.state(),
            self.lock.park(),
            me(),
            sys::thread_tag(),
            deadline,
        ))
    }

    /// Wakes up to `n` waiters (fewer when fewer wait: the shared count of waiters is a
    /// 32-bit word, so any `n` beyond it means "all of them").
    pub fn notify_n(&self, n: usize) -> Result<(), ConditionError> {
        self.check_owner()?;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.shared.state().notify(self.shared.park(), me().pid, n);
        Ok(())
    }
}
