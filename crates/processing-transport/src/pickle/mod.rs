//! Python's pickle, data subset only: typed Rust values ↔ Python's `conn.send(obj)`/`conn.recv()`.
//!
//! Python's `Connection.send(obj)` pickles `obj`; [`Connection::recv_pickle`](crate::Connection::recv_pickle)
//! reads those messages into any `serde::Deserialize` type (or the dynamic [`PickleValue`]),
//! and [`Connection::send_pickle`](crate::Connection::send_pickle) writes pickles that
//! Python's `conn.recv()` loads. [`to_vec`] and [`from_slice`] do the same on plain bytes.
//!
//! Only data crosses: `None`, `bool`, `int`, `float`, `str`, `bytes`, `bytearray` (protocol 5),
//! `list`, `tuple`, `dict`, `set` and `frozenset`. The decoder never imports, calls or builds
//! anything: the opcodes that would (`GLOBAL`, `STACK_GLOBAL`, `REDUCE`, `BUILD`, `INST`, `OBJ`,
//! `NEWOBJ`, `NEWOBJ_EX`, `EXT1/2/4`, `PERSID`, `BINPERSID`, and the out-of-band buffers
//! `NEXT_BUFFER`/`READONLY_BUFFER`) are refused with [`PickleError::Refused`], which names the
//! opcode. Class instances, functions, and the few built-in types Python pickles through a call
//! (a `bytearray` under protocol 4, Python 3.12/3.13's default) are therefore refused too.
//!
//! Mapping onto serde's data model:
//!
//! | Python | Rust (receiving) | Rust (sending) → Python |
//! | --- | --- | --- |
//! | `None` | `Option::None`, `()` | `None`, `()`, unit structs → `None` |
//! | `bool`, `int`, `float` | `bool`, integers (range-checked), `f32`/`f64` | the same |
//! | `int` beyond 128 bits | [`PickleValue::BigInt`] only; a typed target fails with [`PickleError::IntTooLarge`] | |
//! | `str` | `String`, `&str`, `char`, enum unit variants | the same |
//! | `bytes`, `bytearray` | [`ByteBuf`] (or any type that deserializes from bytes), or `Vec<u8>` | `serialize_bytes` → `bytes` (a plain `Vec<u8>` is a list of ints, as in serde) |
//! | `list`, `tuple`, `set`, `frozenset` | sequences, tuples, sets | sequences → `list`, tuples and tuple structs → `tuple` |
//! | `dict` | maps, structs, enum variants with data (`{variant: value}`) | maps and structs → `dict`, its keys made hashable (a sequence in a key, `Vec` or `BTreeSet` alike, is a tuple; a [`PickleValue::Set`] a frozenset) |
//!
//! Limits, so that hostile input costs no more than its size: every length field is checked
//! against the bytes actually received before anything is read or allocated; the decoder's
//! working memory (stack, memo, one node per opcode) is bounded by a fixed multiple of the
//! input's length; nesting deeper than [`MAX_DEPTH`] is refused
//! ([`PickleError::TooDeep`], so no stack overflow); objects shared through the memo are
//! expanded into a tree when they are deserialized, and that expansion is capped at
//! [`EXPANSION_FACTOR`] bytes per byte of input ([`PickleError::TooLarge`]), so a small pickle
//! that references one object a billion times is refused instead of exhausting memory. A
//! recursive structure (a list that contains itself) is [`PickleError::Recursive`].
//!
//! ```
//! use std::collections::HashMap;
//! use processing::transport::pickle::{self, ByteBuf, PickleValue};
//! // What Python 3.12's `pickle.dumps({"a": (1, b"y")})` writes.
//! let bytes = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01C\x01y\x94\x86\x94s.";
//! let value: PickleValue = pickle::from_slice(bytes).unwrap();
//! assert_eq!(
//!     value,
//!     PickleValue::Dict(vec![(
//!         PickleValue::Str("a".into()),
//!         PickleValue::Tuple(vec![PickleValue::Int(1), PickleValue::Bytes(b"y".to_vec())]),
//!     )])
//! );
//! let typed: HashMap<String, (u8, ByteBuf)> = pickle::from_slice(bytes).unwrap();
//! assert_eq!(typed["a"], (1, ByteBuf(b"y".to_vec())));
//! // A pickle that would call `os.system("true")` is refused, and names the opcode.
//! let hostile = b"\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c\x04true\x85R.";
//! let err = pickle::from_slice::<PickleValue>(hostile).unwrap_err();
//! assert!(matches!(err, pickle::PickleError::Refused { opcode: "STACK_GLOBAL", .. }));
//! ```

mod de;
mod ser;
mod value;

#[cfg(test)]
mod tests;

use std::fmt;

pub use value::{ByteBuf, PickleValue};

/// Deepest nesting of containers that is decoded; deeper input is [`PickleError::TooDeep`].
pub const MAX_DEPTH: usize = 128;

