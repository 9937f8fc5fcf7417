//! Multi-producer, multi-consumer queues across processes: [`Queue`], [`JoinableQueue`],
//! [`SimpleQueue`].
//!
//! A queue is one shared-memory segment: a header of atomics and a byte ring of framed items
//! (each item's postcard encoding). There is no feeder thread: **an item is in shared memory
//! when `put` returns**, so a producer that exits or is killed right after loses nothing, and
//! joining a producer before its items are consumed never deadlocks: a queue without an item
//! bound never makes a put wait (what its ring cannot take goes to overflow segments, in
//! order). Items larger than a quarter of the ring are spilled to a segment of their own,
//! referenced from the ring, which the consumer removes after reading. A process killed in the middle of a put or get leaves the
//! queue usable for everyone else.
//!
//! A queue handle is `Clone + Send + Sync + Serialize + Deserialize`: pass it to a child as a
//! spawn argument, send it through a pipe or put it in another queue; it re-attaches by name.
//!
//! Each operation has its own error type, and a failed put hands the item back in all of them:
//! `put` → [`PutError`], `try_put` → [`TryPutError`] (`Full`), `put_timeout` →
//! [`PutTimeoutError`] (`Timeout`), `get` → [`GetError`], `try_get` → [`TryGetError`]
//! (`Empty`), `get_timeout` → [`GetTimeoutError`] (`Timeout`), `task_done` →
//! [`TaskDoneError`], `join_timeout` → [`JoinTimeoutError`]. A timeout of `Duration::MAX`
//! waits for ever; a zero timeout makes one attempt. The manager's queue proxy and the thread
//! twin (`processing::dummy::Queue`) return the very same types.
//!
//! ```
//! use processing::transport::queue::Queue;
//! let q = Queue::bounded(2).unwrap();
//! q.put((1, "abc".to_string(), 2.5)).unwrap();
//! q.try_put((2, "def".to_string(), 3.5)).unwrap();
//! assert!(q.try_put((3, "ghi".to_string(), 4.5)).unwrap_err().is_full());
//! assert_eq!(q.len(), 2);
//! assert_eq!(q.get().unwrap().0, 1);
//! q.close();
//! assert_eq!(q.get().unwrap().0, 2); // get drains a closed queue ...
//! assert!(q.get().unwrap_err().is_closed()); // ... then reports it closed
//! ```

#[cfg(feature = "async")]
#[path = "async_queue.rs"]
mod async_queue;
mod error;
mod lock;
#[cfg(loom)]
pub(crate) mod model;
mod park;
mod ring;
mod segment;
mod sys;
mod wrappers;

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

#[cfg(feature = "async")]
pub use async_queue::{GetAsync, PutAsync};
pub use error::{
    GetError, GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError, QueueError,
    TaskDoneError, TryGetError, TryPutError,
};
#[doc(hidden)]
pub use error::{GetFailure, PutFailure};
use park::Deadline;
use ring::{FrameKind, GetFail, PutFail, Ring};
use segment::Segment;

/// Bytes of ring a queue gets unless told otherwise.
pub const DEFAULT_CAPACITY_BYTES: usize = 1 << 20;

/// The untyped state shared by every handle of one queue in this process.
#[derive(Debug)]
struct Shared {
    ring: Ring,
    // Declared after `ring`, which points into it: dropped last.
    segment: Segment,
    /// The overflow chain as this process sees it (unbounded queues).
    chain: segment::Chain,
}

/// A reference from the ring to an item spilled into its own segment. Serializing the handle
/// marks it in flight, which keeps the segment alive after its producer is gone.
#[derive(Serialize, Deserialize)]
struct SpillRef {
    segment: processing_shm::SharedMemory,
    len: u64,
}

thread_local! {
    /// Reused encoding buffer: a put of a small item allocates nothing.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Builds a [`Queue`] with chosen bounds.
///
/// Defaults: no item bound, a ring of [`DEFAULT_CAPACITY_BYTES`] (1 MiB).
///
/// ```
/// use processing::transport::queue::{Queue, QueueBuilder};
/// let q: Queue<u64> = QueueBuilder::new().max_items(6).capacity_bytes(64 << 10).build().unwrap();
/// assert_eq!(q.max_items(), Some(6));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct QueueBuilder {
    max_items: Option<usize>,
    capacity_bytes: usize,
}

