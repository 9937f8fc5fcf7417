//! Windows: `WaitOnAddress` wakes threads of one process only, so a sleeper waits on named
//! kernel semaphores that belong to the word: `Local\processing-q-<segment>-<offset>-s` (the
//! sleepers' permits) and `...-n` (one count per registered sleeper). The segment is the file
//! the word's view maps (see processing-shm), found from the address with `VirtualQuery` and
//! `K32GetMappedFileNameW`, so every process names the same word alike.
//!
//! A sleeper registers (`n` + 1), re-checks the word, and waits for a permit of `s`; on a
//! timeout it takes its registration back. A waker (called only after changing the word, and
//! only when the park protocol saw a sleeper's flag) drains `n` and releases that many permits.
//! A sleeper registered before the drain gets a permit; one registered after it sees the new
//! value when it re-checks. A sleeper that timed out while a waker drained its registration
//! leaves one permit behind: a later sleeper returns spuriously once, which callers allow. The
//! objects exist while some sleeper holds them. A word outside a file mapping (never the case
//! for a queue) falls back to polling with short sleeps.

use std::os::windows::io::{AsHandle, OwnedHandle};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use processing_core::os;
use windows_sys::Win32::System::Memory::{VirtualQuery, MEMORY_BASIC_INFORMATION};
use windows_sys::Win32::System::ProcessStatus::K32GetMappedFileNameW;
use windows_sys::Win32::System::Threading::{GetCurrentProcess, Sleep};

/// The kernel-object name prefix of the word: its segment file's name and its offset there.
fn word_key(word: &AtomicU32) -> Option<String> {
    let addr = word.as_ptr() as *const std::ffi::c_void;
    // SAFETY: an all-zero MEMORY_BASIC_INFORMATION is a valid out-parameter.
    let mut info: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: VirtualQuery only writes `info`, whose size is passed.
    let n = unsafe {
        VirtualQuery(
            addr,
            &mut info,
            std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
        )
    };
    if n == 0 || info.AllocationBase.is_null() {
        return None;
    }
    let offset = (addr as usize).checked_sub(info.AllocationBase as usize)?;
    let mut buf = [0u16; 1024];
    // SAFETY: buf is valid for buf.len() UTF-16 units; the pseudo handle needs no closing.
    let len = unsafe {
        K32GetMappedFileNameW(
            GetCurrentProcess(),
            info.AllocationBase,
            buf.as_mut_ptr(),
            buf.len() as u32,
        )
    } as usize;
    if len == 0 || len >= buf.len() {
        return None;
    }
    let path = String::from_utf16_lossy(&buf[..len]);
    let file = path.rsplit(['\\', '/']).next().filter(|f| !f.is_empty())?;
    Some(format!(r"Local\processing-q-{file}-{offset}"))
}

/// Opens the semaphore `name`, creating it (count 0) if needed.
fn semaphore(name: &str) -> Option<OwnedHandle> {
    os::create_semaphore(name).ok()
}

/// Opens the semaphore `name` if it exists.
fn existing_semaphore(name: &str) -> Option<OwnedHandle> {
    os::open_semaphore(name).ok()
}

/// Takes one count of `sem` if it has one, without waiting.
fn try_take(sem: &OwnedHandle) -> bool {
    os::wait_handle(sem.as_handle(), 0).unwrap_or(false)
}

fn release(sem: &OwnedHandle, n: i32) {
    // Past the maximum count it fails, and the permits are not needed.
    let _ = os::release_semaphore(sem.as_handle(), n);
}

/// Sleeps while `word` holds `expected`, at most `timeout`. Spurious returns are allowed: the
/// caller re-checks its condition.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let objects = word_key(word).and_then(|key| {
        Some((
            semaphore(&format!("{key}-s"))?,
            semaphore(&format!("{key}-n"))?,
        ))
    });
    let Some((permits, sleepers)) = objects else {
        return poll(word, expected, timeout);
    };
    release(&sleepers, 1);
    if word.load(Ordering::SeqCst) != expected {
        try_take(&sleepers);
        return;
    }
    let ms = timeout.as_micros().div_ceil(1000).min(u32::MAX as u128 - 1) as u32;
    let woken = os::wait_handle(permits.as_handle(), ms).unwrap_or(false);
    if !woken {
        // Take the registration back; if a waker drained it, its permit stays for a later
        // sleeper (one spurious return).
        try_take(&sleepers);
    }
}

/// Wakes every process and thread waiting on `word`.
pub(crate) fn wake_all(word: &AtomicU32) {
    let Some(key) = word_key(word) else {
        return; // pollers need no wake-up
    };
    let Some(sleepers) = existing_semaphore(&format!("{key}-n")) else {
        return; // nobody sleeps on this word
    };
    let mut n = 0i32;
    while n < i32::MAX && try_take(&sleepers) {
        n += 1;
    }
    if n > 0 {
        if let Some(permits) = existing_semaphore(&format!("{key}-s")) {
            release(&permits, n);
        }
    }
}

/// Polls the word with growing sleeps (from yielding up to 1 ms).
fn poll(word: &AtomicU32, expected: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut sleep_ms = 0u32;
    while word.load(Ordering::Acquire) == expected {
        if Instant::now() >= deadline {
            return;
        }
        // SAFETY: Sleep has no memory preconditions; Sleep(0) yields the rest of the slice.
        unsafe { Sleep(sleep_ms) };
        sleep_ms = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_in_a_segment_has_a_name_and_a_sleeper_is_woken_by_the_kernel() {
        let shm = processing_shm::SharedMemory::create(64).unwrap();
        // SAFETY: the segment is 64 bytes, page-aligned and zero-filled; an AtomicU32 at its
        // start is valid for as long as `shm` lives (the thread is joined before it drops).
        let word: &AtomicU32 = unsafe { &*shm.as_ptr().add(8).cast::<AtomicU32>() };
        let key = word_key(word).expect("a mapped segment word has a name");
        assert!(key.ends_with(&format!("{}-4104", shm.name())), "{key}");
        assert!(
            word_key(&AtomicU32::new(0)).is_none(),
            "a stack word has none"
        );
        let t = Instant::now();
        std::thread::scope(|s| {
            let sleeper = s.spawn(|| {
                while word.load(Ordering::SeqCst) == 0 {
                    wait(word, 0, Duration::from_secs(30));
                }
                t.elapsed()
            });
            // Wait until the sleeper is registered, then change the word and wake it.
            let n = format!("{key}-n");
            while existing_semaphore(&n).is_none() {
                std::thread::sleep(Duration::from_millis(1));
            }
            word.store(1, Ordering::SeqCst);
            wake_all(word);
            assert!(sleeper.join().unwrap() < Duration::from_secs(10));
        });
    }
}
