//! The algorithm of a queue, over one region of shared memory: a header of atomics followed by
//! a byte ring of framed items.
//!
//! ```text
//! offset 0    Header (256 bytes): magic, version, capacity, max_items, closed, done, ...
//!             put side (own cache line): lock, commit, seq, wake_flag, cache of get.commit
//!             get side (own cache line): lock, commit, seq, wake_flag, cache of put.commit
//! offset 256  data: `capacity` bytes (a power of two), frames at 4-byte aligned positions:
//!             u32 word = kind << 30 | len, then `len` payload bytes, padded to 4
//! ```
//!
//! Each side's `commit` word packs a 40-bit byte position and a 24-bit item count (both
//! monotonic, compared with wrapping arithmetic). Producers serialise among themselves with the
//! put lock, consumers with the get lock; one producer and one consumer never touch a common lock.
//!
//! Invariant: an item is visible to consumers exactly when the single `Release` store of the
//! producer's new `put.commit` has happened; bytes beyond it are scratch. Likewise an item is
//! consumed exactly when the consumer's store of `get.commit` has happened. A process killed at
//! any point of a put or get therefore leaves a consistent ring: the next locker takes the lock
//! over (`owner_died`) and finds nothing to repair.

use crate::loom::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use processing_core::os::SpinPolicy;
use std::ptr::NonNull;

use super::lock::PidLock;
use super::park::{self, Deadline};

const MAGIC: u64 = u64::from_le_bytes(*b"prcQUEUE");
const VERSION: u32 = 3;

/// Bytes before the data area.
#[cfg(not(loom))]
pub(crate) const HEADER_BYTES: usize = 1024;
/// Under loom the header's atomics are model objects, far larger than their bytes: the model
/// ring leaves room for them (the layout is the model's own, never shared with a process).
#[cfg(loom)]
pub(crate) const HEADER_BYTES: usize = 1 << 17;
/// Smallest ring.
pub(crate) const MIN_CAPACITY: u64 = 1 << 10;
/// Largest ring: every item takes at least 4 bytes, and at most 2^22 items may be in flight so
/// that the 24-bit counts never wrap into ambiguity.
pub(crate) const MAX_CAPACITY: u64 = 1 << 26;

const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const POS_MASK: u64 = (1 << 40) - 1;

const KIND_SHIFT: u32 = 30;
const LEN_MASK: u32 = (1 << KIND_SHIFT) - 1;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// The item's encoding.
    Inline = 0,
    /// A reference to a segment holding the item's encoding.
    Spilled = 1,
    /// Padding up to the end of the ring (never handed out).
    Skip = 2,
}

fn pack(pos: u64, count: u64) -> u64 {
    ((pos & POS_MASK) << COUNT_BITS) | (count & COUNT_MASK)
}
fn pos_of(commit: u64) -> u64 {
    commit >> COUNT_BITS
}
fn count_of(commit: u64) -> u64 {
    commit & COUNT_MASK
}
fn items_between(head: u64, tail: u64) -> u64 {
    count_of(tail).wrapping_sub(count_of(head)) & COUNT_MASK
}
fn bytes_between(head: u64, tail: u64) -> u64 {
    pos_of(tail).wrapping_sub(pos_of(head)) & POS_MASK
}
fn round4(n: u64) -> u64 {
    (n + 3) & !3
}

/// One side (producers or consumers) of the queue, on its own cache line.
#[repr(C, align(64))]
#[derive(Debug)]
struct Side {
    lock: PidLock,
    /// This side's committed position and count.
    commit: AtomicU64,
    /// Bumped after each commit; the other side sleeps on it.
    seq: AtomicU32,
    /// Raised by a process about to sleep on `seq` (see `park`).
    wake_flag: AtomicU32,
    /// The other side's commit as last read (under this side's lock); lags, never leads.
    cache: AtomicU64,
}

#[repr(C, align(64))]
#[derive(Debug)]
struct Header {
    magic: u64,
    version: u32,
    closed: AtomicU32,
    capacity: u64,
    max_items: u64,
    /// `task_done` calls so far (wrapping); unfinished tasks = put count − done.
    done: AtomicU32,
    join_wake_flag: AtomicU32,
    put: Side,
    get: Side,
    overflow: OverflowHeader,
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_BYTES);

