//! Linux: a shared-memory mailbox per local connection, so that a call costs no system call
//! while both sides are awake: the sender writes the message into its slot and bumps the slot's
//! sequence number; the receiver spins on that number for a bounded time, then sleeps on it
//! with `futex` (the sender wakes it only if it announced that it sleeps).
//!
//! The socket stays open beside the mailbox: messages larger than a slot travel on it, and its
//! end of stream is how a sleeping side notices that its peer died.

use std::cell::UnsafeCell;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use processing_shm::Region;

use crate::loom::{futex_wait, futex_wake, AtomicU32, Ordering};

/// Bytes of payload a slot holds; larger messages go over the socket.
const CAPACITY: usize = 64 * 1024 - 64;
/// `len` value meaning "this message travels on the socket".
const ON_SOCKET: u32 = u32::MAX;
/// Checks of the sequence number before the spin starts yielding between checks.
const PURE_SPIN_CHECKS: u32 = 200;
/// The shortest spin budget.
const MIN_SPIN: Duration = Duration::from_micros(4);
/// How long a sleeping side sleeps before checking that its peer is still there.
const NAP: Duration = Duration::from_millis(100);

#[repr(C)]
struct Slot {
    seq: AtomicU32,
    sleeping: AtomicU32,
    len: AtomicU32,
    _pad: [u8; 52],
    /// Written by the slot's sender while the receiver does not read it (see `write`/`read`):
    /// shared mutable bytes, hence `UnsafeCell`, only ever accessed through raw pointers.
    data: UnsafeCell<[u8; CAPACITY]>,
}

#[repr(C)]
struct Shared {
    request: Slot,
    response: Slot,
}

const SIZE: usize = std::mem::size_of::<Shared>();

/// Which side of the mailbox this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

/// One mapped mailbox.
#[derive(Debug)]
pub(crate) struct Mailbox {
    /// The mapped file, unmapped on drop (processing-shm's one mapping type; a plain file cannot be sealed, so
    /// it lives in the server's private 0700 directory and is unlinked once mapped).
    _region: Region,
    base: *mut Shared,
    side: Side,
    /// Sequence number of the last message received.
    received: std::cell::Cell<u32>,
    /// The current spin budget (adapted per wait).
    spin: std::cell::Cell<Duration>,
}

// SAFETY: the mapping is owned by this value and only touched through atomics and through the
// data area of a slot while the protocol gives this side exclusive use of it.
unsafe impl Send for Mailbox {}

