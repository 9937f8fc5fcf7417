//! Windows: resident size from `GetProcessMemoryInfo`, Ctrl-C ignored in workers.

use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
use windows_sys::Win32::System::ProcessStatus::{GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

/// This process's working set in bytes, if it can be known.
pub(crate) fn resident_bytes() -> Option<u64> {
    // SAFETY: PROCESS_MEMORY_COUNTERS is plain old data; zero is a valid value.
    let mut counters: PROCESS_MEMORY_COUNTERS = unsafe { std::mem::zeroed() };
    counters.cb = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
    // SAFETY: the pseudo handle of this process and a valid, writable counters struct of the
    // size given in `cb`.
    let ok = unsafe { GetProcessMemoryInfo(GetCurrentProcess(), &mut counters, counters.cb) };
    (ok != 0).then_some(counters.WorkingSetSize as u64)
}

/// Workers leave Ctrl-C to the parent: the parent decides, and its workers end with it.
pub(crate) fn ignore_interrupts() {
    // SAFETY: a null handler with TRUE makes this process ignore Ctrl-C; no preconditions.
    unsafe {
        SetConsoleCtrlHandler(None, 1);
    }
}

use std::io;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    GetLastError, ERROR_BROKEN_PIPE, ERROR_PIPE_CONNECTED, GENERIC_READ, GENERIC_WRITE, HANDLE,
    INVALID_HANDLE_VALUE, WAIT_OBJECT_0,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, WriteFile, FILE_FLAG_FIRST_PIPE_INSTANCE, OPEN_EXISTING,
    PIPE_ACCESS_DUPLEX,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, DisconnectNamedPipe, PeekNamedPipe, PIPE_READMODE_BYTE,
    PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::WaitForSingleObject;

/// One end of a worker's channel: a byte-mode named pipe instance or its client handle.
#[derive(Debug)]
pub(crate) struct Stream(OwnedHandle);

impl Stream {
    fn raw(&self) -> HANDLE {
        self.0.as_raw_handle() as HANDLE
    }

    /// Ends the conversation: the peer's reads fail, so a worker exits.
    pub(crate) fn shutdown(&self, _how: std::net::Shutdown) -> io::Result<()> {
        // SAFETY: a valid pipe handle owned by self; disconnecting the server end of a pipe
        // (or failing harmlessly on the client end) touches nothing else.
        unsafe {
            DisconnectNamedPipe(self.raw());
        }
        Ok(())
    }
}

impl io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0u32;
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        // SAFETY: buf is valid for `len` writable bytes; synchronous read on a valid handle.
        let ok = unsafe {
            ReadFile(
                self.raw(),
                buf.as_mut_ptr(),
                len,
                &mut n,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            // SAFETY: no preconditions.
            if unsafe { GetLastError() } == ERROR_BROKEN_PIPE {
                return Ok(0);
            }
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A connected pair of byte streams: the parent keeps the first, the worker gets the second.
pub(crate) fn duplex() -> io::Result<(Stream, OwnedHandle)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nonce = processing_core::authkey::random_bytes(8)
        .iter()
        .fold(0u64, |a, b| (a << 8) | u64::from(*b));
    let name = format!(
        r"\\.\pipe\processing-pool-{}-{}-{nonce:016x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let name = wide(&name);
    // SAFETY: a valid NUL-terminated name; default security; the returned handle is checked.
    let server = unsafe {
        CreateNamedPipeW(
            name.as_ptr(),
            PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            1,
            1 << 20,
            1 << 20,
            0,
            std::ptr::null(),
        )
    };
    if server == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `server` is a fresh handle owned by nobody else.
    let server = unsafe { OwnedHandle::from_raw_handle(server as _) };
    // SAFETY: a valid NUL-terminated name; the returned handle is checked.
    let client = unsafe {
        CreateFileW(
            name.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            0,
            std::ptr::null(),
            OPEN_EXISTING,
            0,
            std::ptr::null_mut(),
        )
    };
    if client == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `client` is a fresh handle owned by nobody else.
    let client = unsafe { OwnedHandle::from_raw_handle(client as _) };
    // SAFETY: a valid server handle; the client is already connected, which the call reports
    // as ERROR_PIPE_CONNECTED.
    let ok = unsafe { ConnectNamedPipe(server.as_raw_handle() as HANDLE, std::ptr::null_mut()) };
    // SAFETY: no preconditions.
    if ok == 0 && unsafe { GetLastError() } != ERROR_PIPE_CONNECTED {
        return Err(io::Error::last_os_error());
    }
    Ok((Stream(server), client))
}

/// The worker's end, from the handle it received.
pub(crate) fn stream_from_handle(handle: OwnedHandle) -> Stream {
    Stream(handle)
}

/// Writes all of `data` (blocking).
pub(crate) fn write_all(stream: &Stream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let mut n = 0u32;
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        // SAFETY: data is valid for `len` readable bytes; synchronous write on a valid handle.
        let ok = unsafe {
            WriteFile(
                stream.raw(),
                data.as_ptr(),
                len,
                &mut n,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// Bytes waiting in the pipe; `None` once the other end is gone.
fn available(stream: &Stream) -> io::Result<Option<u32>> {
    let mut avail = 0u32;
    // SAFETY: a valid pipe handle; only the count of available bytes is written.
    let ok = unsafe {
        PeekNamedPipe(
            stream.raw(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            &mut avail,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        // SAFETY: no preconditions.
        if unsafe { GetLastError() } == ERROR_BROKEN_PIPE {
            return Ok(None);
        }
        return Err(io::Error::last_os_error());
    }
    Ok(Some(avail))
}

/// Reads what is available now into `buf` without blocking: `Ok(None)` if nothing is,
/// `Ok(Some(0))` at end of stream.
pub(crate) fn read_now(stream: &Stream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match available(stream)? {
        None => Ok(Some(0)),
        Some(0) => Ok(None),
        Some(n) => {
            let want = (n as usize).min(buf.len());
            let mut s = Stream(stream.0.try_clone()?);
            let got = io::Read::read(&mut s, &mut buf[..want])?;
            Ok(Some(got))
        }
    }
}

/// Waits until `stream` is readable or `sentinel` (the worker's process handle) is
/// signalled, at most `timeout`; returns `(stream readable, worker exited)`. Anonymous pipe
/// readiness cannot be waited for together with a process handle, so this checks in slices
/// of a millisecond.
pub(crate) fn wait_readable(
    stream: &Stream,
    sentinel: Option<BorrowedHandle<'_>>,
    timeout: Option<Duration>,
) -> io::Result<(bool, bool)> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        if available(stream)? != Some(0) {
            return Ok((true, false));
        }
        if let Some(s) = sentinel {
            // SAFETY: a valid process handle borrowed for the call.
            if unsafe { WaitForSingleObject(s.as_raw_handle() as HANDLE, 1) } == WAIT_OBJECT_0 {
                return Ok((false, true));
            }
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok((false, false));
        }
    }
}
