//! Unix: resident size from `/proc` (Linux) or `getrusage`, SIGINT ignored in workers.

/// This process's resident set size in bytes, if it can be known.
pub(crate) fn resident_bytes() -> Option<u64> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Some(pages * u64::try_from(page).ok()?)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // SAFETY: rusage is plain old data; getrusage fills it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable rusage.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return None;
        }
        // The peak, in bytes on macOS: the closest portable figure.
        u64::try_from(usage.ru_maxrss).ok()
    }
}

/// Workers leave Ctrl-C to the parent: the parent decides, and its workers end with it.
pub(crate) fn ignore_interrupts() {
    // SAFETY: installing SIG_IGN for SIGINT has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The parent's end and the worker's end of a worker's channel.
pub(crate) type Stream = UnixStream;

/// A connected pair of byte streams: the parent keeps the first, the worker gets the second.
pub(crate) fn duplex() -> io::Result<(Stream, OwnedFd)> {
    let (parent, child) = UnixStream::pair()?;
    Ok((parent, child.into()))
}

/// The worker's end, from the descriptor it received.
pub(crate) fn stream_from_handle(handle: OwnedFd) -> Stream {
    UnixStream::from(handle)
}

/// Writes all of `data` (blocking), without SIGPIPE if the peer is gone.
pub(crate) fn write_all(stream: &Stream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = processing_core::os::send_with_fds(std::os::fd::AsFd::as_fd(stream), data, &[])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
    }
    Ok(())
}

/// Reads what is available now into `buf` without blocking: `Ok(None)` if nothing is,
/// `Ok(Some(0))` at end of stream.
pub(crate) fn read_now(stream: &Stream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        // SAFETY: buf is a valid writable buffer of buf.len() bytes for the call.
        let n = unsafe {
            libc::recv(
                stream.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(err),
        }
    }
}

/// Waits until `stream` is readable or `sentinel` (the worker's exit) is ready, at most
/// `timeout`; returns `(stream readable, worker exited)`.
pub(crate) fn wait_readable(
    stream: &Stream,
    sentinel: Option<BorrowedFd<'_>>,
    timeout: Option<Duration>,
) -> io::Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: sentinel.map_or(-1, |s| s.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = match timeout {
        None => -1,
        Some(t) => i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX),
    };
    loop {
        // SAFETY: fds is a valid array of two pollfd structs (a negative fd is ignored).
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if r >= 0 {
            let ready =
                |p: &libc::pollfd| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
            return Ok((ready(&fds[0]), ready(&fds[1])));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// A shared, writable mapping of a memory file (the reply ring between a worker and its
/// supervisor). Unmapped when dropped.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access to it goes through atomics or through
// the ring's publication protocol, so it may be used from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only hands out the base pointer.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// The first byte of the mapping (page-aligned).
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapping's size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn map(fd: &OwnedFd, len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh shared mapping of `len` bytes of the memory file `fd`; the kernel
        // chooses the address, so no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region `map` created; nothing borrows it any more (the
        // mapping is owned and the borrows it handed out are tied to `&self`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// A new zero-filled shared memory file of `len` bytes, mapped here; the descriptor goes to
/// the worker, which maps it with [`map_shared`]. Linux only (`memfd_create`); elsewhere the
/// pool keeps replies on the stream.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn create_shared(len: usize) -> io::Result<(Mapping, OwnedFd)> {
    use std::os::fd::FromRawFd as _;
    // SAFETY: memfd_create reads a NUL-terminated name and returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(c"processing-pool-ring".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let size = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: ftruncate on the memory file we own.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mapping = Mapping::map(&fd, len)?;
    Ok((mapping, fd))
}

/// See the Linux version: no memory files here, so replies stay on the stream.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn create_shared(_len: usize) -> io::Result<(Mapping, OwnedFd)> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Maps the memory file made by [`create_shared`] (`len` bytes).
pub(crate) fn map_shared(fd: &OwnedFd, len: usize) -> io::Result<Mapping> {
    // SAFETY: fstat fills a valid stat structure for a descriptor we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if usize::try_from(st.st_size).ok() != Some(len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the reply ring has the wrong size",
        ));
    }
    Mapping::map(fd, len)
}
