//! The pool's core: the queue of pending tasks, the supervising thread of each worker slot,
//! and the close/terminate/join state machine.
//!
//! Invariant: a task is in exactly one place: the pending queue, the in-flight batch of one
//! worker's supervisor, or delivered (its group was told its outcome). A supervisor that loses
//! its worker fails exactly the task that worker was running and puts the tasks it had not
//! started back at the front of the queue.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::backend::{
    threads::reply_error, Backend, LinkError, Reply, TaskRef, WorkerControl, WorkerInit, WorkerLink,
};
use crate::task::{EntryFn, Status};
use crate::wait::{self, lock, wait_on};
use crate::{PoolError, WorkerStartError};
use std::error::Error as _;

/// Most tasks sent to a worker in one message.
pub(crate) const MAX_BATCH: usize = 512;
/// Most input bytes of a batch of several tasks (a larger task travels alone).
pub(crate) const MAX_BATCH_BYTES: usize = 1 << 20;
/// The first pause after a failed worker start; it doubles with each consecutive failure.
const START_BACKOFF: Duration = Duration::from_millis(10);
/// The longest pause between two attempts to start a worker.
const MAX_START_BACKOFF: Duration = Duration::from_millis(500);
/// How often an idle supervisor checks that its worker still lives (a worker killed while
/// idle is reaped and replaced within this, not when the next task reaches it).
const IDLE_CHECK: Duration = Duration::from_millis(50);

/// What an idle supervisor gets from [`Shared::take_batch`].
enum Next {
    /// Tasks for its worker.
    Batch(Vec<Task>),
    /// The worker died while it had no task.
    Lost,
    /// The pool is stopping.
    Stop,
}

/// A submission (one `apply_async`, one `map_async`, one `imap`) that tasks report to.
pub(crate) trait Group: Send + Sync {
    /// Called once per task, under the queue lock, when it is first dispatched; `false`
    /// drops the task (cancelled, or its map already failed).
    fn claim(&self) -> bool;
    /// The outcome of task `index` of this group: the encoded results, or an error.
    fn complete(&self, index: usize, outcome: Result<&[u8], PoolError>);
}

/// One unit of work: a chunk of arguments for one entry.
pub(crate) struct Task {
    pub(crate) id: u64,
    pub(crate) entry: EntryFn,
    pub(crate) input: Vec<u8>,
    pub(crate) group: Arc<dyn Group>,
    pub(crate) index: usize,
    claimed: bool,
}

impl Task {
    pub(crate) fn new(entry: EntryFn, input: Vec<u8>, group: Arc<dyn Group>, index: usize) -> Task {
        Task {
            id: 0,
            entry,
            input,
            group,
            index,
            claimed: false,
        }
    }

    fn fail(self, error: PoolError) {
        self.group.complete(self.index, Err(error));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Closed,
    Terminated,
}

struct Queue {
    pending: VecDeque<Task>,
    state: State,
    idle_supervisors: usize,
    live_supervisors: usize,
    /// Slots whose worker is up and takes tasks.
    serving: usize,
    /// Tasks awaiting the end of every supervisor (`Pool::join_async`).
    stop_wakers: Vec<std::task::Waker>,
}

/// Settings the supervisors need.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) processes: usize,
    pub(crate) max_tasks_per_child: Option<usize>,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) init: WorkerInit,
}

