//! The process backend: each worker is a daemonic child process running [`worker_main`].
//!
//! Parent and worker talk over a private stream (a Unix socketpair) in the frames of
//! processing-core's framer ([`processing_core::frame`]), whose bodies are:
//!
//! - parent → worker, a batch: `u32 count`, then per task `u64 id, i64 entry offset, u32 input
//!   length, input bytes`;
//! - worker → parent, one frame per event: `u8 kind, u64 id, u8 status, payload` with kind
//!   `Ready`, `InitFailed`, `Done` or `Retire`.
//!
//! Where the platform has shared memory files (Linux), the reply frames go into a reply ring
//! shared with the supervisor (processing-shm's one SPSC ring, `processing_shm::spsc`, each
//! message a reply's body, the bytes after the room for its frame header) instead of the stream: publishing a reply
//! is a copy and an atomic store, not a system call. The stream then carries only wake-up
//! frames (kind `Wake`, when the supervisor sleeps: the ring's sleep hand-over with the
//! socket as its bell, since the supervisor sleeps in `poll` on the stream and the worker's
//! sentinel) and replies too large for the ring (announced by a `Stream` entry in the ring,
//! so that the ring fixes the order of every reply).
//!
//! A worker publishes each reply here before it starts its next task: a copy and an atomic
//! store instead of a system call, and still durable if the worker dies right after (the
//! memory belongs to the supervisor too). So "the first task of a batch without a reply is the
//! one that was running" stays exact.
//!
//! The worker publishes each reply as soon as its task finishes, before it starts the next, so
//! the first task of a batch without a reply is the one the worker was running, if it began
//! it: the worker writes the id of each task it begins into a [`Marker`] shared with the
//! supervisor (Linux, Windows), so a task it never began (stopped, or killed before reading its batch)
//! goes to another worker instead of failing. Death is
//! noticed by end of stream or by the worker's sentinel (a pidfd), whichever comes first, and
//! everything published before it (ring and stream) is read first; the exit status comes from
//! joining the process.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use processing_core::frame::{self, Body, FrameError, FrameReader, FrameSource, ReadSource};
use processing_core::frame::{Sealed, RESERVED};
use processing_core::handles::TransferableHandle;
use processing_core::os::SpinPolicy;
use processing_core::OwnedOsHandle;
use processing_process::{KillHandle, Process, ProcessError, StartMethod};
use serde::{Deserialize, Serialize};

use super::{Backend, Exit, LinkError, Reply, TaskRef, WorkerControl, WorkerInit, WorkerLink};
use crate::sys;
use crate::task::{self, entry_from_offset, entry_to_offset, Status};
use crate::{PoolError, WorkerStartError};

const KIND_READY: u8 = 0;
const KIND_INIT_FAILED: u8 = 1;
const KIND_DONE: u8 = 2;
const KIND_RETIRE: u8 = 3;
/// A ring entry: the next reply travels on the stream.
const KIND_STREAM: u8 = 4;
/// A stream frame that only wakes a sleeping supervisor (ring mode).
const KIND_WAKE: u8 = 5;
/// The room for the frame header (a ring message starts after it), then `u8 kind, u64 id, u8
/// status`.
const REPLY_HEADER: usize = RESERVED + REPLY_FIELDS;
/// `u8 kind, u64 id, u8 status`: the start of a reply's body.
const REPLY_FIELDS: usize = 1 + 8 + 1;
/// Largest frame body either side accepts.
const MAX_FRAME: u64 = 1 << 31;
// A batch is one task of up to `task::MAX_TASK_BYTES`, or several within the batch budget
// (`core::take_batch`): its message (count, then id, entry, length and arguments of each task)
// and a reply (its fields, results) fit a frame, so their `u32` length fields never truncate.
const _: () = assert!(task::MAX_TASK_BYTES as u64 + 64 <= MAX_FRAME);
const _: () =
    assert!((crate::core::MAX_BATCH_BYTES + crate::core::MAX_BATCH * 64) as u64 + 64 <= MAX_FRAME);
