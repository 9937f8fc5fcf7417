//! The mutual HMAC challenge-response handshake, byte-compatible with Python 3.12+'s
//! `multiprocessing.connection` (`deliver_challenge` / `answer_challenge`).
//!
//! The verifier sends `#CHALLENGE#{sha256}<40 random bytes>`; the prover answers
//! `{sha256}<HMAC-SHA256(authkey, "{sha256}<40 random bytes>")>`; the verifier answers
//! `#WELCOME#` or `#FAILURE#`. The server verifies the client first, then the client verifies
//! the server. Every handshake message is a frame of at most 256 bytes, read exactly (nothing
//! beyond the frame is read from the socket before both directions succeeded).
//! The legacy form of Python 3.11 and older (a bare 20-byte challenge answered with a bare
//! HMAC-MD5) is refused with [`AuthError::LegacyDigest`].

use std::io::{Read, Write};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::connection::Connection;
use crate::error::{AuthError, ConnectionError};
use processing_core::frame::{self, ReadSource, RESERVED};

const CHALLENGE: &[u8] = b"#CHALLENGE#";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
/// Random bytes in a challenge (Python: `MESSAGE_LENGTH`).
const MESSAGE_LENGTH: usize = 40;
const DIGEST: &[u8] = b"sha256";
/// Largest handshake message (Python reads them with `recv_bytes(256)`).
pub(crate) const MAX_HANDSHAKE_MESSAGE: u64 = 256;
/// Lengths of the legacy messages: a bare 20-byte challenge, a bare 16-byte MD5 digest.
const LEGACY_LENGTHS: [usize; 2] = [20, 16];
/// Longest digest name Python allows (`sha3_256` and friends).
const MAX_DIGEST_NAME: usize = 8;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, including empty ones.
    <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("hmac takes any key length"))
}

/// Splits `{digest}payload` into the digest name and payload (Python's
/// `_get_digest_name_and_payload`), refusing the legacy unprefixed form.
fn digest_and_payload(message: &[u8]) -> Result<(&[u8], &[u8]), AuthError> {
    if LEGACY_LENGTHS.contains(&message.len()) {
        return Err(AuthError::LegacyDigest);
    }
    if message.first() == Some(&b'{') {
        let search = &message[1..message.len().min(MAX_DIGEST_NAME + 2)];
        if let Some(close) = search.iter().position(|&b| b == b'}') {
            let name = &search[..close];
            return Ok((name, &message[close + 2..]));
        }
    }
    Err(AuthError::Protocol("missing digest prefix".into()))
}