/// Objects shared through the memo are copied when they are deserialized; all that a pickle
/// decodes to is capped at this many bytes per byte of input (plus [`EXPANSION_SLACK`]),
/// counting 32 bytes per object plus the length of each string, bytes and integer payload and
/// of each container's items. A plain pickle (nothing shared) needs at most 32 per byte (a
/// list of `None`s); beyond the cap, [`PickleError::TooLarge`].
pub const EXPANSION_FACTOR: usize = 64;

/// What the expansion cap allows besides [`EXPANSION_FACTOR`] times the input (bytes).
pub const EXPANSION_SLACK: usize = 64 << 10;

/// Decoding or encoding a pickle failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The pickle holds an opcode that would import, call or build a Python object (or needs
    /// an out-of-band buffer); nothing of it was run.
    #[error("refused pickle opcode {opcode} (0x{code:02x}) at byte {offset}: it would import, call or build python objects (only data is decoded)")]
    Refused {
        /// The opcode's name in Python's `pickletools` (`"GLOBAL"`, `"REDUCE"`, …).
        opcode: &'static str,
        /// The opcode byte.
        code: u8,
        /// Where it is in the message.
        offset: usize,
    },
    /// An opcode that is not part of the data subset decoded here (such as protocol 0's
    /// escaped `STRING`/`UNICODE`), or not an opcode at all.
    #[error("unsupported pickle opcode 0x{code:02x} at byte {offset}")]
    Unsupported {
        /// The byte.
        code: u8,
        /// Where it is in the message.
        offset: usize,
    },
    /// The pickle declares a protocol newer than 5.
    #[error("unsupported pickle protocol {0}")]
    Protocol(u8),
    /// The message ends before the pickle's `STOP`, or a length field exceeds what remains.
    #[error("truncated pickle")]
    Truncated,
    /// Bytes follow the pickle's `STOP`.
    #[error("{0} bytes after the end of the pickle")]
    TrailingBytes(usize),
    /// The opcodes do not form a valid pickle.
    #[error("malformed pickle at byte {offset}: {reason}")]
    Malformed {
        /// Where the problem was noticed.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Containers nest deeper than [`MAX_DEPTH`].
    #[error("pickle nests deeper than {} levels", MAX_DEPTH)]
    TooDeep,
    /// Shared objects would expand beyond the cap of [`EXPANSION_FACTOR`] bytes per byte of
    /// input.
    #[error(
        "pickle of {input} bytes expands beyond {} bytes per byte of input",
        EXPANSION_FACTOR
    )]
    TooLarge {
        /// The input's length.
        input: usize,
    },
    /// A container contains itself (Python allows it; a Rust value cannot hold it).
    #[error("the pickle holds a recursive structure")]
    Recursive,
    /// An integer does not fit the Rust type (beyond 128 bits, it fits only
    /// [`PickleValue::BigInt`]).
    #[error("integer of {bytes} bytes does not fit the rust type")]
    IntTooLarge {
        /// Its size in bytes (two's complement).
        bytes: usize,
    },
    /// The value does not match the Rust type, or the Rust type cannot be encoded; the message
    /// comes from serde.
    #[error("{0}")]
    Custom(String),
}

impl serde::de::Error for PickleError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        PickleError::Custom(msg.to_string())
    }
}

impl serde::ser::Error for PickleError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        PickleError::Custom(msg.to_string())
    }
}

impl PickleError {
    /// Whether the pickle was refused because it would import or call code.
    pub fn is_refused(&self) -> bool {
        matches!(self, PickleError::Refused { .. })
    }
}

/// Encodes `value` as a pickle (protocol 5) that Python's `pickle.loads` and `conn.recv()`
/// load.
///
/// ```
/// let bytes = processing::transport::pickle::to_vec(&(1u8, "x")).unwrap();
/// assert_eq!(bytes, b"\x80\x05K\x01\x8c\x01x\x86.");
/// ```
pub fn to_vec<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, PickleError> {
    let mut out = Vec::with_capacity(64);
    ser::write(value, &mut out)?;
    Ok(out)
}

/// Appends the pickle of `value` to `out` (what [`to_vec`] returns).
pub(crate) fn write_into<T: serde::Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), PickleError> {
    ser::write(value, out)
}

/// Decodes one pickle (the whole of `bytes`) into `T`, refusing every opcode that would import
/// or call code.
///
/// ```
/// let v: Vec<(i32, Option<String>)> =
///     processing::transport::pickle::from_slice(b"\x80\x04](K\x01N\x86J\xff\xff\xff\xff\x8c\x01z\x86e.").unwrap();
/// assert_eq!(v, [(1, None), (-1, Some("z".to_string()))]);
/// ```
pub fn from_slice<'de, T: serde::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, PickleError> {
    de::from_slice(bytes)
}

