//! The atomics of the mailbox (`sys/mailbox_linux.rs`): std's normally, loom's under
//! `cfg(loom)` so that the model checker explores their interleavings (see `tests/loom_*.rs`
//! and [`crate::model`]). Also the seams loom needs: the futex sleep as a yield, and reports
//! of plain copies into and out of the shared slots (checked against processing-shm's model
//! cells under loom, nothing otherwise).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, Ordering};

/// The copy reports and futex calls of the seam (one copy, in processing-shm).
pub(crate) use processing_shm::model::{futex_wait, futex_wake, read, wrote};
