//! `SharedMemory`: a named segment with a header that records who holds it.
//!
//! Layout: a 4096-byte header, then the user's bytes (page-aligned). The header holds a magic
//! number, the user size, a count of handles in flight (serialized, not yet re-opened), and a
//! table of holders: one slot per process, `(pid << 32 | stamp, count)`. A process attaches by
//! taking a slot (or bumping its own) and detaches by decrementing it; the process that drops
//! its last handle and finds no other live holder and nothing in flight removes the name. A
//! process that dies without detaching leaves a slot whose pid no longer runs; the next
//! detacher, or the resource tracker, treats such slots as empty.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ShmError;
use crate::liveness;
use crate::sys;

/// Bytes before the user's data in every segment.
pub(crate) const HEADER_SIZE: usize = 4096;
const MAGIC: u64 = 0x7072_6f63_5348_4d31; // "procSHM1"
const SLOTS: usize = 200;
/// Prefix of every segment name this library generates.
pub const NAME_PREFIX: &str = "processing-";

#[repr(C)]
struct Slot {
    owner: AtomicU64,
    count: AtomicU32,
    _pad: u32,
}

#[repr(C)]
pub(crate) struct Header {
    magic: AtomicU64,
    size: AtomicU64,
    pending: AtomicU32,
    overflow: AtomicU32,
    _reserved: [u32; 10],
    slots: [Slot; SLOTS],
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_SIZE);

fn owner_word(pid: u32, stamp: u32) -> u64 {
    (u64::from(pid) << 32) | u64::from(stamp)
}

fn owner_alive(word: u64) -> bool {
    word != 0 && liveness::is_alive((word >> 32) as u32, word as u32)
}

/// Serialises slot changes among the threads of this process (slots of other processes are
/// never written here, except reclaiming the slot of a dead one, which a CAS guards).
static TABLE: Mutex<()> = Mutex::new(());

impl Header {
    /// This process's owner word, and the slot it holds, if any.
    fn own_slot(&self) -> (u64, Option<&Slot>) {
        let me = owner_word(liveness::current_pid(), liveness::current_stamp());
        let slot = self
            .slots
            .iter()
            .find(|s| s.owner.load(Ordering::Acquire) == me);
        (me, slot)
    }

    fn attach(&self) {
        let _guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let (me, mine) = self.own_slot();
        if let Some(slot) = mine {
            slot.count.fetch_add(1, Ordering::AcqRel);
            return;
        }
        for pass in 0..2 {
            for slot in &self.slots {
                let cur = slot.owner.load(Ordering::Acquire);
                let free = if pass == 0 {
                    cur == 0
                } else {
                    cur != 0 && !owner_alive(cur)
                };
                if free
                    && slot
                        .owner
                        .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    slot.count.store(1, Ordering::Release);
                    return;
                }
            }
        }
        self.overflow.fetch_add(1, Ordering::AcqRel);
    }

    fn detach(&self) {
        let _guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let (_, mine) = self.own_slot();
        if let Some(slot) = mine {
            if slot.count.fetch_sub(1, Ordering::AcqRel) == 1 {
                slot.owner.store(0, Ordering::Release);
            }
            return;
        }
        // Attached through the overflow counter.
        let _ = self
            .overflow
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Whether no running process holds the segment (and, unless `ignore_pending`, no handle
    /// is in flight).
    pub(crate) fn abandoned(&self, ignore_pending: bool) -> bool {
        if self.overflow.load(Ordering::Acquire) != 0 {
            return false;
        }
        if !ignore_pending && self.pending.load(Ordering::Acquire) != 0 {
            return false;
        }
        !self
            .slots
            .iter()
            .any(|s| owner_alive(s.owner.load(Ordering::Acquire)))
    }

    pub(crate) fn valid(&self, mapped_len: usize) -> bool {
        self.magic.load(Ordering::Acquire) == MAGIC
            && usize::try_from(self.size.load(Ordering::Acquire))
                .is_ok_and(|s| s.checked_add(HEADER_SIZE).is_some_and(|t| t <= mapped_len))
    }
}

/// Views the header of a mapped segment.
pub(crate) fn header(seg: &sys::Segment) -> &Header {
    // SAFETY: every mapping is at least HEADER_SIZE bytes (checked at create/open), page
    // aligned, and the header consists of atomics only, valid for any bit pattern (zero
    // included) and shared between processes by design.
    unsafe { &*seg.base().as_ptr().cast::<Header>() }
}

struct Attachment {
    seg: sys::Segment,
    name: String,
    size: usize,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let header = header(&self.seg);
        header.detach();
        if header.abandoned(false) {
            // Another last dropper may have raced us to it; a missing name is fine.
            let _ = sys::Segment::unlink_name(&self.name);
        }
    }
}

