//! Linux fast path of `Pipe` pairs: one single-producer single-consumer byte ring per direction
//! in a shared `memfd` mapping, with the pair's socket kept beside it as doorbell, liveness
//! signal and carrier of OS handles.
//!
//! Layout of the memfd (all offsets page aligned):
//!
//! | offset | what |
//! |---|---|
//! | 0 | file header: magic, ring capacity |
//! | 4096 | control block of ring 0 (side 0 writes, side 1 reads) |
//! | 8192 | control block of ring 1 (side 1 writes, side 0 reads) |
//! | 12288 | data of ring 0 (`capacity` bytes), then data of ring 1 |
//!
//! A control block holds `tail` (bytes ever written, written only by the writer) and `head`
//! (bytes ever read, written only by the reader) on separate cache lines, the
//! `reader_waiting`/`writer_waiting` flags, the `space_seq` futex word the writer sleeps on, and
//! two cross-process locks (processing-shm's `OwnerWord`: holder pid + start stamp) that
//! serialise writers and readers that share one end from several processes, each with the
//! stream position at which its last holder released it (`write_mark`, `read_mark`).
//!
//! A lock holder that dies is found dead by `OwnerWord::take_over_if_dead` (a zombie or a
//! reused pid counts as dead) and the lock is taken over. If it died in the middle of a message
//! (the position moved since its mark), the stream cannot be resynchronised: the taker sets
//! `torn` (writer side: the reader gets every whole message before the torn one, then
//! `ConnectionError::Torn`; reader side: the next read is `Torn` at once) and every later send
//! fails with `Torn`, so bytes of two messages are never merged.
//!
//! Protocol (the fast path makes no system call):
//! - write: copy bytes at `tail`, publish `tail` (Release), SeqCst fence, then if
//!   `reader_waiting` was set, clear it and write one doorbell byte to the socket.
//! - read: copy bytes at `head` after an Acquire load of `tail`, publish `head`, SeqCst fence,
//!   then if `writer_waiting` was set, clear it, bump `space_seq` and `FUTEX_WAKE` it.
//! - a reader with nothing to read spins as `processing_core::os::SpinPolicy` allows (a
//!   bounded, adaptive time, yielding now and then, at once when its thread is pinned to one
//!   CPU; not at all while the machine has more runnable threads than CPUs, where a spin only
//!   takes the CPU from the peer it waits for), then sets `reader_waiting`, fences, checks
//!   the ring again and sleeps in `poll` on the socket: a doorbell byte, a handle message or
//!   the end of the stream (peer gone, even SIGKILLed) wakes it, and one non-blocking `recv`
//!   takes what woke it (a hand-over costs the reader two system calls, the writer one). A
//!   timed receive waits the same way until its deadline. `wait` and `poll` use the same
//!   socket, and drain it whole before they sleep.
//! - a writer with no room spins likewise, then sets `writer_waiting` and sleeps on the
//!   `space_seq` futex (shared, not private: the word is in a shared mapping) with a 10 ms
//!   timeout, checking on each timeout whether the peer hung up.
//!
//! Invariant: the reader never trusts the counters: `tail - head > capacity` is a corrupt ring
//! (an error), and every copy is masked into the data area, so a hostile peer can produce
//! garbage bytes but never an out-of-bounds access.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use processing_core::os::SpinPolicy;
use processing_shm::owner::{Owner, OwnerWord, Suspect};
use processing_shm::Region;

use crate::loom::{fence, AtomicU32, AtomicU64, Ordering};

use super::unix::Stream;

const MAGIC: u64 = u64::from_le_bytes(*b"prcring1");
const PAGE: usize = 4096;
/// Bytes of each ring. 512 KiB: large enough that a 1 MiB message streams in a few chunks,
/// small enough to stay in the second-level caches of both cores while it does.
pub(crate) const CAPACITY: usize = 512 * 1024;
/// Largest capacity a received memfd may announce.
const MAX_CAPACITY: usize = 64 << 20;
/// How long a sleeping writer waits on the futex before checking that the peer still lives.
const WRITER_NAP: Duration = Duration::from_millis(10);
/// How long a sleeping reader waits in `poll` before it checks the ring again (the doorbell
/// makes this a safety net, not the wake-up path: it matters only when several processes
/// read one end and one of them cleared the flag another armed).
#[cfg_attr(loom, allow(dead_code))]
const READER_NAP: Duration = Duration::from_millis(200);

#[repr(C, align(64))]
struct Line<T>(T);

/// The control block of one ring.
#[repr(C)]
struct Control {
    tail: Line<AtomicU64>,
    head: Line<AtomicU64>,
    reader_waiting: Line<AtomicU32>,
    writer_waiting: Line<AtomicU32>,
    space_seq: Line<AtomicU32>,
    write_lock: Line<OwnerWord>,
    read_lock: Line<OwnerWord>,
    /// `tail` when the write lock was last released (a message boundary).
    write_mark: Line<AtomicU64>,
    /// `head` when the read lock was last released (a message boundary).
    read_mark: Line<AtomicU64>,
    /// `TORN_WRITE` / `TORN_READ`: a lock holder died in the middle of a message.
    torn: Line<AtomicU32>,
}

