//! Typed proxies of the built-in shared objects.
//!
//! Every proxy is `Clone + Send + Serialize + Deserialize` and every call is synchronous: it
//! returns after the server applied it. Reading a value (`get`, `to_vec`, `items`, ...) returns
//! a **copy**: mutating the copy does not write back; write it back with `set`. Proxies stored
//! inside shared containers stay live: reading them back gives a proxy of the same object.

use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::time::Duration;

use processing_core::codec::encode;
use processing_core::BoxError;
use processing_sync::{AcquireError, BarrierError, ConditionError, ReleaseError};
use processing_transport::queue::{
    GetError, GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError, TaskDoneError,
    TryGetError, TryPutError,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::calls::*;
#[cfg(feature = "async")]
use crate::client::AsyncCall;
use crate::client::RawProxy;
use crate::error::ManagerError;
use crate::protocol::Elem;

/// What every proxy type offers: conversion from and to the untyped [`RawProxy`], and the tag
/// that names its kind and element types on the server (checked when a named object is looked
/// up).
pub trait Proxy: Sized {
    /// Wraps a raw proxy (the caller vouches for the object's type).
    fn from_raw(raw: RawProxy) -> Self;
    /// The untyped proxy.
    fn as_raw(&self) -> &RawProxy;
    /// The server-side tag of this proxy's object type, e.g. `list<i32>`.
    fn tag() -> String;
}

/// Matches a reply; any other variant is an answer the request cannot have.
macro_rules! expect {
    ($reply:expr, $name:expr, $($pat:pat => $out:expr),+ $(,)?) => {
        match $reply {
            $($pat => $out,)+
            #[allow(unreachable_patterns)]
            _ => return Err(unexpected_reply($name).into()),
        }
    };
}

/// A manager failure as the cause carried by a `Manager(..)` variant of an operation's error.
fn boxed(e: ManagerError) -> BoxError {
    Box::new(e)
}

/// Python-style range bounds as sent to the server.
fn bounds(range: impl RangeBounds<isize>) -> (Option<i64>, Option<i64>) {
    let start = match range.start_bound() {
        Bound::Included(&s) => Some(s as i64),
        Bound::Excluded(&s) => Some(s as i64 + 1),
        Bound::Unbounded => None,
    };
    let end = match range.end_bound() {
        Bound::Included(&-1) => None,
        Bound::Included(&e) => Some(e as i64 + 1),
        Bound::Excluded(&e) => Some(e as i64),
        Bound::Unbounded => None,
    };
    (start, end)
}

/// A proxy type: the struct around its [`RawProxy`], `Clone`, `Debug`, [`Proxy`] with `tag`;
/// with `Request => Reply`, also its `call` (one request to the object, the server's reply).
macro_rules! proxy_type {
    ($(#[$meta:meta])* $name:ident<$($t:ident),*>, $tag:expr, $request:ident => $reply:ident) => {
        proxy_type!($(#[$meta])* $name<$($t),*>, $tag);

        impl<$($t),*> $name<$($t),*> {
            fn call(&self, request: $request) -> Result<$reply, ManagerError> {
                self.raw.request(&request)
            }
        }
    };
    ($(#[$meta:meta])* $name:ident<$($t:ident),*>, $tag:expr) => {
        $(#[$meta])*
        #[derive(Serialize, Deserialize)]
        #[serde(transparent, bound = "")]
        pub struct $name<$($t),*> {
            raw: RawProxy,
            #[serde(skip)]
            _types: PhantomData<fn() -> ($($t,)*)>,
        }

        impl<$($t),*> Clone for $name<$($t),*> {
            fn clone(&self) -> Self {
                $name { raw: self.raw.clone(), _types: PhantomData }
            }
        }

        impl<$($t),*> std::fmt::Debug for $name<$($t),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.raw).finish()
            }
        }

        impl<$($t),*> Proxy for $name<$($t),*> {
            fn from_raw(raw: RawProxy) -> Self {
                $name { raw, _types: PhantomData }
            }
            fn as_raw(&self) -> &RawProxy {
                &self.raw
            }
            fn tag() -> String {
                $tag
            }
        }
    };
}

fn tn<T: ?Sized>() -> &'static str {
    std::any::type_name::<T>()
}

// ---------------------------------------------------------------------------------------------

proxy_type!(
    /// A shared list (`Manager::list`). Indices are Python-style: negative ones count from the
    /// end. Equality for `index`, `count`, `contains` and `remove` is equality of the values'
    /// encodings (exact for integers, strings and derived types; `-0.0` and `0.0` differ).
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let l = m.list::<i32>().unwrap();
    /// l.extend([3, 1, 2]).unwrap();
    /// l.sort().unwrap();
    /// assert_eq!(l.to_vec().unwrap(), [1, 2, 3]);
    /// assert_eq!(l.slice(-2..).unwrap(), [2, 3]);
    /// ```
    ListProxy<T>,
    format!("list<{}>", tn::<T>()),
    ListRequest => ListReply
);

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    fn done(&self, request: ListRequest) -> Result<(), ManagerError> {
        expect!(self.call(request)?, "list", ListReply::Done => Ok(()))
    }

    /// The element a request answers with (`get`, `pop_at`), decoded.
    fn item(&self, request: ListRequest) -> Result<T, ManagerError> {
        expect!(self.call(request)?, "list", ListReply::Item(e) => Ok(self.raw.value(e)?))
    }

    /// Appends `value`.
    pub fn push(&self, value: T) -> Result<(), ManagerError> {
        let item = self.raw.elem(&value)?;
        self.done(ListRequest::Push { item })
    }

    /// Appends every value of `values` (one call).
    pub fn extend(&self, values: impl IntoIterator<Item = T>) -> Result<(), ManagerError> {
        let items = values
            .into_iter()
            .map(|v| self.raw.elem(&v))
            .collect::<Result<Vec<Elem>, _>>()?;
        self.done(ListRequest::Extend { items })
    }

    /// Inserts `value` before `index` (clamped to the list, as Python's `insert`).
    pub fn insert(&self, index: isize, value: T) -> Result<(), ManagerError> {
        let item = self.raw.elem(&value)?;
        self.done(ListRequest::Insert {
            index: index as i64,
            item,
        })
    }

    /// A copy of the element at `index`.
    pub fn get(&self, index: isize) -> Result<T, ManagerError> {
        self.item(ListRequest::Get {
            index: index as i64,
        })
    }

    /// Replaces the element at `index`.
    pub fn set(&self, index: isize, value: T) -> Result<(), ManagerError> {
        let item = self.raw.elem(&value)?;
        self.done(ListRequest::Set {
            index: index as i64,
            item,
        })
    }

    /// Copies of the elements in `range` (Python slice semantics, clamped).
    pub fn slice(&self, range: impl RangeBounds<isize>) -> Result<Vec<T>, ManagerError> {
        let (start, end) = bounds(range);
        let request = ListRequest::Slice { start, end };
        expect!(self.call(request)?, "list", ListReply::Items(es) => Ok(self.raw.values(es)?))
    }

    /// Removes and returns the last element, `None` when the list is empty.
    ///
    /// Nothing is lost to a client that dies during the call: if the reply cannot be delivered
    /// (the calling process was killed, its connection closed), the server puts the element
    /// back — at the index it had, counted from the front, or at the end if the list is now
    /// shorter than that — with its embedded proxies' references. (The index is not adjusted
    /// for elements inserted or removed before it meanwhile.)
    pub fn pop(&self) -> Result<Option<T>, ManagerError> {
        expect!(self.call(ListRequest::Pop { index: None })?, "list",
            ListReply::Item(e) => Ok(Some(self.raw.value(e)?)),
            ListReply::Empty => Ok(None),
        )
    }

    /// Removes and returns the element at `index`. An element whose reply cannot be delivered
    /// goes back as for [`ListProxy::pop`]: at the index it was taken from, or at the end if
    /// the list is now shorter.
    pub fn pop_at(&self, index: isize) -> Result<T, ManagerError> {
        self.item(ListRequest::Pop {
            index: Some(index as i64),
        })
    }

    /// Removes the first element equal to `value`; `false` when there is none.
    pub fn remove(&self, value: &T) -> Result<bool, ManagerError> {
        let request = ListRequest::Remove {
            value: encode(value)?,
        };
        expect!(self.call(request)?, "list", ListReply::Found(found) => Ok(found))
    }

    /// The index of the first element equal to `value`.
    pub fn index(&self, value: &T) -> Result<Option<usize>, ManagerError> {
        let request = ListRequest::Index {
            value: encode(value)?,
        };
        expect!(self.call(request)?, "list", ListReply::Position(at) => Ok(at.map(|i| i as usize)))
    }

    /// How many elements equal `value`.
    pub fn count(&self, value: &T) -> Result<usize, ManagerError> {
        let request = ListRequest::Count {
            value: encode(value)?,
        };
        expect!(self.call(request)?, "list", ListReply::Count(n) => Ok(n as usize))
    }

    /// Whether an element equals `value`.
    pub fn contains(&self, value: &T) -> Result<bool, ManagerError> {
        let request = ListRequest::Contains {
            value: encode(value)?,
        };
        expect!(self.call(request)?, "list", ListReply::Found(found) => Ok(found))
    }

    /// Sorts the list (stable).
    ///
    /// The order is computed here, with `T`'s own `Ord`, and applied on the server as a
    /// permutation guarded by the list's version: if another client changed the list
    /// meanwhile, the sort starts over. The server needs no code of `T`.
    pub fn sort(&self) -> Result<(), ManagerError>
    where
        T: Ord,
    {
        self.sort_by(T::cmp)
    }

    /// Sorts the list with a comparator (stable), as [`ListProxy::sort`].
    pub fn sort_by(
        &self,
        mut compare: impl FnMut(&T, &T) -> std::cmp::Ordering,
    ) -> Result<(), ManagerError> {
        loop {
            let (version, es) = expect!(self.call(ListRequest::Snapshot)?, "list",
                ListReply::Snapshot { version, items } => (version, items));
            let values: Vec<T> = self.raw.values(es)?;
            let mut order: Vec<u32> = (0..values.len() as u32).collect();
            order.sort_by(|&a, &b| compare(&values[a as usize], &values[b as usize]));
            expect!(self.call(ListRequest::Permute { version, order })?, "list",
                ListReply::Done => return Ok(()),
                ListReply::Conflict => continue,
            )
        }
    }

    /// Reverses the list in place.
    pub fn reverse(&self) -> Result<(), ManagerError> {
        self.done(ListRequest::Reverse)
    }

    /// The number of elements.
    pub fn len(&self) -> Result<usize, ManagerError> {
        expect!(self.call(ListRequest::Len)?, "list", ListReply::Count(n) => Ok(n as usize))
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        self.len().map(|n| n == 0)
    }

    /// Removes every element.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.done(ListRequest::Clear)
    }

    /// A copy of the whole list.
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        expect!(self.call(ListRequest::ToVec)?, "list", ListReply::Items(es) => Ok(self.raw.values(es)?))
    }
}

