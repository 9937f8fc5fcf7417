//! The atomics of the shared-memory protocols of this crate ([`crate::owner`], [`crate::spsc`]): std's normally,
//! loom's under `cfg(loom)` so that the model checker explores their interleavings (see
//! `tests/loom_*.rs`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
