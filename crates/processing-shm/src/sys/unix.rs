//! Unix: POSIX shared memory (`shm_open`, `posix_fallocate`, `mmap`) and `/proc` facts.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use crate::base::SharedBase;
use crate::error::ShmError;

/// One mapped segment; unmapped on drop (the name is removed only by [`Segment::unlink_name`]).
#[derive(Debug)]
pub(crate) struct Segment {
    base: SharedBase,
    len: usize,
}

fn c_name(name: &str) -> Result<CString, ShmError> {
    CString::new(format!("/{name}")).map_err(|_| ShmError::InvalidName(name.to_string()))
}

/// `shm_open(name, flags, mode)`, the descriptor owned.
fn shm_open(cname: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: `cname` is a valid NUL-terminated string for the call; shm_open returns a fresh
    // descriptor owned by nobody else, or -1 (checked before it is owned).
    unsafe {
        let fd = libc::shm_open(cname.as_ptr(), flags, mode as libc::c_uint);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// `shm_unlink(name)`: removes the name (existing mappings stay valid).
fn shm_unlink(cname: &CStr) -> io::Result<()> {
    // SAFETY: `cname` is a valid NUL-terminated string for the call.
    if unsafe { libc::shm_unlink(cname.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Segment {
    /// Creates `name` exclusively with `len` bytes reserved (zero-filled) and maps it.
    pub(crate) fn create(name: &str, len: usize) -> Result<Segment, ShmError> {
        let cname = c_name(name)?;
        let size = libc::off_t::try_from(len).map_err(|_| ShmError::InvalidSize(len))?;
        let fd = shm_open(
            &cname,
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
            0o600,
        )
        .map_err(|err| match err.raw_os_error() {
            Some(libc::EEXIST) => ShmError::AlreadyExists(name.to_string()),
            Some(libc::EINVAL) | Some(libc::ENAMETOOLONG) => {
                ShmError::InvalidName(name.to_string())
            }
            _ => ShmError::Io(err),
        })?;
        // The descriptor closes on drop; the name of the object we just created goes on error.
        let cleanup = |err: ShmError| {
            let _ = shm_unlink(&cname);
            err
        };
        let file = File::from(fd);
        if let Err(e) = file.set_len(size as u64) {
            return Err(cleanup(ShmError::Io(e)));
        }
        // Reserve the pages now so that a full /dev/shm is an error here rather than SIGBUS at
        // first touch. posix_fallocate returns the error number instead of setting errno.
        // SAFETY: the descriptor is open; the range lies within the object just sized.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, size) };
        if rc != 0 && rc != libc::EOPNOTSUPP && rc != libc::EINVAL {
            let err = if rc == libc::ENOSPC {
                ShmError::NoSpace(len)
            } else {
                ShmError::Io(io::Error::from_raw_os_error(rc))
            };
            return Err(cleanup(err));
        }
        // The mapping (if any) keeps the object alive after the descriptor closes.
        match map(file.as_fd(), len) {
            Ok(base) => Ok(Segment {
                base: SharedBase::new(base),
                len,
            }),
            Err(e) => Err(cleanup(ShmError::Io(e))),
        }
    }

    /// Opens an existing segment and maps all of it.
    pub(crate) fn open(name: &str) -> Result<Segment, ShmError> {
        let cname = c_name(name)?;
        let fd = shm_open(&cname, libc::O_RDWR | libc::O_CLOEXEC, 0).map_err(|err| {
            match err.raw_os_error() {
                Some(libc::ENOENT) => ShmError::NotFound(name.to_string()),
                Some(libc::EINVAL) | Some(libc::ENAMETOOLONG) => {
                    ShmError::InvalidName(name.to_string())
                }
                _ => ShmError::Io(err),
            }
        })?;
        let file = File::from(fd);
        let len = file.metadata().map_err(ShmError::Io)?.len();
        let len = usize::try_from(len).unwrap_or(0);
        if len == 0 {
            return Err(ShmError::Invalid(name.to_string()));
        }
        map(file.as_fd(), len)
            .map(|base| Segment {
                base: SharedBase::new(base),
                len,
            })
            .map_err(ShmError::Io)
    }

    /// Removes `name` from the system namespace (existing mappings stay valid).
    pub(crate) fn unlink_name(name: &str) -> Result<(), ShmError> {
        let cname = c_name(name)?;
        shm_unlink(&cname).map_err(|err| match err.raw_os_error() {
            Some(libc::ENOENT) => ShmError::NotFound(name.to_string()),
            _ => ShmError::Io(err),
        })
    }

    /// Whether `name` exists in the system namespace.
    #[allow(dead_code)]
    pub(crate) fn exists(name: &str) -> bool {
        match Segment::open(name) {
            Ok(_) => true,
            Err(e) => !matches!(e, ShmError::NotFound(_)),
        }
    }

    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base.get()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: base/len describe a mapping created by `map` and not unmapped before.
        unsafe { unmap(self.base.get(), self.len) };
    }
}

/// Unmaps a mapping made by [`map`].
///
/// # Safety
/// `base`/`len` must be exactly a live mapping returned by `map`, no longer used.
pub(crate) unsafe fn unmap(base: NonNull<u8>, len: usize) {
    // SAFETY: the caller's promise.
    unsafe { libc::munmap(base.as_ptr().cast(), len) };
}

/// The one `mmap` of the workspace: `len` bytes of the open descriptor `fd`, shared, read and
/// write, at an address the kernel picks.
pub(crate) fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh shared mapping of an open descriptor; the kernel picks the address.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// This process's id as the OS reports it now.
pub(crate) fn os_pid() -> u32 {
    std::process::id()
}

/// The start time of `pid` (clock ticks since boot, low 32 bits, never 0), or `None` when no
/// such process runs (exited, or a zombie waiting to be reaped).
#[cfg(target_os = "linux")]
pub(crate) fn process_stamp(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything: parse after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" || state == "x" {
        return None;
    }
    // starttime is field 22 overall, the 20th after the state (field 3).
    let start: u64 = fields.nth(18)?.parse().ok()?;
    Some((start as u32).max(1))
}

/// Other Unix: liveness only (no start time to tell pid reuse apart).
#[cfg(not(target_os = "linux"))]
pub(crate) fn process_stamp(pid: u32) -> Option<u32> {
    processing_core::os::pid_alive(pid).then_some(1)
}

/// Runs `f` in the child after every `fork` of this process.
pub(crate) fn on_fork_child(f: fn()) {
    static HOOK: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();
    extern "C" fn child() {
        if let Some(f) = HOOK.get() {
            f();
        }
    }
    if HOOK.set(f).is_ok() {
        // SAFETY: registers a handler that only stores to atomics (async-signal-safe).
        unsafe { libc::pthread_atfork(None, None, Some(child)) };
    }
}
