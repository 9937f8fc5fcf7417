//! A pool of worker processes that never hangs when a worker dies.
//!
//! Layer: `core → shm → sync → transport → process → {manager, **pool**} → processing`.
//! It holds [`Pool`] (`apply`, `apply_async`, `map`, `map_async`, `imap`, `imap_unordered`,
//! `starmap`, with chunking, callbacks, `close`/`terminate`/`join`) and [`dummy`], the same API
//! backed by threads. It never depends on manager or the facade.
//!
//! A task is a fn item or a closure that captures nothing (checked at compile time); its
//! arguments and result are serde values. Every task is tracked to the worker that holds it:
//! a worker that dies in the middle of a task (panic with `abort`, `exit`, a signal, out of
//! memory) fails exactly that task with [`PoolError::WorkerLost`], is replaced, and the pool
//! goes on; a task past the pool's `task_timeout` fails with [`PoolError::TaskTimeout`] and its
//! worker is replaced.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use processing::Pool; // processing::dummy::Pool: the same API over threads
//! fn square(x: u64) -> u64 { x * x }
//! let pool = Pool::new(2)?;
//! assert_eq!(pool.map(square, 0..10)?, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
//! assert_eq!(pool.apply(square, 12)?, 144);
//! let r = pool.map_async(square, 0..4)?;
//! assert_eq!(r.get_timeout(std::time::Duration::from_secs(5))?, [0, 1, 4, 9]);
//! pool.close();
//! pool.join()?;
//! # Ok(()) }
//! ```
//!
//! A capturing closure is rejected at compile time:
//!
//! ```compile_fail
//! let pool = processing::Pool::new(1).unwrap();
//! let k = 3u64;
//! pool.map(move |x: u64| x * k, 0..10u64).unwrap();
//! ```

#![doc(html_root_url = "https://docs.rs/processing-pool/0.1.0")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(hidden)]
pub mod backend;
mod core;
pub mod dummy;
mod error;
/// The reply ring over a heap region, for the model-checking tests (`tests/loom_*.rs`).
#[cfg(all(loom, unix))]
pub mod model;
pub mod par;
mod progress;
mod result;
mod sys;
mod task;
mod wait;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use processing_process::StartMethod;
use serde::{de::DeserializeOwned, Serialize};

use crate::backend::{Backend, WorkerInit};
use crate::core::{Config, Shared};
use crate::task::{encode_chunk, init_entry, Direct, Entries, EntryFn, Spread};

pub use crate::error::{PoolBuildError, PoolError, WorkerStartError};
pub use crate::result::{AsyncResult, Callbacks, IMap};
pub use crate::task::{StarFn, TaskArg, TaskFn, TaskResult};

/// The traits that give iterables their process-parallel methods:
/// `use processing::prelude::*;`.
pub mod prelude {
    pub use crate::par::IntoParProcessIter;
}

/// The number of CPUs this process may use (at least 1): the default pool size.
///
/// ```
/// assert!(processing::pool::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Python's automatic chunk size for `map`: about four chunks per worker.
fn default_chunksize(len: usize, processes: usize) -> usize {
    let parts = processes.max(1) * 4;
    len.div_ceil(parts).max(1)
}

/// How many chunks `imap` keeps pulled ahead of the consumer.
fn imap_lookahead(processes: usize) -> usize {
    4 * processes.max(1)
}

/// An initializer's encoding failure, kept until `build` reports it (the builder is `Clone`).
type SharedCodecError = std::sync::Arc<processing_core::CodecError>;

/// Settings of a [`Pool`]; build it with [`build`](PoolBuilder::build).
///
/// Defaults: [`cpu_count`] processes, no initializer, workers live for any number of tasks
/// and any size, no task timeout, no progress bar.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// let pool = processing::Pool::builder()
///     .processes(2)
///     .max_tasks_per_child(100)
///     .task_timeout(Duration::from_secs(60))
///     .build()?;
/// assert_eq!(pool.processes(), 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct PoolBuilder {
    processes: Option<usize>,
    initializer: Option<Result<(EntryFn, Vec<u8>), SharedCodecError>>,
    max_tasks_per_child: Option<usize>,
    max_memory_per_child: Option<u64>,
    task_timeout: Option<Duration>,
    progress: bool,
    start_method: Option<StartMethod>,
    threads: bool,
}

