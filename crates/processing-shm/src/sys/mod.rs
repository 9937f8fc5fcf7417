//! The platform seam of processing-shm: `unix.rs` or `windows.rs`, one fixed list of names.
//!
//! - `Segment`: create / open / unlink one named segment and map it.
//! - `process_stamp(pid)`: a fact that tells a live process from a later one with the same pid
//!   (`None` when the process is gone, a zombie included).
//! - `map(fd, len)`, `unmap` (Unix): the one shared `mmap` (segments and `Region`s).
//! - `os_pid()`: this process's id, asked of the OS (not cached).
//! - `tracker_register(name)`, `tracker_ensure()`, `tracker_child_env()`,
//!   `tracker_remove_dir_at_exit(dir)`: the resource tracker's client side.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
mod unix_tracker;
#[cfg(unix)]
pub(crate) use unix::{map, on_fork_child, os_pid, process_stamp, unmap, Segment};
#[cfg(unix)]
pub(crate) use unix_tracker::{
    tracker_child_env, tracker_ensure, tracker_register, tracker_remove_dir_at_exit,
};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{
    on_fork_child, os_pid, process_stamp, tracker_child_env, tracker_ensure, tracker_register,
    tracker_remove_dir_at_exit, Segment,
};
