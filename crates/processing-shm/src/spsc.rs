//! The one single-producer, single-consumer message ring of the workspace: the pool's reply
//! rings (a worker publishes its replies to its supervisor) and the manager's mailboxes (one
//! ring per direction of a local connection) are this ring.
//!
//! Layout at the ring's offset in its mapping: a header of three cache lines (the producer's
//! commit position, the consumer's release position, the consumer's "sleeping" word), then
//! `capacity` bytes of entries. Positions count bytes since the start and only grow; an entry
//! lives at `position % capacity`. An entry is `u32 length` then the message, padded to 8
//! bytes; an entry never wraps: the producer writes [`WRAP`] as the length and continues at
//! the start. A message is at most [`Size::max_message`] bytes; larger ones are the caller's
//! to send elsewhere (both users announce them with a message in the ring, so that the ring
//! fixes the order of everything).
//!
//! Commit is message-granular: the producer stages whole messages ([`Producer::write`]) and
//! publishes them with one store of its position ([`Producer::commit`]); the consumer sees a
//! message entirely or not at all, and a producer that dies mid-message leaves nothing torn.
//! The consumer gives bytes back by storing its position when it moves past a message.
//!
//! Sleeping: a consumer that found the ring empty announces it ([`Consumer::prepare_sleep`]:
//! sets the sleeping word, then looks once more). A producer that committed and finds the word
//! set clears it and must wake the consumer: [`Producer::commit`] says so. Both sides use
//! sequentially consistent operations for the word and the commit position, so at least one
//! of them sees the other's store: no wake-up is lost. How the consumer sleeps is the user's
//! choice: on the sleeping word itself through the one futex ([`Consumer::sleep`], woken by
//! [`Producer::wake`]; the mailbox), or anywhere else between `prepare_sleep` and
//! [`Consumer::end_sleep`], woken by the user's own bell (the pool's supervisor sleeps in
//! `poll` on its socket, which also reports the worker's death, and the worker writes a
//! wake-up frame there).
//!
//! Invariant: the producer never writes bytes the consumer has not released, and the
//! consumer never reads past the committed position; the consumer's messages stay untouched
//! until it takes the next one or releases them ([`Consumer::release`]), which the borrow of
//! the message prevents while it is in use.
//!
//! ```
//! # #[cfg(target_os = "linux")] {
//! use std::sync::Arc;
//! use processing::shm::spsc::{self, Size};
//! use processing::shm::Region;
//!
//! let size = Size { capacity: 4096, max_message: 1024 };
//! let region = Arc::new(Region::anonymous(c"example-ring", size.bytes()).unwrap());
//! let mut tx = spsc::Producer::new(region.clone(), 0, size).unwrap();
//! let mut rx = spsc::Consumer::new(region, 0, size).unwrap();
//! tx.write(&[b"hello, ", b"ring"]).unwrap();
//! assert!(rx.take().unwrap().is_none()); // staged, not committed
//! let _must_wake = tx.commit();
//! assert_eq!(rx.take().unwrap(), Some(&b"hello, ring"[..]));
//! # }
//! ```

use std::io;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use crate::loom::{AtomicU32, AtomicU64, Ordering};
use crate::model::{futex_wait, futex_wake, read, wrote};

/// The memory rings live in: a shared mapping ([`Region`](crate::Region)); under loom a heap
/// region whose atomics the model built ([`build`]).
#[cfg(not(loom))]
pub type Mapping = crate::Region;
/// The memory rings live in: a shared mapping ([`Region`](crate::Region)); under loom a heap
/// region whose atomics the model built ([`build`]).
#[cfg(loom)]
pub type Mapping = crate::model::HeapRegion;

/// The length word that sends the consumer to the start of the ring.
pub const WRAP: u32 = u32::MAX;

#[repr(C, align(64))]
struct Line<T>(T);