impl PoolBuilder {
    /// Number of workers (default: [`cpu_count`]); 0 is an error at `build`.
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// Runs `f(args)` once in each worker before its first task (`f`: a fn item or a
    /// closure that captures nothing; a capturing closure is refused when the program is built,
    /// not by `cargo check`, with `error[E0080]: evaluation panicked: an initializer must be a
    /// fn item or a closure that captures nothing`). A panicking initializer makes the worker fail to start:
    /// while no worker can start, the queued tasks fail with [`PoolError::Spawn`] (the
    /// initializer's panic as its source) and the pool keeps retrying with a backoff.
    pub fn initializer<F, A>(mut self, f: F, args: A) -> Self
    where
        F: Fn(A) + Copy + Send + Sync + 'static,
        A: TaskArg,
    {
        const {
            assert!(
                std::mem::size_of::<F>() == 0,
                "an initializer must be a fn item or a closure that captures nothing"
            )
        };
        let _ = f;
        let entry: EntryFn = init_entry::<F, A>;
        self.initializer = Some(
            processing_core::codec::encode(&args)
                .map(|bytes| (entry, bytes))
                .map_err(std::sync::Arc::new),
        );
        self
    }

    /// A worker is replaced after this many tasks (a map chunk counts as one); 0 is an error.
    pub fn max_tasks_per_child(mut self, n: usize) -> Self {
        self.max_tasks_per_child = Some(n);
        self
    }

    /// A worker whose resident size exceeds `bytes` after a task is replaced (process pools;
    /// threads share one address space, so a thread pool ignores it); 0 is an error.
    pub fn max_memory_per_child(mut self, bytes: u64) -> Self {
        self.max_memory_per_child = Some(bytes);
        self
    }

    /// A task running longer fails with [`PoolError::TaskTimeout`] and its worker is replaced
    /// (a thread worker cannot be stopped: it is abandoned and finishes on its own).
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// Draws a progress bar on stderr for map-style calls (off by default).
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// How worker processes are started (default: the process layer's default, forkserver on
    /// Unix and spawn on Windows). Ignored by a thread pool.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    pub(crate) fn threads(mut self) -> Self {
        self.threads = true;
        self
    }

    /// Starts the workers.
    pub fn build(self) -> Result<Pool, PoolBuildError> {
        self.build_on(None)
    }

    /// Starts the pool on another engine's workers (the seam of `processing-cluster`): the
    /// same `Pool`, its tasks run by `backend`, which gets the pool's settings in the
    /// [`WorkerInit`](backend::WorkerInit) of each worker it starts.
    #[doc(hidden)]
    pub fn build_with_backend(self, backend: Box<dyn Backend>) -> Result<Pool, PoolBuildError> {
        self.build_on(Some(backend))
    }

    fn build_on(self, backend: Option<Box<dyn Backend>>) -> Result<Pool, PoolBuildError> {
        let processes = self.processes.unwrap_or_else(cpu_count);
        if processes == 0 {
            return Err(PoolBuildError::zero_processes());
        }
        if self.max_tasks_per_child == Some(0) {
            return Err(PoolBuildError::zero_max_tasks());
        }
        if self.max_memory_per_child == Some(0) {
            return Err(PoolBuildError::zero_max_memory());
        }
        let initializer = self
            .initializer
            .transpose()
            .map_err(PoolBuildError::codec)?;
        let config = Config {
            processes,
            max_tasks_per_child: self.max_tasks_per_child,
            task_timeout: self.task_timeout,
            init: WorkerInit {
                initializer,
                max_memory: self.max_memory_per_child,
                task_timeout: self.task_timeout,
            },
        };
        let backend: Box<dyn Backend> = if let Some(backend) = backend {
            backend
        } else if self.threads {
            Box::new(backend::threads::Threads)
        } else {
            backend::processes(self.start_method)
        };
        let (shared, handles) = Shared::start(config, backend).map_err(PoolBuildError::spawn)?;
        Ok(Pool {
            shared,
            handles: Mutex::new(handles),
            processes,
            progress: self.progress,
        })
    }
}

