//! Unix: resident size from `/proc` (Linux) or `getrusage`, SIGINT ignored in workers.

/// This process's resident set size in bytes, if it can be known.
pub(crate) fn resident_bytes() -> Option<u64> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        let page = processing_core::os::sysconf(libc::_SC_PAGESIZE)?;
        Some(pages * page)
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
    let _ = processing_core::os::ignore_signal(libc::SIGINT);
}

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
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
    match processing_core::os::recv(stream.as_fd(), buf, libc::MSG_DONTWAIT) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
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
        // A negative descriptor is ignored.
        match processing_core::os::poll(&mut fds, ms) {
            Ok(_) => {
                let ready = |p: &libc::pollfd| {
                    p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
                };
                return Ok((ready(&fds[0]), ready(&fds[1])));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
