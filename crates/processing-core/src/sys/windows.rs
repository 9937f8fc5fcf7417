//! Windows: handles travel as `(sender pid, handle value)` and are pulled by the receiver.
//! Below them, the one safe wrapper of each Win32 call that more than one crate makes.

use std::io;
use std::os::windows::io::{
    AsHandle, AsRawHandle, BorrowedHandle, FromRawHandle, IntoRawHandle, OwnedHandle,
};

use serde::{de::Error as _, ser::Error as _, Deserialize, Deserializer, Serialize, Serializer};
use windows_sys::Win32::Foundation::{
    DuplicateHandle, DUPLICATE_CLOSE_SOURCE, DUPLICATE_SAME_ACCESS, ERROR_PIPE_CONNECTED,
    GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE, WAIT_ABANDONED_0, WAIT_FAILED,
    WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, WriteFile, FILE_FLAG_FIRST_PIPE_INSTANCE, OPEN_EXISTING,
    PIPE_ACCESS_DUPLEX,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, DisconnectNamedPipe, PeekNamedPipe, PIPE_READMODE_BYTE,
    PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::{
    CreateSemaphoreW, GetCurrentProcess, GetExitCodeProcess, OpenProcess, OpenSemaphoreW,
    ReleaseSemaphore, WaitForSingleObject, PROCESS_DUP_HANDLE, PROCESS_QUERY_LIMITED_INFORMATION,
    SEMAPHORE_MODIFY_STATE, SYNCHRONIZATION_SYNCHRONIZE,
};

use crate::handles::{Incoming, Outgoing};

/// The exit code `GetExitCodeProcess` reports for a process that is still running.
pub const STILL_ACTIVE: u32 = 259;

pub(crate) fn serialize_handle<S: Serializer>(
    handle: BorrowedHandle<'_>,
    _outgoing: &'static Outgoing,
    s: S,
) -> Result<S::Ok, S::Error> {
    // A duplicate within this process (same access, not inheritable), left open for the
    // receiver, which takes it over (or pulls it with DUPLICATE_CLOSE_SOURCE).
    let dup = match handle.try_clone_to_owned() {
        Ok(dup) => dup,
        Err(e) => {
            crate::handles::record_os_error(&e);
            return Err(S::Error::custom(e));
        }
    };
    let value = dup.into_raw_handle();
    (std::process::id(), value as usize as u64).serialize(s)
}

pub(crate) fn deserialize_handle<'de, D: Deserializer<'de>>(
    _incoming: &'static Incoming,
    d: D,
) -> Result<OwnedHandle, D::Error> {
    let (pid, value) = <(u32, u64)>::deserialize(d)?;
    let source = value as usize as HANDLE;
    if pid == std::process::id() {
        // SAFETY: the handle was duplicated for this message in this very process and is
        // owned by nobody else.
        return Ok(unsafe { OwnedHandle::from_raw_handle(source as _) });
    }
    let process = open_process(PROCESS_DUP_HANDLE, pid).map_err(D::Error::custom)?;
    let mut out: HANDLE = std::ptr::null_mut();
    // SAFETY: `process` is an open handle of another process (not this one: checked above), so
    // closing `source` there touches no handle of this process; `out` is written only on
    // success, with a fresh handle of this process that nobody else owns.
    unsafe {
        let ok = DuplicateHandle(
            process.as_raw_handle() as HANDLE,
            source,
            GetCurrentProcess(),
            &mut out,
            0,
            0,
            DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE,
        );
        if ok == 0 {
            return Err(D::Error::custom(io::Error::last_os_error()));
        }
        Ok(OwnedHandle::from_raw_handle(out as _))
    }
}

pub(crate) fn pid_alive(pid: u32) -> bool {
    open_process(PROCESS_QUERY_LIMITED_INFORMATION, pid)
        .and_then(|p| exit_code(p.as_handle()))
        .is_ok_and(|code| code == STILL_ACTIVE)
}

/// Takes ownership of a handle a creating call returned, or its error (`invalid`: the value
/// that call returns on failure, null or `INVALID_HANDLE_VALUE`).
///
/// # Safety
/// `h` must be the result of a call that returns a fresh handle owned by nobody else (or
/// `invalid`).
unsafe fn owned(h: HANDLE, invalid: HANDLE) -> io::Result<OwnedHandle> {
    if h == invalid {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the caller's promise.
    Ok(unsafe { OwnedHandle::from_raw_handle(h as _) })
}

fn check(ok: i32) -> io::Result<()> {
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Fails unless `name` is NUL-terminated UTF-16 (as the `*W` calls read it).
fn nul_terminated(name: &[u16]) -> io::Result<()> {
    if name.last() == Some(&0) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "name is not NUL-terminated",
        ))
    }
}

