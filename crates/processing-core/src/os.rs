//! Portable process facts shared by every layer.

/// This process's id.
///
/// ```
/// assert_eq!(processing_core::os::pid(), std::process::id());
/// ```
pub fn pid() -> u32 {
    std::process::id()
}

/// Whether a process with id `pid` exists (and, on Windows, has not exited).
///
/// Pids are reused by the OS; callers that must not be fooled by reuse pair the pid with
/// another fact (a start time, a sentinel).
///
/// ```
/// assert!(processing_core::os::pid_alive(std::process::id()));
/// ```
pub fn pid_alive(pid: u32) -> bool {
    crate::sys::pid_alive(pid)
}

#[cfg(unix)]
pub use crate::sys::{recv_with_fds, send_with_fds, MAX_FDS_PER_MESSAGE};
