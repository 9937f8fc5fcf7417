//! Unix: descriptors travel by index in the message and by `SCM_RIGHTS` beside it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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
    // SAFETY: kill with signal 0 only checks for existence and permission; it sends nothing.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Largest number of descriptors passed with one message.
pub const MAX_FDS_PER_MESSAGE: usize = 250;

/// A zeroed control area for `payload` bytes of ancillary data: its size (`CMSG_SPACE`) and
/// the 8-byte-aligned buffer that holds it.
fn control_area(payload: usize) -> (usize, Vec<u64>) {
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
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
        loop {
            // SAFETY: data is a valid readable buffer of data.len() bytes for the call.
            let n = unsafe {
                libc::send(
                    sock.as_raw_fd(),
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
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
    loop {
        // SAFETY: msg and everything it points to (iov, data, control) live across the call.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
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
    let n = loop {
        // SAFETY: msg points at a writable buffer and control area that live across the call.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, flags | cmsg_cloexec()) };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
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
                    set_cloexec(fd);
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
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

fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on a descriptor this process owns; failure leaves it unchanged.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

/// The private per-user runtime directory (see `os::private_runtime_dir`).
pub(crate) fn private_runtime_dir() -> io::Result<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
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