// ---------------------------------------------------------------------------------------------

proxy_type!(
    /// A shared dictionary (`Manager::dict`), in insertion order. Keys compare by their
    /// encoding, so the server needs no code of `K`.
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let d = m.dict::<String, i32>().unwrap();
    /// d.insert("a".into(), 1).unwrap();
    /// assert_eq!(d.get(&"a".into()).unwrap(), Some(1));
    /// assert_eq!(d.items().unwrap(), [("a".to_string(), 1)]);
    /// ```
    DictProxy<K, V>,
    format!("dict<{}, {}>", tn::<K>(), tn::<V>()),
    DictRequest => DictReply
);

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    fn value_reply(&self, request: DictRequest) -> Result<Option<V>, ManagerError> {
        expect!(self.call(request)?, "dict",
            DictReply::Value(e) => Ok(e.map(|e| self.raw.value(e)).transpose()?))
    }

    /// A copy of the value for `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>, ManagerError> {
        self.value_reply(DictRequest::Get { key: encode(key)? })
    }

    /// Sets `key` to `value`; returns the previous value.
    ///
    /// A write: if the reply cannot be delivered (the caller died), the write stands and the
    /// previous value is dropped, its references released, as if the caller had dropped it.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>, ManagerError> {
        let (key, value) = (self.raw.elem(&key)?, self.raw.elem(&value)?);
        self.value_reply(DictRequest::Insert { key, value })
    }

    /// Removes `key`; returns its value.
    ///
    /// Nothing is lost to a client that dies during the call: if the reply cannot be delivered
    /// (the calling process was killed, its connection closed), the server puts the value back
    /// under its key, at its place in insertion order, as if the call had not happened —
    /// unless the key was set again meanwhile: then the newer value wins, and the removed one
    /// is dropped with its references released.
    pub fn remove(&self, key: &K) -> Result<Option<V>, ManagerError> {
        self.value_reply(DictRequest::Remove { key: encode(key)? })
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> Result<bool, ManagerError> {
        let request = DictRequest::ContainsKey { key: encode(key)? };
        expect!(self.call(request)?, "dict", DictReply::Found(found) => Ok(found))
    }

    /// Copies of the keys.
    pub fn keys(&self) -> Result<Vec<K>, ManagerError> {
        expect!(self.call(DictRequest::Keys)?, "dict", DictReply::Elems(es) => Ok(self.raw.values(es)?))
    }

    /// Copies of the values.
    pub fn values(&self) -> Result<Vec<V>, ManagerError> {
        expect!(self.call(DictRequest::Values)?, "dict", DictReply::Elems(es) => Ok(self.raw.values(es)?))
    }

    /// Copies of the entries.
    pub fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
        let es = expect!(self.call(DictRequest::Items)?, "dict", DictReply::Items(es) => es);
        es.into_iter()
            .map(|(k, v)| Ok((self.raw.value(k)?, self.raw.value(v)?)))
            .collect()
    }

    /// The number of entries.
    pub fn len(&self) -> Result<usize, ManagerError> {
        expect!(self.call(DictRequest::Len)?, "dict", DictReply::Len(n) => Ok(n as usize))
    }

    /// Whether the dictionary is empty.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        self.len().map(|n| n == 0)
    }

    /// Removes every entry.
    pub fn clear(&self) -> Result<(), ManagerError> {
        expect!(self.call(DictRequest::Clear)?, "dict", DictReply::Done => Ok(()))
    }

    /// Inserts every entry of `items` (one call).
    pub fn update(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<(), ManagerError> {
        let items = items
            .into_iter()
            .map(|(k, v)| Ok((self.raw.elem(&k)?, self.raw.elem(&v)?)))
            .collect::<Result<Vec<_>, ManagerError>>()?;
        expect!(self.call(DictRequest::Update { items })?, "dict", DictReply::Done => Ok(()))
    }
}