/// The ring's header; each word on its own cache line.
#[repr(C)]
struct Header {
    /// The producer's commit: every message before this position is published.
    write: Line<AtomicU64>,
    /// The consumer's release: the bytes before this position may be written again.
    read: Line<AtomicU64>,
    /// 1 while the consumer announces that it sleeps (the futex word of a futex sleeper).
    sleeping: Line<AtomicU32>,
}

/// Bytes of the header before a ring's entries.
pub const HEADER: usize = std::mem::size_of::<Header>();

/// A ring's dimensions (both sides must use the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Bytes of entries: a multiple of 8.
    pub capacity: usize,
    /// The largest message kept in the ring, at most `capacity / 2 - 8` (so that a message
    /// always finds room once the consumer released everything, even after a wrap).
    pub max_message: usize,
}

impl Size {
    /// Bytes a ring of this size takes in its mapping (header included).
    pub const fn bytes(self) -> usize {
        HEADER + self.capacity
    }

    fn valid(self) -> bool {
        self.capacity >= 64
            && self.capacity.is_multiple_of(8)
            && self.capacity <= u32::MAX as usize
            && self.max_message + 8 <= self.capacity / 2
    }
}

fn padded(len: usize) -> usize {
    (len + 7) & !7
}

/// A message too large for the ring (nothing was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// The ring's data did not make sense (only a broken or hostile peer could cause it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// One side's view of a ring: the mapping it keeps alive and the addresses in it.
#[derive(Debug)]
struct Raw {
    header: NonNull<Header>,
    data: NonNull<u8>,
    size: Size,
    _map: Arc<Mapping>,
}

// SAFETY: the view's pointers point into the mapping it keeps alive; the memory is shared
// between processes by design, and the ring's protocol (atomics, the positions) decides which
// side touches which bytes, not the thread that holds the view.
unsafe impl Send for Raw {}
// SAFETY: as for Send; every `&self` access is an atomic or a copy the protocol allows.
unsafe impl Sync for Raw {}

impl Raw {
    fn new(map: Arc<Mapping>, at: usize, size: Size) -> io::Result<Raw> {
        let fits = at
            .checked_add(size.bytes())
            .is_some_and(|end| end <= map.len());
        if !size.valid() || !at.is_multiple_of(64) || !fits {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "ring size or offset does not fit the mapping",
            ));
        }
        let base = map.as_ptr();
        // SAFETY: `at + HEADER + capacity <= len`: both addresses lie inside the mapping.
        let (header, data) = unsafe { (base.add(at).cast(), base.add(at + HEADER)) };
        Ok(Raw {
            header,
            data,
            size,
            _map: map,
        })
    }

    fn header(&self) -> &Header {
        // SAFETY: the header lies inside the mapping (checked in `new`) kept alive by `self`,
        // 64-aligned (the mapping is page-aligned, `at` a multiple of 64); its words are only
        // accessed atomically, and zero bytes are valid atomics (under loom the model built
        // them in place).
        unsafe { self.header.as_ref() }
    }

    fn at(&self, off: usize) -> *mut u8 {
        debug_assert!(off < self.size.capacity);
        // SAFETY: `off < capacity`: inside the data area.
        unsafe { self.data.as_ptr().add(off) }
    }

    fn capacity(&self) -> u64 {
        self.size.capacity as u64
    }
}

/// The producing side of a ring (one per ring; it may live in another process than the
/// consumer).
#[derive(Debug)]
pub struct Producer {
    raw: Raw,
    /// The position after the last staged message (committed or not).
    staged: u64,
    /// The consumer's release position as last read (Acquire) plus the capacity: the
    /// producer may write below it without looking again (it lags, never leads).
    limit: u64,
}

