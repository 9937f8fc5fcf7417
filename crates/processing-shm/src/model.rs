//! The loom seam of the rings (`tests/loom_*.rs` of processing-transport for the queue and
//! pipe rings, of this crate for its `spsc` ring, the pool's reply rings and the manager's
//! mailboxes), one copy for all of them: [`wrote`], [`read`],
//! [`futex_wait`] and [`futex_wake`] always exist (outside `cfg(loom)` the reports do nothing
//! and the futex calls are `processing_core::os`'s); the stand-ins for mappings exist only
//! under `cfg(loom)`.
//!
//! A [`HeapRegion`] is a zero-filled, page-aligned heap buffer that plays a mapping shared by
//! the model's threads. Loom cannot see plain reads and writes through raw pointers, so the
//! rings report each copy into or out of shared bytes with [`wrote`] and [`read`]; these check
//! the bytes' per-byte `loom::cell::UnsafeCell` shadows, so that loom reports a consumer
//! reading bytes whose writing does not happen-before the read (a commit published too early
//! or with too weak an ordering). A [`Shadow`] gives such cells to bytes of real mappings,
//! the same cells to every address at which the bytes are mapped. A pointer outside every
//! live region or shadow is not checked.
#![allow(missing_docs)]

#[cfg(loom)]
use std::ptr::NonNull;
#[cfg(loom)]
use std::sync::{Arc, Mutex};

#[cfg(loom)]
use loom::cell::UnsafeCell;

#[cfg(loom)]
use crate::heap::HeapBytes;

#[cfg(unix)]
use crate::loom::AtomicU32;

#[cfg(loom)]
/// One cell per byte.
struct Cells(Box<[UnsafeCell<()>]>);

#[cfg(loom)]
// SAFETY: the cells hold no data (`()`); they only carry loom's record of accesses, which
// exists to be used by every thread of the model.
unsafe impl Send for Cells {}
#[cfg(loom)]
// SAFETY: as above.
unsafe impl Sync for Cells {}

#[cfg(loom)]
impl Cells {
    fn new(len: usize) -> Arc<Cells> {
        Arc::new(Cells((0..len).map(|_| UnsafeCell::new(())).collect()))
    }
}

#[cfg(loom)]
/// Checked address ranges: (start address, length, address of the `Cells`). A plain std
/// mutex: it must add no happens-before edge of its own to the model.
static RANGES: Mutex<Vec<(usize, usize, usize)>> = Mutex::new(Vec::new());

#[cfg(loom)]
fn register(start: *const u8, len: usize, cells: &Arc<Cells>) {
    RANGES.lock().unwrap_or_else(|e| e.into_inner()).push((
        start as usize,
        len,
        Arc::as_ptr(cells) as usize,
    ));
}

#[cfg(loom)]
fn unregister(cells: &Arc<Cells>) {
    let me = Arc::as_ptr(cells) as usize;
    RANGES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|r| r.2 != me);
}

#[cfg(loom)]
/// Cells for bytes that live at several addresses (one file mapped more than once); the
/// checks stop when it is dropped.
pub struct Shadow(Arc<Cells>);

#[cfg(loom)]
impl Shadow {
    /// Checks `len` bytes mapped at each of `starts`.
    pub fn new(starts: &[*const u8], len: usize) -> Shadow {
        let cells = Cells::new(len);
        for s in starts {
            register(*s, len, &cells);
        }
        Shadow(cells)
    }
}

#[cfg(loom)]
impl Drop for Shadow {
    fn drop(&mut self) {
        unregister(&self.0);
    }
}

#[cfg(loom)]
impl std::fmt::Debug for Shadow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shadow")
            .field("len", &self.0 .0.len())
            .finish()
    }
}

#[cfg(loom)]
struct Inner {
    // Unregistered before the bytes are freed (fields drop after `drop`).
    bytes: HeapBytes,
    cells: Arc<Cells>,
}

#[cfg(loom)]
impl Drop for Inner {
    fn drop(&mut self) {
        unregister(&self.cells);
    }
}

#[cfg(loom)]
/// A zero-filled heap buffer standing in for a shared mapping; clones share the bytes.
#[derive(Clone)]
pub struct HeapRegion(Arc<Inner>);