// ---------------------------------------------------------------------------------------------

proxy_type!(
    /// A namespace of named attributes, each any serde value (`Manager::namespace`).
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let ns = m.namespace().unwrap();
    /// ns.set("x", &10).unwrap();
    /// ns.set("name", "abc").unwrap();
    /// assert_eq!(ns.get::<i32>("x").unwrap(), Some(10));
    /// assert_eq!(ns.names().unwrap(), ["name", "x"]);
    /// ```
    NamespaceProxy<>,
    "namespace".to_string(),
    NamespaceRequest => NamespaceReply
);

impl NamespaceProxy {
    /// A copy of the attribute `name`, decoded as `T`.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ManagerError> {
        let request = NamespaceRequest::Get { name: name.into() };
        expect!(self.call(request)?, "namespace",
            NamespaceReply::Value(e) => Ok(e.map(|e| self.raw.value(e)).transpose()?))
    }

    /// Sets the attribute `name`.
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), ManagerError> {
        let value = self.raw.elem(value)?;
        let request = NamespaceRequest::Set {
            name: name.into(),
            value,
        };
        expect!(self.call(request)?, "namespace", NamespaceReply::Done => Ok(()))
    }

    /// Removes the attribute `name`; whether it existed. If the reply cannot be delivered (the
    /// caller died), the value goes back under `name` unless `name` was set again meanwhile
    /// (then the newer value wins), as for [`DictProxy::remove`].
    pub fn remove(&self, name: &str) -> Result<bool, ManagerError> {
        let request = NamespaceRequest::Remove { name: name.into() };
        expect!(self.call(request)?, "namespace",
            NamespaceReply::Value(Some(e)) => {
                self.raw.discard(e);
                Ok(true)
            },
            NamespaceReply::Value(None) => Ok(false),
        )
    }

    /// Whether the attribute `name` exists.
    pub fn contains(&self, name: &str) -> Result<bool, ManagerError> {
        let request = NamespaceRequest::Contains { name: name.into() };
        expect!(self.call(request)?, "namespace", NamespaceReply::Found(found) => Ok(found))
    }

    /// The attribute names, sorted.
    pub fn names(&self) -> Result<Vec<String>, ManagerError> {
        expect!(self.call(NamespaceRequest::Names)?, "namespace", NamespaceReply::Names(n) => Ok(n))
    }
}

// ---------------------------------------------------------------------------------------------

proxy_type!(
    /// One shared value (`Manager::value`). `get` returns a copy.
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let v = m.value(vec![1, 2]).unwrap();
    /// let mut copy = v.get().unwrap();
    /// copy.push(3); // a copy: the shared value is unchanged
    /// assert_eq!(v.get().unwrap(), [1, 2]);
    /// v.set(copy).unwrap();
    /// assert_eq!(v.get().unwrap(), [1, 2, 3]);
    /// ```
    ValueProxy<T>,
    format!("value<{}>", tn::<T>()),
    ValueRequest => ValueReply
);

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// A copy of the value.
    pub fn get(&self) -> Result<T, ManagerError> {
        expect!(self.call(ValueRequest::Get)?, "value", ValueReply::Value(e) => Ok(self.raw.value(e)?))
    }

    /// Replaces the value.
    pub fn set(&self, value: T) -> Result<(), ManagerError> {
        let value = self.raw.elem(&value)?;
        expect!(self.call(ValueRequest::Set { value })?, "value", ValueReply::Done => Ok(()))
    }

    /// Replaces the value and returns the previous one (atomically).
    ///
    /// Nothing is lost to a client that dies during the call: if the reply cannot be delivered
    /// (the calling process was killed, its connection closed), the server undoes the swap —
    /// the previous value back, the new one dropped — unless the value was written again
    /// meanwhile: then the newer value wins, and the previous one is dropped with its
    /// references released.
    pub fn swap(&self, value: T) -> Result<T, ManagerError> {
        let value = self.raw.elem(&value)?;
        expect!(self.call(ValueRequest::Swap { value })?, "value",
            ValueReply::Value(old) => Ok(self.raw.value(old)?))
    }
}

proxy_type!(
    /// A fixed-length shared array (`Manager::array`).
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let a = m.array(vec![0u8; 4]).unwrap();
    /// a.set(-1, 9).unwrap();
    /// assert_eq!(a.to_vec().unwrap(), [0, 0, 0, 9]);
    /// ```
    ArrayProxy<T>,
    format!("array<{}>", tn::<T>()),
    ArrayRequest => ArrayReply
);

impl<T: Serialize + DeserializeOwned> ArrayProxy<T> {
    /// A copy of the element at `index`.
    pub fn get(&self, index: isize) -> Result<T, ManagerError> {
        let request = ArrayRequest::Get {
            index: index as i64,
        };
        expect!(self.call(request)?, "array", ArrayReply::Item(e) => Ok(self.raw.value(e)?))
    }

    /// Replaces the element at `index`.
    pub fn set(&self, index: isize, value: T) -> Result<(), ManagerError> {
        let item = self.raw.elem(&value)?;
        let request = ArrayRequest::Set {
            index: index as i64,
            item,
        };
        expect!(self.call(request)?, "array", ArrayReply::Done => Ok(()))
    }

    /// The length.
    pub fn len(&self) -> Result<usize, ManagerError> {
        expect!(self.call(ArrayRequest::Len)?, "array", ArrayReply::Len(n) => Ok(n as usize))
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        self.len().map(|n| n == 0)
    }

    /// A copy of every element.
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        expect!(self.call(ArrayRequest::ToVec)?, "array", ArrayReply::Items(es) => Ok(self.raw.values(es)?))
    }
}

// ---------------------------------------------------------------------------------------------

