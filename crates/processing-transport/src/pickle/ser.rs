//! The encoder: serde values as protocol-5 pickles of plain Python data (no memo, no frames,
//! no globals), which every Python 3.8+ loads.

use serde::ser::{self, Serialize};

use super::{magic, op, PickleError};

pub(super) fn write<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), PickleError> {
    out.extend_from_slice(&[op::PROTO, 5]);
    let mut s = Ser {
        out,
        special: None,
        in_key: false,
    };
    value.serialize(&mut s)?;
    s.out.push(op::STOP);
    Ok(())
}

/// What a magic newtype asked the next sequence or bytes to become.
#[derive(Clone, Copy, PartialEq)]
enum Special {
    Set,
    FrozenSet,
    ByteArray,
    BigInt,
}

struct Ser<'o> {
    out: &'o mut Vec<u8>,
    special: Option<Special>,
    /// Writing a dict key, which Python needs hashable: sequences become tuples, sets
    /// frozensets, bytearrays bytes, and a dict is an error.
    in_key: bool,
}

impl Ser<'_> {
    fn op(&mut self, code: u8) {
        self.out.push(code);
    }

    fn int(&mut self, v: i128) {
        if (0..=0xff).contains(&v) {
            self.out.extend_from_slice(&[op::BININT1, v as u8]);
        } else if (0..=0xffff).contains(&v) {
            self.op(op::BININT2);
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if let Ok(i) = i32::try_from(v) {
            self.op(op::BININT);
            self.out.extend_from_slice(&i.to_le_bytes());
        } else {
            // LONG1 with the shortest two's complement that keeps the sign.
            let bytes = v.to_le_bytes();
            let mut n = 16;
            while n > 1 {
                let top = bytes[n - 1];
                let next_sign = bytes[n - 2] & 0x80;
                if (top == 0 && next_sign == 0) || (top == 0xff && next_sign != 0) {
                    n -= 1;
                } else {
                    break;
                }
            }
            self.out.extend_from_slice(&[op::LONG1, n as u8]);
            self.out.extend_from_slice(&bytes[..n]);
        }
    }

    fn uint(&mut self, v: u128) {
        match i128::try_from(v) {
            Ok(i) => self.int(i),
            Err(_) => {
                // Above i128::MAX: 16 bytes plus a zero sign byte.
                self.out.extend_from_slice(&[op::LONG1, 17]);
                self.out.extend_from_slice(&v.to_le_bytes());
                self.out.push(0);
            }
        }
    }

    fn counted(&mut self, short: u8, long4: Option<u8>, long8: u8, data: &[u8]) {
        let n = data.len();
        if n < 256 {
            self.out.extend_from_slice(&[short, n as u8]);
        } else if let (Some(code), Ok(n)) = (long4, u32::try_from(n)) {
            self.op(code);
            self.out.extend_from_slice(&n.to_le_bytes());
        } else {
            self.op(long8);
            self.out.extend_from_slice(&(n as u64).to_le_bytes());
        }
        self.out.extend_from_slice(data);
    }

    fn str(&mut self, s: &str) {
        self.counted(
            op::SHORT_BINUNICODE,
            Some(op::BINUNICODE),
            op::BINUNICODE8,
            s.as_bytes(),
        );
    }

    /// Opens a sequence; `end` says what closes it.
    fn open_seq(&mut self) -> SeqEnd {
        match self.special.take() {
            Some(Special::Set | Special::FrozenSet) if self.in_key => {
                self.op(op::MARK);
                SeqEnd::Ops(&[op::FROZENSET])
            }
            _ if self.in_key => {
                self.op(op::MARK);
                SeqEnd::Ops(&[op::TUPLE])
            }
            Some(Special::Set) => {
                self.out.extend_from_slice(&[op::EMPTY_SET, op::MARK]);
                SeqEnd::Ops(&[op::ADDITEMS])
            }
            Some(Special::FrozenSet) => {
                self.op(op::MARK);
                SeqEnd::Ops(&[op::FROZENSET])
            }
            _ => {
                self.out.extend_from_slice(&[op::EMPTY_LIST, op::MARK]);
                SeqEnd::Ops(&[op::APPENDS])
            }
        }
    }

    /// Opens a dict (an error inside a dict key: Python's dicts are unhashable).
    fn open_dict(&mut self) -> Result<(), PickleError> {
        self.special = None;
        if self.in_key {
            return Err(ser::Error::custom(
                "a map, struct or enum variant with data cannot be a python dict key",
            ));
        }
        self.op(op::EMPTY_DICT);
        Ok(())
    }

    fn open_tuple(&mut self, len: usize) -> SeqEnd {
        self.special = None;
        match len {
            0 => SeqEnd::Ops(&[op::EMPTY_TUPLE]),
            1..=3 => SeqEnd::Tuple(len),
            _ => {
                self.op(op::MARK);
                SeqEnd::Ops(&[op::TUPLE])
            }
        }
    }
}

