//! Windows: resident size from `GetProcessMemoryInfo`, Ctrl-C ignored in workers.

use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
use windows_sys::Win32::System::ProcessStatus::{GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

/// This process's working set in bytes, if it can be known.
pub(crate) fn resident_bytes() -> Option<u64> {
    // SAFETY: PROCESS_MEMORY_COUNTERS is plain old data; zero is a valid value.
    let mut counters: PROCESS_MEMORY_COUNTERS = unsafe { std::mem::zeroed() };
    counters.cb = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
    // SAFETY: the pseudo handle of this process and a valid, writable counters struct of the
    // size given in `cb`.
    let ok = unsafe { GetProcessMemoryInfo(GetCurrentProcess(), &mut counters, counters.cb) };
    (ok != 0).then_some(counters.WorkingSetSize as u64)
}

/// Workers leave Ctrl-C to the parent: the parent decides, and its workers end with it.
pub(crate) fn ignore_interrupts() {
    // SAFETY: a null handler with TRUE makes this process ignore Ctrl-C; no preconditions.
    unsafe {
        SetConsoleCtrlHandler(None, 1);
    }
}
