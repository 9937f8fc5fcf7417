//! The queue ring over a heap region, for `tests/loom_*.rs` (see [`crate::model`]).

use std::ptr::NonNull;

use processing_shm::model::HeapRegion;

use super::park::Deadline;
use super::ring::{FrameKind, GetFail, PutFail, Ring};

/// A queue ring of `capacity` bytes (a power of two) in a model region.
#[derive(Debug)]
pub struct QueueRing {
    ring: Ring,
    _region: HeapRegion,
}

/// How a model's put or get ended, when it did not deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// Non-blocking put on a full ring / get on an empty one.
    WouldBlock,
    /// The queue was closed.
    Closed,
    /// Anything else (a timeout cannot happen in a model; a corrupt frame must not).
    Other,
}

impl From<PutFail> for Fail {
    fn from(e: PutFail) -> Fail {
        match e {
            PutFail::Full => Fail::WouldBlock,
            PutFail::Closed => Fail::Closed,
            PutFail::Timeout | PutFail::Overflow => Fail::Other,
        }
    }
}

impl QueueRing {
    /// A fresh ring; `max_items` 0 bounds it by bytes only.
    pub fn new(capacity: u64, max_items: u64) -> QueueRing {
        assert!(capacity.is_power_of_two() && capacity >= 32);
        let len = Ring::region_len(capacity);
        let region = HeapRegion::new(len);
        let base: NonNull<u8> = region.as_ptr();
        // SAFETY: the region is zero-filled, page-aligned, `len` bytes, unused so far, and is
        // kept alive with the ring.
        let ring = unsafe { Ring::init(base, len, capacity, max_items) };
        QueueRing {
            ring,
            _region: region,
        }
    }

    /// The largest payload a put takes.
    pub fn max_inline(&self) -> usize {
        self.ring.max_inline()
    }

    /// Puts `payload`, waiting for room if `wait`.
    pub fn put(&self, payload: &[u8], wait: bool) -> Result<(), Fail> {
        let deadline = if wait { Deadline::Never } else { Deadline::Now };
        self.ring
            .put(FrameKind::Inline, payload, deadline, None)
            .map_err(Fail::from)
    }

    /// Takes the oldest payload, waiting for one if `wait`.
    pub fn get(&self, wait: bool) -> Result<Vec<u8>, Fail> {
        let deadline = if wait { Deadline::Never } else { Deadline::Now };
        match self
            .ring
            .get(deadline, |kind, bytes| (kind, bytes.to_vec()), &|read| {
                Err(read)
            }) {
            Ok((FrameKind::Inline, bytes)) => Ok(bytes),
            Ok(_) => Err(Fail::Other),
            Err(GetFail::Empty) => Err(Fail::WouldBlock),
            Err(GetFail::Closed) => Err(Fail::Closed),
            Err(GetFail::Timeout | GetFail::Corrupt) => Err(Fail::Other),
        }
    }

    /// Closes the queue, waking every waiter.
    pub fn close(&self) {
        self.ring.close();
    }

    /// Items put and not yet got.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether no item is in the ring.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An unbounded queue's ring with its overflow chain, as one process sees it: the ring over
/// a model region (shared by every [`view`](ChainQueue::view)) and this process's
/// [`Chain`](super::segment::Chain), whose segments are [`ChainSegment`]s.
#[derive(Debug)]
pub struct ChainQueue {
    ring: Ring,
    chain: super::segment::Chain,
    region: HeapRegion,
}

impl ChainQueue {
    /// A fresh unbounded queue whose ring holds `capacity` bytes (at least the smallest queue
    /// ring: chain segments are rings of the same size and must attach).
    pub fn new(capacity: u64) -> ChainQueue {
        assert!(capacity.is_power_of_two() && capacity >= super::ring::MIN_CAPACITY);
        // The table of segment names is a model static: create it before any thread runs.
        let _ = registry();
        let len = Ring::region_len(capacity);
        let region = HeapRegion::tracking_from(len, super::ring::HEADER_BYTES);
        // SAFETY: the region is zero-filled, page-aligned, `len` bytes, unused so far, and is
        // kept alive with the ring.
        let ring = unsafe { Ring::init(region.as_ptr(), len, capacity, 0) };
        ChainQueue {
            ring,
            chain: super::segment::Chain::default(),
            region,
        }
    }

    /// The same queue as another process attaches it (its own chain cache).
    pub fn view(&self) -> ChainQueue {
        let region = self.region.clone();
        // SAFETY: the region is initialised and stays alive with the returned ring.
        let ring = unsafe { Ring::attach(region.as_ptr(), region.len()) }.expect("a queue ring");
        ChainQueue {
            ring,
            chain: super::segment::Chain::default(),
            region,
        }
    }

