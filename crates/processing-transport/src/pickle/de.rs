//! The decoder: a pickle machine over the data opcodes only, building an arena of nodes
//! (containers hold node indexes, so memo references and `DUP` share a node instead of copying
//! it), then a serde `Deserializer` over the arena with depth, cycle and expansion limits.

use std::cell::Cell;
use std::collections::HashMap;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::{magic, op, PickleError, EXPANSION_FACTOR, EXPANSION_SLACK, MAX_DEPTH};

/// The budget's charge for one object, besides its payload (the size of a decoded value).
const OBJECT_COST: usize = 32;

/// One decoded Python object. Strings and bytes borrow the input.
#[derive(Debug)]
enum Node<'a> {
    None,
    Bool(bool),
    Int(i128),
    /// Little-endian two's complement, longer than 16 bytes.
    BigInt(&'a [u8]),
    Float(f64),
    Str(&'a str),
    Bytes(&'a [u8]),
    ByteArray(&'a [u8]),
    List(Vec<u32>),
    Tuple(Vec<u32>),
    Set(Vec<u32>),
    FrozenSet(Vec<u32>),
    Dict(Vec<(u32, u32)>),
}

impl Node<'_> {
    fn is_container(&self) -> bool {
        matches!(
            self,
            Node::List(_) | Node::Tuple(_) | Node::Set(_) | Node::FrozenSet(_) | Node::Dict(_)
        )
    }

    /// What one visit of the node costs against the expansion budget: about what a decoded
    /// value of it occupies (an object's slot plus its payload).
    fn cost(&self) -> usize {
        OBJECT_COST
            + match self {
                Node::BigInt(b) | Node::Bytes(b) | Node::ByteArray(b) => b.len(),
                Node::Str(s) => s.len(),
                Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => v.len(),
                Node::Dict(v) => 2 * v.len(),
                _ => 0,
            }
    }
}

pub(super) fn from_slice<'de, T: de::Deserialize<'de>>(input: &'de [u8]) -> Result<T, PickleError> {
    let (nodes, root) = Machine::new(input).run()?;
    let ctx = Ctx {
        visiting: (0..nodes.len()).map(|_| Cell::new(false)).collect(),
        nodes,
        budget: Cell::new(
            input
                .len()
                .saturating_mul(EXPANSION_FACTOR)
                .saturating_add(EXPANSION_SLACK),
        ),
        input: input.len(),
    };
    T::deserialize(NodeDe {
        ctx: &ctx,
        idx: root,
        depth: 0,
    })
}

/// The pickle virtual machine, restricted to data.
struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    /// Where the current opcode started.
    at: usize,
    nodes: Vec<Node<'a>>,
    stack: Vec<u32>,
    marks: Vec<usize>,
    memo: HashMap<u32, u32>,
    /// Per node: whether Python could hash it (a dict key, a set element). Computed when the
    /// node is made from its elements' flags, so checking a key never walks a structure.
    hashable: Vec<bool>,
}

impl<'a> Machine<'a> {
    fn new(input: &'a [u8]) -> Self {
        Machine {
            input,
            pos: 0,
            at: 0,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            hashable: Vec::new(),
        }
    }

    fn malformed(&self, reason: &'static str) -> PickleError {
        PickleError::Malformed {
            offset: self.at,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if n > self.input.len() - self.pos {
            return Err(PickleError::Truncated);
        }
        let s = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// A length field of `N` bytes (little-endian, unsigned), then that many bytes.
    fn counted<const N: usize>(&mut self) -> Result<&'a [u8], PickleError> {
        let raw = self.array::<N>()?;
        let mut wide = [0u8; 8];
        wide[..N].copy_from_slice(&raw);
        let len = usize::try_from(u64::from_le_bytes(wide)).map_err(|_| PickleError::Truncated)?;
        self.take(len)
    }

    /// A newline-terminated argument (protocol 0 forms), without the newline.
    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.input[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Truncated)?;
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).map_err(|_| self.malformed("argument is not text"))
    }

    fn utf8(&self, b: &'a [u8]) -> Result<&'a str, PickleError> {
        std::str::from_utf8(b).map_err(|_| self.malformed("string is not valid utf-8"))
    }

    fn push(&mut self, node: Node<'a>) -> Result<(), PickleError> {
        let idx =
            u32::try_from(self.nodes.len()).map_err(|_| self.malformed("too many objects"))?;
        let hashable = match &node {
            Node::List(_) | Node::Set(_) | Node::Dict(_) | Node::ByteArray(_) => false,
            Node::Tuple(items) | Node::FrozenSet(items) => {
                items.iter().all(|&i| self.hashable[i as usize])
            }
            _ => true,
        };
        self.hashable.push(hashable);
        self.nodes.push(node);
        self.stack.push(idx);
        Ok(())
    }

    /// Refuses a dict key or set element that Python could not hash (a list, dict, set or
    /// bytearray, or a tuple or frozenset holding one), as Python's own `loads` does.
    fn check_hashable<'i>(
        &self,
        mut items: impl Iterator<Item = &'i u32>,
        reason: &'static str,
    ) -> Result<(), PickleError> {
        if items.all(|&i| self.hashable[i as usize]) {
            Ok(())
        } else {
            Err(self.malformed(reason))
        }
    }

    /// The bottom of the current mark's segment of the stack.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<u32, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        Ok(self.stack.pop().unwrap_or_default())
    }

    fn top(&self) -> Result<u32, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        Ok(self.stack[self.stack.len() - 1])
    }

    fn pop_mark(&mut self) -> Result<Vec<u32>, PickleError> {
        let m = self.marks.pop().ok_or_else(|| self.malformed("no mark"))?;
        Ok(self.stack.split_off(m))
    }

    fn memo_get(&mut self, id: u32) -> Result<(), PickleError> {
        let idx = *self
            .memo
            .get(&id)
            .ok_or_else(|| self.malformed("memo key not found"))?;
        self.stack.push(idx);
        Ok(())
    }

    fn memo_put(&mut self, id: u32) -> Result<(), PickleError> {
        let top = self.top()?;
        self.memo.insert(id, top);
        Ok(())
    }

    fn int(&mut self, v: i128) -> Result<(), PickleError> {
        self.push(Node::Int(v))
    }

    fn long(&mut self, b: &'a [u8]) -> Result<(), PickleError> {
        if b.len() > 16 {
            return self.push(Node::BigInt(b));
        }
        self.int(le_to_i128(b))
    }

    fn run(mut self) -> Result<(Vec<Node<'a>>, u32), PickleError> {
        loop {
            self.at = self.pos;
            let code = self.byte()?;
            if let Some(opcode) = op::refused(code) {
                return Err(PickleError::Refused {
                    opcode,
                    code,
                    offset: self.at,
                });
            }
            match code {
                op::PROTO => {
                    let v = self.byte()?;
                    if v > 5 {
                        return Err(PickleError::Protocol(v));
                    }
                }
                op::FRAME => {
                    let len = u64::from_le_bytes(self.array::<8>()?);
                    if len > (self.input.len() - self.pos) as u64 {
                        return Err(PickleError::Truncated);
                    }
                }
                op::STOP => {
                    let root = self.pop()?;
                    if self.pos != self.input.len() {
                        return Err(PickleError::TrailingBytes(self.input.len() - self.pos));
                    }
                    return Ok((self.nodes, root));
                }
                op::MARK => self.marks.push(self.stack.len()),
                op::POP => {
                    if self.stack.len() > self.floor() {
                        self.stack.pop();
                    } else {
                        self.pop_mark()?;
                    }
                }
                op::POP_MARK => {
                    self.pop_mark()?;
                }
                op::DUP => {
                    let top = self.top()?;
                    self.stack.push(top);
                }
                op::PUT => {
                    let id = self.line()?;
                    let id = id.parse().map_err(|_| self.malformed("bad memo key"))?;
                    self.memo_put(id)?;
                }
                op::BINPUT => {
                    let id = self.byte()?;
                    self.memo_put(id.into())?;
                }
                op::LONG_BINPUT => {
                    let id = u32::from_le_bytes(self.array()?);
                    self.memo_put(id)?;
                }
                op::MEMOIZE => {
                    let id = u32::try_from(self.memo.len())
                        .map_err(|_| self.malformed("memo is full"))?;
                    self.memo_put(id)?;
                }
                op::GET => {
                    let id = self.line()?;
                    let id = id.parse().map_err(|_| self.malformed("bad memo key"))?;
                    self.memo_get(id)?;
                }
                op::BINGET => {
                    let id = self.byte()?;
                    self.memo_get(id.into())?;
                }
                op::LONG_BINGET => {
                    let id = u32::from_le_bytes(self.array()?);
                    self.memo_get(id)?;
                }
                op::NONE => self.push(Node::None)?,
                op::NEWTRUE => self.push(Node::Bool(true))?,
                op::NEWFALSE => self.push(Node::Bool(false))?,
                op::INT => {
                    let line = self.line()?;
                    match line {
                        "00" => self.push(Node::Bool(false))?,
                        "01" => self.push(Node::Bool(true))?,
                        t => {
                            let v = t.parse().map_err(|_| self.malformed("bad INT literal"))?;
                            self.int(v)?;
                        }
                    }
                }
                op::LONG => {
                    let line = self.line()?;
                    let digits = line.strip_suffix('L').unwrap_or(line);
                    let v = digits.parse().map_err(|_| {
                        let unsigned = digits.strip_prefix('-').unwrap_or(digits);
                        if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
                            // Decimal digits beyond 128 bits.
                            PickleError::IntTooLarge {
                                bytes: digits.len() * 5 / 12 + 1,
                            }
                        } else {
                            self.malformed("bad LONG literal")
                        }
                    })?;
                    self.int(v)?;
                }
                op::FLOAT => {
                    let line = self.line()?;
                    let v = line
                        .parse()
                        .map_err(|_| self.malformed("bad FLOAT literal"))?;
                    self.push(Node::Float(v))?;
                }
                op::BINFLOAT => {
                    let v = f64::from_be_bytes(self.array()?);
                    self.push(Node::Float(v))?;
                }
                op::BININT => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.int(v.into())?;
                }
                op::BININT1 => {
                    let v = self.byte()?;
                    self.int(v.into())?;
                }
                op::BININT2 => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.int(v.into())?;
                }
                op::LONG1 => {
                    let b = self.counted::<1>()?;
                    self.long(b)?;
                }
                op::LONG4 => {
                    let n = i32::from_le_bytes(self.array()?);
                    let n = usize::try_from(n).map_err(|_| self.malformed("negative length"))?;
                    let b = self.take(n)?;
                    self.long(b)?;
                }
                op::SHORT_BINBYTES => {
                    let b = self.counted::<1>()?;
                    self.push(Node::Bytes(b))?;
                }
                op::BINBYTES => {
                    let b = self.counted::<4>()?;
                    self.push(Node::Bytes(b))?;
                }
                op::BINBYTES8 => {
                    let b = self.counted::<8>()?;
                    self.push(Node::Bytes(b))?;
                }
                op::BYTEARRAY8 => {
                    let b = self.counted::<8>()?;
                    self.push(Node::ByteArray(b))?;
                }
                op::SHORT_BINSTRING | op::BINSTRING => {
                    // Python 2 `str`: Python 3 decodes it as ASCII by default.
                    let b = if code == op::SHORT_BINSTRING {
                        self.counted::<1>()?
                    } else {
                        let n = i32::from_le_bytes(self.array()?);
                        let n =
                            usize::try_from(n).map_err(|_| self.malformed("negative length"))?;
                        self.take(n)?
                    };
                    if !b.is_ascii() {
                        return Err(self.malformed("python 2 string is not ascii"));
                    }
                    let s = self.utf8(b)?;
                    self.push(Node::Str(s))?;
                }
                op::SHORT_BINUNICODE => {
                    let b = self.counted::<1>()?;
                    let s = self.utf8(b)?;
                    self.push(Node::Str(s))?;
                }
                op::BINUNICODE => {
                    let b = self.counted::<4>()?;
                    let s = self.utf8(b)?;
                    self.push(Node::Str(s))?;
                }
                op::BINUNICODE8 => {
                    let b = self.counted::<8>()?;
                    let s = self.utf8(b)?;
                    self.push(Node::Str(s))?;
                }
                op::EMPTY_TUPLE => self.push(Node::Tuple(Vec::new()))?,
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1 + 1);
                    if self.stack.len() < self.floor() + n {
                        return Err(self.malformed("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Node::Tuple(items))?;
                }
                op::TUPLE => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items))?;
                }
                op::EMPTY_LIST => self.push(Node::List(Vec::new()))?,
                op::LIST => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items))?;
                }
                op::APPEND => {
                    let v = self.pop()?;
                    let list = self.top()?;
                    match &mut self.nodes[list as usize] {
                        Node::List(items) => items.push(v),
                        _ => return Err(self.malformed("APPEND to a non-list")),
                    }
                }
                op::APPENDS => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    match &mut self.nodes[list as usize] {
                        Node::List(l) => l.extend(items),
                        _ => return Err(self.malformed("APPENDS to a non-list")),
                    }
                }
                op::EMPTY_DICT => self.push(Node::Dict(Vec::new()))?,
                op::DICT => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.malformed("odd number of items for a dict"));
                    }
                    self.check_hashable(items.iter().step_by(2), "unhashable dict key")?;
                    let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                    self.push(Node::Dict(pairs))?;
                }
                op::SETITEM => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.check_hashable([k].iter(), "unhashable dict key")?;
                    let dict = self.top()?;
                    match &mut self.nodes[dict as usize] {
                        Node::Dict(d) => d.push((k, v)),
                        _ => return Err(self.malformed("SETITEM on a non-dict")),
                    }
                }
                op::SETITEMS => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.malformed("odd number of items for a dict"));
                    }
                    self.check_hashable(items.iter().step_by(2), "unhashable dict key")?;
                    let dict = self.top()?;
                    match &mut self.nodes[dict as usize] {
                        Node::Dict(d) => d.extend(items.chunks_exact(2).map(|p| (p[0], p[1]))),
                        _ => return Err(self.malformed("SETITEMS on a non-dict")),
                    }
                }
                op::EMPTY_SET => self.push(Node::Set(Vec::new()))?,
                op::ADDITEMS => {
                    let items = self.pop_mark()?;
                    self.check_hashable(items.iter(), "unhashable set element")?;
                    let set = self.top()?;
                    match &mut self.nodes[set as usize] {
                        Node::Set(s) => s.extend(items),
                        _ => return Err(self.malformed("ADDITEMS on a non-set")),
                    }
                }
                op::FROZENSET => {
                    let items = self.pop_mark()?;
                    self.check_hashable(items.iter(), "unhashable set element")?;
                    self.push(Node::FrozenSet(items))?;
                }
                _ => {
                    return Err(PickleError::Unsupported {
                        code,
                        offset: self.at,
                    })
                }
            }
        }
    }
}

