//! Windows: one named kernel semaphore per sleep word (`Local\<segment>-w<slot>`).
//!
//! `WaitOnAddress` wakes threads of one process only, so sleepers block on a semaphore that
//! every process opens by name. The algorithms count sleepers in shared memory before they
//! re-check their word, and a waker releases at most that many permits; a permit left over by
//! a sleeper that timed out only causes a spurious wake-up later, which the algorithms absorb.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::System::Threading::{
    CreateSemaphoreW, ReleaseSemaphore, WaitForSingleObject, INFINITE,
};

use super::SLOTS;

/// The semaphores of one primitive, opened (or created) by name.
#[derive(Debug)]
pub(crate) struct Parker {
    sems: [HANDLE; SLOTS],
}

// SAFETY: kernel handles are process-wide; the semaphores are safe to use from any thread.
unsafe impl Send for Parker {}
// SAFETY: as for Send.
unsafe impl Sync for Parker {}

impl Parker {
    pub(crate) fn new(segment: &str) -> std::io::Result<Parker> {
        let mut sems: [HANDLE; SLOTS] = [std::ptr::null_mut(); SLOTS];
        for (slot, sem) in sems.iter_mut().enumerate() {
            let name: Vec<u16> = format!("Local\\{segment}-w{slot}")
                .encode_utf16()
                .chain(std::iter::once(0))
                .collect();
            // SAFETY: name is NUL-terminated UTF-16; an existing semaphore of that name is
            // opened instead of created.
            let h = unsafe { CreateSemaphoreW(std::ptr::null(), 0, i32::MAX, name.as_ptr()) };
            if h.is_null() {
                let err = std::io::Error::last_os_error();
                for opened in sems.iter().filter(|h| !h.is_null()) {
                    // SAFETY: handles we opened above.
                    unsafe { CloseHandle(*opened) };
                }
                return Err(err);
            }
            *sem = h;
        }
        Ok(Parker { sems })
    }

    pub(crate) fn wait(
        &self,
        slot: usize,
        word: &AtomicU32,
        expected: u32,
        timeout: Option<Duration>,
    ) {
        if word.load(Ordering::SeqCst) != expected {
            return;
        }
        let ms = timeout.map_or(INFINITE, |d| {
            let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
            ms.min(u128::from(INFINITE - 1)) as u32
        });
        // SAFETY: the semaphore handle is open for the life of self.
        unsafe { WaitForSingleObject(self.sems[slot % SLOTS], ms) };
    }

    pub(crate) fn wake(&self, slot: usize, _word: &AtomicU32, n: u32, sleepers: u32) {
        let n = n.min(sleepers).min(i32::MAX as u32);
        if n == 0 {
            return;
        }
        // SAFETY: the semaphore handle is open; releasing beyond the maximum fails harmlessly.
        unsafe { ReleaseSemaphore(self.sems[slot % SLOTS], n as i32, std::ptr::null_mut()) };
    }
}

impl Drop for Parker {
    fn drop(&mut self) {
        for h in self.sems {
            // SAFETY: handles opened in `new`, closed once.
            unsafe { CloseHandle(h) };
        }
    }
}
