//! How the pool's threads (its supervisors, result slots and the thread twin's objects) lock
//! and wait: a mutex locked ignoring poison, a deadline from a timeout, and one
//! deadline-bounded wait on a condition variable.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Locks `m`, ignoring poison: no pool code panics while holding these locks, and a panicking
/// holder elsewhere (a twin object's user) leaves consistent state in every use.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The instant `timeout` from now; `None` (for ever) when it is out of range (`Duration::MAX`).
pub(crate) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Waits on `cv` once, at most until `deadline` (`None`: for ever); gives the guard back as
/// `Err` when the deadline has passed (at once if it had before the call).
pub(crate) fn wait_on<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
) -> Result<MutexGuard<'a, T>, MutexGuard<'a, T>> {
    match processing_core::time_left(deadline) {
        Err(_) => Err(guard),
        Ok(None) => Ok(cv.wait(guard).unwrap_or_else(|e| e.into_inner())),
        Ok(Some(left)) => Ok(cv
            .wait_timeout(guard, left)
            .unwrap_or_else(|e| e.into_inner())
            .0),
    }
}