impl Producer {
    /// The producer of the ring at byte `at` (a multiple of 64) of `map`, which holds
    /// `size.bytes()` zero bytes there when the ring is new.
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use processing::shm::spsc::{Producer, Size};
    /// let size = Size { capacity: 1024, max_message: 256 };
    /// let map = std::sync::Arc::new(processing::shm::Region::anonymous(c"p", size.bytes()).unwrap());
    /// let p = Producer::new(map, 0, size).unwrap();
    /// assert!(p.fits(256) && !p.fits(257));
    /// # }
    /// ```
    pub fn new(map: Arc<Mapping>, at: usize, size: Size) -> io::Result<Producer> {
        let raw = Raw::new(map, at, size)?;
        let staged = raw.header().write.0.load(Ordering::Relaxed);
        let limit = raw.header().read.0.load(Ordering::Acquire) + raw.capacity();
        Ok(Producer { raw, staged, limit })
    }

    /// Whether a message of `len` bytes is kept in the ring.
    pub fn fits(&self, len: usize) -> bool {
        len <= self.raw.size.max_message
    }

    /// Stages one message made of `parts` (their concatenation), waiting for room while the
    /// consumer is behind; the consumer sees it after the next [`commit`](Self::commit).
    pub fn write(&mut self, parts: &[&[u8]]) -> Result<(), TooLarge> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if !self.fits(len) {
            return Err(TooLarge);
        }
        let raw = &self.raw;
        let cap = raw.size.capacity;
        let size = padded(4 + len);
        let w = self.staged;
        let off = (w % raw.capacity()) as usize;
        let skip = if off + size > cap { cap - off } else { 0 };
        let end = w + (skip + size) as u64;
        let mut rounds = 0u32;
        while end > self.limit {
            self.limit = raw.header().read.0.load(Ordering::Acquire) + raw.capacity();
            if end <= self.limit {
                break;
            }
            // The consumer is behind (busy, or a slow callback); it releases as it reads.
            rounds += 1;
            crate::model::backoff(rounds, 64, 128, Duration::from_micros(50));
        }
        if skip > 0 {
            // SAFETY: `off` is 8-aligned and below capacity, so 4 bytes fit; the consumer
            // released these bytes (checked above) and reads them only after a commit.
            unsafe {
                wrote(raw.at(off), 4);
                raw.at(off).cast::<u32>().write(WRAP);
            }
        }
        // SAFETY: `at + 4 + len <= capacity` (the entry does not wrap), so the length word and
        // every part land inside the entry; the consumer released these bytes (checked above)
        // and reads them only after a commit.
        unsafe {
            let mut to = raw.at((off + skip) % cap);
            wrote(to, 4 + len);
            to.cast::<u32>().write(len as u32);
            to = to.add(4);
            for p in parts {
                std::ptr::copy_nonoverlapping(p.as_ptr(), to, p.len());
                to = to.add(p.len());
            }
        }
        self.staged = end;
        Ok(())
    }

    /// Publishes every staged message with one store. Returns whether the consumer announced
    /// that it sleeps: the caller wakes it ([`wake`](Self::wake) for a futex sleeper, its own
    /// bell otherwise). The announcement is cleared, so one commit wakes once.
    pub fn commit(&mut self) -> bool {
        let h = self.raw.header();
        h.write.0.store(self.staged, Ordering::SeqCst);
        h.sleeping.0.load(Ordering::SeqCst) != 0 && h.sleeping.0.swap(0, Ordering::SeqCst) != 0
    }

    /// [`write`](Self::write) and [`commit`](Self::commit) of one message.
    pub fn push(&mut self, parts: &[&[u8]]) -> Result<bool, TooLarge> {
        self.write(parts)?;
        Ok(self.commit())
    }

    /// Wakes a consumer sleeping in [`Consumer::sleep`] (after `commit` said it sleeps).
    pub fn wake(&self) {
        futex_wake(&self.raw.header().sleeping.0, 1);
    }
}

/// The consuming side of a ring (one per ring).
#[derive(Debug)]
pub struct Consumer {
    raw: Raw,
    /// The position after the message last taken.
    pos: u64,
    /// Whether bytes before `pos` are not released yet (the message last taken is held).
    held: Option<(usize, usize)>,
}

