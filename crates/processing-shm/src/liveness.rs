//! Who is alive: this process's id (cached, reset after `fork`) and a stamp that tells a live
//! process from a later one that reuses its pid.
//!
//! `processing_core::os::pid_alive` answers "does a process with this pid exist"; a killed
//! child that its parent has not reaped yet still exists as a zombie, and a pid can be reused.
//! The lock recovery and the resource tracker need "is the process that wrote this pid still
//! running", so they pair the pid with its start time (Linux: `/proc/<pid>/stat` field 22;
//! Windows: the creation time) and treat zombies as dead.
//!
//! ```
//! use processing::shm::liveness;
//! let me = liveness::current_pid();
//! assert_eq!(me, std::process::id());
//! assert!(liveness::is_alive(me, liveness::current_stamp()));
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

static PID: AtomicU32 = AtomicU32::new(0);
static STAMP: AtomicU32 = AtomicU32::new(0);
static FORK_HOOK: Once = Once::new();

fn reset_after_fork() {
    PID.store(0, Ordering::Relaxed);
    STAMP.store(0, Ordering::Relaxed);
}

/// This process's id, cached (a plain load after the first call; correct after `fork`).
#[inline]
pub fn current_pid() -> u32 {
    let pid = PID.load(Ordering::Relaxed);
    if pid != 0 {
        return pid;
    }
    slow_pid()
}

#[cold]
fn slow_pid() -> u32 {
    FORK_HOOK.call_once(|| crate::sys::on_fork_child(reset_after_fork));
    let pid = crate::sys::os_pid();
    PID.store(pid, Ordering::Relaxed);
    pid
}

/// This process's stamp (see [`stamp_of`]), cached.
#[inline]
pub fn current_stamp() -> u32 {
    let stamp = STAMP.load(Ordering::Relaxed);
    if stamp != 0 {
        return stamp;
    }
    let stamp = stamp_of(current_pid()).unwrap_or(1);
    STAMP.store(stamp, Ordering::Relaxed);
    stamp
}

/// The stamp of the running process `pid` (never 0), or `None` when no such process runs; a
/// zombie counts as not running.
pub fn stamp_of(pid: u32) -> Option<u32> {
    if pid == 0 {
        return None;
    }
    crate::sys::process_stamp(pid)
}

/// Whether the process `pid` that had stamp `stamp` still runs. A `stamp` of 0 means unknown:
/// then only the pid is checked.
pub fn is_alive(pid: u32, stamp: u32) -> bool {
    match stamp_of(pid) {
        None => false,
        Some(now) => stamp == 0 || now == stamp,
    }
}
