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
//! ```
//! let mut child = processing::spawn(|x: u32| x * 2, 21).unwrap();
//! assert_eq!(child.join().unwrap(), 42);
//! ```

#[doc(inline)]
pub use processing_core as core;
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

pub use processing_macros::main;

pub use processing_pool::prelude;

pub use processing_pool::{
    dummy, AsyncResult, Callbacks, IMap, Pool, PoolBuildError, PoolBuilder, PoolError,
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
pub use processing_transport::{
    wait, Address, AuthError, Client, Connection, ConnectionError, Listener, ListenerError, Pipe,
    Waitable,
};
pub use processing_transport::{JoinableQueue, Queue, SimpleQueue};