/// Sign-extends up to 16 little-endian two's-complement bytes.
fn le_to_i128(b: &[u8]) -> i128 {
    let negative = b.last().is_some_and(|&x| x & 0x80 != 0);
    let mut wide = [if negative { 0xff } else { 0 }; 16];
    wide[..b.len()].copy_from_slice(b);
    i128::from_le_bytes(wide)
}

/// A non-negative integer longer than 16 bytes only by its sign byte(s) (above `i128::MAX`).
fn big_as_u128(b: &[u8]) -> Option<u128> {
    let (low, high) = b.split_at(b.len().min(16));
    if high.iter().any(|&x| x != 0) || low.len() < 16 {
        return None;
    }
    let mut wide = [0u8; 16];
    wide.copy_from_slice(low);
    Some(u128::from_le_bytes(wide))
}

/// What deserializing one pickle shares: the arena and the limits.
struct Ctx<'de> {
    nodes: Vec<Node<'de>>,
    /// Containers being deserialized right now (a second entry is a cycle).
    visiting: Vec<Cell<bool>>,
    /// What is left of the expansion budget.
    budget: Cell<usize>,
    input: usize,
}

/// A deserializer for one node.
#[derive(Clone, Copy)]
struct NodeDe<'c, 'de> {
    ctx: &'c Ctx<'de>,
    idx: u32,
    depth: usize,
}

