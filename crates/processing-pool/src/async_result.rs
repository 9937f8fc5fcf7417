//! The awaitable side of results (feature `async`): [`AsyncResult`] is a `Future`, [`IMap`] a
//! `futures_core::Stream`. The pool's supervising thread that delivers a result wakes the
//! awaiting task directly: no reactor, no thread per waiter.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{lock, AsyncResult, IMap};
use crate::PoolError;

/// Awaiting an `AsyncResult` gives what [`get`](AsyncResult::get) gives, without blocking a
/// thread (any executor).
///
/// Dropping the future before its result came (after it was polled at least once) cancels
/// the call if none of its tasks was handed to a worker yet, as
/// [`cancel`](AsyncResult::cancel) does; a started task runs to its end and its result is
/// dropped. An `AsyncResult` never polled keeps the blocking API's behaviour: dropping it lets
/// the call run (its callbacks still fire).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use processing::Pool;
/// fn square(x: u64) -> u64 { x * x }
/// let pool = Pool::new(2)?;
/// let r = pool.apply_async(square, 9)?;
/// assert_eq!(processing::core::aio::block_on(r)?, 81);
/// # Ok(()) }
/// ```
impl<T> Future for AsyncResult<T> {
    type Output = Result<T, PoolError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if !this.slot.is_ready() {
            let mut s = lock(&this.slot.state);
            // Checked again under the lock `set` stores under: no lost wake-up.
            if !this.slot.is_ready() {
                if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    s.wakers.push(cx.waker().clone());
                }
                this.awaited = true;
                return Poll::Pending;
            }
        }
        this.awaited = false;
        Poll::Ready(this.slot.take(None))
    }
}

impl<T> Drop for AsyncResult<T> {
    fn drop(&mut self) {
        if self.awaited && !self.slot.is_ready() {
            (self.cancel)();
        }
    }
}

// Nothing of an `IMap` is pinned (it is never projected): it moves freely.
impl<R> Unpin for IMap<'_, R> {}

/// `IMap` as a stream: the same items as the iterator, in the same order, awaited instead of
/// waited for. Dropping it drops the chunks not yet started, as dropping the iterator does.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use processing::Pool;
/// use std::future::poll_fn;
/// use std::pin::Pin;
/// use futures_core::Stream;
/// fn square(x: u64) -> u64 { x * x }
/// let pool = Pool::new(2)?;
/// let mut it = pool.imap(square, 0u64..4)?;
/// let mut got = Vec::new();
/// processing::core::aio::block_on(async {
///     while let Some(v) = poll_fn(|cx| Pin::new(&mut it).poll_next(cx)).await {
///         got.push(v.unwrap());
///     }
/// });
/// assert_eq!(got, [0, 1, 4, 9]);
/// # Ok(()) }
/// ```
impl<R: DeserializeOwned + Send + 'static> futures_core::Stream for IMap<'_, R> {
    type Item = Result<R, PoolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // Registered before looking: a chunk finishing after the look wakes the task.
        lock(&this.group.state).waker = Some(cx.waker().clone());
        match this.next_timeout(Duration::ZERO) {
            // Nothing finished yet (the wait's own timeout, not a task's).
            Err(PoolError::Timeout) => Poll::Pending,
            Ok(item) => Poll::Ready(item.map(Ok)),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}
