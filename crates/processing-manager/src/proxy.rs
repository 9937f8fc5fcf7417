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
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::client::RawProxy;
use crate::error::{ManagerError, RemoteErrorKind};
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

fn is_kind(e: &ManagerError, kind: RemoteErrorKind) -> bool {
    e.as_remote().is_some_and(|r| r.kind == kind)
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

macro_rules! proxy_type {
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
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let l = m.list::<i32>().unwrap();
    /// l.extend([3, 1, 2]).unwrap();
    /// l.sort().unwrap();
    /// assert_eq!(l.to_vec().unwrap(), [1, 2, 3]);
    /// assert_eq!(l.slice(-2..).unwrap(), [2, 3]);
    /// ```
    ListProxy<T>,
    format!("list<{}>", tn::<T>())
);

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Appends `value`.
    pub fn push(&self, value: T) -> Result<(), ManagerError> {
        let e = self.raw.elem(&value)?;
        self.raw.call("push", &e)
    }

    /// Appends every value of `values` (one call).
    pub fn extend(&self, values: impl IntoIterator<Item = T>) -> Result<(), ManagerError> {
        let es = values
            .into_iter()
            .map(|v| self.raw.elem(&v))
            .collect::<Result<Vec<Elem>, _>>()?;
        self.raw.call("extend", &es)
    }

    /// Inserts `value` before `index` (clamped to the list, as Python's `insert`).
    pub fn insert(&self, index: isize, value: T) -> Result<(), ManagerError> {
        let e = self.raw.elem(&value)?;
        self.raw.call("insert", &(index as i64, e))
    }

    /// A copy of the element at `index`.
    pub fn get(&self, index: isize) -> Result<T, ManagerError> {
        let e: Elem = self.raw.call("get", &(index as i64))?;
        self.raw.value(e)
    }

    /// Replaces the element at `index`.
    pub fn set(&self, index: isize, value: T) -> Result<(), ManagerError> {
        let e = self.raw.elem(&value)?;
        self.raw.call("set", &(index as i64, e))
    }

    /// Copies of the elements in `range` (Python slice semantics, clamped).
    pub fn slice(&self, range: impl RangeBounds<isize>) -> Result<Vec<T>, ManagerError> {
        let es: Vec<Elem> = self.raw.call("slice", &bounds(range))?;
        self.raw.values(es)
    }

    /// Removes and returns the last element, `None` when the list is empty.
    pub fn pop(&self) -> Result<Option<T>, ManagerError> {
        match self.raw.call::<_, Elem>("pop", &None::<i64>) {
            Ok(e) => Ok(Some(self.raw.value(e)?)),
            Err(e) if is_kind(&e, RemoteErrorKind::IndexOutOfRange) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes and returns the element at `index`.
    pub fn pop_at(&self, index: isize) -> Result<T, ManagerError> {
        let e: Elem = self.raw.call("pop", &Some(index as i64))?;
        self.raw.value(e)
    }

    /// Removes the first element equal to `value`; `false` when there is none.
    pub fn remove(&self, value: &T) -> Result<bool, ManagerError> {
        match self.raw.call::<_, ()>("remove", &encode(value)?) {
            Ok(()) => Ok(true),
            Err(e) if is_kind(&e, RemoteErrorKind::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The index of the first element equal to `value`.
    pub fn index(&self, value: &T) -> Result<Option<usize>, ManagerError> {
        match self.raw.call::<_, u64>("index", &encode(value)?) {
            Ok(i) => Ok(Some(i as usize)),
            Err(e) if is_kind(&e, RemoteErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// How many elements equal `value`.
    pub fn count(&self, value: &T) -> Result<usize, ManagerError> {
        self.raw
            .call::<_, u64>("count", &encode(value)?)
            .map(|n| n as usize)
    }

    /// Whether an element equals `value`.
    pub fn contains(&self, value: &T) -> Result<bool, ManagerError> {
        self.raw.call("contains", &encode(value)?)
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
            let (version, es): (u64, Vec<Elem>) = self.raw.call("snapshot", &())?;
            let values: Vec<T> = self.raw.values(es)?;
            let mut order: Vec<u32> = (0..values.len() as u32).collect();
            order.sort_by(|&a, &b| compare(&values[a as usize], &values[b as usize]));
            match self.raw.call::<_, ()>("permute", &(version, order)) {
                Err(e) if is_kind(&e, RemoteErrorKind::Conflict) => continue,
                other => return other,
            }
        }
    }

    /// Reverses the list in place.
    pub fn reverse(&self) -> Result<(), ManagerError> {
        self.raw.call("reverse", &())
    }

    /// The number of elements.
    pub fn len(&self) -> Result<usize, ManagerError> {
        self.raw.call::<_, u64>("len", &()).map(|n| n as usize)
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        self.len().map(|n| n == 0)
    }

    /// Removes every element.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.raw.call("clear", &())
    }

    /// A copy of the whole list.
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        let es: Vec<Elem> = self.raw.call("to_vec", &())?;
        self.raw.values(es)
    }
}

// ---------------------------------------------------------------------------------------------

proxy_type!(
    /// A shared dictionary (`Manager::dict`), in insertion order. Keys compare by their
    /// encoding, so the server needs no code of `K`.
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let d = m.dict::<String, i32>().unwrap();
    /// d.insert("a".into(), 1).unwrap();
    /// assert_eq!(d.get(&"a".into()).unwrap(), Some(1));
    /// assert_eq!(d.items().unwrap(), [("a".to_string(), 1)]);
    /// ```
    DictProxy<K, V>,
    format!("dict<{}, {}>", tn::<K>(), tn::<V>())
);

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// A copy of the value for `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>, ManagerError> {
        let e: Option<Elem> = self.raw.call("get", &encode(key)?)?;
        e.map(|e| self.raw.value(e)).transpose()
    }

    /// Sets `key` to `value`; returns the previous value.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>, ManagerError> {
        let (k, v) = (self.raw.elem(&key)?, self.raw.elem(&value)?);
        let old: Option<Elem> = self.raw.call("insert", &(k, v))?;
        old.map(|e| self.raw.value(e)).transpose()
    }

    /// Removes `key`; returns its value.
    pub fn remove(&self, key: &K) -> Result<Option<V>, ManagerError> {
        let old: Option<Elem> = self.raw.call("remove", &encode(key)?)?;
        old.map(|e| self.raw.value(e)).transpose()
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> Result<bool, ManagerError> {
        self.raw.call("contains_key", &encode(key)?)
    }

    /// Copies of the keys.
    pub fn keys(&self) -> Result<Vec<K>, ManagerError> {
        let es: Vec<Elem> = self.raw.call("keys", &())?;
        self.raw.values(es)
    }

    /// Copies of the values.
    pub fn values(&self) -> Result<Vec<V>, ManagerError> {
        let es: Vec<Elem> = self.raw.call("values", &())?;
        self.raw.values(es)
    }

    /// Copies of the entries.
    pub fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
        let es: Vec<(Elem, Elem)> = self.raw.call("items", &())?;
        es.into_iter()
            .map(|(k, v)| Ok((self.raw.value(k)?, self.raw.value(v)?)))
            .collect()
    }

    /// The number of entries.
    pub fn len(&self) -> Result<usize, ManagerError> {
        self.raw.call::<_, u64>("len", &()).map(|n| n as usize)
    }

    /// Whether the dictionary is empty.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        self.len().map(|n| n == 0)
    }

    /// Removes every entry.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.raw.call("clear", &())
    }

    /// Inserts every entry of `items` (one call).
    pub fn update(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<(), ManagerError> {
        let es = items
            .into_iter()
            .map(|(k, v)| Ok((self.raw.elem(&k)?, self.raw.elem(&v)?)))
            .collect::<Result<Vec<_>, ManagerError>>()?;
        self.raw.call("update", &es)
    }
}

// ---------------------------------------------------------------------------------------------

proxy_type!(
    /// A namespace of named attributes, each any serde value (`Manager::namespace`).
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let ns = m.namespace().unwrap();
    /// ns.set("x", &10).unwrap();
    /// ns.set("name", "abc").unwrap();
    /// assert_eq!(ns.get::<i32>("x").unwrap(), Some(10));
    /// assert_eq!(ns.names().unwrap(), ["name", "x"]);
    /// ```
    NamespaceProxy<>,
    "namespace".to_string()
);

impl NamespaceProxy {
    /// A copy of the attribute `name`, decoded as `T`.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ManagerError> {
        let e: Option<Elem> = self.raw.call("get", &name)?;
        e.map(|e| self.raw.value(e)).transpose()
    }

    /// Sets the attribute `name`.
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), ManagerError> {
        let e = self.raw.elem(value)?;
        self.raw.call("set", &(name, e))
    }

    /// Removes the attribute `name`; whether it existed.
    pub fn remove(&self, name: &str) -> Result<bool, ManagerError> {
        let e: Option<Elem> = self.raw.call("remove", &name)?;
        Ok(match e {
            Some(e) => {
                self.raw.discard(e);
                true
            }
            None => false,
        })
    }

    /// Whether the attribute `name` exists.
    pub fn contains(&self, name: &str) -> Result<bool, ManagerError> {
        self.raw.call("contains", &name)
    }

    /// The attribute names, sorted.
    pub fn names(&self) -> Result<Vec<String>, ManagerError> {
        self.raw.call("names", &())
    }
}

