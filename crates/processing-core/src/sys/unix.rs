//! Unix: descriptors travel by index in the message and by `SCM_RIGHTS` beside it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use serde::{de::Error as _, ser::Error as _, Deserialize, Deserializer, Serializer};

use crate::handles::{HandleError, Incoming, Outgoing};

pub(crate) fn serialize_handle<S: Serializer>(
    handle: BorrowedFd<'_>,
    outgoing: &'static Outgoing,
    s: S,
) -> Result<S::Ok, S::Error> {
    let index = outgoing.with(|o| -> Result<u32, HandleError> {
        let mut stack = o.borrow_mut();
        let list = stack.last_mut().ok_or(HandleError::NoChannel)?;
        let dup = handle
            .try_clone_to_owned()
            .inspect_err(crate::handles::record_os_error)?;
        list.push(dup);
        Ok((list.len() - 1) as u32)
    });
    match index {
        Ok(i) => s.serialize_u32(i),
        Err(e) => Err(S::Error::custom(e)),
    }
}

pub(crate) fn deserialize_handle<'de, D: Deserializer<'de>>(
    incoming: &'static Incoming,
    d: D,
) -> Result<OwnedFd, D::Error> {
    let index = u32::deserialize(d)?;
    incoming
        .with(|i| {
            let mut stack = i.borrow_mut();
            stack
                .last_mut()
                .and_then(|list| list.get_mut(index as usize))
                .and_then(Option::take)
        })
        .ok_or_else(|| D::Error::custom(HandleError::Missing(index)))
}

pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // Signal 0 only checks for existence and permission; it sends nothing.
    match kill(pid, 0) {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(libc::EPERM),
    }
}

/// Largest number of descriptors passed with one message.
pub const MAX_FDS_PER_MESSAGE: usize = 250;

/// A zeroed control area for `payload` bytes of ancillary data: its size (`CMSG_SPACE`) and
/// the 8-byte-aligned buffer that holds it.
fn control_area(payload: usize) -> (usize, Vec<u64>) {
    let space = cmsg_space(payload);
    (space, vec![0u64; space.div_ceil(8)])
}

/// A message header for the one buffer `iov` and the control area `control` of `space` bytes;
/// it points at both, which must outlive its use.
fn msghdr(iov: &mut libc::iovec, control: &mut [u64], space: usize) -> libc::msghdr {
    // SAFETY: msghdr is plain old data; zero is a valid starting value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    msg
}

/// Sends `data` on the stream or seqpacket socket `sock`, with `fds` attached to its first byte.
/// Returns the number of bytes written (possibly fewer than `data.len()`, as `send` would).
pub fn send_with_fds(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    if fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors in one message",
        ));
    }
    if fds.is_empty() {
        return send(sock, data, libc::MSG_NOSIGNAL);
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let payload = std::mem::size_of_val(raw.as_slice());
    let (space, mut control) = control_area(payload);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    let msg = msghdr(&mut iov, &mut control, space);
    // SAFETY: msg_control points at `space` writable bytes, enough for one cmsg carrying `raw`;
    // CMSG_FIRSTHDR is non-null because msg_controllen >= sizeof(cmsghdr).
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
        std::ptr::copy_nonoverlapping(
            raw.as_ptr(),
            libc::CMSG_DATA(cmsg).cast::<RawFd>(),
            raw.len(),
        );
    }
    // SAFETY: msg and everything it points to (iov, data, control) live across the call.
    count_retrying(|| unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })
}

