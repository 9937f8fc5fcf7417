//! The shared memory behind a queue: its own segment, spill segments for items larger than
//! a quarter of the ring, and the overflow chain of an unbounded queue ([`Chain`]). Both are `processing_shm::SharedMemory` segments, whose lifetime is
//! refcounted across processes (and cleaned by the resource tracker after crashes).
//!
//! A spill segment outlives its producer because the ring holds its *serialized* handle: a
//! handle in flight keeps a segment alive until a receiver attaches. The consumer attaches
//! (deserializing the reference), reads the item, and removes the name.

use crate::loom::Ordering;
use std::ptr::NonNull;
use std::sync::Mutex;

use processing_shm::SharedMemory;

use super::error::QueueError;
use super::park::Deadline;
use super::ring::{FrameKind, GetFail, PutFail, Ring, Slot};

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

    /// Opens the segment named `name` (a chain segment named in shared memory).
    #[cfg_attr(loom, allow(dead_code))]
    fn open_named(name: &str) -> Result<Segment, String> {
        SharedMemory::open(name)
            .map(Segment::from_shared_memory)
            .map_err(|e| e.to_string())
    }

    /// A serialized handle that keeps this segment alive while no process holds it.
    #[cfg_attr(loom, allow(dead_code))]
    fn handle_in_flight(&self) -> Result<Vec<u8>, String> {
        processing_core::codec::encode(&self.shm).map_err(|e| e.to_string())
    }

    /// Takes a handle made by [`handle_in_flight`](Self::handle_in_flight) back.
    #[cfg_attr(loom, allow(dead_code))]
    fn release_handle(handle: &[u8]) {
        if let Ok(shm) = processing_core::codec::decode::<SharedMemory>(handle) {
            drop(shm);
        }
    }

    /// Removes the segment named `name` whose handle in flight is `handle` (either may be
    /// unusable: a process killed mid-way).
    #[cfg_attr(loom, allow(dead_code))]
    fn remove(name: &[u8], handle: &[u8]) {
        if let Ok(shm) = processing_core::codec::decode::<SharedMemory>(handle) {
            let _ = shm.unlink();
        } else if let Ok(text) = std::str::from_utf8(name) {
            if let Ok(shm) = SharedMemory::open(text) {
                let _ = shm.unlink();
            }
        }
    }
}

/// The memory of a chain segment: a named segment; under loom a model segment of the same
/// interface (`queue/model.rs`: heap regions in a table of names, the loom models of the
/// chain in `tests/loom_u06_queue_chain.rs`).
#[cfg(not(loom))]
type ChunkMem = Segment;
#[cfg(loom)]
type ChunkMem = super::model::ChainSegment;

/// One segment of an unbounded queue's overflow chain: a ring of the queue's format (without
/// an item bound) in a segment of its own.
#[derive(Debug)]
struct Chunk {
    name: Vec<u8>,
    ring: Ring,
    // Declared after `ring`, which points into it: dropped last.
    segment: ChunkMem,
}

impl Chunk {
    fn create(capacity: u64) -> Result<Chunk, QueueError> {
        let segment = ChunkMem::create(Ring::region_len(capacity))?;
        // SAFETY: the segment was just created: zero-filled, page-aligned, large enough and
        // unknown to anyone else; `Chunk` keeps it mapped as long as the ring.
        let ring = unsafe { Ring::init(segment.as_ptr(), segment.len(), capacity, 0) };
        Ok(Chunk {
            name: segment.name().as_bytes().to_vec(),
            ring,
            segment,
        })
    }

    fn open(name: &[u8]) -> Result<Chunk, String> {
        let text = std::str::from_utf8(name).map_err(|e| e.to_string())?;
        let segment = ChunkMem::open_named(text)?;
        // SAFETY: the segment stays mapped for as long as `Chunk` holds it next to the ring;
        // it is shared only with other queue handles, which follow the ring protocol.
        let ring = unsafe { Ring::attach(segment.as_ptr(), segment.len()) }
            .map_err(|e| format!("not a queue chain segment: {e:?}"))?;
        Ok(Chunk {
            name: name.to_vec(),
            ring,
            segment,
        })
    }

    /// The serialized handle that keeps this segment alive while no process holds it.
    fn handle_in_flight(&self) -> Result<Vec<u8>, String> {
        self.segment.handle_in_flight()
    }
}

/// Takes a handle in flight back (see [`Chunk::handle_in_flight`]) and removes the segment.
fn retire(handle: &[u8], chunk: Chunk) {
    ChunkMem::release_handle(handle);
    chunk.segment.unlink();
}

/// The overflow chain of an unbounded queue, as this process sees it.
///
/// When the ring of a queue without an item bound is full, a put goes to the chain instead of
/// waiting: a list of segments, each a ring of the queue's format. While the chain is active,
/// every put goes to its newest segment (a full one gets a successor), and gets take from the
/// ring until it is empty, then from the oldest segment; so items stay in order. A segment is
/// removed once drained; the consumer that finds the whole chain empty (holding both locks, so
/// no put is under way) ends it, and puts go to the ring again.
///
/// A put that returned is durable: each chain segment is kept alive by a handle in flight
/// stored in shared memory (the queue's `overflow.head`, or its predecessor's `overflow.next`),
/// like a spilled item's, so it survives its producer's death; the consumer that drains it
/// takes that handle back and removes the name. A process killed between two of these steps
/// leaves at most a segment that the resource tracker removes when the program ends.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    /// The newest segment, as last attached by a producer of this process.
    tail: Mutex<Option<Chunk>>,
    /// The oldest segment, as last attached by a consumer of this process.
    head: Mutex<Option<Chunk>>,
}

