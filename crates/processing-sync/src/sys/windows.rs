//! Windows: one named kernel semaphore per sleep word (`Local\<segment>-w<slot>`).
//!
//! `WaitOnAddress` wakes threads of one process only, so sleepers block on a semaphore that
//! every process opens by name. The algorithms count sleepers in shared memory before they
//! re-check their word, and a waker releases at most that many permits; a permit left over by
//! a sleeper that timed out only causes a spurious wake-up later, which the algorithms absorb.

use std::os::windows::io::{AsHandle, OwnedHandle};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use processing_core::os;
use windows_sys::Win32::System::Threading::INFINITE;

use super::SLOTS;

/// The semaphores of one primitive, opened (or created) by name; closed on drop.
#[derive(Debug)]
pub(crate) struct Parker {
    sems: Vec<OwnedHandle>,
}

impl Parker {
    pub(crate) fn new(segment: &str) -> std::io::Result<Parker> {
        // An existing semaphore of a slot's name is opened instead of created; those opened
        // before a failure close with the vector.
        let sems = (0..SLOTS)
            .map(|slot| os::create_semaphore(&format!("Local\\{segment}-w{slot}")))
            .collect::<std::io::Result<Vec<_>>>()?;
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
        // Every return may be spurious: the caller re-checks its word.
        let _ = os::wait_handle(self.sems[slot % SLOTS].as_handle(), ms);
    }

    pub(crate) fn wake(&self, slot: usize, _word: &AtomicU32, n: u32, sleepers: u32) {
        let n = n.min(sleepers).min(i32::MAX as u32);
        if n == 0 {
            return;
        }
        // Releasing beyond the maximum fails harmlessly.
        let _ = os::release_semaphore(self.sems[slot % SLOTS].as_handle(), n as i32);
    }
}