/// A writer died mid-message: bytes up to `tail` are readable, then the stream is torn.
const TORN_WRITE: u32 = 1;
/// A reader died mid-message: `head` is inside a frame, nothing more can be read.
const TORN_READ: u32 = 2;

/// The error of a torn stream (see the module docs); `ConnectionError::Torn` from it.
#[derive(Debug)]
pub(crate) struct TornStream;

impl std::fmt::Display for TornStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a process sharing this end died in the middle of a message")
    }
}

impl std::error::Error for TornStream {}

fn torn() -> io::Error {
    io::Error::other(TornStream)
}

const _: () = assert!(std::mem::size_of::<Control>() <= PAGE);

/// One process's mapping of a pair's memfd, seen from one side.
pub(crate) struct RingEnd {
    /// The sealed memory file, mapped (processing-shm's one mapping type).
    region: Region,
    base: NonNull<u8>,
    capacity: usize,
    side: u8,
    /// The socket said end of stream: the peer end is closed everywhere.
    peer_gone: AtomicBool,
    /// Under loom: the doorbell of each ring as loom sees it (shared by both ends of a model
    /// pair). A socket carries happens-before between processes, which loom cannot see, so a
    /// ring of the doorbell is also a Release increment here, and a woken reader takes it.
    #[cfg(loom)]
    bells: std::sync::Arc<[AtomicU32; 2]>,
    /// The spin policies of this end's reads and writes.
    read_waits: SpinPolicy,
    write_waits: SpinPolicy,
}

// SAFETY: the mapping is shared memory accessed only through atomics (control blocks) or by
// the single reader/writer that the protocol and the locks admit (data areas); the pointer
// stays valid until drop.
unsafe impl Send for RingEnd {}
// SAFETY: as above; all methods take &self and synchronise through the atomics and locks.
unsafe impl Sync for RingEnd {}

impl std::fmt::Debug for RingEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingEnd")
            .field("memfd", &self.region.fd())
            .field("capacity", &self.capacity)
            .field("side", &self.side)
            .finish()
    }
}

fn total_len(capacity: usize) -> usize {
    3 * PAGE + 2 * capacity
}

fn corrupt() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "the shared ring of the pipe is corrupt",
    )
}

/// Whether the fast path is switched on (`PROCESSING_PIPE_RING=0` switches it off).
pub(crate) fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PROCESSING_PIPE_RING").is_none_or(|v| v != "0"))
}

/// Which lock of a ring.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Write,
    Read,
}

/// A cross-process lock of one ring, held until dropped; dropping records the message boundary.
pub(crate) struct RingLock<'a> {
    control: &'a Control,
    which: Which,
}

impl Control {
    fn lock_of(&self, which: Which) -> &OwnerWord {
        match which {
            Which::Write => &self.write_lock.0,
            Which::Read => &self.read_lock.0,
        }
    }

    /// The stream position of `which` side now, and its last recorded boundary.
    fn position_and_mark(&self, which: Which) -> (u64, &AtomicU64) {
        match which {
            Which::Write => (self.tail.0.load(Ordering::Acquire), &self.write_mark.0),
            Which::Read => (self.head.0.load(Ordering::Acquire), &self.read_mark.0),
        }
    }
}

impl Drop for RingLock<'_> {
    fn drop(&mut self) {
        let (pos, mark) = self.control.position_and_mark(self.which);
        mark.store(pos, Ordering::Release);
        self.control.lock_of(self.which).unlock();
    }
}

/// Least time between two liveness checks of a lock holder (the second look at a suspected
/// reused pid must come after a new holder had time to store its stamp).
const CHECK_EVERY: Duration = Duration::from_millis(20);

fn lock_ring(control: &Control, which: Which) -> RingLock<'_> {
    let word = control.lock_of(which);
    let me = Owner::current();
    let mut suspect = Suspect::default();
    let mut round = 0u32;
    let mut last_check: Option<Instant> = None;
    loop {
        if word.holder() == 0 && word.try_lock(me) {
            return RingLock { control, which };
        }
        round = round.saturating_add(1);
        // (Under loom every thread is this live process: no liveness check, whose timing
        // would make the model's runs differ.)
        let due = !cfg!(loom)
            && round >= 256
            && match last_check {
                None => true,
                Some(t) => t.elapsed() >= CHECK_EVERY,
            };
        if due {
            last_check = Some(Instant::now());
            if word.take_over_if_dead(me, &mut suspect) {
                // The holder died inside a send or receive. If it had moved the stream since
                // the last boundary, the stream is torn: nobody can tell where its message
                // ends.
                let (pos, mark) = control.position_and_mark(which);
                if pos != mark.load(Ordering::Acquire) {
                    let bit = match which {
                        Which::Write => TORN_WRITE,
                        Which::Read => TORN_READ,
                    };
                    control.torn.0.fetch_or(bit, Ordering::SeqCst);
                }
                return RingLock { control, which };
            }
        }
        processing_shm::model::backoff(round, 64, 256, Duration::from_micros(50));
    }
}

impl RingEnd {
    /// A fresh memfd with both rings, mapped once for each side.
    pub(crate) fn pair() -> io::Result<(RingEnd, RingEnd)> {
        let (a, b) = RingEnd::fresh_file(c"processing-pipe", CAPACITY)?;
        Ok(RingEnd::over(a, b, CAPACITY))
    }

