//! Windows: pipes are byte-mode named pipes with unique names (as Python's `Pipe()` does),
//! local listeners are named pipes `\\.\pipe\<name>`, and TCP uses std's sockets. OS handles
//! inside messages travel in-band as `(pid, value)` (see processing-core), so no side list.

use super::StreamKind;
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::windows::io::{
    AsHandle, AsRawHandle, AsRawSocket, BorrowedHandle, FromRawHandle, OwnedHandle, RawHandle,
};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_BROKEN_PIPE, ERROR_NO_DATA, ERROR_PIPE_BUSY,
    ERROR_PIPE_NOT_CONNECTED, HANDLE, WAIT_OBJECT_0,
};
use windows_sys::Win32::Networking::WinSock::{recv, WSAPoll, POLLRDNORM, SOCKET, WSAPOLLFD};
use windows_sys::Win32::Storage::FileSystem::ReadFile;
use windows_sys::Win32::System::Pipes::{WaitNamedPipeW, PIPE_UNLIMITED_INSTANCES};
use windows_sys::Win32::System::Threading::{
    CreateEventW, WaitForMultipleObjects, WaitForSingleObject,
};

use processing_core::os;

use crate::error::ListenerError;

/// The OS object [`wait`](crate::wait) watches: a handle that is signalled when ready.
pub type RawWaitable = RawHandle;

#[derive(Debug)]
enum Os {
    Pipe(OwnedHandle),
    Tcp(TcpStream),
}

/// A connected byte stream.
#[derive(Debug)]
pub(crate) struct Stream {
    os: Os,
    /// Read timeout of pipes in microseconds (0: none).
    timeout_us: AtomicU64,
}

const PIPE_BUFFER: u32 = 1 << 20;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn last_error() -> u32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0) as u32
}

fn unique_pipe_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let r = processing_core::authkey::random_bytes(8);
    let mut hex = String::new();
    for b in r {
        hex.push_str(&format!("{b:02x}"));
    }
    format!(
        r"\\.\pipe\processing-{}-{}-{hex}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn create_instance(name: &[u16], first: bool) -> io::Result<OwnedHandle> {
    os::create_named_pipe(name, first, PIPE_UNLIMITED_INSTANCES, PIPE_BUFFER)
}

fn open_client(name: &[u16]) -> io::Result<OwnedHandle> {
    os::open_pipe_client(name)
}

fn connect_server(h: &OwnedHandle) -> io::Result<()> {
    os::connect_named_pipe(h.as_handle())
}

fn is_eof_error(code: u32) -> bool {
    code == ERROR_BROKEN_PIPE || code == ERROR_NO_DATA || code == ERROR_PIPE_NOT_CONNECTED
}

