//! Unix: connections are stream sockets (`socketpair` for pipes, Unix domain sockets in a
//! private per-user directory for local listeners, TCP); handles travel with `SCM_RIGHTS`.

use super::StreamKind;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use processing_core::os::{cvt, recv_with_fds, send_with_fds};

use crate::error::ListenerError;

/// The OS object [`wait`](crate::wait) watches: a descriptor that polls readable when ready.
pub type RawWaitable = RawFd;

/// A connected stream socket.
#[derive(Debug)]
pub(crate) struct Stream {
    fd: OwnedFd,
    kind: StreamKind,
}

impl Stream {
    /// A connected pair of Unix stream sockets.
    pub(crate) fn pair() -> io::Result<(Stream, Stream)> {
        // Both ends close-on-exec, as std creates every descriptor.
        let (a, b) = UnixStream::pair()?;
        let (a, b) = (OwnedFd::from(a), OwnedFd::from(b));
        let a = Stream {
            fd: a,
            kind: StreamKind::Local,
        };
        let b = Stream {
            fd: b,
            kind: StreamKind::Local,
        };
        a.tune();
        b.tune();
        Ok((a, b))
    }

    /// Larger socket buffers: fewer wake-ups per large message.
    fn tune(&self) {
        let size: libc::c_int = 1 << 20;
        for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
            // A failure is harmless: the default buffer stays.
            let _ = set_socket_option(self.fd.as_fd(), opt, &size);
        }
    }

    pub(crate) fn from_tcp(s: TcpStream) -> Stream {
        let _ = s.set_nodelay(true);
        Stream {
            fd: s.into(),
            kind: StreamKind::Tcp,
        }
    }

    pub(crate) fn from_handle(fd: OwnedFd, kind: StreamKind) -> io::Result<Stream> {
        Ok(Stream { fd, kind })
    }

    /// Adopts a connected stream socket (Unix domain or TCP).
    pub(crate) fn adopt(fd: OwnedFd) -> io::Result<Stream> {
        // SAFETY: sockaddr_storage is plain old data; zero is a valid value.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: addr is writable for len bytes; getsockname writes at most that many.
        cvt(unsafe {
            libc::getsockname(
                fd.as_raw_fd(),
                (&mut addr as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        })?;
        let kind = match i32::from(addr.ss_family) {
            libc::AF_UNIX => StreamKind::Local,
            libc::AF_INET | libc::AF_INET6 => StreamKind::Tcp,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a unix or tcp socket",
                ))
            }
        };
        Ok(Stream { fd, kind })
    }

    /// The handle to serialize when the connection travels.
    pub(crate) fn transfer_handle(&self) -> io::Result<BorrowedFd<'_>> {
        Ok(self.fd.as_fd())
    }

    pub(crate) fn kind(&self) -> StreamKind {
        self.kind
    }

    /// Whether OS handles can travel beside the bytes.
    pub(crate) fn carries_handles(&self) -> bool {
        self.kind == StreamKind::Local
    }

    /// Writes all of `data`; `handles` travel with its first byte.
    pub(crate) fn write_all(&self, mut data: &[u8], handles: &[OwnedFd]) -> io::Result<()> {
        if !handles.is_empty() {
            let borrowed: Vec<BorrowedFd<'_>> = handles.iter().map(|h| h.as_fd()).collect();
            let n = send_with_fds(self.fd.as_fd(), data, &borrowed)?;
            data = &data[n..];
        }
        while !data.is_empty() {
            let n = send_with_fds(self.fd.as_fd(), data, &[])?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            data = &data[n..];
        }
        Ok(())
    }

    /// Reads into `buf`, collecting handles that arrive. `Ok(0)` is the end of the stream;
    /// `nonblocking` reads fail with `WouldBlock` when nothing is there.
    pub(crate) fn read_chunk(
        &self,
        buf: &mut [u8],
        nonblocking: bool,
        handles: &mut Vec<OwnedFd>,
    ) -> io::Result<usize> {
        let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
        if self.kind == StreamKind::Tcp {
            return processing_core::os::recv(self.fd.as_fd(), buf, flags);
        }
        let (n, fds) = recv_with_fds(self.fd.as_fd(), buf, flags)?;
        handles.extend(fds);
        Ok(n)
    }

    /// Reads at most `max` bytes into the spare capacity of `v` (which must have room for
    /// them); handles never arrive here (they travel with a frame's first byte, which was read
    /// by `read_chunk`).
    pub(crate) fn read_spare(
        &self,
        v: &mut Vec<u8>,
        max: usize,
        nonblocking: bool,
    ) -> io::Result<usize> {
        let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
        processing_core::os::recv_spare(self.fd.as_fd(), v, max, flags)
    }

    /// Whether the stream is readable (data or end of stream) within `timeout`.
    pub(crate) fn poll_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        Ok(wait_any(&[self.fd.as_raw_fd()], timeout)?[0])
    }

    /// Whether the peer closed its end (`POLLHUP`), checked without waiting.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn peer_hung_up(&self) -> io::Result<bool> {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: 0,
            revents: 0,
        };
        match processing_core::os::poll(std::slice::from_mut(&mut p), 0) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        Ok(p.revents & (libc::POLLHUP | libc::POLLERR) != 0)
    }

    /// A timeout for blocking reads (`None`: block forever).
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let tv = match timeout {
            Some(d) => libc::timeval {
                tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
                tv_usec: d.subsec_micros().max(if d.is_zero() { 1 } else { 0 })
                    as libc::suseconds_t,
            },
            None => libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        };
        set_socket_option(self.fd.as_fd(), libc::SO_RCVTIMEO, &tv)
    }

    pub(crate) fn raw_waitable(&self) -> Option<RawWaitable> {
        Some(self.fd.as_raw_fd())
    }

    /// Shuts both directions down: a read blocked on this stream in another thread returns.
    pub(crate) fn shutdown(&self) {
        // SAFETY: shutdown only changes the state of this open socket.
        unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_RDWR) };
    }
}