/// Checks the answer to our challenge `message` (which includes its `{sha256}` prefix).
/// The MAC of `message` under `key` with the digest `name` that the peer asked for (only
/// [`DIGEST`] is supported).
fn mac_of(key: &[u8], name: &[u8], message: &[u8]) -> Result<HmacSha256, AuthError> {
    if name != DIGEST {
        return Err(AuthError::UnsupportedDigest(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    let mut m = mac(key);
    m.update(message);
    Ok(m)
}

pub(crate) fn verify_response(
    key: &[u8],
    message: &[u8],
    response: &[u8],
) -> Result<(), AuthError> {
    let (name, digest) = digest_and_payload(response)?;
    let m = mac_of(key, name, message)?;
    m.verify_slice(digest).map_err(|_| AuthError::WrongDigest)
}

/// The answer to a received challenge frame, or why it cannot be answered.
pub(crate) fn respond(key: &[u8], challenge_frame: &[u8]) -> Result<Vec<u8>, AuthError> {
    let message = challenge_frame
        .strip_prefix(CHALLENGE)
        .ok_or_else(|| AuthError::Protocol("expected a challenge".into()))?;
    if message.len() < LEGACY_LENGTHS[0] {
        return Err(AuthError::Protocol(
            format!("challenge too short: {} bytes", message.len()).into(),
        ));
    }
    let (name, _) = digest_and_payload(message)?;
    let m = mac_of(key, name, message)?;
    let mut out = Vec::with_capacity(DIGEST.len() + 2 + 32);
    out.push(b'{');
    out.extend_from_slice(DIGEST);
    out.push(b'}');
    out.extend_from_slice(&m.finalize().into_bytes());
    Ok(out)
}

/// A handshake's view of its channel: whole messages, each at most
/// [`MAX_HANDSHAKE_MESSAGE`] bytes, read exactly (never ahead of the message).
trait Messages {
    fn send_message(&mut self, message: &[u8]) -> Result<(), AuthError>;
    fn recv_message(&mut self) -> Result<Vec<u8>, AuthError>;
}

/// A [`Connection`] put into exact-read mode with the handshake's frame cap by [`handshake`].
impl<T> Messages for &Connection<T> {
    fn send_message(&mut self, message: &[u8]) -> Result<(), AuthError> {
        Ok(self.send_bytes(message)?)
    }

    fn recv_message(&mut self) -> Result<Vec<u8>, AuthError> {
        Ok(self.recv_bytes()?)
    }
}

/// Any byte stream, framed as Python frames its messages (see [`crate::frame`]).
struct StreamMessages<'a, S>(&'a mut S);

impl<S: Read + Write> Messages for StreamMessages<'_, S> {
    fn send_message(&mut self, message: &[u8]) -> Result<(), AuthError> {
        // Header and body in one buffer: one write.
        let mut frame = Vec::with_capacity(RESERVED + message.len());
        frame.extend_from_slice(&[0; RESERVED]);
        frame.extend_from_slice(message);
        frame::write_reserved(self.0, &mut frame)
            .and_then(|()| self.0.flush())
            .map_err(ConnectionError::from)?;
        Ok(())
    }

    fn recv_message(&mut self) -> Result<Vec<u8>, AuthError> {
        // Exactly one frame, its length checked against the cap before its body is read.
        let mut body = Vec::new();
        frame::read_frame(
            &mut ReadSource(&mut *self.0),
            MAX_HANDSHAKE_MESSAGE,
            &mut body,
        )
        .map_err(ConnectionError::from)?;
        Ok(body)
    }
}

/// Challenges the peer: it must prove it holds `key`.
fn deliver_challenge(conn: &mut impl Messages, key: &[u8]) -> Result<(), AuthError> {
    let mut message = Vec::with_capacity(DIGEST.len() + 2 + MESSAGE_LENGTH);
    message.push(b'{');
    message.extend_from_slice(DIGEST);
    message.push(b'}');
    message.extend_from_slice(&processing_core::authkey::random_bytes(MESSAGE_LENGTH));
    conn.send_message(&[CHALLENGE, &message].concat())?;
    let response = conn.recv_message()?;
    match verify_response(key, &message, &response) {
        Ok(()) => {
            conn.send_message(WELCOME)?;
            Ok(())
        }
        Err(e) => {
            let _ = conn.send_message(FAILURE);
            Err(e)
        }
    }
}

/// Answers the peer's challenge.
fn answer_challenge(conn: &mut impl Messages, key: &[u8]) -> Result<(), AuthError> {
    let challenge = conn.recv_message()?;
    let answer = respond(key, &challenge)?;
    conn.send_message(&answer)?;
    let verdict = conn.recv_message()?;
    if verdict == WELCOME {
        Ok(())
    } else if verdict == FAILURE {
        Err(AuthError::Rejected)
    } else {
        Err(AuthError::Protocol(
            "expected #WELCOME# or #FAILURE#".into(),
        ))
    }
}

/// Which side of the handshake this end plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The accepting side: challenges first.
    Server,
    /// The connecting side: answers first.
    Client,
}

fn mutual(conn: &mut impl Messages, key: &[u8], role: Role) -> Result<(), AuthError> {
    match role {
        Role::Server => deliver_challenge(conn, key).and_then(|()| answer_challenge(conn, key)),
        Role::Client => answer_challenge(conn, key).and_then(|()| deliver_challenge(conn, key)),
    }
}

/// Runs the mutual handshake on a fresh connection: exact reads, 256-byte frames, and an
/// optional read timeout, all restored afterwards.
pub(crate) fn handshake<T>(
    conn: &Connection<T>,
    key: &[u8],
    role: Role,
    timeout: Option<Duration>,
) -> Result<(), AuthError> {
    let max = conn.max_message_size();
    conn.set_exact_reads(true);
    conn.set_max_message_size(MAX_HANDSHAKE_MESSAGE);
    conn.set_read_timeout(timeout)?;
    let result = mutual(&mut { conn }, key, role);
    conn.set_exact_reads(false);
    conn.set_max_message_size(max);
    conn.set_read_timeout(None)?;
    result
}