/// `name` as NUL-terminated UTF-16.
fn wide(name: &str) -> Vec<u16> {
    name.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Opens process `pid` with `access` rights (`OpenProcess`, not inheritable).
///
/// ```
/// # #[cfg(windows)] {
/// use windows_sys::Win32::System::Threading::PROCESS_QUERY_LIMITED_INFORMATION;
/// let me = processing::core::os::open_process(PROCESS_QUERY_LIMITED_INFORMATION, std::process::id());
/// assert!(me.is_ok());
/// # }
/// ```
pub fn open_process(access: u32, pid: u32) -> io::Result<OwnedHandle> {
    // SAFETY: OpenProcess takes integers and returns a fresh handle or null.
    unsafe { owned(OpenProcess(access, 0, pid), std::ptr::null_mut()) }
}

/// The exit code of `process` (`GetExitCodeProcess`): [`STILL_ACTIVE`] while it runs.
///
/// ```
/// # #[cfg(windows)] {
/// use std::os::windows::io::AsHandle;
/// let child = std::process::Command::new("cmd").args(["/C", "exit 3"]).spawn().unwrap();
/// let handle = std::os::windows::io::OwnedHandle::from(child);
/// processing::core::os::wait_handle(handle.as_handle(), u32::MAX).unwrap();
/// assert_eq!(processing::core::os::exit_code(handle.as_handle()).unwrap(), 3);
/// # }
/// ```
pub fn exit_code(process: BorrowedHandle<'_>) -> io::Result<u32> {
    let mut code = 0u32;
    // SAFETY: `process` is open for the call; `code` is a writable u32.
    check(unsafe { GetExitCodeProcess(process.as_raw_handle() as HANDLE, &mut code) })?;
    Ok(code)
}

/// Waits at most `ms` milliseconds (`u32::MAX`: for ever) for `object` to be signalled
/// (`WaitForSingleObject`): `true` if it is (an abandoned mutex counts: its ownership passed
/// to the caller), `false` on timeout.
///
/// ```
/// # #[cfg(windows)] {
/// use std::os::windows::io::AsHandle;
/// let sem = processing::core::os::create_semaphore("Local\\processing-doc-wait").unwrap();
/// assert!(!processing::core::os::wait_handle(sem.as_handle(), 0).unwrap());
/// # }
/// ```
pub fn wait_handle(object: BorrowedHandle<'_>, ms: u32) -> io::Result<bool> {
    // SAFETY: `object` is an open handle for the call; the wait touches no memory of ours.
    let r = unsafe { WaitForSingleObject(object.as_raw_handle() as HANDLE, ms) };
    match r {
        WAIT_OBJECT_0 | WAIT_ABANDONED_0 => Ok(true),
        WAIT_TIMEOUT => Ok(false),
        WAIT_FAILED => Err(io::Error::last_os_error()),
        other => Err(io::Error::other(format!("unexpected wait result {other}"))),
    }
}

/// Opens the named semaphore `name`, creating it (count 0, maximum `i32::MAX`) if it does not
/// exist (`CreateSemaphoreW`, default security).
///
/// ```
/// # #[cfg(windows)] {
/// let sem = processing::core::os::create_semaphore("Local\\processing-doc-sem").unwrap();
/// # }
/// ```
pub fn create_semaphore(name: &str) -> io::Result<OwnedHandle> {
    let name = wide(name);
    // SAFETY: `name` is NUL-terminated UTF-16; null security attributes; the result is a
    // fresh handle or null.
    unsafe {
        owned(
            CreateSemaphoreW(std::ptr::null(), 0, i32::MAX, name.as_ptr()),
            std::ptr::null_mut(),
        )
    }
}

/// Opens the existing named semaphore `name` to wait on it and release it (`OpenSemaphoreW`).
///
/// ```
/// # #[cfg(windows)] {
/// let _made = processing::core::os::create_semaphore("Local\\processing-doc-open").unwrap();
/// assert!(processing::core::os::open_semaphore("Local\\processing-doc-open").is_ok());
/// # }
/// ```
pub fn open_semaphore(name: &str) -> io::Result<OwnedHandle> {
    let name = wide(name);
    // SAFETY: `name` is NUL-terminated UTF-16; the result is a fresh handle or null.
    unsafe {
        owned(
            OpenSemaphoreW(
                SEMAPHORE_MODIFY_STATE | SYNCHRONIZATION_SYNCHRONIZE,
                0,
                name.as_ptr(),
            ),
            std::ptr::null_mut(),
        )
    }
}

/// Adds `n` to the count of semaphore `sem` (`ReleaseSemaphore`; past the maximum: an error).
///
/// ```
/// # #[cfg(windows)] {
/// use std::os::windows::io::AsHandle;
/// let sem = processing::core::os::create_semaphore("Local\\processing-doc-release").unwrap();
/// processing::core::os::release_semaphore(sem.as_handle(), 1).unwrap();
/// assert!(processing::core::os::wait_handle(sem.as_handle(), 0).unwrap());
/// # }
/// ```
pub fn release_semaphore(sem: BorrowedHandle<'_>, n: i32) -> io::Result<()> {
    // SAFETY: `sem` is open for the call; the previous count is not asked for (null).
    check(unsafe { ReleaseSemaphore(sem.as_raw_handle() as HANDLE, n, std::ptr::null_mut()) })
}

/// Creates an instance of the byte-mode, duplex, local-only named pipe `name` (NUL-terminated
/// UTF-16, `\\.\pipe\...`; `first`: fail unless it is the first instance), with up to
/// `max_instances` instances and `buffer` bytes of buffer each way (`CreateNamedPipeW`).
///
/// ```
/// # #[cfg(windows)] {
/// let name: Vec<u16> = "\\\\.\\pipe\\processing-doc-pipe\0".encode_utf16().collect();
/// let server = processing::core::os::create_named_pipe(&name, true, 1, 4096).unwrap();
/// let client = processing::core::os::open_pipe_client(&name).unwrap();
/// # }
/// ```
pub fn create_named_pipe(
    name: &[u16],
    first: bool,
    max_instances: u32,
    buffer: u32,
) -> io::Result<OwnedHandle> {
    nul_terminated(name)?;
    let flags = PIPE_ACCESS_DUPLEX
        | if first {
            FILE_FLAG_FIRST_PIPE_INSTANCE
        } else {
            0
        };
    // SAFETY: `name` is NUL-terminated UTF-16 (checked); a null security descriptor is
    // allowed; the result is a fresh handle or INVALID_HANDLE_VALUE.
    unsafe {
        owned(
            CreateNamedPipeW(
                name.as_ptr(),
                flags,
                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                max_instances,
                buffer,
                buffer,
                0,
                std::ptr::null(),
            ),
            INVALID_HANDLE_VALUE,
        )
    }
}

/// Opens the client end of named pipe `name` (NUL-terminated UTF-16) for reading and writing
/// (`CreateFileW`, synchronous I/O).
///
/// ```
/// # #[cfg(windows)] {
/// let name: Vec<u16> = "\\\\.\\pipe\\processing-doc-none\0".encode_utf16().collect();
/// assert!(processing::core::os::open_pipe_client(&name).is_err());
/// # }
/// ```
pub fn open_pipe_client(name: &[u16]) -> io::Result<OwnedHandle> {
    nul_terminated(name)?;
    // SAFETY: `name` is NUL-terminated UTF-16 (checked); null security attributes and
    // template; the result is a fresh handle or INVALID_HANDLE_VALUE.
    unsafe {
        owned(
            CreateFileW(
                name.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                0,
                std::ptr::null(),
                OPEN_EXISTING,
                0,
                std::ptr::null_mut(),
            ),
            INVALID_HANDLE_VALUE,
        )
    }
}

/// Waits for a client on the server end `pipe` (`ConnectNamedPipe`, synchronous); a client
/// that connected already (`ERROR_PIPE_CONNECTED`) is success.
///
/// ```
/// # #[cfg(windows)] {
/// use std::os::windows::io::AsHandle;
/// let name: Vec<u16> = "\\\\.\\pipe\\processing-doc-connect\0".encode_utf16().collect();
/// let server = processing::core::os::create_named_pipe(&name, true, 1, 4096).unwrap();
/// let _client = processing::core::os::open_pipe_client(&name).unwrap();
/// processing::core::os::connect_named_pipe(server.as_handle()).unwrap();
/// # }
/// ```
pub fn connect_named_pipe(pipe: BorrowedHandle<'_>) -> io::Result<()> {
    // SAFETY: `pipe` is an open pipe handle for the call; no OVERLAPPED (synchronous).
    let ok = unsafe { ConnectNamedPipe(pipe.as_raw_handle() as HANDLE, std::ptr::null_mut()) };
    if ok == 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(ERROR_PIPE_CONNECTED as i32) {
            return Err(err);
        }
    }
    Ok(())
}

