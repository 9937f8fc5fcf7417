//! Windows: `WaitOnAddress` wakes threads of one process only, so a waiter polls the word with
//! growing sleeps (from yielding up to 1 ms). The spinning phase in `park.rs` covers the
//! latency-sensitive case; a sleeping waiter costs at most about a millisecond of delay.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use windows_sys::Win32::System::Threading::Sleep;

/// Sleeps while `word` holds `expected`, at most `timeout`.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut sleep_ms = 0u32;
    while word.load(Ordering::Acquire) == expected {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        // SAFETY: Sleep has no memory preconditions; Sleep(0) yields the rest of the slice.
        unsafe { Sleep(sleep_ms) };
        sleep_ms = 1;
    }
}

/// Polling waiters need no wake-up.
pub(crate) fn wake_all(_word: &AtomicU32) {}
