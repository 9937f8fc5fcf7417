//! The same Pool, Queue and Process API backed by threads (Python's `processing.dummy`).
//!
//! A program switches between threads and processes by changing an import:
//! `use processing::dummy::Pool` instead of `use processing::Pool`. Tasks keep the process
//! pool's rules (fn items or capture-free closures, serde arguments and results, which are
//! encoded and decoded as for processes), so code that compiles against one compiles against
//! the other. What threads cannot do: a thread cannot be killed (a task past `task_timeout`
//! fails with the timeout error and its thread is abandoned, finishing on its own), and
//! `max_memory_per_child` has no per-thread meaning (ignored).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use processing_pool::dummy::{Pool, Process, Queue};
//! fn square(x: u64) -> u64 { x * x }
//! fn produce(q: Queue<u64>) { for i in 0..3 { q.put(i).unwrap(); } }
//!
//! let pool = Pool::new(2)?;
//! assert_eq!(pool.map(square, 0..4)?, [0, 1, 4, 9]);
//!
//! let q = Queue::new();
//! let mut p = Process::new(produce, q.clone());
//! p.start()?;
//! p.join()?;
//! assert_eq!((q.get()?, q.get()?, q.get()?), (0, 1, 2));
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::PoolBuildError;

/// A pool of worker threads with the API of [`crate::Pool`] (every method of it is available
/// through `Deref`).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// fn square(x: u64) -> u64 { x * x }
/// let pool = processing_pool::dummy::Pool::new(3)?;
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
/// let pool = processing_pool::dummy::Pool::builder().processes(2).build().unwrap();
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
        A: serde::Serialize + serde::de::DeserializeOwned,
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `put` that did not happen; the item is handed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PutError<T> {
    /// The queue is full (`try_put`).
    #[error("the queue is full")]
    Full(T),
    /// The queue stayed full until the timeout (`put_timeout`).
    #[error("timed out waiting for room in the queue")]
    Timeout(T),
    /// The queue is closed.
    #[error("the queue is closed")]
    Closed(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::Timeout(t) | PutError::Closed(t) => t,
        }
    }
    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }
    /// Whether the timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutError::Timeout(_))
    }
    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PutError::Closed(_))
    }
}

/// A `get` that returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    /// The queue is empty (`try_get`).
    #[error("the queue is empty")]
    Empty,
    /// The queue stayed empty until the timeout (`get_timeout`).
    #[error("timed out waiting for an item")]
    Timeout,
    /// The queue is closed (and, for `get`, empty).
    #[error("the queue is closed")]
    Closed,
}

impl GetError {
    /// Whether the queue was empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, GetError::Empty)
    }
    /// Whether the timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, GetError::Timeout)
    }
    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, GetError::Closed)
    }
}

struct QueueState<T> {
    items: VecDeque<T>,
    closed: bool,
}

struct QueueInner<T> {
    state: Mutex<QueueState<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: Option<usize>,
}

/// A multi-producer multi-consumer FIFO between threads, with the method names of the
/// process-shared `Queue`.
///
/// ```
/// let q = processing_pool::dummy::Queue::bounded(1);
/// q.put(1).unwrap();
/// assert!(q.try_put(2).unwrap_err().is_full());
/// assert_eq!(q.get().unwrap(), 1);
/// assert!(q.try_get().unwrap_err().is_empty());
/// ```
pub struct Queue<T> {
    inner: Arc<QueueInner<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("capacity", &self.inner.capacity)
            .finish()
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Queue<T> {
    /// An unbounded queue.
    pub fn new() -> Self {
        Self::with_capacity(None)
    }

    /// A queue of at most `capacity` items (at least 1).
    pub fn bounded(capacity: usize) -> Self {
        Self::with_capacity(Some(capacity.max(1)))
    }

    fn with_capacity(capacity: Option<usize>) -> Self {
        Queue {
            inner: Arc::new(QueueInner {
                state: Mutex::new(QueueState {
                    items: VecDeque::new(),
                    closed: false,
                }),
                not_empty: Condvar::new(),
                not_full: Condvar::new(),
                capacity,
            }),
        }
    }

    fn put_until(&self, item: T, deadline: Option<Option<Instant>>) -> Result<(), PutError<T>> {
        let mut s = lock(&self.inner.state);
        loop {
            if s.closed {
                return Err(PutError::Closed(item));
            }
            if self.inner.capacity.is_none_or(|c| s.items.len() < c) {
                s.items.push_back(item);
                self.inner.not_empty.notify_one();
                return Ok(());
            }
            s = match deadline {
                Some(None) => return Err(PutError::Full(item)),
                None => self
                    .inner
                    .not_full
                    .wait(s)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(Some(d)) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(PutError::Timeout(item));
                    }
                    self.inner
                        .not_full
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Appends `item`, waiting for room.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, None)
    }

    /// Appends `item`, waiting at most `timeout` for room.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_until(item, Some(Instant::now().checked_add(timeout)))
    }