    /// The largest payload a put takes.
    pub fn max_inline(&self) -> usize {
        self.ring.max_inline()
    }

    /// Puts `payload`: into the ring, or into the overflow chain when the ring is full or the
    /// chain is active (never waits for room).
    pub fn put(&self, payload: &[u8]) -> Result<(), Fail> {
        let chain = |kind: FrameKind, bytes: &[u8]| self.chain.put(&self.ring, kind, bytes);
        self.ring
            .put(FrameKind::Inline, payload, Deadline::Never, Some(&chain))
            .map_err(Fail::from)
    }

    /// Takes the oldest payload (the ring's, then the chain's), waiting for one if `wait`.
    pub fn get(&self, wait: bool) -> Result<Vec<u8>, Fail> {
        let deadline = if wait { Deadline::Never } else { Deadline::Now };
        let read = |kind: FrameKind, bytes: &[u8]| match kind {
            FrameKind::Inline => Ok(bytes.to_vec()),
            _ => Err(Fail::Other),
        };
        let chain = |read| match self.chain.take(&self.ring, read) {
            Ok(Ok(got)) => Ok(got),
            // A chain segment that cannot be opened: its item is lost.
            Ok(Err(_)) => Ok(Err(Fail::Other)),
            Err(read) => Err(read),
        };
        match self.ring.get(deadline, read, &chain) {
            Ok(got) => got,
            Err(GetFail::Empty) => Err(Fail::WouldBlock),
            Err(GetFail::Closed) => Err(Fail::Closed),
            Err(GetFail::Timeout | GetFail::Corrupt) => Err(Fail::Other),
        }
    }

    /// Whether puts go to the overflow chain.
    pub fn chain_active(&self) -> bool {
        self.ring
            .overflow()
            .active
            .load(crate::loom::Ordering::Acquire)
            != 0
    }

    /// Items put and not yet got (the chain's included).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether no item is in the queue.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Chain segments that still have a name or a handle in flight (0 once every drained
    /// segment was removed).
    pub fn segments_left() -> usize {
        let table = lock(registry());
        table.names.len() + table.in_flight.len()
    }
}

/// The segment names of the model and the handles in flight (what the system's shared-memory
/// names and serialized handles are in a real run). A plain std mutex: opening a segment by
/// name must add no happens-before edge the protocol does not make itself.
#[derive(Default)]
struct Registry {
    next: u64,
    names: std::collections::HashMap<String, HeapRegion>,
    in_flight: Vec<(String, HeapRegion)>,
}

loom::lazy_static! {
    static ref REGISTRY: std::sync::Mutex<Registry> = std::sync::Mutex::new(Registry::default());
}

fn registry() -> &'static std::sync::Mutex<Registry> {
    &REGISTRY
}

fn lock(m: &std::sync::Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A chain segment under loom: a model region registered under a fresh name, with the
/// operations `segment.rs` uses on a named segment.
#[derive(Debug)]
pub(crate) struct ChainSegment {
    name: String,
    region: HeapRegion,
}

impl ChainSegment {
    pub(crate) fn create(len: usize) -> Result<ChainSegment, super::error::QueueError> {
        let region = HeapRegion::tracking_from(len, super::ring::HEADER_BYTES);
        let mut table = lock(registry());
        table.next += 1;
        let name = format!("chain-{}", table.next);
        table.names.insert(name.clone(), region.clone());
        Ok(ChainSegment { name, region })
    }

    pub(crate) fn open_named(name: &str) -> Result<ChainSegment, String> {
        let table = lock(registry());
        let region = table
            .names
            .get(name)
            .cloned()
            .ok_or_else(|| format!("no chain segment named {name:?}"))?;
        Ok(ChainSegment {
            name: name.to_string(),
            region,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn as_ptr(&self) -> NonNull<u8> {
        self.region.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.region.len()
    }

    pub(crate) fn handle_in_flight(&self) -> Result<Vec<u8>, String> {
        lock(registry())
            .in_flight
            .push((self.name.clone(), self.region.clone()));
        Ok(self.name.as_bytes().to_vec())
    }

    pub(crate) fn release_handle(handle: &[u8]) {
        let mut table = lock(registry());
        if let Some(i) = table
            .in_flight
            .iter()
            .position(|(n, _)| n.as_bytes() == handle)
        {
            table.in_flight.swap_remove(i);
        }
    }

    pub(crate) fn unlink(&self) {
        lock(registry()).names.remove(&self.name);
    }

    pub(crate) fn remove(name: &[u8], handle: &[u8]) {
        ChainSegment::release_handle(handle);
        if let Ok(name) = std::str::from_utf8(name) {
            lock(registry()).names.remove(name);
        }
    }
}
