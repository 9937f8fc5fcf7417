//! The same Pool, Process, queue and pipe API backed by threads (Python's `processing.dummy`).
//!
//! A program switches between threads and processes by changing an import:
//! `use processing::dummy::Pool` instead of `use processing::Pool`. Tasks keep the process
//! pool's rules (fn items or capture-free closures, serde arguments and results, which are
//! encoded and decoded as for processes), so code that compiles against one compiles against
//! the other. The queues and pipes return the very error types of the process ones
//! (`processing::PutError`…, `ConnectionError`). What threads cannot do: a thread cannot be
//! killed (a task past `task_timeout` fails with the timeout error and its thread is abandoned,
//! finishing on its own), and `max_memory_per_child` has no per-thread meaning (ignored).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use processing::dummy::{Pool, Process, Queue};
//! fn square(x: u64) -> u64 { x * x }
//! fn produce(q: Queue<u64>) { for i in 0..3 { q.put(i).unwrap(); } }
//!
//! let pool = Pool::new(2)?;
//! assert_eq!(pool.map(square, 0..4)?, [0, 1, 4, 9]);
//!
//! let q = Queue::new()?;
//! let mut p = Process::new(produce, q.clone());
//! p.start()?;
//! p.join()?;
//! assert_eq!((q.get()?, q.get()?, q.get()?), (0, 1, 2));
//! # Ok(()) }
//! ```

mod pipe;
mod process;
mod queue;
mod registry;
mod sync;

pub use pipe::{Connection, Pipe, SimplexPair};
pub use process::{spawn, Process, ProcessError};
pub use queue::{JoinableQueue, Queue, QueueBuilder, SimpleQueue};
pub use sync::{
    Array, ArrayGuard, Barrier, BoundedSemaphore, Condition, Event, Lock, LockGuard, RLock,
    RLockGuard, Semaphore, SemaphoreGuard, Value, ValueGuard,
};

use std::time::Duration;

use crate::PoolBuildError;

/// The pool's companion types are the same for threads: `use processing::dummy::{Callbacks,
/// Pool}` compiles wherever `use processing::{Callbacks, Pool}` did.
pub use crate::{AsyncResult, Callbacks, IMap, PoolError};

#[cfg(feature = "async")]
pub use process::JoinAsync;

/// A pool of worker threads with the API of [`crate::Pool`] (every method of it is available
/// through `Deref`).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// fn square(x: u64) -> u64 { x * x }
/// let pool = processing::dummy::Pool::new(3)?;
/// assert_eq!(pool.apply(square, 5)?, 25);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pool(crate::Pool);

impl Pool {
    /// A pool of `threads` worker threads (`Pool::new(0)` is an error).
    pub fn new(threads: usize) -> Result<Pool, PoolBuildError> {
        Pool::builder().processes(threads).build()
    }

    /// A builder with every setting at its default.
    pub fn builder() -> PoolBuilder {
        PoolBuilder(crate::PoolBuilder::default().threads())
    }
}

impl std::ops::Deref for Pool {
    type Target = crate::Pool;
    fn deref(&self) -> &crate::Pool {
        &self.0
    }
}

/// [`crate::PoolBuilder`] for a thread pool.
///
/// ```
/// let pool = processing::dummy::Pool::builder().processes(2).build().unwrap();
/// assert_eq!(pool.processes(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct PoolBuilder(crate::PoolBuilder);

impl PoolBuilder {
    /// Number of worker threads (default: [`crate::cpu_count`]).
    pub fn processes(self, n: usize) -> Self {
        PoolBuilder(self.0.processes(n))
    }
    /// See [`crate::PoolBuilder::initializer`]; it runs on each worker thread.
    pub fn initializer<F, A>(self, f: F, args: A) -> Self
    where
        F: Fn(A) + Copy + Send + Sync + 'static,
        A: crate::TaskArg,
    {
        PoolBuilder(self.0.initializer(f, args))
    }
    /// See [`crate::PoolBuilder::max_tasks_per_child`]: the thread is replaced.
    pub fn max_tasks_per_child(self, n: usize) -> Self {
        PoolBuilder(self.0.max_tasks_per_child(n))
    }
    /// Accepted for parity with processes and ignored (threads share one address space).
    pub fn max_memory_per_child(self, bytes: u64) -> Self {
        PoolBuilder(self.0.max_memory_per_child(bytes))
    }
    /// See [`crate::PoolBuilder::task_timeout`]: the late thread is abandoned and replaced.
    pub fn task_timeout(self, timeout: Duration) -> Self {
        PoolBuilder(self.0.task_timeout(timeout))
    }
    /// See [`crate::PoolBuilder::progress`].
    pub fn progress(self, on: bool) -> Self {
        PoolBuilder(self.0.progress(on))
    }
    /// Starts the worker threads.
    pub fn build(self) -> Result<Pool, PoolBuildError> {
        self.0.build().map(Pool)
    }
}
