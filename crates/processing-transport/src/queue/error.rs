//! Errors of the queue family, in the style of std's and crossbeam's channel errors: one error
//! type per operation (`put`, `try_put`, `put_timeout`, `get`, `try_get`, `get_timeout`), and a
//! failed put hands the item back in every case.
//!
//! The same types are returned by the queue's manager proxy and by its thread twin in
//! `processing::dummy`; their `Manager` variants are used only by proxies and carry the
//! manager's error (a `processing::manager::ManagerError`) as the source.

use std::fmt;

use processing_core::{BoxError, CodecError};
use processing_shm::ShmError;

macro_rules! put_error {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident),* }
    ) => {
        $(#[$meta])*
        #[derive(thiserror::Error)]
        #[non_exhaustive]
        pub enum $name<T> {
            $($(#[$vmeta])* $variant(T),)*
            /// The queue was closed.
            #[error("queue is closed")]
            Closed(T),
            /// The item could not be encoded (for example it holds an OS handle, which cannot
            /// travel through shared memory on Unix).
            #[error("cannot put the item: it does not encode")]
            Encode(T, #[source] CodecError),
            /// The item is larger than a quarter of the ring and the segment it spills into
            /// could not be created.
            #[error("cannot put the item: no segment to spill it into")]
            Spill(T, #[source] ShmError),
            /// A proxy could not have the manager carry out the put; the source is the
            /// manager's error.
            #[error("cannot put the item through the manager")]
            Manager(T, #[source] BoxError),
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$variant(_) => f.write_str(concat!(stringify!($variant), "(..)")),)*
                    $name::Closed(_) => f.write_str("Closed(..)"),
                    $name::Encode(_, e) => f.debug_tuple("Encode").field(&"..").field(e).finish(),
                    $name::Spill(_, e) => f.debug_tuple("Spill").field(&"..").field(e).finish(),
                    $name::Manager(_, e) => f.debug_tuple("Manager").field(&"..").field(e).finish(),
                }
            }
        }

        /// Equal when the variants and items are equal (causes compare by their messages: a
        /// cause has no equality of its own); enough for `assert_eq!` on outcomes.
        impl<T: PartialEq> PartialEq for $name<T> {
            fn eq(&self, other: &Self) -> bool {
                std::mem::discriminant(self) == std::mem::discriminant(other)
                    && self.item() == other.item()
                    && self.cause_text() == other.cause_text()
            }
        }

        impl<T> $name<T> {
            fn item(&self) -> &T {
                match self {
                    $($name::$variant(t) |)* $name::Closed(t)
                    | $name::Encode(t, _)
                    | $name::Spill(t, _)
                    | $name::Manager(t, _) => t,
                }
            }
            fn cause_text(&self) -> Option<String> {
                match self {
                    $name::Encode(_, e) => Some(e.to_string()),
                    $name::Spill(_, e) => Some(e.to_string()),
                    $name::Manager(_, e) => Some(e.to_string()),
                    _ => None,
                }
            }
        }

        impl<T> $name<T> {
            /// The item, handed back whatever the failure.
            pub fn into_inner(self) -> T {
                match self {
                    $($name::$variant(t) |)* $name::Closed(t)
                    | $name::Encode(t, _)
                    | $name::Spill(t, _)
                    | $name::Manager(t, _) => t,
                }
            }
            /// The same error with its item turned into another by `f` (`map_item(drop)` keeps
            /// the kind and cause without the item).
            pub fn map_item<U>(self, f: impl FnOnce(T) -> U) -> $name<U> {
                match self {
                    $($name::$variant(t) => $name::$variant(f(t)),)*
                    $name::Closed(t) => $name::Closed(f(t)),
                    $name::Encode(t, e) => $name::Encode(f(t), e),
                    $name::Spill(t, e) => $name::Spill(f(t), e),
                    $name::Manager(t, e) => $name::Manager(f(t), e),
                }
            }
        }

        processing_core::predicates! {
            impl<T> $name<T> {
                /// Whether the queue was closed.
                is_closed => Self::Closed(_),
                /// Whether the item could not be encoded or spilled.
                is_encode => Self::Encode(..) | Self::Spill(..),
                /// Whether a proxy's manager failed (the source is its `ManagerError`).
                is_manager => Self::Manager(..),
            }
        }
    };
}

put_error! {
    /// A [`put`](crate::Queue::put) failed; the item comes back inside the error.
    ///
    /// ```
    /// let queue = processing::transport::Queue::<u32>::new().unwrap();
    /// queue.close();
    /// let e = queue.put(7).unwrap_err();
    /// assert!(e.is_closed());
    /// assert_eq!(e.into_inner(), 7);
    /// ```
    PutError {}
}

put_error! {
    /// A [`try_put`](crate::Queue::try_put) failed; the item comes back inside the error.
    ///
    /// ```
    /// let queue = processing::transport::Queue::<u32>::bounded(1).unwrap();
    /// queue.put(1).unwrap();
    /// let e = queue.try_put(2).unwrap_err();
    /// assert!(e.is_full());
    /// assert_eq!(e.into_inner(), 2);
    /// ```
    TryPutError {
        /// The queue is full.
        #[error("queue is full")]
        Full
    }
}

put_error! {
    /// A [`put_timeout`](crate::Queue::put_timeout) failed; the item comes back inside the error.
    ///
    /// ```
    /// use std::time::Duration;
    /// let queue = processing::transport::Queue::<u32>::bounded(1).unwrap();
    /// queue.put(1).unwrap();
    /// let e = queue.put_timeout(2, Duration::from_millis(1)).unwrap_err();
    /// assert!(e.is_timeout());
    /// assert_eq!(e.into_inner(), 2);
    /// ```
    PutTimeoutError {
        /// The queue stayed full until the timeout.
        #[error("timed out waiting for room in the queue")]
        Timeout
    }
}

processing_core::predicates! {
    impl<T> TryPutError<T> {
        /// Whether the queue was full.
        is_full => Self::Full(_),
    }
}

processing_core::predicates! {
    impl<T> PutTimeoutError<T> {
        /// Whether the timeout passed.
        is_timeout => Self::Timeout(_),
    }
}

macro_rules! put_from {
    ($to:ident) => {
        impl<T> From<PutError<T>> for $to<T> {
            fn from(e: PutError<T>) -> Self {
                match e {
                    PutError::Closed(t) => $to::Closed(t),
                    PutError::Encode(t, c) => $to::Encode(t, c),
                    PutError::Spill(t, c) => $to::Spill(t, c),
                    PutError::Manager(t, c) => $to::Manager(t, c),
                }
            }
        }
    };
}
put_from!(TryPutError);
put_from!(PutTimeoutError);

macro_rules! get_error {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident),* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, thiserror::Error)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// The queue was closed and every item in it has been taken.
            #[error("queue is closed and drained")]
            Closed,
            /// The item's bytes do not decode as the expected type; the item was removed.
            #[error("cannot decode the item")]
            Decode(#[source] CodecError),
            /// A proxy could not have the manager carry out the get; the source is the
            /// manager's error.
            #[error("cannot get an item through the manager")]
            Manager(#[source] BoxError),
        }

        /// Equal when the variants are equal (causes compare by their messages: a cause has
        /// no equality of its own); enough for `assert_eq!` on outcomes.
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                match (self, other) {
                    ($name::Decode(x), $name::Decode(y)) => x.to_string() == y.to_string(),
                    ($name::Manager(x), $name::Manager(y)) => x.to_string() == y.to_string(),
                    (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
                }
            }
        }

        processing_core::predicates! {
            impl $name {
                /// Whether the queue was closed and drained.
                is_closed => Self::Closed,
                /// Whether an item could not be decoded (a spilled item whose segment is lost
                /// included); the item was removed.
                is_decode => Self::Decode(_),
                /// Whether a proxy's manager failed (the source is its `ManagerError`).
                is_manager => Self::Manager(_),
            }
        }
    };
}