/// A pool of worker processes.
///
/// Calls return `Result`: a task's panic, its worker's death or its timeout is an `Err` of
/// that call only; the pool stays usable. `map` returns the first failing chunk's error (the
/// first to fail in time) and dispatches none of the map's remaining chunks.
///
/// Dropping the pool terminates it: queued tasks fail with [`PoolError::Terminated`] and the
/// workers are stopped. Call [`close`](Pool::close) and [`join`](Pool::join) to wait for the
/// queued work instead.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use processing::Pool;
/// fn add(a: i32, b: i32) -> i32 { a + b }
/// let pool = Pool::new(2)?;
/// assert_eq!(pool.starmap(add, [(1, 2), (3, 4)])?, [3, 7]);
/// assert_eq!(pool.chunksize(1).map(i32::abs, [-1, 2, -3])?, [1, 2, 3]);
/// # Ok(()) }
/// ```
pub struct Pool {
    shared: Arc<Shared>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    processes: usize,
    progress: bool,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.processes)
            .field("threads", &self.shared.is_threads())
            .finish_non_exhaustive()
    }
}

/// The fn-item rule of a pool task, in the doc of each call that takes one.
macro_rules! task_rule_doc {
    () => {
        "`f` must be a fn item or a closure that captures nothing. A capturing closure is \
         refused when the program is built (`cargo build`, `cargo test`), not by `cargo check`, \
         with `error[E0080]: evaluation panicked: a pool task must be a fn item or a closure \
         that captures nothing`."
    };
}

