//! The platform seam of processing-sync: how a thread sleeps on a word in shared memory.
//!
//! `Parker` (one per handle): `wait(slot, word, expected, timeout)` sleeps while `word ==
//! expected` (spurious returns allowed), `wake(slot, word, n, sleepers)` wakes up to `n`
//! sleepers. `slot` names which word of the primitive (each has at most [`SLOTS`]).
//! `owner_alive(pid, stamp)`: whether a lock holder still runs. `thread_tag()`: a per-thread
//! number unique within the process.
//!
//! - Unix (`unix.rs`): `processing_core::os::futex_wait`/`futex_wake` on the word itself (Linux:
//!   `FUTEX_WAIT`/`FUTEX_WAKE` without `FUTEX_PRIVATE_FLAG`, the word being in a shared mapping;
//!   other Unix: short sleeps, for want of a portable process-shared futex).
//! - Windows (`windows.rs`): a named kernel semaphore per slot (`WaitOnAddress` does not cross
//!   processes); the shared sleeper count says how many to release.
//! - loom (`loom.rs`): a yield, which the algorithms must treat as a spurious wake-up.

/// Most sleep words in one primitive.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) const SLOTS: usize = 2;

#[cfg(all(not(loom), unix))]
mod unix;
#[cfg(all(not(loom), unix))]
pub(crate) use unix::Parker;

#[cfg(all(not(loom), windows))]
mod windows;
#[cfg(all(not(loom), windows))]
pub(crate) use windows::Parker;

#[cfg(loom)]
mod loom;
#[cfg(loom)]
pub(crate) use self::loom::Parker;

/// Whether the lock holder `pid` (with process stamp `stamp`, 0 if unknown) still runs.
#[cfg(not(loom))]
pub(crate) fn owner_alive(pid: u32, stamp: u32) -> bool {
    processing_shm::liveness::is_alive(pid, stamp)
}

/// Under loom every thread is one process, which never dies.
#[cfg(loom)]
pub(crate) fn owner_alive(_pid: u32, _stamp: u32) -> bool {
    true
}

/// A number unique among this process's live threads (never 0).
#[cfg(not(loom))]
pub(crate) fn thread_tag() -> u32 {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    thread_local! {
        static TAG: Cell<u32> = const { Cell::new(0) };
    }
    TAG.with(|t| {
        let v = t.get();
        if v != 0 {
            return v;
        }
        let v = NEXT.fetch_add(1, Ordering::Relaxed).max(1);
        t.set(v);
        v
    })
}

/// Under loom: a per-loom-thread number.
#[cfg(loom)]
pub(crate) fn thread_tag() -> u32 {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    ::loom::thread_local! {
        static TAG: Cell<u32> = Cell::new(0);
    }
    TAG.with(|t| {
        if t.get() == 0 {
            t.set(NEXT.fetch_add(1, Ordering::Relaxed).max(1));
        }
        t.get()
    })
}

/// Whether a process with this pid runs (a zombie counts as gone).
#[cfg(not(loom))]
pub(crate) fn process_exists(pid: u32) -> bool {
    processing_shm::liveness::is_alive(pid, 0)
}

/// Under loom every thread is one process, which never dies.
#[cfg(loom)]
pub(crate) fn process_exists(_pid: u32) -> bool {
    true
}
