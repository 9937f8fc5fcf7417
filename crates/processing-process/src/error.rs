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
    source: Option<processing_core::BoxError>,
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
            source: Some(Box::new(source)),
        }
    }

    /// A refusal the child reported: its message, and the chain of its causes (the child's OS
    /// error, re-created here) as the source.
    pub(crate) fn from_child(
        kind: SpawnErrorKind,
        chain: processing_core::ErrorChain,
    ) -> SpawnError {
        SpawnError {
            kind,
            detail: chain.message().to_string(),
            source: chain
                .cause()
                .cloned()
                .map(|c| Box::new(c) as processing_core::BoxError),
        }
    }

    /// The operating system's error behind this one (in this process or in the child), if any.
    pub fn os_error(&self) -> Option<&std::io::Error> {
        processing_core::find_in_chain(self.source.as_deref()?)
    }
}

processing_core::predicates! {
    impl SpawnError by kind {
        /// The operating system refused an operation (creating a socket, executing the
        /// program).
        is_io => SpawnErrorKind::Io,
        /// The started program did not run the processing bootstrap (it does not link
        /// processing, or the pre-main hook was disabled and `processing::init()` is not
        /// called).
        is_no_bootstrap => SpawnErrorKind::NoBootstrap,
        /// This process was itself started as a child but its bootstrap did not run, so it
        /// refuses to start processes (which would otherwise recurse).
        is_recursive => SpawnErrorKind::Recursive,
        /// The child is a different build of the program, so the target cannot be located in
        /// it.
        is_different_binary => SpawnErrorKind::DifferentBinary,
        /// A daemonic process tried to create a child.
        is_daemonic => SpawnErrorKind::Daemonic,
        /// The start method or option is not available on this platform.
        is_unsupported => SpawnErrorKind::Unsupported,
        /// The child could not apply its settings (working directory, limits, redirections).
        is_setup => SpawnErrorKind::Setup,
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
        self.source.as_deref().map(|e| e as _)
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
    /// The arguments could not be encoded, or the child's report or return value could not be
    /// decoded, in this process; the codec's error is the source.
    #[error("cannot transfer value: {0}")]
    Codec(#[source] processing_core::CodecError),
    /// The child could not decode its arguments or encode its return value: the child's error
    /// and its causes, as they crossed the process boundary (see
    /// [`ErrorChain`](processing_core::ErrorChain)).
    #[error("the child cannot transfer a value: {0}")]
    ChildCodec(#[source] processing_core::ErrorChain),
    /// Waiting for or signalling the process failed.
    #[error("process i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The operation cannot apply to this kind of worker: a thread of the twin
    /// `processing::dummy::Process` cannot be terminated or killed while it runs (the message
    /// says which operation and why). See [`is_unsupported`](ProcessError::is_unsupported).
    #[error("{0}")]
    Unsupported(String),
}

impl ProcessError {
    /// The setup error, if the process could not be started.
    pub fn spawn_error(&self) -> Option<&SpawnError> {
        match self {
            ProcessError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

processing_core::predicates! {
    impl ProcessError {
        /// Whether the target panicked.
        is_panicked => Self::Panicked { .. },
        /// Whether a `join_timeout` ran out.
        is_timeout => Self::Timeout,
        /// Whether a value could not cross the process boundary (in this process or in the
        /// child).
        is_codec => Self::Codec(_) | Self::ChildCodec(_),
        /// Whether the process ended by a signal.
        is_signaled => Self::Signaled(_),
        /// Whether the operation cannot apply to this kind of worker
        /// ([`ProcessError::Unsupported`]: terminating or killing a running thread of the
        /// twin).
        is_unsupported => Self::Unsupported(_),
    }
}

pub(crate) fn unsupported(detail: impl Into<String>) -> SpawnError {
    SpawnError::new(SpawnErrorKind::Unsupported, detail)
}

/// What a worker that is not a process reports with the process's own types: the thread twin
/// `processing::dummy::Process` fails where a setting cannot apply to a thread, or where the
/// operating system refuses it a thread.
impl SpawnError {
    /// A setting this worker cannot honour ([`is_unsupported`](SpawnError::is_unsupported) is
    /// true), as a process's `start` reports an option its platform lacks.
    ///
    /// ```
    /// let e = processing::process::SpawnError::unsupported_setting("no such thing here");
    /// assert!(e.is_unsupported());
    /// assert_eq!(e.to_string(), "no such thing here");
    /// ```
    pub fn unsupported_setting(detail: impl Into<String>) -> SpawnError {
        SpawnError::new(SpawnErrorKind::Unsupported, detail)
    }

    /// The operating system refused to start the worker ([`is_io`](SpawnError::is_io) is true;
    /// `source` is its error).
    ///
    /// ```
    /// use std::error::Error;
    /// let os = std::io::Error::from(std::io::ErrorKind::OutOfMemory);
    /// let e = processing::process::SpawnError::from_os("cannot start the thread", os);
    /// assert!(e.is_io() && e.source().is_some());
    /// ```
    pub fn from_os(context: impl Into<String>, source: std::io::Error) -> SpawnError {
        SpawnError::io(context, source)
    }
}