/// State shared by the pool handle, its supervisors and its lazy iterators.
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
    all_stopped: Condvar,
    /// Wakes supervisors that pause between failed worker starts (on terminate and close).
    retry: Condvar,
    pub(crate) config: Config,
    backend: Box<dyn Backend>,
    controls: Mutex<Vec<Option<Arc<dyn WorkerControl>>>>,
    next_id: AtomicU64,
    /// Held by a supervisor while it starts a worker: one start at a time, so that while
    /// starts fail (no descriptor left) the attempts of several slots never pool what each
    /// took for a moment into one start that succeeds by chance.
    starting: Mutex<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Starts the pool: one worker per slot (started here, so that a start failure is an
    /// error of the caller) and one supervising thread per worker.
    pub(crate) fn start(
        config: Config,
        backend: Box<dyn Backend>,
    ) -> Result<(Arc<Shared>, Vec<JoinHandle<()>>), PoolError> {
        let n = config.processes;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                pending: VecDeque::new(),
                state: State::Running,
                idle_supervisors: 0,
                live_supervisors: 0,
                serving: 0,
                stop_wakers: Vec::new(),
            }),
            work: Condvar::new(),
            all_stopped: Condvar::new(),
            retry: Condvar::new(),
            config,
            backend,
            controls: Mutex::new(vec![None; n]),
            next_id: AtomicU64::new(1),
            starting: Mutex::new(()),
        });
        let mut links = Vec::with_capacity(n);
        for _ in 0..n {
            match shared.backend.start(&shared.config.init) {
                Ok(link) => links.push(link),
                Err(e) => {
                    for link in links {
                        link.control().kill();
                        link.reap();
                    }
                    return Err(e);
                }
            }
        }
        let mut handles = Vec::with_capacity(n);
        lock(&shared.queue).live_supervisors = n;
        // The first workers are known before `Pool::new` returns (`worker_pids` is complete).
        for (slot, link) in links.iter().enumerate() {
            shared.set_control(slot, Some(link.control()));
        }
        for (slot, link) in links.into_iter().enumerate() {
            let s = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("processing-pool-supervisor-{slot}"))
                .spawn(move || supervise(s, slot, link));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    lock(&shared.queue).live_supervisors -= 1;
                    shared.terminate();
                    for h in handles {
                        let _ = h.join();
                    }
                    return Err(PoolError::Spawn(WorkerStartError::with_source(
                        "cannot start a supervising thread",
                        e,
                    )));
                }
            }
        }
        Ok((shared, handles))
    }

    pub(crate) fn is_threads(&self) -> bool {
        self.backend.is_threads()
    }

    /// Queues tasks (in order) for the workers.
    pub(crate) fn submit(&self, tasks: impl IntoIterator<Item = Task>) -> Result<(), PoolError> {
        let mut q = lock(&self.queue);
        if q.state != State::Running {
            return Err(PoolError::Closed);
        }
        let before = q.pending.len();
        for mut t in tasks {
            t.id = self.next_id.fetch_add(1, Ordering::Relaxed);
            q.pending.push_back(t);
        }
        let added = q.pending.len() - before;
        if q.idle_supervisors > 0 && added > 0 {
            if added == 1 {
                self.work.notify_one();
            } else {
                self.work.notify_all();
            }
        }
        Ok(())
    }

    pub(crate) fn is_running(&self) -> bool {
        lock(&self.queue).state == State::Running
    }

    pub(crate) fn close(&self) {
        let mut q = lock(&self.queue);
        if q.state == State::Running {
            q.state = State::Closed;
        }
        self.work.notify_all();
        self.retry.notify_all();
    }

    pub(crate) fn terminate(&self) {
        let drained: Vec<Task> = {
            let mut q = lock(&self.queue);
            if q.state == State::Terminated {
                return;
            }
            q.state = State::Terminated;
            self.work.notify_all();
            self.retry.notify_all();
            q.pending.drain(..).collect()
        };
        for t in drained {
            t.fail(PoolError::Terminated);
        }
        let controls: Vec<_> = lock(&self.controls).iter().flatten().cloned().collect();
        for c in controls {
            c.kill();
        }
    }

    /// Whether `join` may be called.
    pub(crate) fn is_stopping(&self) -> bool {
        lock(&self.queue).state != State::Running
    }

    /// Ready once every supervisor has stopped; until then `cx`'s waker is woken when the
    /// last one stops.
    #[cfg(feature = "async")]
    pub(crate) fn poll_stopped(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let mut q = lock(&self.queue);
        if q.live_supervisors == 0 {
            return std::task::Poll::Ready(());
        }
        if !q.stop_wakers.iter().any(|w| w.will_wake(cx.waker())) {
            q.stop_wakers.push(cx.waker().clone());
        }
        std::task::Poll::Pending
    }

    /// Waits until every supervisor has stopped.
    pub(crate) fn wait_stopped(&self) {
        let mut q = lock(&self.queue);
        while q.live_supervisors > 0 {
            q = self.all_stopped.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub(crate) fn worker_pids(&self) -> Vec<u32> {
        lock(&self.controls)
            .iter()
            .flatten()
            .map(|c| c.pid())
            .collect()
    }

    /// Takes the next batch for `worker`, which may run `limit` more tasks. While there is
    /// nothing to do, checks every [`IDLE_CHECK`] that the worker still lives.
    fn take_batch(&self, limit: usize, worker: &dyn WorkerLink) -> Next {
        let watch = worker.may_be_lost();
        let mut q = lock(&self.queue);
        loop {
            match q.state {
                State::Terminated => return Next::Stop,
                _ if !q.pending.is_empty() => {
                    let share = q.pending.len().div_ceil(self.config.processes.max(1));
                    let want = share.clamp(1, MAX_BATCH).min(limit.max(1));
                    let mut batch = Vec::with_capacity(want);
                    let mut bytes = 0;
                    while batch.len() < want {
                        // A task that would take the batch over its byte budget waits for the
                        // next one: a batch of several tasks stays within the budget, and a
                        // large task (up to `task::MAX_TASK_BYTES`) travels alone, so every
                        // batch fits a worker's frame.
                        let Some(next) = q.pending.front() else {
                            break;
                        };
                        if !batch.is_empty() && bytes + next.input.len() > MAX_BATCH_BYTES {
                            break;
                        }
                        let Some(mut t) = q.pending.pop_front() else {
                            break;
                        };
                        if !t.claimed {
                            if !t.group.claim() {
                                continue;
                            }
                            t.claimed = true;
                        }
                        bytes += t.input.len();
                        batch.push(t);
                    }
                    if !batch.is_empty() {
                        return Next::Batch(batch);
                    }
                }
                State::Closed => return Next::Stop,
                State::Running if watch => {
                    if worker.is_lost() {
                        return Next::Lost;
                    }
                    q.idle_supervisors += 1;
                    q = self
                        .work
                        .wait_timeout(q, IDLE_CHECK)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    q.idle_supervisors -= 1;
                }
                State::Running => {
                    q.idle_supervisors += 1;
                    q = self.work.wait(q).unwrap_or_else(|e| e.into_inner());
                    q.idle_supervisors -= 1;
                }
            }
        }
    }

    /// Puts tasks a lost worker had not started back at the front of the queue.
    fn requeue(&self, tasks: Vec<Task>) {
        if tasks.is_empty() {
            return;
        }
        let rejected = {
            let mut q = lock(&self.queue);
            if q.state == State::Terminated {
                tasks
            } else {
                for t in tasks.into_iter().rev() {
                    q.pending.push_front(t);
                }
                self.work.notify_all();
                Vec::new()
            }
        };
        for t in rejected {
            t.fail(PoolError::Terminated);
        }
    }

    fn is_terminated(&self) -> bool {
        lock(&self.queue).state == State::Terminated
    }

    fn set_control(&self, slot: usize, control: Option<Arc<dyn WorkerControl>>) {
        lock(&self.controls)[slot] = control;
    }

    /// The id the next submitted task gets: tasks below it were queued before now.
    fn id_watermark(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed)
    }

    /// A worker start that began when the next task id was `watermark` failed. If no slot
    /// serves, the tasks that were queued before that attempt cannot be served: they fail with
    /// the start error (later ones wait for the next attempt). The pool stays open.
    fn start_failed(&self, error: &PoolError, watermark: u64) {
        let failed: Vec<Task> = {
            let mut q = lock(&self.queue);
            if q.serving > 0 || q.state == State::Terminated {
                return;
            }
            let (old, new): (VecDeque<Task>, VecDeque<Task>) =
                q.pending.drain(..).partition(|t| t.id < watermark);
            q.pending = new;
            old.into()
        };
        if !failed.is_empty() {
            tracing::warn!(target: "processing", error = %error, tasks = failed.len(), "no pool worker can start: failing the queued tasks");
        }
        for t in failed {
            t.fail(error.clone());
        }
    }

    /// Waits `pause` before the next start attempt; `false` if the slot should stop instead
    /// (terminated, or closed with nothing left to run).
    fn pause_before_retry(&self, pause: Duration) -> bool {
        let deadline = wait::deadline(pause);
        let mut q = lock(&self.queue);
        loop {
            match q.state {
                State::Terminated => return false,
                State::Closed if q.pending.is_empty() => return false,
                _ => {}
            }
            q = match wait_on(&self.retry, q, deadline) {
                Ok(q) => q,
                Err(_) => return true,
            };
        }
    }

    /// Whether a slot without a worker should start one.
    fn wants_worker(&self) -> bool {
        let q = lock(&self.queue);
        match q.state {
            State::Running => true,
            State::Closed => !q.pending.is_empty(),
            State::Terminated => false,
        }
    }

    fn set_serving(&self, up: bool) {
        let mut q = lock(&self.queue);
        if up {
            q.serving += 1;
        } else {
            q.serving -= 1;
        }
    }

    fn supervisor_stopped(&self) {
        let mut q = lock(&self.queue);
        q.live_supervisors -= 1;
        if q.live_supervisors == 0 {
            // Nobody is left to run what is queued (possible only when workers cannot start).
            let drained: Vec<Task> = q.pending.drain(..).collect();
            let wakers = std::mem::take(&mut q.stop_wakers);
            self.all_stopped.notify_all();
            drop(q);
            for t in drained {
                t.fail(PoolError::Terminated);
            }
            wakers.into_iter().for_each(std::task::Waker::wake);
        }
    }
}