impl Mailbox {
    /// Creates a mailbox file at `path` (which must not exist) and maps it.
    pub(crate) fn create(path: &Path) -> io::Result<Mailbox> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.set_len(SIZE as u64)?;
        Mailbox::map(Region::from_file(file, SIZE)?, Side::Client)
    }

    /// Maps the mailbox file at `path` created by a client.
    pub(crate) fn open(path: &Path) -> io::Result<Mailbox> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Mailbox::map(Region::from_file(file, SIZE)?, Side::Server)
    }

    fn map(region: Region, side: Side) -> io::Result<Mailbox> {
        Ok(Mailbox {
            base: region.as_ptr().as_ptr().cast(),
            _region: region,
            side,
            received: std::cell::Cell::new(0),
            spin: std::cell::Cell::new(MIN_SPIN),
        })
    }

    fn slots(&self) -> (&Slot, &Slot) {
        // SAFETY: `base` points to a live mapping of a `Shared` for the lifetime of `self`;
        // the atomics are shared, the data areas are only accessed through raw pointers below.
        let shared = unsafe { &*self.base };
        match self.side {
            Side::Client => (&shared.request, &shared.response),
            Side::Server => (&shared.response, &shared.request),
        }
    }

    /// Writes `parts` as the next message; `false` means it is too large: the slot now says
    /// "on the socket", and the caller must `publish` first, then send the message there.
    pub(crate) fn write(&mut self, parts: &[&[u8]]) -> bool {
        let (out, _) = self.slots();
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > CAPACITY {
            out.len.store(ON_SOCKET, Ordering::Relaxed);
            return false;
        }
        let data = out.data.get().cast::<u8>();
        let mut at = 0;
        for p in parts {
            // SAFETY: `at + p.len() <= total <= CAPACITY`, inside our outgoing slot, which the
            // peer does not read until `publish` bumps the sequence number.
            unsafe {
                crate::loom::wrote(data.add(at), p.len());
                std::ptr::copy_nonoverlapping(p.as_ptr(), data.add(at), p.len())
            };
            at += p.len();
        }
        out.len.store(total as u32, Ordering::Relaxed);
        true
    }

    /// Makes the written message visible and wakes the peer if it sleeps.
    pub(crate) fn publish(&mut self) {
        let (out, _) = self.slots();
        out.seq.fetch_add(1, Ordering::SeqCst);
        if out.sleeping.load(Ordering::SeqCst) != 0 {
            futex_wake(&out.seq, u32::MAX);
        }
    }

    /// Waits for the next message: spins for `spin`, then sleeps, calling `cancelled` every
    /// 100 ms. Returns `Some(len)` with the message copied into `buf`, or `None` when it
    /// travels on the socket.
    pub(crate) fn read(
        &mut self,
        buf: &mut Vec<u8>,
        spin: Duration,
        mut cancelled: impl FnMut() -> Option<io::Error>,
    ) -> io::Result<Option<usize>> {
        let expected = self.received.get().wrapping_add(1);
        let (_, inbox) = self.slots();
        let began = Instant::now();
        // The spin adapts: it shrinks while messages keep arriving only after it gave up (a
        // busy or oversubscribed machine, where spinning only delays the peer), and grows back
        // while they arrive within it. Past a short pure spin it yields the CPU between checks,
        // so that a peer waiting for this core gets to run.
        let budget = self.spin.get().min(spin);
        let mut checks = 0u32;
        while inbox.seq.load(Ordering::Acquire) != expected {
            checks += 1;
            if checks > PURE_SPIN_CHECKS {
                std::thread::yield_now();
            }
            // (Under loom a wait goes straight to its sleep, a yield: no timing in the model.)
            if cfg!(loom) || began.elapsed() >= budget {
                self.spin.set((budget / 2).max(MIN_SPIN));
                loop {
                    inbox.sleeping.store(1, Ordering::SeqCst);
                    let now = inbox.seq.load(Ordering::SeqCst);
                    if now == expected {
                        break;
                    }
                    futex_wait(&inbox.seq, now, Some(NAP));
                    if inbox.seq.load(Ordering::SeqCst) == expected {
                        break;
                    }
                    if let Some(e) = cancelled() {
                        inbox.sleeping.store(0, Ordering::SeqCst);
                        return Err(e);
                    }
                }
                inbox.sleeping.store(0, Ordering::SeqCst);
                break;
            }
            std::hint::spin_loop();
        }
        if began.elapsed() < budget {
            self.spin
                .set((budget * 2).clamp(MIN_SPIN, spin.max(MIN_SPIN)));
        }
        self.received.set(expected);
        let len = inbox.len.load(Ordering::Acquire);
        if len == ON_SOCKET {
            return Ok(None);
        }
        let len = len as usize;
        if len > CAPACITY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "mailbox message length out of range",
            ));
        }
        buf.clear();
        buf.reserve(len);
        let data = inbox.data.get().cast::<u8>().cast_const();
        // SAFETY: `len <= CAPACITY` bytes inside the peer's slot, which it does not write again
        // until we answer; `buf` has room for `len` bytes, set as its length after the copy.
        unsafe {
            crate::loom::read(data, len);
            std::ptr::copy_nonoverlapping(data, buf.as_mut_ptr(), len);
            buf.set_len(len);
        }
        Ok(Some(len))
    }
}

/// A fresh mailbox path next to a local socket path (inside its private directory).
pub(crate) fn mailbox_path(socket: &Path) -> Option<PathBuf> {
    let dir = socket.parent()?;
    let tag: String = processing_core::authkey::random_bytes(8)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(dir.join(format!("mb-{tag}")))
}

/// The mailbox over loom's atomics, for `tests/loom_*.rs` (see [`crate::model`]).
#[cfg(loom)]
pub(crate) mod model;
