//! Unix: sleeping on a 32-bit word of shared memory until another process changes it.
//!
//! Linux (and Android): `FUTEX_WAIT` / `FUTEX_WAKE` without `FUTEX_PRIVATE_FLAG`: a shared
//! futex keys on the physical page, so waiters and wakers in other processes that map the same
//! page meet. Other Unix systems have no portable process-shared futex: the wait polls the word
//! with short sleeps (50 µs doubling up to 2 ms) and the wake is a no-op.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 32-bit atomic for the whole call; FUTEX_WAIT only reads
    // it and compares it with `expected`; `ts_ptr` is null or points to a relative timeout on
    // this stack frame. The result is ignored: every return may be spurious.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) {
    let n = n.min(i32::MAX as u32) as libc::c_int;
    // SAFETY: FUTEX_WAKE only uses the address of `word` as a key; it reads no memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    use std::sync::atomic::Ordering;
    let start = std::time::Instant::now();
    let mut step = Duration::from_micros(50);
    while word.load(Ordering::SeqCst) == expected {
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return;
        }
        std::thread::sleep(step);
        step = (step * 2).min(Duration::from_millis(2));
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[inline]
pub(crate) fn futex_wake(_word: &AtomicU32, _n: u32) {}