/// The supervising thread of one worker slot.
///
/// A failed start (the operating system refused, the initializer failed, the worker died
/// before it was ready) never closes the pool: while no slot serves, the tasks queued before
/// the attempt fail with its error, and the slot tries again after a pause that doubles up to
/// [`MAX_START_BACKOFF`]. A worker that dies while idle is noticed within [`IDLE_CHECK`].
fn supervise(shared: Arc<Shared>, slot: usize, first: Box<dyn WorkerLink>) {
    let mut next = Some(first);
    let mut start_failures = 0u32;
    let mut failed: Option<(Task, PoolError)> = None;
    let deliver = |failed: &mut Option<(Task, PoolError)>| {
        if let Some((task, error)) = failed.take() {
            task.fail(error);
        }
    };
    let max_tasks = shared.config.max_tasks_per_child.unwrap_or(usize::MAX);
    // Fails what cannot be served, then pauses; `false` when the slot should stop.
    let after_failure = |error: PoolError, watermark: u64, failures: &mut u32| {
        shared.start_failed(&error, watermark);
        *failures = failures.saturating_add(1);
        let pause = START_BACKOFF
            .saturating_mul(1 << (*failures - 1).min(16))
            .min(MAX_START_BACKOFF);
        shared.pause_before_retry(pause)
    };
    'slot: loop {
        let watermark = shared.id_watermark();
        let mut worker = match next.take() {
            Some(w) => w,
            None => {
                if !shared.wants_worker() {
                    break;
                }
                let started = {
                    let _one_at_a_time = lock(&shared.starting);
                    shared.backend.start(&shared.config.init)
                };
                match started {
                    Ok(w) => w,
                    Err(e) => {
                        // Everything the attempt took is released: no worker is listed.
                        shared.set_control(slot, None);
                        // The lost task's caller hears now, not after a start that may take long.
                        deliver(&mut failed);
                        if after_failure(e, watermark, &mut start_failures) {
                            continue;
                        }
                        break;
                    }
                }
            }
        };
        shared.set_control(slot, Some(worker.control()));
        deliver(&mut failed);
        if shared.is_terminated() {
            worker.control().kill();
            worker.reap();
            break;
        }
        // The worker runs its initializer first.
        let init_error = match worker.recv(None) {
            Ok(Reply::Ready) => None,
            Ok(Reply::InitFailed(e)) => Some(PoolError::Spawn(WorkerStartError::with_source(
                "the initializer failed",
                e,
            ))),
            Ok(_) | Err(_) => Some(PoolError::Spawn(WorkerStartError::new(
                "a worker died before its first task",
            ))),
        };
        if let Some(e) = init_error {
            let exit = worker.reap();
            shared.set_control(slot, None);
            let e = match e {
                PoolError::Spawn(m) if m.source().is_none() => PoolError::Spawn(
                    WorkerStartError::with_source(m.message(), exit.lost_error()),
                ),
                other => other,
            };
            if after_failure(e, watermark, &mut start_failures) {
                continue;
            }
            break;
        }
        start_failures = 0;
        shared.set_serving(true);
        let mut done_by_worker = 0usize;
        loop {
            let batch = match shared.take_batch(max_tasks - done_by_worker, &*worker) {
                Next::Batch(batch) => batch,
                Next::Stop => {
                    shared.set_serving(false);
                    worker.retire();
                    break 'slot;
                }
                Next::Lost => {
                    // Killed while idle: no task is lost; release it and start another (it
                    // stays listed until that attempt ends).
                    shared.set_serving(false);
                    worker.reap();
                    continue 'slot;
                }
            };
            let (kept, done) = run_batch(&shared, worker, batch, &mut failed);
            done_by_worker += done;
            match kept {
                Some(w) if done_by_worker < max_tasks => worker = w,
                Some(w) => {
                    shared.set_serving(false);
                    w.retire();
                    continue 'slot;
                }
                None => {
                    shared.set_serving(false);
                    continue 'slot;
                }
            }
        }
    }
    deliver(&mut failed);
    shared.set_control(slot, None);
    shared.supervisor_stopped();
}