get_error! {
    /// A [`get`](crate::Queue::get) returned no item.
    ///
    /// ```
    /// let queue = processing::transport::Queue::<u32>::new().unwrap();
    /// queue.close();
    /// assert!(queue.get().unwrap_err().is_closed());
    /// ```
    GetError {}
}

get_error! {
    /// A [`try_get`](crate::Queue::try_get) returned no item.
    ///
    /// ```
    /// let queue = processing::transport::Queue::<u32>::new().unwrap();
    /// assert!(queue.try_get().unwrap_err().is_empty());
    /// ```
    TryGetError {
        /// The queue is empty.
        #[error("queue is empty")]
        Empty
    }
}

get_error! {
    /// A [`get_timeout`](crate::Queue::get_timeout) returned no item.
    ///
    /// ```
    /// use std::time::Duration;
    /// let queue = processing::transport::Queue::<u32>::new().unwrap();
    /// let e = queue.get_timeout(Duration::from_millis(1)).unwrap_err();
    /// assert!(e.is_timeout());
    /// assert_eq!(e.to_string(), "timed out waiting for an item");
    /// ```
    GetTimeoutError {
        /// No item arrived before the timeout.
        #[error("timed out waiting for an item")]
        Timeout
    }
}

processing_core::predicates! {
    impl TryGetError {
        /// Whether the queue was empty.
        is_empty => Self::Empty,
    }
}

