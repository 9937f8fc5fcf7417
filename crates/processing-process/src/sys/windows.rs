//! Windows: two anonymous pipes as the bootstrap channel, `CreateProcess` of the same program
//! (through `std::process::Command`), process handles as sentinels, `TerminateProcess`, and a
//! kill-on-close job object for daemonic children. Handles inside arguments travel as
//! `(pid, value)` (processing-core pulls them with `DuplicateHandle`), so the channel carries
//! bytes only. Every `Command::new` of the crate on Windows lives here.

use processing_core::frame::{self, ReadSource};
use processing_core::{os, ErrorChain};
use std::fs::File;
use std::io::{self, Write as _};
use std::os::windows::io::{
    AsHandle, AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle, RawHandle,
};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    SetHandleInformation, ERROR_INTERNAL_ERROR, HANDLE, HANDLE_FLAG_INHERIT,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
    SetInformationJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Pipes::CreatePipe;
use windows_sys::Win32::System::Threading::{
    ExitProcess, TerminateProcess, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE,
    PROCESS_TERMINATE,
};

use super::{apply_env_and_cwd, configure_exec, Event, ExecRequest};
use crate::error::SpawnError;
use crate::wire::{self, Frame, Setup, StdioMsg};
use crate::StartMethod;

/// The exit code `terminate` gives (as Python's `TERMINATE`).
pub(crate) const TERMINATE: i32 = 0x10000;
/// The exit code `kill` gives (Windows has one way to end a process).
pub(crate) const KILL: i32 = 0x10000;

/// The null device.
pub(crate) const NULL_DEVICE: &str = "NUL";

/// The platform's default start method.
pub(crate) fn default_start_method() -> StartMethod {
    StartMethod::Spawn
}

/// The start methods this platform offers.
pub(crate) fn available_methods() -> &'static [StartMethod] {
    &[StartMethod::Spawn]
}

/// The bootstrap channel: one pipe in each direction.
#[derive(Debug)]
pub(crate) struct Channel {
    read: File,
    write: File,
}

fn pipe() -> io::Result<(OwnedHandle, OwnedHandle)> {
    let mut read: HANDLE = std::ptr::null_mut();
    let mut write: HANDLE = std::ptr::null_mut();
    // SAFETY: both out-pointers are valid; no security attributes (not inheritable).
    let ok = unsafe { CreatePipe(&mut read, &mut write, std::ptr::null(), 0) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: CreatePipe succeeded; both handles are fresh and owned by nobody else.
    Ok(unsafe {
        (
            OwnedHandle::from_raw_handle(read as RawHandle),
            OwnedHandle::from_raw_handle(write as RawHandle),
        )
    })
}

/// Two connected channel ends: the parent's and the child's.
pub(crate) fn channel_pair() -> io::Result<(Channel, Channel)> {
    let (child_read, parent_write) = pipe()?;
    let (parent_read, child_write) = pipe()?;
    Ok((
        Channel {
            read: File::from(parent_read),
            write: File::from(parent_write),
        },
        Channel {
            read: File::from(child_read),
            write: File::from(child_write),
        },
    ))
}

/// The read end of the channel's pipe, where the writer's end closing (`ERROR_BROKEN_PIPE`) is
/// the end of the stream.
struct PipeReader<'a>(&'a File);

impl io::Read for PipeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (&mut &*self.0).read(buf) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
            r => r,
        }
    }
}

impl Channel {
    /// Sends one frame (handles travel inside the bytes on Windows).
    pub(crate) fn send_frame(
        &self,
        split: u32,
        body: &[u8],
        _handles: &[OwnedHandle],
    ) -> io::Result<()> {
        let mut buf = wire::frame_bytes(split, body)?;
        frame::write_reserved(&mut &self.write, &mut buf)
    }

    /// Receives one frame; `None` at a clean end of stream.
    pub(crate) fn recv_frame(&self) -> io::Result<Option<Frame>> {
        let Some(payload) = wire::read_payload(&mut ReadSource(PipeReader(&self.read)))? else {
            return Ok(None);
        };
        Frame::new(payload, Vec::new()).map(Some)
    }

    /// Whether a frame (or end of stream) can be read without blocking.
    pub(crate) fn readable_now(&self) -> bool {
        // An error (the writer is gone: end of stream) reads at once too.
        os::peek_named_pipe(self.read.as_handle()).map_or(true, |available| available > 0)
    }

    /// Not a descriptor on Windows (nothing to keep open by number).
    pub(crate) fn raw(&self) -> i32 {
        -1
    }

