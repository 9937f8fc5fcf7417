//! `RawValue<T>` and `RawArray<T>`: typed views of a segment, without a lock.
//!
//! Other processes may write the segment at any moment, so the safe copies (`get`, `set`,
//! `slice`, `write`, `to_vec`, `iter`) never touch it with plain loads and stores (a data race,
//! undefined behaviour): they copy 8-byte aligned words with relaxed atomic loads and stores
//! (`copy_out`/`copy_in` below; a partial word at either end of a write is merged in with a
//! compare-and-swap, so neighbouring bytes another writer changes meanwhile are kept). Every
//! access to a segment's bytes is thus an aligned 8-byte atomic, whatever `T` is. A value that
//! spans several words can still tear (mix words of an old and a new value) when a writer runs
//! concurrently: for consistent values use processing-sync's locked `Value`/`Array`, or the
//! `unsafe` `as_slice`/`as_mut_slice` when no writer can run.

use std::sync::atomic::{AtomicU64, Ordering};

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, Range, RangeBounds};

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ShmError;
use crate::segment::SharedMemory;

/// Largest alignment a segment's data guarantees.
const MAX_ALIGN: usize = 4096;
const WORD: usize = 8;

/// The aligned word containing the byte at `at`.
///
/// The word's address is derived from `at` itself (`map_addr`), so it keeps `at`'s provenance:
/// an integer-to-pointer cast here would leave Miri (and the compiler) unable to tell which
/// allocation the word belongs to.
///
/// # Safety
/// The word must lie in a live mapping (segments are page-aligned and page-granular, so the
/// word around any byte of a segment does).
#[inline]
unsafe fn word_at<'a>(at: *const u8) -> &'a AtomicU64 {
    // SAFETY: the caller's promise; the address is 8-aligned by construction.
    unsafe { &*at.map_addr(|a| a & !(WORD - 1)).cast::<AtomicU64>() }
}

/// Walks the aligned words that bytes `at..at + len` of a mapping span, in order: `f` gets
/// each word, the offset in it of the first byte in the span, and where the word's bytes fall
/// in the span (an aligned 8-byte element is one call with the whole word).
///
/// # Safety
/// `at..at + len` must lie in a live shared mapping (page-aligned, page-granular).
#[inline]
unsafe fn for_each_word(
    at: *const u8,
    len: usize,
    mut f: impl FnMut(&AtomicU64, usize, Range<usize>),
) {
    // One aligned word (an 8-byte `RawValue`, an element of a `RawArray<u64>`): a call with
    // constant bounds, which the inlined copy turns into one load or store. The loop below
    // would copy through a `memcpy` call of a length known only at run time.
    if len == WORD && at.addr().is_multiple_of(WORD) {
        // SAFETY: the word is `at..at + len` itself, in the mapping (caller's promise).
        f(unsafe { word_at(at) }, 0, 0..WORD);
        return;
    }
    let mut done = 0;
    while done < len {
        let p = at.wrapping_add(done);
        let offset = p.addr() % WORD;
        let n = (WORD - offset).min(len - done);
        // SAFETY: the word around `p` is in the mapping (caller's promise).
        f(unsafe { word_at(p) }, offset, done..done + n);
        done += n;
    }
}

/// Copies `dst.len()` bytes from shared memory at `src` with 8-byte atomic loads.
///
/// # Safety
/// `src..src + dst.len()` must lie in a live shared mapping (page-aligned, page-granular).
#[inline]
unsafe fn copy_out(src: *const u8, dst: &mut [u8]) {
    // SAFETY: the caller's promise.
    unsafe {
        for_each_word(src, dst.len(), |word, offset, part| {
            let word = word.load(Ordering::Relaxed).to_ne_bytes();
            dst[part.clone()].copy_from_slice(&word[offset..offset + part.len()]);
        })
    }
}

