//! Awaitable queue operations (feature `async`): the non-blocking `try_get`/`try_put` retried
//! on the reactor's [`Backoff`] schedule (20 µs doubling to 10 ms between attempts). Nothing is
//! registered in shared memory while a future waits, so dropping one at any point leaves the
//! queue as it was: no item taken, no item put, no waiter counted.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use processing_core::aio::Backoff;
use serde::{de::DeserializeOwned, Serialize};

use super::{GetError, JoinableQueue, PutError, Queue, SimpleQueue, TryGetError, TryPutError};

/// The future of [`Queue::get_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct GetAsync<'a, T> {
    queue: &'a Queue<T>,
    backoff: Backoff,
}

impl<T: DeserializeOwned> Future for GetAsync<'_, T> {
    type Output = Result<T, GetError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.queue.try_get() {
            Ok(value) => Poll::Ready(Ok(value)),
            Err(TryGetError::Empty) => {
                this.backoff.wait(cx);
                Poll::Pending
            }
            Err(TryGetError::Decode(e)) => Poll::Ready(Err(GetError::Decode(e))),
            Err(TryGetError::Manager(e)) => Poll::Ready(Err(GetError::Manager(e))),
            Err(TryGetError::Closed) => Poll::Ready(Err(GetError::Closed)),
        }
    }
}

/// The future of [`Queue::put_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct PutAsync<'a, T> {
    queue: &'a Queue<T>,
    item: Option<T>,
    backoff: Backoff,
}

// The item is moved in and out by value, never pinned.
impl<T> Unpin for PutAsync<'_, T> {}

impl<T: Serialize> Future for PutAsync<'_, T> {
    type Output = Result<(), PutError<T>>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(item) = this.item.take() else {
            return Poll::Ready(Ok(()));
        };
        match this.queue.try_put(item) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(TryPutError::Full(item)) => {
                this.item = Some(item);
                this.backoff.wait(cx);
                Poll::Pending
            }
            Err(TryPutError::Closed(item)) => Poll::Ready(Err(PutError::Closed(item))),
            Err(TryPutError::Encode(item, e)) => Poll::Ready(Err(PutError::Encode(item, e))),
            Err(TryPutError::Spill(item, e)) => Poll::Ready(Err(PutError::Spill(item, e))),
            Err(TryPutError::Manager(item, e)) => Poll::Ready(Err(PutError::Manager(item, e))),
        }
    }
}

impl<T: DeserializeOwned> Queue<T> {
    /// Awaits and takes the oldest item, like [`get`](Queue::get), without blocking a thread
    /// (feature `async`). Cancellation safe: dropping the future takes nothing.
    ///
    /// ```
    /// let q = processing::transport::Queue::new().unwrap();
    /// q.put(5u32).unwrap();
    /// assert_eq!(processing::core::aio::block_on(q.get_async()).unwrap(), 5);
    /// ```
    pub fn get_async(&self) -> GetAsync<'_, T> {
        GetAsync {
            queue: self,
            backoff: Backoff::new(),
        }
    }
}

impl<T: Serialize> Queue<T> {
    /// Awaits room and puts `item`, like [`put`](Queue::put) (feature `async`). Cancellation
    /// safe: dropping the future before it completed puts nothing (the item is dropped with
    /// it).
    ///
    /// ```
    /// let q = processing::transport::Queue::bounded(1).unwrap();
    /// processing::core::aio::block_on(q.put_async(1u32)).unwrap();
    /// assert_eq!(q.get().unwrap(), 1);
    /// ```
    pub fn put_async(&self, item: T) -> PutAsync<'_, T> {
        PutAsync {
            queue: self,
            item: Some(item),
            backoff: Backoff::new(),
        }
    }
}

impl<T> JoinableQueue<T> {
    /// Awaits until every item put was marked [`task_done`](JoinableQueue::task_done), like
    /// [`join`](JoinableQueue::join) (feature `async`; `get_async`/`put_async` come through
    /// `Deref` to [`Queue`]).
    ///
    /// ```
    /// let q = processing::transport::JoinableQueue::new().unwrap();
    /// q.put(1u8).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// processing::core::aio::block_on(q.join_async());
    /// ```
    pub async fn join_async(&self) {
        let d = std::time::Duration::ZERO;
        processing_core::aio::retry(|| self.join_timeout(d).ok()).await;
    }
}

impl<T: DeserializeOwned> SimpleQueue<T> {
    /// Awaits and takes the oldest item (see [`Queue::get_async`]).
    ///
    /// ```
    /// let q = processing::transport::SimpleQueue::new().unwrap();
    /// q.put(3u8).unwrap();
    /// assert_eq!(processing::core::aio::block_on(q.get_async()).unwrap(), 3);
    /// ```
    pub fn get_async(&self) -> GetAsync<'_, T> {
        self.queue.get_async()
    }
}

impl<T: Serialize> SimpleQueue<T> {
    /// Puts `item` (see [`Queue::put_async`]; a simple queue is unbounded).
    pub fn put_async(&self, item: T) -> PutAsync<'_, T> {
        self.queue.put_async(item)
    }
}
