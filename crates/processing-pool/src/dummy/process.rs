//! The process of the thread twin: [`Process`] and [`spawn`].

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::sync::lock;

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