macro_rules! queue_methods {
    ($name:expr) => {
        /// Puts `value`. A failure every put shares (closed, not encodable, the manager's)
        /// is `Err(Err(..))`; any other reply (`Full`, `Timeout`) is `Err(Ok(..))`, with the
        /// item, for the method to map.
        fn send_put(
            &self,
            value: T,
            wait: Wait,
        ) -> Result<(), Result<(QueueReply, T), PutError<T>>> {
            let item = match self.raw.elem(&value) {
                Ok(item) => item,
                Err(e) => return Err(Err(PutError::Encode(value, e))),
            };
            match self.call(QueueRequest::Put { item, wait }) {
                Ok(QueueReply::Done) => Ok(()),
                Ok(QueueReply::Closed) => Err(Err(PutError::Closed(value))),
                Ok(other) => Err(Ok((other, value))),
                Err(e) => Err(Err(PutError::Manager(value, boxed(e)))),
            }
        }

        fn send_get(&self, wait: Wait) -> Result<Option<T>, Result<QueueReply, GetError>> {
            match self.call(QueueRequest::Get { wait }) {
                Ok(QueueReply::Item(e)) => {
                    self.raw.value(e).map(Some).map_err(|e| Err(GetError::Decode(e)))
                }
                Ok(QueueReply::Closed) => Err(Err(GetError::Closed)),
                Ok(other) => Err(Ok(other)),
                Err(e) => Err(Err(GetError::Manager(boxed(e)))),
            }
        }

        /// Puts `value`, waiting for room in a bounded queue. On failure the item comes back
        /// inside the error (`Closed`, `Encode`, or `Manager` when the manager failed).
        pub fn put(&self, value: T) -> Result<(), PutError<T>> {
            match self.send_put(value, Wait::Forever) {
                Ok(()) => Ok(()),
                Err(Ok((_, value))) => {
                    Err(PutError::Manager(value, boxed(unexpected_reply($name))))
                }
                Err(Err(e)) => Err(e),
            }
        }

        /// Puts `value` if there is room now; `Full` with the item otherwise.
        pub fn try_put(&self, value: T) -> Result<(), TryPutError<T>> {
            match self.send_put(value, Wait::No) {
                Ok(()) => Ok(()),
                Err(Ok((QueueReply::Full, value))) => Err(TryPutError::Full(value)),
                Err(Ok((_, value))) => {
                    Err(TryPutError::Manager(value, boxed(unexpected_reply($name))))
                }
                Err(Err(e)) => Err(e.into()),
            }
        }

        /// Puts `value`, waiting at most `timeout` for room (`Duration::MAX`: for ever);
        /// `Timeout` with the item when it passed.
        pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
            match self.send_put(value, Wait::timeout(timeout)) {
                Ok(()) => Ok(()),
                Err(Ok((QueueReply::Timeout, value))) => Err(PutTimeoutError::Timeout(value)),
                Err(Ok((_, value))) => {
                    Err(PutTimeoutError::Manager(value, boxed(unexpected_reply($name))))
                }
                Err(Err(e)) => Err(e.into()),
            }
        }

        /// Takes the oldest item, waiting for one; `Closed` once the queue is closed and
        /// drained. An item whose reply cannot be delivered (the calling process was killed
        /// or its connection closed while the get waited) goes back at the head of the queue:
        /// it is not lost (this holds for every get of the queue).
        pub fn get(&self) -> Result<T, GetError> {
            match self.send_get(Wait::Forever) {
                Ok(Some(item)) => Ok(item),
                Ok(None) | Err(Ok(_)) => Err(GetError::Manager(boxed(unexpected_reply($name)))),
                Err(Err(e)) => Err(e),
            }
        }

        /// Takes the oldest item if there is one now; `Empty` otherwise.
        pub fn try_get(&self) -> Result<T, TryGetError> {
            match self.send_get(Wait::No) {
                Ok(Some(item)) => Ok(item),
                Err(Ok(QueueReply::Empty)) => Err(TryGetError::Empty),
                Ok(None) | Err(Ok(_)) => Err(TryGetError::Manager(boxed(unexpected_reply($name)))),
                Err(Err(e)) => Err(e.into()),
            }
        }

        /// Takes the oldest item, waiting at most `timeout` (`Duration::MAX`: for ever);
        /// `Timeout` when none came.
        pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
            match self.send_get(Wait::timeout(timeout)) {
                Ok(Some(item)) => Ok(item),
                Err(Ok(QueueReply::Timeout)) => Err(GetTimeoutError::Timeout),
                Ok(None) | Err(Ok(_)) => {
                    Err(GetTimeoutError::Manager(boxed(unexpected_reply($name))))
                }
                Err(Err(e)) => Err(e.into()),
            }
        }

        /// Awaits (on `call`'s connection) until a put (`put`) or a get would not wait.
        #[cfg(feature = "async")]
        async fn await_ready(&self, call: &mut AsyncCall, put: bool) -> Result<(), ManagerError> {
            let request = QueueRequest::AwaitReady {
                put,
                wait: Wait::Forever,
            };
            expect!(self.raw.request_async(call, &request).await?, $name,
                QueueReply::Flag(_) => Ok(()))
        }

        #[cfg(feature = "async")]
        /// Awaits room, then puts `value` (feature `async`): [`put`](Self::put) without a
        /// blocked thread, with its errors. The wait runs on a connection of its own, awaited
        /// through the reactor; the put itself is a call that does not wait. Cancellation safe:
        /// dropping the future before it completes leaves the item not put.
        pub async fn put_async(&self, value: T) -> Result<(), PutError<T>> {
            let mut call = AsyncCall::default();
            let mut value = value;
            loop {
                value = match self.send_put(value, Wait::No) {
                    Ok(()) => return Ok(()),
                    Err(Ok((QueueReply::Full, value))) => value,
                    Err(Ok((_, value))) => {
                        return Err(PutError::Manager(value, boxed(unexpected_reply($name))))
                    }
                    Err(Err(e)) => return Err(e),
                };
                if let Err(e) = self.await_ready(&mut call, true).await {
                    return Err(PutError::Manager(value, boxed(e)));
                }
            }
        }

        #[cfg(feature = "async")]
        /// Awaits an item and takes it (feature `async`): [`get`](Self::get) without a
        /// blocked thread, with its errors. The wait runs on a connection of its own, awaited
        /// through the reactor, and takes nothing; the item is then taken by a call that does
        /// not wait. Cancellation safe: dropping the future takes no item.
        ///
        /// ```
        /// # #[cfg(feature = "async")] {
        /// let m = processing_manager::Manager::start_in_thread().unwrap();
        /// let q = m.queue::<u32>().unwrap();
        /// processing_core::aio::block_on(q.put_async(7)).unwrap();
        /// assert_eq!(processing_core::aio::block_on(q.get_async()).unwrap(), 7);
        /// # }
        /// ```
        pub async fn get_async(&self) -> Result<T, GetError> {
            let mut call = AsyncCall::default();
            loop {
                match self.send_get(Wait::No) {
                    Ok(Some(item)) => return Ok(item),
                    Err(Ok(QueueReply::Empty)) => {}
                    Ok(None) | Err(Ok(_)) => {
                        return Err(GetError::Manager(boxed(unexpected_reply($name))))
                    }
                    Err(Err(e)) => return Err(e),
                }
                self.await_ready(&mut call, false)
                    .await
                    .map_err(|e| GetError::Manager(boxed(e)))?;
            }
        }

        /// The number of items.
        pub fn len(&self) -> Result<usize, ManagerError> {
            expect!(self.call(QueueRequest::Len)?, $name, QueueReply::Len(n) => Ok(n as usize))
        }

        /// Whether the queue is empty.
        pub fn is_empty(&self) -> Result<bool, ManagerError> {
            expect!(self.call(QueueRequest::IsEmpty)?, $name, QueueReply::Flag(b) => Ok(b))
        }

        /// Whether a bounded queue is full.
        pub fn is_full(&self) -> Result<bool, ManagerError> {
            expect!(self.call(QueueRequest::IsFull)?, $name, QueueReply::Flag(b) => Ok(b))
        }

        /// Closes the queue: later puts fail with `Closed`; gets take what is left, then fail
        /// with `Closed`. Blocked callers wake.
        pub fn close(&self) -> Result<(), ManagerError> {
            expect!(self.call(QueueRequest::Close)?, $name, QueueReply::Done => Ok(()))
        }

        /// Whether the queue was closed.
        pub fn is_closed(&self) -> Result<bool, ManagerError> {
            expect!(self.call(QueueRequest::IsClosed)?, $name, QueueReply::Flag(b) => Ok(b))
        }
    };
}