impl Default for QueueBuilder {
    fn default() -> Self {
        QueueBuilder::new()
    }
}

impl QueueBuilder {
    /// The defaults.
    pub fn new() -> QueueBuilder {
        QueueBuilder {
            max_items: None,
            capacity_bytes: DEFAULT_CAPACITY_BYTES,
        }
    }

    /// At most `n` items at a time (`n ≥ 1`).
    pub fn max_items(mut self, n: usize) -> QueueBuilder {
        self.max_items = Some(n);
        self
    }

    /// Bytes of ring (rounded up to a power of two, 1 KiB to 64 MiB). Items whose encoding is
    /// larger than a quarter of it are spilled to segments of their own. Without
    /// [`max_items`](QueueBuilder::max_items), a full ring sends puts to overflow segments
    /// instead of making them wait; with it, a put waits for room.
    pub fn capacity_bytes(mut self, n: usize) -> QueueBuilder {
        self.capacity_bytes = n;
        self
    }

    /// The checked bounds: the item bound and the ring's byte capacity (rounded up to a power
    /// of two), or [`QueueError::InvalidArgument`]. The thread twin checks its builder with it
    /// too, so that one program is refused alike on both.
    #[doc(hidden)]
    pub fn checked(&self) -> Result<(Option<usize>, u64), QueueError> {
        let capacity = (self.capacity_bytes as u64)
            .checked_next_power_of_two()
            .unwrap_or(u64::MAX);
        if !(ring::MIN_CAPACITY..=ring::MAX_CAPACITY).contains(&capacity) {
            return Err(QueueError::InvalidArgument(format!(
                "capacity_bytes {} is outside 1 KiB ..= 64 MiB",
                self.capacity_bytes
            )));
        }
        if self.max_items == Some(0) {
            return Err(QueueError::InvalidArgument(
                "a bounded queue holds at least one item".into(),
            ));
        }
        Ok((self.max_items, capacity))
    }

    /// Creates the queue.
    pub fn build<T>(self) -> Result<Queue<T>, QueueError> {
        let (max_items, capacity) = self.checked()?;
        // Beyond 2^22 items the ring's byte capacity is the tighter bound anyway.
        let max_items = max_items.map_or(0, |n| (n as u64).min(1 << 22));
        let segment = Segment::create(Ring::region_len(capacity))?;
        // SAFETY: the segment was just created: zero-filled, page-aligned, large enough, and
        // unknown to anyone else; `Shared` keeps it mapped as long as the ring.
        let ring = unsafe { Ring::init(segment.as_ptr(), segment.len(), capacity, max_items) };
        Ok(Queue::from_state(Arc::new(Shared {
            ring,
            segment,
            chain: segment::Chain::default(),
        })))
    }
}

crate::__queue_handle! {
    /// A multi-producer, multi-consumer FIFO queue shared between processes.
    ///
    /// Items are serde values (encoded with postcard). Values holding OS handles (a `Connection`)
    /// cannot travel through a queue on Unix: `put` returns [`PutError::Encode`]. Values holding
    /// shared-memory handles (segments, queues, locks) travel fine.
    ///
    /// A queue without an item bound never makes a put wait: items beyond its ring (1 MiB by
    /// default) go to overflow segments in shared memory (in order, removed once drained), so a
    /// producer can put any number of items and exit before anyone reads them. When a put
    /// returns `Ok`, the item is in shared memory: the calling process may exit at once.
    ///
    /// After [`close`](Queue::close), `put` fails with [`PutError::Closed`] (the item handed back)
    /// in every process, and `get` drains the items still queued before failing with
    /// [`GetError::Closed`].
    ///
    /// ```
    /// use processing::transport::queue::Queue;
    /// let q = Queue::new().unwrap();
    /// let inner: Queue<String> = Queue::new().unwrap();
    /// q.put(inner.clone()).unwrap(); // a queue travels through a queue
    /// let back = q.get().unwrap();
    /// back.put("hello".to_string()).unwrap();
    /// assert_eq!(inner.get().unwrap(), "hello");
    /// ```
    pub struct Queue<T>(shared: Shared) as "processing::transport::queue::Queue";
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.shared.segment.name())
            .field("len", &self.shared.ring.len())
            .field("max_items", &self.max_items())
            .field("capacity_bytes", &self.shared.ring.capacity())
            .finish()
    }
}

