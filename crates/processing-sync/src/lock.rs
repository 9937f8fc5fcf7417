//! `Lock` and `RLock`.

use std::time::{Duration, Instant};

use crate::algo::lock::{Acquired, LockState};
use crate::error::{AcquireError, ReleaseError, SyncError};
use crate::shared::{me, Shared};
use crate::sys;

fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

crate::shared::shared_primitive! {
    /// A lock shared between processes (and threads), like `threading.Lock`: any thread of any
    /// process may release it.
    ///
    /// A holder that dies is detected by the next acquirer (its waits poll the holder's liveness
    /// every 100 ms), which gets the lock with [`AcquireError::OwnerDied`].
    ///
    /// ```
    /// let lock = processing::sync::Lock::new().unwrap();
    /// {
    ///     let _guard = lock.acquire().unwrap();
    ///     assert!(lock.try_acquire().unwrap_err().is_would_block());
    /// } // released here, also on panic
    /// assert!(lock.try_acquire().is_ok());
    /// ```
    Lock(LockState), locked: is_locked
}

crate::__release_guard! {
    /// Holds a [`Lock`]; releases it on drop.
    LockGuard: lock of Lock
}

fn outcome<G>(got: Result<Acquired, ()>, guard: impl FnOnce() -> G) -> Result<G, AcquireError<G>> {
    match got {
        Ok(Acquired::Clean) => Ok(guard()),
        Ok(Acquired::OwnerDied) => Err(AcquireError::OwnerDied(guard())),
        Err(()) => Err(AcquireError::Timeout),
    }
}

impl Lock {
    /// Creates an unlocked lock in a fresh segment.
    pub fn new() -> Result<Lock, SyncError> {
        Ok(Lock {
            shared: Shared::create(|_| {})?,
        })
    }

    pub(crate) fn state(&self) -> &LockState {
        self.shared.state()
    }

    /// Acquires, waiting as long as it takes. The only error is
    /// [`AcquireError::OwnerDied`], which carries the guard.
    #[inline]
    pub fn acquire(&self) -> Result<LockGuard<'_>, AcquireError<LockGuard<'_>>> {
        outcome(self.state().acquire(me(), None, self.shared.park()), || {
            LockGuard::new(self)
        })
    }

    /// Acquires, waiting at most `timeout` ([`AcquireError::Timeout`] then;
    /// `Duration::MAX` waits for ever).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'_>, AcquireError<LockGuard<'_>>> {
        outcome(
            self.state()
                .acquire(me(), deadline(timeout), self.shared.park()),
            || LockGuard::new(self),
        )
    }

    /// Acquires, taking a lock recovered from a dead holder silently (for `Value`/`Array`
    /// one-copy accessors, whose data is plain old data).
    #[inline]
    pub(crate) fn acquire_held(&self) -> LockGuard<'_> {
        let _ = self.state().acquire(me(), None, self.shared.park());
        LockGuard::new(self)
    }

    /// One attempt of [`acquire_async`](Lock::acquire_async): the lock if free, or, when
    /// `check`, taken over from a dead holder ([`AcquireError::OwnerDied`] with the guard);
    /// `None` when it is held by a live holder (or `check` is false).
    #[cfg(feature = "async")]
    pub(crate) fn try_acquire_or_recover(
        &self,
        check: bool,
        suspect: &mut processing_shm::owner::Suspect,
    ) -> Option<Result<LockGuard<'_>, AcquireError<LockGuard<'_>>>> {
        let got = self.state().try_acquire_or_recover(me(), check, suspect)?;
        Some(outcome(Ok(got), || LockGuard::new(self)))
    }

    /// Acquires if the lock is free now; [`AcquireError::WouldBlock`] if it is held. (A
    /// holder that died is only detected by the waiting acquires.)
    #[inline]
    pub fn try_acquire(&self) -> Result<LockGuard<'_>, AcquireError<LockGuard<'_>>> {
        if self.state().try_acquire(me()) {
            Ok(LockGuard::new(self))
        } else {
            Err(AcquireError::WouldBlock)
        }
    }

    /// Releases the lock (held through a forgotten guard). Releasing an unlocked lock is
    /// [`ReleaseError::NotLocked`].
    #[inline]
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self.state().release(self.shared.park()) {
            Ok(())
        } else {
            Err(ReleaseError::NotLocked)
        }
    }

    /// Whether any thread of any process holds the lock now.
    pub fn is_locked(&self) -> bool {
        self.state().is_locked()
    }
}

crate::shared::shared_primitive! {
    /// A recursive lock shared between processes, like `threading.RLock`: the holding thread may
    /// acquire it again, and must release it as many times; other threads and processes may not
    /// release it.
    ///
    /// ```
    /// let lock = processing::sync::RLock::new().unwrap();
    /// let a = lock.acquire().unwrap();
    /// let b = lock.acquire().unwrap();
    /// drop(b);
    /// drop(a);
    /// assert!(lock.release().unwrap_err().is_not_owner());
    /// ```
    RLock(LockState), owned: is_owned
}

crate::__release_guard! {
    /// Holds one level of an [`RLock`]; releases it on drop. Tied to its thread.
    RLockGuard: level of RLock
}

impl RLock {
    /// Creates an unlocked recursive lock in a fresh segment.
    pub fn new() -> Result<RLock, SyncError> {
        Ok(RLock {
            shared: Shared::create(|_| {})?,
        })
    }

    pub(crate) fn state(&self) -> &LockState {
        self.shared.state()
    }

    pub(crate) fn park(&self) -> &crate::sys::Parker {
        self.shared.park()
    }

    fn guard(&self) -> RLockGuard<'_> {
        RLockGuard::new(self)
    }

    fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        let got = self
            .state()
            .acquire_recursive(me(), sys::thread_tag(), deadline, self.park());
        outcome(got, || self.guard())
    }

    /// Acquires (again, if this thread holds it), waiting as long as it takes. The only
    /// error is [`AcquireError::OwnerDied`], which carries the guard.
    pub fn acquire(&self) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        self.acquire_until(None)
    }

    /// Acquires, waiting at most `timeout`.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        self.acquire_until(deadline(timeout))
    }

    /// Acquires if free now or already held by this thread; [`AcquireError::WouldBlock`] if
    /// another thread holds it.
    pub fn try_acquire(&self) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        if self.state().try_acquire_recursive(me(), sys::thread_tag()) {
            Ok(self.guard())
        } else {
            Err(AcquireError::WouldBlock)
        }
    }

    /// Releases one level; [`ReleaseError::NotOwner`] if this thread does not hold it.
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self
            .state()
            .release_recursive(me(), sys::thread_tag(), self.park())
        {
            Ok(())
        } else {
            Err(ReleaseError::NotOwner)
        }
    }

    /// Whether the calling thread holds the lock.
    pub fn is_owned(&self) -> bool {
        self.state().owned_by(me(), sys::thread_tag())
    }
}
