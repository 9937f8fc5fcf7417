//! Windows: file mappings backed by the paging file, named `Local\<name>`.
//!
//! The kernel reference-counts a section: it disappears with its last handle or view, also
//! when processes crash, so Windows needs no resource tracker and `unlink` has nothing to do.
//! A paging-file-backed section commits its pages at creation, so a full commit limit is an
//! error at creation, never a fault later.

use std::io;
use std::ptr::NonNull;

use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, ERROR_ALREADY_EXISTS, ERROR_COMMITMENT_LIMIT, ERROR_DISK_FULL,
    ERROR_FILE_NOT_FOUND, ERROR_NOT_ENOUGH_MEMORY, FILETIME, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, MapViewOfFile, OpenFileMappingW, UnmapViewOfFile, FILE_MAP_ALL_ACCESS,
    MEMORY_MAPPED_VIEW_ADDRESS, PAGE_READWRITE,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcessId, GetExitCodeProcess, GetProcessTimes, OpenProcess,
    PROCESS_QUERY_LIMITED_INFORMATION,
};

use crate::error::ShmError;
use crate::segment::HEADER_SIZE;

const STILL_ACTIVE: u32 = 259;

/// One mapped view of a named section; the view and the section handle close on drop.
#[derive(Debug)]
pub(crate) struct Segment {
    section: HANDLE,
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the view is plain shared memory and the section handle is a process-wide kernel
// handle; neither is tied to a thread.
unsafe impl Send for Segment {}
// SAFETY: as for Send; access to the bytes is synchronised by the segment's users.
unsafe impl Sync for Segment {}

fn wide(name: &str) -> Vec<u16> {
    format!("Local\\{name}")
        .encode_utf16()
        .chain(std::iter::once(0))
        .collect()
}

fn map_view(section: HANDLE, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: section is a valid file-mapping handle; the kernel picks the address.
    let view: MEMORY_MAPPED_VIEW_ADDRESS =
        unsafe { MapViewOfFile(section, FILE_MAP_ALL_ACCESS, 0, 0, len) };
    NonNull::new(view.Value.cast()).ok_or_else(io::Error::last_os_error)
}

fn unmap(base: NonNull<u8>) {
    // SAFETY: base is the start of a view returned by MapViewOfFile and not unmapped before.
    unsafe {
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS {
            Value: base.as_ptr().cast(),
        })
    };
}

impl Segment {
    pub(crate) fn create(name: &str, len: usize) -> Result<Segment, ShmError> {
        let wname = wide(name);
        let size = len as u64;
        // SAFETY: wname is NUL-terminated UTF-16; INVALID_HANDLE_VALUE asks for a section
        // backed by the paging file.
        let section = unsafe {
            CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                std::ptr::null(),
                PAGE_READWRITE,
                (size >> 32) as u32,
                size as u32,
                wname.as_ptr(),
            )
        };
        // SAFETY: reads this thread's last error, set by the call above.
        let last = unsafe { GetLastError() };
        if section.is_null() {
            return Err(match last {
                ERROR_COMMITMENT_LIMIT | ERROR_DISK_FULL | ERROR_NOT_ENOUGH_MEMORY => {
                    ShmError::NoSpace(len)
                }
                _ => ShmError::Io(io::Error::from_raw_os_error(last as i32)),
            });
        }
        if last == ERROR_ALREADY_EXISTS {
            // SAFETY: section is a handle we own.
            unsafe { CloseHandle(section) };
            return Err(ShmError::AlreadyExists(name.to_string()));
        }
        match map_view(section, len) {
            Ok(base) => Ok(Segment { section, base, len }),
            Err(e) => {
                // SAFETY: section is a handle we own.
                unsafe { CloseHandle(section) };
                Err(ShmError::Io(e))
            }
        }
    }

    pub(crate) fn open(name: &str) -> Result<Segment, ShmError> {
        let wname = wide(name);
        // SAFETY: wname is NUL-terminated UTF-16.
        let section = unsafe { OpenFileMappingW(FILE_MAP_ALL_ACCESS, 0, wname.as_ptr()) };
        if section.is_null() {
            // SAFETY: reads this thread's last error.
            let last = unsafe { GetLastError() };
            return Err(match last {
                ERROR_FILE_NOT_FOUND => ShmError::NotFound(name.to_string()),
                _ => ShmError::Io(io::Error::from_raw_os_error(last as i32)),
            });
        }
        let fail = |e: ShmError| {
            // SAFETY: section is a handle we own.
            unsafe { CloseHandle(section) };
            e
        };
        // Map the header first to learn the size, then the whole segment.
        let head = map_view(section, HEADER_SIZE).map_err(|e| fail(ShmError::Io(e)))?;
        // SAFETY: the header view is HEADER_SIZE bytes; offset 8 holds the user size (an
        // aligned u64 written before the segment's name was published).
        let size = unsafe { std::ptr::read_volatile(head.as_ptr().add(8).cast::<u64>()) };
        unmap(head);
        let len = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(HEADER_SIZE))
            .ok_or_else(|| fail(ShmError::Invalid(name.to_string())))?;
        match map_view(section, len) {
            Ok(base) => Ok(Segment { section, base, len }),
            Err(e) => Err(fail(ShmError::Io(e))),
        }
    }

    /// Windows removes a section with its last handle; there is no name to remove early.
    pub(crate) fn unlink_name(_name: &str) -> Result<(), ShmError> {
        Ok(())
    }

    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        unmap(self.base);
        // SAFETY: section is a handle we own, closed once.
        unsafe { CloseHandle(self.section) };
    }
}

pub(crate) fn os_pid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { GetCurrentProcessId() }
}

/// The low 32 bits of the process creation time (never 0), or `None` when it has exited.
pub(crate) fn process_stamp(pid: u32) -> Option<u32> {
    // SAFETY: plain Win32 calls on a handle we open and close here; the FILETIME
    // out-parameters are valid locals.
    unsafe {
        let process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if process.is_null() {
            return None;
        }
        let mut code = 0u32;
        let alive = GetExitCodeProcess(process, &mut code) != 0 && code == STILL_ACTIVE;
        let zero = FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        };
        let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
        let ok = GetProcessTimes(process, &mut created, &mut exited, &mut kernel, &mut user) != 0;
        CloseHandle(process);
        if !alive {
            return None;
        }
        let stamp = if ok {
            created.dwLowDateTime ^ created.dwHighDateTime
        } else {
            1
        };
        Some(stamp.max(1))
    }
}

/// Windows has no `fork`.
pub(crate) fn on_fork_child(_f: fn()) {}

/// Windows needs no tracker: the kernel frees a section with its last handle.
pub(crate) fn tracker_register(_name: &str) {}

/// Windows needs no tracker.
pub(crate) fn tracker_ensure() -> io::Result<()> {
    Ok(())
}
