//! `Process`: a child process with the shape of a thread.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use processing_core::{codec, handles, OwnedOsHandle};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::bootstrap::{self, Closure};
use crate::error::{unsupported, SpawnError, SpawnErrorKind};
use crate::registry::{self, ChildShared};
use crate::sys::{self, Channel, ProcHandle};
use crate::target::{self, BuildId};
use crate::wire::{Config, Frame, Refusal, Report, Setup, StdioMsg, EXIT_BOOTSTRAP_FAILED};
use crate::{get_start_method, ProcessError, StartMethod};

#[cfg(feature = "async")]
#[path = "async_join.rs"]
mod async_join;
#[cfg(feature = "async")]
pub use async_join::JoinAsync;

/// Where a child's standard input, output or error goes.
///
/// ```
/// use processing::{process::Stdio, Process};
/// let mut p = Process::new(|(): ()| println!("not shown"), ()).stdout(Stdio::Null);
/// p.start().unwrap();
/// p.join().unwrap();
/// ```
#[derive(Debug, Default)]
pub enum Stdio {
    /// The parent's own stream (the default).
    #[default]
    Inherit,
    /// The null device.
    Null,
    /// This file (opened for reading for stdin, for writing otherwise).
    File(std::fs::File),
}

impl Stdio {
    /// Redirects to `file`.
    pub fn file(file: std::fs::File) -> Stdio {
        Stdio::File(file)
    }
}

/// A resource whose limit a child sets before it runs its target (Unix `setrlimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resource {
    /// Size of the address space in bytes (`RLIMIT_AS`).
    AddressSpace,
    /// CPU time in seconds (`RLIMIT_CPU`).
    CpuTime,
    /// Number of open file descriptors (`RLIMIT_NOFILE`).
    OpenFiles,
    /// Largest file the process may write, in bytes (`RLIMIT_FSIZE`).
    FileSize,
    /// Largest core dump, in bytes (`RLIMIT_CORE`).
    CoreSize,
    /// Size of the data segment, in bytes (`RLIMIT_DATA`).
    DataSize,
    /// Size of the main thread's stack, in bytes (`RLIMIT_STACK`).
    StackSize,
}

enum Launch {
    Target {
        entry: i64,
        payload: Result<(Vec<u8>, Vec<OwnedOsHandle>), ProcessError>,
    },
    Closure(Closure),
}

#[derive(Debug, Default)]
struct Options {
    daemon: Option<bool>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    stdio: [Stdio; 3],
    limits: Vec<(Resource, u64, u64)>,
    executable: Option<PathBuf>,
    method: Option<StartMethod>,
}

#[derive(Debug)]
struct Started {
    shared: Arc<ChildShared>,
    /// The parent's end of the bootstrap channel until the final report or end of stream.
    chan: Option<Channel>,
    report: Option<Frame>,
    method: StartMethod,
}

/// A child process running a function, with the shape of a `std::thread` handle.
///
/// The target is a `fn` item or a closure that captures nothing (checked at compile time), of
/// type `fn(A) -> R`; `A` and `R` travel with postcard and may contain OS handles
/// (connections, sentinels) which travel beside the bytes. Capturing closures need the fork
/// start method: [`Process::fork`].
///
/// ```
/// use processing::Process;
///
/// fn add(pair: (u32, u32)) -> u32 {
///     pair.0 + pair.1
/// }
///
/// let mut p = Process::new(add, (40, 2)).name("adder");
/// assert!(!p.is_alive() && p.pid().is_none());
/// p.start().unwrap();
/// assert_eq!(p.join().unwrap(), 42);
/// assert_eq!(p.exitcode(), Some(0));
/// ```
///
/// A closure that captures is rejected when the program is compiled:
///
/// ```compile_fail
/// let offset = 1u32;
/// let mut p = processing::Process::new(move |x: u32| x + offset, 41);
/// ```
///
/// Builder settings (by value, before `start`): [`name`](Process::name),
/// [`daemon`](Process::daemon), [`env`](Process::env), [`current_dir`](Process::current_dir),
/// [`stdin`](Process::stdin)/[`stdout`](Process::stdout)/[`stderr`](Process::stderr),
/// [`rlimit`](Process::rlimit), [`executable`](Process::executable),
/// [`start_method`](Process::start_method).
pub struct Process<R = ()> {
    name: String,
    launch: Option<Launch>,
    opts: Options,
    started: Option<Started>,
    joined: bool,
    _value: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.started.as_ref().map(|s| s.shared.proc.pid()))
            .field("started", &self.started.is_some())
            .field("options", &self.opts)
            .finish()
    }
}

