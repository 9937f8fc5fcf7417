//! The atomics of the reply ring (`backend/ring.rs`): std's normally, loom's under `cfg(loom)`
//! so that the model checker explores their interleavings (see `tests/loom_*.rs` and
//! [`crate::model`]). Also the seams loom needs: waits that are scheduling points, a heap
//! region standing in for the mapping, and reports of plain copies into and out of the shared
//! bytes (checked against processing-shm's model regions under loom, nothing otherwise).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The memory a reply ring lives in: a shared mapping, or a heap region under loom.
#[cfg(loom)]
pub(crate) use processing_shm::model::HeapRegion as Mapping;
#[cfg(not(loom))]
pub(crate) use processing_shm::Region as Mapping;

/// The 64-bit atomic at `ptr`.
///
/// # Safety
/// `ptr` is 8-aligned, valid for the returned lifetime and only ever accessed atomically
/// (under loom: holds an `AtomicU64` written there by the model).
pub(crate) unsafe fn atomic_u64_at<'a>(ptr: *mut u64) -> &'a AtomicU64 {
    #[cfg(loom)]
    // SAFETY: per the contract, a loom atomic was written there.
    return unsafe { &*ptr.cast::<AtomicU64>() };
    #[cfg(not(loom))]
    // SAFETY: per the contract.
    return unsafe { AtomicU64::from_ptr(ptr) };
}

/// The 32-bit atomic at `ptr` (contract of [`atomic_u64_at`], 4-aligned).
///
/// # Safety
/// As for [`atomic_u64_at`].
pub(crate) unsafe fn atomic_u32_at<'a>(ptr: *mut u32) -> &'a AtomicU32 {
    #[cfg(loom)]
    // SAFETY: per the contract, a loom atomic was written there.
    return unsafe { &*ptr.cast::<AtomicU32>() };
    #[cfg(not(loom))]
    // SAFETY: per the contract.
    return unsafe { AtomicU32::from_ptr(ptr) };
}

/// One round of a waiting loop: spin, yield, then short sleeps (all yields under loom).
#[inline]
pub(crate) fn backoff(round: u32) {
    #[cfg(loom)]
    {
        let _ = round;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    if round < 64 {
        std::hint::spin_loop();
    } else if round < 128 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

/// The copy reports of the seam (one copy, in processing-shm).
pub(crate) use processing_shm::model::{read, wrote};
