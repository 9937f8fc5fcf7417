//! The reply ring: a single-producer, single-consumer byte ring in memory shared by one
//! worker process (producer) and its supervising thread (consumer).
//!
//! A worker publishes each reply here before it starts its next task: a copy and an atomic
//! store instead of a system call, and still durable if the worker dies right after (the
//! memory belongs to the supervisor too). So "the first task of a batch without a reply is the
//! one that was running" stays exact.
//!
//! Layout: a 4096-byte header (write position at 0, read position at 64, the consumer's
//! "sleeping" flag at 128, each on its own cache line), then [`CAPACITY`] bytes of entries.
//! Positions count bytes since the start and only grow; an entry lives at `position %
//! CAPACITY`. An entry is a reply frame exactly as it would travel on the stream (`u32 length,
//! u8 kind, u64 id, u8 status, payload`), padded to 8 bytes; an entry never wraps: the
//! producer writes [`WRAP`] as the length and continues at the start. Entries larger than
//! [`MAX_ENTRY`] travel on the stream instead, announced by a header-only entry in the ring,
//! so the ring fixes the order of all replies.
//!
//! Waking: a consumer that found the ring empty spins briefly, then sets the flag, checks the
//! ring once more and sleeps in `poll` on the stream and the worker's sentinel. A producer that
//! published and finds the flag set clears it and writes a wake-up frame on the stream.
//! Both sides use sequentially consistent operations for the flag and the write position, so
//! at least one of them sees the other's store: no wake-up is lost.
//!
//! Invariant: the producer never writes to bytes the consumer has not released (read
//! position), and the consumer never reads past the published write position.

use crate::loom::{atomic_u32_at, atomic_u64_at, AtomicU32, AtomicU64, Mapping, Ordering};

/// Bytes of entries.
#[cfg(not(loom))]
pub(crate) const CAPACITY: usize = 256 * 1024;
/// Bytes of entries (a small ring under loom, so that models wrap around).
#[cfg(loom)]
pub(crate) const CAPACITY: usize = 64;
/// The header before the entries.
const HEADER: usize = 4096;
/// The mapping's total size.
pub(crate) const MAPPING_LEN: usize = HEADER + CAPACITY;
/// The largest entry kept in the ring; larger replies go on the stream.
pub(crate) const MAX_ENTRY: usize = CAPACITY / 4;
/// The length value that sends the consumer to the start of the ring.
const WRAP: u32 = u32::MAX;

const WRITE_AT: usize = 0;
const READ_AT: usize = 64;
const SLEEPING_AT: usize = 128;

fn padded(len: usize) -> usize {
    (len + 7) & !7
}

/// One side's view of a reply ring.
#[derive(Debug)]
pub(crate) struct Ring {
    map: Mapping,
}

/// The ring's data did not make sense (only a broken worker could cause it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Corrupt;

impl Ring {
    /// A ring over a fresh model region (under loom, whose atomics must be built in place).
    #[cfg(loom)]
    pub(crate) fn model() -> Ring {
        let map = Mapping::tracking_from(MAPPING_LEN, HEADER);
        let base = map.as_ptr().as_ptr();
        // SAFETY: the region is fresh, page-aligned and MAPPING_LEN long; the three words lie
        // in its header, each on its own cache line.
        unsafe {
            base.add(WRITE_AT)
                .cast::<AtomicU64>()
                .write(AtomicU64::new(0));
            base.add(READ_AT)
                .cast::<AtomicU64>()
                .write(AtomicU64::new(0));
            base.add(SLEEPING_AT)
                .cast::<AtomicU32>()
                .write(AtomicU32::new(0));
        }
        let ring = Ring { map };
        // loom counts an atomic's initial value as a non-SeqCst store, which a SeqCst load may
        // still return after a newer SeqCst store (a false lost wake-up): store the zeros
        // again with SeqCst, as the zero-filled mapping does for real.
        ring.atomic_u64(WRITE_AT).store(0, Ordering::SeqCst);
        ring.atomic_u64(READ_AT).store(0, Ordering::SeqCst);
        ring.sleeping().store(0, Ordering::SeqCst);
        ring
    }

    /// Wraps a mapping of [`MAPPING_LEN`] bytes (zero-filled when created).
    #[cfg(not(loom))]
    pub(crate) fn new(map: Mapping) -> Option<Ring> {
        (map.len() == MAPPING_LEN).then_some(Ring { map })
    }

    /// Under loom a mapping holds no loom atomics: no ring (replies go on the stream).
    #[cfg(loom)]
    pub(crate) fn new(_map: processing_shm::Region) -> Option<Ring> {
        None
    }

    fn atomic_u64(&self, at: usize) -> &AtomicU64 {
        // SAFETY: `at` is 0 or 64, inside the page-aligned header, so the address is valid for
        // the mapping's lifetime (tied to `&self`) and 8-aligned; the word is only ever
        // accessed atomically by both processes.
        unsafe { atomic_u64_at(self.map.as_ptr().as_ptr().add(at).cast()) }
    }