impl<T> Queue<T> {
    /// Attaches to the queue in `segment` (received in a message).
    fn attach(segment: Segment) -> Result<Queue<T>, QueueError> {
        // SAFETY: the segment stays mapped for as long as `Shared` holds it next to the ring;
        // it is shared only with other queue handles, which follow the ring protocol.
        let ring = unsafe { Ring::attach(segment.as_ptr(), segment.len()) }.map_err(|e| {
            QueueError::NotAQueue(match e {
                ring::AttachFail::TooSmall => "segment too small",
                ring::AttachFail::BadMagic => "bad magic number",
                ring::AttachFail::BadVersion => "unsupported version",
                ring::AttachFail::BadCapacity => "bad capacity",
            })
        })?;
        Ok(Queue::from_state(Arc::new(Shared {
            ring,
            segment,
            chain: segment::Chain::default(),
        })))
    }

    /// Number of items in the queue (a snapshot: other processes may change it at once).
    pub fn len(&self) -> usize {
        self.shared.ring.len()
    }

    /// Whether the queue holds no item (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds its maximum number of items (always false without a bound).
    pub fn is_full(&self) -> bool {
        self.shared.ring.is_full()
    }

    /// The item bound, if any.
    pub fn max_items(&self) -> Option<usize> {
        match self.shared.ring.max_items() {
            0 => None,
            n => Some(n as usize),
        }
    }

    /// Closes the queue for every process: later puts fail, gets drain what is left and then
    /// fail with [`GetError::Closed`]; blocked puts and gets wake up.
    pub fn close(&self) {
        self.shared.ring.close();
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.ring.is_closed()
    }
}

impl<T: Serialize> Queue<T> {
    fn put_until(&self, item: &T, deadline: Deadline) -> Result<(), PutFailure> {
        let ring = &self.shared.ring;
        if ring.is_closed() {
            return Err(PutFailure::Closed);
        }
        let outcome = SCRATCH.with(|scratch| {
            let mut buf = scratch.try_borrow_mut().ok();
            let mut fresh = Vec::new();
            let buf: &mut Vec<u8> = match buf.as_deref_mut() {
                Some(b) => b,
                // Re-entered from a Serialize impl that puts into a queue: use a fresh buffer.
                None => &mut fresh,
            };
            buf.clear();
            let outcome = self.encode_and_put(item, buf, deadline);
            // Keep the thread's buffer unless an item made it large.
            if buf.capacity() > 1 << 20 {
                *buf = Vec::new();
            }
            outcome
        });
        match outcome? {
            Ok(()) => Ok(()),
            Err(PutFail::Full) => Err(PutFailure::Full),
            Err(PutFail::Closed) => Err(PutFailure::Closed),
            Err(PutFail::Timeout) => Err(PutFailure::Timeout),
            Err(PutFail::Overflow) => Err(PutFailure::Spill(processing_shm::ShmError::NoSpace(
                self.shared.ring.capacity() as usize,
            ))),
        }
    }

    /// Encodes `item` into `buf` and puts it (inline, or spilled to its own segment); the
    /// outer error is a failure before the ring was tried.
    fn encode_and_put(
        &self,
        item: &T,
        buf: &mut Vec<u8>,
        deadline: Deadline,
    ) -> Result<Result<(), PutFail>, PutFailure> {
        let ring = &self.shared.ring;
        processing_core::codec::encode_into(item, buf).map_err(PutFailure::Encode)?;
        // Without an item bound, a full ring sends the item to the overflow chain.
        let chain = |kind: FrameKind, bytes: &[u8]| self.shared.chain.put(ring, kind, bytes);
        let overflow: Option<&ring::Spill<'_>> = (ring.max_items() == 0).then_some(&chain);
        if buf.len() <= ring.max_inline() {
            return Ok(ring.put(FrameKind::Inline, buf, deadline, overflow));
        }
        let spill = Segment::create_shm(buf.len()).map_err(PutFailure::Spill)?;
        // SAFETY: the fresh segment is at least buf.len() bytes and not shared yet.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), spill.as_ptr().as_ptr(), buf.len()) };
        let reference = SpillRef {
            segment: spill.shared_memory().clone(),
            len: buf.len() as u64,
        };
        let encoded = processing_core::codec::encode(&reference).map_err(PutFailure::Encode);
        drop(reference);
        let encoded = match encoded {
            Ok(encoded) => encoded,
            Err(e) => {
                spill.unlink();
                return Err(e);
            }
        };
        let r = ring.put(FrameKind::Spilled, &encoded, deadline, overflow);
        if r.is_err() {
            // Take the handle back out of flight, then remove the segment.
            let _ = processing_core::codec::decode::<SpillRef>(&encoded);
            spill.unlink();
        }
        Ok(r)
    }
}