/// Copies `src` into shared memory at `dst` with 8-byte atomic stores (partial words merged
/// with a compare-and-swap).
///
/// # Safety
/// `dst..dst + src.len()` must lie in a live, writable shared mapping (page-aligned,
/// page-granular).
#[inline]
unsafe fn copy_in(dst: *mut u8, src: &[u8]) {
    // SAFETY: the caller's promise.
    unsafe {
        for_each_word(dst, src.len(), |word, offset, part| {
            let src = &src[part];
            if src.len() == WORD {
                let mut b = [0u8; WORD];
                b.copy_from_slice(src);
                word.store(u64::from_ne_bytes(b), Ordering::Relaxed);
            } else {
                let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                    let mut b = old.to_ne_bytes();
                    b[offset..offset + src.len()].copy_from_slice(src);
                    Some(u64::from_ne_bytes(b))
                });
            }
        })
    }
}

fn check_align<T>() -> Result<(), ShmError> {
    if std::mem::align_of::<T>() > MAX_ALIGN {
        return Err(ShmError::Alignment(std::mem::align_of::<T>()));
    }
    Ok(())
}

/// One plain-old-data value in shared memory, without a lock.
///
/// `T` must be [`Pod`](bytemuck::Pod): integers, floats, arrays of them and `#[repr(C)]`
/// structs of them (derive `bytemuck::Pod` and `bytemuck::Zeroable`). Types holding pointers
/// or references are rejected at compile time:
///
/// ```compile_fail
/// let v = processing::RawValue::new(&5u8); // a reference is not plain old data
/// ```
///
/// Reads and writes are single copies; concurrent writers from several processes need a lock
/// (`processing_sync::Value`).
///
/// ```
/// let v = processing::RawValue::new(41i64).unwrap();
/// v.set(v.get() + 1);
/// assert_eq!(v.get(), 42);
/// ```
pub struct RawValue<T: Pod> {
    shm: SharedMemory,
    _type: PhantomData<T>,
}

impl<T: Pod> Clone for RawValue<T> {
    fn clone(&self) -> Self {
        RawValue {
            shm: self.shm.clone(),
            _type: PhantomData,
        }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawValue")
            .field("value", &self.get())
            .field("segment", &self.shm.name())
            .finish()
    }
}

impl<T: Pod> RawValue<T> {
    /// Creates a value in a fresh segment.
    pub fn new(value: T) -> Result<RawValue<T>, ShmError> {
        check_align::<T>()?;
        let shm = SharedMemory::create(std::mem::size_of::<T>().max(1))?;
        let v = RawValue {
            shm,
            _type: PhantomData,
        };
        v.set(value);
        Ok(v)
    }

    /// Views the start of an existing segment as a `T` (it must be large enough).
    pub fn from_shared_memory(shm: SharedMemory) -> Result<RawValue<T>, ShmError> {
        check_align::<T>()?;
        if shm.len() < std::mem::size_of::<T>() {
            return Err(ShmError::OutOfRange {
                index: std::mem::size_of::<T>(),
                len: shm.len(),
            });
        }
        Ok(RawValue {
            shm,
            _type: PhantomData,
        })
    }

    /// A copy of the value.
    pub fn get(&self) -> T {
        let mut v = T::zeroed();
        // SAFETY: the segment holds at least size_of::<T>() bytes (checked at construction) in
        // a live mapping; any bytes are a valid Pod value.
        unsafe { copy_out(self.as_ptr().cast(), bytemuck::bytes_of_mut(&mut v)) };
        v
    }

    /// Overwrites the value.
    pub fn set(&self, value: T) {
        // SAFETY: as in `get`; the memory is writable shared memory.
        unsafe { copy_in(self.as_ptr().cast(), bytemuck::bytes_of(&value)) }
    }

    /// The value's address in this process (valid while this handle lives).
    pub fn as_ptr(&self) -> *mut T {
        self.shm.as_ptr().cast()
    }

    /// The segment behind the value.
    pub fn shared_memory(&self) -> &SharedMemory {
        &self.shm
    }
}