/// The opcodes (names as in Python's `pickletools`).
#[allow(dead_code)]
mod op {
    pub(super) const MARK: u8 = b'(';
    pub(super) const STOP: u8 = b'.';
    pub(super) const POP: u8 = b'0';
    pub(super) const POP_MARK: u8 = b'1';
    pub(super) const DUP: u8 = b'2';
    pub(super) const FLOAT: u8 = b'F';
    pub(super) const INT: u8 = b'I';
    pub(super) const BININT: u8 = b'J';
    pub(super) const BININT1: u8 = b'K';
    pub(super) const LONG: u8 = b'L';
    pub(super) const BININT2: u8 = b'M';
    pub(super) const NONE: u8 = b'N';
    pub(super) const PERSID: u8 = b'P';
    pub(super) const BINPERSID: u8 = b'Q';
    pub(super) const REDUCE: u8 = b'R';
    pub(super) const STRING: u8 = b'S';
    pub(super) const BINSTRING: u8 = b'T';
    pub(super) const SHORT_BINSTRING: u8 = b'U';
    pub(super) const UNICODE: u8 = b'V';
    pub(super) const BINUNICODE: u8 = b'X';
    pub(super) const APPEND: u8 = b'a';
    pub(super) const BUILD: u8 = b'b';
    pub(super) const GLOBAL: u8 = b'c';
    pub(super) const DICT: u8 = b'd';
    pub(super) const EMPTY_DICT: u8 = b'}';
    pub(super) const APPENDS: u8 = b'e';
    pub(super) const GET: u8 = b'g';
    pub(super) const BINGET: u8 = b'h';
    pub(super) const INST: u8 = b'i';
    pub(super) const LONG_BINGET: u8 = b'j';
    pub(super) const LIST: u8 = b'l';
    pub(super) const EMPTY_LIST: u8 = b']';
    pub(super) const OBJ: u8 = b'o';
    pub(super) const PUT: u8 = b'p';
    pub(super) const BINPUT: u8 = b'q';
    pub(super) const LONG_BINPUT: u8 = b'r';
    pub(super) const SETITEM: u8 = b's';
    pub(super) const TUPLE: u8 = b't';
    pub(super) const EMPTY_TUPLE: u8 = b')';
    pub(super) const SETITEMS: u8 = b'u';
    pub(super) const BINFLOAT: u8 = b'G';
    pub(super) const PROTO: u8 = 0x80;
    pub(super) const NEWOBJ: u8 = 0x81;
    pub(super) const EXT1: u8 = 0x82;
    pub(super) const EXT2: u8 = 0x83;
    pub(super) const EXT4: u8 = 0x84;
    pub(super) const TUPLE1: u8 = 0x85;
    pub(super) const TUPLE2: u8 = 0x86;
    pub(super) const TUPLE3: u8 = 0x87;
    pub(super) const NEWTRUE: u8 = 0x88;
    pub(super) const NEWFALSE: u8 = 0x89;
    pub(super) const LONG1: u8 = 0x8a;
    pub(super) const LONG4: u8 = 0x8b;
    pub(super) const BINBYTES: u8 = b'B';
    pub(super) const SHORT_BINBYTES: u8 = b'C';
    pub(super) const SHORT_BINUNICODE: u8 = 0x8c;
    pub(super) const BINUNICODE8: u8 = 0x8d;
    pub(super) const BINBYTES8: u8 = 0x8e;
    pub(super) const EMPTY_SET: u8 = 0x8f;
    pub(super) const ADDITEMS: u8 = 0x90;
    pub(super) const FROZENSET: u8 = 0x91;
    pub(super) const NEWOBJ_EX: u8 = 0x92;
    pub(super) const STACK_GLOBAL: u8 = 0x93;
    pub(super) const MEMOIZE: u8 = 0x94;
    pub(super) const FRAME: u8 = 0x95;
    pub(super) const BYTEARRAY8: u8 = 0x96;
    pub(super) const NEXT_BUFFER: u8 = 0x97;
    pub(super) const READONLY_BUFFER: u8 = 0x98;

    /// The name of an opcode that imports, calls or builds objects (or needs out-of-band
    /// data), which the decoder refuses.
    pub(super) fn refused(code: u8) -> Option<&'static str> {
        Some(match code {
            GLOBAL => "GLOBAL",
            STACK_GLOBAL => "STACK_GLOBAL",
            REDUCE => "REDUCE",
            BUILD => "BUILD",
            INST => "INST",
            OBJ => "OBJ",
            NEWOBJ => "NEWOBJ",
            NEWOBJ_EX => "NEWOBJ_EX",
            EXT1 => "EXT1",
            EXT2 => "EXT2",
            EXT4 => "EXT4",
            PERSID => "PERSID",
            BINPERSID => "BINPERSID",
            NEXT_BUFFER => "NEXT_BUFFER",
            READONLY_BUFFER => "READONLY_BUFFER",
            _ => return None,
        })
    }
}

/// Newtype-struct names through which [`PickleValue`] tells this crate's serializer and
/// deserializer what serde's data model cannot say (a set, a bytearray, a big integer, and
/// "give me the node's Python type"). Other serde formats see an ordinary newtype.
pub(crate) mod magic {
    pub(crate) const VALUE: &str = "\0processing::pickle::PickleValue";
    pub(crate) const SET: &str = "\0processing::pickle::set";
    pub(crate) const FROZENSET: &str = "\0processing::pickle::frozenset";
    pub(crate) const BYTEARRAY: &str = "\0processing::pickle::bytearray";
    pub(crate) const BIGINT: &str = "\0processing::pickle::bigint";
}