/// Starts `target(args)` in a new process with the default start method, like
/// `std::thread::spawn`.
/// `target` must be a fn item or a closure that captures nothing. A capturing closure is
/// refused when the program is built (`cargo build`, `cargo test`), not by `cargo check`, with
/// `error[E0080]: evaluation panicked: a process target must be a fn item or a closure that captures nothing (use Process::fork for capturing closures)`.
///
/// ```
/// let mut child = processing::spawn(|x: u32| x + 1, 41).unwrap();
/// assert_eq!(child.join().unwrap(), 42);
/// ```
///
/// A closure that captures is refused at build time:
///
/// ```compile_fail,E0080
/// let factor = 3u32;
/// let child = processing::process::spawn(move |x: u32| x * factor, 14);
/// ```
pub fn spawn<F, A, R>(target: F, args: A) -> Result<Process<R>, ProcessError>
where
    F: Fn(A) -> R + 'static,
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    let mut p = Process::new(target, args);
    p.start()?;
    Ok(p)
}

impl<R: Serialize + DeserializeOwned> Process<R> {
    /// A process that will run `target(args)` (not started yet).
    /// `target` must be a fn item or a closure that captures nothing. A capturing closure is
    /// refused when the program is built (`cargo build`, `cargo test`), not by `cargo check`, with
    /// `error[E0080]: evaluation panicked: a process target must be a fn item or a closure that captures nothing (use Process::fork for capturing closures)`.
    ///
    /// ```compile_fail,E0080
    /// let factor = 3u32;
    /// let p = processing::process::Process::new(move |x: u32| x * factor, 14);
    /// ```
    pub fn new<F, A>(target: F, args: A) -> Process<R>
    where
        F: Fn(A) -> R + 'static,
        A: Serialize + DeserializeOwned,
    {
        let entry = target::entry_offset::<F, A, R>();
        drop(target);
        let payload = handles::collect(|| codec::encode(&args)).map_err(|e| {
            // Descriptors exhausted while duplicating the arguments' handles: the OS error,
            // typed, rather than the serializer's text.
            match handles::take_os_error() {
                Some(io) => SpawnError::io("cannot pass the arguments' handles", io).into(),
                None => ProcessError::Codec(e),
            }
        });
        Process::with_launch(Launch::Target { entry, payload }, None)
    }

    /// A process that will run the closure `f` in a forked copy of this process (Unix; the
    /// fork start method). The closure may capture anything; its value comes back through
    /// [`join`](Process::join). The child inherits this process's descriptors, as `fork` does.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// let greeting = String::from("hello");
    /// let mut p = processing::Process::fork(move || format!("{greeting} from a child"));
    /// p.start().unwrap();
    /// assert_eq!(p.join().unwrap(), "hello from a child");
    /// # }
    /// ```
    pub fn fork<F>(f: F) -> Process<R>
    where
        F: FnOnce() -> R + Send + 'static,
    {
        let closure: Closure = Box::new(move || {
            let value = f();
            handles::collect(|| codec::encode(&value)).map_err(|e| {
                processing_core::ErrorChain::with_source("cannot encode the return value", &e)
            })
        });
        Process::with_launch(Launch::Closure(closure), Some(StartMethod::Fork))
    }

    fn with_launch(launch: Launch, method: Option<StartMethod>) -> Process<R> {
        Process {
            name: registry::next_name(),
            launch: Some(launch),
            opts: Options {
                method,
                ..Options::default()
            },
            started: None,
            joined: false,
            _value: PhantomData,
        }
    }