/// The read-ahead of the supervisor's stream reader.
const READ_AHEAD: usize = 64 * 1024;

/// Starts worker processes.
#[derive(Debug, Default)]
pub(crate) struct Processes {
    pub(crate) start_method: Option<StartMethod>,
}

/// What a worker process is started with.
#[derive(Serialize, Deserialize)]
struct WorkerArgs {
    channel: TransferableHandle,
    /// The reply ring's memory file, where the platform has them.
    ring: Option<TransferableHandle>,
    initializer: Option<(i64, Vec<u8>)>,
    max_memory: Option<u64>,
    /// The task marker's memory file ([`Marker`]), where the platform has them.
    marker: Option<MarkerArg>,
}

#[derive(Debug)]
struct ProcessControl {
    /// The worker's pid while it may be signalled (cleared before it is reaped, so that a
    /// late `kill` can never hit a reused pid).
    pid: Mutex<Option<u32>>,
    last_pid: u32,
    /// Ends the worker from any thread without ever reaching a reused pid (a fork-server
    /// worker is the server's child, reaped by the server, not by us).
    killer: Option<KillHandle>,
}

impl WorkerControl for ProcessControl {
    fn pid(&self) -> u32 {
        self.pid
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(self.last_pid)
    }
    fn kill(&self) {
        let pid = self.pid.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(_), Some(killer)) = (*pid, &self.killer) {
            let _ = killer.kill();
        }
    }
}

struct ProcessLink {
    stream: sys::Stream,
    process: Process<()>,
    control: Arc<ProcessControl>,
    /// The stream's frames (what arrived of the next one stays here between attempts).
    frames: FrameReader,
    /// The last reply taken from the stream (borrowed by `recv`'s result until the next call).
    last: Option<Body>,
    out: Vec<u8>,
    exited: bool,
    /// End of stream (or a read error) was seen.
    closed: bool,
    /// The reply ring, if the worker publishes there (the reply last returned is held until
    /// the next `recv`).
    ring: Option<Consumer>,
    /// The ring announced that the next reply is on the stream.
    from_stream: bool,
    /// How long to spin on an empty ring before sleeping (learnt from the waits for replies;
    /// no spin while the machine is oversubscribed).
    waits: SpinPolicy,
    /// Which task the worker began last, if the platform shares memory with it.
    marker: Option<Marker>,
}

/// Where the reply `recv` found is.
enum Found {
    /// The reply held by the ring.
    Ring,
    Stream(Body),
}

/// Why a non-blocking read of the stream stopped.
enum Pull {
    /// Nothing there now.
    Empty,
    Frame(FrameError),
}

impl From<FrameError> for Pull {
    fn from(e: FrameError) -> Pull {
        Pull::Frame(e)
    }
}

/// The supervisor's stream, read without blocking; its end (or an error) is remembered.
struct Now<'a> {
    stream: &'a sys::Stream,
    closed: &'a mut bool,
}

impl FrameSource for Now<'_> {
    type Error = Pull;

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Pull> {
        if *self.closed {
            return Ok(0);
        }
        match sys::read_now(self.stream, buf) {
            Ok(Some(0)) | Err(_) => {
                *self.closed = true;
                Ok(0)
            }
            Ok(Some(n)) => Ok(n),
            Ok(None) => Err(Pull::Empty),
        }
    }
}

/// Writes the frame built in `buf` behind [`RESERVED`] bytes of header room.
fn write_frame(stream: &sys::Stream, buf: &mut [u8]) -> std::io::Result<()> {
    match frame::seal(buf) {
        Some(Sealed::Whole(bytes)) => sys::write_all(stream, bytes),
        Some(Sealed::Split(header, body)) => {
            sys::write_all(stream, header.as_bytes())?;
            sys::write_all(stream, body)
        }
        None => Err(std::io::ErrorKind::InvalidInput.into()),
    }
}

