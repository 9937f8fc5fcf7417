//! # processing — processes with the ease of threads
//!
//! Layer: the facade on top of `core → shm → sync → transport → process → {manager, pool}`.
//! It re-exports each layer and the common names at the top level.
//!
//! - Processes ([`process`]): [`Process`] (`new(target, args)`, builder setters, `start`,
//!   `join`, `terminate`, `kill`), [`spawn`], [`StartMethod`], [`set_start_method`],
//!   [`get_context`], [`current_process`], [`parent_process`], [`active_children`],
//!   [`cpu_count`], [`init`] / `#[processing::main]`, [`log_to_stderr`].
//!
//! - Channels ([`transport`]): [`Pipe`] / [`Connection`], [`Listener`] / [`Client`]
//!   (authenticated, Python 3.12+'s wire), [`wait`], and the [`Queue`], [`JoinableQueue`],
//!   [`SimpleQueue`] family in shared memory.
//! - Shared state ([`shm`], [`sync`]): [`Value`], [`Array`], [`RawValue`], [`RawArray`],
//!   [`SharedMemory`]; [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`],
//!   [`Condition`], [`Event`], [`Barrier`].
//! - [`Manager`] ([`manager`]): a server process holding lists, dicts, namespaces, queues and
//!   locks behind typed proxies, locally or over TCP.
//! - [`Pool`] ([`pool`]): `map`, `imap`, `apply_async`, `starmap`, with a progress bar, and
//!   [`dummy`], the same over threads.
//!
//! ```
//! let mut child = processing::spawn(|x: u32| x * 2, 21).unwrap();
//! assert_eq!(child.join().unwrap(), 42);
//! ```
//!
//! The guide (`docs/guide.md`) tours it all; `docs/migration-from-python.md` maps every name
//! of Python's `processing` and `multiprocessing` to this crate. Both pages' snippets run as
//! this crate's doc tests.

#![doc(html_root_url = "https://docs.rs/processing/0.1.0")]

#[cfg(feature = "cluster")]
#[doc(inline)]
pub use processing_cluster as cluster;

#[doc(inline)]
pub use processing_core as core;
/// The reactor behind the `*_async` waits (feature `async`): [`aio::block_on`], [`aio::Sleep`].
#[cfg(feature = "async")]
pub use processing_core::aio;
#[doc(inline)]
pub use processing_manager as manager;
#[doc(inline)]
pub use processing_pool as pool;
#[doc(inline)]
pub use processing_process as process;
#[doc(inline)]
pub use processing_shm as shm;
#[doc(inline)]
pub use processing_sync as sync;
#[doc(inline)]
pub use processing_transport as transport;

mod error;

pub use error::Error;
// Every area's error, by its name, next to the `Error` that converts from all of them.
pub use processing_core::{CodecError, ErrorChain, ErrorContext, HandleError};
pub use processing_macros::main;
pub use processing_manager::{ManagerError, RemoteError, RemoteErrorKind};
pub use processing_shm::ShmError;
pub use processing_sync::{AcquireError, BarrierError, ConditionError, ReleaseError, SyncError};
pub use processing_transport::queue::{
    GetError, GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError, QueueError,
    TaskDoneError, TryGetError, TryPutError,
};
pub use processing_transport::FrameError;

pub use processing_pool::prelude;

pub use processing_pool::{
    dummy, AsyncResult, Callbacks, IMap, Pool, PoolBuildError, PoolBuilder, PoolError,
    WorkerStartError,
};
pub use processing_process::{
    active_children, cpu_count, current_process, get_context, get_start_method, init,
    log_to_stderr, parent_process, set_start_method, spawn, Context, Process, ProcessError,
    SpawnError, StartMethod,
};

pub use processing_manager::Manager;
pub use processing_shm::{RawArray, RawValue, SharedMemory};
pub use processing_sync::{
    Array, Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore, Value,
};
pub use processing_sync::{ArrayGuard, LockGuard, RLockGuard, SemaphoreGuard, ValueGuard};
/// Python's pickle, data only (cargo feature `pickle`): [`pickle::PickleValue`], and the codec
/// behind [`Connection::send_pickle`] / [`Connection::recv_pickle`].
#[cfg(feature = "pickle")]
#[doc(inline)]
pub use processing_transport::pickle;
pub use processing_transport::{
    wait, Address, AuthError, Client, Connection, ConnectionError, Listener, ListenerError, Pipe,
    Waitable,
};
pub use processing_transport::{JoinableQueue, Queue, QueueBuilder, SimpleQueue};

/// The snippets of `docs/guide.md`, compiled and run as doc tests.
#[doc = include_str!("../../../docs/guide.md")]
#[cfg(doctest)]
pub struct GuideDoctests;

/// The Rust snippets of `docs/migration-from-python.md`, compiled and run as doc tests.
#[doc = include_str!("../../../docs/migration-from-python.md")]
#[cfg(doctest)]
pub struct MigrationDoctests;

/// The example of `README.md`, compiled and run as a doc test.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