// ---------------------------------------------------------------------------------------------

proxy_type!(
    /// One shared value (`Manager::value`). `get` returns a copy.
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let v = m.value(vec![1, 2]).unwrap();
    /// let mut copy = v.get().unwrap();
    /// copy.push(3); // a copy: the shared value is unchanged
    /// assert_eq!(v.get().unwrap(), [1, 2]);
    /// v.set(copy).unwrap();
    /// assert_eq!(v.get().unwrap(), [1, 2, 3]);
    /// ```
    ValueProxy<T>,
    format!("value<{}>", tn::<T>())
);

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// A copy of the value.
    pub fn get(&self) -> Result<T, ManagerError> {
        let e: Elem = self.raw.call("get", &())?;
        self.raw.value(e)
    }

    /// Replaces the value.
    pub fn set(&self, value: T) -> Result<(), ManagerError> {
        let e = self.raw.elem(&value)?;
        self.raw.call("set", &e)
    }

    /// Replaces the value and returns the previous one (atomically).
    pub fn swap(&self, value: T) -> Result<T, ManagerError> {
        let e = self.raw.elem(&value)?;
        let old: Elem = self.raw.call("swap", &e)?;
        self.raw.value(old)
    }
}

proxy_type!(
    /// A fixed-length shared array (`Manager::array`).
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let a = m.array(vec![0u8; 4]).unwrap();
    /// a.set(-1, 9).unwrap();
    /// assert_eq!(a.to_vec().unwrap(), [0, 0, 0, 9]);
    /// ```
    ArrayProxy<T>,
    format!("array<{}>", tn::<T>())
);