impl<T: DeserializeOwned> Queue<T> {
    fn get_until(&self, deadline: Deadline) -> Result<T, GetFailure> {
        let mut spilled: Option<Segment> = None;
        let ring = &self.shared.ring;
        let chain = |read| match self.shared.chain.take(ring, read) {
            Ok(Ok(value)) => Ok(value),
            // An overflow segment that cannot be opened: its item is lost.
            Ok(Err(_)) => Ok(Err(GetFailure::Decode(
                processing_core::CodecError::malformed(),
            ))),
            Err(read) => Err(read),
        };
        let got = ring.get(
            deadline,
            |kind, bytes| match kind {
                FrameKind::Inline => decode::<T>(bytes),
                _ => {
                    let reference: SpillRef =
                        processing_core::codec::decode(bytes).map_err(GetFailure::Decode)?;
                    let segment = Segment::from_shared_memory(reference.segment);
                    if reference.len > segment.len() as u64 {
                        return Err(GetFailure::Decode(processing_core::CodecError::malformed()));
                    }
                    // SAFETY: the spill segment is mapped for `segment`'s life and at least
                    // `reference.len` bytes; its producer finished writing it before publishing the
                    // reference, and nobody writes it afterwards.
                    let payload = unsafe {
                        std::slice::from_raw_parts(
                            segment.as_ptr().as_ptr(),
                            reference.len as usize,
                        )
                    };
                    let value = decode::<T>(payload);
                    spilled = Some(segment);
                    value
                }
            },
            &chain,
        );
        if let Some(segment) = spilled {
            segment.unlink();
        }
        match got {
            Ok(value) => value,
            Err(GetFail::Empty) => Err(GetFailure::Empty),
            Err(GetFail::Closed) => Err(GetFailure::Closed),
            Err(GetFail::Timeout) => Err(GetFailure::Timeout),
            Err(GetFail::Corrupt) => {
                Err(GetFailure::Decode(processing_core::CodecError::malformed()))
            }
        }
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GetFailure> {
    processing_core::codec::decode(bytes).map_err(GetFailure::Decode)
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.shared.segment.shared_memory().serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let shm = processing_shm::SharedMemory::deserialize(d)?;
        Queue::attach(Segment::from_shared_memory(shm)).map_err(serde::de::Error::custom)
    }
}

crate::__queue_wrappers!(JoinableQueue, SimpleQueue in "processing::transport::queue");

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("queue", &self.queue)
            .field("unfinished", &self.queue.shared.ring.unfinished())
            .finish()
    }
}

impl<T> JoinableQueue<T> {
    /// Marks one item taken from the queue as processed ([`TaskDoneError::TooMany`] when every
    /// item put was already marked).
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        if self.queue.shared.ring.task_done() {
            Ok(())
        } else {
            Err(TaskDoneError::TooMany)
        }
    }

    /// Waits until every item ever put has been marked done.
    pub fn join(&self) {
        self.queue.shared.ring.join(Deadline::Never);
    }

    /// Waits at most `timeout` for every item to be marked done (`Duration::MAX`: as long as
    /// needed, zero: one check); [`JoinTimeoutError::Timeout`] otherwise.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        if self.queue.shared.ring.join(Deadline::after(timeout)) {
            Ok(())
        } else {
            Err(JoinTimeoutError::Timeout)
        }
    }
}

#[cfg(test)]
mod tests;
