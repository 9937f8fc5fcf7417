//! The messages of a connection, in the frame format shared with Python's
//! `multiprocessing.connection`, which is processing-core's one framer
//! ([`processing_core::frame`]): a 4-byte big-endian signed length followed by that many bytes;
//! a message longer than `i32::MAX` bytes is announced by the length `-1` followed by an 8-byte
//! big-endian unsigned length; any other negative length is malformed.
//!
//! Typed messages (`Connection::send`) use the same frame; their body starts with one byte, the
//! number of OS handles that travel beside the message (Unix `SCM_RIGHTS`), then the postcard
//! encoding of the value.

use crate::error::FrameError;

pub use processing_core::frame::{split_frames, FramePart};

/// Default largest message a connection accepts: 16 GiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 1 << 34;

/// Bytes of the type fingerprint after a typed message's handle-count byte.
pub(crate) const FINGERPRINT: usize = 4;

/// The fingerprint of `T` that a typed message carries: FNV-1a of its type name, folded to
/// 32 bits (a few nanoseconds; both ends of one build compute the same value).
pub(crate) fn fingerprint<T: ?Sized>() -> [u8; FINGERPRINT] {
    let mut h: u32 = 0x811c_9dc5;
    for &b in std::any::type_name::<T>().as_bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h.to_le_bytes()
}

/// Whether a message is a pickle of protocol 2 or newer (`PROTO n` … `STOP`), as Python's
/// `Connection.send` writes.
pub(crate) fn looks_like_pickle(body: &[u8]) -> bool {
    body.len() >= 3 && body[0] == 0x80 && (2..=5).contains(&body[1]) && body.last() == Some(&b'.')
}

/// The body of a typed message that carries no OS handles, exactly as
/// [`Connection::send`](crate::Connection::send) frames it: the handle count (0), the
/// fingerprint of `T`, the postcard encoding. For channels of another kind (the thread twin's
/// pipe) that must speak the same messages.
///
/// ```
/// use processing::transport::frame::{decode_typed, encode_typed};
/// let body = encode_typed(&(7u32, String::from("seven"))).unwrap();
/// assert_eq!(decode_typed::<(u32, String)>(&body).unwrap(), (7, "seven".to_string()));
/// assert!(decode_typed::<i64>(&body).unwrap_err().is_malformed());
/// ```
pub fn encode_typed<T: serde::Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<u8>, crate::ConnectionError> {
    let mut buf = Vec::with_capacity(64);
    buf.push(0);
    buf.extend_from_slice(&fingerprint::<T>());
    processing_core::codec::encode_into(value, &mut buf)?;
    Ok(buf)
}

/// Decodes the body of a typed message that carries no OS handles (see [`encode_typed`]): a
/// Python pickle is [`FrameError::PickleMessage`], a message of another type
/// [`FrameError::TypeMismatch`], a message announcing OS handles
/// [`FrameError::MissingHandles`].
pub fn decode_typed<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, crate::ConnectionError> {
    let (&count, rest) = body.split_first().ok_or(FrameError::EmptyTyped)?;
    if count != 0 {
        if looks_like_pickle(body) {
            return Err(FrameError::PickleMessage.into());
        }
        return Err(FrameError::MissingHandles {
            announced: count as usize,
            arrived: 0,
        }
        .into());
    }
    Ok(processing_core::codec::decode(typed_payload::<T>(rest)?)?)
}

/// The postcard payload of a typed message's body after its handle-count byte, once its
/// fingerprint says it is a `T` ([`FrameError::TypeMismatch`] otherwise).
pub(crate) fn typed_payload<T>(rest: &[u8]) -> Result<&[u8], FrameError> {
    match rest.split_at_checked(FINGERPRINT) {
        Some((fp, payload)) if *fp == fingerprint::<T>() => Ok(payload),
        _ => Err(FrameError::TypeMismatch {
            expected: std::any::type_name::<T>(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use processing_core::frame::{decode_header, Header};
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), max in any::<u64>()) {
            let _ = decode_header(&bytes, max);
            let _ = split_frames(&bytes, max);
        }

        #[test]
        fn frames_round_trip(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
            let mut stream = Vec::new();
            for b in &bodies {
                stream.extend_from_slice(Header::for_len(b.len() as u64).as_bytes());
                stream.extend_from_slice(b);
            }
            let back = split_frames(&stream, 1 << 20).unwrap();
            prop_assert_eq!(back.len(), bodies.len());
            for (a, b) in back.iter().zip(&bodies) {
                prop_assert_eq!(*a, b.as_slice());
            }
        }
    }

    /// Under Miri: headers of every size class and a stream of frames cut at every byte
    /// (each cut is an incomplete or truncated stream, never a read past the end).
    #[test]
    fn miri_frame_headers_and_split_at_every_cut() {
        for len in [0u64, 1, 255, i32::MAX as u64, i32::MAX as u64 + 1] {
            let header = Header::for_len(len).as_bytes().to_vec();
            assert_eq!(
                decode_header(&header, u64::MAX).unwrap(),
                Some((len, header.len()))
            );
            for cut in 0..header.len() {
                assert_eq!(decode_header(&header[..cut], u64::MAX).unwrap(), None);
            }
        }
        let bodies: [&[u8]; 3] = [b"", b"abc", &[7u8; 40]];
        let mut stream = Vec::new();
        for b in bodies {
            stream.extend_from_slice(Header::for_len(b.len() as u64).as_bytes());
            stream.extend_from_slice(b);
        }
        assert_eq!(split_frames(&stream, 1 << 20).unwrap(), bodies);
        for cut in 1..stream.len() {
            let part = &stream[..cut];
            if let Ok(frames) = split_frames(part, 1 << 20) {
                // A cut at a frame boundary: the whole frames before it.
                assert_eq!(frames, &bodies[..frames.len()]);
            }
        }
        let typed = encode_typed(&(5u32, String::from("five"))).unwrap();
        assert_eq!(
            decode_typed::<(u32, String)>(&typed).unwrap(),
            (5, "five".into())
        );
    }
}