/// Runs the accepting side of the mutual handshake on any fresh byte stream: challenges the
/// peer, then answers its challenge.
///
/// The wire is exactly [`Listener`](crate::Listener)'s (Python 3.12+'s
/// `multiprocessing.connection`). Messages are read exactly (nothing beyond the last handshake
/// frame is consumed from `stream`, so the caller may wrap it in its own framing afterwards)
/// and a length prefix over 256 bytes fails before its body is read. The stream gets no timeout
/// here: give it a read timeout first (e.g. `TcpStream::set_read_timeout`) so that a silent
/// peer cannot stall the handshake; an elapsed timeout is an [`AuthError::Connection`].
///
/// ```
/// # #[cfg(unix)] {
/// use std::os::unix::net::UnixStream;
/// let (mut a, mut b) = UnixStream::pair().unwrap();
/// let client = std::thread::spawn(move || processing::transport::handshake_client(&mut b, b"key"));
/// processing::transport::handshake_server(&mut a, b"key").unwrap();
/// client.join().unwrap().unwrap();
/// # }
/// ```
pub fn handshake_server<S: Read + Write>(stream: &mut S, authkey: &[u8]) -> Result<(), AuthError> {
    mutual(&mut StreamMessages(stream), authkey, Role::Server)
}

/// Runs the connecting side of the mutual handshake on any fresh byte stream: answers the
/// peer's challenge, then challenges it. Limits and timeouts as in [`handshake_server`].
///
/// ```
/// # #[cfg(unix)] {
/// use std::os::unix::net::UnixStream;
/// let (mut a, mut b) = UnixStream::pair().unwrap();
/// let server = std::thread::spawn(move || processing::transport::handshake_server(&mut a, b"one"));
/// // The server refuses our digest: a wrong key fails on both sides.
/// assert!(processing::transport::handshake_client(&mut b, b"two").is_err());
/// assert!(server.join().unwrap().is_err());
/// # }
/// ```
pub fn handshake_client<S: Read + Write>(stream: &mut S, authkey: &[u8]) -> Result<(), AuthError> {
    mutual(&mut StreamMessages(stream), authkey, Role::Client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn answer_verifies() {
        let mut message = b"{sha256}".to_vec();
        message.extend_from_slice(&[7u8; MESSAGE_LENGTH]);
        let frame = [CHALLENGE, &message].concat();
        let answer = respond(b"key", &frame).unwrap();
        assert!(answer.starts_with(b"{sha256}"));
        verify_response(b"key", &message, &answer).unwrap();
        assert!(matches!(
            verify_response(b"other", &message, &answer),
            Err(AuthError::WrongDigest)
        ));
    }

    #[test]
    fn legacy_and_foreign_digests_are_refused() {
        let legacy = [CHALLENGE, &[1u8; 20][..]].concat();
        assert!(matches!(
            respond(b"k", &legacy),
            Err(AuthError::LegacyDigest)
        ));
        assert!(matches!(
            verify_response(b"k", b"m", &[0u8; 16]),
            Err(AuthError::LegacyDigest)
        ));
        let md5 = [CHALLENGE, b"{md5}", &[1u8; 40][..]].concat();
        assert!(matches!(
            respond(b"k", &md5),
            Err(AuthError::UnsupportedDigest(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn stream_handshake_matches_and_refuses() {
        use std::os::unix::net::UnixStream;
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || handshake_client(&mut b, b"key").map(|()| b));
        handshake_server(&mut a, b"key").unwrap();
        let mut b = t.join().unwrap().unwrap();
        // Nothing beyond the handshake was consumed: a byte written now arrives intact.
        a.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        b.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");

        let (mut a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || handshake_client(&mut b, b"other"));
        assert!(matches!(
            handshake_server(&mut a, b"key"),
            Err(AuthError::WrongDigest)
        ));
        assert!(t.join().unwrap().is_err());
    }

    #[cfg(unix)]
    #[test]
    fn stream_handshake_refuses_a_long_frame_before_its_body() {
        use std::os::unix::net::UnixStream;
        let (mut a, mut b) = UnixStream::pair().unwrap();
        b.write_all(&1000i32.to_be_bytes()).unwrap();
        b.write_all(b"body").unwrap();
        let e = handshake_client(&mut a, b"key").unwrap_err();
        assert!(matches!(e, AuthError::Protocol(_)), "{e}");
        a.set_nonblocking(true).unwrap();
        let mut body = [0u8; 4];
        a.read_exact(&mut body).unwrap();
        assert_eq!(&body, b"body");
    }

    #[cfg(unix)]
    #[test]
    fn stream_handshake_times_out_with_the_stream() {
        use std::os::unix::net::UnixStream;
        let (mut a, _b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        match handshake_client(&mut a, b"key") {
            Err(AuthError::Connection(c)) => assert!(c.is_timeout(), "{c}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    proptest! {
        #[test]
        fn handshake_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = respond(b"k", &bytes);
            let _ = verify_response(b"k", b"{sha256}abc", &bytes);
            let mut framed = CHALLENGE.to_vec();
            framed.extend_from_slice(&bytes);
            let _ = respond(b"k", &framed);
        }
    }
}
