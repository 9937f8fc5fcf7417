//! `Value<T>` and `Array<T>`: shared plain-old-data with a lock.

use std::fmt;
use std::ops::{Deref, DerefMut};

use bytemuck::Pod;
use processing_shm::{RawArray, RawValue};
use serde::{Deserialize, Serialize};

use crate::error::{AcquireError, SyncError};
use crate::lock::{Lock, LockGuard};

/// A plain-old-data value in shared memory with a [`Lock`] (its own, or one given with
/// [`Value::with_lock`]), like `multiprocessing.Value`.
///
/// `get` and `set` take the lock for one copy; [`lock`](Self::lock) holds it across a
/// read-modify-write through a guard that dereferences to `T`.
///
/// ```
/// let v = processing::sync::Value::new(0i64).unwrap();
/// *v.lock().unwrap() += 5;
/// v.set(v.get() * 2);
/// assert_eq!(v.get(), 10);
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Value<T: Pod> {
    raw: RawValue<T>,
    lock: Lock,
}

impl<T: Pod> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            raw: self.raw.clone(),
            lock: self.lock.clone(),
        }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("raw", &self.raw)
            .field("lock", &self.lock)
            .finish()
    }
}

/// Holds a [`Value`]'s lock; dereferences to the value.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ValueGuard<'a, T: Pod> {
    _guard: LockGuard<'a>,
    value: &'a RawValue<T>,
}

impl<T: Pod + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueGuard").field(&**self).finish()
    }
}

impl<T: Pod> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the value lies in a live mapping, aligned (RawValue's invariant); the lock
        // is held, so no other user of this Value writes it meanwhile.
        unsafe { &*self.value.as_ptr() }
    }
}

impl<T: Pod> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in deref; holding the lock (and &mut self) makes this access exclusive.
        unsafe { &mut *self.value.as_ptr() }
    }
}

impl<T: Pod> Value<T> {
    /// Creates a value with its own lock.
    pub fn new(value: T) -> Result<Value<T>, SyncError> {
        Value::with_lock(value, Lock::new()?)
    }

    /// Creates a value guarded by `lock` (which may guard other data too).
    pub fn with_lock(value: T, lock: Lock) -> Result<Value<T>, SyncError> {
        Ok(Value {
            raw: RawValue::new(value)?,
            lock,
        })
    }

    /// Takes the lock and returns a guard that dereferences to the value. An error only
    /// reports a recovered lock ([`AcquireError::OwnerDied`] with the guard).
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, AcquireError<ValueGuard<'_, T>>> {
        match self.lock.acquire() {
            Ok(g) => Ok(ValueGuard {
                _guard: g,
                value: &self.raw,
            }),
            Err(e) => Err(e.map_guard(|g| ValueGuard {
                _guard: g,
                value: &self.raw,
            })),
        }
    }

    /// A copy of the value, read under the lock (a lock recovered from a dead holder is
    /// taken silently).
    pub fn get(&self) -> T {
        let _g = self.lock.acquire_held();
        self.raw.get()
    }

    /// Overwrites the value under the lock.
    pub fn set(&self, value: T) {
        let _g = self.lock.acquire_held();
        self.raw.set(value);
    }

    /// The lock guarding the value.
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }

    /// The value without its lock.
    pub fn raw(&self) -> &RawValue<T> {
        &self.raw
    }
}

/// A fixed-length array of plain-old-data in shared memory with a [`Lock`], like
/// `multiprocessing.Array`; zero-filled on creation.
///
/// ```
/// let a = processing::sync::Array::<u32>::from_slice(&[1, 2, 3]).unwrap();
/// {
///     let mut items = a.lock().unwrap();
///     for i in 1..items.len() {
///         items[i] += items[i - 1];
///     }
/// }
/// assert_eq!(a.to_vec(), vec![1, 3, 6]);
/// assert!(a.set(3, 0).is_err());
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Array<T: Pod> {
    raw: RawArray<T>,
    lock: Lock,
}

impl<T: Pod> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            raw: self.raw.clone(),
            lock: self.lock.clone(),
        }
    }
}

impl<T: Pod> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("raw", &self.raw)
            .field("lock", &self.lock)
            .finish()
    }
}

/// Holds an [`Array`]'s lock; dereferences to the elements as a slice.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ArrayGuard<'a, T: Pod> {
    _guard: LockGuard<'a>,
    array: &'a RawArray<T>,
}

impl<T: Pod + fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}

impl<T: Pod> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the lock is held, so no other user of this Array writes meanwhile.
        unsafe { self.array.as_slice() }
    }
}

impl<T: Pod> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: the lock is held and &mut self is unique, so access is exclusive.
        unsafe { self.array.as_mut_slice() }
    }
}

impl<T: Pod> Array<T> {
    /// Creates a zero-filled array of `len` elements with its own lock.
    pub fn new(len: usize) -> Result<Array<T>, SyncError> {
        Array::with_lock(len, Lock::new()?)
    }

    /// Creates a zero-filled array guarded by `lock`.
    pub fn with_lock(len: usize, lock: Lock) -> Result<Array<T>, SyncError> {
        Ok(Array {
            raw: RawArray::new(len)?,
            lock,
        })
    }

    /// Creates an array holding a copy of `items`, with its own lock.
    pub fn from_slice(items: &[T]) -> Result<Array<T>, SyncError> {
        Ok(Array {
            raw: RawArray::from_slice(items)?,
            lock: Lock::new()?,
        })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Takes the lock and returns a guard that dereferences to `[T]`.
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, AcquireError<ArrayGuard<'_, T>>> {
        match self.lock.acquire() {
            Ok(g) => Ok(ArrayGuard {
                _guard: g,
                array: &self.raw,
            }),
            Err(e) => Err(e.map_guard(|g| ArrayGuard {
                _guard: g,
                array: &self.raw,
            })),
        }
    }

    /// A copy of element `index` (under the lock), `None` when out of range.
    pub fn get(&self, index: usize) -> Option<T> {
        let _g = self.lock.acquire_held();
        self.raw.get(index)
    }

    /// Overwrites element `index` under the lock.
    pub fn set(&self, index: usize, value: T) -> Result<(), processing_shm::ShmError> {
        let _g = self.lock.acquire_held();
        self.raw.set(index, value)
    }

    /// A copy of the elements in `range`, under the lock.
    pub fn slice(
        &self,
        range: impl std::ops::RangeBounds<usize>,
    ) -> Result<Vec<T>, processing_shm::ShmError> {
        let _g = self.lock.acquire_held();
        self.raw.slice(range)
    }

    /// Copies `items` in at `start` under the lock (slice assignment).
    pub fn write(&self, start: usize, items: &[T]) -> Result<(), processing_shm::ShmError> {
        let _g = self.lock.acquire_held();
        self.raw.write(start, items)
    }

    /// A copy of all elements, under the lock.
    pub fn to_vec(&self) -> Vec<T> {
        let _g = self.lock.acquire_held();
        self.raw.to_vec()
    }

    /// The lock guarding the array.
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }

    /// The array without its lock.
    pub fn raw(&self) -> &RawArray<T> {
        &self.raw
    }
}