impl<T: Serialize + DeserializeOwned> ArrayProxy<T> {
    /// A copy of the element at `index`.
    pub fn get(&self, index: isize) -> Result<T, ManagerError> {
        let e: Elem = self.raw.call("get", &(index as i64))?;
        self.raw.value(e)
    }

    /// Replaces the element at `index`.
    pub fn set(&self, index: isize, value: T) -> Result<(), ManagerError> {
        let e = self.raw.elem(&value)?;
        self.raw.call("set", &(index as i64, e))
    }

    /// The length.
    pub fn len(&self) -> Result<usize, ManagerError> {
        self.raw.call::<_, u64>("len", &()).map(|n| n as usize)
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        self.len().map(|n| n == 0)
    }

    /// A copy of every element.
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        let es: Vec<Elem> = self.raw.call("to_vec", &())?;
        self.raw.values(es)
    }
}

// ---------------------------------------------------------------------------------------------

macro_rules! queue_methods {
    () => {
        /// Puts `value`, waiting for room in a bounded queue.
        pub fn put(&self, value: T) -> Result<(), ManagerError> {
            let e = self.raw.elem(&value)?;
            self.raw
                .call::<_, bool>("put", &(e, true, None::<Duration>))
                .map(drop)
        }

        /// Puts `value` if there is room now; `false` (and the value dropped) otherwise.
        pub fn try_put(&self, value: T) -> Result<bool, ManagerError> {
            let e = self.raw.elem(&value)?;
            self.raw.call("put", &(e, false, None::<Duration>))
        }

        /// Puts `value`, waiting at most `timeout` for room; `false` when it timed out.
        pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<bool, ManagerError> {
            let e = self.raw.elem(&value)?;
            self.raw.call("put", &(e, true, Some(timeout)))
        }

        /// Takes the oldest item, waiting for one.
        pub fn get(&self) -> Result<T, ManagerError> {
            loop {
                let e: Option<Elem> = self.raw.call("get", &(true, None::<Duration>))?;
                if let Some(e) = e {
                    return self.raw.value(e);
                }
            }
        }

        /// Takes the oldest item if there is one now.
        pub fn try_get(&self) -> Result<Option<T>, ManagerError> {
            let e: Option<Elem> = self.raw.call("get", &(false, None::<Duration>))?;
            e.map(|e| self.raw.value(e)).transpose()
        }

        /// Takes the oldest item, waiting at most `timeout`; `None` when it timed out.
        pub fn get_timeout(&self, timeout: Duration) -> Result<Option<T>, ManagerError> {
            let e: Option<Elem> = self.raw.call("get", &(true, Some(timeout)))?;
            e.map(|e| self.raw.value(e)).transpose()
        }

        /// The number of items.
        pub fn len(&self) -> Result<usize, ManagerError> {
            self.raw.call::<_, u64>("len", &()).map(|n| n as usize)
        }

        /// Whether the queue is empty.
        pub fn is_empty(&self) -> Result<bool, ManagerError> {
            self.raw.call("is_empty", &())
        }

        /// Whether a bounded queue is full.
        pub fn is_full(&self) -> Result<bool, ManagerError> {
            self.raw.call("is_full", &())
        }
    };
}

