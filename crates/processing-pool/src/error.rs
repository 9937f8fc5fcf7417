//! The pool's error types.

use std::fmt;
use std::time::Duration;

/// Why a task, a result or a pool call failed.
///
/// Task failures ([`Panic`](PoolError::Panic), [`WorkerLost`](PoolError::WorkerLost),
/// [`TaskTimeout`](PoolError::TaskTimeout)) leave the pool usable; usage errors
/// ([`Closed`](PoolError::Closed), [`NotClosed`](PoolError::NotClosed)) say what to do instead.
///
/// ```
/// use processing_pool::PoolError;
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
    /// An argument or a result could not be encoded or decoded.
    #[error("codec error: {0}")]
    Codec(String),
    /// A worker could not be started, or its initializer failed.
    #[error("cannot start a worker: {0}")]
    Spawn(String),
    /// The channel to a worker failed in a way that is not a worker death.
    #[error("worker channel error: {0}")]
    Io(String),
    /// The task failed on each of its deliveries (a cluster pool re-delivers a task whose
    /// worker died, at most `max_deliveries` times); `last` says how the last attempt ended.
    #[error("the task failed on each of its {attempts} deliveries (last: {last})")]
    DeliveriesExhausted {
        /// How many times the task was started.
        attempts: u32,
        /// How the last attempt ended.
        last: String,
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
    Cluster(String),
}

fn describe_exit(exitcode: Option<i32>, signal: Option<i32>) -> String {
    match (exitcode, signal) {
        (_, Some(s)) => format!("killed by signal {s}"),
        (Some(c), None) => format!("exit code {c}"),
        (None, None) => "exit status unknown".to_string(),
    }
}

impl PoolError {
    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, PoolError::Panic { .. })
    }
    /// The task's worker died.
    pub fn is_worker_lost(&self) -> bool {
        matches!(self, PoolError::WorkerLost { .. })
    }
    /// The task ran past the pool's task timeout.
    pub fn is_task_timeout(&self) -> bool {
        matches!(self, PoolError::TaskTimeout(_))
    }
    /// Waiting for a result timed out (the task goes on).
    pub fn is_timeout(&self) -> bool {
        matches!(self, PoolError::Timeout)
    }
    /// The task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, PoolError::Cancelled)
    }
    /// The pool was terminated before the task finished.
    pub fn is_terminated(&self) -> bool {
        matches!(self, PoolError::Terminated)
    }
    /// The pool is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PoolError::Closed)
    }
    /// `join` came before `close`/`terminate`.
    pub fn is_not_closed(&self) -> bool {
        matches!(self, PoolError::NotClosed)
    }
    /// The panic message, for a panic.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            PoolError::Panic { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl From<processing_core::CodecError> for PoolError {
    fn from(e: processing_core::CodecError) -> Self {
        PoolError::Codec(e.to_string())
    }
}

/// A pool could not be built: bad settings or a worker that would not start.
///
/// ```
/// let err = processing_pool::Pool::new(0).unwrap_err();
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
    Codec(String),
    Spawn(String),
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
    pub(crate) fn codec(e: impl fmt::Display) -> Self {
        PoolBuildError {
            kind: BuildErrorKind::Codec(e.to_string()),
        }
    }
    pub(crate) fn spawn(e: impl fmt::Display) -> Self {
        PoolBuildError {
            kind: BuildErrorKind::Spawn(e.to_string()),
        }
    }
    /// `processes(0)` or `Pool::new(0)`.
    pub fn is_zero_processes(&self) -> bool {
        matches!(self.kind, BuildErrorKind::ZeroProcesses)
    }
    /// `max_tasks_per_child(0)`.
    pub fn is_zero_max_tasks(&self) -> bool {
        matches!(self.kind, BuildErrorKind::ZeroMaxTasks)
    }
    /// `max_memory_per_child(0)`.
    pub fn is_zero_max_memory(&self) -> bool {
        matches!(self.kind, BuildErrorKind::ZeroMaxMemory)
    }
    /// A worker could not be started.
    pub fn is_spawn(&self) -> bool {
        matches!(self.kind, BuildErrorKind::Spawn(_))
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

impl std::error::Error for PoolBuildError {}
