//! One error type for programs that use several areas of `processing` and want `?` to work
//! across all of them.

use processing_core::{CodecError, HandleError};
use processing_manager::{ManagerError, RemoteError};
use processing_pool::{PoolBuildError, PoolError};
use processing_process::{ProcessError, SpawnError};
use processing_shm::ShmError;
use processing_sync::{AcquireError, BarrierError, ConditionError, ReleaseError, SyncError};
use processing_transport::queue::{GetError, PutError, QueueError, TaskDoneError};
use processing_transport::{AuthError, ConnectionError, ListenerError};

/// Any error of `processing`, wrapping the typed error of each area.
///
/// Every area keeps its own precise error type (crossbeam-style, often handing a value back);
/// this enum is for application code that just wants `?`. Converting a value-carrying error
/// (`PutError::Full(item)`, `AcquireError::OwnerDied(guard)`) drops what it carried: the item
/// is discarded, the guard is released.
///
/// ```
/// fn double_in_a_child(x: u32) -> Result<u32, processing::Error> {
///     let queue = processing::Queue::<u32>::new()?;
///     queue.put(x)?;
///     let mut child = processing::spawn(|x: u32| x * 2, queue.get()?)?;
///     Ok(child.join()?)
/// }
/// assert_eq!(double_in_a_child(21).unwrap(), 42);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A process could not be started.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// A process ended badly (panic, exit code, signal) or was misused.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A shared-memory segment could not be created or opened.
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// A synchronisation primitive could not be created or opened.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A wait or acquire timed out.
    #[error("timed out")]
    Timeout,
    /// A lock's previous holder died while holding it.
    #[error("the previous holder of the lock died while holding it")]
    OwnerDied,
    /// A lock or semaphore was released wrongly.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// A condition was used without its lock.
    #[error(transparent)]
    Condition(#[from] ConditionError),
    /// A barrier was broken, aborted or reset.
    #[error(transparent)]
    Barrier(#[from] BarrierError),
    /// An item could not be put on a queue (full, closed, timed out, or not encodable).
    #[error("{0}")]
    Put(String),
    /// An item could not be taken from a queue.
    #[error(transparent)]
    Get(#[from] GetError),
    /// A queue could not be created or opened.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// `task_done` was called more times than items were put.
    #[error(transparent)]
    TaskDone(#[from] TaskDoneError),
    /// A connection failed (end of stream, malformed frame, OS error).
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
    /// A pool task failed, or the pool was misused.
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
    /// An operating-system error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl<G> From<AcquireError<G>> for Error {
    fn from(e: AcquireError<G>) -> Error {
        if e.is_timeout() {
            Error::Timeout
        } else {
            Error::OwnerDied
        }
    }
}

impl<T> From<PutError<T>> for Error {
    fn from(e: PutError<T>) -> Error {
        Error::Put(e.to_string())
    }
}

impl Error {
    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }
}
