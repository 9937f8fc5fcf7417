//! Awaitable acquires and waits (feature `async`): the non-blocking operation (`try_acquire`,
//! `is_set`) retried on the reactor's [`Backoff`](processing_core::aio::Backoff) schedule
//! (20 µs doubling to 10 ms between attempts). A waiting future registers nothing in shared
//! memory, so dropping it at any point takes no permit and leaves no waiter behind; a permit
//! is only ever taken in the poll that returns it.
//!
//! Not offered: a `Condition` wait (its lock is an [`RLock`](crate::RLock), owned by a thread,
//! while a task may move between threads at each `.await`; and a dropped notify-driven waiter
//! would swallow a `notify`) and a `Barrier` wait (an arrival cannot be withdrawn when the
//! future is dropped). Await the state they guard through an `Event`, a `Semaphore` or a
//! queue instead.

use processing_core::aio::{retry, retry_until};

use crate::{BoundedSemaphore, Event, Lock, LockGuard, Semaphore, SemaphoreGuard};

impl Lock {
    /// Awaits the lock, like [`acquire`](Lock::acquire), without blocking a thread (any
    /// executor). Cancellation safe: a dropped future holds nothing.
    ///
    /// ```
    /// let lock = processing_sync::Lock::new().unwrap();
    /// let g = processing_core::aio::block_on(lock.acquire_async());
    /// assert!(lock.try_acquire().is_none());
    /// drop(g);
    /// ```
    pub async fn acquire_async(&self) -> LockGuard<'_> {
        retry(|| self.try_acquire()).await
    }
}

impl Semaphore {
    /// Awaits a permit, like [`acquire`](Semaphore::acquire). Cancellation safe: a dropped
    /// future took no permit.
    ///
    /// ```
    /// let s = processing_sync::Semaphore::new(1).unwrap();
    /// let g = processing_core::aio::block_on(s.acquire_async());
    /// assert_eq!(s.value(), 0);
    /// drop(g);
    /// assert_eq!(s.value(), 1);
    /// ```
    pub async fn acquire_async(&self) -> SemaphoreGuard<'_> {
        retry(|| self.try_acquire()).await
    }
}

impl BoundedSemaphore {
    /// Awaits a permit (see [`Semaphore::acquire_async`]).
    pub async fn acquire_async(&self) -> SemaphoreGuard<'_> {
        retry(|| self.try_acquire()).await
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
