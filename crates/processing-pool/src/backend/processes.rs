//! The process backend: each worker is a daemonic child process running [`worker_main`].
//!
//! Parent and worker talk over a private stream (a Unix socketpair) in length-prefixed frames:
//!
//! - parent → worker, a batch: `u32 length, u32 count`, then per task `u64 id, i64 entry
//!   offset, u32 input length, input bytes`;
//! - worker → parent, one frame per event: `u32 length, u8 kind, u64 id, u8 status, payload`
//!   with kind `Ready`, `InitFailed`, `Done` or `Retire`.
//!
//! The worker replies to each task as soon as it finishes, before it starts the next, so the
//! first task of a batch without a reply is the one the worker was running. Death is noticed
//! by end of stream or by the worker's sentinel (a pidfd), whichever comes first; the exit
//! status comes from joining the process.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use processing_core::handles::TransferableHandle;
use processing_process::{Process, ProcessError, StartMethod};
use serde::{Deserialize, Serialize};

use super::{Backend, Exit, LinkError, Reply, TaskRef, WorkerControl, WorkerInit, WorkerLink};
use crate::sys;
use crate::task::{self, entry_from_offset, entry_to_offset, Status};
use crate::PoolError;

const KIND_READY: u8 = 0;
const KIND_INIT_FAILED: u8 = 1;
const KIND_DONE: u8 = 2;
const KIND_RETIRE: u8 = 3;
/// `u32 length, u8 kind, u64 id, u8 status`.
const REPLY_HEADER: usize = 4 + 1 + 8 + 1;
/// Largest frame either side accepts.
const MAX_FRAME: usize = 1 << 31;

/// Starts worker processes.
#[derive(Debug, Default)]
pub(crate) struct Processes {
    pub(crate) start_method: Option<StartMethod>,
}

/// What a worker process is started with.
#[derive(Serialize, Deserialize)]
struct WorkerArgs {
    channel: TransferableHandle,
    initializer: Option<(i64, Vec<u8>)>,
    max_memory: Option<u64>,
}

#[derive(Debug)]
struct ProcessControl {
    /// The worker's pid while it may be signalled (cleared before it is reaped, so that a
    /// late `kill` can never hit a reused pid).
    pid: Mutex<Option<u32>>,
    last_pid: u32,
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
        if let Some(pid) = *pid {
            sys::kill_pid(pid);
        }
    }
}

struct ProcessLink {
    stream: sys::Stream,
    process: Process<()>,
    control: Arc<ProcessControl>,
    /// Received bytes not consumed yet: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    exited: bool,
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
        let (stream, child_end) = sys::duplex()
            .map_err(|e| PoolError::Spawn(format!("cannot create a worker channel: {e}")))?;
        let args = WorkerArgs {
            channel: TransferableHandle::new(child_end),
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
        process
            .start()
            .map_err(|e| PoolError::Spawn(e.to_string()))?;
        let pid = process.pid().unwrap_or(0);
        Ok(Box::new(ProcessLink {
            stream,
            process,
            control: Arc::new(ProcessControl {
                pid: Mutex::new(Some(pid)),
                last_pid: pid,
            }),
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            out: Vec::new(),
            exited: false,
        }))
    }

    fn is_threads(&self) -> bool {
        false
    }
}

impl ProcessLink {
    /// The length of the complete frame at the front of the buffer, if there is one.
    fn complete_frame(&self) -> Result<Option<usize>, LinkError> {
        let available = self.end - self.start;
        if available < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(
            self.buf[self.start..self.start + 4]
                .try_into()
                .unwrap_or_default(),
        ) as usize;
        if len + 4 < REPLY_HEADER || len > MAX_FRAME {
            return Err(LinkError::Lost);
        }
        Ok((available >= 4 + len).then_some(4 + len))
    }

    /// Makes room for at least `need` bytes after `end`.
    fn reserve(&mut self, need: usize) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < need {
            let want = (self.end + need).max(self.buf.len() * 2);
            self.buf.resize(want, 0);
        }
    }

    /// Reads what is there now; `Ok(false)` if nothing was, `Err(Lost)` at end of stream.
    fn fill_now(&mut self) -> Result<bool, LinkError> {
        let frame_need = if self.end - self.start >= 4 {
            let len = u32::from_le_bytes(
                self.buf[self.start..self.start + 4]
                    .try_into()
                    .unwrap_or_default(),
            ) as usize;
            (4 + len).saturating_sub(self.end - self.start)
        } else {
            4
        };
        self.reserve(frame_need.clamp(4, MAX_FRAME).max(16 * 1024));
        match sys::read_now(&self.stream, &mut self.buf[self.end..]) {
            Ok(Some(0)) => Err(LinkError::Lost),
            Ok(Some(n)) => {
                self.end += n;
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(_) => Err(LinkError::Lost),
        }
    }

    fn parse(&mut self, frame_len: usize) -> Result<Reply<'_>, LinkError> {
        let frame = &self.buf[self.start..self.start + frame_len];
        self.start += frame_len;
        if self.start == self.end {
            // Everything consumed: the next read starts at the front (the frame slice stays
            // valid, nothing is moved until the next `fill_now`).
        }
        let kind = frame[4];
        let id = u64::from_le_bytes(frame[5..13].try_into().unwrap_or_default());
        let status = Status::from_u8(frame[13]).ok_or(LinkError::Lost)?;
        let payload = &frame[REPLY_HEADER..];
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
}

