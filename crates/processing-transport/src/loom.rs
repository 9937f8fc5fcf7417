//! The atomics of this crate's shared-memory protocols (the queue ring, the pipe ring): std's
//! normally, loom's under `cfg(loom)` so that the model checker explores their interleavings
//! (see `tests/loom_*.rs` and [`crate::model`]). Also the seams loom needs: busy-wait hints
//! that are scheduling points, and the reports of plain copies into and out of shared bytes
//! (checked against processing-shm's model regions under loom, nothing otherwise).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A scheduling point under loom only, at the top of a retry loop that makes no other one on
/// some path: loom lets a relaxed load return a stale value again and again until the thread
/// yields (real hardware makes the new value visible within a short time).
#[inline(always)]
pub(crate) fn model_yield() {
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Reports a plain write of `len` shared bytes at `ptr` (checked for data races under loom).
#[inline(always)]
pub(crate) fn wrote(ptr: *const u8, len: usize) {
    #[cfg(loom)]
    processing_shm::model::wrote(ptr, len);
    #[cfg(not(loom))]
    let _ = (ptr, len);
}

/// Reports a plain read of `len` shared bytes at `ptr` (checked for data races under loom).
#[inline(always)]
pub(crate) fn read(ptr: *const u8, len: usize) {
    #[cfg(loom)]
    processing_shm::model::read(ptr, len);
    #[cfg(not(loom))]
    let _ = (ptr, len);
}
