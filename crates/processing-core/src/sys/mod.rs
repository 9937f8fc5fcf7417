//! The platform seam of processing-core: `unix.rs` or `windows.rs`, one fixed list of names.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::{deserialize_handle, pid_alive, serialize_handle};
#[cfg(unix)]
mod futex;
#[cfg(unix)]
pub(crate) use futex::{futex_wait, futex_wake};
#[cfg(unix)]
pub(crate) use unix::private_runtime_dir;
#[cfg(unix)]
pub use unix::{
    cvt, fd_is_open, ignore_signal, kill, poll, recv, recv_spare, send, set_cloexec, sysconf, uid,
    waitpid,
};
#[cfg(unix)]
pub use unix::{recv_with_fds, send_with_fds, InsecureDir, MAX_FDS_PER_MESSAGE};

mod sched;
pub(crate) use sched::{online_cpus, pinned_to_one_cpu, runnable_threads};

#[cfg(all(target_os = "linux", feature = "async"))]
pub(crate) mod aio_epoll;

#[cfg(all(windows, feature = "async"))]
pub(crate) mod aio_windows;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{
    connect_named_pipe, create_named_pipe, create_semaphore, disconnect_named_pipe, exit_code,
    open_pipe_client, open_process, open_semaphore, peek_named_pipe, read_handle,
    release_semaphore, wait_handle, write_handle, STILL_ACTIVE,
};
#[cfg(windows)]
pub(crate) use windows::{deserialize_handle, pid_alive, serialize_handle};