/// The map-style calls, written once for the two types that have them: [`Pool`] (the
/// automatic chunk size) and [`Chunked`] (a chosen one). It expands in an `impl` whose type
/// has `fn chunked(&self) -> Chunked<'_>`, the chunk size its calls submit with. `map` and
/// `starmap` differ only in the bound of `f` and in how a task applies it to an input
/// (`Direct`: `f(a)`; `Spread`: `f(a, b, ..)` for a tuple), given once for their three calls;
/// `imap` and `imap_unordered` differ only in the order of the results.
macro_rules! map_style_calls {
    () => {
        map_style_calls! {
            @map [F: TaskFn<A, R>, A: TaskArg, R: TaskResult, I: IntoIterator<Item = A>], Direct,
            /// `f` applied to every input, in order; waits for all.
            fn map;
            /// Queues `f` over every input; the result is the whole vector.
            fn map_async;
            /// [`map_async`](Self::map_async) with a callback and/or error callback.
            fn map_async_with;
        }
        map_style_calls! {
            @map [F: StarFn<A, R>, A: TaskArg, R: TaskResult, I: IntoIterator<Item = A>], Spread,
            /// `f(a, b, ..)` for every tuple `(a, b, ..)`, in order.
            fn starmap;
            /// Queues [`starmap`](Self::starmap).
            fn starmap_async;
            /// [`starmap_async`](Self::starmap_async) with a callback and/or error callback.
            fn starmap_async_with;
        }
        map_style_calls! {
            @imap
            /// A lazy iterator of `f` over the inputs, in order (see [`IMap`]).
            fn imap, ordered: true;
            /// Like [`imap`](Self::imap), yielding results as they finish.
            fn imap_unordered, ordered: false;
        }
    };
    (
        @map [$($bounds:tt)*], $apply:ident,
        $(#[$wait_doc:meta])* fn $wait:ident;
        $(#[$queue_doc:meta])* fn $queue:ident;
        $(#[$with_doc:meta])* fn $with:ident;
    ) => {
        $(#[$wait_doc])*
        ///
        #[doc = task_rule_doc!()]
        pub fn $wait<F, A, R, I>(&self, f: F, iterable: I) -> Result<Vec<R>, PoolError>
        where
            $($bounds)*
        {
            self.$queue(f, iterable)?.get()
        }

        $(#[$queue_doc])*
        ///
        #[doc = task_rule_doc!()]
        pub fn $queue<F, A, R, I>(
            &self,
            f: F,
            iterable: I,
        ) -> Result<AsyncResult<Vec<R>>, PoolError>
        where
            $($bounds)*
        {
            self.$with(f, iterable, Callbacks::new())
        }

        $(#[$with_doc])*
        pub fn $with<F, A, R, I>(
            &self,
            f: F,
            iterable: I,
            callbacks: Callbacks<Vec<R>>,
        ) -> Result<AsyncResult<Vec<R>>, PoolError>
        where
            $($bounds)*
        {
            task::stateless(f);
            self.chunked()
                .submit_map(Entries::<$apply<F>, A, R>::chunk, iterable, callbacks)
        }
    };
    (@imap $($(#[$doc:meta])* fn $name:ident, ordered: $ordered:literal;)*) => {$(
        $(#[$doc])*
        ///
        #[doc = task_rule_doc!()]
        pub fn $name<'a, F, A, R, I>(&self, f: F, iterable: I) -> Result<IMap<'a, R>, PoolError>
        where
            F: TaskFn<A, R>,
            A: TaskArg,
            R: TaskResult,
            I: IntoIterator<Item = A>,
            I::IntoIter: 'a,
        {
            task::stateless(f);
            self.chunked()
                .submit_imap(Entries::<Direct<F>, A, R>::items, iterable, $ordered)
        }
    )*};
}

impl Pool {
    /// A pool of `processes` workers (`Pool::new(0)` is an error).
    pub fn new(processes: usize) -> Result<Pool, PoolBuildError> {
        Pool::builder().processes(processes).build()
    }

    /// A builder with every setting at its default.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The number of workers.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// The process ids of the current workers (this process's id for each thread worker).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared.worker_pids()
    }

    /// Runs `f(args)` in a worker and waits for the result.
    ///
    #[doc = task_rule_doc!()]
    ///
    /// ```compile_fail,E0080
    /// let pool = processing::pool::Pool::new(1).unwrap();
    /// let factor = 3u32;
    /// let r = pool.apply(move |x: u32| x * factor, 14);
    /// ```
    pub fn apply<F, A, R>(&self, f: F, args: A) -> Result<R, PoolError>
    where
        F: TaskFn<A, R>,
        A: TaskArg,
        R: TaskResult,
    {
        self.apply_async(f, args)?.get()
    }

    /// Queues `f(args)` and returns at once.
    ///
    #[doc = task_rule_doc!()]
    pub fn apply_async<F, A, R>(&self, f: F, args: A) -> Result<AsyncResult<R>, PoolError>
    where
        F: TaskFn<A, R>,
        A: TaskArg,
        R: TaskResult,
    {
        self.apply_async_with(f, args, Callbacks::new())
    }

    /// [`apply_async`](Pool::apply_async) with a callback and/or error callback.
    pub fn apply_async_with<F, A, R>(
        &self,
        f: F,
        args: A,
        callbacks: Callbacks<R>,
    ) -> Result<AsyncResult<R>, PoolError>
    where
        F: TaskFn<A, R>,
        A: TaskArg,
        R: TaskResult,
    {
        task::stateless(f);
        let entry: EntryFn = Entries::<Direct<F>, A, R>::chunk;
        let input = encode_chunk(std::slice::from_ref(&args))?;
        result::ApplyGroup::submit(&self.shared, entry, input, callbacks)
    }

    map_style_calls!();

    /// The map-style calls with an explicit chunk size (inputs per task message; at least 1).
    /// Without it, `map`/`starmap` use about four chunks per worker and `imap` uses 1 (or the
    /// `map` rule when the input knows its exact length).
    pub fn chunksize(&self, chunksize: usize) -> Chunked<'_> {
        Chunked {
            pool: self,
            chunksize: Some(chunksize.max(1)),
        }
    }

    /// The automatic chunk size as the receiver of the map-style calls.
    fn chunked(&self) -> Chunked<'_> {
        Chunked {
            pool: self,
            chunksize: None,
        }
    }

    /// No more tasks are accepted; the workers exit once the queued tasks are done.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Stops the workers now; queued and running tasks fail with [`PoolError::Terminated`].
    pub fn terminate(&self) {
        self.shared.terminate();
    }

    /// Waits for the workers to exit; only after [`close`](Pool::close) or
    /// [`terminate`](Pool::terminate) ([`PoolError::NotClosed`] otherwise).
    pub fn join(&self) -> Result<(), PoolError> {
        if !self.shared.is_stopping() {
            return Err(PoolError::NotClosed);
        }
        self.shared.wait_stopped();
        self.join_supervisors();
        Ok(())
    }

    /// [`join`](Pool::join) without blocking a thread (feature `async`; any executor): the
    /// last supervising thread to stop wakes the awaiting task. [`PoolError::NotClosed`] at
    /// once unless the pool was closed or terminated. Dropping the future stops nothing: the
    /// workers exit as they would anyway.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use processing::Pool;
    /// fn square(x: u64) -> u64 { x * x }
    /// let pool = Pool::new(2)?;
    /// let r = pool.apply_async(square, 7)?;
    /// pool.close();
    /// processing::core::aio::block_on(pool.join_async())?;
    /// assert_eq!(r.get()?, 49);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "async")]
    pub async fn join_async(&self) -> Result<(), PoolError> {
        if !self.shared.is_stopping() {
            return Err(PoolError::NotClosed);
        }
        std::future::poll_fn(|cx| self.shared.poll_stopped(cx)).await;
        self.join_supervisors();
        Ok(())
    }

    /// Joins the supervising threads, which have stopped (or are returning).
    fn join_supervisors(&self) {
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }

    fn progress_for(&self, total: Option<usize>) -> Option<progress::Progress> {
        self.progress.then(|| progress::Progress::new(total))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
        let _ = self.join();
    }
}

/// A chunk of inputs encoded as one task message, with its number of inputs.
fn encode_counted<A: Serialize>(chunk: &[A]) -> Result<(Vec<u8>, usize), PoolError> {
    Ok((encode_chunk(chunk)?, chunk.len()))
}

/// The map-style calls of a [`Pool`] with a chosen chunk size ([`Pool::chunksize`]): each is
/// the pool's call of the same name with this chunk size.
#[derive(Debug, Clone, Copy)]
pub struct Chunked<'p> {
    pool: &'p Pool,
    chunksize: Option<usize>,
}

impl<'p> Chunked<'p> {
    map_style_calls!();

    /// This chunk size as the receiver of the map-style calls.
    fn chunked(&self) -> Chunked<'p> {
        *self
    }

    fn submit_map<A, R, I>(
        self,
        entry: EntryFn,
        iterable: I,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        if !self.pool.shared.is_running() {
            return Err(PoolError::Closed);
        }
        let items: Vec<A> = iterable.into_iter().collect();
        let chunksize = self
            .chunksize
            .unwrap_or_else(|| default_chunksize(items.len(), self.pool.processes));
        let progress = self.pool.progress_for(Some(items.len()));
        let chunks = items.chunks(chunksize).map(encode_counted);
        result::MapGroup::submit(
            &self.pool.shared,
            entry,
            items.len().div_ceil(chunksize),
            chunks,
            callbacks,
            progress,
        )
    }

    fn submit_imap<'a, A, R, I>(
        self,
        entry: EntryFn,
        iterable: I,
        ordered: bool,
    ) -> Result<IMap<'a, R>, PoolError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a,
    {
        let mut input = iterable.into_iter();
        let exact = match input.size_hint() {
            (lower, Some(upper)) if lower == upper => Some(lower),
            _ => None,
        };
        let chunksize = self.chunksize.unwrap_or_else(|| {
            exact.map_or(1, |n| default_chunksize(n, self.pool.processes).min(1024))
        });
        let source: result::ChunkSource<'a> = Box::new(move || {
            let chunk: Vec<A> = input.by_ref().take(chunksize).collect();
            if chunk.is_empty() {
                return None;
            }
            Some((encode_chunk(&chunk), chunk.len()))
        });
        let progress = self.pool.progress_for(exact);
        IMap::start(
            self.pool.shared.clone(),
            entry,
            source,
            ordered,
            imap_lookahead(self.pool.processes),
            progress,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::progress::{Progress, LAST};

    fn fails_on_3_and_8(x: u64) -> u64 {
        if x == 3 || x == 8 {
            panic!("input {x} fails");
        }
        x
    }

    fn last_bar() -> Progress {
        LAST.with(|l| l.borrow_mut().take())
            .expect("a progress bar")
    }

    fn pool() -> crate::dummy::Pool {
        crate::dummy::Pool::builder()
            .processes(2)
            .progress(true)
            .build()
            .unwrap()
    }

    #[test]
    fn imap_bar_counts_each_input_once_and_finishes() {
        let pool = pool();
        for ordered in [true, false] {
            let chunked = pool.chunksize(4);
            let it = if ordered {
                chunked.imap(fails_on_3_and_8, 0..10u64).unwrap()
            } else {
                chunked.imap_unordered(fails_on_3_and_8, 0..10u64).unwrap()
            };
            let bar = last_bar();
            assert_eq!(it.count(), 10);
            assert_eq!(bar.position(), 10, "ordered: {ordered}");
            assert!(bar.is_finished());
        }
    }

    #[test]
    fn failed_map_ends_its_bar() {
        let pool = pool();
        assert!(pool.chunksize(4).map(fails_on_3_and_8, 0..10u64).is_err());
        let bar = last_bar();
        assert!(bar.is_finished());
        assert!(bar.position() <= 10);
        assert_eq!(pool.map(fails_on_3_and_8, [1u64, 2]).unwrap(), [1, 2]);
        let bar = last_bar();
        assert_eq!(bar.position(), 2);
        assert!(bar.is_finished());
    }

    /// Encodes as its number, except 13, whose encoding fails.
    #[derive(serde::Deserialize)]
    struct Unlucky(u64);

    impl serde::Serialize for Unlucky {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            if self.0 == 13 {
                return Err(serde::ser::Error::custom("13 does not travel"));
            }
            s.serialize_newtype_struct("Unlucky", &self.0)
        }
    }

    fn number(x: Unlucky) -> u64 {
        x.0
    }

    /// A chunk whose arguments do not encode fails alone, in its place: an error for each of
    /// its inputs, and every other input's result (also when it is the first chunk).
    #[test]
    fn imap_chunk_that_does_not_encode_fails_alone_in_its_place() {
        let pool = pool();
        for (inputs, bad) in [(0..20u64, 12..16u64), (12..20, 12..16)] {
            for ordered in [true, false] {
                let chunked = pool.chunksize(4);
                let args = inputs.clone().map(Unlucky);
                let it = if ordered {
                    chunked.imap(number, args).unwrap()
                } else {
                    chunked.imap_unordered(number, args).unwrap()
                };
                let got: Vec<Result<u64, crate::PoolError>> = it.collect();
                assert_eq!(got.len(), inputs.clone().count(), "ordered: {ordered}");
                let mut ok: Vec<u64> = got
                    .iter()
                    .filter_map(|r| r.as_ref().ok().copied())
                    .collect();
                ok.sort_unstable();
                let want: Vec<u64> = inputs.clone().filter(|i| !bad.contains(i)).collect();
                assert_eq!(ok, want, "ordered: {ordered}");
                for e in got.iter().filter_map(|r| r.as_ref().err()) {
                    assert!(matches!(e, crate::PoolError::Codec(_)), "{e}");
                }
                if ordered {
                    let first_bad = (bad.start - inputs.start) as usize;
                    for (i, r) in got.iter().enumerate() {
                        let in_bad = (first_bad..first_bad + 4).contains(&i);
                        assert_eq!(r.is_err(), in_bad, "item {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn dropped_imap_ends_its_bar() {
        let pool = pool();
        let mut it = pool
            .chunksize(1)
            .imap(fails_on_3_and_8, 0..1000u64)
            .unwrap();
        let bar = last_bar();
        assert_eq!(it.next().map(Result::ok), Some(Some(0)));
        drop(it);
        assert!(bar.is_finished());
    }
}