    /// Appends `item` if there is room now.
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, Some(None))
    }

    fn get_until(&self, deadline: Option<Option<Instant>>) -> Result<T, GetError> {
        let mut s = lock(&self.inner.state);
        loop {
            if let Some(item) = s.items.pop_front() {
                self.inner.not_full.notify_one();
                return Ok(item);
            }
            if s.closed {
                return Err(GetError::Closed);
            }
            s = match deadline {
                Some(None) => return Err(GetError::Empty),
                None => self
                    .inner
                    .not_empty
                    .wait(s)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(Some(d)) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(GetError::Timeout);
                    }
                    self.inner
                        .not_empty
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Removes the oldest item, waiting for one.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_until(None)
    }

    /// Removes the oldest item, waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_until(Some(Instant::now().checked_add(timeout)))
    }

    /// Removes the oldest item if there is one now.
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_until(Some(None))
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        lock(&self.inner.state).items.len()
    }

    /// Whether there is no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a bounded queue is at its capacity.
    pub fn is_full(&self) -> bool {
        self.inner.capacity.is_some_and(|c| self.len() >= c)
    }

    /// No more puts; gets drain what is left, then fail with [`GetError::Closed`].
    pub fn close(&self) {
        lock(&self.inner.state).closed = true;
        self.inner.not_empty.notify_all();
        self.inner.not_full.notify_all();
    }
}

/// A thread's start, join or lifecycle call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// `start` was called twice.
    #[error("the process was already started")]
    AlreadyStarted,
    /// `join` before `start`.
    #[error("the process was not started")]
    NotStarted,
    /// The target panicked.
    #[error("the process panicked{}: {message}", location.as_ref().map(|l| format!(" at {l}")).unwrap_or_default())]
    Panicked {
        /// The panic message.
        message: String,
        /// Where it panicked, when known.
        location: Option<String>,
    },
    /// `join_timeout` ran out of time.
    #[error("timed out waiting for the process")]
    Timeout,
    /// The result was already returned by an earlier join.
    #[error("the process was already joined")]
    AlreadyJoined,
    /// The thread could not be started.
    #[error("cannot start the thread: {0}")]
    Spawn(String),
}

type Outcome<R> = Result<R, crate::task::PanicReport>;

struct Finished<R> {
    outcome: Mutex<Option<Outcome<R>>>,
    done: Condvar,
}

/// A thread with the API of the process-backed `Process`: `new(target, args)`, `start`,
/// `join` (the target's return value), `join_timeout`, `is_alive`, `exitcode`.
///
/// ```
/// fn double(x: u32) -> u32 { x * 2 }
/// let mut p = processing_pool::dummy::Process::new(double, 21).name("doubler");
/// p.start().unwrap();
/// assert_eq!(p.join().unwrap(), 42);
/// assert_eq!(p.exitcode(), Some(0));
/// ```
pub struct Process<R> {
    body: Option<Box<dyn FnOnce() -> R + Send>>,
    name: Option<String>,
    daemon: bool,
    handle: Option<JoinHandle<()>>,
    finished: Arc<Finished<R>>,
    joined: bool,
    exitcode: Option<i32>,
}

impl<R> std::fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("daemon", &self.daemon)
            .field("exitcode", &self.exitcode)
            .finish_non_exhaustive()
    }
}

