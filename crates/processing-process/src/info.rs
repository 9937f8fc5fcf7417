//! Facts about this process, its parent and its children.

use std::sync::Arc;

use crate::registry;
use crate::StartMethod;

/// This process as `current_process()` describes it.
///
/// ```
/// let me = processing::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), std::process::id());
/// assert!(me.is_alive() && !me.daemon());
/// assert!(!me.authkey().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct CurrentProcess {
    name: String,
    daemon: bool,
    method: Option<StartMethod>,
}

impl CurrentProcess {
    /// `"MainProcess"` in the main process, the name given by the parent in a child.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This process's id.
    pub fn pid(&self) -> u32 {
        std::process::id()
    }

    /// Whether this process is daemonic (then it may not start children).
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// The authentication key (inherited from the parent in a child).
    pub fn authkey(&self) -> Arc<[u8]> {
        processing_core::authkey::get()
    }

    /// Always true: this process is running.
    pub fn is_alive(&self) -> bool {
        true
    }

    /// How this process was started (`None` in the main process).
    pub fn start_method(&self) -> Option<StartMethod> {
        self.method
    }
}

/// This process.
pub fn current_process() -> CurrentProcess {
    let id = registry::identity();
    CurrentProcess {
        name: id.name,
        daemon: id.daemon,
        method: id.method,
    }
}

/// The process that started this one, as it was at start.
///
/// ```
/// assert!(processing::parent_process().is_none()); // in the main process
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentProcess {
    pid: u32,
    name: String,
}

impl ParentProcess {
    /// The parent's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The parent's name (`"MainProcess"` for the main process).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the parent still runs.
    pub fn is_alive(&self) -> bool {
        processing_core::os::pid_alive(self.pid)
    }
}

/// The parent process; `None` in the main process.
pub fn parent_process() -> Option<ParentProcess> {
    registry::identity()
        .parent
        .map(|(pid, name)| ParentProcess { pid, name })
}

/// A live child, as `active_children()` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    pid: u32,
    name: String,
    daemon: bool,
}

impl ChildInfo {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the child is daemonic.
    pub fn daemon(&self) -> bool {
        self.daemon
    }
}

/// The children of this process that are still running (ended ones are reaped on the way).
///
/// ```
/// let p = processing::spawn(|(): ()| std::thread::sleep(std::time::Duration::from_millis(200)), ()).unwrap();
/// assert!(processing::active_children().iter().any(|c| Some(c.pid()) == p.pid()));
/// ```
pub fn active_children() -> Vec<ChildInfo> {
    registry::sweep()
        .into_iter()
        .map(|c| ChildInfo {
            pid: c.proc.pid(),
            name: c.name.clone(),
            daemon: c.daemon,
        })
        .collect()
}

/// The number of CPUs this process may use (at least 1).
///
/// ```
/// assert!(processing::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
