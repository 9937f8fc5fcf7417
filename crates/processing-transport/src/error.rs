//! Error types of the transport layer.

use std::io;

use processing_core::{CodecError, ErrorContext, HandleError};

/// A frame on the wire is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix is negative (and not the `-1` escape of a long frame).
    #[error("malformed frame: negative length {0}")]
    NegativeLength(i32),
    /// The length prefix is larger than the connection accepts.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: u64,
        /// The connection's limit.
        max: u64,
    },
    /// The stream ended in the middle of a frame: the peer closed it (or died) mid-header or
    /// mid-body.
    #[error("the stream ended in the middle of a frame's {part} ({got} of {expected} bytes)")]
    Truncated {
        /// Where it ended.
        part: processing_core::frame::FramePart,
        /// Bytes of that part that arrived.
        got: u64,
        /// Bytes that part needed.
        expected: u64,
    },
    /// A typed message announced more OS handles than arrived with it.
    #[error("message announces {announced} os handles but {arrived} arrived")]
    MissingHandles {
        /// Handles the message claims.
        announced: usize,
        /// Handles that actually arrived.
        arrived: usize,
    },
    /// A typed message has no handle-count byte.
    #[error("typed message is empty")]
    EmptyTyped,
    /// A typed (postcard) receive met a Python pickle, as Python's `Connection.send` writes:
    /// receive it with `recv_pickle` (cargo feature `pickle`) or `recv_bytes`.
    #[error("the message is a python pickle (from python's `send`), not a typed message: receive it with `recv_pickle` or `recv_bytes`")]
    PickleMessage,
    /// A typed message was sent as another type than this end receives: its type fingerprint
    /// differs (or it has none: raw bytes sent with `send_bytes`). Both ends of a connection
    /// must use the same `T`.
    #[error("the message was sent as another type than the `{expected}` this end receives: both ends of a connection must use the same type (raw bytes from `send_bytes` are received with `recv_bytes`)")]
    TypeMismatch {
        /// The type this end receives.
        expected: &'static str,
    },
}

/// An operation on a [`Connection`](crate::Connection) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer closed its end: there is nothing more to receive (Python's `EOFError`).
    #[error("end of stream: the peer closed the connection")]
    Eof,
    /// The peer is gone: a send found the other end closed.
    #[error("the peer closed the connection")]
    Disconnected,
    /// The receive buffer was too small; the whole message is handed back.
    #[error("buffer too short for a message of {} bytes", .0.len())]
    BufferTooShort(Vec<u8>),
    /// The stream carried a malformed frame; the connection is unusable afterwards.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The value could not be encoded or the message could not be decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// An OS handle inside the value could not travel.
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// A pickle could not be decoded (or was refused) or a value could not be pickled.
    #[cfg(feature = "pickle")]
    #[error(transparent)]
    Pickle(#[from] crate::pickle::PickleError),
    /// The connection was left broken by an earlier malformed frame or interrupted transfer.
    #[error("the connection is broken by an earlier error")]
    Broken,
    /// A timeout elapsed (handshake reads).
    #[error("timed out")]
    Timeout,
    /// A process sharing this end (or the peer's) died in the middle of sending or receiving a
    /// message, so the stream cannot be resynchronised: the messages before it were delivered
    /// whole, and this connection carries nothing more.
    #[error("a process sharing this end died in the middle of a message")]
    Torn,
    /// Any other operating-system error.
    #[error("connection i/o error: {0}")]
    Io(#[source] io::Error),
    /// A one-attempt receive (`try_recv`) found no whole message there.
    #[error("no message to receive now")]
    WouldBlock,
}

impl ConnectionError {
    /// Whether the bytes on the wire were malformed.
    pub fn is_malformed(&self) -> bool {
        matches!(self, ConnectionError::Frame(_))
            || matches!(self, ConnectionError::Codec(e) if e.is_decode()
            )
    }
}

processing_core::predicates! {
    impl ConnectionError {
        /// Whether the peer closed the connection (EOF on receive, or a broken pipe on send).
        is_eof => Self::Eof | Self::Disconnected,
        /// Whether this is [`ConnectionError::BufferTooShort`].
        is_buffer_too_short => Self::BufferTooShort(_),
        /// Whether a timeout elapsed.
        is_timeout => Self::Timeout,
        /// Whether a one-attempt receive found no whole message
        /// ([`ConnectionError::WouldBlock`]).
        is_would_block => Self::WouldBlock,
    }
}

/// Whether `e` reports a torn shared-memory stream (see `sys/ring.rs`).
#[cfg(target_os = "linux")]
fn is_torn(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|r| r.is::<crate::sys::ring::TornStream>())
}

#[cfg(not(target_os = "linux"))]
fn is_torn(_e: &io::Error) -> bool {
    false
}

