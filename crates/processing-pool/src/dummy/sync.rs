//! Synchronisation of the thread twin, and the poison-free lock helper the twin's types share.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, ignoring poison (a panicking holder leaves consistent state in every use here).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
