//! `Condition`.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::algo::condition::ConditionState;
use crate::error::{AcquireError, ConditionError, SyncError};
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
    /// Creates a condition with its own recursive lock.
    pub fn new() -> Result<Condition, SyncError> {
        Condition::with_lock(RLock::new()?)
    }

    /// Creates a condition over `lock`.
    pub fn with_lock(lock: RLock) -> Result<Condition, SyncError> {
        Ok(Condition {
            lock,
            shared: Shared::create(|_| {})?,
        })
    }

    /// The condition's lock.
    pub fn lock(&self) -> &RLock {
        &self.lock
    }

    /// Acquires the condition's lock (see [`RLock::acquire`]).
    pub fn acquire(&self) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        self.lock.acquire()
    }

    /// Acquires the condition's lock, waiting at most `timeout`.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        self.lock.acquire_timeout(timeout)
    }

    /// Acquires the condition's lock if free now (or held by this thread);
    /// [`AcquireError::WouldBlock`] if another thread holds it.
    pub fn try_acquire(&self) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        self.lock.try_acquire()
    }

    fn check_owner(&self) -> Result<(), ConditionError> {
        if self.lock.is_owned() {
            Ok(())
        } else {
            Err(ConditionError::NotOwner)
        }
    }

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

    /// Releases the lock, waits for a notification and re-acquires the lock.
    pub fn wait(&self) -> Result<(), ConditionError> {
        self.wait_until(None).map(|_| ())
    }

    /// As [`wait`](Self::wait), for at most `timeout`; returns false on timeout.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ConditionError> {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    /// Waits until `predicate` returns true (checked under the lock, first before waiting).
    pub fn wait_for(&self, mut predicate: impl FnMut() -> bool) -> Result<(), ConditionError> {
        self.check_owner()?;
        while !predicate() {
            self.wait_until(None)?;
        }
        Ok(())
    }

    /// As [`wait_for`](Self::wait_for), for at most `timeout`; returns the predicate's last
    /// value.
    pub fn wait_for_timeout(
        &self,
        mut predicate: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<bool, ConditionError> {
        self.check_owner()?;
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if predicate() {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            self.wait_until(deadline)?;
        }
    }

    /// Wakes one waiter.
    pub fn notify(&self) -> Result<(), ConditionError> {
        self.notify_n(1)
    }

    /// Wakes up to `n` waiters (fewer when fewer wait: the shared count of waiters is a
    /// 32-bit word, so any `n` beyond it means "all of them").
    pub fn notify_n(&self, n: usize) -> Result<(), ConditionError> {
        self.check_owner()?;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.shared.state().notify(self.shared.park(), me().pid, n);
        Ok(())
    }

    /// Wakes every current waiter.
    pub fn notify_all(&self) -> Result<(), ConditionError> {
        self.notify_n(usize::MAX)
    }
}
