//! The seam between the pool's core and whatever runs its tasks.
//!
//! The core (task queue, task→worker tracking, results, supervision) talks to workers only
//! through [`Backend`] and [`WorkerLink`]. Today there are two backends: [`threads`] (the
//! `dummy` pool) and [`processes`] (local worker processes). A cluster backend would be a third
//! implementation of the same two traits: start a remote worker, send it batches of
//! `(task id, entry, input bytes)`, receive `(task id, status, output bytes)` replies, and
//! report a lost worker; nothing above this module would change.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::task::{EntryFn, Status};
use crate::PoolError;

pub(crate) mod processes;
#[cfg(unix)]
pub(crate) mod ring;
pub(crate) mod threads;

/// What every new worker runs before its first task.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkerInit {
    /// The initializer entry and its encoded argument.
    pub(crate) initializer: Option<(EntryFn, Vec<u8>)>,
    /// A worker whose resident size exceeds this after a task retires itself.
    pub(crate) max_memory: Option<u64>,
}

/// One task as it is sent to a worker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskRef<'a> {
    pub(crate) id: u64,
    pub(crate) entry: EntryFn,
    pub(crate) input: &'a [u8],
}

/// A message from a worker.
#[derive(Debug)]
pub(crate) enum Reply<'a> {
    /// The worker ran its initializer and waits for tasks.
    Ready,
    /// The initializer failed; the worker is exiting.
    InitFailed(PoolError),
    /// A task finished (its result or its error is in `payload`, as `status` says).
    Done {
        id: u64,
        status: Status,
        payload: &'a [u8],
    },
    /// The worker leaves after its last task (memory limit); it starts no further task.
    Retire,
}

/// The worker stopped answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkError {
    /// Nothing arrived before the deadline.
    Timeout,
    /// The worker is gone (its channel closed).
    Lost,
}

/// How a worker ended.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Exit {
    pub(crate) pid: u32,
    pub(crate) exitcode: Option<i32>,
    pub(crate) signal: Option<i32>,
}

impl Exit {
    pub(crate) fn lost_error(self) -> PoolError {
        PoolError::WorkerLost {
            pid: self.pid,
            exitcode: self.exitcode,
            signal: self.signal,
        }
    }
}

/// Starts workers.
pub(crate) trait Backend: Send + Sync + fmt::Debug {
    /// Starts one worker; it runs `init` and then answers [`Reply::Ready`] (or `InitFailed`).
    fn start(&self, init: &WorkerInit) -> Result<Box<dyn WorkerLink>, PoolError>;
    /// Whether workers are threads of this process.
    fn is_threads(&self) -> bool;
}

/// What may be done to a worker from any thread (terminate, `worker_pids`).
pub(crate) trait WorkerControl: Send + Sync + fmt::Debug {
    /// The worker's process id (this process's id for a thread worker).
    fn pid(&self) -> u32;
    /// Stops the worker now (SIGKILL for a process; a thread worker is abandoned).
    fn kill(&self);
}

/// The parent's end of one worker, owned by that worker's supervising thread.
pub(crate) trait WorkerLink: Send + fmt::Debug {
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
    /// Orderly stop: the worker finishes (it holds no task) and exits.
    fn retire(self: Box<Self>);
    /// After a loss or a kill: makes sure the worker is gone and returns how it ended.
    fn reap(self: Box<Self>) -> Exit;
}
