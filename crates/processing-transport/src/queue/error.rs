//! Errors of the queue family, in the style of channel errors: a failed put hands the item back.

use std::fmt;

/// A put failed; the item comes back inside the error.
///
/// ```
/// use processing_transport::queue::PutError;
/// let e = PutError::Full(7u32);
/// assert!(e.is_full());
/// assert_eq!(e.into_inner(), Some(7));
/// ```
#[derive(PartialEq, Eq, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PutError<T> {
    /// The queue is full (`try_put`).
    #[error("queue is full")]
    Full(T),
    /// The queue was closed.
    #[error("queue is closed")]
    Closed(T),
    /// The queue stayed full until the timeout (`put_timeout`).
    #[error("timed out waiting for room in the queue")]
    Timeout(T),
    /// The item could not be encoded (for example it holds an OS handle, which cannot travel
    /// through shared memory on Unix) or spilled to its own segment.
    #[error("cannot put item: {0}")]
    Encode(String),
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::Closed(_) => f.write_str("Closed(..)"),
            PutError::Timeout(_) => f.write_str("Timeout(..)"),
            PutError::Encode(e) => f.debug_tuple("Encode").field(e).finish(),
        }
    }
}

impl<T> PutError<T> {
    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }
    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PutError::Closed(_))
    }
    /// Whether the timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutError::Timeout(_))
    }
    /// Whether the item could not be encoded.
    pub fn is_encode(&self) -> bool {
        matches!(self, PutError::Encode(_))
    }
    /// The item handed back, if the error kept it.
    pub fn into_inner(self) -> Option<T> {
        match self {
            PutError::Full(t) | PutError::Closed(t) | PutError::Timeout(t) => Some(t),
            PutError::Encode(_) => None,
        }
    }
}

/// A get returned no item.
///
/// ```
/// use processing_transport::queue::GetError;
/// assert!(GetError::Empty.is_empty());
/// assert_eq!(GetError::Timeout.to_string(), "timed out waiting for an item");
/// ```
#[derive(Debug, PartialEq, Eq, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The queue is empty (`try_get`).
    #[error("queue is empty")]
    Empty,
    /// The queue was closed and every item in it has been taken.
    #[error("queue is closed and drained")]
    Closed,
    /// No item arrived before the timeout (`get_timeout`).
    #[error("timed out waiting for an item")]
    Timeout,
    /// The item's bytes do not decode as the expected type; the item was removed.
    #[error("cannot decode item: {0}")]
    Decode(String),
}

impl GetError {
    /// Whether the queue was empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, GetError::Empty)
    }
    /// Whether the queue was closed and drained.
    pub fn is_closed(&self) -> bool {
        matches!(self, GetError::Closed)
    }
    /// Whether the timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, GetError::Timeout)
    }
    /// Whether an item could not be decoded.
    pub fn is_decode(&self) -> bool {
        matches!(self, GetError::Decode(_))
    }
}

/// A queue could not be created or attached.
///
/// ```
/// use processing_transport::queue::{Queue, QueueError};
/// let e = Queue::<u8>::bounded(0).unwrap_err();
/// assert!(e.is_invalid_argument());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// A size or bound out of range.
    #[error("invalid queue argument: {0}")]
    InvalidArgument(String),
    /// The shared segment could not be created or opened.
    #[error("queue segment: {0}")]
    Segment(String),
    /// The segment is not a queue of this version.
    #[error("segment is not a queue: {0}")]
    NotAQueue(&'static str),
}

impl QueueError {
    /// Whether an argument was out of range.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(self, QueueError::InvalidArgument(_))
    }
    /// Whether the shared segment failed.
    pub fn is_segment(&self) -> bool {
        matches!(self, QueueError::Segment(_))
    }
}

/// `task_done` was called more times than items were put.
///
/// ```
/// use processing_transport::queue::TaskDoneError;
/// assert_eq!(TaskDoneError.to_string(), "task_done called more times than items were put");
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy, thiserror::Error)]
#[error("task_done called more times than items were put")]
pub struct TaskDoneError;

/// `join_timeout` returned before every task was done.
///
/// ```
/// use processing_transport::queue::JoinTimeoutError;
/// assert_eq!(JoinTimeoutError.to_string(), "timed out waiting for unfinished tasks");
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy, thiserror::Error)]
#[error("timed out waiting for unfinished tasks")]
pub struct JoinTimeoutError;