impl WorkerLink for ProcessLink {
    fn control(&self) -> Arc<dyn WorkerControl> {
        self.control.clone()
    }

    fn send(&mut self, tasks: &[TaskRef<'_>]) -> Result<(), LinkError> {
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(tasks.len() as u32).to_le_bytes());
        for t in tasks {
            out.extend_from_slice(&t.id.to_le_bytes());
            out.extend_from_slice(&entry_to_offset(t.entry).to_le_bytes());
            out.extend_from_slice(&(t.input.len() as u32).to_le_bytes());
            out.extend_from_slice(t.input);
        }
        let len = u32::try_from(out.len() - 4).map_err(|_| LinkError::Lost)?;
        out[..4].copy_from_slice(&len.to_le_bytes());
        let result = sys::write_all(&self.stream, out);
        if out.capacity() > 4 << 20 {
            *out = Vec::new();
        }
        result.map_err(|_| LinkError::Lost)
    }

    fn recv(&mut self, deadline: Option<Instant>) -> Result<Reply<'_>, LinkError> {
        loop {
            if let Some(n) = self.complete_frame()? {
                return self.parse(n);
            }
            if self.fill_now()? {
                continue;
            }
            if self.exited {
                // The worker is gone and everything it wrote has been read.
                return Err(LinkError::Lost);
            }
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(LinkError::Timeout);
                    }
                    Some(d - now)
                }
            };
            let sentinel = self.process.sentinel();
            let (_readable, exited) =
                sys::wait_readable(&self.stream, sentinel, timeout).map_err(|_| LinkError::Lost)?;
            if exited {
                self.exited = true;
            }
        }
    }

    fn retire(mut self: Box<Self>) {
        // End of stream tells the worker to exit; it holds no task now.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if self
            .process
            .join_timeout(std::time::Duration::from_secs(5))
            .is_err_and(|e| e.is_timeout())
        {
            self.control.kill();
        }
        *self.control.pid.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let _ = self.process.join();
    }

    fn reap(mut self: Box<Self>) -> Exit {
        let pid = self.control.last_pid;
        // A worker that lost its channel but still runs is killed; then its status is read.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if self
            .process
            .join_timeout(std::time::Duration::from_millis(200))
            .is_err_and(|e| e.is_timeout())
        {
            self.control.kill();
        }
        *self.control.pid.lock().unwrap_or_else(|e| e.into_inner()) = None;
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

fn write_frame(
    stream: &sys::Stream,
    out: &mut [u8],
    kind: u8,
    id: u64,
    status: Status,
) -> std::io::Result<()> {
    let len = (out.len() - 4) as u32;
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4] = kind;
    out[5..13].copy_from_slice(&id.to_le_bytes());
    out[13] = status as u8;
    sys::write_all(stream, out)
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
    let mut stream = sys::stream_from_handle(args.channel.into_inner());
    let mut out = Vec::with_capacity(64 * 1024);
    begin_frame(&mut out);
    if let Some((offset, bytes)) = &args.initializer {
        // SAFETY: the offset was made by `entry_to_offset` in the parent, which runs the same
        // executable image (the process layer checks the build identity at start).
        let entry = unsafe { entry_from_offset(*offset) };
        let status = entry(bytes, &mut out);
        if status != Status::Ok {
            let _ = write_frame(&stream, &mut out, KIND_INIT_FAILED, 0, status);
            return;
        }
        begin_frame(&mut out);
    }
    if write_frame(&stream, &mut out, KIND_READY, 0, Status::Ok).is_err() {
        return;
    }
    let mut frame = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let len = u32::from_le_bytes(len) as usize;
        frame.resize(len, 0);
        if stream.read_exact(&mut frame).is_err() {
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
            let status = entry(input, &mut out);
            if write_frame(&stream, &mut out, KIND_DONE, id, status).is_err() {
                return;
            }
            if out.capacity() > 4 << 20 {
                out = Vec::with_capacity(64 * 1024);
            }
            if let Some(max) = args.max_memory {
                if sys::resident_bytes().is_some_and(|rss| rss > max) {
                    begin_frame(&mut out);
                    let _ = write_frame(&stream, &mut out, KIND_RETIRE, 0, Status::Ok);
                    return;
                }
            }
        }
        if frame.capacity() > 4 << 20 {
            frame = Vec::new();
        }
    }
}
