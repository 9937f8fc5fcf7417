//! [`PickleValue`]: any Python data object, for messages whose type is not known in advance.

use std::fmt;

use serde::de::{
    self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::magic;

/// A Python data object as it came (or goes) over the wire: the dynamic counterpart of a typed
/// message.
///
/// Through this crate's pickle codec every variant survives a round trip to Python and back
/// as the same Python type: a tuple stays a tuple, `bytes` stay `bytes`, a set stays a set, and
/// dict keys of any type keep their type and order. Through other serde formats it degrades to
/// the plain data model (sets and tuples become sequences).
///
/// ```
/// use processing::transport::pickle::{self, PickleValue};
/// let v = PickleValue::Dict(vec![
///     (PickleValue::Int(1), PickleValue::Tuple(vec![PickleValue::None, PickleValue::Bool(true)])),
///     (PickleValue::Str("s".into()), PickleValue::Set(vec![PickleValue::Bytes(b"x".to_vec())])),
/// ]);
/// let bytes = pickle::to_vec(&v).unwrap();
/// assert_eq!(pickle::from_slice::<PickleValue>(&bytes).unwrap(), v);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum PickleValue {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// `int` that fits 128 bits.
    Int(i128),
    /// `int` beyond 128 bits, as little-endian two's complement bytes (the pickle's own form).
    BigInt(Vec<u8>),
    /// `float`.
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `bytearray` (Python pickles it as data only under protocol 5; under protocol 4,
    /// Python 3.12/3.13's default, it is a call and refused).
    ByteArray(Vec<u8>),
    /// `list`.
    List(Vec<PickleValue>),
    /// `tuple`.
    Tuple(Vec<PickleValue>),
    /// `set`.
    Set(Vec<PickleValue>),
    /// `frozenset`.
    FrozenSet(Vec<PickleValue>),
    /// `dict`, in its order.
    Dict(Vec<(PickleValue, PickleValue)>),
}

/// Bytes that serialize as Python `bytes` and deserialize from `bytes` (a plain `Vec<u8>` is a
/// sequence of integers in serde's data model, so a Python `list` of ints).
///
/// ```
/// use processing::transport::pickle::{self, ByteBuf};
/// let bytes = pickle::to_vec(&ByteBuf(b"hi".to_vec())).unwrap();
/// assert_eq!(bytes, b"\x80\x05C\x02hi.");
/// assert_eq!(pickle::from_slice::<ByteBuf>(&bytes).unwrap().0, b"hi");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ByteBuf(pub Vec<u8>);

impl Serialize for ByteBuf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_byte_buf(BytesVisitor).map(ByteBuf)
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        Ok(v.as_bytes().to_vec())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut v = Vec::new();
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(v)
    }
}

/// Serializes its items as a sequence (under a magic newtype for sets).
struct Items<'a>(&'a [PickleValue]);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0)
    }
}

struct RawBytes<'a>(&'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl Serialize for PickleValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        match self {
            PickleValue::None => s.serialize_none(),
            PickleValue::Bool(b) => s.serialize_bool(*b),
            PickleValue::Int(i) => {
                if let Ok(v) = i64::try_from(*i) {
                    s.serialize_i64(v)
                } else if let Ok(v) = u64::try_from(*i) {
                    s.serialize_u64(v)
                } else {
                    s.serialize_i128(*i)
                }
            }
            PickleValue::BigInt(b) => s.serialize_newtype_struct(magic::BIGINT, &RawBytes(b)),
            PickleValue::Float(f) => s.serialize_f64(*f),
            PickleValue::Str(v) => s.serialize_str(v),
            PickleValue::Bytes(b) => s.serialize_bytes(b),
            PickleValue::ByteArray(b) => s.serialize_newtype_struct(magic::BYTEARRAY, &RawBytes(b)),
            PickleValue::List(items) => s.collect_seq(items),
            PickleValue::Tuple(items) => {
                let mut t = s.serialize_tuple(items.len())?;
                for i in items {
                    t.serialize_element(i)?;
                }
                t.end()
            }
            PickleValue::Set(items) => s.serialize_newtype_struct(magic::SET, &Items(items)),
            PickleValue::FrozenSet(items) => {
                s.serialize_newtype_struct(magic::FROZENSET, &Items(items))
            }
            PickleValue::Dict(pairs) => {
                let mut m = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for PickleValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // This crate's pickle decoder answers with the node's Python type (`visit_enum`);
        // other formats see a newtype and give their data model.
        d.deserialize_newtype_struct(magic::VALUE, ValueVisitor)
    }
}

