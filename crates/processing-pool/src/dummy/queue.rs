//! The queue of the thread twin: [`Queue`].

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::sync::lock;

/// A `put` that did not happen; the item is handed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PutError<T> {
    /// The queue is full (`try_put`).
    #[error("the queue is full")]
    Full(T),
    /// The queue stayed full until the timeout (`put_timeout`).
    #[error("timed out waiting for room in the queue")]
    Timeout(T),
    /// The queue is closed.
    #[error("the queue is closed")]
    Closed(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::Timeout(t) | PutError::Closed(t) => t,
        }
    }
    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }
    /// Whether the timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutError::Timeout(_))
    }
    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PutError::Closed(_))
    }
}

/// A `get` that returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    /// The queue is empty (`try_get`).
    #[error("the queue is empty")]
    Empty,
    /// The queue stayed empty until the timeout (`get_timeout`).
    #[error("timed out waiting for an item")]
    Timeout,
    /// The queue is closed (and, for `get`, empty).
    #[error("the queue is closed")]
    Closed,
}

impl GetError {
    /// Whether the queue was empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, GetError::Empty)
    }
    /// Whether the timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, GetError::Timeout)
    }
    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, GetError::Closed)
    }
}

struct QueueState<T> {
    items: VecDeque<T>,
    closed: bool,
}

struct QueueInner<T> {
    state: Mutex<QueueState<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: Option<usize>,
}

/// A multi-producer multi-consumer FIFO between threads, with the method names of the
/// process-shared `Queue`.
///
/// ```
/// let q = processing_pool::dummy::Queue::bounded(1);
/// q.put(1).unwrap();
/// assert!(q.try_put(2).unwrap_err().is_full());
/// assert_eq!(q.get().unwrap(), 1);
/// assert!(q.try_get().unwrap_err().is_empty());
/// ```
pub struct Queue<T> {
    inner: Arc<QueueInner<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("capacity", &self.inner.capacity)
            .finish()
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self::with_capacity(None)
    }
}

impl<T> Queue<T> {
    /// An unbounded queue (`Result` as for the process-shared `Queue`; it cannot fail here).
    pub fn new() -> Result<Self, processing_transport::queue::QueueError> {
        Ok(Self::with_capacity(None))
    }

    /// A queue of at most `capacity` items (at least 1).
    pub fn bounded(capacity: usize) -> Self {
        Self::with_capacity(Some(capacity.max(1)))
    }

    fn with_capacity(capacity: Option<usize>) -> Self {
        Queue {
            inner: Arc::new(QueueInner {
                state: Mutex::new(QueueState {
                    items: VecDeque::new(),
                    closed: false,
                }),
                not_empty: Condvar::new(),
                not_full: Condvar::new(),
                capacity,
            }),
        }
    }

    fn put_until(&self, item: T, deadline: Option<Option<Instant>>) -> Result<(), PutError<T>> {
        let mut s = lock(&self.inner.state);
        loop {
            if s.closed {
                return Err(PutError::Closed(item));
            }
            if self.inner.capacity.is_none_or(|c| s.items.len() < c) {
                s.items.push_back(item);
                self.inner.not_empty.notify_one();
                return Ok(());
            }
            s = match deadline {
                Some(None) => return Err(PutError::Full(item)),
                None => self
                    .inner
                    .not_full
                    .wait(s)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(Some(d)) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(PutError::Timeout(item));
                    }
                    self.inner
                        .not_full
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Appends `item`, waiting for room.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, None)
    }

    /// Appends `item`, waiting at most `timeout` for room.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_until(item, Some(Instant::now().checked_add(timeout)))
    }

    /// Appends `item` if there is room now.
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, Some(None))
    }

    fn get_until(&self, deadline: Option<Option<Instant>>) -> Result<T, GetError> {
        let mut s = lock(&self.inner.state);
        loop {
            if let Some(item) = s.items.pop_front() {
                self.inner.not_full.notify_one();
                return Ok(item);
            }
            if s.closed {
                return Err(GetError::Closed);
            }
            s = match deadline {
                Some(None) => return Err(GetError::Empty),
                None => self
                    .inner
                    .not_empty
                    .wait(s)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(Some(d)) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(GetError::Timeout);
                    }
                    self.inner
                        .not_empty
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Removes the oldest item, waiting for one; the process-shared `Queue`'s error
    /// ([`GetError::Closed`](processing_transport::queue::GetError::Closed) once closed and
    /// drained).
    pub fn get(&self) -> Result<T, processing_transport::queue::GetError> {
        self.get_until(None)
            .map_err(|_| processing_transport::queue::GetError::Closed)
    }

    /// Removes the oldest item, waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_until(Some(Instant::now().checked_add(timeout)))
    }

    /// Removes the oldest item if there is one now.
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_until(Some(None))
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        lock(&self.inner.state).items.len()
    }

    /// Whether there is no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a bounded queue is at its capacity.
    pub fn is_full(&self) -> bool {
        self.inner.capacity.is_some_and(|c| self.len() >= c)
    }

    /// No more puts; gets drain what is left, then fail with [`GetError::Closed`].
    pub fn close(&self) {
        lock(&self.inner.state).closed = true;
        self.inner.not_empty.notify_all();
        self.inner.not_full.notify_all();
    }
}