impl<'c, 'de> NodeDe<'c, 'de> {
    fn node(&self) -> &'c Node<'de> {
        &self.ctx.nodes[self.idx as usize]
    }

    /// Charges the visit of this node against the budget and checks depth and cycles; the
    /// guard clears the cycle mark when the container has been visited.
    fn enter(&self) -> Result<Guard<'c>, PickleError> {
        let node = self.node();
        let left = self
            .ctx
            .budget
            .get()
            .checked_sub(node.cost())
            .ok_or(PickleError::TooLarge {
                input: self.ctx.input,
            })?;
        self.ctx.budget.set(left);
        if !node.is_container() {
            return Ok(Guard(None));
        }
        if self.depth >= MAX_DEPTH {
            return Err(PickleError::TooDeep);
        }
        let flag = &self.ctx.visiting[self.idx as usize];
        if flag.replace(true) {
            return Err(PickleError::Recursive);
        }
        Ok(Guard(Some(flag)))
    }

    fn child(&self, idx: u32) -> NodeDe<'c, 'de> {
        NodeDe {
            ctx: self.ctx,
            idx,
            depth: self.depth + 1,
        }
    }

    fn int_too_large(b: &[u8]) -> PickleError {
        PickleError::IntTooLarge { bytes: b.len() }
    }
}