proxy_type!(
    /// A shared FIFO queue (`Manager::queue`, `Manager::bounded_queue`).
    ///
    /// Its operations have the shapes of `processing::Queue`'s, with the same error types: a
    /// failed put hands the item back; the manager's own failure is the `Manager` variant,
    /// whose source is the [`ManagerError`].
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let q = m.bounded_queue::<String>(1).unwrap();
    /// q.put("job".into()).unwrap();
    /// let e = q.try_put("another".into()).unwrap_err();
    /// assert!(e.is_full());
    /// assert_eq!(e.into_inner(), "another");
    /// assert_eq!(q.get().unwrap(), "job");
    /// assert!(q.try_get().unwrap_err().is_empty());
    /// ```
    QueueProxy<T>,
    format!("queue<{}>", tn::<T>()),
    QueueRequest => QueueReply
);

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    queue_methods!("queue");
}

proxy_type!(
    /// A queue whose consumers confirm each item with `task_done`, and whose `join` waits
    /// until every item put has been confirmed (`Manager::joinable_queue`).
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let q = m.joinable_queue::<u32>().unwrap();
    /// q.put(1).unwrap();
    /// assert_eq!(q.get().unwrap(), 1);
    /// q.task_done().unwrap();
    /// q.join().unwrap();
    /// assert!(q.task_done().unwrap_err().is_too_many());
    /// ```
    JoinableQueueProxy<T>,
    format!("joinable_queue<{}>", tn::<T>()),
    QueueRequest => QueueReply
);

impl<T: Serialize + DeserializeOwned> JoinableQueueProxy<T> {
    queue_methods!("joinable queue");

    /// Marks one item taken with `get` as processed; `TooMany` when every item put already
    /// was.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        match self.call(QueueRequest::TaskDone) {
            Ok(QueueReply::Done) => Ok(()),
            Ok(QueueReply::TooMany) => Err(TaskDoneError::TooMany),
            Ok(_) => Err(TaskDoneError::Manager(boxed(unexpected_reply(
                "joinable queue",
            )))),
            Err(e) => Err(TaskDoneError::Manager(boxed(e))),
        }
    }

    /// Waits until every item put has been marked done.
    pub fn join(&self) -> Result<(), ManagerError> {
        expect!(self.call(QueueRequest::Join { wait: Wait::Forever })?, "joinable queue",
            QueueReply::Done => Ok(()))
    }

    /// [`JoinableQueueProxy::join`] awaited (feature `async`): the wait runs on a connection
    /// of its own, awaited through the reactor. Cancellation safe (it takes nothing).
    #[cfg(feature = "async")]
    pub async fn join_async(&self) -> Result<(), ManagerError> {
        let request = QueueRequest::Join {
            wait: Wait::Forever,
        };
        expect!(self.raw.request_async_alone(&request).await?, "joinable queue",
            QueueReply::Done => Ok(()))
    }

    /// [`JoinableQueueProxy::join`] for at most `timeout` (`Duration::MAX`: for ever);
    /// `Timeout` when some item is still not done.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        let request = QueueRequest::Join {
            wait: Wait::timeout(timeout),
        };
        match self.call(request) {
            Ok(QueueReply::Done) => Ok(()),
            Ok(QueueReply::Timeout) => Err(JoinTimeoutError::Timeout),
            Ok(_) => Err(JoinTimeoutError::Manager(boxed(unexpected_reply(
                "joinable queue",
            )))),
            Err(e) => Err(JoinTimeoutError::Manager(boxed(e))),
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// Which object a guard releases, and how.
#[derive(Debug, Clone, Copy)]
enum Holder {
    Lock,
    Semaphore,
    Condition,
}

fn refused(r: Refused) -> ReleaseError {
    match r {
        Refused::NotLocked => ReleaseError::NotLocked,
        Refused::NotOwner => ReleaseError::NotOwner,
        Refused::Bound => ReleaseError::Bound,
        Refused::Overflow => ReleaseError::Overflow,
    }
}

/// Sends one release of `holder`'s kind for the object of `raw`.
fn release(raw: &RawProxy, holder: Holder, n: u64) -> Result<(), ReleaseError> {
    let manager = |e: ManagerError| ReleaseError::Manager(boxed(e));
    let unexpected = |name| ReleaseError::Manager(boxed(unexpected_reply(name)));
    match holder {
        Holder::Lock => match raw.request(&LockRequest::Release).map_err(manager)? {
            LockReply::Released => Ok(()),
            LockReply::Refused(r) => Err(refused(r)),
            _ => Err(unexpected("lock")),
        },
        Holder::Semaphore => {
            match raw
                .request(&SemaphoreRequest::Release { n })
                .map_err(manager)?
            {
                SemaphoreReply::Released => Ok(()),
                SemaphoreReply::Refused(r) => Err(refused(r)),
                _ => Err(unexpected("semaphore")),
            }
        }
        Holder::Condition => match raw.request(&ConditionRequest::Release).map_err(manager)? {
            ConditionReply::Released => Ok(()),
            ConditionReply::Refused(r) => Err(refused(r)),
            _ => Err(unexpected("condition")),
        },
    }
}

/// Holds a lock, a semaphore unit or a condition's lock acquired through a proxy; releases it
/// through the manager when dropped (a failure to release on drop is ignored: use
/// [`ProxyGuard::release`] to see it). If the holding client dies, the server releases its
/// locks (not semaphore units, which have no owner).
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct ProxyGuard<'a> {
    raw: &'a RawProxy,
    holder: Holder,
    armed: bool,
}