/// Receives into `buf` from `sock`, collecting any descriptors that arrived (close-on-exec set).
/// Returns the byte count (0 at end of stream) and the descriptors.
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: i32,
) -> io::Result<(usize, Vec<OwnedFd>)> {
    let payload = MAX_FDS_PER_MESSAGE * std::mem::size_of::<RawFd>();
    let (space, mut control) = control_area(payload);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg = msghdr(&mut iov, &mut control, space);
    // SAFETY: msg points at a writable buffer and control area that live across the call.
    let n = count_retrying(|| unsafe {
        libc::recvmsg(sock.as_raw_fd(), &mut msg, flags | cmsg_cloexec())
    })?;
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of well-formed cmsgs;
    // the CMSG_* macros walk exactly that area; every SCM_RIGHTS descriptor is a fresh
    // descriptor now owned by this process, so wrapping it in OwnedFd is sound.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    // Already set where the kernel knows MSG_CMSG_CLOEXEC; a failure leaves the flag as it was.
    for fd in &fds {
        let _ = set_cloexec(fd.as_fd(), true);
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other("descriptors were truncated in transit"));
    }
    Ok((n, fds))
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn cmsg_cloexec() -> i32 {
    libc::MSG_CMSG_CLOEXEC
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn cmsg_cloexec() -> i32 {
    0
}

/// The control buffer size for `payload` bytes of one control message.
fn cmsg_space(payload: usize) -> usize {
    // SAFETY: CMSG_SPACE only computes a size from an integer.
    unsafe { libc::CMSG_SPACE(payload as u32) as usize }
}

/// The private per-user runtime directory (see `os::private_runtime_dir`).
pub(crate) fn private_runtime_dir() -> io::Result<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = uid();
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("processing-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            InsecureDir(dir.display().to_string()),
        ));
    }
    Ok(dir)
}

/// The error inside `private_runtime_dir`'s `PermissionDenied`: the directory that is not
/// private.
#[derive(Debug)]
pub struct InsecureDir(pub String);

impl std::fmt::Display for InsecureDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not a private directory", self.0)
    }
}

impl std::error::Error for InsecureDir {}

// The system calls several crates of the workspace make, each wrapped once here. Every
// wrapper is safe: it takes buffers as slices and descriptors as `BorrowedFd`, and returns the
// OS error as it came.

/// The result of a libc call that returns a negative number on failure (and sets `errno`):
/// `Ok` of what it returned, or the OS error. For the calls of the crates above that this
/// module does not wrap (each crate's `sys/` seam).
///
/// ```
/// // SAFETY: getpid takes nothing and cannot fail.
/// let pid = processing::core::os::cvt(unsafe { libc::getpid() }).unwrap();
/// assert_eq!(pid as u32, std::process::id());
/// // SAFETY: closing descriptor -1 touches nothing; it fails with EBADF.
/// let e = processing::core::os::cvt(unsafe { libc::close(-1) }).unwrap_err();
/// assert_eq!(e.raw_os_error(), Some(libc::EBADF));
/// ```
pub fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Runs a call that returns a byte count, or a negative number with `errno` set, again while it
/// is interrupted: the count, or the OS error.
fn count_retrying(mut call: impl FnMut() -> libc::ssize_t) -> io::Result<usize> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `poll(2)` on `fds` for at most `timeout_ms` milliseconds (negative: no limit, 0: a check
/// without waiting). Returns how many entries have events in `revents`; an interrupted wait is
/// `Err` of kind `Interrupted` (not retried: the caller knows its deadline).
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let mut fds = [libc::pollfd { fd: a.as_raw_fd(), events: libc::POLLOUT, revents: 0 }];
/// assert_eq!(processing::core::os::poll(&mut fds, 0).unwrap(), 1);
/// ```
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfd structures for the whole
    // call; the kernel writes only their `revents` (negative descriptors are ignored).
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    cvt(n).map(|n| n as usize)
}

/// Sends `signal` to process `pid` (`kill(2)`; signal 0 only checks that it may be signalled).
///
/// ```
/// processing::core::os::kill(std::process::id() as i32, 0).unwrap();
/// ```
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers and touches no memory of this process.
    cvt(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// Waits for child `pid` to end (`waitpid(2)`; with `nohang`, only checks) and reaps it.
/// Returns its raw wait status, or `None` when `nohang` and it is still running. An
/// interrupted wait is retried.
///
/// ```
/// let child = std::process::Command::new("true").spawn().unwrap();
/// let status = processing::core::os::waitpid(child.id() as i32, false).unwrap();
/// assert_eq!(status, Some(0));
/// ```
pub fn waitpid(pid: i32, nohang: bool) -> io::Result<Option<i32>> {
    let flags = if nohang { libc::WNOHANG } else { 0 };
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable int for the whole call.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        match cvt(r) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(status)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Sets (`on`) or clears the close-on-exec flag of `fd`.
///
/// ```
/// use std::os::fd::AsFd;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// processing::core::os::set_cloexec(a.as_fd(), true).unwrap();
/// ```
pub fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl F_GETFD/F_SETFD on an open descriptor (borrowed for the call) read and
    // change only its descriptor flags.
    unsafe {
        let flags = cvt(libc::fcntl(fd, libc::F_GETFD))?;
        let new = if on {
            flags | libc::FD_CLOEXEC
        } else {
            flags & !libc::FD_CLOEXEC
        };
        if new != flags {
            cvt(libc::fcntl(fd, libc::F_SETFD, new))?;
        }
    }
    Ok(())
}

/// Whether descriptor number `fd` is open in this process (`fcntl(F_GETFD)` succeeds). Only
/// asks: it neither uses nor changes the descriptor.
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// assert!(processing::core::os::fd_is_open(a.as_raw_fd()));
/// assert!(!processing::core::os::fd_is_open(-1));
/// ```
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the flags of a descriptor number; an unused number is EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Receives at most `buf.len()` bytes from socket `fd` with `flags` (`recv(2)`; `MSG_PEEK`,
/// `MSG_DONTWAIT`, ...). Returns the byte count (0 at end of stream); an interrupted call is
/// retried.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsFd;
/// let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.write_all(b"hi").unwrap();
/// let mut buf = [0u8; 8];
/// assert_eq!(processing::core::os::recv(b.as_fd(), &mut buf, 0).unwrap(), 2);
/// ```
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
    count_retrying(|| unsafe {
        libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags)
    })
}