#[cfg(loom)]
impl std::fmt::Debug for HeapRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapRegion")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(loom)]
impl HeapRegion {
    /// A zero-filled region of `len` bytes, aligned to 4096 (created inside a loom model),
    /// every byte checked.
    pub fn new(len: usize) -> HeapRegion {
        HeapRegion::tracking_from(len, 0)
    }

    /// Like [`new`](Self::new), but only bytes from `from` on are checked (the data area after
    /// a header of atomics: fewer loom objects per run).
    pub fn tracking_from(len: usize, from: usize) -> HeapRegion {
        let bytes = HeapBytes::new(len).expect("heap bytes for a model region");
        let from = from.min(len);
        let cells = Cells::new(len - from);
        // SAFETY: `from <= len`, inside the allocation.
        register(
            unsafe { bytes.as_ptr().as_ptr().add(from) },
            len - from,
            &cells,
        );
        HeapRegion(Arc::new(Inner { bytes, cells }))
    }

    /// The first byte.
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.0.bytes.as_ptr()
    }

    /// Bytes in the region.
    pub fn len(&self) -> usize {
        self.0.bytes.len()
    }

    /// Whether the region has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(loom)]
/// Runs `f` on the cells of `[ptr, ptr + len)` if that range starts in a checked range.
fn with_cells(ptr: *const u8, len: usize, f: impl Fn(&UnsafeCell<()>)) {
    let at = ptr as usize;
    let found = RANGES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|r| at >= r.0 && at < r.0 + r.1)
        .map(|r| (at - r.0, r.1, r.2));
    let Some((off, rlen, cells)) = found else {
        return;
    };
    assert!(off + len <= rlen, "access past the end of a checked range");
    // SAFETY: the entry is removed (under the mutex) before its cells are freed, and the
    // caller is accessing the bytes, so it keeps their region or shadow alive meanwhile.
    let cells = unsafe { &*(cells as *const Cells) };
    for cell in &cells.0[off..off + len] {
        f(cell);
    }
}

/// Reports a plain write of `len` shared bytes at `ptr`: under loom, a data race with any
/// access that does not happen-before it fails the model; nothing otherwise.
#[inline(always)]
pub fn wrote(ptr: *const u8, len: usize) {
    report(ptr, len, true);
}

/// Reports a plain read of `len` shared bytes at `ptr`: under loom, a data race with a write
/// that does not happen-before it fails the model; nothing otherwise.
#[inline(always)]
pub fn read(ptr: *const u8, len: usize) {
    report(ptr, len, false);
}

/// The report of a plain access (`write` or read) of `len` shared bytes at `ptr`, checked
/// against the bytes' cells under loom.
#[inline(always)]
fn report(ptr: *const u8, len: usize, write: bool) {
    #[cfg(loom)]
    with_cells(ptr, len, |c| {
        if write {
            c.with_mut(|_| ())
        } else {
            c.with(|_| ())
        }
    });
    #[cfg(not(loom))]
    let _ = (ptr, len, write);
}

