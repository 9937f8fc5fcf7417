//! The pool's reply ring (processing-shm's SPSC ring with the dimensions of
//! `backend/processes.rs`, 64 bytes of entries under loom) over a heap region, exposed under
//! `cfg(loom)` for `tests/loom_u03_reply_ring.rs`.
#![allow(missing_docs)]

use std::sync::Arc;

use processing_shm::model::HeapRegion;
use processing_shm::spsc::{self, Consumer, Producer, HEADER};

use crate::backend::processes::RING;

/// Bytes of entries of the ring under loom.
pub const CAPACITY: usize = RING.capacity;
/// The largest reply (without its length word) the ring keeps.
pub const MAX_REPLY: usize = RING.max_message;

/// A fresh reply ring: the worker's side and the supervisor's.
pub fn pair() -> (Producer, Consumer) {
    let map = HeapRegion::tracking_from(RING.bytes(), HEADER);
    // SAFETY: the region is fresh, page-aligned and holds the ring at offset 0.
    unsafe { spsc::build(&map, 0) };
    let map = Arc::new(map);
    (
        Producer::new(map.clone(), 0, RING).expect("the pool's ring fits its region"),
        Consumer::new(map, 0, RING).expect("the pool's ring fits its region"),
    )
}