impl ProxyGuard<'_> {
    /// Releases now and reports the outcome.
    pub fn release(mut self) -> Result<(), ReleaseError> {
        self.armed = false;
        release(self.raw, self.holder, 1)
    }

    /// Keeps the lock held without a guard (release it later with the proxy's `release`).
    pub fn forget(mut self) {
        self.armed = false;
    }
}

impl Drop for ProxyGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = release(self.raw, self.holder, 1);
        }
    }
}

type Acquire<'a> = Result<ProxyGuard<'a>, AcquireError<ProxyGuard<'a>>>;

/// The acquire family of a lock-like proxy (lock, reentrant lock, semaphore, condition's lock)
/// and its `release`. `acquire_async`: non-waiting acquires on the thread's connection, and
/// between them an awaited wait (`$await`, answered `$free`, on a connection of its own) until
/// the object is free, which takes nothing.
macro_rules! lock_methods {
    ($request:ident, $reply:ident, $holder:ident, $await:ident, $free:ident, $name:expr) => {
        fn acquire_with(&self, wait: Wait) -> Acquire<'_> {
            let reply = self
                .raw
                .request(&$request::Acquire { wait })
                .map_err(|e| AcquireError::Manager(boxed(e)))?;
            match reply {
                $reply::Acquire(Acquired::Yes) => Ok(ProxyGuard {
                    raw: &self.raw,
                    holder: Holder::$holder,
                    armed: true,
                }),
                $reply::Acquire(Acquired::WouldBlock) => Err(AcquireError::WouldBlock),
                $reply::Acquire(Acquired::Timeout) => Err(AcquireError::Timeout),
                _ => Err(AcquireError::Manager(boxed(unexpected_reply($name)))),
            }
        }

        /// Acquires, waiting as long as needed; the guard releases on drop.
        pub fn acquire(&self) -> Acquire<'_> {
            self.acquire_with(Wait::Forever)
        }

        /// Acquires if possible now; `WouldBlock` when taken.
        pub fn try_acquire(&self) -> Acquire<'_> {
            self.acquire_with(Wait::No)
        }

        /// Acquires, waiting at most `timeout` (`Duration::MAX`: for ever); `Timeout` when it
        /// passed.
        pub fn acquire_timeout(&self, timeout: Duration) -> Acquire<'_> {
            self.acquire_with(Wait::timeout(timeout))
        }

        /// Awaits the object and acquires it (feature `async`): [`acquire`](Self::acquire)
        /// without a blocked thread, with its errors and its guard. The acquire itself is a
        /// call on the thread's connection that does not wait (the holder is that connection,
        /// as for `acquire`: a guard of a lock with an owner is released on the thread that
        /// acquired it); between attempts the future awaits, on a connection of its own and
        /// through the reactor, until the object is free. Cancellation safe: dropping the
        /// future takes nothing.
        #[cfg(feature = "async")]
        pub async fn acquire_async(&self) -> Acquire<'_> {
            let mut call = AsyncCall::default();
            loop {
                match self.acquire_with(Wait::No) {
                    Err(AcquireError::WouldBlock) => {}
                    done => return done,
                }
                let request = $request::$await {
                    wait: Wait::Forever,
                };
                let reply = self
                    .raw
                    .request_async(&mut call, &request)
                    .await
                    .map_err(|e| AcquireError::Manager(boxed(e)))?;
                if !matches!(reply, $reply::$free(_)) {
                    return Err(AcquireError::Manager(boxed(unexpected_reply($name))));
                }
            }
        }

        /// Releases once: a lock (any client may release a held lock, as with Python's
        /// `Lock`), one level of a reentrant lock or of a condition's lock (by the thread that
        /// holds it), one unit of a semaphore. The server's refusal is the error: `NotLocked`
        /// (a lock not held), `NotOwner` (a level this thread does not hold), `Bound` (a bounded
        /// semaphore at its initial value).
        pub fn release(&self) -> Result<(), ReleaseError> {
            release(&self.raw, Holder::$holder, 1)
        }
    };
}

proxy_type!(
    /// A lock held by the manager (`Manager::lock`). The holder is the calling thread's
    /// connection; a lock held by a client that disconnects (exits, is killed) is released.
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let lock = m.lock().unwrap();
    /// {
    ///     let _g = lock.acquire().unwrap();
    ///     assert!(lock.try_acquire().unwrap_err().is_would_block());
    /// }
    /// let g = lock.try_acquire().unwrap();
    /// g.release().unwrap();
    /// assert!(lock.release().unwrap_err().is_not_locked());
    /// ```
    LockProxy<>,
    "lock".to_string()
);

impl LockProxy {
    lock_methods!(LockRequest, LockReply, Lock, AwaitFree, Locked, "lock");

    /// Whether the lock is held.
    pub fn is_locked(&self) -> Result<bool, ManagerError> {
        expect!(self.raw.request(&LockRequest::Locked)?, "lock", LockReply::Locked(b) => Ok(b))
    }
}

proxy_type!(
    /// A reentrant lock (`Manager::rlock`): the holding thread may acquire it again and must
    /// release it as often.
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let r = m.rlock().unwrap();
    /// let outer = r.acquire().unwrap();
    /// let inner = r.acquire().unwrap();
    /// drop(inner);
    /// outer.release().unwrap();
    /// assert!(r.release().is_err());
    /// ```
    RLockProxy<>,
    "rlock".to_string()
);

impl RLockProxy {
    lock_methods!(LockRequest, LockReply, Lock, AwaitFree, Locked, "rlock");
}

macro_rules! semaphore_methods {
    ($name:expr) => {
        lock_methods!(
            SemaphoreRequest,
            SemaphoreReply,
            Semaphore,
            AwaitAvailable,
            Value,
            $name
        );

        /// Releases `n` units.
        pub fn release_n(&self, n: usize) -> Result<(), ReleaseError> {
            release(&self.raw, Holder::Semaphore, n as u64)
        }

        /// The current count.
        pub fn value(&self) -> Result<usize, ManagerError> {
            expect!(self.raw.request(&SemaphoreRequest::Value)?, $name,
                SemaphoreReply::Value(n) => Ok(n as usize))
        }
    };
}

proxy_type!(
    /// A counting semaphore (`Manager::semaphore`).
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let s = m.semaphore(2).unwrap();
    /// let a = s.acquire().unwrap();
    /// let _b = s.acquire().unwrap();
    /// assert!(s.try_acquire().unwrap_err().is_would_block());
    /// drop(a);
    /// assert_eq!(s.value().unwrap(), 1);
    /// ```
    SemaphoreProxy<>,
    "semaphore".to_string()
);

impl SemaphoreProxy {
    semaphore_methods!("semaphore");
}

