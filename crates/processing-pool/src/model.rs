//! The pool's reply ring (processing-shm's SPSC ring with the dimensions of
//! `backend/processes.rs`, 64 bytes of entries under loom) over a heap region, exposed under
//! `cfg(loom)` for `tests/loom_u03_reply_ring.rs`.
#![allow(missing_docs)]

use processing_shm::spsc::{Consumer, Producer};

use crate::backend::processes::RING;

/// Bytes of entries of the ring under loom.
pub const CAPACITY: usize = RING.capacity;
/// The largest reply (without its length word) the ring keeps.
pub const MAX_REPLY: usize = RING.max_message;

/// A fresh reply ring: the worker's side and the supervisor's.
pub fn pair() -> (Producer, Consumer) {
    processing_shm::model::spsc::pair(RING)
}