    pub(crate) fn as_os_handle(&self) -> BorrowedHandle<'_> {
        self.read.as_handle()
    }

    pub(crate) fn raw_for_child(&self) -> i64 {
        -1
    }

    fn marker(&self) -> String {
        format!(
            "{},{}",
            self.read.as_raw_handle() as usize,
            self.write.as_raw_handle() as usize
        )
    }

    fn set_inheritable(&self, on: bool) -> io::Result<()> {
        let flag = if on { HANDLE_FLAG_INHERIT } else { 0 };
        for h in [self.read.as_raw_handle(), self.write.as_raw_handle()] {
            // SAFETY: changes only the inheritance flag of a handle we own.
            if unsafe { SetHandleInformation(h as HANDLE, HANDLE_FLAG_INHERIT, flag) } == 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// A started child: its process handle.
#[derive(Debug)]
pub(crate) struct ProcHandle {
    pid: u32,
    handle: Option<OwnedHandle>,
}

impl ProcHandle {
    /// Opens process `pid` (a process that is gone reads as ended with code 0).
    pub(crate) fn open(pid: u32) -> ProcHandle {
        let handle = os::open_process(
            PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE | PROCESS_TERMINATE,
            pid,
        )
        .ok();
        ProcHandle { pid, handle }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit code if the process ended.
    pub(crate) fn try_wait(&self) -> io::Result<Option<i32>> {
        self.wait_ms(0)
    }

    fn wait_ms(&self, ms: u32) -> io::Result<Option<i32>> {
        let Some(handle) = &self.handle else {
            return Ok(Some(0));
        };
        if !os::wait_handle(handle.as_handle(), ms)? {
            return Ok(None);
        }
        Ok(Some(os::exit_code(handle.as_handle())? as i32))
    }

    /// Ends the process with exit code `code`.
    pub(crate) fn signal(&self, code: i32) -> io::Result<()> {
        let Some(handle) = &self.handle else {
            return Ok(());
        };
        // SAFETY: terminates a process through a handle we own.
        if unsafe { TerminateProcess(handle.as_raw_handle() as HANDLE, code as u32) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The process handle, signalled when the process ends.
    pub(crate) fn sentinel(&self) -> Option<BorrowedHandle<'_>> {
        self.handle.as_ref().map(|h| h.as_handle())
    }
}

/// Waits until `chan` is readable, the process may have exited, or `timeout` passes.
pub(crate) fn wait_event(
    chan: Option<&Channel>,
    proc: &ProcHandle,
    timeout: Option<Duration>,
) -> io::Result<Event> {
    if chan.is_some_and(Channel::readable_now) {
        return Ok(Event { channel: true });
    }
    // Pipes cannot be waited on together with a process handle: wait in short slices.
    let slice = Duration::from_millis(5);
    let t = timeout.map_or(slice, |t| t.min(slice));
    proc.wait_ms(t.as_millis() as u32)?;
    Ok(Event {
        channel: chan.is_some_and(Channel::readable_now),
    })
}

/// Ends and waits for a child that did not run the bootstrap, waiting at most `grace` first.
pub(crate) fn reap_within(proc: &ProcHandle, grace: Duration) -> Option<i32> {
    let deadline = Instant::now().checked_add(grace);
    loop {
        match proc.wait_ms(50) {
            Ok(Some(code)) => return Some(code),
            Err(_) => return None,
            Ok(None) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = proc.signal(KILL);
            return proc.wait_ms(5000).ok().flatten();
        }
    }
}

/// Nothing to reap on Windows.
pub(crate) fn reap_pid(_pid: u32) -> bool {
    true
}

/// A fingerprint of the running executable file (size and modification time).
pub(crate) fn image_fingerprint() -> u64 {
    let meta = std::env::current_exe().and_then(std::fs::metadata);
    match meta {
        Ok(m) => {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64);
            crate::target::fingerprint(&[m.len(), mtime])
        }
        Err(_) => 0,
    }
}

/// Serialises our spawns: the child's pipe ends are inheritable only while one runs.
static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// Starts the program (or `program`) with the child marker; returns the child.
pub(crate) fn spawn_exec(req: ExecRequest) -> Result<ProcHandle, SpawnError> {
    let ExecRequest {
        program,
        env,
        cwd,
        stdio,
        child_end,
        die_with_parent,
    } = req;
    let program = match program {
        Some(p) => p,
        None => std::env::current_exe()
            .map_err(|e| SpawnError::io("cannot locate the executable", e))?,
    };
    let mut cmd = std::process::Command::new(program);
    configure_exec(&mut cmd, child_end.marker(), env, cwd, stdio);
    let child = {
        let _lock = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        child_end
            .set_inheritable(true)
            .map_err(|e| SpawnError::io("cannot pass the bootstrap channel", e))?;
        let mut spawned = cmd.spawn();
        // Wine's CreateProcess now and then fails with ERROR_INTERNAL_ERROR while its server
        // is busy tearing other processes down; nothing was started, so a few bounded tries
        // (about 130 ms in all) are safe. Any other error is final at once.
        for pause_ms in [1, 5, 25, 100] {
            match &spawned {
                Err(e) if e.raw_os_error() == Some(ERROR_INTERNAL_ERROR as i32) => {
                    std::thread::sleep(std::time::Duration::from_millis(pause_ms));
                    spawned = cmd.spawn();
                }
                _ => break,
            }
        }
        let _ = child_end.set_inheritable(false);
        spawned.map_err(|e| SpawnError::io("cannot execute the program", e))?
    };
    drop(child_end);
    let pid = child.id();
    // The std Child gives up its process handle, which we now own.
    let handle = OwnedHandle::from(child);
    let handle_raw = handle.as_raw_handle() as HANDLE;
    let proc = ProcHandle {
        pid,
        handle: Some(handle),
    };
    if die_with_parent {
        if let Some(job) = kill_on_close_job() {
            // SAFETY: assigns a process handle we own to our job object.
            unsafe { AssignProcessToJobObject(job as HANDLE, handle_raw) };
        }
    }
    Ok(proc)
}

/// A job object that kills its processes when this process (its only holder) ends.
fn kill_on_close_job() -> Option<usize> {
    static JOB: OnceLock<Option<usize>> = OnceLock::new();
    *JOB.get_or_init(|| {
        // SAFETY: creates an anonymous job object and sets its limit flags from a zeroed,
        // then filled, structure of the right size; the handle is kept for the process's life.
        unsafe {
            let job = CreateJobObjectW(std::ptr::null(), std::ptr::null());
            if job.is_null() {
                return None;
            }
            let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
            info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            SetInformationJobObject(
                job,
                JobObjectExtendedLimitInformation,
                (&info as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            );
            Some(job as usize)
        }
    })
}

/// `fork()` does not exist on Windows.
///
/// # Safety
/// Always safe here; the signature matches the Unix one.
pub(crate) unsafe fn fork_raw() -> io::Result<Option<u32>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "fork is not available on Windows",
    ))
}

/// The fork start method does not exist on Windows.
pub(crate) fn fork_supported() -> Result<(), SpawnError> {
    Err(crate::error::unsupported(
        "the fork start method is not available on Windows",
    ))
}

/// Nothing to close by number on Windows.
pub(crate) fn close_raw(_raw: i64) {}

/// The fork server does not exist on Windows.
pub(crate) fn forkserver_request(_child_end: Channel) -> Result<super::ForkRequest, SpawnError> {
    Err(crate::error::unsupported(
        "the forkserver start method is not available on Windows",
    ))
}

/// The fork server does not exist on Windows.
pub(crate) fn serve_forkserver(_marker: &str) -> ! {
    exit_now(crate::wire::EXIT_BOOTSTRAP_FAILED)
}

/// Nothing inherited through fork on Windows.
pub(crate) fn forget_inherited_state() {}

/// Child side: nothing to adjust on Windows.
pub(crate) fn child_defaults() {}

/// Child side: applies the settings that a spawn did not already apply.
pub(crate) fn apply_setup(setup: Setup, _parent_pid: u32) -> Result<(), ErrorChain> {
    let Setup {
        env,
        cwd,
        stdio,
        limits,
        die_with_parent: _,
    } = setup;
    if !limits.is_empty() {
        return Err("resource limits are not supported on Windows".into());
    }
    if stdio.iter().any(|s| matches!(s, StdioMsg::Handle(_))) {
        return Err("redirections are applied by the spawn on Windows".into());
    }
    apply_env_and_cwd(env, cwd)
}

/// Resource limits are not supported on Windows.
pub(crate) fn limits_supported() -> bool {
    false
}

/// Nothing to close on Windows (handles are not inherited unless marked).
pub(crate) fn close_fds_except(_keep: &[i32]) {}

/// Child side: ends the process at once with `code`.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: ExitProcess ends the process; it never returns.
    unsafe { ExitProcess(code as u32) }
}

/// Writes `text` to the standard error handle (past any in-process output capture).
pub(crate) fn write_stderr(text: &str) {
    let _ = io::stderr().write_all(text.as_bytes());
}

/// Child side: the channel named by the marker's value (`<read handle>,<write handle>`).
pub(crate) fn parse_marker(value: &str) -> Option<Channel> {
    let (r, w) = value.trim().split_once(',')?;
    let r: usize = r.parse().ok()?;
    let w: usize = w.parse().ok()?;
    if r == 0 || w == 0 {
        return None;
    }
    // SAFETY: the parent passed these inherited pipe handles to this process as its bootstrap
    // channel; nothing else in this process owns them.
    let (read, write) = unsafe {
        (
            File::from_raw_handle(r as RawHandle),
            File::from_raw_handle(w as RawHandle),
        )
    };
    Some(Channel { read, write })
}

/// Standard handles are not duplicated on Windows (no fork server).
pub(crate) fn dup_stdio(_n: i32) -> io::Result<OwnedHandle> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no fork server on Windows",
    ))
}

/// No descriptor numbers on Windows.
pub(crate) fn raw_numbers(_handles: &[OwnedHandle]) -> Vec<i32> {
    Vec::new()
}