/// Bytes waiting in a pipe; `None` at the end of the stream.
fn pipe_available(h: &OwnedHandle) -> io::Result<Option<u32>> {
    match os::peek_named_pipe(h.as_handle()) {
        Ok(avail) => Ok(Some(avail)),
        Err(e) if e.raw_os_error().is_some_and(|c| is_eof_error(c as u32)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn socket_readable(s: &TcpStream, timeout: Option<Duration>) -> io::Result<bool> {
    let mut fd = WSAPOLLFD {
        fd: s.as_raw_socket() as SOCKET,
        events: POLLRDNORM,
        revents: 0,
    };
    let ms = timeout.map_or(-1, |t| {
        t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
    });
    // SAFETY: fd is one valid WSAPOLLFD.
    let r = unsafe { WSAPoll(&mut fd, 1, ms) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r > 0 && fd.revents != 0)
}

impl Stream {
    fn new(os: Os) -> Stream {
        Stream {
            os,
            timeout_us: AtomicU64::new(0),
        }
    }

    /// A connected pair of byte-mode named pipe ends.
    pub(crate) fn pair() -> io::Result<(Stream, Stream)> {
        let name = wide(&unique_pipe_name());
        let server = create_instance(&name, true)?;
        let client = open_client(&name)?;
        connect_server(&server)?;
        Ok((Stream::new(Os::Pipe(server)), Stream::new(Os::Pipe(client))))
    }

    pub(crate) fn from_tcp(s: TcpStream) -> Stream {
        let _ = s.set_nodelay(true);
        Stream::new(Os::Tcp(s))
    }

    pub(crate) fn from_handle(h: OwnedHandle, kind: StreamKind) -> io::Result<Stream> {
        match kind {
            StreamKind::Local => Ok(Stream::new(Os::Pipe(h))),
            StreamKind::Tcp => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "tcp connections cannot travel on windows",
            )),
        }
    }

    /// Adopts a connected byte-mode pipe handle.
    pub(crate) fn adopt(h: OwnedHandle) -> io::Result<Stream> {
        Ok(Stream::new(Os::Pipe(h)))
    }

    /// The handle to serialize when the connection travels.
    pub(crate) fn transfer_handle(&self) -> io::Result<BorrowedHandle<'_>> {
        match &self.os {
            Os::Pipe(h) => Ok(h.as_handle()),
            Os::Tcp(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "tcp connections cannot travel on windows",
            )),
        }
    }

    pub(crate) fn kind(&self) -> StreamKind {
        match self.os {
            Os::Pipe(_) => StreamKind::Local,
            Os::Tcp(_) => StreamKind::Tcp,
        }
    }

    /// Whether OS handles can travel with messages (Windows: in-band, always).
    pub(crate) fn carries_handles(&self) -> bool {
        true
    }

    /// Writes all of `data` (`handles` is always empty on Windows).
    pub(crate) fn write_all(&self, mut data: &[u8], _handles: &[OwnedHandle]) -> io::Result<()> {
        match &self.os {
            Os::Tcp(s) => {
                let mut s = s;
                s.write_all(data)
            }
            Os::Pipe(h) => {
                while !data.is_empty() {
                    let n = match os::write_handle(h.as_handle(), data) {
                        Ok(n) => n,
                        Err(e) if e.raw_os_error().is_some_and(|c| is_eof_error(c as u32)) => {
                            return Err(io::ErrorKind::BrokenPipe.into());
                        }
                        Err(e) => return Err(e),
                    };
                    data = &data[n..];
                }
                Ok(())
            }
        }
    }

    pub(crate) fn read_chunk(
        &self,
        buf: &mut [u8],
        nonblocking: bool,
        _handles: &mut Vec<OwnedHandle>,
    ) -> io::Result<usize> {
        self.read_raw(buf.as_mut_ptr(), buf.len(), nonblocking)
    }

    /// Reads at most `max` bytes into the spare capacity of `v`.
    pub(crate) fn read_spare(
        &self,
        v: &mut Vec<u8>,
        max: usize,
        nonblocking: bool,
    ) -> io::Result<usize> {
        let max = max.min(v.capacity() - v.len());
        // SAFETY: the pointer is to v's spare capacity, which has room for `max` bytes.
        let ptr = unsafe { v.as_mut_ptr().add(v.len()) };
        let n = self.read_raw(ptr, max, nonblocking)?;
        // SAFETY: the OS initialised exactly n <= max bytes of the spare capacity.
        unsafe { v.set_len(v.len() + n) };
        Ok(n)
    }

    fn read_raw(&self, ptr: *mut u8, len: usize, nonblocking: bool) -> io::Result<usize> {
        let mut len = len.min(i32::MAX as usize);
        if nonblocking {
            if !self.poll_readable(Some(Duration::ZERO))? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        } else {
            let t = self.timeout_us.load(Ordering::Relaxed);
            if t != 0 && !self.poll_readable(Some(Duration::from_micros(t)))? {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
        match &self.os {
            Os::Tcp(s) => {
                // SAFETY: ptr is valid for writes of len bytes (caller's guarantee).
                let n = unsafe { recv(s.as_raw_socket() as SOCKET, ptr, len as i32, 0) };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(n as usize)
            }
            Os::Pipe(h) => {
                if nonblocking {
                    match pipe_available(h)? {
                        None => return Ok(0),
                        Some(a) => len = len.min(a.max(1) as usize),
                    }
                }
                let mut n = 0u32;
                // SAFETY: ptr is valid for writes of len bytes (caller's guarantee).
                let ok = unsafe {
                    ReadFile(
                        h.as_raw_handle() as HANDLE,
                        ptr,
                        len as u32,
                        &mut n,
                        std::ptr::null_mut(),
                    )
                };
                if ok == 0 {
                    let code = last_error();
                    if is_eof_error(code) {
                        return Ok(0);
                    }
                    return Err(io::Error::from_raw_os_error(code as i32));
                }
                Ok(n as usize)
            }
        }
    }

    /// Whether the stream is readable (data or end of stream) within `timeout`.
    pub(crate) fn poll_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        match &self.os {
            Os::Tcp(s) => socket_readable(s, timeout),
            Os::Pipe(h) => {
                // Anonymous and synchronous named pipes have no readiness event: peek, then
                // sleep a growing slice.
                let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
                let mut slice = Duration::from_micros(100);
                loop {
                    match pipe_available(h)? {
                        None => return Ok(true),
                        Some(n) if n > 0 => return Ok(true),
                        Some(_) => {}
                    }
                    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    if left.is_some_and(|l| l.is_zero()) {
                        return Ok(false);
                    }
                    std::thread::sleep(left.map_or(slice, |l| l.min(slice)));
                    slice = (slice * 2).min(Duration::from_millis(10));
                }
            }
        }
    }

    /// A timeout for blocking reads (`None`: block forever).
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.os {
            Os::Tcp(s) => s.set_read_timeout(timeout.map(|t| t.max(Duration::from_millis(1)))),
            Os::Pipe(_) => {
                let us = timeout.map_or(0, |t| t.as_micros().clamp(1, u64::MAX as u128) as u64);
                self.timeout_us.store(us, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    pub(crate) fn raw_waitable(&self) -> Option<RawWaitable> {
        None
    }

    /// Cuts the connection: a read waiting on it in another thread returns (a pipe's reads
    /// then see the end of the stream).
    pub(crate) fn shutdown(&self) {
        match &self.os {
            Os::Tcp(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            Os::Pipe(h) => {
                // Disconnecting only changes the pipe's state; a failure leaves it connected.
                let _ = os::disconnect_named_pipe(h.as_handle());
            }
        }
    }
}

/// Borrows an owned handle.
pub(crate) fn borrow_handle(h: &OwnedHandle) -> BorrowedHandle<'_> {
    h.as_handle()
}

/// Which of `raws` are signalled within `timeout`.
pub(crate) fn wait_any(raws: &[RawWaitable], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let check = |h: RawWaitable| {
        // SAFETY: h is a valid waitable handle supplied by a Waitable implementation.
        unsafe { WaitForSingleObject(h as HANDLE, 0) == WAIT_OBJECT_0 }
    };
    if raws.is_empty() {
        std::thread::sleep(timeout.unwrap_or(Duration::from_secs(u64::MAX / 4)));
        return Ok(Vec::new());
    }
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if raws.len() <= 64 {
            let handles: Vec<HANDLE> = raws.iter().map(|&h| h as HANDLE).collect();
            let ms = left.map_or(u32::MAX, |l| {
                l.as_micros().div_ceil(1000).min(u32::MAX as u128 - 1) as u32
            });
            // SAFETY: handles is a valid array of at most 64 waitable handles.
            unsafe { WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, ms) };
            return Ok(raws.iter().map(|&h| check(h)).collect());
        }
        let flags: Vec<bool> = raws.iter().map(|&h| check(h)).collect();
        if flags.iter().any(|&f| f) || left.is_some_and(|l| l.is_zero()) {
            return Ok(flags);
        }
        std::thread::sleep(left.map_or(Duration::from_millis(5), |l| {
            l.min(Duration::from_millis(5))
        }));
    }
}

fn pipe_path(name: &str) -> Result<String, ListenerError> {
    if name.is_empty() {
        return Err(ListenerError::InvalidAddress(name.to_string()));
    }
    if name.starts_with(r"\\.\pipe\") {
        Ok(name.to_string())
    } else if name.contains(['\\', '/']) {
        Err(ListenerError::InvalidAddress(name.to_string()))
    } else {
        Ok(format!(r"\\.\pipe\{name}"))
    }
}

/// A named-pipe listener: one instance waits for the next client at any time.
#[derive(Debug)]
pub(crate) struct LocalListener {
    name: Vec<u16>,
    next: Mutex<Option<OwnedHandle>>,
    /// The named event that marks the pipe name as taken by a listener of this library.
    _claim: OwnedHandle,
}

/// Claims a pipe name for one listener with a named event `Local\processing-listener-<name>`
/// (`None`: another listener holds it). The kernel drops the claim with the listener's last
/// handle, also when its process dies, so no stale claim survives. `FILE_FLAG_FIRST_PIPE_INSTANCE`
/// alone does not suffice: Wine ignores it.
fn claim_pipe_name(path: &str) -> io::Result<Option<OwnedHandle>> {
    let tail = path.trim_start_matches(r"\\.\pipe\").replace('\\', "/");
    let wname = wide(&format!(r"Local\processing-listener-{tail}"));
    // SAFETY: wname is NUL-terminated UTF-16; default security; manual-reset, unsignalled.
    let h = unsafe { CreateEventW(std::ptr::null(), 1, 0, wname.as_ptr()) };
    let code = last_error();
    if h.is_null() {
        return Err(io::Error::from_raw_os_error(code as i32));
    }
    // SAFETY: CreateEventW returned a handle this process owns (new or an existing event).
    let h = unsafe { OwnedHandle::from_raw_handle(h as RawHandle) };
    if code == ERROR_ALREADY_EXISTS {
        return Ok(None);
    }
    Ok(Some(h))
}

impl LocalListener {
    pub(crate) fn bind(name: &str) -> Result<LocalListener, ListenerError> {
        let path = pipe_path(name)?;
        let wname = wide(&path);
        let Some(claim) = claim_pipe_name(&path)? else {
            return Err(ListenerError::AddressInUse(path));
        };
        let first = match create_instance(&wname, true) {
            Ok(h) => h,
            Err(e)
                if matches!(
                    e.raw_os_error().map(|c| c as u32),
                    Some(ERROR_ACCESS_DENIED) | Some(ERROR_PIPE_BUSY)
                ) =>
            {
                return Err(ListenerError::AddressInUse(path));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(LocalListener {
            name: wname,
            next: Mutex::new(Some(first)),
            _claim: claim,
        })
    }

    pub(crate) fn accept(&self) -> io::Result<Stream> {
        let pending = self.next.lock().unwrap_or_else(|e| e.into_inner()).take();
        let h = match pending {
            Some(h) => h,
            None => create_instance(&self.name, false)?,
        };
        connect_server(&h)?;
        // Keep an instance open so that the name stays ours between accepts.
        if let Ok(next) = create_instance(&self.name, false) {
            *self.next.lock().unwrap_or_else(|e| e.into_inner()) = Some(next);
        }
        Ok(Stream::new(Os::Pipe(h)))
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        None
    }
}

/// Connects to a local address.
pub(crate) fn connect_local(name: &str) -> Result<Stream, ListenerError> {
    let path = pipe_path(name)?;
    let wname = wide(&path);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match open_client(&wname) {
            Ok(h) => return Ok(Stream::new(Os::Pipe(h))),
            Err(e)
                if e.raw_os_error().map(|c| c as u32) == Some(ERROR_PIPE_BUSY)
                    && Instant::now() < deadline =>
            {
                // SAFETY: wname is a NUL-terminated UTF-16 string.
                unsafe { WaitNamedPipeW(wname.as_ptr(), 1000) };
            }
            Err(e) => return Err(e.into()),
        }
    }
}
