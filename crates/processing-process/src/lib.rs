//! Processes with a thread-shaped API.
//!
//! Layer: `core → shm → sync → transport → **process** → {manager, pool} → processing`.
//! It holds [`Process`], the spawn, fork and forkserver start methods, the child bootstrap
//! (a pre-main hook, so binaries, test binaries, examples and benches need no code of their
//! own), and the facts about the current, parent and child processes. It never depends on
//! manager, pool or the facade.
//!
//! ```
//! use processing::{spawn, current_process, Process, StartMethod};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let mut child = spawn(square, 7).unwrap();
//! assert_eq!(child.join().unwrap(), 49);
//!
//! let mut p = Process::new(|(): ()| processing::current_process().name().to_string(), ())
//!     .name("worker")
//!     .start_method(StartMethod::Spawn);
//! p.start().unwrap();
//! assert_eq!(p.join().unwrap(), "worker");
//! assert_eq!(current_process().name(), "MainProcess");
//! ```
//!
//! Map: [`Process`] (builder, `start`, `join`, `terminate`...), [`spawn`], [`StartMethod`],
//! [`set_start_method`], [`get_context`]/[`Context`], [`current_process`],
//! [`parent_process`], [`active_children`], [`cpu_count`], [`init`], [`log_to_stderr`],
//! errors [`ProcessError`] and [`SpawnError`].

#![doc(html_root_url = "https://docs.rs/processing-process/0.1.0")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bootstrap;
mod context;
mod error;
mod info;
mod log;
mod process;
mod registry;
mod sys;
mod target;
mod wire;

pub use bootstrap::init;
pub use context::{get_context, get_start_method, set_start_method, Context, StartMethod};
pub use error::{ProcessError, SpawnError};
pub use info::{
    active_children, cpu_count, current_process, parent_process, ChildInfo, CurrentProcess,
    ParentProcess,
};
pub use log::log_to_stderr;
#[cfg(feature = "async")]
pub use process::JoinAsync;
pub use process::{spawn, KillHandle, Process, Resource, Stdio};
pub use tracing::Level;

/// The identity of the running executable image, the one a child's bootstrap checks against
/// its parent's: two processes with the same identity run the same code at the same offsets,
/// so a task named by its offset means the same function in both (`processing-cluster`
/// matches driver and worker hosts by it).
///
/// ```
/// assert_eq!(processing::process::build_identity(), processing::process::build_identity());
/// ```
pub fn build_identity() -> u64 {
    target::BuildId::current().as_u64()
}
