//! Windows: each segment is a file in a private directory (`%TEMP%\processing-shm\<name>`)
//! mapped with `CreateFileMappingW`; the name is the file's name.
//!
//! A paging-file-backed section would vanish with its last handle, which loses a handle that is
//! in flight (serialized by a process that then exits or drops its copy, as a queue's spilled
//! item or a queue sent through a queue is). A file persists until it is deleted, exactly like a
//! POSIX segment until `shm_unlink`, so the holder table in the header decides when it goes, as
//! on Unix. The file is temporary and not indexed (the cache manager keeps it in memory), is
//! sized when created (a full disk is an error at creation, never a fault later), and is opened
//! with every share mode so that it can be deleted while mapped. Windows refuses to delete a
//! file that still has mapped views; such a delete is retried when this process unmaps its
//! last view of it. Segments left behind by crashed processes are deleted by the first process
//! that creates a segment afterwards (no holder alive and nothing in flight), since Windows has
//! no resource tracker process.

use std::io;
use std::os::windows::io::{
    AsHandle, AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle, RawHandle,
};
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::{Mutex, Once};

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_COMMITMENT_LIMIT, ERROR_DISK_FULL,
    ERROR_FILE_EXISTS, ERROR_FILE_NOT_FOUND, ERROR_NOT_ENOUGH_MEMORY, ERROR_PATH_NOT_FOUND,
    ERROR_SHARING_VIOLATION, FILETIME, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, DeleteFileW, GetFileSizeEx, CREATE_NEW, FILE_ATTRIBUTE_NOT_CONTENT_INDEXED,
    FILE_ATTRIBUTE_TEMPORARY, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, MapViewOfFile, UnmapViewOfFile, FILE_MAP_ALL_ACCESS,
    MEMORY_MAPPED_VIEW_ADDRESS, PAGE_READWRITE,
};
use windows_sys::Win32::System::Threading::{GetProcessTimes, PROCESS_QUERY_LIMITED_INFORMATION};

use crate::base::SharedBase;
use crate::error::ShmError;
use crate::segment::{header, HEADER_SIZE};

/// One mapped view of a segment file; the view and the section handle close on drop.
#[derive(Debug)]
pub(crate) struct Segment {
    /// `Some` until drop, which closes it before it retries a delayed delete.
    section: Option<OwnedHandle>,
    base: SharedBase,
    len: usize,
    name: String,
}

/// Names whose file could not be deleted while this process still mapped it.
static DELETE_LATER: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The directory of segment files (created on first use).
fn dir() -> PathBuf {
    let mut d = std::env::temp_dir();
    d.push("processing-shm");
    d
}

/// The file of segment `name`, as a NUL-terminated wide path (`\\?\` for long names).
fn path(name: &str) -> Vec<u16> {
    let p = dir().join(name);
    let s = p.display().to_string();
    let s = if s.starts_with(r"\\") || !p.is_absolute() {
        s
    } else {
        format!(r"\\?\{s}")
    };
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn last_error() -> u32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0) as u32
}

fn open_file(name: &str, create: bool) -> Result<OwnedHandle, u32> {
    let wpath = path(name);
    // SAFETY: wpath is NUL-terminated UTF-16; null security attributes and template; a
    // result other than INVALID_HANDLE_VALUE is a fresh handle owned by nobody else.
    unsafe {
        let file = CreateFileW(
            wpath.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            std::ptr::null(),
            if create { CREATE_NEW } else { OPEN_EXISTING },
            FILE_ATTRIBUTE_TEMPORARY | FILE_ATTRIBUTE_NOT_CONTENT_INDEXED,
            std::ptr::null_mut(),
        );
        if file == INVALID_HANDLE_VALUE {
            Err(last_error())
        } else {
            Ok(OwnedHandle::from_raw_handle(file as RawHandle))
        }
    }
}

fn delete_file(name: &str) -> Result<(), u32> {
    let wpath = path(name);
    // SAFETY: wpath is NUL-terminated UTF-16.
    if unsafe { DeleteFileW(wpath.as_ptr()) } != 0 {
        Ok(())
    } else {
        Err(last_error())
    }
}

