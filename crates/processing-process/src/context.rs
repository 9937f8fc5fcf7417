//! Start methods and contexts.

use std::sync::atomic::{AtomicU8, Ordering};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{unsupported, SpawnError};
use crate::{Process, ProcessError};

/// How a child process is created.
///
/// | method | platforms | how |
/// |---|---|---|
/// | `Spawn` | all (default on Windows) | the program is executed again; the target travels as an offset |
/// | `Fork` | Unix | `fork()` of the calling process; also runs capturing closures ([`Process::fork`]) |
/// | `ForkServer` | Linux (default there) | a single-threaded server, started by re-exec, forks children on request |
///
/// ```
/// use processing::StartMethod;
/// assert!(StartMethod::available().contains(&StartMethod::Spawn));
/// assert!(StartMethod::available().contains(&processing::get_start_method()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StartMethod {
    /// Re-execute the program.
    Spawn,
    /// Fork the calling process (Unix only). As with Python's `fork`, the child has only the
    /// forking thread: a lock that another thread held at that moment (a `Mutex` of the
    /// program's, stdout, the allocator's in some libraries) stays held in the child for ever,
    /// so a program with other threads should start with `ForkServer` or `Spawn`.
    Fork,
    /// Ask this process's fork server (Linux only).
    ForkServer,
}

impl StartMethod {
    /// The methods this platform offers, the default first.
    pub fn available() -> &'static [StartMethod] {
        crate::sys::available_methods()
    }

    /// The method's name as Python spells it: `spawn`, `fork`, `forkserver`.
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Spawn => "spawn",
            StartMethod::Fork => "fork",
            StartMethod::ForkServer => "forkserver",
        }
    }

    pub(crate) fn check(self) -> Result<(), SpawnError> {
        if StartMethod::available().contains(&self) {
            Ok(())
        } else {
            Err(unsupported(format!(
                "the {} start method is not available on this platform",
                self.name()
            )))
        }
    }

    fn code(self) -> u8 {
        match self {
            StartMethod::Spawn => 1,
            StartMethod::Fork => 2,
            StartMethod::ForkServer => 3,
        }
    }

    fn from_code(code: u8) -> Option<StartMethod> {
        match code {
            1 => Some(StartMethod::Spawn),
            2 => Some(StartMethod::Fork),
            3 => Some(StartMethod::ForkServer),
            _ => None,
        }
    }
}

impl std::fmt::Display for StartMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

static DEFAULT: AtomicU8 = AtomicU8::new(0);

/// Sets the start method that [`Process::new`] uses when none is given (for this process).
///
/// ```
/// use processing::{set_start_method, get_start_method, StartMethod};
/// set_start_method(StartMethod::Spawn).unwrap();
/// assert_eq!(get_start_method(), StartMethod::Spawn);
/// ```
pub fn set_start_method(method: StartMethod) -> Result<(), SpawnError> {
    method.check()?;
    DEFAULT.store(method.code(), Ordering::Relaxed);
    Ok(())
}

/// The start method used when none is given: the one set with [`set_start_method`], else
/// forkserver on Linux and spawn elsewhere.
///
/// ```
/// let m = processing::get_start_method();
/// assert!(processing::StartMethod::available().contains(&m));
/// ```
pub fn get_start_method() -> StartMethod {
    StartMethod::from_code(DEFAULT.load(Ordering::Relaxed))
        .unwrap_or_else(crate::sys::default_start_method)
}

/// A context whose processes use one start method (Python's `get_context`).
///
/// ```
/// use processing::{get_context, StartMethod};
/// let ctx = get_context(StartMethod::Spawn).unwrap();
/// let mut p = ctx.process(|x: u32| x * 2, 21);
/// p.start().unwrap();
/// assert_eq!(p.join().unwrap(), 42);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    method: StartMethod,
}

/// A context for `method` (an error if the platform lacks it).
pub fn get_context(method: StartMethod) -> Result<Context, SpawnError> {
    method.check()?;
    Ok(Context { method })
}

impl Context {
    /// The context's start method.
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// A new, unstarted process of this context (see [`Process::new`]).
    /// `target` must be a fn item or a closure that captures nothing. A capturing closure is
    /// refused when the program is built (`cargo build`, `cargo test`), not by `cargo check`, with
    /// `error[E0080]: evaluation panicked: a process target must be a fn item or a closure that captures nothing (use Process::fork for capturing closures)`.
    pub fn process<F, A, R>(&self, target: F, args: A) -> Process<R>
    where
        F: Fn(A) -> R + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        Process::new(target, args).start_method(self.method)
    }

    /// Starts `target(args)` with this context's method (see [`crate::spawn`]).
    /// `target` must be a fn item or a closure that captures nothing. A capturing closure is
    /// refused when the program is built (`cargo build`, `cargo test`), not by `cargo check`, with
    /// `error[E0080]: evaluation panicked: a process target must be a fn item or a closure that captures nothing (use Process::fork for capturing closures)`.
    pub fn spawn<F, A, R>(&self, target: F, args: A) -> Result<Process<R>, ProcessError>
    where
        F: Fn(A) -> R + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let mut p = self.process(target, args);
        p.start()?;
        Ok(p)
    }
}
