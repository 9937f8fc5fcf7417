//! The pool's core: the queue of pending tasks, the supervising thread of each worker slot,
//! and the close/terminate/join state machine.
//!
//! Invariant: a task is in exactly one place: the pending queue, the in-flight batch of one
//! worker's supervisor, or delivered (its group was told its outcome). A supervisor that loses
//! its worker fails exactly the task that worker was running and puts the tasks it had not
//! started back at the front of the queue.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::backend::{
    threads::reply_error, Backend, LinkError, Reply, TaskRef, WorkerControl, WorkerInit, WorkerLink,
};
use crate::task::{EntryFn, Status};
use crate::PoolError;

/// Most tasks sent to a worker in one message.
const MAX_BATCH: usize = 512;
/// A batch stops growing past this many input bytes.
const MAX_BATCH_BYTES: usize = 1 << 20;
/// Consecutive failed worker starts after which the pool gives up.
const MAX_START_FAILURES: u32 = 5;

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
    pub(crate) config: Config,
    backend: Box<dyn Backend>,
    controls: Mutex<Vec<Option<Arc<dyn WorkerControl>>>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic never happens while these locks are held by pool code; recover regardless.
    m.lock().unwrap_or_else(|e| e.into_inner())
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
            }),
            work: Condvar::new(),
            all_stopped: Condvar::new(),
            config,
            backend,
            controls: Mutex::new(vec![None; n]),
            next_id: AtomicU64::new(1),
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
                    return Err(PoolError::Spawn(format!(
                        "cannot start a supervising thread: {e}"
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
    }

    pub(crate) fn terminate(&self) {
        let drained: Vec<Task> = {
            let mut q = lock(&self.queue);
            if q.state == State::Terminated {
                return;
            }
            q.state = State::Terminated;
            self.work.notify_all();
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

    /// Takes the next batch for a worker that may run `limit` more tasks; `None` when the
    /// supervisor should stop.
    fn take_batch(&self, limit: usize) -> Option<Vec<Task>> {
        let mut q = lock(&self.queue);
        loop {
            match q.state {
                State::Terminated => return None,
                _ if !q.pending.is_empty() => {
                    let share = q.pending.len().div_ceil(self.config.processes.max(1));
                    let want = share.clamp(1, MAX_BATCH).min(limit.max(1));
                    let mut batch = Vec::with_capacity(want);
                    let mut bytes = 0;
                    while batch.len() < want && bytes < MAX_BATCH_BYTES {
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
                        return Some(batch);
                    }
                }
                State::Closed => return None,
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

    /// No worker can be started: fail everything queued and stop taking work.
    fn give_up(&self, error: PoolError) {
        let drained: Vec<Task> = {
            let mut q = lock(&self.queue);
            q.state = State::Terminated;
            self.work.notify_all();
            q.pending.drain(..).collect()
        };
        for t in drained {
            t.fail(error.clone());
        }
        let controls: Vec<_> = lock(&self.controls).iter().flatten().cloned().collect();
        for c in controls {
            c.kill();
        }
    }

    fn supervisor_stopped(&self) {
        let mut q = lock(&self.queue);
        q.live_supervisors -= 1;
        if q.live_supervisors == 0 {
            // Nobody is left to run what is queued (possible only when workers cannot start).
            let drained: Vec<Task> = q.pending.drain(..).collect();
            self.all_stopped.notify_all();
            drop(q);
            for t in drained {
                t.fail(PoolError::Terminated);
            }
        }
    }
}

/// The supervising thread of one worker slot.
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
    'slot: loop {
        let mut worker = match next.take() {
            Some(w) => w,
            None => {
                if shared.is_terminated() {
                    break;
                }
                match shared.backend.start(&shared.config.init) {
                    Ok(w) => w,
                    Err(e) => {
                        start_failures += 1;
                        if start_failures >= MAX_START_FAILURES {
                            shared.give_up(e);
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(50 * u64::from(start_failures)));
                        continue;
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
            Ok(Reply::InitFailed(e)) => {
                Some(PoolError::Spawn(format!("the initializer failed: {e}")))
            }
            Ok(_) | Err(_) => Some(PoolError::Spawn(
                "a worker died before its first task".into(),
            )),
        };
        if let Some(e) = init_error {
            let exit = worker.reap();
            start_failures += 1;
            if start_failures >= MAX_START_FAILURES {
                let e = match e {
                    PoolError::Spawn(m) if m.starts_with("a worker died") => {
                        PoolError::Spawn(format!("{m}: {}", exit.lost_error()))
                    }
                    other => other,
                };
                shared.give_up(e);
                break;
            }
            continue;
        }
        let mut done_by_worker = 0usize;
        loop {
            let Some(batch) = shared.take_batch(max_tasks - done_by_worker) else {
                worker.retire();
                break 'slot;
            };
            start_failures = 0;
            let (kept, done) = run_batch(&shared, worker, batch, &mut failed);
            done_by_worker += done;
            match kept {
                Some(w) if done_by_worker < max_tasks => worker = w,
                Some(w) => {
                    w.retire();
                    continue 'slot;
                }
                None => continue 'slot,
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
        let deadline = timeout.map(|t| Instant::now() + t);
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