/// A named shared-memory segment of a fixed size, zero-filled on creation.
///
/// Handles are cheap to clone and can be sent to other processes (they serialize as the
/// segment's name and size and re-open it there). The segment lives while any process holds a
/// handle; the process that drops the last one removes it, and the resource tracker removes
/// the segments of processes that died without dropping theirs.
///
/// Creation reserves the memory: a full `/dev/shm` is an [`ShmError::NoSpace`] error here,
/// never a SIGBUS later.
///
/// ```
/// use processing::SharedMemory;
/// let shm = SharedMemory::create(64).unwrap();
/// shm.write(0, b"hello").unwrap();
/// let other = SharedMemory::open(shm.name()).unwrap();
/// let mut buf = [0u8; 5];
/// other.read(0, &mut buf).unwrap();
/// assert_eq!(&buf, b"hello");
/// ```
#[derive(Clone)]
pub struct SharedMemory {
    inner: Arc<Attachment>,
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.inner.name)
            .field("len", &self.inner.size)
            .finish()
    }
}

fn check_name(name: &str) -> Result<(), ShmError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ShmError::InvalidName(name.to_string()))
    }
}

fn fresh_name() -> String {
    let bytes = processing_core::authkey::random_bytes(8);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{NAME_PREFIX}{}-{hex}", liveness::current_pid())
}

impl SharedMemory {
    /// Creates a segment of `size` bytes under a fresh private name.
    ///
    /// ```
    /// let shm = processing::SharedMemory::create(4096).unwrap();
    /// assert_eq!(shm.len(), 4096);
    /// assert!(processing::SharedMemory::create(0).is_err());
    /// ```
    pub fn create(size: usize) -> Result<SharedMemory, ShmError> {
        loop {
            match SharedMemory::create_named(&fresh_name(), size) {
                Err(ShmError::AlreadyExists(_)) => continue,
                other => return other,
            }
        }
    }

    /// Creates a segment of `size` bytes named `name` (`A-Z a-z 0-9 . _ -`, at most 200
    /// bytes); an existing name is an [`ShmError::AlreadyExists`] error.
    ///
    /// ```
    /// use processing::SharedMemory;
    /// let name = format!("doc-create-named-{}", std::process::id());
    /// let shm = SharedMemory::create_named(&name, 16).unwrap();
    /// assert!(SharedMemory::create_named(&name, 16).unwrap_err().is_already_exists());
    /// # drop(shm);
    /// ```
    pub fn create_named(name: &str, size: usize) -> Result<SharedMemory, ShmError> {
        check_name(name)?;
        if size == 0 || size > isize::MAX as usize - HEADER_SIZE {
            return Err(ShmError::InvalidSize(size));
        }
        let seg = sys::Segment::create(name, HEADER_SIZE + size)?;
        let h = header(&seg);
        h.size.store(size as u64, Ordering::Release);
        h.attach();
        h.magic.store(MAGIC, Ordering::Release);
        Ok(SharedMemory::attached(seg, name, size, true))
    }

