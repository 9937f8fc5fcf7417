//! Awaitable acquires and waits (feature `async`): the non-blocking operation (`try_acquire`,
//! `is_set`) retried on the reactor's [`Backoff`](processing_core::aio::Backoff) schedule
//! (20 µs doubling to 10 ms between attempts). A waiting future registers nothing in shared
//! memory, so dropping it at any point takes no permit and leaves no waiter behind; a permit
//! is only ever taken in the poll that returns it.
//!
//! A `Condition` is awaited by its predicate ([`Condition::wait_for_async`]): its lock is an
//! [`RLock`](crate::RLock), owned by a thread, while a task may move between threads at each
//! `.await`, so the lock is taken and released within one poll, and a notify-driven wait is
//! not offered (a dropped waiter would swallow a `notify`).
//!
//! [`RLock::acquire_async`] keeps the blocking lock's rule: the lock belongs to the thread that
//! polled the acquire, and its guard is not `Send`, so a task that holds it across an `.await`
//! cannot move to another thread (the compiler refuses to spawn it on a multi-threaded
//! runtime). [`Barrier::wait_async`] counts its arrival in the first poll and takes it back
//! when dropped before the pass completes, as `asyncio.Barrier` does; the pass then waits for
//! one more arrival.

use std::time::Instant;

use processing_core::aio::{retry, retry_until};

use crate::algo::barrier::{Arrival, Arrived};
use crate::error::BarrierError;
use crate::{
    AcquireError, Barrier, BoundedSemaphore, Condition, Event, Lock, LockGuard, RLock, RLockGuard,
    Semaphore, SemaphoreGuard,
};

impl RLock {
    /// Awaits the lock, like [`acquire`](RLock::acquire) (again, if this thread holds it),
    /// without blocking a thread. The lock is the polling thread's, as with `acquire`: the
    /// guard is not `Send`, so a task that keeps it across an `.await` stays on its thread
    /// (`block_on`, a current-thread runtime or a `LocalSet`), and tasks that share a thread
    /// share its ownership, like nested calls of one thread. Cancellation safe: a dropped
    /// future holds nothing.
    ///
    /// ```
    /// let lock = processing::sync::RLock::new().unwrap();
    /// let g = processing::core::aio::block_on(lock.acquire_async()).unwrap();
    /// let again = processing::core::aio::block_on(lock.acquire_async()).unwrap(); // recursive
    /// drop(again);
    /// drop(g);
    /// assert!(!lock.is_owned());
    /// ```
    pub async fn acquire_async(&self) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        Ok(retry(|| self.try_acquire().ok()).await)
    }
}

/// An arrival of [`Barrier::wait_async`] in flight: taken back if the future is dropped.
struct Pending<'a> {
    barrier: &'a Barrier,
    arrival: Option<Arrival>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(arrival) = self.arrival.take() {
            self.barrier.withdraw(&arrival);
        }
    }
}

impl Barrier {
    /// Awaits the other parties, like [`wait`](Barrier::wait), without blocking a thread;
    /// returns this arrival's index. The arrival counts from the first poll (the last
    /// arriver runs the action there). Cancellation safe: dropping the future before the
    /// pass completes takes its arrival back (the pass then needs another one), and breaks
    /// nothing; a pass that already completed stays completed.
    ///
    /// ```
    /// let b = processing::sync::Barrier::new(1).unwrap();
    /// assert_eq!(processing::core::aio::block_on(b.wait_async()).unwrap(), 0);
    /// ```
    pub async fn wait_async(&self) -> Result<usize, BarrierError> {
        let arrival = match self.arrive()? {
            Arrived::Passed(index) => return Ok(index as usize),
            Arrived::Waiting(arrival) => arrival,
        };
        let mut pending = Pending {
            barrier: self,
            arrival: Some(arrival),
        };
        // As the blocking wait: a dead party breaks the pass, checked every `POLL`.
        let mut last_check = Instant::now();
        let outcome = retry(|| {
            let check_parties = last_check.elapsed() >= crate::algo::POLL;
            if check_parties {
                last_check = Instant::now();
            }
            self.check(&arrival, check_parties)
        })
        .await;
        pending.arrival = None;
        outcome
    }
}

impl Lock {
    /// Awaits the lock, like [`acquire`](Lock::acquire) and with its return type, without
    /// blocking a thread (any executor). Cancellation safe: a dropped future holds nothing.
    /// A holder that died is detected as by `acquire` (its liveness checked every 100 ms):
    /// the lock is taken over and returned as [`AcquireError::OwnerDied`] with the guard.
    ///
    /// ```
    /// let lock = processing::sync::Lock::new().unwrap();
    /// let g = processing::core::aio::block_on(lock.acquire_async()).unwrap();
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
    /// let s = processing::sync::Semaphore::new(1).unwrap();
    /// let g = processing::core::aio::block_on(s.acquire_async()).unwrap();
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
    /// let e = processing::sync::Event::new().unwrap();
    /// e.set();
    /// processing::core::aio::block_on(e.wait_async());
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
    /// let cond = processing::sync::Condition::new().unwrap();
    /// let ready = AtomicBool::new(true);
    /// processing::core::aio::block_on(cond.wait_for_async(|| ready.load(Ordering::SeqCst)));
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
