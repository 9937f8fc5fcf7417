//! The process of the thread twin: [`Process`] and [`spawn`].
//!
//! The twin has every method of `processing_process::Process` that a thread can give a
//! meaning to, with the same signatures and the same error type, [`ProcessError`] (re-exported
//! here). What a thread cannot do is an error, never a silent no-op that would leave a wrong
//! value behind: a setting that only a new process can have (its own environment, working
//! directory, standard streams, resource limits, program) fails at [`Process::start`] with
//! [`ProcessError::Spawn`] whose [`is_unsupported`](processing_process::SpawnError::is_unsupported)
//! is true — the error a process's `start` gives for an option its platform lacks — and
//! [`Process::terminate`]/[`Process::kill`] of a running thread fail with
//! [`ProcessError::Unsupported`] (a thread cannot be stopped from outside).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use processing_process::ProcessError;
use processing_process::{Resource, SpawnError, StartMethod, Stdio};

use crate::wait::{lock, wait_on};

type Outcome<R> = Result<R, crate::task::PanicReport>;

struct Finished<R> {
    outcome: Mutex<Option<Outcome<R>>>,
    done: Condvar,
    /// The task of a pending [`JoinAsync`], woken once the outcome is stored.
    #[cfg(feature = "async")]
    waker: Mutex<Option<std::task::Waker>>,
}

/// The numbers of the default names `Process-N` of the twin's threads (numbered apart from
/// the processes this process starts).
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A thread with the API of the process-backed `processing::Process`: the same constructor
/// `new(target, args)`, builder settings, `start`, `join` (the target's return value),
/// `join_timeout`, `terminate`, `kill`, `is_alive`, `exitcode`, `pid`, and the same
/// [`ProcessError`], so that changing `use processing::Process` to
/// `use processing::dummy::Process` changes nothing else in a program.
///
/// ```
/// use processing::dummy::Process;
///
/// fn double(x: u32) -> u32 {
///     x * 2
/// }
///
/// let mut p = Process::new(double, 21).name("doubler");
/// assert!(!p.is_alive() && p.pid().is_none());
/// p.start().unwrap();
/// assert_eq!(p.join().unwrap(), 42);
/// assert_eq!(p.exitcode(), Some(0));
/// assert_eq!(p.get_name(), "doubler");
/// ```
///
/// What each setting means for a thread:
///
/// | setting | on a thread |
/// |---|---|
/// | [`name`](Process::name) | the thread's name too (default `Process-N`) |
/// | [`daemon`](Process::daemon), [`set_daemon`](Process::set_daemon) | recorded ([`is_daemon`](Process::is_daemon)); a thread never keeps the program alive, daemonic or not |
/// | [`start_method`](Process::start_method) | ignored: no process is created, by any method |
/// | [`stdin`](Process::stdin)/[`stdout`](Process::stdout)/[`stderr`](Process::stderr) | [`Stdio::Inherit`] is what a thread has; any other is an error at `start` |
/// | [`env`](Process::env), [`current_dir`](Process::current_dir) | an error at `start`: a thread shares the program's environment and directory |
/// | [`rlimit`](Process::rlimit) | an error at `start`: limits apply to a whole process |
/// | [`executable`](Process::executable) | an error at `start`: a thread runs in this program |
///
/// The target runs on a new thread of this process: `current_process()` inside it is this
/// process, a `std::process::exit` in it ends the whole program, and its statics are this
/// process's.
pub struct Process<R = ()> {
    name: String,
    body: Option<Box<dyn FnOnce() -> R + Send>>,
    daemon: Option<bool>,
    /// The first setting a thread cannot honour: `start` reports it.
    refused: Option<&'static str>,
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
            .field("started", &self.handle.is_some())
            .field("exitcode", &self.exitcode)
            .finish_non_exhaustive()
    }
}

/// Starts `target(args)` on a thread: the twin of `processing::spawn`.
///
/// ```
/// fn one(_: ()) -> u8 {
///     1
/// }
/// assert_eq!(processing::dummy::spawn(one, ()).unwrap().join().unwrap(), 1);
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

