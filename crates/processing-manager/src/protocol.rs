//! What travels on a manager connection after authentication.
//!
//! 1. **Handshake**: the client sends `"PMGR"`, the protocol version (`u32` LE) and a postcard
//!    [`Hello`] naming the custom types it knows; the server answers `"PMGR"`, its version, a
//!    status byte and either a postcard [`Welcome`] or a UTF-8 reason. The version comes before
//!    any postcard payload, so two builds that disagree fail with a clear error instead of
//!    decoding each other's bytes.
//! 2. **Calls**: a request frame is `object id (u64 LE) | postcard request`, the request being
//!    a variant of the object type's request enum (see [`crate::calls`]: its variant index
//!    names the method, its fields are the arguments); the response frame is `0 | postcard
//!    reply` (a variant of the type's reply enum) or `1 | postcard RemoteError`. Object 0 is the
//!    server itself (create, incref, decref, lookup, shutdown).
//!
//! Versions: 2 named methods by strings (`name length | name | argument tuple`); 3 (this one)
//! sends typed request enums, and expected outcomes (empty, full, timeout, closed, would block)
//! are reply variants rather than remote errors.
//!
//! Values stored in shared containers travel as [`Elem`]s: their postcard bytes plus the ids of
//! the proxies of the same manager embedded in them, so the server can count those references.

use serde::{Deserialize, Serialize};

use crate::error::RemoteError;

/// The version of the manager wire protocol; both sides must speak the same one.
pub const PROTOCOL_VERSION: u32 = 4;

const MAGIC: &[u8; 4] = b"PMGR";

/// The identity of a custom shared type: its Rust type name and a fingerprint of its name,
/// size and exposed method signatures. Two programs that define the type the same way agree on
/// it; a changed definition (another build with other methods or layout) does not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TypeIdentity {
    /// `std::any::type_name` of the type.
    pub name: String,
    /// FNV-1a over the name, size, method signatures and protocol version.
    pub fingerprint: u64,
}

impl TypeIdentity {
    /// The identity of a type described by `name`, `size` and `signature`.
    ///
    /// ```
    /// use processing::manager::TypeIdentity;
    /// let a = TypeIdentity::new("app::Counter", 8, "fn incr(&mut self, by: i64) -> i64;");
    /// let b = TypeIdentity::new("app::Counter", 8, "fn incr(&mut self, by: i32) -> i32;");
    /// assert_ne!(a.fingerprint, b.fingerprint);
    /// ```
    pub fn new(name: &str, size: usize, signature: &str) -> Self {
        let mut h = Fnv::new();
        h.write(name.as_bytes());
        h.write(&(size as u64).to_le_bytes());
        h.write(signature.as_bytes());
        h.write(&PROTOCOL_VERSION.to_le_bytes());
        TypeIdentity {
            name: name.to_string(),
            fingerprint: h.0,
        }
    }
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // Separate fields so that ("ab", "c") and ("a", "bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
}

/// The client's opening message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// Present on the owner's control connection: when it closes, the server stops.
    pub(crate) owner_token: Option<u64>,
    /// The custom types this client knows.
    pub(crate) types: Vec<TypeIdentity>,
    /// A random id of the client process (with its pid, new after a fork): the references the
    /// process holds are booked under it, whichever of its connections took them.
    pub(crate) process: u64,
    /// This is the process's anchor: a connection that makes no calls and stays open as long
    /// as the process lives; when it closes, every reference the process held is given back.
    pub(crate) anchor: bool,
}

/// The server's answer to a [`Hello`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Welcome {
    /// A random id of this server run; proxies of an earlier run are recognised by it.
    pub(crate) instance: u64,
    /// The custom types the server has registered.
    pub(crate) types: Vec<TypeIdentity>,
}