proxy_type!(
    /// A semaphore that refuses to be released above its initial value
    /// (`Manager::bounded_semaphore`).
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let s = m.bounded_semaphore(1).unwrap();
    /// assert!(s.release().unwrap_err().is_bound());
    /// ```
    BoundedSemaphoreProxy<>,
    "bounded_semaphore".to_string()
);

impl BoundedSemaphoreProxy {
    semaphore_methods!("bounded semaphore");
}

proxy_type!(
    /// A condition variable over a reentrant lock (`Manager::condition`).
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let c = m.condition().unwrap();
    /// let _g = c.acquire().unwrap();
    /// assert!(!c.wait_timeout(std::time::Duration::from_millis(10)).unwrap());
    /// c.notify_all().unwrap();
    /// ```
    ConditionProxy<>,
    "condition".to_string()
);

impl ConditionProxy {
    lock_methods!(
        ConditionRequest,
        ConditionReply,
        Condition,
        AwaitFree,
        Locked,
        "condition"
    );

    fn call(&self, request: ConditionRequest) -> Result<ConditionReply, ConditionError> {
        self.raw
            .request(&request)
            .map_err(|e| ConditionError::Manager(boxed(e)))
    }

    /// [`call`](Self::call) awaited on `call`'s connection (feature `async`).
    #[cfg(feature = "async")]
    async fn call_async(
        &self,
        call: &mut AsyncCall,
        request: &ConditionRequest,
    ) -> Result<ConditionReply, ConditionError> {
        self.raw
            .request_async(call, request)
            .await
            .map_err(|e| ConditionError::Manager(boxed(e)))
    }

    fn unexpected() -> ConditionError {
        ConditionError::Manager(boxed(unexpected_reply("condition")))
    }

    fn wait_with(&self, wait: Wait) -> Result<bool, ConditionError> {
        match self.call(ConditionRequest::Wait { wait })? {
            ConditionReply::Waited(notified) => Ok(notified),
            ConditionReply::NotOwner => Err(ConditionError::NotOwner),
            _ => Err(Self::unexpected()),
        }
    }

    fn notify_with(&self, request: ConditionRequest) -> Result<(), ConditionError> {
        match self.call(request)? {
            ConditionReply::Notified => Ok(()),
            ConditionReply::NotOwner => Err(ConditionError::NotOwner),
            _ => Err(Self::unexpected()),
        }
    }

    /// Releases the lock, waits for a notification, re-acquires; `NotOwner` when this thread
    /// does not hold the lock.
    pub fn wait(&self) -> Result<(), ConditionError> {
        self.wait_with(Wait::Forever).map(drop)
    }

    /// [`ConditionProxy::wait`] for at most `timeout` (`Duration::MAX`: for ever); `true` when
    /// notified, `false` when it timed out.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ConditionError> {
        self.wait_with(Wait::timeout(timeout))
    }

    /// Waits until `predicate` holds (checked with the lock held).
    pub fn wait_for(&self, mut predicate: impl FnMut() -> bool) -> Result<(), ConditionError> {
        while !predicate() {
            self.wait()?;
        }
        Ok(())
    }

    /// [`ConditionProxy::wait`] awaited (feature `async`): releases the lock, awaits a
    /// notification, takes the lock back, without a blocked thread.
    ///
    /// The lock is held by the calling thread's connection (as for `wait`); the release and the
    /// re-acquire are calls on the connection of the thread polling the future, which do not
    /// wait, and between them the future awaits, on a connection of its own and through the
    /// reactor, first its notification, then a free lock. On return the lock is held again,
    /// with as many levels as before, by the connection of the thread that polled last (the
    /// calling one, under a single-threaded executor or `block_on`). `NotOwner` when that
    /// connection does not hold the lock.
    ///
    /// Cancellation: dropping the future before it completes withdraws its waiter (a
    /// notification it was given passes to the next waiter, as for a waiter that vanishes) and
    /// takes the lock back, so that the caller holds it as before the wait. That drop waits,
    /// on the dropping thread, until the lock is free or held by that thread's connection,
    /// as the end of any wait does.
    ///
    /// ```
    /// # #[cfg(feature = "async")] {
    /// use processing_core::aio::block_on;
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let c = m.condition().unwrap();
    /// let g = c.acquire().unwrap();
    /// let notifier = {
    ///     let c = c.clone();
    ///     // It cannot take the lock, and notify, before the wait below released it.
    ///     std::thread::spawn(move || {
    ///         let _g = c.acquire().unwrap();
    ///         c.notify_all().unwrap();
    ///     })
    /// };
    /// block_on(c.wait_async()).unwrap();
    /// drop(g);
    /// notifier.join().unwrap();
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub async fn wait_async(&self) -> Result<(), ConditionError> {
        let (ticket, count) = match self.call(ConditionRequest::Enqueue)? {
            ConditionReply::Enqueued { ticket, count } => (ticket, count),
            ConditionReply::NotOwner => return Err(ConditionError::NotOwner),
            _ => return Err(Self::unexpected()),
        };
        let mut wait = AsyncWait {
            proxy: self,
            ticket,
            count,
            call: Some(AsyncCall::default()),
            done: false,
        };
        wait.run().await
    }

    /// [`ConditionProxy::wait_for`] awaited (feature `async`): awaits
    /// [`wait_async`](Self::wait_async) until `predicate` holds (checked with the lock held).
    /// Cancellation as for `wait_async`.
    #[cfg(feature = "async")]
    pub async fn wait_for_async(
        &self,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<(), ConditionError> {
        while !predicate() {
            self.wait_async().await?;
        }
        Ok(())
    }

    /// Waits until `predicate` holds, at most `timeout`; returns the predicate's last value.
    pub fn wait_for_timeout(
        &self,
        mut predicate: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<bool, ConditionError> {
        // A timeout too large to represent (`Duration::MAX`) waits for ever.
        let Some(deadline) = std::time::Instant::now().checked_add(timeout) else {
            return self.wait_for(predicate).map(|()| true);
        };
        loop {
            if predicate() {
                return Ok(true);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(predicate());
            }
            self.wait_timeout(deadline - now)?;
        }
    }

    /// Wakes one waiter.
    pub fn notify(&self) -> Result<(), ConditionError> {
        self.notify_with(ConditionRequest::Notify { n: 1 })
    }

    /// Wakes up to `n` waiters.
    pub fn notify_n(&self, n: usize) -> Result<(), ConditionError> {
        self.notify_with(ConditionRequest::Notify { n: n as u64 })
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) -> Result<(), ConditionError> {
        self.notify_with(ConditionRequest::NotifyAll)
    }
}

/// An awaited condition wait between its release of the lock and its re-acquire (see
/// [`ConditionProxy::wait_async`]); dropped before `done`, it withdraws its waiter and takes the
/// lock back.
#[cfg(feature = "async")]
struct AsyncWait<'a> {
    proxy: &'a ConditionProxy,
    ticket: u64,
    count: u32,
    /// The waiting connection (closing it withdraws the ticket it claimed, server side).
    call: Option<AsyncCall>,
    done: bool,
}

