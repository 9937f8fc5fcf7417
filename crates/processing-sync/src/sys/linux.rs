//! Linux: futexes on the shared mapping.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps with `FUTEX_WAIT` and wakes with `FUTEX_WAKE`; holds nothing.
#[derive(Debug)]
pub(crate) struct Parker;

impl Parker {
    pub(crate) fn new(_segment: &str) -> std::io::Result<Parker> {
        Ok(Parker)
    }

    pub(crate) fn wait(
        &self,
        _slot: usize,
        word: &AtomicU32,
        expected: u32,
        timeout: Option<Duration>,
    ) {
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: word points to a live, aligned u32 in a shared mapping; FUTEX_WAIT only
        // reads it and compares with `expected`; ts_ptr is null or a valid relative timeout.
        // Shared (non-private) futexes key on the physical page, so waiters and wakers in
        // other processes that map the same segment meet here.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                0,
            );
        }
    }

    pub(crate) fn wake(&self, _slot: usize, word: &AtomicU32, n: u32, _sleepers: u32) {
        let n = n.min(i32::MAX as u32) as libc::c_int;
        // SAFETY: as in `wait`; FUTEX_WAKE does not touch the word's value.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE,
                n,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                0,
            );
        }
    }
}