/// Disconnects the server end `pipe` from its client (`DisconnectNamedPipe`): the client's
/// reads see the end of the stream. On a client end it fails harmlessly.
///
/// ```
/// # #[cfg(windows)] {
/// use std::os::windows::io::AsHandle;
/// let name: Vec<u16> = "\\\\.\\pipe\\processing-doc-disconnect\0".encode_utf16().collect();
/// let server = processing::core::os::create_named_pipe(&name, true, 1, 4096).unwrap();
/// let _ = processing::core::os::disconnect_named_pipe(server.as_handle());
/// # }
/// ```
pub fn disconnect_named_pipe(pipe: BorrowedHandle<'_>) -> io::Result<()> {
    // SAFETY: `pipe` is an open pipe handle for the call; only its state changes.
    check(unsafe { DisconnectNamedPipe(pipe.as_raw_handle() as HANDLE) })
}

/// The number of bytes waiting in `pipe`, without reading them (`PeekNamedPipe`). The end of
/// the stream is an error (`ERROR_BROKEN_PIPE` and kin, as `raw_os_error`).
///
/// ```
/// # #[cfg(windows)] {
/// use std::os::windows::io::AsHandle;
/// let name: Vec<u16> = "\\\\.\\pipe\\processing-doc-peek\0".encode_utf16().collect();
/// let server = processing::core::os::create_named_pipe(&name, true, 1, 4096).unwrap();
/// let client = processing::core::os::open_pipe_client(&name).unwrap();
/// processing::core::os::write_handle(client.as_handle(), b"hi").unwrap();
/// assert_eq!(processing::core::os::peek_named_pipe(server.as_handle()).unwrap(), 2);
/// # }
/// ```
pub fn peek_named_pipe(pipe: BorrowedHandle<'_>) -> io::Result<u32> {
    let mut avail = 0u32;
    // SAFETY: `pipe` is open for the call; no buffer is passed, only the count of available
    // bytes is written, to a valid u32.
    check(unsafe {
        PeekNamedPipe(
            pipe.as_raw_handle() as HANDLE,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            &mut avail,
            std::ptr::null_mut(),
        )
    })?;
    Ok(avail)
}