/// Like [`recv`], into the spare capacity of `v` (at most `max` bytes), which grows by the
/// byte count received; no byte is zeroed first.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsFd;
/// let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.write_all(b"hi").unwrap();
/// let mut v = Vec::with_capacity(8);
/// assert_eq!(processing::core::os::recv_spare(b.as_fd(), &mut v, 8, 0).unwrap(), 2);
/// assert_eq!(v, b"hi");
/// ```
pub fn recv_spare(
    fd: BorrowedFd<'_>,
    v: &mut Vec<u8>,
    max: usize,
    flags: i32,
) -> io::Result<usize> {
    let max = max.min(v.capacity() - v.len());
    count_retrying(|| {
        let spare = v.spare_capacity_mut().as_mut_ptr();
        // SAFETY: the kernel writes at most `max` bytes at `spare`, the spare capacity of `v`,
        // which has room for them; on success exactly `n <= max` of them are initialised, so
        // the length may grow by `n`.
        unsafe {
            let n = libc::recv(fd.as_raw_fd(), spare.cast(), max, flags);
            if n >= 0 {
                v.set_len(v.len() + n as usize);
            }
            n
        }
    })
}

/// Sends `data` on socket `fd` with `flags` (`send(2)`; `MSG_NOSIGNAL`, ...). Returns the
/// byte count written (possibly fewer than `data.len()`); an interrupted call is retried.
///
/// ```
/// use std::os::fd::AsFd;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// assert_eq!(processing::core::os::send(a.as_fd(), b"hi", libc::MSG_NOSIGNAL).unwrap(), 2);
/// ```
pub fn send(fd: BorrowedFd<'_>, data: &[u8], flags: i32) -> io::Result<usize> {
    // SAFETY: `data` is valid for reads of `data.len()` bytes for the whole call.
    count_retrying(|| unsafe {
        libc::send(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), flags)
    })
}

/// Makes this process ignore `signal` (`signal(signal, SIG_IGN)`), as the Rust runtime does
/// for `SIGPIPE` before `main`.
///
/// ```
/// processing::core::os::ignore_signal(libc::SIGPIPE).unwrap();
/// ```
pub fn ignore_signal(signal: i32) -> io::Result<()> {
    // SAFETY: installing SIG_IGN runs no code of ours in a signal context; it only sets the
    // disposition of one signal number.
    if unsafe { libc::signal(signal, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The real user id of this process (`getuid(2)`, which cannot fail).
///
/// ```
/// let _uid: u32 = processing::core::os::uid();
/// ```
pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// A configuration value of the system (`sysconf(3)`, e.g. `libc::_SC_PAGESIZE`); `None`
/// when it is indeterminate or `name` is unknown.
///
/// ```
/// let page = processing::core::os::sysconf(libc::_SC_PAGESIZE).unwrap();
/// assert!(page.is_power_of_two());
/// ```
pub fn sysconf(name: i32) -> Option<u64> {
    // SAFETY: sysconf takes an integer and touches no memory of this process.
    let r = unsafe { libc::sysconf(name) };
    u64::try_from(r).ok()
}