impl<R: Send + 'static> Process<R> {
    /// A thread that will run `target(args)` (not started yet). `target` is a fn item or a
    /// closure that captures nothing, as for processes (checked at compile time), so that the
    /// same code compiles against both.
    pub fn new<F, A>(target: F, args: A) -> Process<R>
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
        Process::with_body(Box::new(move || target(args)))
    }

    /// A thread that will run the closure `f`, which may capture anything: the twin of
    /// `processing::Process::fork` (which needs the fork start method; a thread needs nothing).
    ///
    /// ```
    /// let greeting = String::from("hello");
    /// let mut p = processing::dummy::Process::fork(move || format!("{greeting} from a thread"));
    /// p.start().unwrap();
    /// assert_eq!(p.join().unwrap(), "hello from a thread");
    /// ```
    pub fn fork<F>(f: F) -> Process<R>
    where
        F: FnOnce() -> R + Send + 'static,
    {
        Process::with_body(Box::new(f))
    }

    fn with_body(body: Box<dyn FnOnce() -> R + Send>) -> Process<R> {
        Process {
            name: format!("Process-{}", COUNTER.fetch_add(1, Ordering::Relaxed) + 1),
            body: Some(body),
            daemon: None,
            refused: None,
            handle: None,
            finished: Arc::new(Finished {
                outcome: Mutex::new(None),
                done: Condvar::new(),
                #[cfg(feature = "async")]
                waker: Mutex::new(None),
            }),
            joined: false,
            exitcode: None,
        }
    }

    fn refuse(mut self, why: &'static str) -> Self {
        self.refused.get_or_insert(why);
        self
    }

    /// Names the process and its thread (default `Process-N`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Records the daemon flag ([`is_daemon`](Process::is_daemon)). A thread, daemonic or not,
    /// does not keep the program alive once `main` returns; defaults to this process's flag.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }

    /// Refused: a thread shares the program's environment (setting a variable would change it
    /// for every thread). [`start`](Process::start) fails with an unsupported
    /// [`SpawnError`].
    ///
    /// ```
    /// let mut p = processing::dummy::Process::new(|(): ()| (), ()).env("K", "V");
    /// assert!(p.start().unwrap_err().spawn_error().is_some_and(|e| e.is_unsupported()));
    /// ```
    pub fn env(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let _ = (key.into(), value.into());
        self.refuse("env(): a thread shares its program's environment; only a process has its own")
    }

    /// Refused: a thread shares the program's working directory. [`start`](Process::start)
    /// fails with an unsupported [`SpawnError`].
    pub fn current_dir(self, dir: impl Into<std::path::PathBuf>) -> Self {
        let _ = dir.into();
        self.refuse(
            "current_dir(): a thread shares its program's working directory; only a process has its own",
        )
    }

    /// [`Stdio::Inherit`] (what a thread has) is accepted; any other redirection is refused
    /// (a thread shares the program's standard streams): [`start`](Process::start) fails.
    pub fn stdin(self, stdio: Stdio) -> Self {
        self.stdio(
            stdio,
            "stdin(): a thread shares its program's standard input",
        )
    }

    /// As [`stdin`](Process::stdin), for standard output.
    pub fn stdout(self, stdio: Stdio) -> Self {
        self.stdio(
            stdio,
            "stdout(): a thread shares its program's standard output",
        )
    }

    /// As [`stdin`](Process::stdin), for standard error.
    pub fn stderr(self, stdio: Stdio) -> Self {
        self.stdio(
            stdio,
            "stderr(): a thread shares its program's standard error",
        )
    }

    fn stdio(self, stdio: Stdio, why: &'static str) -> Self {
        match stdio {
            Stdio::Inherit => self,
            _ => self.refuse(why),
        }
    }

    /// Refused: resource limits apply to a whole process. [`start`](Process::start) fails with
    /// an unsupported [`SpawnError`], as a process's does where limits are not supported.
    pub fn rlimit(self, resource: Resource, soft: u64, hard: u64) -> Self {
        let _ = (resource, soft, hard);
        self.refuse("rlimit(): resource limits apply to a whole process, not to a thread")
    }

    /// Refused: a thread runs in this program. [`start`](Process::start) fails with an
    /// unsupported [`SpawnError`].
    pub fn executable(self, path: impl Into<std::path::PathBuf>) -> Self {
        let _ = path.into();
        self.refuse("executable(): a thread runs in this program, not in another one")
    }

    /// Accepted and ignored: a thread is not a process created by any start method, and the
    /// target runs the same under each.
    pub fn start_method(self, method: StartMethod) -> Self {
        let _ = method;
        self
    }

    /// Changes the daemon flag of an unstarted process ([`ProcessError::AlreadyStarted`]
    /// once started).
    ///
    /// ```
    /// let mut p = processing::dummy::Process::new(|(): ()| (), ());
    /// p.set_daemon(true).unwrap();
    /// p.start().unwrap();
    /// assert!(p.set_daemon(false).is_err());
    /// p.join().unwrap();
    /// ```
    pub fn set_daemon(&mut self, daemon: bool) -> Result<(), ProcessError> {
        if self.body.is_none() {
            return Err(ProcessError::AlreadyStarted);
        }
        self.daemon = Some(daemon);
        Ok(())
    }

    /// The process's name.
    pub fn get_name(&self) -> &str {
        &self.name
    }

    /// Whether the process is (or will be) daemonic.
    pub fn is_daemon(&self) -> bool {
        self.daemon
            .unwrap_or_else(|| processing_process::current_process().daemon())
    }

    /// Starts the thread. Errors: [`ProcessError::AlreadyStarted`]; [`ProcessError::Spawn`]
    /// for a setting a thread cannot honour (`is_unsupported`) or a thread the operating
    /// system refused (`is_io`, its error as the source). A failed start uses the process up,
    /// as a process's does.
    pub fn start(&mut self) -> Result<(), ProcessError> {
        let body = self.body.take().ok_or(ProcessError::AlreadyStarted)?;
        if let Some(why) = self.refused {
            return Err(SpawnError::unsupported_setting(why).into());
        }
        self.daemon = Some(self.is_daemon());
        let finished = self.finished.clone();
        crate::task::install_panic_hook();
        let mut builder = std::thread::Builder::new();
        // A name with a NUL byte cannot name an OS thread (std would panic): the thread keeps
        // no name, the process keeps its own.
        if !self.name.contains('\0') {
            builder = builder.name(self.name.clone());
        }
        let handle = builder
            .spawn(move || {
                let outcome = crate::task::catch_task(body);
                *lock(&finished.outcome) = Some(outcome);
                finished.done.notify_all();
                // After the outcome: a poll that registered its waker before it looked either
                // saw the outcome or is woken here.
                #[cfg(feature = "async")]
                if let Some(w) = lock(&finished.waker).take() {
                    w.wake();
                }
            })
            .map_err(|e| SpawnError::from_os("cannot start the thread", e))?;
        self.handle = Some(handle);
        Ok(())
    }

    fn started(&self) -> bool {
        self.handle.is_some() || self.joined
    }

    fn ended(&self) -> bool {
        self.joined || lock(&self.finished.outcome).is_some()
    }

    /// Whether the thread has started and its target has not yet returned.
    pub fn is_alive(&self) -> bool {
        self.started() && !self.ended()
    }

    /// This process's id once started (the thread runs in it).
    pub fn pid(&self) -> Option<u32> {
        self.started().then(std::process::id)
    }

    /// The exit code once the target ended: 0 after a normal return, 1 after a panic (as for
    /// a process); `None` while running or before start.
    pub fn exitcode(&self) -> Option<i32> {
        if self.exitcode.is_some() {
            return self.exitcode;
        }
        lock(&self.finished.outcome)
            .as_ref()
            .map(|o| if o.is_ok() { 0 } else { 1 })
    }

    /// Waits for the thread and returns the target's value.
    ///
    /// Errors: [`ProcessError::Panicked`] (the target panicked; exit code 1, as for a
    /// process), [`ProcessError::NotStarted`], [`ProcessError::AlreadyJoined`].
    pub fn join(&mut self) -> Result<R, ProcessError> {
        self.join_until(None)
    }

    /// Like [`join`](Process::join) but gives up after `timeout` with
    /// [`ProcessError::Timeout`] (the thread keeps running and can be joined again).
    /// `Duration::ZERO` only checks; `Duration::MAX` waits for ever.
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, ProcessError> {
        self.join_until(Instant::now().checked_add(timeout))
    }

    fn join_until(&mut self, deadline: Option<Instant>) -> Result<R, ProcessError> {
        if self.joined {
            return Err(ProcessError::AlreadyJoined);
        }
        if self.handle.is_none() {
            return Err(ProcessError::NotStarted);
        }
        let outcome = {
            let mut o = lock(&self.finished.outcome);
            loop {
                if let Some(outcome) = o.take() {
                    break outcome;
                }
                o = wait_on(&self.finished.done, o, deadline).map_err(|_| ProcessError::Timeout)?;
            }
        };
        if let Some(h) = self.handle.take() {
            // The outcome is stored as the thread's last act: this returns at once, and the
            // thread's own panic (none: the target's is caught) cannot happen.
            let _ = h.join();
        }
        self.joined = true;
        self.exitcode = Some(if outcome.is_ok() { 0 } else { 1 });
        outcome.map_err(|r| ProcessError::Panicked {
            message: r.message,
            location: r.location,
        })
    }

    /// A thread cannot be stopped from outside: while it runs this fails with
    /// [`ProcessError::Unsupported`] and the thread goes on (join it, or make its target
    /// return: a message it waits for, a flag it checks). Once the target returned it does
    /// nothing and succeeds, as for a process that already ended;
    /// [`ProcessError::NotStarted`] before [`start`](Process::start).
    ///
    /// ```
    /// use std::sync::mpsc::{channel, Receiver};
    ///
    /// fn wait_for_one(rx: Receiver<u8>) -> u8 {
    ///     rx.recv().unwrap()
    /// }
    /// let (tx, rx) = channel();
    /// let mut p = processing::dummy::Process::new(wait_for_one, rx);
    /// p.start().unwrap();
    /// assert!(p.terminate().unwrap_err().is_unsupported());
    /// tx.send(7).unwrap();
    /// assert_eq!(p.join().unwrap(), 7);
    /// assert!(p.terminate().is_ok());
    /// ```
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.stop("terminate()")
    }

    /// As [`terminate`](Process::terminate): a running thread cannot be killed
    /// ([`ProcessError::Unsupported`]); nothing to do once it ended.
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.stop("kill()")
    }

    fn stop(&self, what: &str) -> Result<(), ProcessError> {
        if !self.started() {
            return Err(ProcessError::NotStarted);
        }
        if self.ended() {
            return Ok(());
        }
        Err(ProcessError::Unsupported(format!(
            "{what}: a thread cannot be stopped from outside; it runs until its target returns"
        )))
    }
}