impl Consumer {
    /// The consumer of the ring at byte `at` of `map` (see [`Producer::new`]).
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use processing::shm::spsc::{Consumer, Size};
    /// let size = Size { capacity: 1024, max_message: 256 };
    /// let map = std::sync::Arc::new(processing::shm::Region::anonymous(c"c", size.bytes()).unwrap());
    /// let mut c = Consumer::new(map, 0, size).unwrap();
    /// assert!(!c.has_data());
    /// assert_eq!(c.take(), Ok(None));
    /// # }
    /// ```
    pub fn new(map: Arc<Mapping>, at: usize, size: Size) -> io::Result<Consumer> {
        let raw = Raw::new(map, at, size)?;
        let pos = raw.header().read.0.load(Ordering::Relaxed);
        Ok(Consumer {
            raw,
            pos,
            held: None,
        })
    }

    /// Releases the message held (the one [`take`](Self::take) returned last) and returns the
    /// next committed message, if there is one; it is held until the next `take` or
    /// [`release`](Self::release).
    pub fn take(&mut self) -> Result<Option<&[u8]>, Corrupt> {
        self.release();
        let raw = &self.raw;
        let cap = raw.capacity();
        let w = raw.header().write.0.load(Ordering::Acquire);
        let mut pos = self.pos;
        loop {
            if w == pos {
                return Ok(None);
            }
            if w < pos || w - pos > cap {
                return Err(Corrupt);
            }
            let off = (pos % cap) as usize;
            // SAFETY: `off` is 8-aligned and inside the data area; the producer committed
            // these bytes (pos < w, Acquire above) and does not touch them until released.
            let len = unsafe {
                read(raw.at(off), 4);
                raw.at(off).cast::<u32>().read()
            };
            if len == WRAP {
                pos += cap - off as u64;
                continue;
            }
            let len = len as usize;
            let next = pos + padded(4 + len) as u64;
            if len > raw.size.max_message || off + 4 + len > raw.size.capacity || next > w {
                return Err(Corrupt);
            }
            self.pos = next;
            self.held = Some((off + 4, len));
            return Ok(Some(self.held_bytes(off + 4, len)));
        }
    }

    fn held_bytes(&self, at: usize, len: usize) -> &[u8] {
        if len == 0 {
            return &[];
        }
        // SAFETY: `take` checked `at + len <= capacity`; the bytes were committed and stay
        // untouched until released, which needs `&mut self`, so not while this borrow lives.
        unsafe {
            read(self.raw.at(at), len);
            std::slice::from_raw_parts(self.raw.at(at), len)
        }
    }

    /// The message last taken, while it is held.
    pub fn held(&self) -> Option<&[u8]> {
        self.held.map(|(at, len)| self.held_bytes(at, len))
    }

    /// Gives the message held (and any wrap before it) back to the producer.
    pub fn release(&mut self) {
        if self.held.take().is_some() {
            self.raw.header().read.0.store(self.pos, Ordering::Release);
        }
    }

    /// Whether a message is committed past the last one taken (a cheap check for spinning).
    pub fn has_data(&self) -> bool {
        self.raw.header().write.0.load(Ordering::Acquire) != self.pos
    }

