//! Processes with the ease of threads.
//!
//! `processing` runs Rust functions in other OS processes through an API shaped like
//! `std::thread`: start a [`Process`] with a function and its argument, [`join`] it for the
//! return value, and move values between processes through pipes and queues. Shared memory,
//! the synchronisation primitives of threading (locks, semaphores, conditions, events,
//! barriers) working across processes, a manager server with typed proxies, and a [`Pool`]
//! complete the set. It is Python's `multiprocessing` (and
//! its ancestor, the `processing` package) for Rust, with typed values instead of pickle: every
//! value crosses as serde data that decodes without running code. Linux and Windows.
//!
//! A crashing child takes nothing else down: its parent gets an error, a pool replaces the
//! worker and fails only the task it held, and a queue never loses an item whose `put`
//! returned.
//!
//! [`join`]: Process::join
//!
//! # Getting started
//!
//! Add `processing`, and `serde` with its derive, to `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! processing = "0.1"
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! A child's target is a `fn` item (or a closure that captures nothing) taking one argument;
//! the argument and the return value are serde types, so a struct argument derives
//! `Serialize` and `Deserialize`. A child is this same program started again, so the target
//! runs there with no set-up in `main`:
//!
//! ```
//! use processing::{Pool, Process};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Job {
//!     name: String,
//!     count: u64,
//! }
//!
//! // Runs in the child process.
//! fn work(job: Job) -> String {
//!     let total: u64 = (1..=job.count).sum();
//!     format!("{}: {total} (pid {})", job.name, std::process::id())
//! }
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> Result<(), processing::Error> {
//!     // One process: start it, then join it for the target's return value.
//!     let job = Job { name: "sum".into(), count: 10 };
//!     let mut child = Process::new(work, job);
//!     child.start()?;
//!     let report = child.join()?; // or an error saying how the child ended
//!     assert!(report.starts_with("sum: 55"));
//!
//!     // A pool of worker processes: map a function over an iterable, results in order.
//!     let pool = Pool::new(2)?;
//!     assert_eq!(pool.map(square, 0..5)?, [0, 1, 4, 9, 16]);
//!     Ok(())
//! }
//! ```
//!
//! [`spawn`] is the one-call twin of `std::thread::spawn`, and the [`prelude`] gives every
//! iterable rayon's shape over the same kind of pool:
//!
//! ```
//! use processing::prelude::*;
//!
//! fn double(x: i32) -> i32 {
//!     2 * x
//! }
//!
//! let mut child = processing::spawn(double, 21).unwrap();
//! assert_eq!(child.join().unwrap(), 42);
//!
//! let doubled: Vec<i32> = (1..=3).into_par_process_iter().map(double).collect().unwrap();
//! assert_eq!(doubled, [2, 4, 6]);
//! ```
//!
//! Every fallible call returns a typed error of its area; [`Error`] takes any of them through
//! `?`.
//!
//! # What is where
//!
//! The common names are at the top level; each area is also a module.
//!
//! - **Processes** ([`process`]): [`Process`] (builder setters, [`start`], [`join`],
//!   [`terminate`], [`kill`]), [`spawn`], start methods ([`StartMethod`],
//!   [`set_start_method`], [`get_context`]), [`current_process`], [`parent_process`],
//!   [`active_children`], [`cpu_count`], [`init`] and [`#[processing::main]`](main) for
//!   programs that want the set-up explicit, [`log_to_stderr`].
//! - **Channels** ([`transport`]): [`Pipe`] and its [`Connection`] ends; [`Listener`] and
//!   [`Client`] (authenticated, Python 3.12+'s wire), [`wait`] on several at once; the
//!   [`Queue`], [`JoinableQueue`] and [`SimpleQueue`] family in shared memory.
//! - **Shared state** ([`shm`], [`sync`]): [`Value`], [`Array`], [`RawValue`], [`RawArray`],
//!   [`SharedMemory`]; [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`],
//!   [`Condition`], [`Event`], [`Barrier`].
//! - **Managers** ([`manager`]): [`Manager`], a server process holding lists, dicts,
//!   namespaces, queues and locks behind typed proxies, locally or over TCP.
//! - **Pools** ([`pool`]): [`Pool`] (`map`, `imap`, `imap_unordered`, `apply_async`,
//!   `starmap`, chunking, callbacks, a progress bar, workers that may die), built by
//!   [`Pool::builder`]; [`into_par_process_iter`] from the [`prelude`]; and [`dummy`], the
//!   same API over threads (Python's `multiprocessing.dummy`).
//! - **Errors**: each area's error type, and [`Error`], which converts from all of them.
//! - **Cargo features**: `pickle` (Python objects, data only, on a connection), `async`
//!   (awaitable twins of the blocking waits), `cluster` (the pool and a queue over Redis
//!   Streams, across hosts). None is on by default.
//!
//! [`start`]: Process::start
//! [`terminate`]: Process::terminate
//! [`kill`]: Process::kill
//! [`into_par_process_iter`]: prelude::IntoParProcessIter::into_par_process_iter
//!
//! # Further reading
//!
//! - [The guide](guide): a tour for Rust programmers — processes or threads, start methods,
//!   passing handles, choosing a channel, pools, failure semantics and the guarantees, async,
//!   logging.
//! - [Migrating from Python](migration): every name of Python's `processing` and
//!   `multiprocessing` and its counterpart here, the differences that matter when porting, and
//!   a Python client talking to a Rust listener.
//!
//! Every snippet of both pages is compiled and run as a doc test of this crate.

#![doc(html_root_url = "https://docs.rs/processing/0.1.0")]
#![cfg_attr(docsrs, feature(doc_cfg))]

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

pub mod guide {
    #![doc = include_str!("../docs/guide.md")]
}

pub mod migration {
    #![doc = include_str!("../docs/migration-from-python.md")]
}

/// The example of the README, compiled and run as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
