//! What the spin policy (`os::SpinPolicy`) asks the scheduler: how many threads are runnable
//! on the machine, how many CPUs it has, whether the calling thread may run on one CPU only.
//!
//! Linux reads the running count of `/proc/loadavg` (the kernel sums it over the CPUs when the
//! file is read: a few µs) and the thread's affinity mask. Elsewhere (other Unix systems,
//! Windows) there is no cheap system-wide count of runnable threads: `runnable_threads` is
//! `None` and the policy then never counts the machine as oversubscribed.

/// Threads runnable (running or waiting for a CPU) on the whole machine now, the caller
/// included; `None` if unknown.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn runnable_threads() -> Option<u32> {
    use std::io::Read;
    // "0.52 0.58 0.59 3/345 12345": the fourth field is running/total.
    let mut buf = [0u8; 128];
    let mut file = std::fs::File::open("/proc/loadavg").ok()?;
    let n = file.read(&mut buf).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let field = text.split_ascii_whitespace().nth(3)?;
    field.split('/').next()?.parse().ok()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn runnable_threads() -> Option<u32> {
    None
}

/// CPUs online on the machine (what `runnable_threads` compares with), at least 1.
pub(crate) fn online_cpus() -> u32 {
    static CPUS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        #[cfg(unix)]
        if let Some(n) = crate::sys::sysconf(libc::_SC_NPROCESSORS_ONLN).filter(|&n| n > 0) {
            return u32::try_from(n).unwrap_or(u32::MAX);
        }
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    })
}

/// Whether the calling thread may run on a single CPU only.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pinned_to_one_cpu() -> bool {
    // SAFETY: cpu_set_t is plain old data (zero is the empty set); sched_getaffinity writes at
    // most sizeof(cpu_set_t) bytes into it; CPU_COUNT only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0
            && libc::CPU_COUNT(&set) == 1
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn pinned_to_one_cpu() -> bool {
    false
}