#[cfg(feature = "async")]
impl<R: Send + 'static> Process<R> {
    /// Awaits the end of the thread and returns the target's value, like
    /// [`join`](Process::join), without blocking a thread (feature `async`; any executor): the
    /// twin of `processing::Process::join_async`. Dropping the future leaves the thread
    /// joinable. Errors are those of [`join`](Process::join).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut child = processing::dummy::spawn(|x: u32| x * 2, 21)?;
    /// let v = processing::core::aio::block_on(child.join_async())?;
    /// assert_eq!(v, 42);
    /// # Ok(()) }
    /// ```
    pub fn join_async(&mut self) -> JoinAsync<'_, R> {
        JoinAsync { process: self }
    }
}

/// The future of [`Process::join_async`].
#[cfg(feature = "async")]
#[must_use = "futures do nothing unless awaited"]
pub struct JoinAsync<'a, R> {
    process: &'a mut Process<R>,
}

#[cfg(feature = "async")]
impl<R> std::fmt::Debug for JoinAsync<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinAsync")
            .field("process", &self.process)
            .finish()
    }
}

#[cfg(feature = "async")]
impl<R: Send + 'static> std::future::Future for JoinAsync<'_, R> {
    type Output = Result<R, ProcessError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let p = &mut *self.get_mut().process;
        if p.handle.is_some() {
            // Registered before looking: see the thread's side in `start`.
            *lock(&p.finished.waker) = Some(cx.waker().clone());
        }
        match p.join_timeout(Duration::ZERO) {
            Err(ProcessError::Timeout) => std::task::Poll::Pending,
            done => std::task::Poll::Ready(done),
        }
    }
}