    fn sleeping(&self) -> &AtomicU32 {
        // SAFETY: as in `atomic_u64`: offset 128 of the header, 4-aligned, atomics only.
        unsafe { atomic_u32_at(self.map.as_ptr().as_ptr().add(SLEEPING_AT).cast()) }
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: the entries start right after the header, inside the mapping.
        unsafe { self.map.as_ptr().as_ptr().add(HEADER) }
    }

    // ---- producer (worker) ----

    /// Whether a frame of `len` bytes is kept in the ring (else it goes on the stream).
    pub(crate) fn fits(len: usize) -> bool {
        padded(len) <= MAX_ENTRY
    }

    /// Appends `frame` (at most [`MAX_ENTRY`] bytes), waiting for room if the consumer is
    /// behind. Returns whether the consumer sleeps and must be woken.
    pub(crate) fn push(&self, frame: &[u8]) -> bool {
        debug_assert!(frame.len() >= 4 && Ring::fits(frame.len()));
        let size = padded(frame.len());
        let write = self.atomic_u64(WRITE_AT);
        let read = self.atomic_u64(READ_AT);
        let w = write.load(Ordering::Relaxed);
        let off = (w % CAPACITY as u64) as usize;
        let skip = if off + size > CAPACITY {
            CAPACITY - off
        } else {
            0
        };
        let end = w + (skip + size) as u64;
        let mut rounds = 0u32;
        while end - read.load(Ordering::Acquire) > CAPACITY as u64 {
            // The supervisor is behind (a slow callback); it releases as it reads.
            rounds += 1;
            crate::loom::backoff(rounds);
        }
        if skip > 0 {
            // SAFETY: `off` is 8-aligned and below CAPACITY, so 4 bytes fit; the consumer
            // released these bytes (checked above) and reads them only after the store below.
            unsafe {
                crate::loom::wrote(self.data().add(off), 4);
                self.data().add(off).cast::<u32>().write(WRAP)
            };
        }
        let at = (off + skip) % CAPACITY;
        // SAFETY: `at + frame.len() <= CAPACITY` (the entry does not wrap), the bytes were
        // released by the consumer, and the consumer reads them only after the publication.
        unsafe {
            crate::loom::wrote(self.data().add(at), frame.len());
            std::ptr::copy_nonoverlapping(frame.as_ptr(), self.data().add(at), frame.len());
        }
        write.store(end, Ordering::SeqCst);
        let sleeping = self.sleeping();
        sleeping.load(Ordering::SeqCst) != 0 && sleeping.swap(0, Ordering::SeqCst) != 0
    }

    // ---- consumer (supervisor) ----

    /// The entry at the consumer's position `pos`, if one was published: its offset in the
    /// data area, its length, and the position after it.
    pub(crate) fn peek(&self, mut pos: u64) -> Result<Option<(usize, usize, u64)>, Corrupt> {
        let w = self.atomic_u64(WRITE_AT).load(Ordering::Acquire);
        loop {
            if w == pos {
                return Ok(None);
            }
            if w < pos || w - pos > CAPACITY as u64 {
                return Err(Corrupt);
            }
            let off = (pos % CAPACITY as u64) as usize;
            // SAFETY: `off` is 8-aligned and inside the data area; the producer published
            // these bytes (pos < w, Acquire above) and does not touch them until released.
            let len = unsafe {
                crate::loom::read(self.data().add(off), 4);
                self.data().add(off).cast::<u32>().read()
            };
            if len == WRAP {
                pos += (CAPACITY - off) as u64;
                continue;
            }
            let total = 4 + len as usize;
            let next = pos + padded(total) as u64;
            if !Ring::fits(total) || off + total > CAPACITY || next > w {
                return Err(Corrupt);
            }
            return Ok(Some((off, total, next)));
        }
    }

    /// The bytes of an entry found by [`peek`](Ring::peek).
    pub(crate) fn entry(&self, off: usize, len: usize) -> &[u8] {
        // SAFETY: `peek` checked `off + len <= CAPACITY`; the bytes were published and stay
        // untouched until the consumer releases them, which it does only after the borrow
        // (tied to `&self` and the link's `recv`) ended.
        unsafe {
            crate::loom::read(self.data().add(off), len);
            std::slice::from_raw_parts(self.data().add(off), len)
        }
    }

    /// Gives the bytes before `pos` back to the producer.
    pub(crate) fn release(&self, pos: u64) {
        self.atomic_u64(READ_AT).store(pos, Ordering::Release);
    }

    /// Whether an entry is published past `pos` (a cheap check for spinning).
    pub(crate) fn has_data(&self, pos: u64) -> bool {
        self.atomic_u64(WRITE_AT).load(Ordering::Acquire) != pos
    }

    /// Announces that the consumer is about to sleep; false (and not sleeping) if an entry
    /// arrived meanwhile.
    pub(crate) fn prepare_sleep(&self, pos: u64) -> bool {
        self.sleeping().store(1, Ordering::SeqCst);
        if self.atomic_u64(WRITE_AT).load(Ordering::SeqCst) != pos {
            self.sleeping().store(0, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The consumer is awake again.
    pub(crate) fn end_sleep(&self) {
        self.sleeping().store(0, Ordering::SeqCst);
    }
}
