//! Portable process facts shared by every layer, (Unix) the process-shared futex that every
//! shared-memory primitive sleeps on, the spin-then-sleep policy of their waiters
//! ([`SpinPolicy`], [`oversubscribed`]), and the one safe wrapper of each system call that more
//! than one crate of the workspace makes (`poll`, `kill`, `waitpid`, `recv`, ...; on Windows
//! named pipes, semaphores, process handles and waits).

#[cfg(unix)]
use std::sync::atomic::AtomicU32;
#[cfg(unix)]
use std::time::Duration;

/// This process's id.
///
/// ```
/// assert_eq!(processing::core::os::pid(), std::process::id());
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
/// assert!(processing::core::os::pid_alive(std::process::id()));
/// ```
pub fn pid_alive(pid: u32) -> bool {
    crate::sys::pid_alive(pid)
}

/// The private per-user runtime directory, created if needed: `$XDG_RUNTIME_DIR/processing-<uid>`
/// (when that variable names an absolute directory) or `<temp dir>/processing-<uid>`, mode
/// 0700. Refused (`PermissionDenied` carrying an [`InsecureDir`]) unless it is a directory owned
/// by this user with no group or other permission bits. Local sockets and the resource
/// tracker's socket live there. Unix only.
///
/// ```
/// let dir = processing::core::os::private_runtime_dir().unwrap();
/// assert!(dir.is_dir());
/// ```
#[cfg(unix)]
pub fn private_runtime_dir() -> std::io::Result<std::path::PathBuf> {
    crate::sys::private_runtime_dir()
}

#[cfg(unix)]
pub use crate::sys::InsecureDir;

/// Sleeps while `word` holds `expected`, at most `timeout` (`None`: no limit); the word may
/// live in memory shared with other processes.
///
/// Returns when woken by [`futex_wake`] on the same word (in any process that maps it), when
/// the word no longer holds `expected`, when the timeout passes, or spuriously: the caller
/// re-checks its condition in a loop. Linux uses a shared (not process-private) `FUTEX_WAIT`;
/// other Unix systems poll the word with sleeps of 50 µs growing to 2 ms (there is no portable
/// process-shared futex). Not on Windows, where `WaitOnAddress` does not cross processes.
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// use std::time::Duration;
/// let word = AtomicU32::new(1);
/// // The word does not hold 0: returns at once.
/// processing::core::os::futex_wait(&word, 0, None);
/// // Holds 1 and nobody wakes it: returns after (about) the timeout.
/// processing::core::os::futex_wait(&word, 1, Some(Duration::from_millis(1)));
/// ```
#[cfg(unix)]
#[inline]
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    crate::sys::futex_wait(word, expected, timeout)
}

/// Wakes up to `n` threads (of any process) sleeping in [`futex_wait`] on `word`
/// (`u32::MAX`: all of them). A no-op on Unix systems other than Linux, whose waiters poll.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// let word = AtomicU32::new(0);
/// word.store(1, Ordering::SeqCst);
/// processing::core::os::futex_wake(&word, u32::MAX);
/// ```
#[cfg(unix)]
#[inline]
pub fn futex_wake(word: &AtomicU32, n: u32) {
    crate::sys::futex_wake(word, n)
}

pub use crate::spin::{oversubscribed, SpinPolicy};

#[cfg(unix)]
pub use crate::sys::{recv_with_fds, send_with_fds, MAX_FDS_PER_MESSAGE};

// The system calls that more than one crate makes, each wrapped once (safe, `io::Result` with
// the OS error kept). Prefer std where it has the call: `std::os::unix::process::parent_id`,
// `std::thread::yield_now`, `OwnedFd`/`OwnedHandle` (whose drop closes), `BorrowedFd`.
#[cfg(windows)]
pub use crate::sys::{
    connect_named_pipe, create_named_pipe, create_semaphore, disconnect_named_pipe, exit_code,
    open_pipe_client, open_process, open_semaphore, peek_named_pipe, read_handle,
    release_semaphore, wait_handle, write_handle, STILL_ACTIVE,
};
#[cfg(unix)]
pub use crate::sys::{
    cvt, fd_is_open, ignore_signal, kill, poll, recv, recv_spare, send, set_cloexec, sysconf, uid,
    waitpid,
};

#[cfg(all(test, unix))]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn futex_wake_ends_a_wait() {
        let word = Arc::new(AtomicU32::new(0));
        let w = Arc::clone(&word);
        let waiter = std::thread::spawn(move || {
            let began = Instant::now();
            while w.load(Ordering::SeqCst) == 0 {
                super::futex_wait(&w, 0, None);
            }
            began.elapsed()
        });
        word.store(1, Ordering::SeqCst);
        super::futex_wake(&word, 1);
        assert!(waiter.join().unwrap() < Duration::from_secs(5));
    }

    #[test]
    fn wrappers_keep_the_os_error() {
        use std::os::fd::AsFd;
        // Not a child of this process: ECHILD, as the kernel said it.
        let e = super::waitpid(i32::MAX, true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ECHILD), "{e}");
        // Nothing to read without waiting: EAGAIN, i.e. WouldBlock.
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let e = super::recv(a.as_fd(), &mut [0u8; 4], libc::MSG_DONTWAIT).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
        let mut v = Vec::with_capacity(4);
        let e = super::recv_spare(a.as_fd(), &mut v, 4, libc::MSG_DONTWAIT).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
        assert!(v.is_empty(), "a failed read grows nothing");
        // No such process: ESRCH.
        let e = super::kill(i32::MAX, 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH), "{e}");
    }

    #[test]
    fn futex_wait_times_out() {
        let word = AtomicU32::new(7);
        let began = Instant::now();
        super::futex_wait(&word, 7, Some(Duration::from_millis(20)));
        let elapsed = began.elapsed();
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    }
}
