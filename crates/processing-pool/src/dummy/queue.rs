//! The queue family of the thread twin: [`Queue`], [`JoinableQueue`], [`SimpleQueue`] and
//! [`QueueBuilder`], with the signatures and the error types of the process-shared queues
//! (`processing::transport::queue`).
//!
//! Items are encoded on `put` and decoded on `get` as for processes (postcard), so an item
//! that cannot cross a process boundary fails here the same way ([`PutError::Encode`](processing_transport::queue::PutError::Encode)).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use processing_transport::queue::{
    GetFailure, JoinTimeoutError, PutFailure, QueueError, TaskDoneError,
};
use processing_transport::Deadline;
use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

use super::registry;
use crate::wait::{lock, wait_on};

struct State {
    items: VecDeque<Vec<u8>>,
    closed: bool,
    /// Items put and not yet marked done (`JoinableQueue`).
    unfinished: usize,
}

/// The state every handle of one twin queue shares.
struct Inner {
    id: u64,
    state: Mutex<State>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
    max_items: Option<usize>,
}

/// Builds a twin [`Queue`] with chosen bounds, as `processing::QueueBuilder`
/// does. Threads have no ring: `capacity_bytes` is checked as for processes (1 KiB to 64 MiB)
/// and otherwise unused.
///
/// ```
/// use processing::dummy::{Queue, QueueBuilder};
/// let q: Queue<u64> = QueueBuilder::new().max_items(6).capacity_bytes(64 << 10).build().unwrap();
/// assert_eq!(q.max_items(), Some(6));
/// assert!(QueueBuilder::new().max_items(0).build::<u8>().unwrap_err().is_invalid_argument());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueBuilder(processing_transport::queue::QueueBuilder);

impl QueueBuilder {
    /// The defaults: no item bound.
    pub fn new() -> QueueBuilder {
        QueueBuilder::default()
    }

    /// At most `n` items at a time (`n ≥ 1`).
    pub fn max_items(self, n: usize) -> QueueBuilder {
        QueueBuilder(self.0.max_items(n))
    }

    /// Accepted for parity with processes (checked: 1 KiB to 64 MiB once rounded up to a
    /// power of two).
    pub fn capacity_bytes(self, n: usize) -> QueueBuilder {
        QueueBuilder(self.0.capacity_bytes(n))
    }

    /// Creates the queue (its bounds checked as the process queue's).
    pub fn build<T>(self) -> Result<Queue<T>, QueueError> {
        let (max_items, _) = self.0.checked()?;
        Ok(Queue::from_state(Arc::new(Inner {
            id: registry::next_id(),
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                unfinished: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
            max_items,
        })))
    }
}

processing_transport::__queue_handle! {
    /// A multi-producer, multi-consumer FIFO between threads, with the methods, signatures and
    /// error types of the process-shared `processing::Queue`.
    ///
    /// ```
    /// let q = processing::dummy::Queue::bounded(1).unwrap();
    /// q.put(1).unwrap();
    /// let e = q.try_put(2).unwrap_err();
    /// assert!(e.is_full());
    /// assert_eq!(e.into_inner(), 2);
    /// assert_eq!(q.get().unwrap(), 1);
    /// assert!(q.try_get().unwrap_err().is_empty());
    /// ```
    pub struct Queue<T>(inner: Inner) as "processing::dummy::Queue";
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("max_items", &self.inner.max_items)
            .finish()
    }
}

impl<T> Queue<T> {
    /// Number of items in the queue.
    pub fn len(&self) -> usize {
        lock(&self.inner.state).items.len()
    }

    /// Whether the queue holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds its maximum number of items (always false without a bound).
    pub fn is_full(&self) -> bool {
        self.inner.max_items.is_some_and(|c| self.len() >= c)
    }

    /// The item bound, if any.
    pub fn max_items(&self) -> Option<usize> {
        self.inner.max_items
    }

    /// Closes the queue: later puts fail with `PutError::Closed`, gets drain what is left and
    /// then fail with `GetError::Closed`; blocked puts and gets wake up.
    pub fn close(&self) {
        lock(&self.inner.state).closed = true;
        self.inner.not_empty.notify_all();
        self.inner.not_full.notify_all();
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        lock(&self.inner.state).closed
    }

    fn put_bytes(&self, bytes: Vec<u8>, deadline: Deadline) -> Result<(), PutFailure> {
        let mut s = lock(&self.inner.state);
        loop {
            if s.closed {
                return Err(PutFailure::Closed);
            }
            if self.inner.max_items.is_none_or(|c| s.items.len() < c) {
                s.items.push_back(bytes);
                s.unfinished += 1;
                self.inner.not_empty.notify_one();
                return Ok(());
            }
            s = wait_on(&self.inner.not_full, s, deadline.instant())
                .map_err(|_| PutFailure::Full)?;
        }
    }

    fn get_bytes(&self, deadline: Deadline) -> Result<Vec<u8>, GetFailure> {
        let mut s = lock(&self.inner.state);
        loop {
            if let Some(item) = s.items.pop_front() {
                self.inner.not_full.notify_one();
                return Ok(item);
            }
            if s.closed {
                return Err(GetFailure::Closed);
            }
            s = wait_on(&self.inner.not_empty, s, deadline.instant())
                .map_err(|_| GetFailure::Empty)?;
        }
    }
}