struct ValueVisitor;

/// A dict's entries in order.
struct Pairs(Vec<(PickleValue, PickleValue)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ValueVisitor).and_then(|v| match v {
            PickleValue::Dict(p) => Ok(Pairs(p)),
            _ => Err(de::Error::custom("expected a dict")),
        })
    }
}

/// A big integer's bytes.
struct Raw(Vec<u8>);

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_byte_buf(BytesVisitor).map(Raw)
    }
}

#[derive(serde::Deserialize)]
enum Kind {
    None,
    Bool,
    Int,
    BigInt,
    Float,
    Str,
    Bytes,
    ByteArray,
    List,
    Tuple,
    Set,
    FrozenSet,
    Dict,
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = PickleValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a python data object")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<PickleValue, A::Error> {
        let (kind, v) = data.variant::<Kind>()?;
        Ok(match kind {
            Kind::None => {
                v.unit_variant()?;
                PickleValue::None
            }
            Kind::Bool => PickleValue::Bool(v.newtype_variant()?),
            Kind::Int => PickleValue::Int(v.newtype_variant()?),
            Kind::BigInt => PickleValue::BigInt(v.newtype_variant::<Raw>()?.0),
            Kind::Float => PickleValue::Float(v.newtype_variant()?),
            Kind::Str => PickleValue::Str(v.newtype_variant()?),
            Kind::Bytes => PickleValue::Bytes(v.newtype_variant::<Raw>()?.0),
            Kind::ByteArray => PickleValue::ByteArray(v.newtype_variant::<Raw>()?.0),
            Kind::List => PickleValue::List(v.newtype_variant()?),
            Kind::Tuple => PickleValue::Tuple(v.newtype_variant()?),
            Kind::Set => PickleValue::Set(v.newtype_variant()?),
            Kind::FrozenSet => PickleValue::FrozenSet(v.newtype_variant()?),
            Kind::Dict => PickleValue::Dict(v.newtype_variant::<Pairs>()?.0),
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<PickleValue, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_unit<E: de::Error>(self) -> Result<PickleValue, E> {
        Ok(PickleValue::None)
    }

    fn visit_none<E: de::Error>(self) -> Result<PickleValue, E> {
        Ok(PickleValue::None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<PickleValue, D::Error> {
        PickleValue::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<PickleValue, E> {
        Ok(PickleValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PickleValue, E> {
        Ok(PickleValue::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PickleValue, E> {
        Ok(PickleValue::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<PickleValue, E> {
        Ok(PickleValue::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<PickleValue, E> {
        match i128::try_from(v) {
            Ok(i) => Ok(PickleValue::Int(i)),
            Err(_) => {
                let mut b = v.to_le_bytes().to_vec();
                b.push(0);
                Ok(PickleValue::BigInt(b))
            }
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<PickleValue, E> {
        Ok(PickleValue::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<PickleValue, E> {
        Ok(PickleValue::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<PickleValue, E> {
        Ok(PickleValue::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<PickleValue, E> {
        Ok(PickleValue::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<PickleValue, E> {
        Ok(PickleValue::Bytes(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PickleValue, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(PickleValue::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PickleValue, A::Error> {
        let mut pairs = Vec::new();
        while let Some(kv) = map.next_entry()? {
            pairs.push(kv);
        }
        Ok(PickleValue::Dict(pairs))
    }
}