#[cfg(feature = "async")]
impl AsyncWait<'_> {
    async fn run(&mut self) -> Result<(), ConditionError> {
        let proxy = self.proxy;
        let call = self.call.get_or_insert_with(AsyncCall::default);
        let notified = ConditionRequest::AwaitNotified {
            ticket: self.ticket,
            wait: Wait::Forever,
        };
        match proxy.call_async(call, &notified).await? {
            ConditionReply::Waited(_) => {}
            _ => return Err(ConditionProxy::unexpected()),
        }
        loop {
            let reacquire = ConditionRequest::Reacquire {
                ticket: self.ticket,
                count: self.count,
                cancel: false,
                wait: Wait::No,
            };
            match proxy.call(reacquire)? {
                ConditionReply::Acquire(Acquired::Yes) => {
                    self.done = true;
                    return Ok(());
                }
                ConditionReply::Acquire(_) => {}
                _ => return Err(ConditionProxy::unexpected()),
            }
            let free = ConditionRequest::AwaitFree {
                wait: Wait::Forever,
            };
            match proxy.call_async(call, &free).await? {
                ConditionReply::Locked(_) => {}
                _ => return Err(ConditionProxy::unexpected()),
            }
        }
    }
}

#[cfg(feature = "async")]
impl Drop for AsyncWait<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // The waiting connection first: nothing waits for the ticket any more.
        self.call = None;
        let reacquire = ConditionRequest::Reacquire {
            ticket: self.ticket,
            count: self.count,
            cancel: true,
            wait: Wait::Forever,
        };
        // A manager gone took the lock and the waiter with it: nothing left to give back.
        let _ = self.proxy.call(reacquire);
    }
}

proxy_type!(
    /// An event flag (`Manager::event`).
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let e = m.event().unwrap();
    /// assert!(!e.is_set().unwrap());
    /// e.set().unwrap();
    /// e.wait().unwrap();
    /// ```
    EventProxy<>,
    "event".to_string(),
    EventRequest => EventReply
);

impl EventProxy {
    /// Sets the flag, waking every waiter.
    pub fn set(&self) -> Result<(), ManagerError> {
        expect!(self.call(EventRequest::Set)?, "event", EventReply::Done => Ok(()))
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<(), ManagerError> {
        expect!(self.call(EventRequest::Clear)?, "event", EventReply::Done => Ok(()))
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        Self::flag(self.call(EventRequest::IsSet))
    }

    /// The flag, as a reply tells it (`is_set`, and a wait: whether the flag was set).
    fn flag(reply: Result<EventReply, ManagerError>) -> Result<bool, ManagerError> {
        expect!(reply?, "event", EventReply::Flag(b) => Ok(b))
    }

    /// Waits until the flag is set.
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.wait_timeout(Duration::MAX).map(drop)
    }

    /// [`EventProxy::wait`] awaited (feature `async`): the wait runs on a connection of its
    /// own, awaited through the reactor. Cancellation safe (it takes nothing).
    ///
    /// ```
    /// # #[cfg(feature = "async")] {
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let e = m.event().unwrap();
    /// e.set().unwrap();
    /// processing_core::aio::block_on(e.wait_async()).unwrap();
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub async fn wait_async(&self) -> Result<(), ManagerError> {
        let request = EventRequest::Wait {
            wait: Wait::Forever,
        };
        Self::flag(self.raw.request_async_alone(&request).await).map(drop)
    }

    /// Waits at most `timeout` (`Duration::MAX`: for ever); whether the flag is set.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        Self::flag(self.call(EventRequest::Wait {
            wait: Wait::timeout(timeout),
        }))
    }
}

proxy_type!(
    /// A barrier for a fixed number of parties (`Manager::barrier`).
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let b = m.barrier(1).unwrap();
    /// assert_eq!(b.wait().unwrap(), 0);
    /// assert_eq!(b.parties().unwrap(), 1);
    /// b.abort().unwrap();
    /// assert!(b.wait().unwrap_err().is_broken());
    /// ```
    BarrierProxy<>,
    "barrier".to_string(),
    BarrierRequest => BarrierReply
);

impl BarrierProxy {
    fn wait_with(&self, wait: Wait) -> Result<usize, BarrierError> {
        Self::waited(self.call(BarrierRequest::Wait { wait }))
    }

    fn waited(reply: Result<BarrierReply, ManagerError>) -> Result<usize, BarrierError> {
        match reply {
            Ok(BarrierReply::Passed(n)) => Ok(n as usize),
            Ok(BarrierReply::Broken) => Err(BarrierError::Broken),
            Ok(BarrierReply::Timeout) => Err(BarrierError::Timeout),
            Ok(_) => Err(BarrierError::Manager(boxed(unexpected_reply("barrier")))),
            Err(e) => Err(BarrierError::Manager(boxed(e))),
        }
    }

    /// Waits for all parties; returns this caller's arrival index. `Broken` when the barrier
    /// is (or becomes) broken.
    pub fn wait(&self) -> Result<usize, BarrierError> {
        self.wait_with(Wait::Forever)
    }

    /// [`BarrierProxy::wait`] awaited (feature `async`): the wait runs on a connection of its
    /// own, awaited through the reactor. Dropping the future before the barrier passes
    /// withdraws this party by closing that connection, which breaks the barrier for the
    /// others, as a party that vanishes (or times out) does.
    #[cfg(feature = "async")]
    pub async fn wait_async(&self) -> Result<usize, BarrierError> {
        let request = BarrierRequest::Wait {
            wait: Wait::Forever,
        };
        Self::waited(self.raw.request_async_alone(&request).await)
    }

    /// [`BarrierProxy::wait`] for at most `timeout` (`Duration::MAX`: for ever); `Timeout`
    /// when it passed, which breaks the barrier for the other parties.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BarrierError> {
        self.wait_with(Wait::timeout(timeout))
    }

    /// Breaks the barrier: current and future waiters fail.
    pub fn abort(&self) -> Result<(), ManagerError> {
        expect!(self.call(BarrierRequest::Abort)?, "barrier", BarrierReply::Done => Ok(()))
    }

    /// Returns the barrier to its initial state; current waiters fail.
    pub fn reset(&self) -> Result<(), ManagerError> {
        expect!(self.call(BarrierRequest::Reset)?, "barrier", BarrierReply::Done => Ok(()))
    }

    /// The number of parties.
    pub fn parties(&self) -> Result<usize, ManagerError> {
        expect!(self.call(BarrierRequest::Parties)?, "barrier", BarrierReply::Count(n) => Ok(n as usize))
    }

    /// How many parties wait now.
    pub fn n_waiting(&self) -> Result<usize, ManagerError> {
        expect!(self.call(BarrierRequest::NWaiting)?, "barrier", BarrierReply::Count(n) => Ok(n as usize))
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> Result<bool, ManagerError> {
        expect!(self.call(BarrierRequest::Broken)?, "barrier", BarrierReply::Flag(b) => Ok(b))
    }
}
