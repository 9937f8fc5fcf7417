//! The pool's error types.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use processing_core::ErrorChain;

/// Why a worker could not be started: a message and, when something below refused (the
/// operating system, the process layer), that error as [`source`](Error::source).
///
/// ```
/// use processing::{PoolError, WorkerStartError};
/// let os = std::io::Error::from_raw_os_error(24); // EMFILE on Linux
/// let e = PoolError::Spawn(WorkerStartError::with_source("cannot create a worker channel", os));
/// assert!(e.is_spawn());
/// assert!(e.os_error().is_some());
/// assert!(std::error::Error::source(&e).is_some());
/// ```
#[derive(Debug, Clone)]
pub struct WorkerStartError {
    message: String,
    source: Option<Arc<dyn Error + Send + Sync>>,
}

impl WorkerStartError {
    /// A failure without an underlying error (an initializer that panicked).
    pub fn new(message: impl Into<String>) -> Self {
        WorkerStartError {
            message: message.into(),
            source: None,
        }
    }

    /// A failure caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        WorkerStartError {
            message: message.into(),
            source: Some(Arc::from(source.into())),
        }
    }

    /// The message (without the source's).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The operating system's error somewhere in the source chain, if there is one.
    pub fn os_error(&self) -> Option<&std::io::Error> {
        processing_core::find_in_chain(self.source()?)
    }
}

impl From<String> for WorkerStartError {
    fn from(message: String) -> Self {
        WorkerStartError::new(message)
    }
}

impl From<&str> for WorkerStartError {
    fn from(message: &str) -> Self {
        WorkerStartError::new(message)
    }
}

/// Two start errors are equal when their messages are (sources are compared by text).
impl PartialEq for WorkerStartError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
            && self.source.as_ref().map(|e| e.to_string())
                == other.source.as_ref().map(|e| e.to_string())
    }
}

impl Eq for WorkerStartError {}

/// The form a start error crosses a process or host boundary in (a cluster host reports a
/// worker it could not start): the message, the OS error number if the chain has one, and the
/// source's text otherwise.
#[derive(serde::Serialize, serde::Deserialize)]
struct WireStartError {
    message: String,
    os_error: Option<i32>,
    cause: Option<String>,
}

impl serde::Serialize for WorkerStartError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let os_error = self.os_error().and_then(std::io::Error::raw_os_error);
        WireStartError {
            message: self.message.clone(),
            os_error,
            cause: match os_error {
                Some(_) => None,
                None => self.source.as_ref().map(|e| e.to_string()),
            },
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for WorkerStartError {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireStartError::deserialize(deserializer)?;
        Ok(match (wire.os_error, wire.cause) {
            (Some(code), _) => {
                WorkerStartError::with_source(wire.message, std::io::Error::from_raw_os_error(code))
            }
            (None, Some(cause)) => WorkerStartError::with_source(wire.message, cause),
            (None, None) => WorkerStartError::new(wire.message),
        })
    }
}