proxy_type!(
    /// A shared FIFO queue (`Manager::queue`, `Manager::bounded_queue`).
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let q = m.queue::<String>().unwrap();
    /// q.put("job".into()).unwrap();
    /// assert_eq!(q.get().unwrap(), "job");
    /// assert_eq!(q.try_get().unwrap(), None);
    /// ```
    QueueProxy<T>,
    format!("queue<{}>", tn::<T>())
);

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    queue_methods!();
}

proxy_type!(
    /// A queue whose consumers confirm each item with `task_done`, and whose `join` waits
    /// until every item put has been confirmed (`Manager::joinable_queue`).
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let q = m.joinable_queue::<u32>().unwrap();
    /// q.put(1).unwrap();
    /// assert_eq!(q.get().unwrap(), 1);
    /// q.task_done().unwrap();
    /// q.join().unwrap();
    /// ```
    JoinableQueueProxy<T>,
    format!("joinable_queue<{}>", tn::<T>())
);

impl<T: Serialize + DeserializeOwned> JoinableQueueProxy<T> {
    queue_methods!();

    /// Marks one item taken with `get` as processed.
    pub fn task_done(&self) -> Result<(), ManagerError> {
        self.raw.call("task_done", &())
    }

    /// Waits until every item put has been marked done.
    pub fn join(&self) -> Result<(), ManagerError> {
        self.raw
            .call::<_, bool>("join", &None::<Duration>)
            .map(drop)
    }

    /// [`JoinableQueueProxy::join`] with a timeout; `false` when it timed out.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.raw.call("join", &Some(timeout))
    }
}

// ---------------------------------------------------------------------------------------------

/// Releases a lock-like proxy when dropped (see `LockProxy::guard`).
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct ProxyGuard<'a> {
    raw: &'a RawProxy,
}

impl Drop for ProxyGuard<'_> {
    fn drop(&mut self) {
        let _ = self.raw.call::<_, ()>("release", &());
    }
}

