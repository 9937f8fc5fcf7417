//! The one codec for values that cross a process boundary: postcard over serde.
//!
//! Decoding never runs user code beyond `Deserialize` impls and never trusts a length prefix
//! beyond the bytes it was given, so a malformed message is a [`CodecError`], not a panic or a
//! huge allocation.

use serde::{de::DeserializeOwned, Serialize};

/// A value could not be encoded or decoded.
///
/// The codec's own error is kept as the [`source`](std::error::Error::source).
///
/// ```
/// let e = processing::core::codec::decode::<u32>(&[0xff, 0xff]).unwrap_err();
/// assert!(e.is_decode());
/// assert!(std::error::Error::source(&e).is_some());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be serialized (for example a handle outside a handle-carrying channel).
    #[error("cannot encode value: {0}")]
    Encode(#[source] postcard::Error),
    /// The bytes are not a valid encoding of the expected type.
    #[error("cannot decode value: {0}")]
    Decode(#[source] postcard::Error),
    /// The bytes hold a valid value followed by this many bytes more.
    #[error("cannot decode value: {0} trailing bytes")]
    TrailingBytes(usize),
}

impl CodecError {
    /// Bytes that are no valid encoding at all (a frame cut short or overwritten), found by a
    /// check of our own rather than by the decoder.
    pub fn malformed() -> CodecError {
        CodecError::Decode(postcard::Error::DeserializeBadEncoding)
    }

    /// Whether the bytes could not be decoded (malformed or trailing bytes).
    pub fn is_decode(&self) -> bool {
        matches!(self, CodecError::Decode(_) | CodecError::TrailingBytes(_))
    }

    /// Whether a value could not be encoded.
    pub fn is_encode(&self) -> bool {
        matches!(self, CodecError::Encode(_))
    }
}

/// Encodes `value` with postcard.
///
/// ```
/// let bytes = processing::core::codec::encode(&42u32).unwrap();
/// assert_eq!(processing::core::codec::decode::<u32>(&bytes).unwrap(), 42);
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    postcard::to_allocvec(value).map_err(CodecError::Encode)
}

/// Appends the postcard encoding of `value` to `out`.
///
/// ```
/// let mut buf = vec![0xff];
/// processing::core::codec::encode_into(&7u8, &mut buf).unwrap();
/// assert_eq!(buf, [0xff, 7]);
/// ```
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let extended = postcard::to_extend(value, std::mem::take(out)).map_err(CodecError::Encode)?;
    *out = extended;
    Ok(())
}

/// Decodes a value of type `T` from exactly `bytes` (trailing bytes are an error).
///
/// ```
/// assert!(processing::core::codec::decode::<u32>(&[0xff, 0xff]).is_err());
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(CodecError::Decode)?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_trailing_bytes() {
        let bytes = encode(&(1i32, "abc", 2.5f64)).unwrap();
        let back: (i32, String, f64) = decode(&bytes).unwrap();
        assert_eq!(back, (1, "abc".into(), 2.5));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<(i32, String, f64)>(&longer).is_err());
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        // A Vec<u8> claiming 2^63 elements followed by nothing.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(decode::<Vec<u8>>(&bytes).is_err());
        assert!(decode::<String>(&bytes).is_err());
    }

    /// Under Miri (`cargo xtask models`): a round trip of nested owned and borrowed shapes,
    /// and decoding of every prefix of a valid encoding (each an error, never a read past the
    /// end).
    #[test]
    fn miri_codec_round_trips_and_truncations() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Item {
            id: u64,
            name: String,
            tags: Vec<(u8, Option<i64>)>,
            blob: Vec<u8>,
        }
        let item = Item {
            id: u64::MAX - 3,
            name: "größe".into(),
            tags: vec![(1, None), (2, Some(-7)), (3, Some(i64::MIN))],
            blob: (0..40).collect(),
        };
        let mut bytes = vec![0xAA];
        encode_into(&item, &mut bytes).unwrap();
        assert_eq!(bytes[0], 0xAA);
        let back: Item = decode(&bytes[1..]).unwrap();
        assert_eq!(back, item);
        for cut in 0..bytes.len() - 1 {
            assert!(
                decode::<Item>(&bytes[1..1 + cut]).is_err(),
                "prefix of {cut} bytes"
            );
        }
    }
}
