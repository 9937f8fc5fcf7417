//! The thread backend: each worker is a thread of this process (the `dummy` pool).
//!
//! A thread cannot be killed: a worker past its task timeout, or one stopped by `terminate`,
//! is abandoned (its channel is dropped, so it exits after its current task) and a new thread
//! takes its place. The memory limit does not apply to threads.

use processing_core::ErrorChain;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Instant;

use super::{Backend, Exit, LinkError, Reply, TaskRef, WorkerControl, WorkerInit, WorkerLink};
use crate::task::{self, EntryFn, PanicReport, Status};
use crate::PoolError;

/// Starts worker threads.
#[derive(Debug, Default)]
pub(crate) struct Threads;

struct OwnedTask {
    id: u64,
    entry: EntryFn,
    input: Vec<u8>,
}

enum Message {
    Ready,
    InitFailed(PoolError),
    Done {
        id: u64,
        status: Status,
        payload: Vec<u8>,
    },
}

#[derive(Debug, Default)]
struct ThreadControl {
    abandoned: AtomicBool,
}

impl WorkerControl for ThreadControl {
    fn pid(&self) -> u32 {
        processing_core::os::pid()
    }
    fn kill(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
    }
}

struct ThreadLink {
    tasks: Option<Sender<Vec<OwnedTask>>>,
    replies: Receiver<Message>,
    control: Arc<ThreadControl>,
    last: Vec<u8>,
}

impl std::fmt::Debug for ThreadLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadLink").finish_non_exhaustive()
    }
}

impl Backend for Threads {
    fn start(&self, init: &WorkerInit) -> Result<Box<dyn WorkerLink>, PoolError> {
        task::install_panic_hook();
        let (task_tx, task_rx) = mpsc::channel::<Vec<OwnedTask>>();
        let (reply_tx, reply_rx) = mpsc::channel::<Message>();
        let control = Arc::new(ThreadControl::default());
        let initializer = init.initializer.clone();
        let thread_control = control.clone();
        std::thread::Builder::new()
            .name("processing-pool-worker".into())
            .spawn(move || worker_thread(initializer, task_rx, reply_tx, thread_control))
            .map_err(|e| {
                PoolError::Spawn(crate::WorkerStartError::with_source(
                    "cannot start a worker thread",
                    e,
                ))
            })?;
        Ok(Box::new(ThreadLink {
            tasks: Some(task_tx),
            replies: reply_rx,
            control,
            last: Vec::new(),
        }))
    }

    fn is_threads(&self) -> bool {
        true
    }
}

fn worker_thread(
    initializer: Option<(EntryFn, Vec<u8>)>,
    tasks: Receiver<Vec<OwnedTask>>,
    replies: Sender<Message>,
    control: Arc<ThreadControl>,
) {
    let mut out = Vec::new();
    if let Some((entry, args)) = initializer {
        let status = entry(&args, &mut out);
        if status != Status::Ok {
            let _ = replies.send(Message::InitFailed(reply_error(status, &out)));
            return;
        }
    }
    if replies.send(Message::Ready).is_err() {
        return;
    }
    while let Ok(batch) = tasks.recv() {
        for t in batch {
            if control.abandoned.load(Ordering::SeqCst) {
                return;
            }
            let mut payload = Vec::new();
            // The process backend's limit on a reply, here too: the twins agree.
            let status = (t.entry)(&t.input, &mut payload);
            let status = task::limit_output(&mut payload, 0, status);
            if replies
                .send(Message::Done {
                    id: t.id,
                    status,
                    payload,
                })
                .is_err()
            {
                return;
            }
        }
    }
}

/// The error a non-`Ok` reply carries.
pub fn reply_error(status: Status, payload: &[u8]) -> PoolError {
    match status {
        Status::Ok => PoolError::Codec("a successful reply read as an error".into()),
        Status::Panic => match processing_core::codec::decode::<PanicReport>(payload) {
            Ok(r) => PoolError::Panic {
                message: r.message,
                location: r.location,
            },
            Err(e) => PoolError::Codec(ErrorChain::with_source("cannot decode a panic report", &e)),
        },
        Status::Codec => match processing_core::codec::decode::<ErrorChain>(payload) {
            Ok(m) => PoolError::Codec(m),
            Err(e) => {
                PoolError::Codec(ErrorChain::with_source("cannot decode an error report", &e))
            }
        },
        Status::Error => match processing_core::codec::decode::<PoolError>(payload) {
            Ok(e) => e,
            Err(e) => {
                PoolError::Codec(ErrorChain::with_source("cannot decode an error report", &e))
            }
        },
    }
}

impl WorkerLink for ThreadLink {
    fn control(&self) -> Arc<dyn WorkerControl> {
        self.control.clone()
    }

    fn send(&mut self, tasks: &[TaskRef<'_>]) -> Result<(), LinkError> {
        if self.control.abandoned.load(Ordering::SeqCst) {
            return Err(LinkError::Lost);
        }
        let batch = tasks
            .iter()
            .map(|t| OwnedTask {
                id: t.id,
                entry: t.entry,
                input: t.input.to_vec(),
            })
            .collect();
        let sender = self.tasks.as_ref().ok_or(LinkError::Lost)?;
        sender.send(batch).map_err(|_| LinkError::Lost)
    }

    fn recv(&mut self, deadline: Option<Instant>) -> Result<Reply<'_>, LinkError> {
        // An abandoned thread counts as lost at once; otherwise wait in short steps so that
        // `kill` from another thread is noticed promptly.
        let step = std::time::Duration::from_millis(20);
        let message = loop {
            if self.control.abandoned.load(Ordering::SeqCst) {
                return Err(LinkError::Lost);
            }
            let wait = processing_core::time_left(deadline)
                .map_err(|_| LinkError::Timeout)?
                .map_or(step, |left| left.min(step));
            match self.replies.recv_timeout(wait) {
                Ok(m) => break m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Err(LinkError::Lost),
            }
        };
        Ok(match message {
            Message::Ready => Reply::Ready,
            Message::InitFailed(e) => Reply::InitFailed(e),
            Message::Done {
                id,
                status,
                payload,
            } => {
                self.last = payload;
                Reply::Done {
                    id,
                    status,
                    payload: &self.last,
                }
            }
        })
    }

    fn retire(mut self: Box<Self>) {
        // Dropping the task sender ends the thread's loop; it holds no task now.
        self.tasks = None;
    }

    fn reap(self: Box<Self>) -> Exit {
        self.control.kill();
        Exit {
            pid: processing_core::os::pid(),
            exitcode: None,
            signal: None,
        }
    }
}