/// Under loom a yield: a scheduling point the model explores (loom must see every spin and
/// every retry as one, and its threads share one OS thread); otherwise `real` (a busy-wait
/// hint, giving up the CPU, or nothing).
#[inline(always)]
pub fn yield_under_loom_or(real: fn()) {
    #[cfg(loom)]
    {
        let _ = real;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    real();
}

/// A busy-wait hint (a yield under loom).
#[inline]
pub fn spin_hint() {
    yield_under_loom_or(std::hint::spin_loop);
}

/// Round `round` (from 1) of a wait with nothing to sleep on (a full ring's producer, a lock
/// word held by another process): busy-wait hints before round `spin_until`, then yields
/// before round `yield_until`, then sleeps of `nap`; under loom every round is a yield.
#[inline]
pub fn backoff(round: u32, spin_until: u32, yield_until: u32, nap: std::time::Duration) {
    #[cfg(loom)]
    {
        let _ = (round, spin_until, yield_until, nap);
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    if round < spin_until {
        std::hint::spin_loop();
    } else if round < yield_until {
        std::thread::yield_now();
    } else {
        std::thread::sleep(nap);
    }
}

/// `processing_core::os::futex_wait`; under loom a yield (a spurious wake-up, which every
/// sleeper tolerates), since the model's threads share one OS thread.
#[cfg(unix)]
#[inline]
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<std::time::Duration>) {
    #[cfg(loom)]
    {
        let _ = (word, expected, timeout);
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    processing_core::os::futex_wait(word, expected, timeout);
}

/// `processing_core::os::futex_wake`; nothing under loom (nobody sleeps there).
#[cfg(unix)]
#[inline]
pub fn futex_wake(word: &AtomicU32, n: u32) {
    #[cfg(loom)]
    let _ = (word, n);
    #[cfg(not(loom))]
    processing_core::os::futex_wake(word, n);
}

/// A loom model builder exploring at most `max` forced preemptions (fewer where
/// `LOOM_MAX_PREEMPTIONS` asks for fewer; the loom leg of `cargo xtask test` sets 2), for the
/// models of every crate: `builder(2).check(|| …)`.
#[cfg(loom)]
pub fn builder(max: usize) -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(max).min(max));
    builder
}

/// A message of `len` bytes that tells its tag and every byte's place apart, so that a torn,
/// shifted or swapped message fails the comparison.
#[cfg(loom)]
pub fn message(tag: u8, len: usize) -> Vec<u8> {
    (0..len as u8)
        .map(|i| tag.wrapping_mul(16).wrapping_add(i))
        .collect()
}

/// The SPSC ring's loom models and their users' (the pool's reply rings): a ring over a heap
/// region, and the two sides of a sleep hand-over whose bell is the user's own (a
/// `loom::sync::Notify`: a permit, as a wake-up frame waiting in a socket is).
#[cfg(all(loom, unix))]
pub mod spsc {
    use loom::sync::{Arc, Notify};
    use loom::thread::{self, JoinHandle};

    use super::HeapRegion;
    use crate::spsc::{build, Consumer, Producer, Size, HEADER};

    /// A fresh ring of `size` over a heap region: its producer and its consumer.
    pub fn pair(size: Size) -> (Producer, Consumer) {
        let map = HeapRegion::tracking_from(size.bytes(), HEADER);
        // SAFETY: the region is fresh, page-aligned and holds the ring at offset 0.
        unsafe { build(&map, 0) };
        let map = std::sync::Arc::new(map);
        (
            Producer::new(map.clone(), 0, size).expect("the ring fits its region"),
            Consumer::new(map, 0, size).expect("the ring fits its region"),
        )
    }

    /// The producer's side: publishes `message`, rings `bell` when the consumer sleeps.
    pub fn push(tx: &mut Producer, bell: &Notify, message: &[u8]) {
        if tx.push(&[message]).expect("model messages fit") {
            bell.notify();
        }
    }

    /// A producer thread pushing `messages` in order (ringing `bell` as [`push`] does).
    pub fn spawn_producer(
        mut tx: Producer,
        bell: &Arc<Notify>,
        messages: Vec<Vec<u8>>,
    ) -> JoinHandle<()> {
        let bell = bell.clone();
        thread::spawn(move || {
            for m in &messages {
                push(&mut tx, &bell, m);
            }
        })
    }

    /// Moves both positions on by `n` entries of `len`-byte messages, pushed and taken one by
    /// one (a ring that has run for a while: the next entries come near its end).
    pub fn advance(tx: &mut Producer, rx: &mut Consumer, bell: &Notify, n: u8, len: usize) {
        for i in 0..n {
            push(tx, bell, &super::message(i, len));
            assert_eq!(take(rx, bell, 1), vec![super::message(i, len)]);
        }
    }

    /// The consumer's side: `n` messages, sleeping on `bell` when the ring is empty, each
    /// released at the next take.
    pub fn take(rx: &mut Consumer, bell: &Notify, n: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < n {
            match rx.take().expect("ring corrupt") {
                Some(m) => out.push(m.to_vec()),
                None => {
                    if rx.prepare_sleep() {
                        bell.wait();
                        rx.end_sleep();
                    }
                }
            }
        }
        out
    }
}
