//! The shared memory behind a queue: its own segment, and spill segments for items larger than
//! a quarter of the ring. Both are `processing_shm::SharedMemory` segments, whose lifetime is
//! refcounted across processes (and cleaned by the resource tracker after crashes).
//!
//! A spill segment outlives its producer because the ring holds its *serialized* handle: a
//! handle in flight keeps a segment alive until a receiver attaches. The consumer attaches
//! (deserializing the reference), reads the item, and removes the name.

use std::ptr::NonNull;

use processing_shm::SharedMemory;

use super::error::QueueError;

/// A mapped, named segment.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    shm: SharedMemory,
}

fn segment_error(e: processing_shm::ShmError) -> QueueError {
    QueueError::Segment(e)
}

impl Segment {
    /// Creates a zero-filled segment of `len` bytes with a fresh name.
    pub(crate) fn create(len: usize) -> Result<Segment, QueueError> {
        Segment::create_shm(len).map_err(segment_error)
    }

    /// [`create`](Segment::create), keeping the shared-memory error as it is.
    pub(crate) fn create_shm(len: usize) -> Result<Segment, processing_shm::ShmError> {
        SharedMemory::create(len).map(|shm| Segment { shm })
    }

    /// Wraps a handle received in a message.
    pub(crate) fn from_shared_memory(shm: SharedMemory) -> Segment {
        Segment { shm }
    }

    /// The handle, for serializing.
    pub(crate) fn shared_memory(&self) -> &SharedMemory {
        &self.shm
    }

    /// Removes the name; the memory lives until the last handle is dropped.
    pub(crate) fn unlink(&self) {
        if let Err(e) = self.shm.unlink() {
            tracing::debug!(name = self.shm.name(), error = %e, "cannot unlink queue segment");
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.shm.name()
    }

    pub(crate) fn as_ptr(&self) -> NonNull<u8> {
        NonNull::new(self.shm.as_ptr()).unwrap_or(NonNull::dangling())
    }

    pub(crate) fn len(&self) -> usize {
        self.shm.len()
    }
}