/// Sends `batch` to the worker and delivers each reply in order. Returns the worker if it
/// goes on, and how many tasks it finished.
fn run_batch(
    shared: &Shared,
    mut worker: Box<dyn WorkerLink>,
    batch: Vec<Task>,
    failed: &mut Option<(Task, PoolError)>,
) -> (Option<Box<dyn WorkerLink>>, usize) {
    let refs: Vec<TaskRef<'_>> = batch
        .iter()
        .map(|t| TaskRef {
            id: t.id,
            entry: t.entry,
            input: &t.input,
        })
        .collect();
    let sent = worker.send(&refs);
    drop(refs);
    if sent.is_err() {
        // Lost between tasks: none of these started.
        worker.reap();
        shared.requeue(batch);
        return (None, 0);
    }
    let mut done = 0;
    let timeout = shared.config.task_timeout;
    let mut tasks = batch.into_iter();
    while let Some(task) = tasks.next() {
        // A timeout too large for the clock means no deadline (`Duration::MAX`).
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let failure = match worker.recv(deadline) {
            Ok(Reply::Done {
                id,
                status,
                payload,
            }) if id == task.id => {
                match status {
                    Status::Ok => task.group.complete(task.index, Ok(payload)),
                    other => task
                        .group
                        .complete(task.index, Err(reply_error(other, payload))),
                }
                done += 1;
                continue;
            }
            Ok(Reply::Retire) => None,
            // Anything else breaks the protocol: treat the worker as lost.
            Ok(_) => Some(LinkError::Lost),
            Err(e) => Some(e),
        };
        let Some(failure) = failure else {
            // The worker leaves after its last task (memory limit): nothing of this batch
            // from `task` on has started.
            worker.retire();
            let mut rest = vec![task];
            rest.extend(tasks);
            shared.requeue(rest);
            return (None, done);
        };
        let error = match failure {
            LinkError::Timeout => {
                worker.control().kill();
                worker.reap();
                PoolError::TaskTimeout(timeout.unwrap_or_default())
            }
            LinkError::Lost if worker.began(task.id) == Some(false) => {
                // Lost before it began this task (stopped, or killed between two tasks):
                // nothing of the batch from here on ran, so all of it goes to another worker.
                worker.reap();
                let mut rest = vec![task];
                rest.extend(tasks);
                shared.requeue(rest);
                return (None, done);
            }
            LinkError::Lost => worker.reap().lost_error(),
        };
        let error = if shared.is_terminated() {
            PoolError::Terminated
        } else {
            error
        };
        // Delivered once the slot has its new worker, so that whoever sees the error also
        // sees the pool at its size.
        *failed = Some((task, error));
        shared.requeue(tasks.collect());
        return (None, done);
    }
    (Some(worker), done)
}
