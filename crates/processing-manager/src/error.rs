//! Errors of the manager: [`ManagerError`] on the client side, [`RemoteError`] as sent by the server.

use processing_core::ErrorContext;
use serde::{Deserialize, Serialize};

/// What went wrong on the server while applying a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RemoteErrorKind {
    /// The object id is not (or no longer) known to the server.
    UnknownObject,
    /// The object does not expose a method of that name.
    UnknownMethod,
    /// The arguments could not be decoded as the method expects.
    BadArguments,
    /// An index was outside the sequence.
    IndexOutOfRange,
    /// A key or value was not found.
    NotFound,
    /// The object exists with another type than the caller expects.
    TypeMismatch,
    /// The server has no registration for a custom type.
    NotRegistered,
    /// A primitive was released by a caller that does not hold it, or more often than acquired.
    NotAcquired,
    /// A barrier was broken (aborted, reset, or a waiter timed out).
    BrokenBarrier,
    /// The list changed between reading and writing back (internal retry signal of `sort`).
    Conflict,
    /// The call was cancelled because the server is shutting down.
    ShuttingDown,
    /// The call was refused (for example a shutdown request from a non-owner).
    Refused,
    /// A custom object's method panicked; the message is the panic payload.
    Panicked,
}

/// An error reported by the manager server for one call.
///
/// ```
/// use processing::manager::{RemoteError, RemoteErrorKind};
/// let e = RemoteError::new(RemoteErrorKind::UnknownMethod, "no method `fly` on Counter");
/// assert!(e.is_unknown_method());
/// assert_eq!(e.to_string(), "unknown method: no method `fly` on Counter");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {message}", kind_text(*.kind))]
pub struct RemoteError {
    /// The category of the failure.
    pub kind: RemoteErrorKind,
    /// A human-readable description.
    pub message: String,
}

fn kind_text(kind: RemoteErrorKind) -> &'static str {
    match kind {
        RemoteErrorKind::UnknownObject => "unknown object",
        RemoteErrorKind::UnknownMethod => "unknown method",
        RemoteErrorKind::BadArguments => "bad arguments",
        RemoteErrorKind::IndexOutOfRange => "index out of range",
        RemoteErrorKind::NotFound => "not found",
        RemoteErrorKind::TypeMismatch => "type mismatch",
        RemoteErrorKind::NotRegistered => "type not registered on the server",
        RemoteErrorKind::NotAcquired => "not acquired",
        RemoteErrorKind::BrokenBarrier => "broken barrier",
        RemoteErrorKind::Conflict => "conflict",
        RemoteErrorKind::ShuttingDown => "server shutting down",
        RemoteErrorKind::Refused => "refused",
        RemoteErrorKind::Panicked => "method panicked",
    }
}

impl RemoteError {
    /// A new error of `kind`.
    pub fn new(kind: RemoteErrorKind, message: impl Into<String>) -> Self {
        RemoteError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn bad_args(e: impl std::fmt::Display) -> Self {
        RemoteError::new(RemoteErrorKind::BadArguments, e.to_string())
    }

    pub(crate) fn unknown_method(kind: &str, method: &str) -> Self {
        RemoteError::new(
            RemoteErrorKind::UnknownMethod,
            format!("{kind} has no method `{method}`"),
        )
    }
}

processing_core::predicates! {
    impl RemoteError by kind {
        /// The method is not exposed by the object.
        is_unknown_method => RemoteErrorKind::UnknownMethod,
        /// The object is not known to the server (freed, or another server instance).
        is_unknown_object => RemoteErrorKind::UnknownObject,
        /// An index was outside the sequence.
        is_index_out_of_range => RemoteErrorKind::IndexOutOfRange,
        /// A key or value was not found.
        is_not_found => RemoteErrorKind::NotFound,
        /// The barrier was broken.
        is_broken_barrier => RemoteErrorKind::BrokenBarrier,
    }
}

impl From<processing_core::CodecError> for RemoteError {
    fn from(e: processing_core::CodecError) -> Self {
        RemoteError::bad_args(e)
    }
}

/// Why a manager operation failed on the client side.
///
/// The variants that add context (`Disconnected`, `Auth`, `Incompatible`, `Start`, `Address`)
/// carry an [`ErrorContext`]: what failed, in words, and the underlying error (the OS error of a
/// refused connection, the transport's `AuthError`, the process error of a server that would not
/// start) as [`source`](std::error::Error::source).
///
/// ```
/// use processing::manager::ManagerError;
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let e = ManagerError::disconnected("cannot connect to the manager at 127.0.0.1:9", refused);
/// assert!(e.is_disconnected());
/// assert_eq!(e.os_error().map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionRefused));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// The server applied the call and reported an error.
    #[error("remote error: {0}")]
    Remote(#[from] RemoteError),
    /// The server cannot be reached (shut down, killed, or the connection broke).
    #[error("manager server unreachable: {0}")]
    Disconnected(#[source] ErrorContext),
    /// Authentication failed in either direction (wrong authkey); the transport's
    /// [`AuthError`](processing_transport::AuthError) or the OS error is the source.
    #[error("{0}")]
    Auth(#[source] ErrorContext),
    /// Client and server disagree on the protocol version or on a shared type.
    #[error("incompatible manager: {0}")]
    Incompatible(#[source] ErrorContext),
    /// A value could not be encoded or decoded on this side.
    #[error(transparent)]
    Codec(#[from] processing_core::CodecError),
    /// The manager server process could not be started.
    #[error("cannot start manager server: {0}")]
    Start(#[source] ErrorContext),
    /// An address could not be parsed or bound.
    #[error("bad manager address: {0}")]
    Address(#[source] ErrorContext),
    /// An I/O error outside a call (binding, accepting).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl ManagerError {
    /// [`ManagerError::Disconnected`] with `message` and its cause.
    pub fn disconnected(
        message: impl Into<String>,
        source: impl Into<processing_core::BoxError>,
    ) -> Self {
        ManagerError::Disconnected(ErrorContext::with_source(message, source))
    }

    /// The operating system's error behind this one, if there is one (a refused connection,
    /// an address that could not be bound).
    pub fn os_error(&self) -> Option<&std::io::Error> {
        match self {
            ManagerError::Disconnected(c)
            | ManagerError::Auth(c)
            | ManagerError::Incompatible(c)
            | ManagerError::Start(c)
            | ManagerError::Address(c) => c.os_error(),
            ManagerError::Io(e) => Some(e),
            _ => None,
        }
    }

    /// Whether a wait timed out (a connection's read timeout elapsed).
    pub fn is_timeout(&self) -> bool {
        self.os_error().is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            )
        })
    }

    /// The server reported an error for the call.
    pub fn as_remote(&self) -> Option<&RemoteError> {
        match self {
            ManagerError::Remote(e) => Some(e),
            _ => None,
        }
    }

    /// The server reported that the method is not exposed.
    pub fn is_unknown_method(&self) -> bool {
        self.as_remote().is_some_and(RemoteError::is_unknown_method)
    }
}

processing_core::predicates! {
    impl ManagerError {
        /// The server is gone or the connection broke.
        is_disconnected => Self::Disconnected(_),
        /// Authentication failed (wrong authkey on either side).
        is_auth => Self::Auth(_),
        /// Client and server are incompatible (protocol version or shared type identity).
        is_incompatible => Self::Incompatible(_),
    }
}
