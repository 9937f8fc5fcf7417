//! [`Region`]: an unnamed shared mapping of a memory file that travels as a descriptor — the
//! mapping of the pipe rings, the pool's reply rings and the manager's mailboxes.
//!
//! Named segments ([`SharedMemory`](crate::SharedMemory)) re-attach by name; a region is
//! shared by passing its descriptor (`SCM_RIGHTS`, inheritance) or, for the mailbox, a file.
//! Both map through the same `mmap` call of this crate (`sys/unix.rs`), the only one in the
//! workspace.
//!
//! A memory file (`memfd_create`, Linux) is sealed at creation against shrinking and growing
//! (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`): a peer that holds the descriptor cannot
//! truncate it under another process's mapping (which would turn that process's next access
//! into SIGBUS). [`Region::from_fd`] refuses a descriptor without those seals or of another
//! size. A region mapped from a plain file ([`Region::from_file`]) cannot be sealed (regular
//! files and POSIX segments have no seals): its users must trust who can open the file.
//!
//! ```
//! # #[cfg(target_os = "linux")] {
//! use processing::shm::Region;
//! let a = Region::anonymous(c"example", 8192).unwrap();
//! // SAFETY: the mapping is 8192 bytes; nothing else uses it yet.
//! unsafe { a.as_ptr().as_ptr().write(7) };
//! let b = Region::from_fd(a.fd().try_clone_to_owned().unwrap(), 8192).unwrap();
//! // SAFETY: b maps the same 8192 bytes.
//! assert_eq!(unsafe { b.as_ptr().as_ptr().read() }, 7);
//! assert!(Region::from_fd(a.fd().try_clone_to_owned().unwrap(), 4096).is_err());
//! # }
//! ```

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use crate::base::SharedBase;

/// The seals every memory file of a region carries (and a received one must carry).
#[cfg(target_os = "linux")]
const SEALS: libc::c_int = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;

/// A shared mapping of a whole memory file (or plain file), unmapped on drop.
#[derive(Debug)]
pub struct Region {
    base: SharedBase,
    len: usize,
    fd: OwnedFd,
    /// Under Miri: the heap bytes standing in for the mapping (see [`Region::heap_pair`]).
    #[cfg(miri)]
    heap: Option<std::sync::Arc<crate::heap::HeapBytes>>,
}

impl Region {
    /// A new zero-filled memory file of `len` bytes (`name` shows in `/proc/<pid>/fd`), sealed
    /// against shrinking and growing, mapped shared. Linux only.
    #[cfg(target_os = "linux")]
    pub fn anonymous(name: &std::ffi::CStr, len: usize) -> io::Result<Region> {
        use std::os::fd::FromRawFd as _;
        // SAFETY: memfd_create reads a NUL-terminated name and returns a new descriptor or -1.
        let fd = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: memfd_create returned a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        File::from(fd.try_clone()?).set_len(len as u64)?;
        // SAFETY: fcntl F_ADD_SEALS on a descriptor we own, with valid seal flags.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, SEALS | libc::F_SEAL_SEAL) } != 0
        {
            return Err(io::Error::last_os_error());
        }
        Region::map(fd, len)
    }

    /// Maps a memory file received from a peer, after checking that it carries the seals of
    /// [`anonymous`](Self::anonymous) and has exactly `len` bytes. Linux only.
    #[cfg(target_os = "linux")]
    pub fn from_fd(fd: OwnedFd, len: usize) -> io::Result<Region> {
        // SAFETY: F_GET_SEALS only reads the seals of a descriptor we own.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        if seals < 0 || seals & SEALS != SEALS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "shared memory file without size seals",
            ));
        }
        check_len(&File::from(fd.try_clone()?), len)?;
        Region::map(fd, len)
    }

    /// Maps a plain file of exactly `len` bytes (not sealable: see the module docs).
    pub fn from_file(file: File, len: usize) -> io::Result<Region> {
        check_len(&file, len)?;
        Region::map(file.into(), len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Region> {
        let base = crate::sys::map(fd.as_fd(), len)?;
        Ok(Region {
            base: SharedBase::new(base),
            len,
            fd,
            #[cfg(miri)]
            heap: None,
        })
    }

    /// The first byte of the mapping (page-aligned).
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.base.get()
    }

    /// The mapping's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, for a region that was created).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memory file's descriptor (to pass to a peer).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn check_len(file: &File, len: usize) -> io::Result<()> {
    if file.metadata()?.len() != len as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "shared memory file of the wrong size",
        ));
    }
    Ok(())
}

impl Drop for Region {
    fn drop(&mut self) {
        #[cfg(miri)]
        if self.heap.is_some() {
            // Heap bytes, freed with the last region over them.
            return;
        }
        // SAFETY: base/len describe the mapping `map` created; borrows of it are tied to
        // `&self`, so nothing refers to it any more.
        unsafe { crate::sys::unmap(self.base.get(), self.len) };
    }
}

/// Miri cannot map a memory file: the single-process tests of the rings (`miri_*`, run by
/// `cargo xtask models`) map theirs over heap bytes instead.
#[cfg(miri)]
mod miri {
    use std::io;
    use std::sync::Arc;

    use super::{Region, SharedBase};
    use crate::heap::HeapBytes;

    impl Region {
        /// Under Miri only: two regions over the same `len` zero-filled, page-aligned heap
        /// bytes, as two processes map one memory file. Their descriptors are the two ends of
        /// a socket pair (stand-ins: nothing can map them).
        pub fn heap_pair(len: usize) -> io::Result<(Region, Region)> {
            let heap = Arc::new(HeapBytes::new(len)?);
            let ptr = heap.as_ptr();
            let (a, b) = std::os::unix::net::UnixStream::pair()?;
            let region = |fd: std::os::unix::net::UnixStream| Region {
                base: SharedBase::new(ptr),
                len,
                fd: fd.into(),
                heap: Some(heap.clone()),
            };
            Ok((region(a), region(b)))
        }
    }
}