/// How a sequence or tuple is closed.
enum SeqEnd {
    Ops(&'static [u8]),
    /// TUPLE1..3 (checked against the number of items written).
    Tuple(usize),
}

struct Compound<'a, 'o> {
    ser: &'a mut Ser<'o>,
    end: SeqEnd,
    written: usize,
}

impl Compound<'_, '_> {
    fn close(self) -> Result<(), PickleError> {
        match self.end {
            SeqEnd::Ops(ops) => self.ser.out.extend_from_slice(ops),
            SeqEnd::Tuple(n) => {
                if n != self.written {
                    return Err(ser::Error::custom("tuple length does not match its items"));
                }
                self.ser.op(op::TUPLE1 + (n as u8) - 1);
            }
        }
        Ok(())
    }

    fn item<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), PickleError> {
        self.written += 1;
        v.serialize(&mut *self.ser)
    }
}

/// The compounds serde fills one element at a time (`$add`): each element is pickled in turn,
/// and `$end` closes the compound.
macro_rules! by_element {
    ($($(#[$doc:meta])* $kind:ident: $add:ident, $end:ident;)*) => {$(
        $(#[$doc])*
        impl ser::$kind for Compound<'_, '_> {
            type Ok = ();
            type Error = PickleError;
            fn $add<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), PickleError> {
                self.item(v)
            }
            fn end(self) -> Result<(), PickleError> {
                self.$end()
            }
        }
    )*};
}

/// The compounds serde fills one named field at a time: each is a `{name: value}` item of the
/// open dict, and `$end` closes the compound.
macro_rules! by_field {
    ($($kind:ident: $end:ident;)*) => {$(
        impl ser::$kind for Compound<'_, '_> {
            type Ok = ();
            type Error = PickleError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), PickleError> {
                self.ser.str(key);
                v.serialize(&mut *self.ser)
            }
            fn end(self) -> Result<(), PickleError> {
                self.$end()
            }
        }
    )*};
}

by_element! {
    SerializeSeq: serialize_element, close;
    SerializeTuple: serialize_element, close;
    SerializeTupleStruct: serialize_field, close;
    /// Variants with data are `{variant: data}`: the dict and the key are open, `end` closes
    /// the data and then the dict.
    SerializeTupleVariant: serialize_field, close_variant;
}

by_field! {
    SerializeStruct: close;
    SerializeStructVariant: close_variant;
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = PickleError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), PickleError> {
        let outer = std::mem::replace(&mut self.ser.in_key, true);
        let r = k.serialize(&mut *self.ser);
        self.ser.in_key = outer;
        r
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), PickleError> {
        v.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), PickleError> {
        self.close()
    }
}

impl Compound<'_, '_> {
    /// Closes the data of a variant (`{variant: data}`), then its dict.
    fn close_variant(self) -> Result<(), PickleError> {
        let Compound { ser, end, written } = self;
        Compound {
            ser: &mut *ser,
            end,
            written,
        }
        .close()?;
        ser.op(op::SETITEM);
        Ok(())
    }
}

/// `serialize_*_variant` of the variants with `len` items of data: `{variant: data}`, the dict
/// and the key opened here, the data serialized as `$data`.
macro_rules! variants_with_data {
    ($($method:ident($len:ident) => $data:ident($arg:expr);)*) => {$(
        fn $method(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            $len: usize,
        ) -> Result<Compound<'a, 'o>, PickleError> {
            self.open_dict()?;
            self.str(variant);
            self.$data($arg)
        }
    )*};
}

