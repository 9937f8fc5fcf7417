//! The seam between the pool's core and whatever runs its tasks.
//!
//! The core (task queue, task→worker tracking, results, supervision) talks to workers only
//! through [`Backend`] and [`WorkerLink`]. Today there are two backends: `threads` (the
//! `dummy` pool) and `processes` (local worker processes). A cluster backend would be a third
//! implementation of the same two traits: start a remote worker, send it batches of
//! `(task id, entry, input bytes)`, receive `(task id, status, output bytes)` replies, and
//! report a lost worker; nothing above this module would change.
//!
//! This module is public but hidden: it is the seam `processing-cluster` implements (a Redis
//! Streams backend) and the machinery its worker hosts run tasks with. It is not a stable API.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::PoolError;
use processing_process::StartMethod;

pub use crate::task::{entry_from_offset, entry_to_offset, install_panic_hook, EntryFn, Status};
pub use threads::reply_error;

pub(crate) mod processes;
pub(crate) mod threads;

/// What every new worker runs before its first task.
#[derive(Debug, Clone, Default)]
pub struct WorkerInit {
    /// The initializer entry and its encoded argument.
    pub initializer: Option<(EntryFn, Vec<u8>)>,
    /// A worker whose resident size exceeds this after a task retires itself.
    pub max_memory: Option<u64>,
    /// The pool's task timeout (a backend whose workers are remote enforces it there).
    pub task_timeout: Option<std::time::Duration>,
}

/// The local process backend (what `Pool::builder().build()` uses): one child process per
/// worker, started with `start_method` (the process layer's default when `None`).
pub fn processes(start_method: Option<StartMethod>) -> Box<dyn Backend> {
    Box::new(processes::Processes { start_method })
}

/// One task as it is sent to a worker.
#[derive(Debug, Clone, Copy)]
pub struct TaskRef<'a> {
    /// The pool's id of the task (unique within the pool).
    pub id: u64,
    /// What runs it.
    pub entry: EntryFn,
    /// Its encoded input.
    pub input: &'a [u8],
}

/// A message from a worker.
#[derive(Debug)]
pub enum Reply<'a> {
    /// The worker ran its initializer and waits for tasks.
    Ready,
    /// The initializer failed; the worker is exiting.
    InitFailed(PoolError),
    /// A task finished (its result or its error is in `payload`, as `status` says).
    Done {
        /// The task's id.
        id: u64,
        /// How it ended.
        status: Status,
        /// Its encoded results or error.
        payload: &'a [u8],
    },
    /// The worker leaves after its last task (memory limit); it starts no further task.
    Retire,
}

/// The worker stopped answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Nothing arrived before the deadline.
    Timeout,
    /// The worker is gone (its channel closed).
    Lost,
}

/// How a worker ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exit {
    /// The worker's process id.
    pub pid: u32,
    /// The exit code, if it exited.
    pub exitcode: Option<i32>,
    /// The ending signal (Unix), if one ended it.
    pub signal: Option<i32>,
}

impl Exit {
    /// The error of the task a worker was running when it ended like this.
    pub fn lost_error(self) -> PoolError {
        PoolError::WorkerLost {
            pid: self.pid,
            exitcode: self.exitcode,
            signal: self.signal,
        }
    }
}

/// Starts workers.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Starts one worker; it runs `init` and then answers [`Reply::Ready`] (or `InitFailed`).
    fn start(&self, init: &WorkerInit) -> Result<Box<dyn WorkerLink>, PoolError>;
    /// Whether workers are threads of this process.
    fn is_threads(&self) -> bool;
}

/// What may be done to a worker from any thread (terminate, `worker_pids`).
pub trait WorkerControl: Send + Sync + fmt::Debug {
    /// The worker's process id (this process's id for a thread worker).
    fn pid(&self) -> u32;
    /// Stops the worker now (SIGKILL for a process; a thread worker is abandoned).
    fn kill(&self);
}

/// The parent's end of one worker, owned by that worker's supervising thread.
pub trait WorkerLink: Send + fmt::Debug {
    /// A handle for killing the worker from another thread.
    fn control(&self) -> Arc<dyn WorkerControl>;
    /// Sends a batch of tasks; the worker runs them in order and replies to each in order.
    fn send(&mut self, tasks: &[TaskRef<'_>]) -> Result<(), LinkError>;
    /// The next reply, waiting until `deadline` at most.
    fn recv(&mut self, deadline: Option<Instant>) -> Result<Reply<'_>, LinkError>;
    /// After the worker was lost: whether it had begun task `id` (the first of its batch
    /// without a reply). `Some(false)` hands the task to another worker; `None` (unknown, the
    /// default) fails it as the task the worker was running.
    fn began(&self, id: u64) -> Option<bool> {
        let _ = id;
        None
    }
    /// Whether an idle worker is known to be gone now (checked without waiting). Its
    /// supervisor polls this while it waits for tasks, so that a worker killed while idle is
    /// reaped (its descriptors released) and replaced at once rather than when the next batch
    /// reaches it. The default, `false`, suits workers that cannot die on their own.
    fn is_lost(&self) -> bool {
        false
    }
    /// Whether [`is_lost`](WorkerLink::is_lost) can ever answer `true` (idle supervisors
    /// then poll it).
    fn may_be_lost(&self) -> bool {
        false
    }
    /// Orderly stop: the worker finishes (it holds no task) and exits.
    fn retire(self: Box<Self>);
    /// After a loss or a kill: makes sure the worker is gone and returns how it ended.
    fn reap(self: Box<Self>) -> Exit;
}