impl std::fmt::Debug for ProcessLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessLink")
            .field("process", &self.process)
            .finish_non_exhaustive()
    }
}

impl Backend for Processes {
    fn start(&self, init: &WorkerInit) -> Result<Box<dyn WorkerLink>, PoolError> {
        let (stream, child_end) = sys::duplex().map_err(|e| {
            PoolError::Spawn(WorkerStartError::with_source(
                "cannot create a worker channel",
                e,
            ))
        })?;
        let (ring, ring_handle) = match create_ring() {
            Some((ring, handle)) => (Some(ring), Some(TransferableHandle::new(handle))),
            None => (None, None),
        };
        let (marker, marker_handle) = match Marker::create() {
            Some((marker, arg)) => (Some(marker), Some(arg)),
            None => (None, None),
        };
        let args = WorkerArgs {
            marker: marker_handle,
            channel: TransferableHandle::new(child_end),
            ring: ring_handle,
            initializer: init
                .initializer
                .as_ref()
                .map(|(entry, bytes)| (entry_to_offset(*entry), bytes.clone())),
            max_memory: init.max_memory,
        };
        let mut process = Process::new(worker_main, args)
            .name("PoolWorker")
            .daemon(true);
        if let Some(m) = self.start_method {
            process = process.start_method(m);
        }
        process.start().map_err(|e| {
            PoolError::Spawn(WorkerStartError::with_source(
                "cannot start a worker process",
                e,
            ))
        })?;
        let pid = process.pid().unwrap_or(0);
        let killer = process.kill_handle();
        Ok(Box::new(ProcessLink {
            stream,
            process,
            control: Arc::new(ProcessControl {
                pid: Mutex::new(Some(pid)),
                last_pid: pid,
                killer,
            }),
            frames: FrameReader::new(READ_AHEAD),
            last: None,
            out: Vec::new(),
            exited: false,
            closed: false,
            ring,
            from_stream: false,
            waits: SpinPolicy::new(),
            marker,
        }))
    }

    fn is_threads(&self) -> bool {
        false
    }
}

impl ProcessLink {
    /// Closes the worker's channel (its end of stream) and gives it `grace` to exit before it
    /// is killed; its pid is no longer reported after.
    fn close_within(&mut self, grace: std::time::Duration) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if self
            .process
            .join_timeout(grace)
            .is_err_and(|e| e.is_timeout())
        {
            self.control.kill();
        }
        *self.control.pid.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Finds the next reply (ring first, then the stream) without blocking.
    fn find(&mut self) -> Result<Option<Found>, LinkError> {
        loop {
            if !self.from_stream {
                if let Some(ring) = &mut self.ring {
                    if let Some(reply) = ring.take().map_err(|_| LinkError::Lost)? {
                        if reply.first() == Some(&KIND_STREAM) {
                            ring.release();
                            self.from_stream = true;
                            continue;
                        }
                        return Ok(Some(Found::Ring));
                    }
                }
            }
            let mut now = Now {
                stream: &self.stream,
                closed: &mut self.closed,
            };
            let body = match self.frames.read_frame(&mut now, MAX_FRAME) {
                Ok(body) => body,
                // The end of the stream is noticed by `recv` (`closed`).
                Err(Pull::Empty | Pull::Frame(FrameError::Eof | FrameError::Truncated { .. })) => {
                    return Ok(None)
                }
                Err(Pull::Frame(_)) => return Err(LinkError::Lost),
            };
            if self.frames.body(&body).first() == Some(&KIND_WAKE) {
                continue;
            }
            if self.ring.is_some() && !self.from_stream {
                // A reply on the stream that the ring did not announce.
                return Err(LinkError::Lost);
            }
            self.from_stream = false;
            return Ok(Some(Found::Stream(body)));
        }
    }
}