/// `serialize_*` of the integer types `$t` that widen losslessly to `i128`.
macro_rules! ints {
    ($($method:ident($t:ty)),*) => {$(
        fn $method(self, v: $t) -> Result<(), PickleError> {
            self.int(v.into());
            Ok(())
        }
    )*};
}

impl<'a, 'o> ser::Serializer for &'a mut Ser<'o> {
    type Ok = ();
    type Error = PickleError;
    type SerializeSeq = Compound<'a, 'o>;
    type SerializeTuple = Compound<'a, 'o>;
    type SerializeTupleStruct = Compound<'a, 'o>;
    type SerializeTupleVariant = Compound<'a, 'o>;
    type SerializeMap = Compound<'a, 'o>;
    type SerializeStruct = Compound<'a, 'o>;
    type SerializeStructVariant = Compound<'a, 'o>;

    fn serialize_bool(self, v: bool) -> Result<(), PickleError> {
        self.op(if v { op::NEWTRUE } else { op::NEWFALSE });
        Ok(())
    }
    ints!(
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64)
    );
    ints!(
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64)
    );
    fn serialize_i128(self, v: i128) -> Result<(), PickleError> {
        self.int(v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), PickleError> {
        self.uint(v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), PickleError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), PickleError> {
        self.op(op::BINFLOAT);
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), PickleError> {
        self.str(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), PickleError> {
        self.str(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), PickleError> {
        match self.special.take() {
            Some(Special::ByteArray) if !self.in_key => {
                self.op(op::BYTEARRAY8);
                self.out.extend_from_slice(&(v.len() as u64).to_le_bytes());
                self.out.extend_from_slice(v);
            }
            Some(Special::BigInt) => match u8::try_from(v.len()) {
                Ok(n) => {
                    self.out.extend_from_slice(&[op::LONG1, n]);
                    self.out.extend_from_slice(v);
                }
                Err(_) => {
                    let n = i32::try_from(v.len())
                        .map_err(|_| ser::Error::custom("integer too large for a pickle"))?;
                    self.op(op::LONG4);
                    self.out.extend_from_slice(&n.to_le_bytes());
                    self.out.extend_from_slice(v);
                }
            },
            _ => self.counted(op::SHORT_BINBYTES, Some(op::BINBYTES), op::BINBYTES8, v),
        }
        Ok(())
    }
    fn serialize_none(self) -> Result<(), PickleError> {
        self.op(op::NONE);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), PickleError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), PickleError> {
        self.op(op::NONE);
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), PickleError> {
        self.op(op::NONE);
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), PickleError> {
        self.str(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<(), PickleError> {
        let special = match name {
            magic::SET => Some(Special::Set),
            magic::FROZENSET => Some(Special::FrozenSet),
            magic::BYTEARRAY => Some(Special::ByteArray),
            magic::BIGINT => Some(Special::BigInt),
            _ => None,
        };
        self.special = special;
        v.serialize(&mut *self)?;
        if self.special.take().is_some() {
            return Err(ser::Error::custom("misused pickle special type"));
        }
        Ok(())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), PickleError> {
        self.open_dict()?;
        self.str(variant);
        v.serialize(&mut *self)?;
        self.op(op::SETITEM);
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, 'o>, PickleError> {
        let end = self.open_seq();
        Ok(Compound {
            ser: self,
            end,
            written: 0,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'o>, PickleError> {
        let end = self.open_tuple(len);
        Ok(Compound {
            ser: self,
            end,
            written: 0,
        })
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'o>, PickleError> {
        self.serialize_tuple(len)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a, 'o>, PickleError> {
        self.open_dict()?;
        self.op(op::MARK);
        Ok(Compound {
            ser: self,
            end: SeqEnd::Ops(&[op::SETITEMS]),
            written: 0,
        })
    }
    fn serialize_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'o>, PickleError> {
        self.serialize_map(Some(len))
    }
    variants_with_data! {
        serialize_tuple_variant(len) => serialize_tuple(len);
        serialize_struct_variant(len) => serialize_map(Some(len));
    }
}