macro_rules! lock_methods {
    () => {
        /// Acquires, waiting as long as needed.
        pub fn acquire(&self) -> Result<(), ManagerError> {
            loop {
                if self
                    .raw
                    .call::<_, bool>("acquire", &(true, None::<Duration>))?
                {
                    return Ok(());
                }
            }
        }

        /// Acquires if possible now.
        pub fn try_acquire(&self) -> Result<bool, ManagerError> {
            self.raw.call("acquire", &(false, None::<Duration>))
        }

        /// Acquires, waiting at most `timeout`; `false` when it timed out.
        pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
            self.raw.call("acquire", &(true, Some(timeout)))
        }

        /// Acquires and returns a guard that releases on drop.
        pub fn guard(&self) -> Result<ProxyGuard<'_>, ManagerError> {
            self.acquire()?;
            Ok(ProxyGuard { raw: &self.raw })
        }
    };
}

proxy_type!(
    /// A lock held by the manager (`Manager::lock`). The holder is the calling thread's
    /// connection; a lock held by a client that disconnects (exits, is killed) is released.
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let lock = m.lock().unwrap();
    /// {
    ///     let _g = lock.guard().unwrap();
    ///     assert!(!lock.try_acquire().unwrap());
    /// }
    /// assert!(lock.try_acquire().unwrap());
    /// lock.release().unwrap();
    /// ```
    LockProxy<>,
    "lock".to_string()
);

impl LockProxy {
    lock_methods!();

    /// Releases (any client may release a held lock, as with Python's `Lock`).
    pub fn release(&self) -> Result<(), ManagerError> {
        self.raw.call("release", &())
    }

    /// Whether the lock is held.
    pub fn locked(&self) -> Result<bool, ManagerError> {
        self.raw.call("locked", &())
    }
}

proxy_type!(
    /// A reentrant lock (`Manager::rlock`): the holding thread may acquire it again and must
    /// release it as often.
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let r = m.rlock().unwrap();
    /// r.acquire().unwrap();
    /// r.acquire().unwrap();
    /// r.release().unwrap();
    /// r.release().unwrap();
    /// assert!(r.release().is_err());
    /// ```
    RLockProxy<>,
    "rlock".to_string()
);

impl RLockProxy {
    lock_methods!();

    /// Releases one level; an error when this thread does not hold it.
    pub fn release(&self) -> Result<(), ManagerError> {
        self.raw.call("release", &())
    }
}

macro_rules! semaphore_methods {
    () => {
        lock_methods!();

        /// Releases one unit.
        pub fn release(&self) -> Result<(), ManagerError> {
            self.raw.call("release", &1u64)
        }

        /// Releases `n` units.
        pub fn release_n(&self, n: usize) -> Result<(), ManagerError> {
            self.raw.call("release", &(n as u64))
        }

        /// The current count.
        pub fn value(&self) -> Result<usize, ManagerError> {
            self.raw.call::<_, u64>("value", &()).map(|n| n as usize)
        }
    };
}

proxy_type!(
    /// A counting semaphore (`Manager::semaphore`).
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let s = m.semaphore(2).unwrap();
    /// s.acquire().unwrap();
    /// s.acquire().unwrap();
    /// assert!(!s.try_acquire().unwrap());
    /// s.release().unwrap();
    /// assert_eq!(s.value().unwrap(), 1);
    /// ```
    SemaphoreProxy<>,
    "semaphore".to_string()
);

impl SemaphoreProxy {
    semaphore_methods!();
}

proxy_type!(
    /// A semaphore that refuses to be released above its initial value
    /// (`Manager::bounded_semaphore`).
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let s = m.bounded_semaphore(1).unwrap();
    /// assert!(s.release().is_err());
    /// ```
    BoundedSemaphoreProxy<>,
    "bounded_semaphore".to_string()
);

impl BoundedSemaphoreProxy {
    semaphore_methods!();
}

proxy_type!(
    /// A condition variable over a reentrant lock (`Manager::condition`).
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let c = m.condition().unwrap();
    /// let _g = c.guard().unwrap();
    /// assert!(!c.wait_timeout(std::time::Duration::from_millis(10)).unwrap());
    /// c.notify_all().unwrap();
    /// ```
    ConditionProxy<>,
    "condition".to_string()
);