/// Bytes of a [`Slot`]: a serialized segment handle (name and size) fits with room to spare.
pub(crate) const SLOT_BYTES: usize = 120;

/// A segment reference kept in shared memory: its name (to attach) and, for the references
/// that keep a segment alive, its serialized handle (a handle in flight).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Slot {
    name_len: AtomicU32,
    handle_len: AtomicU32,
    name: [AtomicU8; SLOT_BYTES],
    handle: [AtomicU8; SLOT_BYTES],
}

impl Slot {
    /// Writes `name` and `handle` (each at most [`SLOT_BYTES`]); the caller publishes the slot
    /// afterwards with a release store elsewhere.
    pub(crate) fn set(&self, name: &[u8], handle: &[u8]) -> bool {
        if name.len() > SLOT_BYTES || handle.len() > SLOT_BYTES {
            return false;
        }
        for (d, &b) in self.name.iter().zip(name) {
            d.store(b, Ordering::Relaxed);
        }
        for (d, &b) in self.handle.iter().zip(handle) {
            d.store(b, Ordering::Relaxed);
        }
        self.name_len.store(name.len() as u32, Ordering::Relaxed);
        self.handle_len
            .store(handle.len() as u32, Ordering::Relaxed);
        true
    }

    /// Copies another slot.
    pub(crate) fn copy_from(&self, other: &Slot) {
        let (name, handle) = other.get();
        self.set(&name, &handle);
    }

    /// The name and handle bytes (empty when unset).
    pub(crate) fn get(&self) -> (Vec<u8>, Vec<u8>) {
        let n = (self.name_len.load(Ordering::Relaxed) as usize).min(SLOT_BYTES);
        let h = (self.handle_len.load(Ordering::Relaxed) as usize).min(SLOT_BYTES);
        (
            self.name[..n]
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            self.handle[..h]
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
        )
    }

    /// Whether the slot names `name`.
    pub(crate) fn names(&self, name: &[u8]) -> bool {
        self.name_len.load(Ordering::Relaxed) as usize == name.len()
            && self
                .name
                .iter()
                .zip(name)
                .all(|(a, &b)| a.load(Ordering::Relaxed) == b)
    }

    pub(crate) fn clear(&self) {
        self.name_len.store(0, Ordering::Relaxed);
        self.handle_len.store(0, Ordering::Relaxed);
    }
}

/// The overflow chain of an unbounded queue (see `segment.rs`): where items go when the ring
/// is full. In the queue's own ring: `active`, `head`, `tail` and the counters. In a chain
/// segment's ring: `next`, published by `has_next`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct OverflowHeader {
    /// 1 while the chain holds (or may hold) items: every put goes to its tail, and gets take
    /// from its head once the ring is empty. Written under both locks when it ends, under the
    /// put lock when it starts.
    pub(crate) active: AtomicU32,
    /// The chain segment after this one is in `next` (a chain segment's ring only).
    pub(crate) has_next: AtomicU32,
    /// Items put into the chain (under the put lock) and taken from it (under the get lock).
    pub(crate) put: AtomicU64,
    pub(crate) got: AtomicU64,
    /// The oldest chain segment: its name and the handle in flight that keeps it alive
    /// (written under the get lock, or under the put lock while `active` is 0).
    pub(crate) head: Slot,
    /// The newest chain segment, where puts go (its name only; under the put lock).
    pub(crate) tail: Slot,
    /// The next chain segment (its name and the handle in flight that keeps it alive).
    pub(crate) next: Slot,
}

/// Where an unbounded queue's put stores a frame the ring does not take (see [`Ring::put`]).
pub(crate) type Spill<'a> = dyn Fn(FrameKind, &[u8]) -> Result<(), PutFail> + 'a;

