//! The atomics of the shared-memory protocols of this crate (`owner`, `spsc`): std's normally,
//! loom's under `cfg(loom)` so that the model checker explores their interleavings (see
//! `tests/loom_*.rs`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, Ordering};

/// The ring's positions ([`crate::spsc`], Unix).
#[cfg(all(unix, loom))]
pub(crate) use loom::sync::atomic::AtomicU64;
#[cfg(all(unix, not(loom)))]
pub(crate) use std::sync::atomic::AtomicU64;
