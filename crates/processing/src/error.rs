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
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A process could not be started.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// A process ended badly (panic, exit code, signal), a join timed out, or it was misused.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A shared-memory segment could not be created or opened.
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// A synchronisation primitive could not be created or opened.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A lock or semaphore could not be acquired (timed out, or its holder died); the guard
    /// an `OwnerDied` carried is released.
    #[error(transparent)]
    Acquire(AcquireError<()>),
    /// A lock or semaphore was released wrongly.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// A condition was used without its lock.
    #[error(transparent)]
    Condition(#[from] ConditionError),
    /// A barrier was broken, aborted, reset or timed out.
    #[error(transparent)]
    Barrier(#[from] BarrierError),
    /// An item could not be put on a queue (closed, or not encodable); the item is dropped.
    #[error(transparent)]
    Put(PutError<()>),
    /// `try_put` found the queue full (or closed…); the item is dropped.
    #[error(transparent)]
    TryPut(TryPutError<()>),
    /// `put_timeout` ran out (or the queue was closed…); the item is dropped.
    #[error(transparent)]
    PutTimeout(PutTimeoutError<()>),
    /// An item could not be taken from a queue.
    #[error(transparent)]
    Get(#[from] GetError),
    /// `try_get` found the queue empty (or closed…).
    #[error(transparent)]
    TryGet(#[from] TryGetError),
    /// `get_timeout` ran out (or the queue was closed…).
    #[error(transparent)]
    GetTimeout(#[from] GetTimeoutError),
    /// A queue could not be created or opened.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// `task_done` was called more times than items were put.
    #[error(transparent)]
    TaskDone(#[from] TaskDoneError),
    /// `join_timeout` of a joinable queue ran out.
    #[error(transparent)]
    JoinTimeout(#[from] JoinTimeoutError),
    /// A connection failed (end of stream, malformed frame, timeout, OS error).
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// Authentication failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A listener or client could not be set up.
    #[error(transparent)]
    Listener(#[from] ListenerError),
    /// A manager or one of its proxies failed.
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// A method call on a managed object failed on the server.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// A pool task failed, a result timed out, or the pool was misused.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A pool could not be built.
    #[error(transparent)]
    PoolBuild(#[from] PoolBuildError),
    /// A value could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// An OS handle could not travel.
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// A cluster pool, worker host or cluster queue could not start or go on.
    #[cfg(feature = "cluster")]
    #[error(transparent)]
    Cluster(#[from] processing_cluster::ClusterError),
    /// A cluster queue call failed.
    #[cfg(feature = "cluster")]
    #[error(transparent)]
    ClusterQueue(#[from] processing_cluster::QueueError),
    /// An error that crossed a process boundary (see [`ErrorChain`]).
    #[error(transparent)]
    Chain(#[from] ErrorChain),
    /// An operating-system error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

// The value-carrying errors convert by dropping their value and keeping their kind and cause.

impl<G> From<AcquireError<G>> for Error {
    fn from(e: AcquireError<G>) -> Error {
        Error::Acquire(e.map_guard(drop))
    }
}

impl<T> From<PutError<T>> for Error {
    fn from(e: PutError<T>) -> Error {
        Error::Put(e.map_item(drop))
    }
}

impl<T> From<TryPutError<T>> for Error {
    fn from(e: TryPutError<T>) -> Error {
        Error::TryPut(e.map_item(drop))
    }
}

impl<T> From<PutTimeoutError<T>> for Error {
    fn from(e: PutTimeoutError<T>) -> Error {
        Error::PutTimeout(e.map_item(drop))
    }
}

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

    /// The area's error this one wraps (a `transparent` variant forwards `source()` to the
    /// area error's own source, so walking the chain starts here).
    fn area(&self) -> &(dyn std::error::Error + 'static) {
        match self {
            Error::Spawn(e) => e,
            Error::Process(e) => e,
            Error::Shm(e) => e,
            Error::Sync(e) => e,
            Error::Acquire(e) => e,
            Error::Release(e) => e,
            Error::Condition(e) => e,
            Error::Barrier(e) => e,
            Error::Put(e) => e,
            Error::TryPut(e) => e,
            Error::PutTimeout(e) => e,
            Error::Get(e) => e,
            Error::TryGet(e) => e,
            Error::GetTimeout(e) => e,
            Error::Queue(e) => e,
            Error::TaskDone(e) => e,
            Error::JoinTimeout(e) => e,
            Error::Connection(e) => e,
            Error::Auth(e) => e,
            Error::Listener(e) => e,
            Error::Manager(e) => e,
            Error::Remote(e) => e,
            Error::Pool(e) => e,
            Error::PoolBuild(e) => e,
            Error::Codec(e) => e,
            Error::Handle(e) => e,
            #[cfg(feature = "cluster")]
            Error::Cluster(e) => e,
            #[cfg(feature = "cluster")]
            Error::ClusterQueue(e) => e,
            Error::Chain(e) => e,
            Error::Io(e) => e,
        }
    }
}