/// Attaches the segment named in `slot` unless `cache` already holds it.
fn cached<'a>(cache: &'a mut Option<Chunk>, slot: &Slot) -> Result<&'a Chunk, String> {
    if cache.as_ref().is_none_or(|c| !slot.names(&c.name)) {
        *cache = None;
        *cache = Some(Chunk::open(&slot.get().0)?);
    }
    cache.as_ref().ok_or_else(|| "no chain segment".to_string())
}

impl Chain {
    /// Stores a frame in the chain (the queue's put lock is held).
    pub(crate) fn put(&self, root: &Ring, kind: FrameKind, payload: &[u8]) -> Result<(), PutFail> {
        let ov = root.overflow();
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        if ov.active.load(Ordering::Acquire) == 0 {
            // Start the chain with a first segment holding this item.
            let chunk = new_chunk(root.capacity())?;
            chunk
                .ring
                .put(kind, payload, Deadline::Now, None)
                .map_err(|_| PutFail::Overflow)?;
            let handle = chunk.handle_in_flight().map_err(chain_error)?;
            ov.head.set(&chunk.name, &handle);
            ov.tail.set(&chunk.name, &[]);
            ov.put.fetch_add(1, Ordering::AcqRel);
            ov.active.store(1, Ordering::Release);
            *tail = Some(chunk);
            return Ok(());
        }
        // The tail is the end of the links. A producer killed between linking a successor and
        // naming it the tail left `ov.tail` one segment behind: follow the links first, or a
        // put into the old segment (once a get made room in it) would land behind an item
        // the consumer has already passed, and be lost.
        loop {
            let current = cached(&mut tail, &ov.tail).map_err(chain_error)?;
            let link = current.ring.overflow();
            if link.has_next.load(Ordering::Acquire) == 0 {
                break;
            }
            let (name, _) = link.next.get();
            ov.tail.set(&name, &[]);
        }
        let current = cached(&mut tail, &ov.tail).map_err(chain_error)?;
        if current.ring.put(kind, payload, Deadline::Now, None).is_ok() {
            ov.put.fetch_add(1, Ordering::AcqRel);
            return Ok(());
        }
        // The newest segment is full: link a successor (twice its size) holding this item.
        let chunk = new_chunk(current.ring.capacity().saturating_mul(2))?;
        chunk
            .ring
            .put(kind, payload, Deadline::Now, None)
            .map_err(|_| PutFail::Overflow)?;
        let handle = chunk.handle_in_flight().map_err(chain_error)?;
        let link = current.ring.overflow();
        link.next.set(&chunk.name, &handle);
        link.has_next.store(1, Ordering::Release);
        ov.tail.set(&chunk.name, &[]);
        ov.put.fetch_add(1, Ordering::AcqRel);
        *tail = Some(chunk);
        Ok(())
    }

    /// Takes the oldest item of the chain (the queue's get lock is held and its ring is
    /// empty); `Err(read)` when the chain was empty, which ends it.
    pub(crate) fn take<R, F: FnOnce(FrameKind, &[u8]) -> R>(
        &self,
        root: &Ring,
        read: F,
    ) -> Result<Result<R, GetFail>, F> {
        let ov = root.overflow();
        let mut head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let current = match cached(&mut head, &ov.head) {
                Ok(c) => c,
                Err(e) => {
                    // The chain's segment is gone (removed by hand?): its items are lost.
                    tracing::error!(error = %e, "queue overflow segment lost; dropping the chain");
                    let _put = root.lock_put();
                    end_chain(root);
                    return Ok(Err(GetFail::Corrupt));
                }
            };
            if current.ring.len() != 0 {
                // Only consumers holding the queue's get lock take from the chain: the item
                // counted is there.
                let got = current.ring.get(Deadline::Now, read, &|r| Err(r));
                ov.got.fetch_add(1, Ordering::AcqRel);
                return Ok(got);
            }
            let link = current.ring.overflow();
            if link.has_next.load(Ordering::Acquire) != 0 {
                // Drained, and nothing is put here any more: move on, then remove it.
                let (_, handle) = ov.head.get();
                ov.head.copy_from(&link.next);
                if let Some(done) = head.take() {
                    retire(&handle, done);
                }
                continue;
            }
            // Possibly the end: with the put lock, no put is under way.
            let put = root.lock_put();
            if current.ring.len() == 0 && link.has_next.load(Ordering::Acquire) == 0 {
                end_chain(root);
                drop(put);
                if let Some(done) = head.take() {
                    // `end_chain` took the handle out of the slot; it is in `done`'s place.
                    drop(done);
                }
                return Err(read);
            }
            drop(put);
        }
    }
}

/// Ends the chain (both locks held): puts go to the ring again; the last segment is removed.
fn end_chain(root: &Ring) {
    let ov = root.overflow();
    let (name, handle) = ov.head.get();
    ov.head.clear();
    ov.tail.clear();
    // Counters meet again (a process killed inside a chain put may have left them apart).
    ov.got
        .store(ov.put.load(Ordering::Acquire), Ordering::Release);
    ov.active.store(0, Ordering::Release);
    ChunkMem::remove(&name, &handle);
}

/// A chain segment of `capacity` bytes of ring (at most the largest ring): at least the
/// queue's own, so that every frame of the queue fits; doubling along the chain, so that a long
/// chain has few segments and its memory stays within about twice what it holds.
fn new_chunk(capacity: u64) -> Result<Chunk, PutFail> {
    Chunk::create(capacity.min(super::ring::MAX_CAPACITY)).map_err(|e| chain_error(e.to_string()))
}

fn chain_error(e: String) -> PutFail {
    tracing::warn!(error = %e, "cannot extend a queue's overflow chain: the put fails");
    PutFail::Overflow
}
