//! Unix: Linux waits with a shared (not process-private) futex, so a wake-up crosses processes;
//! other Unix systems poll the word with short sleeps.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `word` holds `expected`, at most `timeout`. Spurious returns are allowed: the
/// caller re-checks its condition.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned 32-bit atomic that outlives the call; FUTEX_WAIT (the
    // shared variant, without FUTEX_PRIVATE_FLAG, so waiters in other processes mapping the same
    // page are woken) only reads it and the timespec, which lives on this stack frame.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes every process and thread waiting on `word`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn wake_all(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address of `word` as a key; it reads no memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Sleeps while `word` holds `expected`, at most `timeout` (polling every 200 µs).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    use std::sync::atomic::Ordering;
    let deadline = std::time::Instant::now() + timeout;
    while word.load(Ordering::Acquire) == expected && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Polling waiters need no wake-up.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn wake_all(_word: &AtomicU32) {}
