//! One error type for programs that use several areas of `processing` and want `?` to work
//! across all of them.

use processing_core::{CodecError, ErrorChain, HandleError};
use processing_manager::{ManagerError, RemoteError};
use processing_pool::{PoolBuildError, PoolError, WorkerStartError};
use processing_process::{ProcessError, SpawnError};
use processing_shm::ShmError;
use processing_sync::{AcquireError, BarrierError, ConditionError, ReleaseError, SyncError};
use processing_transport::queue::{
    GetError, GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError, QueueError,
    TaskDoneError, TryGetError, TryPutError,
};
use processing_transport::{AuthError, ConnectionError, FrameError, ListenerError};

/// Declares [`Error`], one variant per area error, from one list: each variant is transparent
/// (its `Display` and `source()` are the area error's), `area()` returns the wrapped error, and
/// a variant marked `#[from]` gets its `From` conversion.
macro_rules! area_errors {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $(#[cfg($cfg:meta)])?
                $variant:ident($(#[$from:ident])? $ty:ty),
            )*
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $(
                $(#[doc = $doc])*
                $(#[cfg($cfg)])?
                $variant($ty),
            )*
        }

        impl $name {
            /// The area's error this one wraps: what `Display` shows and where the chain of
            /// causes starts.
            fn area(&self) -> &(dyn std::error::Error + 'static) {
                match self {
                    $(
                        $(#[cfg($cfg)])?
                        $name::$variant(e) => e,
                    )*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self.area(), f)
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.area().source()
            }
        }

        $(
            $(#[cfg($cfg)])?
            area_errors!(@from $name::$variant($ty) $($from)?);
        )*
    };
    (@from $name:ident::$variant:ident($ty:ty) from) => {
        impl From<$ty> for $name {
            fn from(e: $ty) -> $name {
                $name::$variant(e)
            }
        }
    };
    (@from $name:ident::$variant:ident($ty:ty)) => {};
}

area_errors! {
    /// Any error of `processing`, wrapping the typed error of each area.
    ///
    /// Every area keeps its own precise error type (crossbeam-style, often handing a value back);
    /// this enum is for application code that just wants `?`. Each variant holds the area's error
    /// as its [`source`](std::error::Error::source), so the chain of causes down to the operating
    /// system's error stays intact ([`Error::os_error`] finds it). Converting a value-carrying
    /// error (`PutError::Full(item)`, `AcquireError::OwnerDied(guard)`) keeps the error's kind and
    /// cause but drops what it carried: the item is discarded, the guard is released.
    ///
    /// [`is_timeout`](Error::is_timeout) is true for the timeout of every area (a queue get or
    /// put, a process join, a pool result, a connection receive, a lock acquire, a barrier wait, a
    /// joinable queue's join, a manager call whose connection timed out).
    ///
    /// ```
    /// fn double_in_a_child(x: u32) -> Result<u32, processing::Error> {
    ///     let queue = processing::Queue::<u32>::new()?;
    ///     queue.put(x)?;
    ///     let mut child = processing::spawn(|x: u32| x * 2, queue.get()?)?;
    ///     Ok(child.join()?)
    /// }
    /// assert_eq!(double_in_a_child(21).unwrap(), 42);
    ///
    /// let queue = processing::Queue::<u32>::new().unwrap();
    /// let err: processing::Error = queue.get_timeout(std::time::Duration::ZERO).unwrap_err().into();
    /// assert!(err.is_timeout());
    /// ```
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum Error {
        /// A process could not be started.
        Spawn(#[from] SpawnError),
        /// A process ended badly (panic, exit code, signal), a join timed out, or it was misused.
        Process(#[from] ProcessError),
        /// A shared-memory segment could not be created or opened.
        Shm(#[from] ShmError),
        /// A synchronisation primitive could not be created or opened.
        Sync(#[from] SyncError),
        /// A lock or semaphore could not be acquired (timed out, or its holder died); the guard
        /// an `OwnerDied` carried is released.
        Acquire(AcquireError<()>),
        /// A lock or semaphore was released wrongly.
        Release(#[from] ReleaseError),
        /// A condition was used without its lock.
        Condition(#[from] ConditionError),
        /// A barrier was broken, aborted, reset or timed out.
        Barrier(#[from] BarrierError),
        /// An item could not be put on a queue (closed, or not encodable); the item is dropped.
        Put(PutError<()>),
        /// `try_put` found the queue full (or closed…); the item is dropped.
        TryPut(TryPutError<()>),
        /// `put_timeout` ran out (or the queue was closed…); the item is dropped.
        PutTimeout(PutTimeoutError<()>),
        /// An item could not be taken from a queue.
        Get(#[from] GetError),
        /// `try_get` found the queue empty (or closed…).
        TryGet(#[from] TryGetError),
        /// `get_timeout` ran out (or the queue was closed…).
        GetTimeout(#[from] GetTimeoutError),
        /// A queue could not be created or opened.
        Queue(#[from] QueueError),
        /// `task_done` was called more times than items were put.
        TaskDone(#[from] TaskDoneError),
        /// `join_timeout` of a joinable queue ran out.
        JoinTimeout(#[from] JoinTimeoutError),
        /// A connection failed (end of stream, malformed frame, timeout, OS error).
        Connection(#[from] ConnectionError),
        /// Authentication failed.
        Auth(#[from] AuthError),
        /// A listener or client could not be set up.
        Listener(#[from] ListenerError),
        /// A manager or one of its proxies failed.
        Manager(#[from] ManagerError),
        /// A method call on a managed object failed on the server.
        Remote(#[from] RemoteError),
        /// A pool task failed, a result timed out, or the pool was misused.
        Pool(#[from] PoolError),
        /// A pool could not be built.
        PoolBuild(#[from] PoolBuildError),
        /// A value could not be encoded or decoded.
        Codec(#[from] CodecError),
        /// An OS handle could not travel.
        Handle(#[from] HandleError),
        /// A cluster pool, worker host or cluster queue could not start or go on.
        #[cfg(feature = "cluster")]
        Cluster(#[from] processing_cluster::ClusterError),
        /// A cluster queue call failed.
        #[cfg(feature = "cluster")]
        ClusterQueue(#[from] processing_cluster::QueueError),
        /// An error that crossed a process boundary (see [`ErrorChain`]).
        Chain(#[from] ErrorChain),
        /// An operating-system error.
        Io(#[from] std::io::Error),
    }
}

// The value-carrying errors convert by dropping their value and keeping their kind and cause.

impl<G> From<AcquireError<G>> for Error {
    fn from(e: AcquireError<G>) -> Error {
        Error::Acquire(e.map_guard(drop))
    }
}

/// `From` for the queue's put errors, which hand the item back: the item is dropped.
macro_rules! from_put_error {
    ($($variant:ident($ty:ident)),*) => {$(
        impl<T> From<$ty<T>> for Error {
            fn from(e: $ty<T>) -> Error {
                Error::$variant(e.map_item(drop))
            }
        }
    )*};
}
from_put_error!(
    Put(PutError),
    TryPut(TryPutError),
    PutTimeout(PutTimeoutError)
);

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Error {
        Error::Connection(e.into())
    }
}

impl From<WorkerStartError> for Error {
    fn from(e: WorkerStartError) -> Error {
        Error::Pool(PoolError::Spawn(e))
    }
}

#[cfg(feature = "pickle")]
impl From<processing_transport::pickle::PickleError> for Error {
    fn from(e: processing_transport::pickle::PickleError) -> Error {
        Error::Connection(e.into())
    }
}

impl Error {
    /// Whether a wait of any area ran out of time: a queue's `get_timeout`/`put_timeout`, a
    /// process's `join_timeout`, a pool result's `get_timeout` (or a task that ran past the
    /// pool's task timeout), a connection's `recv_timeout`/handshake, a lock's or semaphore's
    /// `acquire_timeout`, a barrier's `wait_timeout`, a joinable queue's `join_timeout`, a
    /// manager connection that timed out, an OS call that returned `TimedOut`.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Process(e) => e.is_timeout(),
            Error::Acquire(e) => e.is_timeout(),
            Error::Barrier(e) => e.is_timeout(),
            Error::PutTimeout(e) => e.is_timeout(),
            Error::GetTimeout(e) => e.is_timeout(),
            Error::JoinTimeout(e) => e.is_timeout(),
            Error::Connection(e) => e.is_timeout(),
            Error::Auth(AuthError::Connection(e)) => e.is_timeout(),
            Error::Listener(e) => e.is_timeout(),
            Error::Manager(e) => e.is_timeout(),
            Error::Pool(e) => e.is_timeout() || e.is_task_timeout(),
            _ => self
                .os_error()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut),
        }
    }

    /// Whether the other side is closed: a closed queue, a closed pool.
    pub fn is_closed(&self) -> bool {
        match self {
            Error::Put(e) => e.is_closed(),
            Error::TryPut(e) => e.is_closed(),
            Error::PutTimeout(e) => e.is_closed(),
            Error::Get(e) => e.is_closed(),
            Error::TryGet(e) => e.is_closed(),
            Error::GetTimeout(e) => e.is_closed(),
            Error::Pool(e) => e.is_closed(),
            _ => false,
        }
    }

    /// Whether the peer is gone: a connection's end of stream or broken pipe, a manager server
    /// that cannot be reached.
    pub fn is_disconnected(&self) -> bool {
        match self {
            Error::Connection(e) => e.is_eof(),
            Error::Manager(e) => e.is_disconnected(),
            _ => false,
        }
    }

    /// Whether a queue was empty (`try_get`) or full (`try_put`).
    pub fn is_would_block(&self) -> bool {
        match self {
            Error::TryGet(e) => e.is_empty(),
            Error::TryPut(e) => e.is_full(),
            Error::Acquire(e) => e.is_would_block(),
            Error::Connection(e) => e.is_would_block(),
            _ => false,
        }
    }

    /// Whether a lock was recovered from a holder that died.
    pub fn is_owner_died(&self) -> bool {
        matches!(self, Error::Acquire(e) if e.is_owner_died())
    }

    /// Whether authentication failed (a wrong authkey, a peer that is not a processing or
    /// multiprocessing listener).
    pub fn is_auth(&self) -> bool {
        match self {
            Error::Auth(_) => true,
            Error::Listener(e) => e.is_auth(),
            Error::Manager(e) => e.is_auth(),
            _ => false,
        }
    }

    /// Whether a process or a pool task panicked.
    pub fn is_panicked(&self) -> bool {
        match self {
            Error::Process(e) => e.is_panicked(),
            Error::Pool(e) => e.is_panic(),
            _ => false,
        }
    }

    /// The operating system's error somewhere in the chain of causes, if there is one.
    ///
    /// ```
    /// let refused = processing::Client::connect::<u8>("127.0.0.1:1", Some(b"key")).unwrap_err();
    /// let e = processing::Error::from(refused);
    /// assert_eq!(e.os_error().map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionRefused));
    /// ```
    pub fn os_error(&self) -> Option<&std::io::Error> {
        processing_core::find_in_chain(self.area())
    }
}

#[cfg(test)]
mod tests {
    use super::Error;
    use std::error::Error as _;

    #[test]
    fn a_variant_shows_and_chains_as_its_area_error() {
        let os = std::io::Error::from_raw_os_error(2);
        let area = processing_manager::ManagerError::disconnected("cannot connect", os);
        let text = area.to_string();
        let e = Error::from(area);
        assert!(matches!(e, Error::Manager(_)));
        assert_eq!(e.to_string(), text);
        // Transparent: the first source is the area error's own (its context), not the area
        // error itself.
        let context = e.source().unwrap();
        assert!(context.is::<processing_core::ErrorContext>(), "{context:?}");
        assert_eq!(e.os_error().and_then(|e| e.raw_os_error()), Some(2));

        let e = Error::from(processing_transport::queue::PutError::Closed(7u32));
        assert_eq!(e.to_string(), "queue is closed");
        assert!(e.is_closed() && e.source().is_none());
    }
}
