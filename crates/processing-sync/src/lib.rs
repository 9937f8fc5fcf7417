//! Synchronisation primitives that live in shared memory and work across processes.
//!
//! Layer: `core → shm → **sync** → transport → process → {manager, pool} → processing`.
//! It holds [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`], [`Condition`],
//! [`Event`], [`Barrier`] and the locked [`Value<T>`] / [`Array<T>`]. Each primitive is a small
//! `#[repr(C)]` struct of atomics in its own shared segment; threads sleep on its words with
//! futexes on Linux and named kernel semaphores on Windows. It never depends on transport or
//! process.
//!
//! ```
//! use processing::sync::{Lock, Value};
//! let lock = Lock::new().unwrap();
//! let counter = Value::with_lock(0u64, lock.clone()).unwrap();
//! *counter.lock().unwrap() += 1;
//! assert_eq!(counter.get(), 1);
//! ```
//!
//! Every handle is `Clone + Send + Sync + Serialize + Deserialize`; pass it to a child process
//! and it re-attaches there. A lock whose holder process dies is taken over by the next
//! acquirer, which is told so ([`AcquireError::OwnerDied`]); semaphores, conditions, events and
//! barriers stay usable when a waiter is killed.

#![doc(html_root_url = "https://docs.rs/processing-sync/0.1.0")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod action;
mod algo;
#[cfg(feature = "async")]
mod async_sync;
mod barrier;
mod condition;
mod error;
mod event;
mod lock;
pub(crate) mod loom;
mod semaphore;
mod shared;
mod sys;
#[doc(hidden)]
pub mod twin;
mod value;

pub use barrier::Barrier;
pub use condition::Condition;
pub use error::{AcquireError, BarrierError, ConditionError, ReleaseError, SyncError};
pub use event::Event;
pub use lock::{Lock, LockGuard, RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};
pub use value::{Array, ArrayGuard, Value, ValueGuard};

/// The bare algorithms over loom's atomics, for the model-checking tests (`tests/loom_*.rs`).
#[cfg(loom)]
#[doc(hidden)]
pub mod model;