impl<T: Serialize> Queue<T> {
    fn put_until(&self, item: &T, deadline: Deadline) -> Result<(), PutFailure> {
        if self.is_closed() {
            return Err(PutFailure::Closed);
        }
        let bytes = processing_core::codec::encode(item).map_err(PutFailure::Encode)?;
        self.put_bytes(bytes, deadline)
    }
}

impl<T: DeserializeOwned> Queue<T> {
    fn get_until(&self, deadline: Deadline) -> Result<T, GetFailure> {
        let bytes = self.get_bytes(deadline)?;
        processing_core::codec::decode(&bytes).map_err(GetFailure::Decode)
    }
}

/// A twin queue handle serializes as an id in this process (see the `registry` module): it
/// travels through a thread pool's task arguments, another twin queue or a twin pipe.
impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        registry::send(self.inner.id, &self.inner).serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = registry::Wire::deserialize(d)?;
        let inner = registry::receive::<Inner>(wire, "queue").map_err(serde::de::Error::custom)?;
        Ok(Queue::from_state(inner))
    }
}

processing_transport::__queue_wrappers!(JoinableQueue, SimpleQueue in "processing::dummy");

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("queue", &self.queue)
            .field("unfinished", &lock(&self.queue.inner.state).unfinished)
            .finish()
    }
}

impl<T> JoinableQueue<T> {
    /// Marks one item taken from the queue as processed ([`TaskDoneError::TooMany`] when
    /// every item put was already marked).
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let inner = &self.queue.inner;
        let mut s = lock(&inner.state);
        if s.unfinished == 0 {
            return Err(TaskDoneError::TooMany);
        }
        s.unfinished -= 1;
        if s.unfinished == 0 {
            inner.all_done.notify_all();
        }
        Ok(())
    }

    /// Waits until every item ever put has been marked done.
    pub fn join(&self) {
        // Without a deadline only a zero count ends the wait.
        let _ = self.join_until(Deadline::Never);
    }

    /// Waits at most `timeout` for every item to be marked done (`Duration::MAX`: as long as
    /// needed, zero: one check).
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        self.join_until(Deadline::after(timeout))
    }

    fn join_until(&self, deadline: Deadline) -> Result<(), JoinTimeoutError> {
        let inner = &self.queue.inner;
        let mut s = lock(&inner.state);
        while s.unfinished > 0 {
            s = wait_on(&inner.all_done, s, deadline.instant())
                .map_err(|_| JoinTimeoutError::Timeout)?;
        }
        Ok(())
    }
}

/// Awaitable operations (feature `async`), as on the process queues: one-attempt operations
/// retried on the reactor's backoff schedule, so a dropped future takes or puts nothing.
#[cfg(feature = "async")]
mod awaitable {
    use super::*;
    use processing_transport::queue::{GetError, PutError};

    impl<T: DeserializeOwned> Queue<T> {
        /// Awaits and takes the oldest item, like [`get`](Queue::get).
        ///
        /// ```
        /// let q = processing::dummy::Queue::new().unwrap();
        /// q.put(5u32).unwrap();
        /// assert_eq!(processing::core::aio::block_on(q.get_async()).unwrap(), 5);
        /// ```
        pub async fn get_async(&self) -> Result<T, GetError> {
            processing_core::aio::retry(|| match self.get_until(Deadline::Now) {
                Ok(v) => Some(Ok(v)),
                Err(GetFailure::Empty | GetFailure::Timeout) => None,
                Err(f) => Some(Err(f.get())),
            })
            .await
        }
    }

    impl<T: Serialize> Queue<T> {
        /// Awaits room and puts `item`, like [`put`](Queue::put).
        ///
        /// ```
        /// let q = processing::dummy::Queue::bounded(1).unwrap();
        /// processing::core::aio::block_on(q.put_async(1u32)).unwrap();
        /// assert_eq!(q.get().unwrap(), 1);
        /// ```
        pub async fn put_async(&self, item: T) -> Result<(), PutError<T>> {
            let bytes = match processing_core::codec::encode(&item) {
                Ok(b) => b,
                Err(e) => return Err(PutError::Encode(item, e)),
            };
            let mut bytes = Some(bytes);
            processing_core::aio::retry(|| {
                let b = bytes.take()?;
                let mut s = lock(&self.inner.state);
                if s.closed {
                    return Some(Err(()));
                }
                if self.inner.max_items.is_none_or(|c| s.items.len() < c) {
                    s.items.push_back(b);
                    s.unfinished += 1;
                    self.inner.not_empty.notify_one();
                    return Some(Ok(()));
                }
                bytes = Some(b);
                None
            })
            .await
            .map_err(|()| PutError::Closed(item))
        }
    }

    impl<T> JoinableQueue<T> {
        /// Awaits until every item put was marked done, like [`join`](JoinableQueue::join).
        pub async fn join_async(&self) {
            processing_core::aio::retry(|| self.join_until(Deadline::Now).ok()).await;
        }
    }

    impl<T: DeserializeOwned> SimpleQueue<T> {
        /// Awaits and takes the oldest item (see [`Queue::get_async`]).
        pub async fn get_async(&self) -> Result<T, GetError> {
            self.queue.get_async().await
        }
    }

    impl<T: Serialize> SimpleQueue<T> {
        /// Puts `item` (see [`Queue::put_async`]).
        pub async fn put_async(&self, item: T) -> Result<(), PutError<T>> {
            self.queue.put_async(item).await
        }
    }
}