/// A reply from its body (`u8 kind, u64 id, u8 status, payload`).
fn parse_reply(body: &[u8]) -> Result<Reply<'_>, LinkError> {
    let Some((fields, payload)) = body.split_first_chunk::<REPLY_FIELDS>() else {
        return Err(LinkError::Lost);
    };
    let kind = fields[0];
    let id = read_u64(fields, 1).unwrap_or_default();
    let status = Status::from_u8(fields[9]).ok_or(LinkError::Lost)?;
    match kind {
        KIND_READY => Ok(Reply::Ready),
        KIND_INIT_FAILED => Ok(Reply::InitFailed(super::threads::reply_error(
            status, payload,
        ))),
        KIND_DONE => Ok(Reply::Done {
            id,
            status,
            payload,
        }),
        KIND_RETIRE => Ok(Reply::Retire),
        _ => Err(LinkError::Lost),
    }
}

/// The reply ring's dimensions: 256 KiB of entries, replies up to a quarter of it (larger
/// ones travel on the stream). Under loom 64 bytes, so that models wrap around.
#[cfg(all(unix, not(loom)))]
pub(crate) const RING: Size = Size {
    capacity: 256 * 1024,
    max_message: 64 * 1024 - 4,
};
/// The reply ring's dimensions (a small ring under loom, so that models wrap around).
#[cfg(all(unix, loom))]
pub(crate) const RING: Size = Size {
    capacity: 64,
    max_message: 12,
};

/// A new reply ring and the memory file to hand to the worker, where the platform has them
/// (processing-shm's sealed memory file, Linux only; not under loom, whose rings live on the
/// heap).
#[cfg(all(target_os = "linux", not(loom)))]
fn create_ring() -> Option<(Consumer, OwnedOsHandle)> {
    let region = processing_shm::Region::anonymous(c"processing-pool-ring", RING.bytes()).ok()?;
    let fd = region.fd().try_clone_to_owned().ok()?;
    Some((Consumer::new(Arc::new(region), 0, RING).ok()?, fd))
}

#[cfg(not(all(target_os = "linux", not(loom))))]
fn create_ring() -> Option<(Consumer, OwnedOsHandle)> {
    None
}

/// The worker's side of the ring made by [`create_ring`].
#[cfg(all(target_os = "linux", not(loom)))]
fn open_ring(handle: OwnedOsHandle) -> Option<Producer> {
    let region = processing_shm::Region::from_fd(handle, RING.bytes()).ok()?;
    Producer::new(Arc::new(region), 0, RING).ok()
}

#[cfg(not(all(target_os = "linux", not(loom))))]
fn open_ring(_handle: OwnedOsHandle) -> Option<Producer> {
    None
}

#[cfg(unix)]
use processing_shm::spsc::{Consumer, Producer, Size};

/// The id of the task a worker runs, in memory shared with its supervisor: the worker writes
/// it before it calls the task, the supervisor reads it after losing the worker. A batch's
/// first task without a reply whose id is not there was never begun (the worker was stopped
/// or killed before it read or reached it), so it goes to another worker instead of failing
/// with `WorkerLost`. Unix: a page of a memory file (like the reply ring); Windows: a
/// processing-shm segment (the pool's Windows seam has no memory files of its own).
#[derive(Debug)]
struct Marker {
    #[cfg(unix)]
    map: processing_shm::Region,
    #[cfg(windows)]
    value: processing_shm::RawValue<u64>,
}

/// How a worker receives its marker.
#[cfg(unix)]
type MarkerArg = TransferableHandle;
#[cfg(windows)]
type MarkerArg = processing_shm::RawValue<u64>;

#[cfg(unix)]
const MARKER_LEN: usize = 4096;

impl Marker {
    #[cfg(unix)]
    fn create() -> Option<(Marker, MarkerArg)> {
        let map = processing_shm::Region::anonymous(c"processing-pool-marker", MARKER_LEN).ok()?;
        let fd = map.fd().try_clone_to_owned().ok()?;
        Some((Marker { map }, TransferableHandle::new(fd)))
    }