impl<T: Pod> Serialize for RawValue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.shm.serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawValue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let shm = SharedMemory::deserialize(d)?;
        RawValue::from_shared_memory(shm).map_err(serde::de::Error::custom)
    }
}

/// A fixed-length array of plain-old-data values in shared memory, without a lock;
/// zero-filled on creation.
///
/// Element access is by copy and bounds-checked: an index out of range is an error (or
/// `None`), never undefined behaviour.
///
/// ```
/// let a = processing::RawArray::<f64>::new(4).unwrap();
/// assert_eq!(a.to_vec(), vec![0.0; 4]);
/// a.write(1, &[1.5, 2.5]).unwrap();
/// assert_eq!(a.get(2), Some(2.5));
/// assert_eq!(a.slice(1..3).unwrap(), vec![1.5, 2.5]);
/// assert!(a.set(4, 1.0).is_err());
/// assert_eq!(a.iter().sum::<f64>(), 4.0);
/// ```
pub struct RawArray<T: Pod> {
    shm: SharedMemory,
    len: usize,
    _type: PhantomData<T>,
}

impl<T: Pod> Clone for RawArray<T> {
    fn clone(&self) -> Self {
        RawArray {
            shm: self.shm.clone(),
            len: self.len,
            _type: PhantomData,
        }
    }
}

impl<T: Pod> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawArray")
            .field("len", &self.len)
            .field("segment", &self.shm.name())
            .finish()
    }
}

/// `range` over `len` elements as `(start, end)`, or the [`ShmError::OutOfRange`] the shared
/// arrays answer for it (the one check of `RawArray`, `Array` and their thread twins).
///
/// ```
/// assert_eq!(processing::shm::resolve_range(1..=2, 4).unwrap(), (1, 3));
/// assert!(processing::shm::resolve_range(2..5, 4).is_err());
/// ```
pub fn resolve_range(
    range: impl RangeBounds<usize>,
    len: usize,
) -> Result<(usize, usize), ShmError> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s
            .checked_add(1)
            .ok_or(ShmError::OutOfRange { index: s, len })?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e
            .checked_add(1)
            .ok_or(ShmError::OutOfRange { index: e, len })?,
        Bound::Excluded(&e) => e,
        Bound::Unbounded => len,
    };
    if end > len {
        return Err(ShmError::OutOfRange { index: end, len });
    }
    if start > end {
        return Err(ShmError::OutOfRange {
            index: start,
            len: end,
        });
    }
    Ok((start, end))
}

impl<T: Pod> RawArray<T> {
    /// Creates a zero-filled array of `len` elements (`len` may be 0).
    pub fn new(len: usize) -> Result<RawArray<T>, ShmError> {
        check_align::<T>()?;
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or(ShmError::InvalidSize(usize::MAX))?;
        let shm = SharedMemory::create(bytes.max(1))?;
        Ok(RawArray {
            shm,
            len,
            _type: PhantomData,
        })
    }

    /// Creates an array holding a copy of `items`.
    pub fn from_slice(items: &[T]) -> Result<RawArray<T>, ShmError> {
        let a = RawArray::new(items.len())?;
        a.write(0, items)?;
        Ok(a)
    }