/// `setsockopt(SOL_SOCKET, opt)` to `value` (a `c_int`, a `timeval`, ...).
fn set_socket_option<T: Copy>(fd: BorrowedFd<'_>, opt: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: setsockopt reads size_of::<T>() bytes from `value`, a valid reference for the
    // call, on a socket open for the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Borrows an owned handle.
pub(crate) fn borrow_handle(h: &OwnedFd) -> BorrowedFd<'_> {
    h.as_fd()
}

/// Which of `raws` are ready (readable, at end of stream, or in error) within `timeout`.
pub(crate) fn wait_any(raws: &[RawWaitable], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = raws
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so that a short timeout does not become a busy loop.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
            }
        };
        match processing_core::os::poll(&mut pfds, ms) {
            Ok(_) => return Ok(pfds.iter().map(|p| p.revents != 0).collect()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The private per-user directory that holds local sockets (processing-core's one private
/// runtime directory).
fn socket_dir() -> Result<PathBuf, ListenerError> {
    processing_core::os::private_runtime_dir().map_err(|e| {
        match e
            .get_ref()
            .and_then(|r| r.downcast_ref::<processing_core::os::InsecureDir>())
        {
            Some(d) => ListenerError::InsecureDirectory(d.0.clone()),
            None => e.into(),
        }
    })
}

/// The filesystem path of a local address: absolute paths are used as given, bare names live
/// in the private per-user directory.
fn local_path(name: &str) -> Result<PathBuf, ListenerError> {
    let path = if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(ListenerError::InvalidAddress(name.to_string()));
        }
        socket_dir()?.join(name)
    };
    // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
    if path.as_os_str().len() >= 108 {
        return Err(ListenerError::InvalidAddress(format!(
            "{} (path too long for a socket)",
            path.display()
        )));
    }
    Ok(path)
}

/// A listening Unix domain socket that removes its file when dropped.
#[derive(Debug)]
pub(crate) struct LocalListener {
    listener: UnixListener,
    path: PathBuf,
    identity: (u64, u64),
}

impl LocalListener {
    pub(crate) fn bind(name: &str) -> Result<LocalListener, ListenerError> {
        let path = local_path(name)?;
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                // A live listener answers; a stale file left by a dead process refuses.
                match UnixStream::connect(&path) {
                    Ok(_) => return Err(ListenerError::AddressInUse(path.display().to_string())),
                    Err(c) if c.kind() == io::ErrorKind::ConnectionRefused => {
                        let meta = std::fs::symlink_metadata(&path)?;
                        if !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
                            return Err(ListenerError::AddressInUse(path.display().to_string()));
                        }
                        std::fs::remove_file(&path)?;
                        UnixListener::bind(&path)?
                    }
                    Err(_) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let meta = std::fs::symlink_metadata(&path)?;
        Ok(LocalListener {
            listener,
            path,
            identity: (meta.dev(), meta.ino()),
        })
    }

    pub(crate) fn accept(&self) -> io::Result<Stream> {
        let (s, _) = self.listener.accept()?;
        Ok(Stream {
            fd: s.into(),
            kind: StreamKind::Local,
        })
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

impl Drop for LocalListener {
    fn drop(&mut self) {
        // Remove the file only if it is still the socket this listener bound.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Connects to a local address.
pub(crate) fn connect_local(name: &str) -> Result<Stream, ListenerError> {
    let path = local_path(name)?;
    let s = UnixStream::connect(&path)?;
    Ok(Stream {
        fd: s.into(),
        kind: StreamKind::Local,
    })
}
