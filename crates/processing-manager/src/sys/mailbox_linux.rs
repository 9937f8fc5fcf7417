//! Linux: a shared-memory mailbox per local connection, so that a call costs no system call
//! while both sides are awake. It is two of processing-shm's SPSC rings
//! ([`processing_shm::spsc`]) in one mapped file, one per direction (requests, responses): the
//! sender writes the message into its ring and commits it; the receiver spins on the ring for
//! a bounded, adaptive time, then sleeps on the ring's futex word (the sender wakes it only if
//! it announced that it sleeps).
//!
//! The socket stays open beside the mailbox: messages larger than a ring keeps travel on it,
//! announced by an empty message in the ring (a real message is never empty: a request
//! starts with its object id, a response with its status), and its end of stream is how a
//! sleeping side notices that its peer died.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use processing_core::os::SpinPolicy;
use processing_shm::spsc::{Consumer, Mapping, Producer, Size};

/// Each direction's ring: 128 KiB of entries, messages up to 64 KiB − 64 bytes (larger ones
/// go over the socket). One message is in flight per direction (request, then response), so
/// the ring only needs room for the largest.
#[cfg(not(loom))]
const RING: Size = Size {
    capacity: 128 * 1024,
    max_message: 64 * 1024 - 64,
};
/// Each direction's ring (small under loom: fewer checked bytes).
#[cfg(loom)]
const RING: Size = Size {
    capacity: 64,
    max_message: 16,
};
/// The mapping: the request ring, then the response ring.
const SIZE: usize = 2 * RING.bytes();
/// How long a sleeping side sleeps before checking that its peer is still there.
const NAP: Duration = Duration::from_millis(100);

/// Which side of the mailbox this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

/// One mapped mailbox.
#[derive(Debug)]
pub(crate) struct Mailbox {
    /// This side's outgoing ring (requests for a client, responses for the server).
    out: Producer,
    /// The peer's ring.
    inbox: Consumer,
    /// How long to spin before sleeping (learnt from this side's waits; no spin while the
    /// machine is oversubscribed).
    waits: SpinPolicy,
}

impl Mailbox {
    /// Creates a mailbox file at `path` (which must not exist) and maps it.
    #[cfg(not(loom))]
    pub(crate) fn create(path: &Path) -> io::Result<Mailbox> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.set_len(SIZE as u64)?;
        // processing-shm's one mapping type; a plain file cannot be sealed, so it lives in the
        // server's private 0700 directory and is unlinked once mapped.
        let region = processing_shm::Region::from_file(file, SIZE)?;
        Mailbox::map(Arc::new(region), Side::Client)
    }

    /// Maps the mailbox file at `path` created by a client.
    #[cfg(not(loom))]
    pub(crate) fn open(path: &Path) -> io::Result<Mailbox> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let region = processing_shm::Region::from_file(file, SIZE)?;
        Mailbox::map(Arc::new(region), Side::Server)
    }

    /// Under loom rings live on the heap (see `model`): no mailbox files.
    #[cfg(loom)]
    pub(crate) fn create(_path: &Path) -> io::Result<Mailbox> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Under loom rings live on the heap (see `model`): no mailbox files.
    #[cfg(loom)]
    pub(crate) fn open(_path: &Path) -> io::Result<Mailbox> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn map(map: Arc<Mapping>, side: Side) -> io::Result<Mailbox> {
        let (out, inbox) = match side {
            Side::Client => (0, RING.bytes()),
            Side::Server => (RING.bytes(), 0),
        };
        Ok(Mailbox {
            out: Producer::new(map.clone(), out, RING)?,
            inbox: Consumer::new(map, inbox, RING)?,
            waits: SpinPolicy::new(),
        })
    }

    /// Writes `parts` (not all empty) as the next message; `false` means it is too large:
    /// the ring now holds the "on the socket" announcement, and the caller must `publish`
    /// first, then send the message there.
    pub(crate) fn write(&mut self, parts: &[&[u8]]) -> bool {
        debug_assert!(parts.iter().any(|p| !p.is_empty()), "an empty message");
        if self.out.write(parts).is_ok() {
            return true;
        }
        // An empty message always fits.
        let _ = self.out.write(&[]);
        false
    }

    /// Makes the written message visible and wakes the peer if it sleeps.
    pub(crate) fn publish(&mut self) {
        if self.out.commit() {
            self.out.wake();
        }
    }

    /// Waits for the next message: spins as its `SpinPolicy` allows, then sleeps, calling `cancelled` every
    /// 100 ms. Returns `Some(len)` with the message copied into `buf`, or `None` when it
    /// travels on the socket.
    pub(crate) fn read(
        &mut self,
        buf: &mut Vec<u8>,
        mut cancelled: impl FnMut() -> Option<io::Error>,
    ) -> io::Result<Option<usize>> {
        let began = Instant::now();
        // (Under loom a wait goes straight to its sleep, a yield: no timing in the model.)
        if !self.inbox.has_data() {
            if !self.waits.spin_until(|| self.inbox.has_data()) {
                self.inbox.sleep(NAP, &mut cancelled)?;
            }
            self.waits.record(began.elapsed());
        }
        let corrupt = || io::Error::new(io::ErrorKind::InvalidData, "mailbox ring corrupt");
        let message = self
            .inbox
            .take()
            .map_err(|_| corrupt())?
            .ok_or_else(corrupt)?;
        if message.is_empty() {
            self.inbox.release();
            return Ok(None);
        }
        buf.clear();
        buf.extend_from_slice(message);
        self.inbox.release();
        Ok(Some(buf.len()))
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

/// The mailbox over a heap region, for `tests/loom_*.rs` (see [`crate::model`]).
#[cfg(loom)]
pub(crate) mod model;
