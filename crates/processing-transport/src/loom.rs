//! The atomics of this crate's shared-memory protocols (the queue ring, the pipe ring): std's
//! normally, loom's under `cfg(loom)` so that the model checker explores their interleavings
//! (see `tests/loom_*.rs` and [`crate::model`]). Also the seams loom needs: busy-wait hints
//! that are scheduling points, and the reports of plain copies into and out of shared bytes
//! (checked against processing-shm's model regions under loom, nothing otherwise).

#[cfg(all(loom, target_os = "linux"))]
pub(crate) use loom::sync::atomic::fence;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
#[cfg(all(not(loom), target_os = "linux"))]
pub(crate) use std::sync::atomic::fence;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// A scheduling point under loom only, at the top of a retry loop that makes no other one on
/// some path: loom lets a relaxed load return a stale value again and again until the thread
/// yields (real hardware makes the new value visible within a short time).
#[inline(always)]
pub(crate) fn model_yield() {
    processing_shm::model::yield_under_loom_or(|| ());
}

#[cfg(target_os = "linux")]
pub(crate) use processing_shm::model::{futex_wait, futex_wake};
/// The copy reports and futex calls of the seam (one copy, in processing-shm).
pub(crate) use processing_shm::model::{read, wrote};
