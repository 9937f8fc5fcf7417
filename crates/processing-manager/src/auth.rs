//! Mutual HMAC-SHA256 challenge on a fresh connection, before any payload is read.
//!
//! The handshake is transport's ([`processing_transport::handshake_server`] /
//! [`processing_transport::handshake_client`], Python 3.12+'s wire), run on the raw stream
//! before it is wrapped in [`Framed`]: each side proves it knows the authkey by answering a
//! random challenge from the other side, the server challenges first, messages are read
//! exactly and capped at 256 bytes, so nothing a peer without the key sends is ever decoded.

use std::time::Duration;

use processing_transport::AuthError;

use crate::error::ManagerError;
use crate::wire::Framed;
use processing_core::ErrorContext;

/// How long a peer may take to answer during authentication.
pub(crate) const AUTH_TIMEOUT: Duration = Duration::from_secs(20);

fn auth_err(e: AuthError) -> ManagerError {
    ManagerError::Auth(ErrorContext::with_source("", e))
}

fn io_err(e: std::io::Error) -> ManagerError {
    ManagerError::Auth(ErrorContext::with_source(
        "the connection failed during authentication",
        e,
    ))
}

/// Runs one side of the handshake on `f`'s stream (nothing is buffered in `f` yet) with
/// [`AUTH_TIMEOUT`] as the read timeout.
fn run(
    f: &mut Framed,
    key: &[u8],
    side: fn(&mut crate::sys::Stream, &[u8]) -> Result<(), AuthError>,
) -> Result<(), ManagerError> {
    f.stream
        .set_read_timeout(Some(AUTH_TIMEOUT))
        .map_err(io_err)?;
    side(&mut f.stream, key).map_err(auth_err)?;
    f.stream.set_read_timeout(None).map_err(io_err)
}

/// Server side: challenge the client, then answer its challenge.
pub(crate) fn server_side(f: &mut Framed, key: &[u8]) -> Result<(), ManagerError> {
    run(f, key, processing_transport::handshake_server)
}

/// Client side: answer the server's challenge, then challenge it.
pub(crate) fn client_side(f: &mut Framed, key: &[u8]) -> Result<(), ManagerError> {
    run(f, key, processing_transport::handshake_client)
}
