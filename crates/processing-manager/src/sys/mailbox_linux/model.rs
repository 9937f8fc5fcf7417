//! The mailbox over a heap region, for `tests/loom_u05_mailbox.rs` (see [`crate::model`]): a
//! client and a server end over one region holding both rings.

use std::sync::Arc;

use processing_shm::model::HeapRegion;
use processing_shm::spsc;

use super::*;

/// One side of a mailbox (client or server).
#[derive(Debug)]
pub struct End {
    mailbox: Mailbox,
}

/// A client and a server end of a fresh mailbox.
pub fn pair() -> io::Result<(End, End)> {
    let map = HeapRegion::tracking_from(SIZE, 0);
    // SAFETY: the region is fresh and page-aligned; the rings lie at 0 and `RING.bytes()` (a
    // multiple of 64), inside it.
    unsafe {
        spsc::build(&map, 0);
        spsc::build(&map, RING.bytes());
    }
    let map = Arc::new(map);
    Ok((
        End {
            mailbox: Mailbox::map(map.clone(), Side::Client)?,
        },
        End {
            mailbox: Mailbox::map(map, Side::Server)?,
        },
    ))
}

impl End {
    /// Writes and publishes `msg` (not empty), or an "on the socket" announcement if `msg` is
    /// larger than the ring keeps.
    pub fn send(&mut self, msg: &[u8]) {
        self.mailbox.write(&[msg]);
        self.mailbox.publish();
    }

    /// Waits for the next message: `Some(bytes)`, or `None` when it travels on the socket;
    /// `cancelled` is asked while it sleeps (the peer-closed check).
    pub fn recv(
        &mut self,
        cancelled: impl FnMut() -> Option<io::Error>,
    ) -> io::Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.mailbox.read(&mut buf, cancelled)?.map(|_| buf))
    }

    /// Bytes of the largest message the ring keeps; a larger one goes on the socket.
    pub fn capacity() -> usize {
        RING.max_message
    }
}