    #[cfg(windows)]
    fn create() -> Option<(Marker, MarkerArg)> {
        let value = processing_shm::RawValue::new(0u64).ok()?;
        Some((
            Marker {
                value: value.clone(),
            },
            value,
        ))
    }

    #[cfg(unix)]
    fn open(arg: MarkerArg) -> Option<Marker> {
        Some(Marker {
            map: processing_shm::Region::from_fd(arg.into_inner(), MARKER_LEN).ok()?,
        })
    }

    #[cfg(windows)]
    fn open(arg: MarkerArg) -> Option<Marker> {
        Some(Marker { value: arg })
    }

    fn word(&self) -> &std::sync::atomic::AtomicU64 {
        #[cfg(unix)]
        let ptr = self.map.as_ptr().as_ptr().cast::<u64>();
        #[cfg(windows)]
        let ptr = self.value.as_ptr();
        // SAFETY: the start of a page-aligned shared mapping of at least 8 bytes that lives as
        // long as `self`; both processes access the word only atomically.
        unsafe { std::sync::atomic::AtomicU64::from_ptr(ptr) }
    }

    /// Worker: task `id` starts now.
    fn begin(&self, id: u64) {
        self.word().store(id, std::sync::atomic::Ordering::SeqCst);
    }

    /// Supervisor, after the worker is gone: whether it began task `id`.
    fn began(&self, id: u64) -> bool {
        self.word().load(std::sync::atomic::Ordering::SeqCst) == id
    }
}

/// No reply ring on this platform: every reply travels on the stream.
#[cfg(not(unix))]
#[derive(Debug)]
enum Consumer {}

#[cfg(not(unix))]
impl Consumer {
    fn take(&mut self) -> Result<Option<&[u8]>, ()> {
        match *self {}
    }
    fn held(&self) -> Option<&[u8]> {
        match *self {}
    }
    fn release(&mut self) {
        match *self {}
    }
    fn has_data(&self) -> bool {
        match *self {}
    }
    fn prepare_sleep(&self) -> bool {
        match *self {}
    }
    fn end_sleep(&self) {
        match *self {}
    }
}

/// No reply ring on this platform (the worker's side).
#[cfg(not(unix))]
enum Producer {}

#[cfg(not(unix))]
impl Producer {
    fn fits(&self, _len: usize) -> bool {
        match *self {}
    }
    fn push(&mut self, _parts: &[&[u8]]) -> Result<bool, ()> {
        match *self {}
    }
}

impl WorkerLink for ProcessLink {
    fn control(&self) -> Arc<dyn WorkerControl> {
        self.control.clone()
    }