    /// A fresh memory file named `name` for rings of `capacity` bytes, mapped twice (one
    /// mapping for each end). The size is sealed: no holder can shrink the file under
    /// another's mapping (which would turn that one's accesses into SIGBUS).
    fn fresh_file(name: &std::ffi::CStr, capacity: usize) -> io::Result<(Region, Region)> {
        let len = total_len(capacity);
        let a = Region::anonymous(name, len)?;
        let b = Region::from_fd(a.fd().try_clone_to_owned()?, len)?;
        Ok((a, b))
    }

    /// The two ends over `a` and `b`, two mappings of one fresh file holding rings of
    /// `capacity` bytes; writes the file's header (magic, capacity) through `a`.
    fn over(a: Region, b: Region, capacity: usize) -> (RingEnd, RingEnd) {
        let a = RingEnd::new(a, 0, capacity);
        // SAFETY: the file was just created and sized; the header words lie in its first page,
        // ours to initialise before any other party can see the descriptor.
        unsafe {
            let h = a.base.as_ptr().cast::<u64>();
            h.write(MAGIC);
            h.add(1).write(capacity as u64);
        }
        (a, RingEnd::new(b, 1, capacity))
    }

    fn new(region: Region, side: u8, capacity: usize) -> RingEnd {
        RingEnd {
            base: region.as_ptr(),
            region,
            capacity,
            side,
            peer_gone: AtomicBool::new(false),
            #[cfg(loom)]
            bells: std::sync::Arc::new([AtomicU32::new(0), AtomicU32::new(0)]),
            read_waits: SpinPolicy::new(),
            write_waits: SpinPolicy::new(),
        }
    }

    /// Maps a memfd that arrived with a connection, checking its header and size.
    pub(crate) fn from_fd(memfd: OwnedFd, side: u8) -> io::Result<RingEnd> {
        if side > 1 {
            return Err(corrupt());
        }
        let mut header = [0u8; 16];
        // SAFETY: pread writes at most 16 bytes into the array.
        let n = unsafe {
            libc::pread(
                memfd.as_raw_fd(),
                header.as_mut_ptr().cast(),
                header.len(),
                0,
            )
        };
        if n != 16 {
            return Err(corrupt());
        }
        let magic = u64::from_le_bytes(header[..8].try_into().map_err(|_| corrupt())?);
        let capacity = u64::from_le_bytes(header[8..].try_into().map_err(|_| corrupt())?);
        let capacity = usize::try_from(capacity).map_err(|_| corrupt())?;
        if magic != MAGIC
            || !capacity.is_power_of_two()
            || !(PAGE..=MAX_CAPACITY).contains(&capacity)
        {
            return Err(corrupt());
        }
        // Region checks the seals and the exact size before mapping.
        let region = Region::from_fd(memfd, total_len(capacity)).map_err(|_| corrupt())?;
        Ok(RingEnd::new(region, side, capacity))
    }