    /// Announces that the consumer is about to sleep; `false` (and not sleeping) if a message
    /// arrived meanwhile. A `true` obliges the producer's next commit to report a wake-up.
    pub fn prepare_sleep(&self) -> bool {
        let h = self.raw.header();
        h.sleeping.0.store(1, Ordering::SeqCst);
        if h.write.0.load(Ordering::SeqCst) != self.pos {
            h.sleeping.0.store(0, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The consumer is awake again (after a sleep it announced).
    pub fn end_sleep(&self) {
        self.raw.header().sleeping.0.store(0, Ordering::SeqCst);
    }

    /// Sleeps on the ring's futex word until a message is committed, waking every `nap` (and
    /// at spurious wake-ups) to ask `cancelled` whether to give up (a peer-died check).
    pub fn sleep<E>(
        &self,
        nap: Duration,
        mut cancelled: impl FnMut() -> Option<E>,
    ) -> Result<(), E> {
        loop {
            if !self.prepare_sleep() {
                return Ok(());
            }
            futex_wait(&self.raw.header().sleeping.0, 1, Some(nap));
            self.end_sleep();
            if self.has_data() {
                return Ok(());
            }
            if let Some(e) = cancelled() {
                return Err(e);
            }
        }
    }
}

/// Builds a ring's header atomics in place at byte `at` of `map` (loom's atomics are objects
/// of the model, not zero bytes), then stores the zeros again with SeqCst (loom counts an
/// initial value as a non-SeqCst store that a SeqCst load may still return after a newer
/// SeqCst store, a false lost wake-up; the zero-filled mapping is what it stands for).
///
/// # Safety
/// `at + HEADER <= map.len()`, `at` is a multiple of 64, and nobody uses the ring yet.
#[cfg(loom)]
pub unsafe fn build(map: &Mapping, at: usize) {
    // SAFETY: per the contract, the header lies in the mapping, aligned, unused.
    let h = unsafe {
        let h = map.as_ptr().as_ptr().add(at).cast::<Header>();
        h.write(Header {
            write: Line(AtomicU64::new(0)),
            read: Line(AtomicU64::new(0)),
            sleeping: Line(AtomicU32::new(0)),
        });
        &*h
    };
    h.write.0.store(0, Ordering::SeqCst);
    h.read.0.store(0, Ordering::SeqCst);
    h.sleeping.0.store(0, Ordering::SeqCst);
}

#[cfg(all(test, target_os = "linux", not(loom)))]
mod tests {
    use super::*;

    const SIZE: Size = Size {
        capacity: 256,
        max_message: 100,
    };

    fn ring() -> (Producer, Consumer) {
        let map = Arc::new(crate::Region::anonymous(c"spsc-test", SIZE.bytes()).unwrap());
        (
            Producer::new(map.clone(), 0, SIZE).unwrap(),
            Consumer::new(map, 0, SIZE).unwrap(),
        )
    }

    #[test]
    fn messages_of_every_size_cross_many_wraps_in_order() {
        let (mut tx, mut rx) = ring();
        for round in 0..500usize {
            let len = round % (SIZE.max_message + 1);
            let msg: Vec<u8> = (0..len).map(|i| (i + round) as u8).collect();
            let (a, b) = msg.split_at(len / 3);
            assert!(!tx.push(&[a, b]).unwrap(), "nobody sleeps");
            assert_eq!(rx.take().unwrap(), Some(&msg[..]));
            assert_eq!(rx.take().unwrap(), None);
        }
        assert_eq!(tx.push(&[&[0; 101]]), Err(TooLarge));
    }

    #[test]
    fn a_sleeping_consumer_is_reported_once() {
        let (mut tx, rx) = ring();
        assert!(rx.prepare_sleep());
        assert!(tx.push(&[b"x"]).unwrap());
        assert!(!tx.push(&[b"y"]).unwrap());
        assert!(!rx.prepare_sleep(), "a message is there");
    }

    #[test]
    fn a_commit_position_past_the_ring_is_corrupt() {
        let (_tx, mut rx) = ring();
        rx.raw
            .header()
            .write
            .0
            .store(SIZE.capacity as u64 + 8, Ordering::SeqCst);
        assert_eq!(rx.take(), Err(Corrupt));
    }

    #[test]
    fn a_message_longer_than_allowed_is_corrupt() {
        let (_tx, mut rx) = ring();
        // SAFETY: the ring's first entry, written while nobody else uses the ring.
        unsafe {
            rx.raw
                .at(0)
                .cast::<u32>()
                .write(SIZE.max_message as u32 + 1)
        };
        rx.raw.header().write.0.store(128, Ordering::SeqCst);
        assert_eq!(rx.take(), Err(Corrupt));
    }
}