/// Reads at most `buf.len()` bytes (capped at `u32::MAX`) from `file` (`ReadFile`, synchronous).
/// A pipe whose writer is gone fails with `ERROR_BROKEN_PIPE` (as `raw_os_error`).
///
/// ```
/// # #[cfg(windows)] {
/// use std::os::windows::io::AsHandle;
/// let name: Vec<u16> = "\\\\.\\pipe\\processing-doc-read\0".encode_utf16().collect();
/// let server = processing::core::os::create_named_pipe(&name, true, 1, 4096).unwrap();
/// let client = processing::core::os::open_pipe_client(&name).unwrap();
/// processing::core::os::write_handle(client.as_handle(), b"hi").unwrap();
/// let mut buf = [0u8; 8];
/// assert_eq!(processing::core::os::read_handle(server.as_handle(), &mut buf).unwrap(), 2);
/// # }
/// ```
pub fn read_handle(file: BorrowedHandle<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let file = file.as_raw_handle() as HANDLE;
    // SAFETY: `buf` is valid for writes of `len <= buf.len()` bytes.
    sync_io(buf.len(), |len, n| unsafe {
        ReadFile(file, buf.as_mut_ptr(), len, n, std::ptr::null_mut())
    })
}

/// Writes at most `data.len()` bytes (capped at `u32::MAX`) to `file` (`WriteFile`,
/// synchronous); returns the count written.
///
/// ```
/// # #[cfg(windows)] {
/// use std::os::windows::io::AsHandle;
/// let name: Vec<u16> = "\\\\.\\pipe\\processing-doc-write\0".encode_utf16().collect();
/// let _server = processing::core::os::create_named_pipe(&name, true, 1, 4096).unwrap();
/// let client = processing::core::os::open_pipe_client(&name).unwrap();
/// assert_eq!(processing::core::os::write_handle(client.as_handle(), b"hi").unwrap(), 2);
/// # }
/// ```
pub fn write_handle(file: BorrowedHandle<'_>, data: &[u8]) -> io::Result<usize> {
    let file = file.as_raw_handle() as HANDLE;
    // SAFETY: `data` is valid for reads of `len <= data.len()` bytes.
    sync_io(data.len(), |len, n| unsafe {
        WriteFile(file, data.as_ptr(), len, n, std::ptr::null_mut())
    })
}

/// One synchronous (no OVERLAPPED) `ReadFile` or `WriteFile`, `call`, of a buffer of `len`
/// bytes on a handle open for the call: `call` gets the length capped at `u32::MAX` and where
/// to put the count. Returns the count, or the OS error.
fn sync_io(len: usize, call: impl FnOnce(u32, &mut u32) -> i32) -> io::Result<usize> {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    let mut n = 0u32;
    check(call(len, &mut n))?;
    Ok(n as usize)
}
