//! Awaitable acquires and waits (feature `async`): the non-blocking operation (`try_acquire`,
//! `is_set`) retried on the reactor's [`Backoff`](processing_core::aio::Backoff) schedule
//! (20 µs doubling to 10 ms between attempts). A waiting future registers nothing in shared
//! memory, so dropping it at any point takes no permit and leaves no waiter behind; a permit
//! is only ever taken in the poll that returns it.
//!
//! A `Condition` is awaited by its predicate ([`Condition::wait_for_async`]): its lock is an
//! [`RLock`](crate::RLock), owned by a thread, while a task may move between threads at each
//! `.await`, so the lock is taken and released within one poll, and a notify-driven wait is
//! not offered (a dropped waiter would swallow a `notify`). Not offered: a `Barrier` wait (an
//! arrival cannot be withdrawn when the future is dropped) and `RLock::acquire_async` (thread
//! ownership again).

use processing_core::aio::{retry, retry_until};

use crate::{
    AcquireError, BoundedSemaphore, Condition, Event, Lock, LockGuard, Semaphore, SemaphoreGuard,
};

impl Lock {
    /// Awaits the lock, like [`acquire`](Lock::acquire) and with its return type, without
    /// blocking a thread (any executor). Cancellation safe: a dropped future holds nothing.
    /// A holder that died is detected as by `acquire` (its liveness checked every 100 ms):
    /// the lock is taken over and returned as [`AcquireError::OwnerDied`] with the guard.
    ///
    /// ```
    /// let lock = processing_sync::Lock::new().unwrap();
    /// let g = processing_core::aio::block_on(lock.acquire_async()).unwrap();
    /// assert!(lock.try_acquire().unwrap_err().is_would_block());
    /// drop(g);
    /// ```
    pub async fn acquire_async(&self) -> Result<LockGuard<'_>, AcquireError<LockGuard<'_>>> {
        let mut suspect = processing_shm::owner::Suspect::default();
        let mut last_check = std::time::Instant::now();
        retry(|| {
            let check = last_check.elapsed() >= crate::algo::POLL;
            if check {
                last_check = std::time::Instant::now();
            }
            self.try_acquire_or_recover(check, &mut suspect)
        })
        .await
    }
}

impl Semaphore {
    /// Awaits a permit, like [`acquire`](Semaphore::acquire) and with its return type.
    /// Cancellation safe: a dropped future took no permit.
    ///
    /// ```
    /// let s = processing_sync::Semaphore::new(1).unwrap();
    /// let g = processing_core::aio::block_on(s.acquire_async()).unwrap();
    /// assert_eq!(s.value(), 0);
    /// drop(g);
    /// assert_eq!(s.value(), 1);
    /// ```
    pub async fn acquire_async(
        &self,
    ) -> Result<SemaphoreGuard<'_>, AcquireError<SemaphoreGuard<'_>>> {
        Ok(retry(|| self.try_acquire().ok()).await)
    }
}

impl BoundedSemaphore {
    /// Awaits a permit (see [`Semaphore::acquire_async`]).
    pub async fn acquire_async(
        &self,
    ) -> Result<SemaphoreGuard<'_>, AcquireError<SemaphoreGuard<'_>>> {
        Ok(retry(|| self.try_acquire().ok()).await)
    }
}

impl Event {
    /// Awaits the flag, like [`wait`](Event::wait).
    ///
    /// ```
    /// let e = processing_sync::Event::new().unwrap();
    /// e.set();
    /// processing_core::aio::block_on(e.wait_async());
    /// ```
    pub async fn wait_async(&self) {
        retry(|| self.is_set().then_some(())).await;
    }

    /// Awaits the flag at most `timeout`; whether it was set, like
    /// [`wait_timeout`](Event::wait_timeout).
    pub async fn wait_timeout_async(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now().checked_add(timeout);
        retry_until(deadline, || self.is_set().then_some(()))
            .await
            .is_some()
    }
}

impl Condition {
    /// Awaits until `predicate` returns true, checked under the condition's lock on the
    /// retry schedule (feature `async`). Unlike [`wait_for`](Condition::wait_for) it is called
    /// without the lock and returns without it: the lock is taken and released within each
    /// check, because an [`RLock`](crate::RLock) belongs to a thread and a task may move
    /// between threads at an `.await`. Re-check the state under the lock if it may change
    /// again. Cancellation safe: a dropped future holds no lock and is no registered waiter.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// let cond = processing_sync::Condition::new().unwrap();
    /// let ready = AtomicBool::new(true);
    /// processing_core::aio::block_on(cond.wait_for_async(|| ready.load(Ordering::SeqCst)));
    /// ```
    pub async fn wait_for_async(&self, mut predicate: impl FnMut() -> bool) {
        retry(|| {
            let guard = self.try_acquire().ok()?;
            let holds = predicate();
            drop(guard);
            holds.then_some(())
        })
        .await
    }
}