    /// The memfd to send when the connection travels.
    pub(crate) fn memfd(&self) -> BorrowedFd<'_> {
        self.region.fd()
    }

    /// Which side of the pair this end is (0 or 1).
    pub(crate) fn side(&self) -> u8 {
        self.side
    }

    fn control(&self, ring: u8) -> &Control {
        // SAFETY: the control blocks lie at page offsets 1 and 2 of a live mapping of at least
        // 3 pages; Control is a block of atomics, valid for any bit pattern, and aligned.
        unsafe {
            &*self
                .base
                .as_ptr()
                .add(PAGE * (1 + ring as usize))
                .cast::<Control>()
        }
    }

    fn data(&self, ring: u8) -> *mut u8 {
        // SAFETY: the data areas lie after the three header pages, `capacity` bytes each,
        // within the mapping.
        unsafe {
            self.base
                .as_ptr()
                .add(3 * PAGE + self.capacity * ring as usize)
        }
    }

    /// The ring this end writes.
    fn out_ring(&self) -> u8 {
        self.side
    }

    /// The ring this end reads.
    fn in_ring(&self) -> u8 {
        1 - self.side
    }

    /// Bytes waiting in the incoming ring (an error if the counters are impossible).
    fn available(&self) -> io::Result<usize> {
        // The writer's tail with Acquire: the bytes it published are visible.
        self.used(self.in_ring(), Ordering::Acquire, Ordering::Relaxed)
    }

    /// Free bytes in the outgoing ring (an error if the counters are impossible).
    fn room(&self) -> io::Result<usize> {
        // The reader's head with Acquire: it is done with the bytes it released.
        let used = self.used(self.out_ring(), Ordering::Relaxed, Ordering::Acquire)?;
        Ok(self.capacity - used)
    }

    /// Bytes between `head` and `tail` of `ring`, each counter loaded with its ordering (the
    /// peer's Acquire, this end's own Relaxed); an error if they are impossible (more than the
    /// ring holds).
    #[inline]
    fn used(&self, ring: u8, tail: Ordering, head: Ordering) -> io::Result<usize> {
        let c = self.control(ring);
        let tail = c.tail.0.load(tail);
        let head = c.head.0.load(head);
        let n = tail.wrapping_sub(head);
        if n > self.capacity as u64 {
            return Err(corrupt());
        }
        Ok(n as usize)
    }

    /// Takes the cross-process write lock of the outgoing ring.
    pub(crate) fn lock_write(&self) -> RingLock<'_> {
        lock_ring(self.control(self.out_ring()), Which::Write)
    }

    /// Takes the cross-process read lock of the incoming ring.
    pub(crate) fn lock_read(&self) -> RingLock<'_> {
        lock_ring(self.control(self.in_ring()), Which::Read)
    }

    /// Whether a receive has found the end of the stream.
    pub(crate) fn peer_gone(&self) -> bool {
        self.peer_gone.load(Ordering::Relaxed)
    }

    /// Copies what is there (up to `dst.len()` bytes) without waiting.
    fn take(&self, dst: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
        if self.control(self.in_ring()).torn.0.load(Ordering::Acquire) & TORN_READ != 0 {
            return Err(torn());
        }
        // At most a quarter ring per step, so that a writer waiting for room gets some back
        // while the rest is still being copied.
        let n = self.available()?.min(dst.len()).min(self.capacity / 4);
        if n == 0 {
            return Ok(0);
        }
        let ring = self.in_ring();
        let c = self.control(ring);
        let head = c.head.0.load(Ordering::Relaxed);
        let at = (head as usize) & (self.capacity - 1);
        let first = n.min(self.capacity - at);
        let data = self.data(ring);
        // SAFETY: `at + first <= capacity` and `n - first <= capacity`: both source ranges lie
        // in this ring's data area; the Acquire load of `tail` in `available` orders these
        // reads after the writer's copies; dst has room for n bytes.
        unsafe {
            crate::loom::read(data.add(at), first);
            crate::loom::read(data, n - first);
            std::ptr::copy_nonoverlapping(data.add(at), dst.as_mut_ptr().cast::<u8>(), first);
            std::ptr::copy_nonoverlapping(
                data,
                dst.as_mut_ptr().cast::<u8>().add(first),
                n - first,
            );
        }
        c.head
            .0
            .store(head.wrapping_add(n as u64), Ordering::Release);
        fence(Ordering::SeqCst);
        if c.writer_waiting.0.load(Ordering::Relaxed) != 0
            && c.writer_waiting.0.swap(0, Ordering::SeqCst) != 0
        {
            c.space_seq.0.fetch_add(1, Ordering::SeqCst);
            crate::loom::futex_wake(&c.space_seq.0, u32::MAX);
        }
        Ok(n)
    }

    /// Reads at least one byte into `dst` (waiting for it), or returns 0 at the end of the
    /// stream. Handles that arrive on the socket meanwhile are appended to `handles`.
    pub(crate) fn read(
        &self,
        dst: &mut [MaybeUninit<u8>],
        stream: &Stream,
        handles: &mut Vec<OwnedFd>,
    ) -> io::Result<usize> {
        if dst.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.take(dst)?;
            if n > 0 {
                return Ok(n);
            }
            if self.in_torn() {
                // Every byte before the tear was read: the rest of this message never comes.
                return Err(torn());
            }
            if self.peer_gone() {
                // The peer's last bytes were published before its socket closed.
                return self.take(dst);
            }
            self.wait_readable(stream, handles, None)?;
        }
    }

    /// Waits until the incoming ring has bytes, the stream ended or tore, or `deadline` passed
    /// (`None`: no deadline); returns whether it can be read. Handles that arrive on the socket
    /// meanwhile are appended to `handles`.
    ///
    /// First a spin as `read_waits` allows (none once the deadline passed), then sleeps on the
    /// socket: announce the sleep, check the ring, `poll`; the writer's doorbell byte, a handle
    /// or the peer's end wakes it, and one `recv` takes what woke it. A hand-over through the
    /// socket thus costs the reader two system calls and the writer one.
    pub(crate) fn wait_readable(
        &self,
        stream: &Stream,
        handles: &mut Vec<OwnedFd>,
        deadline: Option<Instant>,
    ) -> io::Result<bool> {
        if self.readable_now() {
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // A look, not a wait (a zero timeout): drain the socket (the end of the stream
            // may wait there), and record nothing (a poll must not shorten the real waits'
            // spins).
            return self.arm(stream, handles);
        }
        let since = Instant::now();
        let ready = self
            .read_waits
            .spin_until_before(deadline, || self.readable_now());
        if !ready && !self.sleep_until_readable(stream, handles, deadline)? {
            return Ok(false);
        }
        self.read_waits
            .record(Instant::now().saturating_duration_since(since));
        Ok(true)
    }

    /// The sleeping part of [`wait_readable`](Self::wait_readable).
    fn sleep_until_readable(
        &self,
        stream: &Stream,
        handles: &mut Vec<OwnedFd>,
        deadline: Option<Instant>,
    ) -> io::Result<bool> {
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                // A last look, draining the socket: the end of the stream may be waiting there.
                return self.arm(stream, handles);
            }
            if self.announce_sleep(|| Ok(()))? {
                return Ok(true);
            }
            if self.wait_doorbell(stream, left)? {
                self.drain_once(stream, handles)?;
            }
        }
    }

    /// Like [`read`](Self::read) into initialised bytes.
    pub(crate) fn read_bytes(
        &self,
        dst: &mut [u8],
        stream: &Stream,
        handles: &mut Vec<OwnedFd>,
    ) -> io::Result<usize> {
        // SAFETY: MaybeUninit<u8> has the layout of u8, and `read` only writes initialised
        // bytes into the slice.
        let dst = unsafe { &mut *(dst as *mut [u8] as *mut [MaybeUninit<u8>]) };
        self.read(dst, stream, handles)
    }

    /// Announces a sleeping (or polling) reader, then reports whether data or the end of the
    /// stream is already there. Drains doorbell bytes (and any handles) from the socket without
    /// blocking. After `false` the caller may sleep in `poll` on the socket: the writer's next
    /// publish rings it.
    pub(crate) fn arm(&self, stream: &Stream, handles: &mut Vec<OwnedFd>) -> io::Result<bool> {
        self.announce_sleep(|| self.drain(stream, handles))
    }

    /// Sets `reader_waiting` and fences (the writer's next publish then rings the socket),
    /// runs `then` (a drain of the socket, or nothing), and reports whether the ring can be
    /// read now, withdrawing the announcement if so.
    fn announce_sleep(&self, then: impl FnOnce() -> io::Result<()>) -> io::Result<bool> {
        let c = self.control(self.in_ring());
        c.reader_waiting.0.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        then()?;
        if self.readable_now() {
            c.reader_waiting.0.store(0, Ordering::Relaxed);
            return Ok(true);
        }
        Ok(false)
    }

    /// Sleeps until the socket has a doorbell byte, a handle or the end of the stream (then
    /// `true`), or the nap (at most `left`) ends. Under loom (where the model's threads share
    /// one OS thread, so nobody could ring while it blocked) it yields until the doorbell was
    /// rung or the peer hung up: a lost doorbell is a wait without end, which loom reports.
    fn wait_doorbell(&self, stream: &Stream, left: Option<Duration>) -> io::Result<bool> {
        #[cfg(loom)]
        {
            let _ = left;
            while self.bells[self.in_ring() as usize].swap(0, Ordering::Acquire) == 0 {
                if stream.peer_hung_up()? {
                    return Ok(true);
                }
                loom::thread::yield_now();
            }
            // The doorbell byte may still be on its way: a drain must not wait for it.
            Ok(false)
        }
        #[cfg(not(loom))]
        stream.poll_readable(Some(left.map_or(READER_NAP, |l| l.min(READER_NAP))))
    }

    /// Under loom, the doorbell of the outgoing ring as loom sees it (see `bells`); nothing
    /// otherwise (the socket byte is the doorbell).
    #[inline(always)]
    fn ring_doorbell(&self) {
        #[cfg(loom)]
        self.bells[self.out_ring() as usize].fetch_add(1, Ordering::Release);
    }

    /// Rings the doorbell of the outgoing ring if a reader announced a sleep (after a publish
    /// or a tear, and a SeqCst fence).
    fn wake_reader(&self, stream: &Stream) -> io::Result<()> {
        let c = self.control(self.out_ring());
        if c.reader_waiting.0.load(Ordering::Relaxed) != 0
            && c.reader_waiting.0.swap(0, Ordering::SeqCst) != 0
        {
            self.ring_doorbell();
            stream.write_all(&[0], &[])?;
        }
        Ok(())
    }

    /// Whether the incoming stream is torn (a writer or reader died mid-message).
    fn in_torn(&self) -> bool {
        self.control(self.in_ring()).torn.0.load(Ordering::Acquire) != 0
    }

    /// Fails a send on a torn outgoing stream, ringing the doorbell so that a sleeping reader
    /// learns it now.
    fn check_out_torn(&self, stream: &Stream) -> io::Result<()> {
        let c = self.control(self.out_ring());
        if c.torn.0.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let _ = self.wake_reader(stream);
        Err(torn())
    }

    /// Reads whatever the socket holds without blocking (doorbells, handles, end of stream).
    pub(crate) fn drain(&self, stream: &Stream, handles: &mut Vec<OwnedFd>) -> io::Result<()> {
        while self.drain_once(stream, handles)? {}
        Ok(())
    }

    /// One read of what the socket holds, without blocking (doorbells, handles, end of
    /// stream); returns whether it read anything (then more may be waiting).
    fn drain_once(&self, stream: &Stream, handles: &mut Vec<OwnedFd>) -> io::Result<bool> {
        let mut buf = [0u8; 64];
        match stream.read_chunk(&mut buf, true, handles) {
            Ok(0) => {
                self.peer_gone.store(true, Ordering::Relaxed);
                Ok(false)
            }
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                ) =>
            {
                self.peer_gone.store(true, Ordering::Relaxed);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether bytes (or the end of the stream) can be read now, without touching the socket.
    pub(crate) fn readable_now(&self) -> bool {
        self.peer_gone() || self.in_torn() || self.available().map_or(true, |n| n > 0)
    }

    /// Writes all of `data` into the outgoing ring (the caller holds the write lock), waiting
    /// for room as needed.
    pub(crate) fn write_all(&self, mut data: &[u8], stream: &Stream) -> io::Result<()> {
        if self.peer_gone() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.check_out_torn(stream)?;
        let ring = self.out_ring();
        let c = self.control(ring);
        let buf = self.data(ring);
        while !data.is_empty() {
            let room = self.room()?;
            if room == 0 {
                self.wait_room(stream)?;
                continue;
            }
            // Publish at most a quarter ring at once, so that the reader starts copying while
            // the writer still fills (pipelining of large messages).
            let n = room.min(data.len()).min(self.capacity / 4);
            let tail = c.tail.0.load(Ordering::Relaxed);
            let at = (tail as usize) & (self.capacity - 1);
            let first = n.min(self.capacity - at);
            // SAFETY: both destination ranges lie in this ring's data area (masked offset,
            // lengths bounded by the room checked above, which the reader does not touch until
            // `tail` is published below); data has n readable bytes.
            unsafe {
                crate::loom::wrote(buf.add(at), first);
                crate::loom::wrote(buf, n - first);
                std::ptr::copy_nonoverlapping(data.as_ptr(), buf.add(at), first);
                std::ptr::copy_nonoverlapping(data.as_ptr().add(first), buf, n - first);
            }
            c.tail
                .0
                .store(tail.wrapping_add(n as u64), Ordering::Release);
            fence(Ordering::SeqCst);
            self.wake_reader(stream)?;
            data = &data[n..];
        }
        Ok(())
    }

    fn wait_room(&self, stream: &Stream) -> io::Result<()> {
        let since = Instant::now();
        if self
            .write_waits
            .spin_until(|| self.room().map_or(true, |n| n > 0))
        {
            self.write_waits.record(since.elapsed());
            return Ok(());
        }
        let c = self.control(self.out_ring());
        loop {
            let seq = c.space_seq.0.load(Ordering::SeqCst);
            c.writer_waiting.0.store(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.room()? > 0 {
                c.writer_waiting.0.store(0, Ordering::Relaxed);
                self.write_waits.record(since.elapsed());
                return Ok(());
            }
            if stream.peer_hung_up()? {
                self.peer_gone.store(true, Ordering::Relaxed);
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            crate::loom::futex_wait(&c.space_seq.0, seq, Some(WRITER_NAP));
        }
    }

    /// Sends OS handles ahead of the message that names them (the caller holds the write lock).
    pub(crate) fn send_handles(&self, stream: &Stream, handles: &[OwnedFd]) -> io::Result<()> {
        if self.peer_gone() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.check_out_torn(stream)?;
        stream.write_all(&[1], handles)
    }
}

impl Drop for RingEnd {
    fn drop(&mut self) {
        // Make the peer's next send ring the doorbell: if this was the last holder of this
        // end, that write finds the socket closed and the peer learns it is alone.
        let c = self.control(self.in_ring());
        c.reader_waiting.0.store(1, Ordering::SeqCst);
        // The region unmaps itself when dropped after this.
    }
}

/// The pipe ring over loom's atomics, for `tests/loom_*.rs` (see [`crate::model`]).
#[cfg(loom)]
pub(crate) mod model;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_counters_are_an_error_not_an_overrun() {
        let (a, b, sa, _sb) = test_pair(CAPACITY);
        // A hostile writer claims more bytes than the ring holds.
        b.control(b.out_ring())
            .tail
            .0
            .store(3 * b.capacity as u64, Ordering::Release);
        let mut buf = [0u8; 16];
        let e = a.read_bytes(&mut buf, &sa, &mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // And a hostile reader claims to have read bytes never written.
        a.control(a.in_ring())
            .head
            .0
            .store(5 * a.capacity as u64, Ordering::Release);
        b.control(b.out_ring()).tail.0.store(0, Ordering::Release);
        let e = b.write_all(&[1, 2, 3], &sa).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    /// A pid that ran and was reaped: nothing runs under it (or something younger).
    fn dead_owner() -> Owner {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        Owner { pid, stamp: 7 }
    }

    /// Asserts that `e` reports a torn stream.
    fn assert_torn(e: &io::Error) {
        assert!(e.get_ref().is_some_and(|r| r.is::<TornStream>()), "{e}");
    }

    #[test]
    fn a_reader_dead_mid_message_tears_the_stream() {
        let (a, b, sa, sb) = test_pair(CAPACITY);
        b.write_all(&[1, 2, 3, 4, 5, 6, 7, 8], &sb).unwrap();
        // A reader of `a`'s end read 3 bytes of a message, then died holding the read lock.
        {
            let _g = a.lock_read();
            let mut part = [0u8; 3];
            assert_eq!(a.read_bytes(&mut part, &sa, &mut Vec::new()).unwrap(), 3);
            std::mem::forget(_g);
        }
        a.control(a.in_ring()).read_lock.0.plant(dead_owner());
        let _g = a.lock_read();
        let mut rest = [0u8; 5];
        let e = a.read_bytes(&mut rest, &sa, &mut Vec::new()).unwrap_err();
        assert_torn(&e);
    }

    #[test]
    fn a_writer_dead_mid_message_tears_the_stream_after_its_bytes() {
        let (a, b, sa, sb) = test_pair(CAPACITY);
        // A whole message, then a writer that published part of the next one and died.
        {
            let _g = b.lock_write();
            b.write_all(&[9, 9], &sb).unwrap();
        }
        {
            let g = b.lock_write();
            b.write_all(&[1, 2, 3], &sb).unwrap();
            std::mem::forget(g);
        }
        b.control(b.out_ring()).write_lock.0.plant(dead_owner());
        {
            let _g = b.lock_write();
            let e = b.write_all(&[4, 5], &sb).unwrap_err();
            assert_torn(&e);
        }
        // The reader gets every byte published before the tear, then the error.
        assert_eq!(read_n(&a, &sa, 5), [9, 9, 1, 2, 3]);
        let e = a
            .read_bytes(&mut [0u8; 5], &sa, &mut Vec::new())
            .unwrap_err();
        assert_torn(&e);
    }

    #[test]
    fn counters_wrap_around_u64() {
        let (a, b, sa, sb) = test_pair(CAPACITY);
        let start = u64::MAX - 10;
        let c = b.control(b.out_ring());
        c.tail.0.store(start, Ordering::Release);
        c.head.0.store(start, Ordering::Release);
        let msg: Vec<u8> = (0..100u8).collect();
        b.write_all(&msg, &sb).unwrap();
        assert_eq!(read_n(&a, &sa, 100), msg);
    }

    #[test]
    fn a_foreign_memfd_is_refused() {
        // A plain file: no seals (and no header).
        let dir = std::env::temp_dir().join(format!("ring-test-{}", std::process::id()));
        let file = std::fs::File::create(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        file.set_len(1 << 20).unwrap();
        assert!(RingEnd::from_fd(file.into(), 0).is_err());
        // A ring file of the right seals but a header announcing another size.
        let (a, _b) = RingEnd::pair().unwrap();
        // SAFETY: the header's capacity word lies in the first page of the live mapping.
        unsafe {
            a.base
                .as_ptr()
                .cast::<u64>()
                .add(1)
                .write(2 * CAPACITY as u64)
        };
        assert!(RingEnd::from_fd(a.memfd().try_clone_to_owned().unwrap(), 1).is_err());
        let (a, _b) = RingEnd::pair().unwrap();
        assert!(RingEnd::from_fd(a.memfd().try_clone_to_owned().unwrap(), 2).is_err());
        // The size is sealed: nobody can truncate the file under the mappings.
        let ring_file = std::fs::File::from(a.memfd().try_clone_to_owned().unwrap());
        assert!(ring_file.set_len(3 * PAGE as u64).is_err());
        assert!(ring_file.set_len(8 << 20).is_err());
    }

    /// Doorbell bytes nobody waited for (a reader that found data after announcing its sleep)
    /// wake a later sleep early; the reader takes them and sleeps again, and a timed wait
    /// still ends at its deadline rather than spinning on the readable socket.
    #[cfg(not(miri))]
    #[test]
    fn stray_doorbell_bytes_neither_end_nor_prolong_a_wait() {
        let (a, b, sa, sb) = test_pair(CAPACITY);
        for _ in 0..3 {
            sb.write_all(&[0], &[]).unwrap();
        }
        let began = Instant::now();
        let deadline = began + Duration::from_millis(30);
        assert!(!a
            .wait_readable(&sa, &mut Vec::new(), Some(deadline))
            .unwrap());
        assert!(Instant::now() >= deadline);
        // The wait took the stray bytes (those that woke it, and the rest at its last look):
        // the socket is empty, and a sleeper wakes for the writer's doorbell alone.
        let e = sa
            .read_chunk(&mut [0u8; 8], true, &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        let flag = &a.control(a.in_ring()).reader_waiting.0;
        flag.store(0, Ordering::SeqCst);
        std::thread::scope(|s| {
            let reader = s.spawn(|| read_n(&a, &sa, 5));
            while flag.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
            b.write_all(&[1, 2, 3, 4, 5], &sb).unwrap();
            assert_eq!(reader.join().unwrap(), [1, 2, 3, 4, 5]);
        });
    }

    /// Zero-timeout looks at an empty ring leave the spin statistics of the real waits alone.
    #[cfg(not(miri))]
    #[test]
    fn zero_timeout_looks_leave_the_wait_statistics_alone() {
        let (a, _b, sa, _sb) = test_pair(CAPACITY);
        let before = format!("{:?}", a.read_waits);
        for _ in 0..64 {
            let now = Instant::now();
            assert!(!a.wait_readable(&sa, &mut Vec::new(), Some(now)).unwrap());
        }
        assert_eq!(format!("{:?}", a.read_waits), before);
    }

    /// A timed wait whose deadline has passed looks once (draining the socket, where the end
    /// of the stream waits) and does not spin.
    #[cfg(not(miri))]
    #[test]
    fn a_passed_deadline_looks_once_and_sees_the_end_of_the_stream() {
        let (a, b, sa, sb) = test_pair(CAPACITY);
        let now = Instant::now();
        assert!(!a.wait_readable(&sa, &mut Vec::new(), Some(now)).unwrap());
        b.write_all(&[9], &sb).unwrap();
        assert!(a.wait_readable(&sa, &mut Vec::new(), Some(now)).unwrap());
        assert_eq!(read_n(&a, &sa, 1), [9]);
        drop((b, sb));
        assert!(a.wait_readable(&sa, &mut Vec::new(), Some(now)).unwrap());
        assert!(a.peer_gone());
    }

    /// A pair of ring ends whose rings hold `capacity` bytes each, and a socket pair standing
    /// in for the pair's doorbell (used by the tests that wait; never under Miri). Under
    /// Miri, which cannot map a memory file, over heap bytes; otherwise over a real memfd.
    fn test_pair(capacity: usize) -> (RingEnd, RingEnd, Stream, Stream) {
        #[cfg(miri)]
        let (ra, rb) = Region::heap_pair(total_len(capacity)).unwrap();
        #[cfg(not(miri))]
        let (ra, rb) = RingEnd::fresh_file(c"processing-pipe-test", capacity).unwrap();
        let (a, b) = RingEnd::over(ra, rb, capacity);
        let (sa, sb) = std::os::unix::net::UnixStream::pair().unwrap();
        let stream = |s: std::os::unix::net::UnixStream| {
            Stream::from_handle(s.into(), super::super::StreamKind::Local).unwrap()
        };
        (a, b, stream(sa), stream(sb))
    }

    fn bytes(tag: usize, len: usize) -> Vec<u8> {
        (0..len).map(|i| (tag * 37 + i) as u8).collect()
    }

    /// Reads exactly `n` bytes that are already in the ring.
    fn read_n(end: &RingEnd, stream: &Stream, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        let mut k = 0;
        while k < n {
            k += end
                .read_bytes(&mut got[k..], stream, &mut Vec::new())
                .unwrap();
        }
        got
    }

    /// Under Miri (`cargo xtask models`): messages of every length up to the whole ring, both
    /// ways, wrapping around many times (copies split at the end of the data area); counters
    /// about to wrap around `u64`; impossible counters are errors, not out-of-bounds copies.
    #[test]
    fn miri_pipe_ring_wraps_both_ways_and_checks_counters() {
        let capacity = PAGE;
        let (a, b, sa, sb) = test_pair(capacity);
        for (i, len) in [1, 7, 100, 1000, capacity - 1, capacity, 333, 4095]
            .into_iter()
            .enumerate()
        {
            let msg = bytes(i, len);
            a.write_all(&msg, &sa).unwrap();
            assert_eq!(read_n(&b, &sb, len), msg);
            b.write_all(&msg, &sb).unwrap();
            assert_eq!(read_n(&a, &sa, len), msg);
        }
        assert!(!a.readable_now() && !b.readable_now());
        let c = b.control(b.out_ring());
        c.tail.0.store(u64::MAX - 10, Ordering::Release);
        c.head.0.store(u64::MAX - 10, Ordering::Release);
        let msg = bytes(9, 100);
        b.write_all(&msg, &sb).unwrap();
        assert_eq!(read_n(&a, &sa, 100), msg);
        // A hostile writer claims more bytes than the ring holds.
        c.tail.0.store(3 * capacity as u64, Ordering::Release);
        c.head.0.store(0, Ordering::Release);
        let mut buf = [0u8; 16];
        let e = a.read_bytes(&mut buf, &sa, &mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let e = b.write_all(&[1], &sb).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    /// Under Miri: a writer thread and a reader thread on the two ends, the reader taking
    /// whatever is published without waiting (the ring holds the whole stream, so the writer
    /// never waits either, and neither touches the doorbell socket). Miri's race detector
    /// checks that each copy out of the data area is ordered after the copy in by `tail`, and
    /// each reuse of the area after the copy out by `head`.
    #[test]
    fn miri_pipe_ring_writer_and_reader_threads_race_free() {
        let capacity = PAGE;
        let (a, b, sa, _sb) = test_pair(capacity);
        // Over twice the ring in total, in pieces that never fill it while the reader lags
        // by at most one piece.
        let pieces: Vec<Vec<u8>> = (0..20).map(|i| bytes(i, 100 + i * 50)).collect();
        let total: usize = pieces.iter().map(Vec::len).sum();
        assert!(total > 2 * capacity);
        let acked = AtomicU64::new(0);
        std::thread::scope(|s| {
            let (a, sa, pieces, acked) = (&a, &sa, &pieces, &acked);
            s.spawn(move || {
                let mut sent = 0u64;
                for p in pieces {
                    // Keep at most one unread piece in the ring: room for the next one.
                    while acked.load(Ordering::Acquire) + (capacity as u64) / 2 < sent {
                        std::thread::yield_now();
                    }
                    let _g = a.lock_write();
                    a.write_all(p, sa).unwrap();
                    sent += p.len() as u64;
                }
            });
            let mut got = Vec::with_capacity(total);
            let mut buf = [MaybeUninit::<u8>::uninit(); 256];
            while got.len() < total {
                let _g = b.lock_read();
                let n = b.take(&mut buf).unwrap();
                drop(_g);
                // SAFETY: `take` initialised the first n bytes.
                got.extend(buf[..n].iter().map(|x| unsafe { x.assume_init() }));
                acked.store(got.len() as u64, Ordering::Release);
                if n == 0 {
                    std::thread::yield_now();
                }
            }
            assert_eq!(got, pieces.concat());
        });
    }
}
