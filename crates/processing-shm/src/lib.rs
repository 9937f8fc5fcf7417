//! Shared-memory segments and plain-old-data views of them.
//!
//! Layer: `core → **shm** → sync → transport → process → {manager, pool} → processing`.
//! It holds [`SharedMemory`] (named segments: `create`, `create_named`, `open`, `unlink`),
//! `Region` (Unix: unnamed sealed memory files shared by descriptor, the rings' mapping),
//! [`RawValue<T>`] and [`RawArray<T>`] for plain-old-data `T`, the resource tracker that
//! removes the segments of crashed processes, and [`liveness`] (is the process that wrote
//! this pid still running) and [`owner`] (the owner-checked lock word every shared-memory
//! lock uses, with takeover of a dead holder). It knows nothing about locks, channels or how processes are
//! started, and never depends on a higher crate.
//!
//! ```
//! use processing::{RawArray, RawValue};
//! let counter = RawValue::new(0u64).unwrap();
//! counter.set(7);
//! let squares = RawArray::from_slice(&[0u32, 1, 4, 9]).unwrap();
//! assert_eq!((counter.get(), squares.get(3)), (7, Some(9)));
//! ```
//!
//! Every handle is `Clone + Send + Sync + Serialize + Deserialize`: send it to a child process
//! (as a spawn argument, through a pipe or a queue) and it re-attaches there by name.

#![doc(html_root_url = "https://docs.rs/processing-shm/0.1.0")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod base;
mod error;
#[cfg(any(loom, miri))]
mod heap;
pub mod liveness;
mod loom;
/// The loom seam of the rings (copy reports, futex calls; heap stand-ins for mappings under
/// `cfg(loom)`), for the crates above and their `tests/loom_*.rs`.
#[doc(hidden)]
pub mod model;
pub mod owner;
mod raw;
#[cfg(unix)]
mod region;
mod segment;
#[cfg(unix)]
pub mod spsc;
mod sys;

pub use bytemuck::{Pod, Zeroable};
pub use error::ShmError;
pub use raw::{resolve_range, RawArray, RawValue};
#[cfg(unix)]
pub use region::Region;
pub use segment::{SharedMemory, NAME_PREFIX};

/// Resource-tracker control.
pub mod tracker {
    /// Connects this process to the resource tracker, starting one if none is reachable.
    ///
    /// Segments call this themselves; calling it early in `main` (before other threads
    /// exist) makes every child started later share one tracker. Windows has no tracker
    /// process (a process's first segment sweeps what crashed processes left), so this does
    /// nothing there.
    ///
    /// ```
    /// processing::shm::tracker::ensure().unwrap();
    /// ```
    pub fn ensure() -> std::io::Result<()> {
        crate::sys::tracker_ensure()
    }

    /// The environment variable (name, value) through which a child finds this process's
    /// tracker, if this process is connected to one. A launcher whose children do not inherit
    /// its current environment (a fork server started earlier) passes it with each launch, so
    /// that the program keeps one tracker. `None` on Windows.
    ///
    /// ```
    /// processing::shm::tracker::ensure().unwrap();
    /// if cfg!(unix) {
    ///     assert!(processing::shm::tracker::child_env().is_some());
    /// }
    /// ```
    pub fn child_env() -> Option<(&'static str, String)> {
        crate::sys::tracker_child_env()
    }

    /// Asks the resource tracker to remove directory `dir` once this process has ended,
    /// however it ends (even by SIGKILL): the tracker outlives the program's processes and
    /// notices the end of each. `dir` must be an absolute path whose last component starts
    /// with [`NAME_PREFIX`](crate::NAME_PREFIX) (the library's private directories, such as a
    /// local manager's socket directory). Windows has no tracker process: this does nothing
    /// there.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("processing-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// processing::shm::tracker::remove_dir_at_exit(&dir).unwrap();
    /// assert!(processing::shm::tracker::remove_dir_at_exit(std::path::Path::new("/tmp")).is_err() || cfg!(windows));
    /// # std::fs::remove_dir(&dir).unwrap();
    /// ```
    pub fn remove_dir_at_exit(dir: &std::path::Path) -> std::io::Result<()> {
        crate::sys::tracker_remove_dir_at_exit(dir)
    }
}