struct Guard<'c>(Option<&'c Cell<bool>>);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.0 {
            f.set(false);
        }
    }
}

fn visit_int<'de, V: Visitor<'de>>(v: i128, visitor: V) -> Result<V::Value, PickleError> {
    if let Ok(i) = i64::try_from(v) {
        visitor.visit_i64(i)
    } else if let Ok(u) = u64::try_from(v) {
        visitor.visit_u64(u)
    } else if v < 0 {
        visitor.visit_i128(v)
    } else {
        visitor.visit_u128(v as u128)
    }
}

impl<'c, 'de> de::Deserializer<'de> for NodeDe<'c, 'de> {
    type Error = PickleError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PickleError> {
        let _g = self.enter()?;
        match self.node() {
            Node::None => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(*b),
            Node::Int(i) => visit_int(*i, visitor),
            Node::BigInt(b) => match big_as_u128(b) {
                Some(u) => visitor.visit_u128(u),
                None => Err(Self::int_too_large(b)),
            },
            Node::Float(f) => visitor.visit_f64(*f),
            Node::Str(s) => visitor.visit_borrowed_str(s),
            Node::Bytes(b) | Node::ByteArray(b) => visitor.visit_borrowed_bytes(b),
            Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => {
                Seq::visit(self, v, visitor)
            }
            Node::Dict(d) => Map::visit(self, d, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PickleError> {
        match self.node() {
            Node::None => {
                self.enter()?;
                visitor.visit_none()
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PickleError> {
        match self.node() {
            // `Vec<u8>` and friends from `bytes`.
            Node::Bytes(b) | Node::ByteArray(b) => {
                self.enter()?;
                visitor.visit_seq(de::value::SeqDeserializer::new(b.iter().copied()))
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        if name == magic::VALUE {
            let _g = self.enter()?;
            let (kind, content) = match self.node() {
                Node::None => ("None", None),
                Node::Bool(_) => ("Bool", Some(self)),
                Node::Int(_) => ("Int", Some(self)),
                Node::BigInt(_) => ("BigInt", Some(self)),
                Node::Float(_) => ("Float", Some(self)),
                Node::Str(_) => ("Str", Some(self)),
                Node::Bytes(_) => ("Bytes", Some(self)),
                Node::ByteArray(_) => ("ByteArray", Some(self)),
                Node::List(_) => ("List", Some(self)),
                Node::Tuple(_) => ("Tuple", Some(self)),
                Node::Set(_) => ("Set", Some(self)),
                Node::FrozenSet(_) => ("FrozenSet", Some(self)),
                Node::Dict(_) => ("Dict", Some(self)),
            };
            // The node was charged and marked above: its content is read without a second
            // charge (`Content` reads the raw node).
            return visitor.visit_enum(Kind { kind, content });
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        let _g = self.enter()?;
        match self.node() {
            Node::Str(s) => visitor.visit_enum((*s).into_deserializer()),
            Node::Dict(d) if d.len() == 1 => {
                let (k, v) = d[0];
                visitor.visit_enum(Variant {
                    key: self.child(k),
                    value: self.child(v),
                })
            }
            _ => Err(de::Error::custom(
                "expected a str or a one-entry dict for an enum",
            )),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PickleError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct map struct identifier
    }
}

/// A [`PickleValue`](super::PickleValue) asks for the node's Python type: the node as an enum
/// whose variant is the type.
struct Kind<'c, 'de> {
    kind: &'static str,
    content: Option<NodeDe<'c, 'de>>,
}

impl<'c, 'de> de::EnumAccess<'de> for Kind<'c, 'de> {
    type Error = PickleError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self), PickleError> {
        let v = seed.deserialize(self.kind.into_deserializer())?;
        Ok((v, self))
    }
}

impl<'c, 'de> de::VariantAccess<'de> for Kind<'c, 'de> {
    type Error = PickleError;

    fn unit_variant(self) -> Result<(), PickleError> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, PickleError> {
        match self.content {
            Some(de) => seed.deserialize(Content(de)),
            None => Err(de::Error::custom("None has no content")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, PickleError> {
        Err(de::Error::custom("unexpected tuple variant"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, PickleError> {
        Err(de::Error::custom("unexpected struct variant"))
    }
}

/// The content of a node already entered by [`Kind`]: scalars as themselves (a big integer as
/// its bytes), containers as sequences or maps of their children.
struct Content<'c, 'de>(NodeDe<'c, 'de>);

impl<'c, 'de> de::Deserializer<'de> for Content<'c, 'de> {
    type Error = PickleError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PickleError> {
        let de = self.0;
        match de.node() {
            Node::None => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(*b),
            Node::Int(i) => visitor.visit_i128(*i),
            Node::Float(f) => visitor.visit_f64(*f),
            Node::Str(s) => visitor.visit_borrowed_str(s),
            Node::BigInt(b) | Node::Bytes(b) | Node::ByteArray(b) => {
                visitor.visit_borrowed_bytes(b)
            }
            Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => {
                Seq::visit(de, v, visitor)
            }
            Node::Dict(d) => Map::visit(de, d, visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct Seq<'c, 'de, 'n> {
    de: NodeDe<'c, 'de>,
    items: std::slice::Iter<'n, u32>,
}

/// The end of a container's visit: the visitor must have taken every child (`left` is what
/// it left).
fn all_taken(left: usize, expected: &'static str) -> Result<(), PickleError> {
    match left {
        0 => Ok(()),
        n => Err(de::Error::invalid_length(n, &expected)),
    }
}

impl<'c, 'de, 'n> Seq<'c, 'de, 'n> {
    /// Visits the children `items` of `de` as a sequence.
    fn visit<V: Visitor<'de>>(
        de: NodeDe<'c, 'de>,
        items: &'n [u32],
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        let mut seq = Seq {
            de,
            items: items.iter(),
        };
        let out = visitor.visit_seq(&mut seq)?;
        all_taken(seq.items.len(), "fewer items")?;
        Ok(out)
    }
}

impl<'c, 'de> de::SeqAccess<'de> for Seq<'c, 'de, '_> {
    type Error = PickleError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, PickleError> {
        match self.items.next() {
            Some(&i) => seed.deserialize(self.de.child(i)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        // Bounded by the input (each item is at least one opcode), never trusted beyond it.
        Some(self.items.len())
    }
}

struct Map<'c, 'de, 'n> {
    de: NodeDe<'c, 'de>,
    items: std::slice::Iter<'n, (u32, u32)>,
    value: Option<u32>,
}

impl<'c, 'de, 'n> Map<'c, 'de, 'n> {
    /// Visits the entries `items` of `de` as a map.
    fn visit<V: Visitor<'de>>(
        de: NodeDe<'c, 'de>,
        items: &'n [(u32, u32)],
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        let mut map = Map {
            de,
            items: items.iter(),
            value: None,
        };
        let out = visitor.visit_map(&mut map)?;
        all_taken(map.items.len(), "fewer entries")?;
        Ok(out)
    }
}

impl<'c, 'de> de::MapAccess<'de> for Map<'c, 'de, '_> {
    type Error = PickleError;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, PickleError> {
        match self.items.next() {
            Some(&(k, v)) => {
                self.value = Some(v);
                seed.deserialize(self.de.child(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, PickleError> {
        let v = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("value without a key"))?;
        seed.deserialize(self.de.child(v))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// `{variant: value}`, an enum variant with data.
struct Variant<'c, 'de> {
    key: NodeDe<'c, 'de>,
    value: NodeDe<'c, 'de>,
}

impl<'c, 'de> de::EnumAccess<'de> for Variant<'c, 'de> {
    type Error = PickleError;
    type Variant = NodeDe<'c, 'de>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), PickleError> {
        Ok((seed.deserialize(self.key)?, self.value))
    }
}

impl<'c, 'de> de::VariantAccess<'de> for NodeDe<'c, 'de> {
    type Error = PickleError;

    fn unit_variant(self) -> Result<(), PickleError> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, PickleError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}