/// Prefixes a handshake payload with the magic and protocol version.
pub(crate) fn versioned(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// Checks the magic and version of a handshake frame and returns its payload.
pub(crate) fn check_versioned(frame: &[u8]) -> Result<&[u8], String> {
    if frame.len() < 8 || &frame[..4] != MAGIC {
        return Err("peer is not a processing manager".into());
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&frame[4..8]);
    let version = u32::from_le_bytes(v);
    if version != PROTOCOL_VERSION {
        return Err(format!(
            "manager protocol version mismatch: this side speaks {PROTOCOL_VERSION}, the peer {version}"
        ));
    }
    Ok(&frame[8..])
}

/// Splits a request frame into the object id and the encoded request.
pub(crate) fn parse_request(frame: &[u8]) -> Result<(u64, &[u8]), RemoteError> {
    if frame.len() < 9 {
        return Err(RemoteError::bad_args("request frame too short"));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&frame[..8]);
    Ok((u64::from_le_bytes(id), &frame[8..]))
}

/// Status byte of a successful response.
pub(crate) const STATUS_OK: u8 = 0;
/// Status byte of an error response.
pub(crate) const STATUS_ERR: u8 = 1;

/// A stored value: its postcard bytes and the proxies of this manager embedded in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Elem {
    #[serde(with = "bytes_codec")]
    pub(crate) bytes: Vec<u8>,
    pub(crate) refs: Vec<u64>,
}

thread_local! {
    /// While the server encodes a reply: the references of every `Elem` sent (they become
    /// the client's to give back).
    static SENT_REFS: std::cell::RefCell<Option<Vec<u64>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (a server call, which encodes its reply) and returns the references of every
/// [`Elem`] it encoded: from then on they are held by the calling client.
pub(crate) fn collect_sent_refs<R>(f: impl FnOnce() -> R) -> (R, Vec<u64>) {
    let outer = SENT_REFS.with(|s| s.borrow_mut().replace(Vec::new()));
    let r = f();
    let sent = SENT_REFS.with(|s| std::mem::replace(&mut *s.borrow_mut(), outer));
    (r, sent.unwrap_or_default())
}

impl Serialize for Elem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let _ = SENT_REFS.try_with(|sent| {
            if let Some(sent) = sent.borrow_mut().as_mut() {
                sent.extend_from_slice(&self.refs);
            }
        });
        let mut st = s.serialize_struct("Elem", 2)?;
        st.serialize_field("bytes", &Bytes(&self.bytes))?;
        st.serialize_field("refs", &self.refs)?;
        st.end()
    }
}

/// A byte slice serialised as one byte string (as `bytes_codec` does).
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Serialises a byte vector as one byte string (postcard: length + raw bytes).
pub(crate) mod bytes_codec {
    use serde::de::{Deserializer, Error, SeqAccess, Visitor};
    use serde::Serializer;
    use std::fmt;

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_frame_round_trip_and_truncation() {
        let mut frame = 7u64.to_le_bytes().to_vec();
        frame.extend_from_slice(&[1, 2, 3]);
        assert_eq!(parse_request(&frame).unwrap(), (7, &[1u8, 2, 3][..]));
        assert!(parse_request(&frame[..8]).is_err());
        assert!(parse_request(&frame[..3]).is_err());
    }

    #[test]
    fn version_mismatch_is_a_clear_error() {
        let mut frame = versioned(b"x");
        assert_eq!(check_versioned(&frame).unwrap(), b"x");
        frame[4] = frame[4].wrapping_add(1);
        assert!(check_versioned(&frame)
            .unwrap_err()
            .contains("version mismatch"));
        // A peer of the previous version (no async condition waits) is refused by its version.
        let mut old = versioned(b"x");
        old[4..8].copy_from_slice(&3u32.to_le_bytes());
        let e = check_versioned(&old).unwrap_err();
        assert!(e.contains("this side speaks 4, the peer 3"), "{e}");
        assert!(check_versioned(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn elem_bytes_are_compact() {
        let e = Elem {
            bytes: vec![1, 2, 3],
            refs: vec![],
        };
        let enc = processing_core::codec::encode(&e).unwrap();
        assert_eq!(enc, [3, 1, 2, 3, 0]);
        assert_eq!(processing_core::codec::decode::<Elem>(&enc).unwrap(), e);
    }
}