    /// Names the process (default `Process-N`); the child sees it in `current_process()`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Makes the process daemonic: it is terminated when this process exits, and it may not
    /// start children. Defaults to this process's own flag.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.opts.daemon = Some(daemon);
        self
    }

    /// Sets an environment variable in the child.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.opts.env.push((key.into(), value.into()));
        self
    }

    /// The child's working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.opts.cwd = Some(dir.into());
        self
    }

    /// Redirects the child's standard input.
    pub fn stdin(mut self, stdio: Stdio) -> Self {
        self.opts.stdio[0] = stdio;
        self
    }

    /// Redirects the child's standard output.
    pub fn stdout(mut self, stdio: Stdio) -> Self {
        self.opts.stdio[1] = stdio;
        self
    }

    /// Redirects the child's standard error.
    pub fn stderr(mut self, stdio: Stdio) -> Self {
        self.opts.stdio[2] = stdio;
        self
    }

    /// Sets a resource limit (soft and hard) in the child before the target runs (Unix).
    pub fn rlimit(mut self, resource: Resource, soft: u64, hard: u64) -> Self {
        self.opts.limits.push((resource, soft, hard));
        self
    }

    /// Runs this program instead of the current executable, like Python's `set_executable`;
    /// implies the spawn start method unless another is set (which is then an error). The program must be the same build of this program; any
    /// other program is detected and reported as an error by `start`.
    pub fn executable(mut self, path: impl Into<PathBuf>) -> Self {
        self.opts.executable = Some(path.into());
        self
    }

    /// The start method (default: [`get_start_method()`](crate::get_start_method)).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.opts.method = Some(method);
        self
    }

    /// Changes the daemon flag of an unstarted process.
    ///
    /// ```
    /// let mut p = processing::Process::new(|(): ()| (), ());
    /// p.set_daemon(true).unwrap();
    /// p.start().unwrap();
    /// assert!(p.set_daemon(false).is_err());
    /// p.join().unwrap();
    /// ```
    pub fn set_daemon(&mut self, daemon: bool) -> Result<(), ProcessError> {
        if self.started.is_some() || self.launch.is_none() {
            return Err(ProcessError::AlreadyStarted);
        }
        self.opts.daemon = Some(daemon);
        Ok(())
    }

    /// The process's name.
    pub fn get_name(&self) -> &str {
        &self.name
    }

    /// Whether the process is (or will be) daemonic.
    pub fn is_daemon(&self) -> bool {
        match &self.started {
            Some(s) => s.shared.daemon,
            None => self
                .opts
                .daemon
                .unwrap_or_else(|| registry::identity().daemon),
        }
    }

    /// Starts the process. Returns once the child's bootstrap has taken over, so that a
    /// child that cannot run the target (another program, a different build) is an error here.
    pub fn start(&mut self) -> Result<(), ProcessError> {
        if self.started.is_some() {
            return Err(ProcessError::AlreadyStarted);
        }
        let Some(launch) = self.launch.take() else {
            return Err(ProcessError::AlreadyStarted);
        };
        let result = self.start_inner(launch);
        if let Err(e) = &result {
            tracing::error!(target: "processing", name = %self.name, error = %e, "cannot start process");
        }
        result
    }

    fn start_inner(&mut self, launch: Launch) -> Result<(), ProcessError> {
        bootstrap::guard_against_recursion()?;
        let me = registry::identity();
        if me.daemon {
            return Err(SpawnError::new(
                SpawnErrorKind::Daemonic,
                "a daemonic process is not allowed to have children",
            )
            .into());
        }
        registry::sweep();
        // One resource tracker per program, whatever comes first (a process or a segment):
        // every child is started knowing its address (R01). Best effort, as segments' own.
        let _ = processing_shm::tracker::ensure();
        let method = match (self.opts.method, &self.opts.executable) {
            (Some(m), _) => m,
            // Another executable is only meaningful for the spawn method.
            (None, Some(_)) => StartMethod::Spawn,
            (None, None) => get_start_method(),
        };
        method.check()?;
        if self.opts.executable.is_some() && method != StartMethod::Spawn {
            return Err(unsupported("executable() needs the spawn start method").into());
        }
        if !self.opts.limits.is_empty() && !sys::limits_supported() {
            return Err(unsupported("resource limits are not supported on this platform").into());
        }
        let daemon = self.opts.daemon.unwrap_or(me.daemon);
        let opts = std::mem::take(&mut self.opts);
        let (entry, args, arg_handles, closure) = match launch {
            Launch::Target { entry, payload } => {
                let (bytes, handles) = payload?;
                (entry, bytes, handles, None)
            }
            Launch::Closure(c) => {
                if method != StartMethod::Fork {
                    return Err(
                        unsupported("a capturing closure needs the fork start method").into(),
                    );
                }
                (0, Vec::new(), Vec::new(), Some(c))
            }
        };
        let config = Config {
            build: BuildId::current(),
            entry,
            args,
            name: self.name.clone(),
            daemon,
            authkey: processing_core::authkey::get().to_vec(),
            parent_pid: std::process::id(),
            parent_name: me.name,
            method,
            setup: Setup {
                limits: opts.limits.clone(),
                die_with_parent: daemon,
                ..Setup::default()
            },
        };
        let (ours, theirs) = sys::channel_pair()
            .map_err(|e| SpawnError::io("cannot create the bootstrap channel", e))?;
        // Whether the child answers `Ready` (always, except a forked child that has nothing
        // to set up and so nothing that could fail before its target runs).
        let mut announced = true;
        let proc = match method {
            StartMethod::Spawn => {
                let proc = sys::spawn_exec(sys::ExecRequest {
                    program: opts.executable,
                    env: opts.env,
                    cwd: opts.cwd,
                    stdio: opts.stdio,
                    child_end: theirs,
                    die_with_parent: daemon,
                })?;
                if let Err(e) = send_launch(&ours, &config, &arg_handles) {
                    // The child waits for its launch frame: end it rather than wait for it.
                    drop(ours);
                    sys::reap_within(&proc, Duration::ZERO);
                    return Err(e.into());
                }
                Some(proc)
            }
            StartMethod::ForkServer => {
                let mut config = config;
                config.setup.env = opts.env;
                // The server's environment was fixed when it started; the tracker's address
                // travels with each launch (the tracker may have been replaced since).
                if let Some((key, value)) = processing_shm::tracker::child_env() {
                    if !config.setup.env.iter().any(|(k, _)| k == key) {
                        config.setup.env.insert(0, (key.to_string(), value));
                    }
                }
                config.setup.cwd = match opts.cwd {
                    Some(dir) => Some(dir),
                    None => std::env::current_dir().ok(),
                };
                config.setup.stdio = stdio_messages(opts.stdio)?;
                // Encoded before the server is asked: a failure here (no descriptor left for
                // the duplicates) launches nothing.
                let launch = encode_launch(&config, &arg_handles)?;
                let request = sys::forkserver_request(theirs)?;
                // A send error means the child already ended; `await_ready` reports why.
                let _ = ours.send_frame(launch.split, &launch.body, &launch.handles);
                // `Ready` is read here: a child that never ran gets the server's error.
                announced = false;
                Some(request.finish(await_ready(&ours, None))?)
            }
            StartMethod::Fork => {
                let mut config = config;
                config.setup.env = opts.env;
                config.setup.cwd = opts.cwd;
                config.setup.stdio = stdio_messages_local(opts.stdio)?;
                announced = !config.setup.is_empty();
                Some(fork_start(
                    ours.raw_for_child(),
                    theirs,
                    config,
                    arg_handles,
                    closure,
                    announced,
                )?)
            }
        };
        let pid = match (&proc, announced) {
            (Some(p), false) => p.pid(),
            _ => await_ready(&ours, proc.as_ref())?,
        };
        let proc = proc.unwrap_or_else(|| ProcHandle::open(pid));
        let shared = Arc::new(ChildShared::new(self.name.clone(), daemon, proc));
        registry::register(shared.clone());
        tracing::info!(target: "processing", name = %self.name, pid, method = %method, daemon, "process started");
        self.started = Some(Started {
            shared,
            chan: Some(ours),
            report: None,
            method,
        });
        Ok(())
    }

    /// Waits for the process to end and returns the target's value.
    ///
    /// Errors: [`ProcessError::Panicked`] (the target panicked; exit code 1),
    /// [`ProcessError::Exited`] (the process called `exit(n)`), [`ProcessError::Signaled`]
    /// (killed by a signal), [`ProcessError::NotStarted`], [`ProcessError::AlreadyJoined`].
    pub fn join(&mut self) -> Result<R, ProcessError> {
        self.join_inner(None)
    }

    /// Like [`join`](Process::join) but gives up after `timeout` with
    /// [`ProcessError::Timeout`] (the process keeps running and can be joined again).
    /// `join_timeout(Duration::ZERO)` only checks.
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, ProcessError> {
        // A timeout too large for the clock means "for ever" (`Duration::MAX`).
        self.join_inner(Instant::now().checked_add(timeout))
    }

    fn join_inner(&mut self, deadline: Option<Instant>) -> Result<R, ProcessError> {
        let Some(st) = self.started.as_mut() else {
            return Err(ProcessError::NotStarted);
        };
        if self.joined {
            return Err(ProcessError::AlreadyJoined);
        }
        let code = loop {
            if let Some(code) = st.shared.poll() {
                // Everything the child wrote is in the socket now; read it without blocking.
                if st.report.is_none() {
                    if let Some(chan) = st.chan.as_ref() {
                        if chan.readable_now() {
                            read_report(st);
                        }
                    }
                }
                break code;
            }
            let remaining =
                processing_core::time_left(deadline).map_err(|_| ProcessError::Timeout)?;
            let chan = if st.report.is_none() {
                st.chan.as_ref()
            } else {
                None
            };
            let event = sys::wait_event(chan, &st.shared.proc, remaining)?;
            if event.channel {
                read_report(st);
            }
        };
        self.joined = true;
        st.chan = None;
        // Reaped: the registry has nothing left to sweep, so its reference (and with it the
        // pidfd) goes now, not at the next start.
        registry::forget(&st.shared);
        let report = st.report.take();
        interpret(report, code)
    }

    /// Whether the process has started and not yet ended.
    pub fn is_alive(&self) -> bool {
        self.started
            .as_ref()
            .is_some_and(|s| s.shared.poll().is_none())
    }

    /// The process id, once started.
    pub fn pid(&self) -> Option<u32> {
        self.started.as_ref().map(|s| s.shared.proc.pid())
    }

    /// The exit code once the process ended: 0 after a normal return, 1 after a panic, `n`
    /// after `exit(n)`, minus the signal number if a signal ended it (Unix). `None` while
    /// running or before start.
    pub fn exitcode(&self) -> Option<i32> {
        self.started.as_ref().and_then(|s| s.shared.poll())
    }

    /// Asks the process to end: SIGTERM on Unix (exit code `-15`), `TerminateProcess` on
    /// Windows. Does nothing if it already ended.
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.signal(sys::TERMINATE)
    }

    /// Ends the process at once: SIGKILL on Unix (exit code `-9`), `TerminateProcess` on
    /// Windows.
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.signal(sys::KILL)
    }

    /// A handle that ends this process from any thread (a pool's supervisor, a watchdog),
    /// with the same guarantee as [`Process::kill`]: it never signals a reused pid, and does
    /// nothing once the process ended. `None` before [`Process::start`].
    ///
    /// ```
    /// use processing::Process;
    ///
    /// fn sleep_long(_: ()) {
    ///     std::thread::sleep(std::time::Duration::from_secs(60));
    /// }
    ///
    /// let mut child: Process<()> = Process::new(sleep_long, ());
    /// child.start().unwrap();
    /// let killer = child.kill_handle().unwrap();
    /// std::thread::spawn(move || killer.kill()).join().unwrap().unwrap();
    /// assert!(child.join().unwrap_err().is_signaled());
    /// assert!(killer_is_idempotent(&child));
    /// # fn killer_is_idempotent(child: &Process<()>) -> bool {
    /// #     child.kill_handle().unwrap().kill().is_ok()
    /// # }
    /// ```
    pub fn kill_handle(&self) -> Option<KillHandle> {
        let st = self.started.as_ref()?;
        Some(KillHandle {
            shared: st.shared.clone(),
        })
    }

    fn signal(&self, signal: i32) -> Result<(), ProcessError> {
        let st = self.started.as_ref().ok_or(ProcessError::NotStarted)?;
        tracing::debug!(target: "processing", pid = st.shared.proc.pid(), signal, "signalling process");
        st.shared.signal(signal).map_err(ProcessError::Io)
    }

    /// A waitable object that becomes ready when the process ends (Linux: a pidfd; Windows:
    /// the process handle; elsewhere the bootstrap channel, ready at the final report).
    pub fn sentinel(&self) -> Option<processing_core::handles::BorrowedOsHandle<'_>> {
        let st = self.started.as_ref()?;
        st.shared
            .proc
            .sentinel()
            .or_else(|| st.chan.as_ref().map(|c| c.as_os_handle()))
    }

    /// The start method the process was started with.
    pub fn method(&self) -> Option<StartMethod> {
        self.started.as_ref().map(|s| s.method)
    }
}

