//! Mutual HMAC-SHA256 challenge on a fresh connection, before any payload is read.
//!
//! Each side proves it knows the authkey by answering a random challenge from the other side;
//! the server challenges first. Frames carry only the challenge and the digest, so nothing a
//! peer without the key sends is ever decoded.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ManagerError;
use crate::wire::Framed;

const CHALLENGE: &[u8] = b"#PMGR-CHALLENGE#";
const WELCOME: &[u8] = b"#PMGR-WELCOME#";
const FAILURE: &[u8] = b"#PMGR-FAILURE#";
const NONCE_LEN: usize = 32;

/// How long a peer may take to answer during authentication.
pub(crate) const AUTH_TIMEOUT: Duration = Duration::from_secs(20);

fn digest(key: &[u8], nonce: &[u8]) -> Result<Vec<u8>, ManagerError> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|e| ManagerError::Auth(e.to_string()))?;
    mac.update(nonce);
    Ok(mac.finalize().into_bytes().to_vec())
}

fn io_err(e: std::io::Error) -> ManagerError {
    ManagerError::Auth(format!("connection failed during authentication: {e}"))
}

/// Challenges the peer and checks its digest.
fn deliver_challenge(f: &mut Framed, key: &[u8]) -> Result<(), ManagerError> {
    let nonce = processing_core::authkey::random_bytes(NONCE_LEN);
    f.send(&[CHALLENGE, &nonce]).map_err(io_err)?;
    let answer = f.recv(Duration::ZERO).map_err(io_err)?.to_vec();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|e| ManagerError::Auth(e.to_string()))?;
    mac.update(&nonce);
    if mac.verify_slice(&answer).is_ok() {
        f.send(&[WELCOME]).map_err(io_err)?;
        Ok(())
    } else {
        let _ = f.send(&[FAILURE]);
        Err(ManagerError::Auth(
            "digest received was wrong (peer has another authkey)".into(),
        ))
    }
}

/// Answers the peer's challenge.
fn answer_challenge(f: &mut Framed, key: &[u8]) -> Result<(), ManagerError> {
    let msg = f.recv(Duration::ZERO).map_err(io_err)?.to_vec();
    let Some(nonce) = msg.strip_prefix(CHALLENGE) else {
        return Err(ManagerError::Auth(
            "peer did not send a challenge (not a manager?)".into(),
        ));
    };
    let answer = digest(key, nonce)?;
    f.send(&[&answer]).map_err(io_err)?;
    let verdict = f.recv(Duration::ZERO).map_err(io_err)?;
    if verdict == WELCOME {
        Ok(())
    } else {
        Err(ManagerError::Auth(
            "peer refused our digest (wrong authkey)".into(),
        ))
    }
}

/// Server side: challenge the client, then answer its challenge.
pub(crate) fn server_side(f: &mut Framed, key: &[u8]) -> Result<(), ManagerError> {
    f.stream
        .set_read_timeout(Some(AUTH_TIMEOUT))
        .map_err(io_err)?;
    deliver_challenge(f, key)?;
    answer_challenge(f, key)?;
    f.stream.set_read_timeout(None).map_err(io_err)
}

/// Client side: answer the server's challenge, then challenge it.
pub(crate) fn client_side(f: &mut Framed, key: &[u8]) -> Result<(), ManagerError> {
    f.stream
        .set_read_timeout(Some(AUTH_TIMEOUT))
        .map_err(io_err)?;
    answer_challenge(f, key)?;
    deliver_challenge(f, key)?;
    f.stream.set_read_timeout(None).map_err(io_err)
}
