//! Errors of process creation and of joining a process.

use std::fmt;

/// Why a process could not be started (an opaque setup error with `is_*()` queries).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut p = processing::Process::new(|(): ()| (), ()).executable("/nonexistent/program");
/// let err = p.start().unwrap_err();
/// assert!(err.spawn_error().is_some_and(|e| e.is_io()));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SpawnError {
    kind: SpawnErrorKind,
    detail: String,
    source: Option<std::io::Error>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpawnErrorKind {
    Io,
    NoBootstrap,
    Recursive,
    DifferentBinary,
    Daemonic,
    Unsupported,
    Setup,
}

impl SpawnError {
    pub(crate) fn new(kind: SpawnErrorKind, detail: impl Into<String>) -> SpawnError {
        SpawnError {
            kind,
            detail: detail.into(),
            source: None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> SpawnError {
        SpawnError {
            kind: SpawnErrorKind::Io,
            detail: context.into(),
            source: Some(source),
        }
    }

    /// The operating system refused an operation (creating a socket, executing the program).
    pub fn is_io(&self) -> bool {
        self.kind == SpawnErrorKind::Io
    }

    /// The started program did not run the processing bootstrap (it does not link
    /// processing, or the pre-main hook was disabled and `processing::init()` is not called).
    pub fn is_no_bootstrap(&self) -> bool {
        self.kind == SpawnErrorKind::NoBootstrap
    }

    /// This process was itself started as a child but its bootstrap did not run, so it refuses
    /// to start processes (which would otherwise recurse).
    pub fn is_recursive(&self) -> bool {
        self.kind == SpawnErrorKind::Recursive
    }

    /// The child is a different build of the program, so the target cannot be located in it.
    pub fn is_different_binary(&self) -> bool {
        self.kind == SpawnErrorKind::DifferentBinary
    }

    /// A daemonic process tried to create a child.
    pub fn is_daemonic(&self) -> bool {
        self.kind == SpawnErrorKind::Daemonic
    }

    /// The start method or option is not available on this platform.
    pub fn is_unsupported(&self) -> bool {
        self.kind == SpawnErrorKind::Unsupported
    }

    /// The child could not apply its settings (working directory, limits, redirections).
    pub fn is_setup(&self) -> bool {
        self.kind == SpawnErrorKind::Setup
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.detail),
            None => f.write_str(&self.detail),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// An operation on a [`Process`](crate::Process) failed, or the process did not return a value.
///
/// ```
/// use processing::{Process, ProcessError};
/// let mut p = Process::new(|(): ()| -> u8 { panic!("boom") }, ());
/// p.start().unwrap();
/// match p.join() {
///     Err(ProcessError::Panicked { message, .. }) => assert_eq!(message, "boom"),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert_eq!(p.exitcode(), Some(1));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The process could not be started.
    #[error("cannot start process: {0}")]
    Spawn(#[from] SpawnError),
    /// `start` was called on a process that was already started.
    #[error("process already started")]
    AlreadyStarted,
    /// `join`, `terminate` or `kill` was called on a process that was never started.
    #[error("process not started")]
    NotStarted,
    /// `join` was called again after it had returned the value.
    #[error("process already joined")]
    AlreadyJoined,
    /// `join_timeout` ran out before the process ended (it may be joined again).
    #[error("timed out waiting for the process")]
    Timeout,
    /// The target panicked (the child exited with code 1).
    #[error("process panicked at {}: {message}", location.as_deref().unwrap_or("<unknown>"))]
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },
    /// The process exited with this code without returning a value (`std::process::exit(n)`).
    #[error("process exited with code {0} without returning a value")]
    Exited(i32),
    /// The process was ended by this signal (Unix; its exit code is the negative number).
    #[error("process was killed by signal {0}")]
    Signaled(i32),
    /// The arguments or the return value could not be encoded or decoded.
    #[error("cannot transfer value: {0}")]
    Codec(String),
    /// Waiting for or signalling the process failed.
    #[error("process i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl ProcessError {
    /// The setup error, if the process could not be started.
    pub fn spawn_error(&self) -> Option<&SpawnError> {
        match self {
            ProcessError::Spawn(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the target panicked.
    pub fn is_panicked(&self) -> bool {
        matches!(self, ProcessError::Panicked { .. })
    }

    /// Whether a `join_timeout` ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ProcessError::Timeout)
    }

    /// Whether the process ended by a signal.
    pub fn is_signaled(&self) -> bool {
        matches!(self, ProcessError::Signaled(_))
    }
}

pub(crate) fn unsupported(detail: impl Into<String>) -> SpawnError {
    SpawnError::new(SpawnErrorKind::Unsupported, detail)
}