/// What the framer reports, as a connection reports it: the end of the stream between frames is
/// [`ConnectionError::Eof`], anything else a [`FrameError`].
impl From<processing_core::frame::FrameError> for ConnectionError {
    fn from(e: processing_core::frame::FrameError) -> Self {
        use processing_core::frame::FrameError as Framer;
        ConnectionError::Frame(match e {
            Framer::Eof => return ConnectionError::Eof,
            Framer::Truncated {
                part,
                got,
                expected,
            } => FrameError::Truncated {
                part,
                got,
                expected,
            },
            Framer::NegativeLength(n) => FrameError::NegativeLength(n),
            Framer::TooLarge { len, max } => FrameError::TooLarge { len, max },
        })
    }
}

impl From<io::Error> for ConnectionError {
    fn from(e: io::Error) -> Self {
        // A frame error that travelled as an `io::Error` (the framer over a `Read`).
        if let Some(frame) = processing_core::frame::FrameError::of(&e) {
            return frame.into();
        }
        match e.kind() {
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected => ConnectionError::Disconnected,
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ConnectionError::Timeout,
            _ if is_torn(&e) => ConnectionError::Torn,
            _ => ConnectionError::Io(e),
        }
    }
}

/// The authentication handshake failed.
///
/// A wrong authkey on either side is [`WrongDigest`](AuthError::WrongDigest) (our challenge was
/// answered wrongly) or [`Rejected`](AuthError::Rejected) (our answer was refused); both texts
/// say "authkey mismatch".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The peer's answer to our challenge was wrong (different authkey).
    #[error("authentication failed: the peer's answer to our challenge is wrong: authkey mismatch (or the peer is not a processing/multiprocessing listener)")]
    WrongDigest,
    /// The peer rejected our answer (different authkey).
    #[error("authentication failed: the peer rejected our answer to its challenge: authkey mismatch (or the peer is not a processing/multiprocessing listener)")]
    Rejected,
    /// The peer does not speak the handshake (bad message, wrong size, missing challenge);
    /// a malformed frame is the source.
    #[error("authentication failed: the peer does not speak the handshake (is it a processing/multiprocessing listener?): {0}")]
    Protocol(#[source] ErrorContext),
    /// The peer asked for the legacy HMAC-MD5 handshake (Python 3.11 and older), which is weak
    /// and refused.
    #[error("authentication failed: the peer uses the weak legacy hmac-md5 handshake (python 3.11 or older), which is refused")]
    LegacyDigest,
    /// The peer asked for a digest this side does not offer.
    #[error("authentication failed: unsupported digest {0:?}")]
    UnsupportedDigest(String),
    /// The connection failed during the handshake.
    #[error("authentication failed: {0}")]
    Connection(#[source] Box<ConnectionError>),
}

impl From<ConnectionError> for AuthError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::Frame(f) => {
                AuthError::Protocol(ErrorContext::with_source("malformed handshake message", f))
            }
            other => AuthError::Connection(Box::new(other)),
        }
    }
}

/// Binding, accepting or connecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    /// The address could not be parsed or resolved.
    #[error("invalid address {0:?}")]
    InvalidAddress(String),
    /// Another live listener already serves this address.
    #[error("address {0} is already in use")]
    AddressInUse(String),
    /// A TCP address with an empty authkey was refused (enable it on the builder).
    #[error("refusing an empty authkey on a tcp address (allow it explicitly on the builder)")]
    UnauthenticatedTcp,
    /// The per-user socket directory is not private to this user.
    #[error("socket directory {0} is not private to this user")]
    InsecureDirectory(String),
    /// The handshake failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Connecting to `address` failed (refused, unreachable, no such socket); the operating
    /// system's error is the source.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The address the client tried.
        address: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Any other operating-system error.
    #[error("listener i/o error: {0}")]
    Io(#[from] io::Error),
}

impl ListenerError {
    /// Whether a timeout elapsed (the handshake's, or the operating system's connect timeout).
    pub fn is_timeout(&self) -> bool {
        match self {
            ListenerError::Auth(AuthError::Connection(e)) => e.is_timeout(),
            ListenerError::Connect { source, .. } | ListenerError::Io(source) => {
                source.kind() == io::ErrorKind::TimedOut
            }
            _ => false,
        }
    }

    /// The operating system's error, if this is one (a refused connection, a bind failure).
    pub fn os_error(&self) -> Option<&io::Error> {
        match self {
            ListenerError::Connect { source, .. } | ListenerError::Io(source) => Some(source),
            ListenerError::Auth(AuthError::Connection(e)) => match &**e {
                ConnectionError::Io(io) => Some(io),
                _ => None,
            },
            _ => None,
        }
    }

    /// An OS error met while connecting to `address`, as [`ListenerError::Connect`] (the
    /// address in the text); any other error unchanged.
    pub(crate) fn connecting(self, address: &crate::Address) -> ListenerError {
        match self {
            ListenerError::Io(source) => ListenerError::Connect {
                address: address.to_string(),
                source,
            },
            other => other,
        }
    }
}

processing_core::predicates! {
    impl ListenerError {
        /// Whether the handshake failed because of an authentication problem.
        is_auth => Self::Auth(_),
        /// Whether the address was already in use.
        is_address_in_use => Self::AddressInUse(_),
    }
}