/// A section over all of `file` (`len` bytes: the file is extended to that size if shorter).
fn section_of(file: BorrowedHandle<'_>, len: u64) -> Result<OwnedHandle, u32> {
    // SAFETY: file is a valid file handle opened for reading and writing; unnamed section; a
    // non-null result is a fresh handle owned by nobody else.
    unsafe {
        let section = CreateFileMappingW(
            file.as_raw_handle() as HANDLE,
            std::ptr::null(),
            PAGE_READWRITE,
            (len >> 32) as u32,
            len as u32,
            std::ptr::null(),
        );
        if section.is_null() {
            Err(last_error())
        } else {
            Ok(OwnedHandle::from_raw_handle(section as RawHandle))
        }
    }
}

fn map_view(section: BorrowedHandle<'_>, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: section is a valid file-mapping handle; the kernel picks the address.
    let view: MEMORY_MAPPED_VIEW_ADDRESS = unsafe {
        MapViewOfFile(
            section.as_raw_handle() as HANDLE,
            FILE_MAP_ALL_ACCESS,
            0,
            0,
            len,
        )
    };
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

fn io_error(code: u32) -> ShmError {
    ShmError::Io(io::Error::from_raw_os_error(code as i32))
}

impl Segment {
    pub(crate) fn create(name: &str, len: usize) -> Result<Segment, ShmError> {
        let file = match open_file(name, true) {
            Ok(f) => f,
            Err(ERROR_PATH_NOT_FOUND) => {
                std::fs::create_dir_all(dir())?;
                open_file(name, true).map_err(|code| create_error(name, code, len))?
            }
            Err(code) => return Err(create_error(name, code, len)),
        };
        let section = section_of(file.as_handle(), len as u64);
        drop(file);
        let fail = |e: ShmError| {
            let _ = delete_file(name);
            e
        };
        let section = section.map_err(|code| fail(create_error(name, code, len)))?;
        match map_view(section.as_handle(), len) {
            Ok(base) => Ok(Segment {
                section: Some(section),
                base: SharedBase::new(base),
                len,
                name: name.to_string(),
            }),
            Err(e) => {
                drop(section);
                Err(fail(ShmError::Io(e)))
            }
        }
    }

    pub(crate) fn open(name: &str) -> Result<Segment, ShmError> {
        let file = open_file(name, false).map_err(|code| match code {
            // A file being deleted refuses new opens with access denied.
            ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND | ERROR_ACCESS_DENIED => {
                ShmError::NotFound(name.to_string())
            }
            code => io_error(code),
        })?;
        let mut file_len = 0i64;
        // SAFETY: file is a valid handle; file_len is a writable i64.
        let sized = unsafe { GetFileSizeEx(file.as_raw_handle() as HANDLE, &mut file_len) } != 0;
        let file_len = if sized { file_len as u64 } else { 0 };
        if file_len < HEADER_SIZE as u64 {
            return Err(ShmError::Invalid(name.to_string()));
        }
        let section = section_of(file.as_handle(), 0);
        drop(file);
        // The section closes (drops) on every error return below.
        let section = section.map_err(io_error)?;
        // Map the header first to learn the size, then the whole segment.
        let head = map_view(section.as_handle(), HEADER_SIZE).map_err(ShmError::Io)?;
        // SAFETY: the header view is HEADER_SIZE bytes; offset 8 holds the user size (an
        // aligned u64 written before the segment's name was published).
        let size = unsafe { std::ptr::read_volatile(head.as_ptr().add(8).cast::<u64>()) };
        unmap(head);
        let len = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(HEADER_SIZE))
            .filter(|&l| l as u64 <= file_len)
            .ok_or_else(|| ShmError::Invalid(name.to_string()))?;
        let base = map_view(section.as_handle(), len).map_err(ShmError::Io)?;
        Ok(Segment {
            section: Some(section),
            base: SharedBase::new(base),
            len,
            name: name.to_string(),
        })
    }

    /// Deletes the segment's file: no process can open it any more. Windows refuses while a
    /// view is mapped somewhere; then the delete is retried when this process unmaps its last
    /// view of it (and the file is already hidden from new opens on systems that mark it for
    /// deletion).
    pub(crate) fn unlink_name(name: &str) -> Result<(), ShmError> {
        match delete_file(name) {
            Ok(()) => Ok(()),
            Err(ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND) => {
                Err(ShmError::NotFound(name.to_string()))
            }
            Err(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION) => {
                let mut later = DELETE_LATER.lock().unwrap_or_else(|e| e.into_inner());
                if !later.iter().any(|n| n == name) {
                    later.push(name.to_string());
                }
                Ok(())
            }
            Err(code) => Err(io_error(code)),
        }
    }

    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base.get()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

fn create_error(name: &str, code: u32, len: usize) -> ShmError {
    match code {
        ERROR_FILE_EXISTS | ERROR_ALREADY_EXISTS => ShmError::AlreadyExists(name.to_string()),
        ERROR_COMMITMENT_LIMIT | ERROR_DISK_FULL | ERROR_NOT_ENOUGH_MEMORY => {
            ShmError::NoSpace(len)
        }
        code => io_error(code),
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        unmap(self.base.get());
        drop(self.section.take());
        let mut later = DELETE_LATER.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = later.iter().position(|n| *n == self.name) {
            match delete_file(&self.name) {
                // Still mapped by another view of this process (or another process): kept.
                Err(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION) => {}
                _ => {
                    later.swap_remove(i);
                }
            }
        }
    }
}

/// Deletes the files of segments that no running process holds and that no handle in flight
/// refers to (left behind by crashed processes).
fn sweep() {
    let Ok(entries) = std::fs::read_dir(dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Ok(seg) = Segment::open(&name) else {
            continue;
        };
        let h = header(&seg);
        let garbage = h.valid(seg.len()) && h.abandoned(false);
        drop(seg);
        if garbage {
            delete_garbage(&name);
        }
    }
}

/// Deletes an abandoned segment's file. While another process maps it for a moment (another
/// process's sweep reading its header, or the killed holder's view that the system is still
/// tearing down) the delete fails: it is tried again a few times, 10 ms apart.
fn delete_garbage(name: &str) {
    const TRIES: u32 = 5;
    for attempt in 1..=TRIES {
        match delete_file(name) {
            Ok(()) | Err(ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND) => return,
            Err(_) if attempt < TRIES => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(_) => {}
        }
    }
}

pub(crate) fn os_pid() -> u32 {
    std::process::id()
}

/// The low 32 bits of the process creation time (never 0), or `None` when it has exited.
pub(crate) fn process_stamp(pid: u32) -> Option<u32> {
    use processing_core::os;
    let process = os::open_process(PROCESS_QUERY_LIMITED_INFORMATION, pid).ok()?;
    if os::exit_code(process.as_handle()).ok()? != os::STILL_ACTIVE {
        return None;
    }
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: `process` is open for the call; the four FILETIME out-parameters are valid
    // locals.
    let ok = unsafe {
        GetProcessTimes(
            process.as_raw_handle() as HANDLE,
            &mut created,
            &mut exited,
            &mut kernel,
            &mut user,
        )
    } != 0;
    let stamp = if ok {
        created.dwLowDateTime ^ created.dwHighDateTime
    } else {
        1
    };
    Some(stamp.max(1))
}

/// Windows has no `fork`.
pub(crate) fn on_fork_child(_f: fn()) {}

/// Windows has no tracker process: the first creation in a process sweeps the files that
/// crashed processes left behind.
pub(crate) fn tracker_register(_name: &str, created: bool) {
    static SWEEP: Once = Once::new();
    if created {
        SWEEP.call_once(sweep);
    }
}

/// Windows has no tracker process (see `tracker_register`).
pub(crate) fn tracker_ensure() -> io::Result<()> {
    Ok(())
}

/// No tracker process: nothing removes a directory after this process. (The Windows
/// counterparts of what asks for it, a local manager's socket directory, are named pipes,
/// which vanish with their process.)
pub(crate) fn tracker_remove_dir_at_exit(_dir: &std::path::Path) -> io::Result<()> {
    Ok(())
}

/// No tracker, so nothing for children to find.
pub(crate) fn tracker_child_env() -> Option<(&'static str, String)> {
    None
}