impl fmt::Display for WorkerStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Error for WorkerStartError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// Why a task, a result or a pool call failed.
///
/// Task failures ([`Panic`](PoolError::Panic), [`WorkerLost`](PoolError::WorkerLost),
/// [`TaskTimeout`](PoolError::TaskTimeout)) leave the pool usable; usage errors
/// ([`Closed`](PoolError::Closed), [`NotClosed`](PoolError::NotClosed)) say what to do instead.
///
/// ```
/// use processing::PoolError;
/// let e = PoolError::Panic { message: "boom".into(), location: Some("src/main.rs:3:5".into()) };
/// assert!(e.is_panic());
/// assert_eq!(e.to_string(), "task panicked at src/main.rs:3:5: boom");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum PoolError {
    /// The task panicked; the message and the source location of the panic.
    #[error("task panicked{}: {message}", location.as_ref().map(|l| format!(" at {l}")).unwrap_or_default())]
    Panic {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },
    /// The worker running the task died (abort, `exit`, a signal, out of memory).
    #[error("worker {pid} was lost while running the task ({})", describe_exit(*exitcode, *signal))]
    WorkerLost {
        /// The worker's process id (0 for a thread worker).
        pid: u32,
        /// The worker's exit code, if it exited.
        exitcode: Option<i32>,
        /// The signal that ended the worker (Unix), if one did.
        signal: Option<i32>,
    },
    /// The task ran longer than the pool's `task_timeout`; its worker was replaced.
    #[error("task ran longer than the task timeout of {0:?}")]
    TaskTimeout(Duration),
    /// `get_timeout`, `wait_timeout` or `next_timeout` ran out of time; the task goes on.
    #[error("timed out waiting for the result")]
    Timeout,
    /// The task was cancelled before it started.
    #[error("the task was cancelled before it started")]
    Cancelled,
    /// The pool was terminated (or dropped) before the task finished.
    #[error("the pool was terminated before the task finished")]
    Terminated,
    /// The pool no longer accepts tasks (`close` or `terminate` was called).
    #[error("the pool is closed")]
    Closed,
    /// `join` was called before `close` or `terminate`.
    #[error("join called before close or terminate")]
    NotClosed,
    /// The result was already taken by an earlier successful `get_timeout`.
    #[error("the result was already taken")]
    AlreadyTaken,
    /// An argument or a result could not be encoded or decoded: the codec's error and its
    /// causes, in the form that crosses from the worker (see [`ErrorChain`]).
    #[error("codec error: {0}")]
    Codec(#[source] ErrorChain),
    /// A worker could not be started (the cause, such as the operating system's error, is the
    /// source), or its initializer failed. The pool stays open and keeps trying to start
    /// workers; tasks fail with this error only while no worker can serve them.
    #[error("cannot start a worker: {0}")]
    Spawn(#[source] WorkerStartError),
    /// The channel to a worker failed in a way that is not a worker death.
    #[error("worker channel error: {0}")]
    Io(#[source] ErrorChain),
    /// The task failed on each of its deliveries (a cluster pool re-delivers a task whose
    /// worker died, at most `max_deliveries` times); `last` says how the last attempt ended.
    #[error("the task failed on each of its {attempts} deliveries (last: {last})")]
    DeliveriesExhausted {
        /// How many times the task was started.
        attempts: u32,
        /// How the last attempt ended.
        #[source]
        last: Box<PoolError>,
    },
    /// No worker able to run the task (a worker host of this very build) was alive for
    /// `waited`: a cluster pool whose build no worker host shares.
    #[error("no worker of this build ({build}) took the task within {waited:?}")]
    NoCompatibleWorker {
        /// The driver's build identity.
        build: String,
        /// How long the driver waited for such a worker.
        waited: Duration,
    },
    /// The engine that carries the tasks of a cluster pool failed (unreachable, or it lost
    /// the pool's state).
    #[error("cluster error: {0}")]
    Cluster(#[source] ErrorChain),
}

fn describe_exit(exitcode: Option<i32>, signal: Option<i32>) -> String {
    match (exitcode, signal) {
        (_, Some(s)) => format!("killed by signal {s}"),
        (Some(c), None) => format!("exit code {c}"),
        (None, None) => "exit status unknown".to_string(),
    }
}

impl PoolError {
    /// The operating system's error that caused this one, if any (a worker that could not
    /// be started, a worker channel that failed).
    pub fn os_error(&self) -> Option<&std::io::Error> {
        match self {
            PoolError::Spawn(e) => e.os_error(),
            PoolError::Io(e) | PoolError::Codec(e) | PoolError::Cluster(e) => e.os_error(),
            PoolError::DeliveriesExhausted { last, .. } => last.os_error(),
            _ => None,
        }
    }
    /// The panic message, for a panic.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            PoolError::Panic { message, .. } => Some(message),
            _ => None,
        }
    }
}

processing_core::predicates! {
    impl PoolError {
        /// The task panicked.
        is_panic => Self::Panic { .. },
        /// The task's worker died.
        is_worker_lost => Self::WorkerLost { .. },
        /// The task ran past the pool's task timeout.
        is_task_timeout => Self::TaskTimeout(_),
        /// Waiting for a result timed out (the task goes on).
        is_timeout => Self::Timeout,
        /// The task was cancelled.
        is_cancelled => Self::Cancelled,
        /// The pool was terminated before the task finished.
        is_terminated => Self::Terminated,
        /// The pool is closed.
        is_closed => Self::Closed,
        /// `join` came before `close`/`terminate`.
        is_not_closed => Self::NotClosed,
        /// A worker could not be started.
        is_spawn => Self::Spawn(_),
    }
}

impl From<processing_core::CodecError> for PoolError {
    fn from(e: processing_core::CodecError) -> Self {
        PoolError::Codec(ErrorChain::of_typed(&e))
    }
}

/// A pool could not be built: bad settings or a worker that would not start.
///
/// ```
/// let err = processing::Pool::new(0).unwrap_err();
/// assert!(err.is_zero_processes());
/// assert_eq!(err.to_string(), "a pool needs at least one process");
/// ```
#[derive(Debug, Clone)]
pub struct PoolBuildError {
    kind: BuildErrorKind,
}

#[derive(Debug, Clone)]
enum BuildErrorKind {
    ZeroProcesses,
    ZeroMaxTasks,
    ZeroMaxMemory,
    Codec(Arc<processing_core::CodecError>),
    Spawn(WorkerStartError),
}

impl PoolBuildError {
    pub(crate) fn zero_processes() -> Self {
        PoolBuildError {
            kind: BuildErrorKind::ZeroProcesses,
        }
    }
    pub(crate) fn zero_max_tasks() -> Self {
        PoolBuildError {
            kind: BuildErrorKind::ZeroMaxTasks,
        }
    }
    pub(crate) fn zero_max_memory() -> Self {
        PoolBuildError {
            kind: BuildErrorKind::ZeroMaxMemory,
        }
    }
    pub(crate) fn codec(e: Arc<processing_core::CodecError>) -> Self {
        PoolBuildError {
            kind: BuildErrorKind::Codec(e),
        }
    }
    pub(crate) fn spawn(e: PoolError) -> Self {
        let e = match e {
            PoolError::Spawn(e) => e,
            other => WorkerStartError::new(other.to_string()),
        };
        PoolBuildError {
            kind: BuildErrorKind::Spawn(e),
        }
    }
    /// For a failed start: the operating system's error that caused it, if any.
    pub fn os_error(&self) -> Option<&std::io::Error> {
        match &self.kind {
            BuildErrorKind::Spawn(e) => e.os_error(),
            _ => None,
        }
    }
}

processing_core::predicates! {
    impl PoolBuildError by kind {
        /// `processes(0)` or `Pool::new(0)`.
        is_zero_processes => BuildErrorKind::ZeroProcesses,
        /// `max_tasks_per_child(0)`.
        is_zero_max_tasks => BuildErrorKind::ZeroMaxTasks,
        /// `max_memory_per_child(0)`.
        is_zero_max_memory => BuildErrorKind::ZeroMaxMemory,
        /// A worker could not be started.
        is_spawn => BuildErrorKind::Spawn(_),
    }
}

impl fmt::Display for PoolBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BuildErrorKind::ZeroProcesses => f.write_str("a pool needs at least one process"),
            BuildErrorKind::ZeroMaxTasks => f.write_str("max_tasks_per_child must be at least 1"),
            BuildErrorKind::ZeroMaxMemory => {
                f.write_str("max_memory_per_child must be at least 1 byte")
            }
            BuildErrorKind::Codec(e) => write!(f, "cannot encode the initializer's arguments: {e}"),
            BuildErrorKind::Spawn(e) => write!(f, "cannot start a worker: {e}"),
        }
    }
}

impl std::error::Error for PoolBuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.kind {
            BuildErrorKind::Spawn(e) => Some(e),
            BuildErrorKind::Codec(e) => Some(&**e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PoolError, WorkerStartError};

    #[test]
    fn start_error_crosses_a_boundary_with_its_os_error() {
        let os = std::io::Error::from_raw_os_error(24);
        let e = PoolError::Spawn(WorkerStartError::with_source("cannot start", os));
        let back: PoolError = postcard::from_bytes(&postcard::to_allocvec(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.os_error().and_then(|e| e.raw_os_error()), Some(24));
        let text = PoolError::Spawn(WorkerStartError::with_source("no", "initializer panicked"));
        let back: PoolError = postcard::from_bytes(&postcard::to_allocvec(&text).unwrap()).unwrap();
        assert_eq!(back, text);
        assert!(std::error::Error::source(&back).is_some());
    }
}