processing_core::predicates! {
    impl GetTimeoutError {
        /// Whether the timeout passed.
        is_timeout => Self::Timeout,
    }
}

macro_rules! get_from {
    ($to:ident) => {
        impl From<GetError> for $to {
            fn from(e: GetError) -> Self {
                match e {
                    GetError::Closed => $to::Closed,
                    GetError::Decode(c) => $to::Decode(c),
                    GetError::Manager(c) => $to::Manager(c),
                }
            }
        }
    };
}
get_from!(TryGetError);
get_from!(GetTimeoutError);

/// A queue could not be created or attached.
///
/// ```
/// let e = processing::transport::Queue::<u8>::bounded(0).unwrap_err();
/// assert!(e.is_invalid_argument());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// A size or bound out of range.
    #[error("invalid queue argument: {0}")]
    InvalidArgument(String),
    /// The shared segment could not be created or opened.
    #[error("cannot create or open the queue's segment")]
    Segment(#[source] ShmError),
    /// The segment is not a queue of this version.
    #[error("segment is not a queue: {0}")]
    NotAQueue(&'static str),
}

processing_core::predicates! {
    impl QueueError {
        /// Whether an argument was out of range.
        is_invalid_argument => Self::InvalidArgument(_),
        /// Whether the shared segment failed.
        is_segment => Self::Segment(_),
    }
}

/// `task_done` failed.
///
/// ```
/// let queue = processing::transport::JoinableQueue::<u8>::new().unwrap();
/// let e = queue.task_done().unwrap_err();
/// assert!(e.is_too_many());
/// assert_eq!(e.to_string(), "task_done called more times than items were put");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskDoneError {
    /// `task_done` was called more times than items were put.
    #[error("task_done called more times than items were put")]
    TooMany,
    /// A proxy could not have the manager carry out the call.
    #[error("cannot call task_done through the manager")]
    Manager(#[source] BoxError),
}

processing_core::predicates! {
    impl TaskDoneError {
        /// Whether `task_done` was called more times than items were put.
        is_too_many => Self::TooMany,
    }
}

/// `join_timeout` returned before every task was done.
///
/// ```
/// use std::time::Duration;
/// let queue = processing::transport::JoinableQueue::<u8>::new().unwrap();
/// queue.put(1).unwrap();
/// let e = queue.join_timeout(Duration::from_millis(1)).unwrap_err();
/// assert!(e.is_timeout());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinTimeoutError {
    /// Some task was not done before the timeout.
    #[error("timed out waiting for unfinished tasks")]
    Timeout,
    /// A proxy could not have the manager carry out the call.
    #[error("cannot join the queue through the manager")]
    Manager(#[source] BoxError),
}

processing_core::predicates! {
    impl JoinTimeoutError {
        /// Whether the timeout passed.
        is_timeout => Self::Timeout,
    }
}

/// Why a put did not happen, before the item is handed back inside the error of the method
/// that tried: one mapping for the process queues and the thread twin. Not a public API.
#[doc(hidden)]
#[derive(Debug)]
pub enum PutFailure {
    /// No room came in time (or at once).
    Full,
    /// The put lock was not taken in time.
    Timeout,
    /// The queue was closed.
    Closed,
    /// The item does not encode.
    Encode(CodecError),
    /// The segment to spill the item into could not be created.
    Spill(ShmError),
}

impl PutFailure {
    /// The error of `put`: without a deadline only a closed queue ends the wait for room.
    pub fn put<T>(self, item: T) -> PutError<T> {
        match self {
            PutFailure::Full | PutFailure::Timeout | PutFailure::Closed => PutError::Closed(item),
            PutFailure::Encode(e) => PutError::Encode(item, e),
            PutFailure::Spill(e) => PutError::Spill(item, e),
        }
    }

    /// The error of `put_timeout`.
    pub fn put_timeout<T>(self, item: T) -> PutTimeoutError<T> {
        match self {
            PutFailure::Full | PutFailure::Timeout => PutTimeoutError::Timeout(item),
            PutFailure::Closed => PutTimeoutError::Closed(item),
            PutFailure::Encode(e) => PutTimeoutError::Encode(item, e),
            PutFailure::Spill(e) => PutTimeoutError::Spill(item, e),
        }
    }

    /// The error of `try_put`.
    pub fn try_put<T>(self, item: T) -> TryPutError<T> {
        match self {
            PutFailure::Full | PutFailure::Timeout => TryPutError::Full(item),
            PutFailure::Closed => TryPutError::Closed(item),
            PutFailure::Encode(e) => TryPutError::Encode(item, e),
            PutFailure::Spill(e) => TryPutError::Spill(item, e),
        }
    }
}

/// Why a get returned no item, before it becomes the error of the method that tried: one
/// mapping for the process queues and the thread twin. Not a public API.
#[doc(hidden)]
#[derive(Debug)]
pub enum GetFailure {
    /// No item came in time (or at once).
    Empty,
    /// The get lock was not taken in time.
    Timeout,
    /// The queue is closed and drained.
    Closed,
    /// The item does not decode (it was removed).
    Decode(CodecError),
}

impl GetFailure {
    /// The error of `get`: without a deadline only a closed, drained queue ends the wait.
    pub fn get(self) -> GetError {
        match self {
            GetFailure::Decode(e) => GetError::Decode(e),
            GetFailure::Closed | GetFailure::Empty | GetFailure::Timeout => GetError::Closed,
        }
    }

    /// The error of `get_timeout`.
    pub fn get_timeout(self) -> GetTimeoutError {
        match self {
            GetFailure::Empty | GetFailure::Timeout => GetTimeoutError::Timeout,
            GetFailure::Closed => GetTimeoutError::Closed,
            GetFailure::Decode(e) => GetTimeoutError::Decode(e),
        }
    }

    /// The error of `try_get`.
    pub fn try_get(self) -> TryGetError {
        match self {
            GetFailure::Empty | GetFailure::Timeout => TryGetError::Empty,
            GetFailure::Closed => TryGetError::Closed,
            GetFailure::Decode(e) => TryGetError::Decode(e),
        }
    }
}