    fn send(&mut self, tasks: &[TaskRef<'_>]) -> Result<(), LinkError> {
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(&[0; RESERVED]);
        out.extend_from_slice(&(tasks.len() as u32).to_le_bytes());
        for t in tasks {
            out.extend_from_slice(&t.id.to_le_bytes());
            out.extend_from_slice(&entry_to_offset(t.entry).to_le_bytes());
            out.extend_from_slice(&(t.input.len() as u32).to_le_bytes());
            out.extend_from_slice(t.input);
        }
        let result = write_frame(&self.stream, out);
        if out.capacity() > 4 << 20 {
            *out = Vec::new();
        }
        result.map_err(|_| LinkError::Lost)
    }

    fn recv(&mut self, deadline: Option<Instant>) -> Result<Reply<'_>, LinkError> {
        if let Some(ring) = &mut self.ring {
            // The previous reply (borrowed until this call) is no longer needed.
            ring.release();
        }
        self.last = None;
        let mut spun = false;
        let mut waiting_since: Option<Instant> = None;
        let mut last_look = false;
        let found = loop {
            if let Some(found) = self.find()? {
                if let Some(since) = waiting_since {
                    self.waits.record(since.elapsed());
                }
                break found;
            }
            waiting_since.get_or_insert_with(Instant::now);
            if self.exited || self.closed {
                // The worker is gone; one more look collects what it published just before.
                if last_look {
                    return Err(LinkError::Lost);
                }
                last_look = true;
                continue;
            }
            let ring = self.ring.as_ref().filter(|_| !self.from_stream);
            if let Some(ring) = ring {
                if !spun {
                    spun = true;
                    if self.waits.spin_until(|| ring.has_data()) {
                        continue;
                    }
                }
            }
            let timeout = processing_core::time_left(deadline).map_err(|_| LinkError::Timeout)?;
            if let Some(ring) = ring {
                if !ring.prepare_sleep() {
                    continue;
                }
            }
            let sentinel = self.process.sentinel();
            let waited = sys::wait_readable(&self.stream, sentinel, timeout);
            if let Some(ring) = ring {
                ring.end_sleep();
            }
            let (_readable, exited) = waited.map_err(|_| LinkError::Lost)?;
            if exited {
                self.exited = true;
            }
        };
        match (found, &self.ring) {
            (Found::Ring, Some(ring)) => parse_reply(ring.held().ok_or(LinkError::Lost)?),
            (Found::Stream(body), _) => {
                let body = self.last.insert(body);
                parse_reply(self.frames.body(body))
            }
            (Found::Ring, None) => Err(LinkError::Lost),
        }
    }

    fn began(&self, id: u64) -> Option<bool> {
        self.marker.as_ref().map(|m| m.began(id))
    }

    fn is_lost(&self) -> bool {
        !self.process.is_alive()
    }

    fn may_be_lost(&self) -> bool {
        true
    }

    fn retire(mut self: Box<Self>) {
        // End of stream tells the worker to exit; it holds no task now.
        self.close_within(std::time::Duration::from_secs(5));
        let _ = self.process.join();
    }

    fn reap(mut self: Box<Self>) -> Exit {
        let pid = self.control.last_pid;
        // A worker that lost its channel but still runs is killed; then its status is read.
        self.close_within(std::time::Duration::from_millis(200));
        let outcome = match self.process.join() {
            Ok(()) => Ok(()),
            Err(ProcessError::AlreadyJoined) => Ok(()),
            Err(e) => Err(e),
        };
        let code = self.process.exitcode();
        let (exitcode, signal) = match (outcome, code) {
            (Err(ProcessError::Signaled(s)), _) => (None, Some(s)),
            (Err(ProcessError::Exited(c)), _) => (Some(c), None),
            (_, Some(c)) if c < 0 => (None, Some(-c)),
            (_, c) => (c, None),
        };
        Exit {
            pid,
            exitcode,
            signal,
        }
    }
}

/// How a worker publishes its replies: into the ring if there is one, else on the stream.
struct Replies {
    stream: sys::Stream,
    ring: Option<Producer>,
}

impl Replies {
    /// Writes a reply's fields behind the room for its frame header or ring word.
    fn header(out: &mut [u8], kind: u8, id: u64, status: Status) {
        out[RESERVED] = kind;
        out[RESERVED + 1..RESERVED + 9].copy_from_slice(&id.to_le_bytes());
        out[RESERVED + 9] = status as u8;
    }

    /// Publishes one reply (`out` starts with [`REPLY_HEADER`] bytes of room).
    fn send(&mut self, out: &mut [u8], kind: u8, id: u64, status: Status) -> std::io::Result<()> {
        Self::header(out, kind, id, status);
        let Some(ring) = &mut self.ring else {
            return write_frame(&self.stream, out);
        };
        if ring.fits(out.len() - RESERVED) {
            return Self::push(ring, &self.stream, out);
        }
        // Too large for the ring: announce it there, then send it on the stream.
        let mut marker = [0u8; REPLY_HEADER];
        Self::header(&mut marker, KIND_STREAM, id, Status::Ok);
        Self::push(ring, &self.stream, &marker)?;
        write_frame(&self.stream, out)
    }