    /// Views an existing segment as `len` elements (the segment must be large enough).
    pub fn from_shared_memory(shm: SharedMemory, len: usize) -> Result<RawArray<T>, ShmError> {
        check_align::<T>()?;
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or(ShmError::InvalidSize(usize::MAX))?;
        if bytes > shm.len() {
            return Err(ShmError::OutOfRange {
                index: bytes,
                len: shm.len(),
            });
        }
        Ok(RawArray {
            shm,
            len,
            _type: PhantomData,
        })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A copy of element `index`, or `None` when out of range.
    #[inline]
    pub fn get(&self, index: usize) -> Option<T> {
        if index >= self.len {
            return None;
        }
        let mut v = T::zeroed();
        // SAFETY: index < len, so the element lies within the segment's live mapping; any
        // bytes are a valid Pod value.
        unsafe {
            copy_out(
                self.as_ptr().add(index).cast(),
                bytemuck::bytes_of_mut(&mut v),
            )
        };
        Some(v)
    }

    /// Overwrites element `index`.
    pub fn set(&self, index: usize, value: T) -> Result<(), ShmError> {
        if index >= self.len {
            return Err(ShmError::OutOfRange {
                index,
                len: self.len,
            });
        }
        // SAFETY: as in `get`; the memory is writable.
        unsafe { copy_in(self.as_ptr().add(index).cast(), bytemuck::bytes_of(&value)) };
        Ok(())
    }

    /// A copy of the elements in `range` (a slice).
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Result<Vec<T>, ShmError> {
        let (start, end) = resolve_range(range, self.len)?;
        let mut out = vec![T::zeroed(); end - start];
        if std::mem::size_of::<T>() == 0 {
            return Ok(out);
        }
        // SAFETY: start..end lies within the array's live mapping; any bytes are valid Pod
        // values.
        unsafe {
            copy_out(
                self.as_ptr().add(start).cast(),
                bytemuck::cast_slice_mut(&mut out),
            )
        };
        Ok(out)
    }

    /// Copies `items` into the array starting at `start` (slice assignment).
    pub fn write(&self, start: usize, items: &[T]) -> Result<(), ShmError> {
        let end = start.checked_add(items.len()).ok_or(ShmError::OutOfRange {
            index: start,
            len: self.len,
        })?;
        if end > self.len {
            return Err(ShmError::OutOfRange {
                index: end,
                len: self.len,
            });
        }
        if std::mem::size_of::<T>() == 0 {
            return Ok(());
        }
        // SAFETY: start..end lies within the array's live, writable mapping.
        unsafe { copy_in(self.as_ptr().add(start).cast(), bytemuck::cast_slice(items)) };
        Ok(())
    }

    /// A copy of all elements.
    pub fn to_vec(&self) -> Vec<T> {
        self.slice(..).unwrap_or_default()
    }

    /// Iterates over copies of the elements (each read when the iterator reaches it).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.len).filter_map(move |i| self.get(i))
    }

    /// The first element's address in this process (valid while this handle lives).
    pub fn as_ptr(&self) -> *mut T {
        self.shm.as_ptr().cast()
    }

    /// Borrows the elements as a slice.
    ///
    /// # Safety
    /// No process may write to the array while the slice is in use.
    pub unsafe fn as_slice(&self) -> &[T] {
        // SAFETY: the elements lie within the mapping, which outlives &self; the caller
        // promises no concurrent writes.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len) }
    }

    /// Borrows the elements as a mutable slice.
    ///
    /// # Safety
    /// No other thread or process may access the array while the slice is in use (holding a
    /// lock that every user of the array takes is the usual way).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [T] {
        // SAFETY: as for `as_slice`; the caller promises exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.as_ptr(), self.len) }
    }

    /// The segment behind the array.
    pub fn shared_memory(&self) -> &SharedMemory {
        &self.shm
    }
}

#[derive(Serialize, Deserialize)]
struct ArrayWire {
    len: u64,
    shm: SharedMemory,
}