impl<R> Drop for Process<R> {
    fn drop(&mut self) {
        if let Some(st) = &self.started {
            if st.shared.poll().is_some() {
                // Ended and reaped: nothing for a sweep to do; its descriptors go now.
                registry::forget(&st.shared);
            } else {
                // A child still running is reaped by a later sweep.
                st.shared
                    .dropped
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

fn read_report(st: &mut Started) {
    let Some(chan) = st.chan.as_ref() else { return };
    match chan.recv_frame() {
        Ok(Some(frame)) => st.report = Some(frame),
        Ok(None) | Err(_) => st.chan = None,
    }
}

fn interpret<R: DeserializeOwned>(report: Option<Frame>, code: i32) -> Result<R, ProcessError> {
    if let Some(frame) = report {
        let report: Report = codec::decode(frame.body()).map_err(ProcessError::Codec)?;
        let fds = frame.handles;
        return match report {
            Report::Returned(bytes) => {
                handles::provide(fds, || codec::decode(&bytes)).map_err(ProcessError::Codec)
            }
            Report::Panicked { message, location } => {
                Err(ProcessError::Panicked { message, location })
            }
            Report::Failed(chain) => Err(ProcessError::ChildCodec(chain)),
            Report::Ready { .. } | Report::Refused { .. } => Err(ProcessError::ChildCodec(
                "unexpected report from the child".into(),
            )),
        };
    }
    if code == 0 {
        // A child that ended with 0 without returning: only a type with an empty encoding
        // (`()`) can stand for "nothing".
        return codec::decode(&[]).map_err(|_| ProcessError::Exited(0));
    }
    if code < 0 && cfg!(unix) {
        return Err(ProcessError::Signaled(-code));
    }
    Err(ProcessError::Exited(code))
}

/// Sends the launch frame. An error means no frame went out (descriptors exhausted while
/// duplicating the handles, an unencodable configuration): the child waits for a frame that
/// will never come, so the caller must not wait for its `Ready`. A send error means the child
/// already ended; `await_ready` reports why.
fn send_launch(
    chan: &Channel,
    config: &Config,
    arg_handles: &[OwnedOsHandle],
) -> Result<(), SpawnError> {
    let launch = encode_launch(config, arg_handles)?;
    let _ = chan.send_frame(launch.split, &launch.body, &launch.handles);
    Ok(())
}

/// A launch frame ready to send: the arguments' descriptors, then the config's.
struct LaunchFrame {
    split: u32,
    body: Vec<u8>,
    handles: Vec<OwnedOsHandle>,
}

/// Encodes the launch frame, duplicating the arguments' handles (the caller keeps its own).
/// Fails with the OS error when no descriptor is left for a duplicate.
fn encode_launch(
    config: &Config,
    arg_handles: &[OwnedOsHandle],
) -> Result<LaunchFrame, SpawnError> {
    let (body, config_handles) = handles::collect(|| codec::encode(config)).map_err(|e| {
        let detail = format!("cannot encode the launch message: {e}");
        match handles::take_os_error() {
            Some(os) => SpawnError::io(detail, os),
            None => SpawnError::new(SpawnErrorKind::Io, detail),
        }
    })?;
    let mut all: Vec<OwnedOsHandle> = Vec::with_capacity(arg_handles.len() + config_handles.len());
    for h in arg_handles {
        all.push(
            h.try_clone()
                .map_err(|e| SpawnError::io("cannot pass an argument's handle", e))?,
        );
    }
    let split = all.len() as u32;
    all.extend(config_handles);
    Ok(LaunchFrame {
        split,
        body,
        handles: all,
    })
}

/// Waits for the child's `Ready` (its pid); anything else is why it cannot run.
fn await_ready(chan: &Channel, proc: Option<&ProcHandle>) -> Result<u32, SpawnError> {
    let frame = chan.recv_frame();
    let report = match frame {
        Ok(Some(frame)) => codec::decode::<Report>(frame.body()).ok(),
        _ => None,
    };
    match report {
        Some(Report::Ready { pid }) => Ok(pid),
        Some(Report::Refused { why, detail }) => {
            if let Some(p) = proc {
                sys::reap_within(p, Duration::from_secs(5));
            }
            let kind = match why {
                Refusal::DifferentBinary => SpawnErrorKind::DifferentBinary,
                Refusal::Setup => SpawnErrorKind::Setup,
                Refusal::Config | Refusal::Fork => SpawnErrorKind::Io,
            };
            Err(SpawnError::from_child(kind, detail))
        }
        _ => {
            let code = proc.and_then(|p| sys::reap_within(p, Duration::from_secs(5)));
            let code = code.map_or("unknown".to_string(), |c| c.to_string());
            let detail = if code == EXIT_BOOTSTRAP_FAILED.to_string() {
                format!("child could not run the processing bootstrap (exit code {code})")
            } else {
                format!(
                    "child did not run the processing bootstrap (exit code {code}): the program does not link processing, \
                     or its pre-main hook is disabled and it does not call processing::init()"
                )
            };
            Err(SpawnError::new(SpawnErrorKind::NoBootstrap, detail))
        }
    }
}

/// Redirections for a fork-server child: the server has none of ours, so "inherit" sends ours.
fn stdio_messages(stdio: [Stdio; 3]) -> Result<[StdioMsg; 3], SpawnError> {
    let mut out: [StdioMsg; 3] = Default::default();
    for (i, s) in stdio.into_iter().enumerate() {
        out[i] = match s {
            Stdio::Inherit => match sys::dup_stdio(i as i32) {
                Ok(h) => StdioMsg::Handle(processing_core::TransferableHandle::new(h)),
                // Our descriptor `i` is closed: the child keeps the server's (the null device).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => StdioMsg::Keep,
                Err(e) => {
                    return Err(SpawnError::io(
                        format!("cannot pass standard descriptor {i} to the child"),
                        e,
                    ))
                }
            },
            other => stdio_local(other, i)?,
        };
    }
    Ok(out)
}

/// Redirections for a forked child (which already has ours).
fn stdio_messages_local(stdio: [Stdio; 3]) -> Result<[StdioMsg; 3], SpawnError> {
    let mut out: [StdioMsg; 3] = Default::default();
    for (i, s) in stdio.into_iter().enumerate() {
        out[i] = stdio_local(s, i)?;
    }
    Ok(out)
}

fn stdio_local(s: Stdio, index: usize) -> Result<StdioMsg, SpawnError> {
    Ok(match s {
        Stdio::Inherit => StdioMsg::Keep,
        Stdio::Null => {
            let f = std::fs::OpenOptions::new()
                .read(index == 0)
                .write(index != 0)
                .open(sys::NULL_DEVICE)
                .map_err(|e| SpawnError::io("cannot open the null device", e))?;
            StdioMsg::Handle(processing_core::TransferableHandle::new(f.into()))
        }
        Stdio::File(f) => StdioMsg::Handle(processing_core::TransferableHandle::new(f.into())),
    })
}

/// The fork start method: forks this process; the child runs the bootstrap from memory.
fn fork_start(
    parent_end_raw: i64,
    child_end: Channel,
    config: Config,
    arg_handles: Vec<OwnedOsHandle>,
    closure: Option<Closure>,
    announce: bool,
) -> Result<ProcHandle, SpawnError> {
    sys::fork_supported()?;
    let guard = registry::fork_guard();
    // SAFETY: this crate's locks are held across the fork (the guard), and the child only
    // runs the bootstrap, which applies its settings and runs the target before `_exit`.
    match unsafe { sys::fork_raw() } {
        Err(e) => Err(SpawnError::io("cannot fork", e)),
        Ok(None) => {
            registry::after_fork_in_child(guard);
            sys::close_raw(parent_end_raw);
            let close_others = closure.is_none();
            bootstrap::run_configured(
                child_end,
                config,
                arg_handles,
                closure,
                close_others,
                announce,
            )
        }
        Ok(Some(pid)) => {
            drop(guard);
            drop(child_end);
            drop(closure);
            Ok(ProcHandle::open(pid))
        }
    }
}

/// Ends a started process from any thread: see [`Process::kill_handle`]. Cloning it is cheap;
/// it keeps no descriptor of its own.
#[derive(Debug, Clone)]
pub struct KillHandle {
    shared: Arc<ChildShared>,
}

impl KillHandle {
    /// Ends the process at once, as [`Process::kill`]; nothing if it already ended.
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.shared.signal(sys::KILL).map_err(ProcessError::Io)
    }

    /// Asks the process to end, as [`Process::terminate`]; nothing if it already ended.
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.shared.signal(sys::TERMINATE).map_err(ProcessError::Io)
    }

    /// The process's pid (it may name another process once this one ended and was reaped).
    pub fn pid(&self) -> u32 {
        self.shared.proc.pid()
    }
}
