//! The reply ring (`backend/ring.rs`) over loom's atomics and a heap region, exposed under
//! `cfg(loom)` for `tests/loom_*.rs`. Its capacity is [`CAPACITY`] bytes under loom (so that
//! models wrap around); entries are `u32 length` + payload, padded to 8 bytes.
#![allow(missing_docs)]

use crate::backend::ring::Ring;

/// Bytes of entries of the ring under loom.
pub const CAPACITY: usize = crate::backend::ring::CAPACITY;
/// The largest entry (length word included) the ring keeps.
pub const MAX_ENTRY: usize = crate::backend::ring::MAX_ENTRY;

/// The ring held an impossible entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// One reply ring shared by a producer (the worker) and a consumer (its supervisor).
#[derive(Debug)]
pub struct ReplyRing(Ring);

impl Default for ReplyRing {
    fn default() -> Self {
        ReplyRing::new()
    }
}

impl ReplyRing {
    pub fn new() -> ReplyRing {
        ReplyRing(Ring::model())
    }

    /// Producer: appends an entry holding `payload` (waiting for room); true when the consumer
    /// announced it sleeps and must be woken.
    pub fn push(&self, payload: &[u8]) -> bool {
        let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(payload);
        assert!(
            Ring::fits(frame.len()),
            "entry too large for the model ring"
        );
        self.0.push(&frame)
    }

    /// Consumer: the payload of the entry at `pos` and the position after it, if published;
    /// `Err` if the ring is corrupt. The caller releases with [`release`](Self::release).
    pub fn take(&self, pos: u64) -> Result<Option<(Vec<u8>, u64)>, Corrupt> {
        match self.0.peek(pos) {
            Ok(Some((off, len, next))) => Ok(Some((self.0.entry(off, len)[4..].to_vec(), next))),
            Ok(None) => Ok(None),
            Err(_) => Err(Corrupt),
        }
    }

    /// Consumer: gives the bytes before `pos` back to the producer.
    pub fn release(&self, pos: u64) {
        self.0.release(pos);
    }

    /// Consumer: announces a sleep; false (not sleeping) if an entry arrived meanwhile.
    pub fn prepare_sleep(&self, pos: u64) -> bool {
        self.0.prepare_sleep(pos)
    }

    /// Consumer: awake again.
    pub fn end_sleep(&self) {
        self.0.end_sleep();
    }
}