#[cfg(loom)]
impl Header {
    /// A zero header: loom's atomics are objects of the model, not zero bytes.
    fn fresh() -> Header {
        let side = || Side {
            lock: PidLock::new(),
            commit: AtomicU64::new(0),
            seq: AtomicU32::new(0),
            wake_flag: AtomicU32::new(0),
            cache: AtomicU64::new(0),
        };
        Header {
            magic: 0,
            version: 0,
            closed: AtomicU32::new(0),
            capacity: 0,
            max_items: 0,
            done: AtomicU32::new(0),
            join_wake_flag: AtomicU32::new(0),
            put: side(),
            get: side(),
            overflow: OverflowHeader::fresh(),
        }
    }
}

#[cfg(loom)]
impl Slot {
    fn fresh() -> Slot {
        Slot {
            name_len: AtomicU32::new(0),
            handle_len: AtomicU32::new(0),
            name: std::array::from_fn(|_| AtomicU8::new(0)),
            handle: std::array::from_fn(|_| AtomicU8::new(0)),
        }
    }
}

#[cfg(loom)]
impl OverflowHeader {
    fn fresh() -> OverflowHeader {
        OverflowHeader {
            active: AtomicU32::new(0),
            has_next: AtomicU32::new(0),
            put: AtomicU64::new(0),
            got: AtomicU64::new(0),
            head: Slot::fresh(),
            tail: Slot::fresh(),
            next: Slot::fresh(),
        }
    }
}

/// Why a put did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutFail {
    Full,
    Closed,
    Timeout,
    /// An unbounded queue's overflow chain could not take the item (no segment for it).
    Overflow,
}

/// Why a get returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GetFail {
    Empty,
    Closed,
    Timeout,
    /// The ring held a frame that cannot be valid; the ring was emptied to stay usable.
    Corrupt,
}

/// Why a region is not a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttachFail {
    TooSmall,
    BadMagic,
    BadVersion,
    BadCapacity,
}

/// A view of a queue region. It does not own the memory: its owner keeps the mapping alive
/// for as long as the `Ring` exists. One per process and queue (every handle of the queue in
/// a process shares it), with that process's spin policies.
#[derive(Debug)]
pub(crate) struct Ring {
    header: NonNull<Header>,
    data: NonNull<u8>,
    capacity: u64,
    max_items: u64,
    /// Producers' waits: for the put lock, for room.
    put_waits: SideWaits,
    /// Consumers' waits: for the get lock, for an item.
    get_waits: SideWaits,
    /// `join`'s waits for the last `task_done`.
    join_waits: SpinPolicy,
}

/// The spin policies of one side's waits in this process (see `park`): a side lock is held for
/// one copy, while the other side may take any time, so each learns its own wait length.
#[derive(Debug, Default)]
struct SideWaits {
    lock: SpinPolicy,
    peer: SpinPolicy,
}

// SAFETY: all shared state behind the pointers is accessed through atomics, or (data bytes)
// under the side locks following the commit protocol; the pointers stay valid while the owner
// keeps the mapping, which it does for the Ring's whole life.
unsafe impl Send for Ring {}
// SAFETY: as for Send; no method hands out references that outlive the synchronisation.
unsafe impl Sync for Ring {}

/// A held side lock, released when dropped.
pub(crate) struct SideGuard<'a>(&'a PidLock);
impl Drop for SideGuard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

impl Side {
    /// Takes this side's lock (by [`lock_deadline`]), spinning as `waits` allows; `None` when
    /// the deadline passes first.
    fn guard(&self, deadline: Deadline, waits: &SideWaits) -> Option<SideGuard<'_>> {
        self.lock.lock(lock_deadline(deadline), &waits.lock)?;
        Some(SideGuard(&self.lock))
    }
}

/// The deadline used to take a side lock: locks are only held for short, bounded work, so even
/// a non-blocking operation waits for one.
fn lock_deadline(deadline: Deadline) -> Deadline {
    match deadline {
        Deadline::Now => Deadline::Never,
        d => d,
    }
}

impl Ring {
    /// Bytes a region needs for a ring of `capacity` bytes.
    pub(crate) fn region_len(capacity: u64) -> usize {
        HEADER_BYTES + capacity as usize
    }

