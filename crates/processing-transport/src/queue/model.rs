//! The queue ring over a heap region, for `tests/loom_*.rs` (see [`crate::model`]).

use std::ptr::NonNull;

use processing_shm::model::HeapRegion;

use super::park::Deadline;
use super::ring::{FrameKind, GetFail, PutFail, Ring};

/// A queue ring of `capacity` bytes (a power of two) in a model region.
#[derive(Debug)]
pub struct QueueRing {
    ring: Ring,
    _region: HeapRegion,
}

/// How a model's put or get ended, when it did not deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// Non-blocking put on a full ring / get on an empty one.
    WouldBlock,
    /// The queue was closed.
    Closed,
    /// Anything else (a timeout cannot happen in a model; a corrupt frame must not).
    Other,
}

impl QueueRing {
    /// A fresh ring; `max_items` 0 bounds it by bytes only.
    pub fn new(capacity: u64, max_items: u64) -> QueueRing {
        assert!(capacity.is_power_of_two() && capacity >= 32);
        let len = Ring::region_len(capacity);
        let region = HeapRegion::new(len);
        let base: NonNull<u8> = region.as_ptr();
        // SAFETY: the region is zero-filled, page-aligned, `len` bytes, unused so far, and is
        // kept alive with the ring.
        let ring = unsafe { Ring::init(base, len, capacity, max_items) };
        QueueRing {
            ring,
            _region: region,
        }
    }

    /// The largest payload a put takes.
    pub fn max_inline(&self) -> usize {
        self.ring.max_inline()
    }

    /// Puts `payload`, waiting for room if `wait`.
    pub fn put(&self, payload: &[u8], wait: bool) -> Result<(), Fail> {
        let deadline = if wait { Deadline::Never } else { Deadline::Now };
        self.ring
            .put(FrameKind::Inline, payload, deadline, None)
            .map_err(|e| match e {
                PutFail::Full => Fail::WouldBlock,
                PutFail::Closed => Fail::Closed,
                PutFail::Timeout | PutFail::Overflow => Fail::Other,
            })
    }

    /// Takes the oldest payload, waiting for one if `wait`.
    pub fn get(&self, wait: bool) -> Result<Vec<u8>, Fail> {
        let deadline = if wait { Deadline::Never } else { Deadline::Now };
        match self
            .ring
            .get(deadline, |kind, bytes| (kind, bytes.to_vec()), &|read| {
                Err(read)
            }) {
            Ok((FrameKind::Inline, bytes)) => Ok(bytes),
            Ok(_) => Err(Fail::Other),
            Err(GetFail::Empty) => Err(Fail::WouldBlock),
            Err(GetFail::Closed) => Err(Fail::Closed),
            Err(GetFail::Timeout | GetFail::Corrupt) => Err(Fail::Other),
        }
    }

    /// Closes the queue, waking every waiter.
    pub fn close(&self) {
        self.ring.close();
    }

    /// Items put and not yet got.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether no item is in the ring.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