impl<T: Pod> Serialize for RawArray<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ArrayWire {
            len: self.len as u64,
            shm: self.shm.clone(),
        }
        .serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawArray<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = ArrayWire::deserialize(d)?;
        let len = usize::try_from(wire.len).map_err(serde::de::Error::custom)?;
        RawArray::from_shared_memory(wire.shm, len).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unaligned_copies_keep_their_neighbours() {
        let a = RawArray::<u8>::from_slice(&[0xEE; 21]).unwrap();
        a.write(3, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]).unwrap();
        let mut want = vec![0xEE; 21];
        want[3..14].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(a.to_vec(), want);
        assert_eq!(a.slice(5..9).unwrap(), vec![3, 4, 5, 6]);
        let v = RawValue::new([7u8, 8, 9]).unwrap();
        assert_eq!(v.get(), [7, 8, 9]);
    }

    #[test]
    fn concurrent_writers_of_neighbouring_bytes_lose_nothing() {
        // Two writers set interleaved bytes of the same words many times: the merge of a
        // partial word never overwrites the other writer's bytes with stale ones.
        let a = RawArray::<u8>::new(64).unwrap();
        std::thread::scope(|s| {
            for parity in 0..2u8 {
                let a = &a;
                s.spawn(move || {
                    for round in 0..2000u32 {
                        for i in (parity as usize..64).step_by(2) {
                            a.set(i, (round % 250) as u8 + 1 + parity).unwrap();
                        }
                    }
                });
            }
        });
        let v = a.to_vec();
        for (i, b) in v.iter().enumerate() {
            let parity = (i % 2) as u8;
            assert_eq!(*b, (1999 % 250) as u8 + 1 + parity, "byte {i}");
        }
    }

    /// Words standing in for a segment's bytes under Miri, which cannot map one.
    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    /// The byte address `offset` bytes into `words` (derived from the atomics, so writing
    /// through it is allowed).
    fn at(words: &[AtomicU64], offset: usize) -> *mut u8 {
        words.as_ptr().cast::<u8>().cast_mut().wrapping_add(offset)
    }

    /// Under Miri (`cargo xtask models`): the word copies of `RawValue`/`RawArray` at every
    /// alignment and length over a few words: the bytes asked for, and the neighbours kept.
    #[test]
    fn miri_raw_word_copies_at_every_offset() {
        let w = words(4);
        for start in 0..16 {
            for len in 0..=(32 - start).min(17) {
                // SAFETY: [0, 32) lies in the four words.
                unsafe { copy_in(at(&w, 0), &[0xEE; 32]) };
                let src: Vec<u8> = (0..len as u8).map(|i| i + 1).collect();
                // SAFETY: start + len ≤ 32.
                unsafe { copy_in(at(&w, start), &src) };
                let mut all = [0u8; 32];
                // SAFETY: as above.
                unsafe { copy_out(at(&w, 0), &mut all) };
                let mut want = [0xEE; 32];
                want[start..start + len].copy_from_slice(&src);
                assert_eq!(all, want, "start {start} len {len}");
                let mut back = vec![0u8; len];
                // SAFETY: as above.
                unsafe { copy_out(at(&w, start), &mut back) };
                assert_eq!(back, src);
            }
        }
    }

    /// Under Miri: two threads write interleaved bytes of the same words while a third reads
    /// them; every access is atomic (Miri's race detector would report a plain one), and the
    /// merge of a partial word loses neither writer's bytes.
    #[test]
    fn miri_raw_concurrent_partial_word_writers_race_free() {
        let w = words(2);
        let rounds: u8 = if cfg!(miri) { 20 } else { 200 };
        std::thread::scope(|s| {
            for parity in 0..2usize {
                let w = &w;
                s.spawn(move || {
                    for round in 1..=rounds {
                        for i in (parity..16).step_by(2) {
                            // SAFETY: i < 16, inside the two words.
                            unsafe { copy_in(at(w, i), &[round + parity as u8]) };
                        }
                    }
                });
            }
            let w = &w;
            s.spawn(move || {
                let mut seen = [0u8; 16];
                for _ in 0..rounds {
                    // SAFETY: [1, 13) lies in the two words.
                    unsafe { copy_out(at(w, 1), &mut seen[1..13]) };
                }
            });
        });
        let mut all = [0u8; 16];
        // SAFETY: [0, 16) is the two words.
        unsafe { copy_out(at(&w, 0), &mut all) };
        for (i, b) in all.iter().enumerate() {
            assert_eq!(*b, rounds + (i % 2) as u8, "byte {i}");
        }
    }
}