    /// Writes a fresh header into a zeroed region.
    ///
    /// # Safety
    /// `base` is valid for reads and writes of `len` bytes, aligned to 64, zero-filled, not yet
    /// used by anyone, and stays mapped for the life of the returned ring.
    pub(crate) unsafe fn init(
        base: NonNull<u8>,
        len: usize,
        capacity: u64,
        max_items: u64,
    ) -> Ring {
        debug_assert!(capacity.is_power_of_two() && len >= Self::region_len(capacity));
        let header = base.cast::<Header>();
        // SAFETY: the caller guarantees exclusive access to a zeroed, aligned region large enough
        // for the header; the fields written are plain integers (atomics are zero-valid; under
        // loom, whose atomics are not, a whole fresh header is written first).
        unsafe {
            let h = header.as_ptr();
            #[cfg(loom)]
            h.write(Header::fresh());
            (*h).capacity = capacity;
            (*h).max_items = max_items;
            (*h).version = VERSION;
            (*h).magic = MAGIC;
        }
        // SAFETY: the data area starts inside the region (len ≥ HEADER_BYTES + capacity).
        let data = unsafe { base.add(HEADER_BYTES) };
        Ring::view(header, data, capacity, max_items)
    }

    /// Views a region initialised by [`Ring::init`] (in this or another process).
    ///
    /// # Safety
    /// `base` is valid for reads and writes of `len` bytes, aligned to 64, shared only with
    /// other users of this protocol, and stays mapped for the life of the returned ring.
    pub(crate) unsafe fn attach(base: NonNull<u8>, len: usize) -> Result<Ring, AttachFail> {
        if len < HEADER_BYTES {
            return Err(AttachFail::TooSmall);
        }
        let header = base.cast::<Header>();
        // SAFETY: the region holds at least a header; its constant fields are written once before
        // the region is shared and never again.
        let (magic, version, capacity, max_items) = unsafe {
            let h = header.as_ptr();
            ((*h).magic, (*h).version, (*h).capacity, (*h).max_items)
        };
        if magic != MAGIC {
            return Err(AttachFail::BadMagic);
        }
        if version != VERSION {
            return Err(AttachFail::BadVersion);
        }
        if !capacity.is_power_of_two()
            || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity)
            || len < Self::region_len(capacity)
        {
            return Err(AttachFail::BadCapacity);
        }
        // SAFETY: the data area lies inside the region, as just checked.
        let data = unsafe { base.add(HEADER_BYTES) };
        Ok(Ring::view(header, data, capacity, max_items))
    }

    fn view(header: NonNull<Header>, data: NonNull<u8>, capacity: u64, max_items: u64) -> Ring {
        Ring {
            header,
            data,
            capacity,
            max_items,
            put_waits: SideWaits::default(),
            get_waits: SideWaits::default(),
            join_waits: SpinPolicy::new(),
        }
    }

    fn h(&self) -> &Header {
        // SAFETY: the header is valid for the ring's life (constructor contract); shared fields
        // are atomics, the others are never written after initialisation.
        unsafe { self.header.as_ref() }
    }

    /// Capacity of the data area in bytes.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Item bound (0: bounded by bytes only).
    pub(crate) fn max_items(&self) -> u64 {
        self.max_items
    }

    /// Largest payload stored inline; bigger items are spilled by the caller.
    pub(crate) fn max_inline(&self) -> usize {
        (self.capacity / 4 - 4) as usize
    }

    /// Items put and not yet got (the overflow chain's too).
    pub(crate) fn len(&self) -> usize {
        let h = self.h();
        let head = h.get.commit.load(Ordering::Acquire);
        let tail = h.put.commit.load(Ordering::Acquire);
        let chained = h
            .overflow
            .put
            .load(Ordering::Acquire)
            .saturating_sub(h.overflow.got.load(Ordering::Acquire));
        (items_between(head, tail) + chained) as usize
    }

    /// The overflow chain's words.
    pub(crate) fn overflow(&self) -> &OverflowHeader {
        &self.h().overflow
    }

    /// Takes the put lock (waiting for ever: it is only held for short, bounded work).
    pub(crate) fn lock_put(&self) -> SideGuard<'_> {
        let h = self.h();
        // Waiting for ever, `lock` always takes it.
        let _ = h.put.lock.lock(Deadline::Never, &self.put_waits.lock);
        SideGuard(&h.put.lock)
    }

    /// Whether `max_items` items are in the queue.
    pub(crate) fn is_full(&self) -> bool {
        self.max_items != 0 && self.len() as u64 >= self.max_items
    }

    /// Marks the queue closed and wakes every sleeper.
    pub(crate) fn close(&self) {
        let h = self.h();
        h.closed.store(1, Ordering::SeqCst);
        park::bump_and_wake(&h.put.seq, &h.put.wake_flag);
        park::bump_and_wake(&h.get.seq, &h.get.wake_flag);
    }

    /// Whether [`Ring::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.h().closed.load(Ordering::Acquire) != 0
    }

    fn room(&self, tail: u64, head: u64, frame: u64) -> Option<u64> {
        if self.max_items != 0 && items_between(head, tail) >= self.max_items {
            return None;
        }
        let off = pos_of(tail) & (self.capacity - 1);
        let rest = self.capacity - off;
        let need = if frame <= rest { frame } else { rest + frame };
        (bytes_between(head, tail) + need <= self.capacity).then_some(need)
    }

    fn write_word(&self, off: u64, word: u32) {
        // SAFETY: off is 4-aligned and ≤ capacity − 4, inside the data area; the bytes are
        // beyond put.commit, so no consumer reads them, and only the put-lock holder writes them.
        unsafe {
            let p = self.data.as_ptr().add(off as usize);
            crate::loom::wrote(p, 4);
            p.cast::<u32>().write(word.to_le())
        };
    }

    fn read_word(&self, off: u64) -> u32 {
        // SAFETY: off is 4-aligned and ≤ capacity − 4; the bytes are committed and before
        // get.commit is advanced no producer writes them.
        u32::from_le(unsafe {
            let p = self.data.as_ptr().add(off as usize);
            crate::loom::read(p, 4);
            p.cast::<u32>().read()
        })
    }

    /// Puts one frame of `kind` holding `payload` (at most [`Ring::max_inline`] bytes).
    ///
    /// With `overflow` (an unbounded queue), a put never waits for room: while the overflow
    /// chain is active, or when the ring is full, `overflow` stores the frame in the chain,
    /// called with the put lock held (so puts stay in order).
    pub(crate) fn put(
        &self,
        kind: FrameKind,
        payload: &[u8],
        deadline: Deadline,
        overflow: Option<&Spill<'_>>,
    ) -> Result<(), PutFail> {
        debug_assert!(payload.len() <= self.max_inline());
        let h = self.h();
        let frame = 4 + round4(payload.len() as u64);
        loop {
            if self.is_closed() {
                return Err(PutFail::Closed);
            }
            let _guard = h
                .put
                .guard(deadline, &self.put_waits)
                .ok_or(PutFail::Timeout)?;
            if let Some(spill) = overflow {
                if h.overflow.active.load(Ordering::Acquire) != 0 {
                    let r = spill(kind, payload);
                    drop(_guard);
                    if r.is_ok() {
                        park::bump_and_wake(&h.put.seq, &h.put.wake_flag);
                    }
                    return r;
                }
            }
            let tail = h.put.commit.load(Ordering::Acquire);
            let mut head = h.put.cache.load(Ordering::Relaxed);
            let mut room = self.room(tail, head, frame);
            if room.is_none() {
                head = h.get.commit.load(Ordering::Acquire);
                h.put.cache.store(head, Ordering::Relaxed);
                room = self.room(tail, head, frame);
            }
            if let Some(need) = room {
                let mut off = pos_of(tail) & (self.capacity - 1);
                if need != frame {
                    // Pad to the end of the ring so the frame stays contiguous.
                    let rest = self.capacity - off;
                    self.write_word(
                        off,
                        ((FrameKind::Skip as u32) << KIND_SHIFT) | (rest - 4) as u32,
                    );
                    off = 0;
                }
                self.write_word(off, ((kind as u32) << KIND_SHIFT) | payload.len() as u32);
                // SAFETY: off + 4 + payload.len() ≤ capacity (the frame fits contiguously, as
                // `room` checked); the bytes are beyond put.commit, owned by this lock holder.
                unsafe {
                    let dst = self.data.as_ptr().add(off as usize + 4);
                    crate::loom::wrote(dst, payload.len());
                    std::ptr::copy_nonoverlapping(payload.as_ptr(), dst, payload.len());
                }
                let new_tail = pack(pos_of(tail) + need, count_of(tail) + 1);
                h.put.commit.store(new_tail, Ordering::Release);
                drop(_guard);
                park::bump_and_wake(&h.put.seq, &h.put.wake_flag);
                return Ok(());
            }
            if let Some(spill) = overflow {
                let r = spill(kind, payload);
                drop(_guard);
                if r.is_ok() {
                    park::bump_and_wake(&h.put.seq, &h.put.wake_flag);
                }
                return r;
            }
            drop(_guard);
            if deadline == Deadline::Now {
                return Err(PutFail::Full);
            }
            let has_room = || {
                let tail = h.put.commit.load(Ordering::Acquire);
                let head = h.get.commit.load(Ordering::Acquire);
                self.is_closed() || self.room(tail, head, frame).is_some()
            };
            let peer = &self.put_waits.peer;
            if !park::wait_until(peer, &h.get.seq, &h.get.wake_flag, deadline, has_room) {
                return Err(PutFail::Timeout);
            }
        }
    }

    /// Takes the oldest frame and hands its kind and payload to `read`, whose result is
    /// returned. The frame is consumed only after `read` returns.
    ///
    /// Once the ring is empty while the overflow chain is active, `overflow` is called with
    /// the get lock held and `read`: it returns `Err(read)` when the chain turned out empty
    /// (and ended).
    pub(crate) fn get<R, F: FnOnce(FrameKind, &[u8]) -> R>(
        &self,
        deadline: Deadline,
        read: F,
        overflow: &dyn Fn(F) -> Result<R, F>,
    ) -> Result<R, GetFail> {
        let h = self.h();
        let mut read = read;
        loop {
            let guard = h
                .get
                .guard(deadline, &self.get_waits)
                .ok_or(GetFail::Timeout)?;
            let head = h.get.commit.load(Ordering::Acquire);
            let mut tail = h.get.cache.load(Ordering::Relaxed);
            if items_between(head, tail) == 0 {
                tail = h.put.commit.load(Ordering::Acquire);
                h.get.cache.store(tail, Ordering::Relaxed);
            }
            if items_between(head, tail) != 0 {
                let result = self.take(head, tail, read);
                drop(guard);
                if result.is_ok() {
                    park::bump_and_wake(&h.get.seq, &h.get.wake_flag);
                }
                return result;
            }
            if h.overflow.active.load(Ordering::Acquire) != 0 {
                // The commit read above may predate items put into the ring just before the
                // chain started (a consumer preempted between the two loads): they come
                // first. Every ring item was committed before the `active` store this load
                // saw (ring puts stop while the chain is active), so this load finds them.
                let now = h.put.commit.load(Ordering::Acquire);
                if items_between(head, now) != 0 {
                    h.get.cache.store(now, Ordering::Relaxed);
                    drop(guard);
                    continue;
                }
                match overflow(read) {
                    Ok(result) => {
                        drop(guard);
                        park::bump_and_wake(&h.get.seq, &h.get.wake_flag);
                        return Ok(result);
                    }
                    // The chain ended empty; new items go to the ring again.
                    Err(back) => {
                        read = back;
                        drop(guard);
                        continue;
                    }
                }
            }
            drop(guard);
            if self.is_closed() {
                return Err(GetFail::Closed);
            }
            if deadline == Deadline::Now {
                return Err(GetFail::Empty);
            }
            let ready = || {
                let tail = h.put.commit.load(Ordering::Acquire);
                let head = h.get.commit.load(Ordering::Acquire);
                self.is_closed()
                    || items_between(head, tail) != 0
                    || h.overflow.active.load(Ordering::Acquire) != 0
            };
            let peer = &self.get_waits.peer;
            if !park::wait_until(peer, &h.put.seq, &h.put.wake_flag, deadline, ready) {
                return Err(GetFail::Timeout);
            }
        }
    }

    /// Reads the frame at `head` (the get lock is held and at least one item is committed).
    fn take<R>(
        &self,
        head: u64,
        tail: u64,
        read: impl FnOnce(FrameKind, &[u8]) -> R,
    ) -> Result<R, GetFail> {
        let h = self.h();
        let mut pos = pos_of(head);
        let mut available = bytes_between(head, tail);
        let mut word = self.read_word(pos & (self.capacity - 1));
        if word >> KIND_SHIFT == FrameKind::Skip as u32 {
            let skip = 4 + round4((word & LEN_MASK) as u64);
            if skip > available || (pos & (self.capacity - 1)) + skip != self.capacity {
                return Err(self.corrupt(head, tail));
            }
            pos += skip;
            available -= skip;
            word = self.read_word(0);
        }
        let kind = match word >> KIND_SHIFT {
            0 => FrameKind::Inline,
            1 => FrameKind::Spilled,
            _ => return Err(self.corrupt(head, tail)),
        };
        let len = (word & LEN_MASK) as u64;
        let off = pos & (self.capacity - 1);
        let frame = 4 + round4(len);
        if frame > available || off + frame > self.capacity {
            return Err(self.corrupt(head, tail));
        }
        // SAFETY: [off + 4, off + 4 + len) lies inside the data area and before put.commit
        // (checked against `available`); producers do not write it until get.commit passes it.
        let payload = unsafe {
            let p = self.data.as_ptr().add(off as usize + 4);
            crate::loom::read(p, len as usize);
            std::slice::from_raw_parts(p, len as usize)
        };
        let result = read(kind, payload);
        h.get
            .commit
            .store(pack(pos + frame, count_of(head) + 1), Ordering::Release);
        Ok(result)
    }

    /// Empties a ring that holds an impossible frame, so that it stays usable.
    fn corrupt(&self, head: u64, tail: u64) -> GetFail {
        tracing::error!(
            head,
            tail,
            "queue ring holds a malformed frame; dropping its contents"
        );
        self.h().get.commit.store(tail, Ordering::Release);
        GetFail::Corrupt
    }

    /// Marks one task done; false if there was no unfinished task.
    pub(crate) fn task_done(&self) -> bool {
        let h = self.h();
        loop {
            let done = h.done.load(Ordering::SeqCst);
            let put = self.put_count();
            let unfinished = put.wrapping_sub(done as u64) & COUNT_MASK;
            if unfinished == 0 {
                return false;
            }
            if h.done
                .compare_exchange(
                    done,
                    done.wrapping_add(1),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
            {
                if unfinished == 1 {
                    park::wake(&h.done, &h.join_wake_flag);
                }
                return true;
            }
        }
    }

    /// Items put and not yet marked done.
    pub(crate) fn unfinished(&self) -> u64 {
        let h = self.h();
        let done = h.done.load(Ordering::SeqCst);
        self.put_count().wrapping_sub(done as u64) & COUNT_MASK
    }

    /// Items ever put, the overflow chain's included (modulo 2^24).
    fn put_count(&self) -> u64 {
        let h = self.h();
        count_of(h.put.commit.load(Ordering::Acquire))
            .wrapping_add(h.overflow.put.load(Ordering::Acquire))
            & COUNT_MASK
    }

    /// Waits until every item put has been marked done; false on timeout.
    pub(crate) fn join(&self, deadline: Deadline) -> bool {
        let h = self.h();
        let ready = || self.unfinished() == 0;
        park::wait_until(
            &self.join_waits,
            &h.done,
            &h.join_wake_flag,
            deadline,
            ready,
        )
    }

    /// Test hook: makes both side locks look held by process `pid`, as if it died inside a
    /// put and a get.
    /// Test hook: what this process's waits on the queue learnt so far.
    #[cfg(test)]
    pub(crate) fn wait_statistics(&self) -> String {
        format!(
            "{:?} {:?} {:?}",
            self.put_waits, self.get_waits, self.join_waits
        )
    }

    #[cfg(test)]
    pub(crate) fn hold_locks_as(&self, owner: processing_shm::owner::Owner) {
        let h = self.h();
        h.put.lock.plant(owner);
        h.get.lock.plant(owner);
    }
}