    /// Attaches to the existing segment `name`.
    ///
    /// ```
    /// let missing = processing::SharedMemory::open("no-such-segment-here");
    /// assert!(missing.unwrap_err().is_not_found());
    /// ```
    pub fn open(name: &str) -> Result<SharedMemory, ShmError> {
        check_name(name)?;
        let seg = sys::Segment::open(name)?;
        if seg.len() < HEADER_SIZE || !header(&seg).valid(seg.len()) {
            return Err(ShmError::Invalid(name.to_string()));
        }
        let h = header(&seg);
        let size = h.size.load(Ordering::Acquire) as usize;
        h.attach();
        Ok(SharedMemory::attached(seg, name, size, false))
    }

    /// The handle of `seg`, which this process has just attached (and `created`, or opened),
    /// registered with the resource tracker.
    fn attached(seg: sys::Segment, name: &str, size: usize, created: bool) -> SharedMemory {
        sys::tracker_register(name, created);
        SharedMemory {
            inner: Arc::new(Attachment {
                seg,
                name: name.to_string(),
                size,
            }),
        }
    }

    /// Removes the segment's name now: no other process can attach to it any more; existing
    /// handles keep working. (On Windows a file that some process still maps cannot be
    /// deleted at once: it is deleted when this process drops its last handle, or else by the
    /// holder-table rule when the last holder drops.)
    ///
    /// ```
    /// let shm = processing::SharedMemory::create(8).unwrap();
    /// shm.unlink().unwrap();
    /// assert!(processing::SharedMemory::open(shm.name()).is_err());
    /// ```
    pub fn unlink(&self) -> Result<(), ShmError> {
        sys::Segment::unlink_name(&self.inner.name)
    }

    /// The segment's name (what [`SharedMemory::open`] takes).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The number of user bytes.
    pub fn len(&self) -> usize {
        self.inner.size
    }

    /// Always false: a segment has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.inner.size == 0
    }

    /// The first user byte. Valid for [`len`](Self::len) bytes while any clone of this handle
    /// lives; aligned to 4096 bytes. Other processes may write through their own mappings at
    /// any time: use atomics or a lock to share mutable data.
    pub fn as_ptr(&self) -> *mut u8 {
        // SAFETY: the mapping is HEADER_SIZE + size bytes long (checked at create/open).
        unsafe { self.inner.seg.base().as_ptr().add(HEADER_SIZE) }
    }

    fn check(&self, offset: usize, len: usize) -> Result<Range<usize>, ShmError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.inner.size => Ok(offset..end),
            _ => Err(ShmError::OutOfRange {
                index: offset.saturating_add(len),
                len: self.inner.size,
            }),
        }
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), ShmError> {
        let range = self.check(offset, buf.len())?;
        // SAFETY: range lies within the mapping (checked); u8 has no invalid values; the
        // destination is a distinct local buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.as_ptr().add(range.start),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        Ok(())
    }

    /// Copies `data` into the segment at `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), ShmError> {
        let range = self.check(offset, data.len())?;
        // SAFETY: range lies within the mapping (checked); the source is a distinct buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.as_ptr().add(range.start), data.len())
        };
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    name: String,
    size: u64,
}

impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A handle in flight keeps the segment alive until a receiver attaches (or the
        // tracker's final sweep, if it never does).
        header(&self.inner.seg)
            .pending
            .fetch_add(1, Ordering::AcqRel);
        Wire {
            name: self.inner.name.clone(),
            size: self.inner.size as u64,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let wire = Wire::deserialize(d)?;
        let shm = SharedMemory::open(&wire.name).map_err(D::Error::custom)?;
        if shm.len() as u64 != wire.size {
            return Err(D::Error::custom(ShmError::Invalid(wire.name)));
        }
        let _ =
            header(&shm.inner.seg)
                .pending
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        Ok(shm)
    }
}