    /// Publishes a reply's body in the ring (the ring keeps its own length word) and rings
    /// the supervisor's bell, a wake-up frame on the stream, if it sleeps.
    fn push(ring: &mut Producer, stream: &sys::Stream, reply: &[u8]) -> std::io::Result<()> {
        let body = reply.get(RESERVED..).unwrap_or_default();
        if ring
            .push(&[body])
            .map_err(|_| std::io::ErrorKind::InvalidInput)?
        {
            let mut wake = [0u8; REPLY_HEADER];
            Self::header(&mut wake, KIND_WAKE, 0, Status::Ok);
            write_frame(stream, &mut wake)?;
        }
        Ok(())
    }
}

fn begin_frame(out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0; REPLY_HEADER]);
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The body of a worker process: run the initializer, then batches until end of stream.
fn worker_main(args: WorkerArgs) {
    sys::ignore_interrupts();
    task::install_panic_hook();
    let stream = sys::stream_from_handle(args.channel.into_inner());
    let ring = match args.ring {
        Some(handle) => match open_ring(handle.into_inner()) {
            Some(ring) => Some(ring),
            // The supervisor reads the ring: without it this worker cannot answer.
            None => return,
        },
        None => None,
    };
    let marker = match args.marker {
        Some(arg) => match Marker::open(arg) {
            Some(marker) => Some(marker),
            // Without it a lost task could not be told from one never begun: do not serve.
            None => return,
        },
        None => None,
    };
    let mut replies = Replies { stream, ring };
    let mut out = Vec::with_capacity(64 * 1024);
    begin_frame(&mut out);
    if let Some((offset, bytes)) = &args.initializer {
        // SAFETY: the offset was made by `entry_to_offset` in the parent, which runs the same
        // executable image (the process layer checks the build identity at start).
        let entry = unsafe { entry_from_offset(*offset) };
        let status = entry(bytes, &mut out);
        if status != Status::Ok {
            let _ = replies.send(&mut out, KIND_INIT_FAILED, 0, status);
            return;
        }
        begin_frame(&mut out);
    }
    if replies.send(&mut out, KIND_READY, 0, Status::Ok).is_err() {
        return;
    }
    let mut frame = Vec::new();
    loop {
        // The end of the stream (or a broken one) ends the worker.
        if frame::read_frame(&mut ReadSource(&mut replies.stream), MAX_FRAME, &mut frame).is_err() {
            return;
        }
        let Some(count) = read_u32(&frame, 0) else {
            return;
        };
        let mut at = 4;
        for _ in 0..count {
            let (Some(id), Some(offset), Some(input_len)) = (
                read_u64(&frame, at),
                read_u64(&frame, at + 8),
                read_u32(&frame, at + 16),
            ) else {
                return;
            };
            at += 20;
            let Some(input) = frame.get(at..at + input_len as usize) else {
                return;
            };
            at += input_len as usize;
            begin_frame(&mut out);
            // SAFETY: as for the initializer: an offset made by the parent, same image.
            let entry = unsafe { entry_from_offset(offset as i64) };
            if let Some(m) = &marker {
                m.begin(id);
            }
            let status = entry(input, &mut out);
            let status = task::limit_output(&mut out, REPLY_HEADER, status);
            if replies.send(&mut out, KIND_DONE, id, status).is_err() {
                return;
            }
            if out.capacity() > 4 << 20 {
                out = Vec::with_capacity(64 * 1024);
            }
            if let Some(max) = args.max_memory {
                if sys::resident_bytes().is_some_and(|rss| rss > max) {
                    begin_frame(&mut out);
                    let _ = replies.send(&mut out, KIND_RETIRE, 0, Status::Ok);
                    return;
                }
            }
        }
        if frame.capacity() > 4 << 20 {
            frame = Vec::new();
        }
    }
}