impl<R: Send + 'static> Process<R> {
    /// A thread that will run `target(args)` (`target`: a fn item or a capture-free closure,
    /// as for processes).
    pub fn new<F, A>(target: F, args: A) -> Self
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Send + 'static,
    {
        const {
            assert!(
                std::mem::size_of::<F>() == 0,
                "a process target must be a fn item or a closure that captures nothing"
            )
        };
        Process {
            body: Some(Box::new(move || target(args))),
            name: None,
            daemon: false,
            handle: None,
            finished: Arc::new(Finished {
                outcome: Mutex::new(None),
                done: Condvar::new(),
            }),
            joined: false,
            exitcode: None,
        }
    }

    /// Names the thread.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Records the daemon flag (a daemonic thread is not waited for at exit, like any thread).
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// The thread's name, if set.
    pub fn get_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Starts the thread.
    pub fn start(&mut self) -> Result<(), ProcessError> {
        let body = self.body.take().ok_or(ProcessError::AlreadyStarted)?;
        let finished = self.finished.clone();
        crate::task::install_panic_hook();
        let mut builder = std::thread::Builder::new();
        if let Some(n) = &self.name {
            builder = builder.name(n.clone());
        }
        let handle = builder
            .spawn(move || {
                let outcome = crate::task::catch_task(body);
                *lock(&finished.outcome) = Some(outcome);
                finished.done.notify_all();
            })
            .map_err(|e| ProcessError::Spawn(e.to_string()))?;
        self.handle = Some(handle);
        Ok(())
    }

    /// Whether the thread runs.
    pub fn is_alive(&self) -> bool {
        self.handle.is_some() && !self.joined && lock(&self.finished.outcome).is_none()
    }

    /// This process's id once started (threads share it).
    pub fn pid(&self) -> Option<u32> {
        self.handle.as_ref().map(|_| processing_core::os::pid())
    }

    /// 0 after a normal return, 1 after a panic; `None` before.
    pub fn exitcode(&self) -> Option<i32> {
        if self.exitcode.is_some() {
            return self.exitcode;
        }
        lock(&self.finished.outcome)
            .as_ref()
            .map(|o| if o.is_ok() { 0 } else { 1 })
    }

    /// Waits for the thread and returns the target's value.
    pub fn join(&mut self) -> Result<R, ProcessError> {
        self.join_until(None)
    }

    /// Waits at most `timeout`.
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, ProcessError> {
        self.join_until(Instant::now().checked_add(timeout))
    }

    fn join_until(&mut self, deadline: Option<Instant>) -> Result<R, ProcessError> {
        if self.handle.is_none() {
            return Err(if self.joined {
                ProcessError::AlreadyJoined
            } else {
                ProcessError::NotStarted
            });
        }
        let outcome = {
            let mut o = lock(&self.finished.outcome);
            loop {
                if let Some(outcome) = o.take() {
                    break outcome;
                }
                o = match deadline {
                    None => self
                        .finished
                        .done
                        .wait(o)
                        .unwrap_or_else(|e| e.into_inner()),
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            return Err(ProcessError::Timeout);
                        }
                        self.finished
                            .done
                            .wait_timeout(o, d - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                };
            }
        };
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.joined = true;
        self.exitcode = Some(if outcome.is_ok() { 0 } else { 1 });
        outcome.map_err(|r| ProcessError::Panicked {
            message: r.message,
            location: r.location,
        })
    }

    /// A thread cannot be stopped from outside: this returns `false` and the thread goes on.
    pub fn terminate(&self) -> bool {
        false
    }

    /// A thread cannot be killed: this returns `false` and the thread goes on.
    pub fn kill(&self) -> bool {
        false
    }
}

/// Starts `target(args)` on a thread: the [`std::thread::spawn`] twin of
/// `processing::spawn`.
///
/// ```
/// fn one(_: ()) -> u8 { 1 }
/// assert_eq!(processing_pool::dummy::spawn(one, ()).unwrap().join().unwrap(), 1);
/// ```
pub fn spawn<F, A, R>(target: F, args: A) -> Result<Process<R>, ProcessError>
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: Send + 'static,
    R: Send + 'static,
{
    let mut p = Process::new(target, args);
    p.start()?;
    Ok(p)
}
