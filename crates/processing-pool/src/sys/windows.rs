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
use std::os::windows::io::{AsHandle, BorrowedHandle, OwnedHandle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use processing_core::os;
use windows_sys::Win32::Foundation::ERROR_BROKEN_PIPE;

/// One end of a worker's channel: a byte-mode named pipe instance or its client handle.
#[derive(Debug)]
pub(crate) struct Stream(OwnedHandle);

impl Stream {
    /// Ends the conversation: the peer's reads fail, so a worker exits.
    pub(crate) fn shutdown(&self, _how: std::net::Shutdown) -> io::Result<()> {
        // Disconnecting the server end of a pipe (or failing harmlessly on the client end)
        // touches nothing else.
        let _ = os::disconnect_named_pipe(self.0.as_handle());
        Ok(())
    }
}

impl io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match os::read_handle(self.0.as_handle(), buf) {
            Err(e) if e.raw_os_error() == Some(ERROR_BROKEN_PIPE as i32) => Ok(0),
            r => r,
        }
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
    let server = os::create_named_pipe(&name, true, 1, 1 << 20)?;
    let client = os::open_pipe_client(&name)?;
    // The client is already connected, which the call reports as success.
    os::connect_named_pipe(server.as_handle())?;
    Ok((Stream(server), client))
}

/// The worker's end, from the handle it received.
pub(crate) fn stream_from_handle(handle: OwnedHandle) -> Stream {
    Stream(handle)
}

/// Writes all of `data` (blocking).
pub(crate) fn write_all(stream: &Stream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = os::write_handle(stream.0.as_handle(), data)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
    }
    Ok(())
}

/// Bytes waiting in the pipe; `None` once the other end is gone.
fn available(stream: &Stream) -> io::Result<Option<u32>> {
    match os::peek_named_pipe(stream.0.as_handle()) {
        Ok(avail) => Ok(Some(avail)),
        Err(e) if e.raw_os_error() == Some(ERROR_BROKEN_PIPE as i32) => Ok(None),
        Err(e) => Err(e),
    }
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
            if os::wait_handle(s, 1).unwrap_or(false) {
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
