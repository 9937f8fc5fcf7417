//! The atomics every algorithm uses: std's normally, loom's under `cfg(loom)` so that the
//! model checker can explore the interleavings (see `tests/loom_*.rs`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, Ordering};

/// A busy-wait hint (a yield under loom, which must see every spin as a scheduling point).
pub(crate) use processing_shm::model::spin_hint;

/// Iterations of the bounded spin before sleeping (none under loom). A blocking wake-up
/// across cores costs tens of microseconds on small VMs while a short critical section ends
/// within a few hundred nanoseconds; an unbounded spin on a shared core would cost a whole
/// time slice, so the spin stays short.
#[cfg(not(loom))]
pub(crate) const SPIN: u32 = 200;
#[cfg(loom)]
pub(crate) const SPIN: u32 = 0;
