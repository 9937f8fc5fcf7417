//! Windows: handles travel as `(sender pid, handle value)` and are pulled by the receiver.

use std::io;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle};

use serde::{de::Error as _, ser::Error as _, Deserialize, Deserializer, Serialize, Serializer};
use windows_sys::Win32::Foundation::{
    CloseHandle, DuplicateHandle, DUPLICATE_CLOSE_SOURCE, DUPLICATE_SAME_ACCESS, HANDLE,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetCurrentProcessId, GetExitCodeProcess, OpenProcess, PROCESS_DUP_HANDLE,
    PROCESS_QUERY_LIMITED_INFORMATION,
};

use crate::handles::{Incoming, Outgoing};

const STILL_ACTIVE: u32 = 259;

pub(crate) fn serialize_handle<S: Serializer>(
    handle: BorrowedHandle<'_>,
    _outgoing: &'static Outgoing,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut dup: HANDLE = std::ptr::null_mut();
    // SAFETY: duplicating a valid handle of this process into this process; `dup` is written
    // only on success.
    let ok = unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            handle.as_raw_handle() as HANDLE,
            GetCurrentProcess(),
            &mut dup,
            0,
            0,
            DUPLICATE_SAME_ACCESS,
        )
    };
    if ok == 0 {
        let e = io::Error::last_os_error();
        crate::handles::record_os_error(&e);
        return Err(S::Error::custom(e));
    }
    // SAFETY: GetCurrentProcessId has no preconditions.
    let pid = unsafe { GetCurrentProcessId() };
    (pid, dup as usize as u64).serialize(s)
}

pub(crate) fn deserialize_handle<'de, D: Deserializer<'de>>(
    _incoming: &'static Incoming,
    d: D,
) -> Result<OwnedHandle, D::Error> {
    let (pid, value) = <(u32, u64)>::deserialize(d)?;
    let source = value as usize as HANDLE;
    // SAFETY: GetCurrentProcessId has no preconditions.
    if pid == unsafe { GetCurrentProcessId() } {
        // SAFETY: the handle was duplicated for this message in this very process and is
        // owned by nobody else.
        return Ok(unsafe { OwnedHandle::from_raw_handle(source as _) });
    }
    // SAFETY: plain Win32 calls; every handle opened here is closed before returning.
    unsafe {
        let process = OpenProcess(PROCESS_DUP_HANDLE, 0, pid);
        if process.is_null() {
            return Err(D::Error::custom(io::Error::last_os_error()));
        }
        let mut out: HANDLE = std::ptr::null_mut();
        let ok = DuplicateHandle(
            process,
            source,
            GetCurrentProcess(),
            &mut out,
            0,
            0,
            DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE,
        );
        let err = io::Error::last_os_error();
        CloseHandle(process);
        if ok == 0 {
            return Err(D::Error::custom(err));
        }
        Ok(OwnedHandle::from_raw_handle(out as _))
    }
}

pub(crate) fn pid_alive(pid: u32) -> bool {
    // SAFETY: plain Win32 calls; the process handle is closed before returning.
    unsafe {
        let process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if process.is_null() {
            return false;
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(process, &mut code);
        CloseHandle(process);
        ok != 0 && code == STILL_ACTIVE
    }
}