impl ConditionProxy {
    lock_methods!();

    /// Releases one level of the underlying lock.
    pub fn release(&self) -> Result<(), ManagerError> {
        self.raw.call("release", &())
    }

    /// Releases the lock, waits for a notification, re-acquires.
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.raw
            .call::<_, bool>("wait", &None::<Duration>)
            .map(drop)
    }

    /// [`ConditionProxy::wait`] for at most `timeout`; `false` when it timed out.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.raw.call("wait", &Some(timeout))
    }

    /// Waits until `predicate` holds (checked with the lock held), at most `timeout` if given;
    /// returns the predicate's last value.
    pub fn wait_for(
        &self,
        mut predicate: impl FnMut() -> bool,
        timeout: Option<Duration>,
    ) -> Result<bool, ManagerError> {
        // A timeout too large to represent (`Duration::MAX`) waits for ever.
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        loop {
            if predicate() {
                return Ok(true);
            }
            match deadline {
                None => self.wait()?,
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return Ok(predicate());
                    }
                    self.wait_timeout(d - now)?;
                }
            }
        }
    }

    /// Wakes one waiter.
    pub fn notify(&self) -> Result<(), ManagerError> {
        self.raw.call("notify", &1u64)
    }

    /// Wakes up to `n` waiters.
    pub fn notify_n(&self, n: usize) -> Result<(), ManagerError> {
        self.raw.call("notify", &(n as u64))
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) -> Result<(), ManagerError> {
        self.raw.call("notify_all", &())
    }
}

proxy_type!(
    /// An event flag (`Manager::event`).
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let e = m.event().unwrap();
    /// assert!(!e.is_set().unwrap());
    /// e.set().unwrap();
    /// e.wait().unwrap();
    /// ```
    EventProxy<>,
    "event".to_string()
);

impl EventProxy {
    /// Sets the flag, waking every waiter.
    pub fn set(&self) -> Result<(), ManagerError> {
        self.raw.call("set", &())
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.raw.call("clear", &())
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        self.raw.call("is_set", &())
    }

    /// Waits until the flag is set.
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.raw
            .call::<_, bool>("wait", &None::<Duration>)
            .map(drop)
    }

    /// Waits at most `timeout`; whether the flag is set.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.raw.call("wait", &Some(timeout))
    }
}

proxy_type!(
    /// A barrier for a fixed number of parties (`Manager::barrier`).
    ///
    /// ```
    /// let m = processing_manager::Manager::start_in_thread().unwrap();
    /// let b = m.barrier(1).unwrap();
    /// assert_eq!(b.wait().unwrap(), 0);
    /// assert_eq!(b.parties().unwrap(), 1);
    /// ```
    BarrierProxy<>,
    "barrier".to_string()
);

impl BarrierProxy {
    /// Waits for all parties; returns this caller's arrival index. A broken barrier is a
    /// remote error of kind `BrokenBarrier`.
    pub fn wait(&self) -> Result<usize, ManagerError> {
        self.raw
            .call::<_, u64>("wait", &None::<Duration>)
            .map(|n| n as usize)
    }

    /// [`BarrierProxy::wait`] for at most `timeout`; timing out breaks the barrier.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, ManagerError> {
        self.raw
            .call::<_, u64>("wait", &Some(timeout))
            .map(|n| n as usize)
    }

    /// Breaks the barrier: current and future waiters fail.
    pub fn abort(&self) -> Result<(), ManagerError> {
        self.raw.call("abort", &())
    }

    /// Returns the barrier to its initial state; current waiters fail.
    pub fn reset(&self) -> Result<(), ManagerError> {
        self.raw.call("reset", &())
    }

    /// The number of parties.
    pub fn parties(&self) -> Result<usize, ManagerError> {
        self.raw.call::<_, u64>("parties", &()).map(|n| n as usize)
    }

    /// How many parties wait now.
    pub fn n_waiting(&self) -> Result<usize, ManagerError> {
        self.raw
            .call::<_, u64>("n_waiting", &())
            .map(|n| n as usize)
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> Result<bool, ManagerError> {
        self.raw.call("broken", &())
    }
}
