//! The child bootstrap: what a started process runs instead of `main`.
//!
//! A pre-main hook ([`processing_core::on_load!`]) looks for the child marker (or the fork
//! server marker) in the environment, removes it, and takes the process over: it reads the
//! launch frame from the bootstrap channel, checks the build identity, applies the settings,
//! answers `Ready`, runs the target and sends its value (or panic) back, then exits without
//! ever returning to `main`. Setting `PROCESSING_NO_AUTO_BOOTSTRAP` disables the hook; then
//! [`init`] (which `#[processing::main]` inserts) does the same at the top of `main`.

use std::io::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use processing_core::{authkey, codec, handles, OwnedOsHandle};

use crate::error::{SpawnError, SpawnErrorKind};
use crate::registry::{self, Identity};
use crate::sys::{self, Channel};
use crate::target::{self, BuildId, Outcome};
use crate::wire::{
    Config, Refusal, Report, CHILD_MARKER, EXIT_BOOTSTRAP_FAILED, NO_AUTO_BOOTSTRAP, SERVER_MARKER,
};
use crate::StartMethod;

static INIT_CALLED: AtomicBool = AtomicBool::new(false);

fn hook() {
    if std::env::var_os(NO_AUTO_BOOTSTRAP).is_some_and(|v| !v.is_empty() && v != "0") {
        return;
    }
    take_over();
}

processing_core::on_load!(hook);

/// Runs the child bootstrap if this process was started as a child; otherwise records that
/// the program calls it and returns.
///
/// The pre-main hook normally does this before `main`, so calling `init` is optional; it is
/// needed when the hook is disabled with `PROCESSING_NO_AUTO_BOOTSTRAP=1` (for example in a
/// program that must run code of its own before the bootstrap, or on a platform without
/// pre-main hooks). `#[processing::main]` inserts the call. Calling it again does nothing.
///
/// ```
/// processing::init();
/// processing::init(); // idempotent
/// assert_eq!(processing::current_process().name(), "MainProcess");
/// ```
pub fn init() {
    INIT_CALLED.store(true, Ordering::Relaxed);
    take_over();
}

fn take_over() {
    if let Some(value) = std::env::var_os(CHILD_MARKER) {
        std::env::remove_var(CHILD_MARKER);
        let value = value.to_string_lossy().into_owned();
        match sys::parse_marker(&value) {
            Some(chan) => run_child(chan, StartMethod::Spawn),
            None => {
                sys::write_stderr(
                    "processing: the bootstrap channel named in PROCESSING_BOOTSTRAP is not open\n",
                );
                sys::exit_now(EXIT_BOOTSTRAP_FAILED)
            }
        }
    }
    if let Some(value) = std::env::var_os(SERVER_MARKER) {
        std::env::remove_var(SERVER_MARKER);
        sys::serve_forkserver(&value.to_string_lossy())
    }
}

/// Refuses to start a process from a process that was started as a child but whose bootstrap
/// did not run (it would start itself again and again).
pub(crate) fn guard_against_recursion() -> Result<(), SpawnError> {
    for marker in [CHILD_MARKER, SERVER_MARKER] {
        if std::env::var_os(marker).is_some() {
            return Err(SpawnError::new(
                SpawnErrorKind::Recursive,
                format!(
                    "this process was started as a child ({marker} is set) but did not run the processing bootstrap, so it may not start processes; \
                     remove {NO_AUTO_BOOTSTRAP} or call processing::init() first in main"
                ),
            ));
        }
    }
    Ok(())
}

/// Sends a refusal and exits.
pub(crate) fn refuse(chan: &Channel, why: Refusal, detail: processing_core::ErrorChain) -> ! {
    let report = Report::Refused { why, detail };
    if let Ok(bytes) = codec::encode(&report) {
        let _ = chan.send_frame(0, &bytes, &[]);
    }
    sys::exit_now(EXIT_BOOTSTRAP_FAILED)
}

/// A spawned or fork-server child: reads its launch frame, then runs.
pub(crate) fn run_child(chan: Channel, method: StartMethod) -> ! {
    let mut frame = match chan.recv_frame() {
        Ok(Some(frame)) => frame,
        _ => sys::exit_now(EXIT_BOOTSTRAP_FAILED),
    };
    let mut all = std::mem::take(&mut frame.handles);
    let split = (frame.split as usize).min(all.len());
    let config_handles = all.split_off(split);
    let config: Config = match handles::provide(config_handles, || codec::decode(frame.body())) {
        Ok(c) => c,
        Err(e) => refuse(
            &chan,
            Refusal::Config,
            processing_core::ErrorChain::with_source("cannot decode the launch message", &e),
        ),
    };
    if config.build != BuildId::current() {
        refuse(
            &chan,
            Refusal::DifferentBinary,
            "the child is a different build of the program (the executable differs from the parent's), so the target cannot be located in it".into(),
        );
    }
    debug_assert_eq!(config.method, method);
    run_configured(chan, config, all, None, false, true)
}

/// The work a forked child does instead of reading a launch frame.
pub(crate) type Closure = Box<dyn FnOnce() -> Outcome + Send>;

static PANIC: Mutex<Option<(String, Option<String>)>> = Mutex::new(None);

/// Runs the target described by `config` (or `closure`) and reports to the parent.
///
/// `announce`: send `Ready` before running (the parent waits for it unless it knows that the
/// setup cannot fail: a forked child with nothing to set up). A value that encodes to nothing
/// and carries no handles (`()`) is not reported: exit code 0 says it.
pub(crate) fn run_configured(
    chan: Channel,
    config: Config,
    arg_handles: Vec<OwnedOsHandle>,
    closure: Option<Closure>,
    close_others: bool,
    announce: bool,
) -> ! {
    sys::child_defaults();
    let Config {
        entry,
        args,
        name,
        daemon,
        authkey: key,
        parent_pid,
        parent_name,
        method,
        setup,
        ..
    } = config;
    if let Err(detail) = sys::apply_setup(setup, parent_pid) {
        refuse(&chan, Refusal::Setup, detail);
    }
    if close_others {
        let mut keep = vec![0, 1, 2, chan.raw()];
        keep.extend(sys::raw_numbers(&arg_handles));
        sys::close_fds_except(&keep);
    }
    registry::set_identity(Identity {
        name: name.clone(),
        daemon,
        parent: Some((parent_pid, parent_name)),
        method: Some(method),
    });
    // A forked child already has the key in memory; setting it could wait forever on a lock
    // that another thread of the parent held at the moment of the fork.
    if method != StartMethod::Fork {
        authkey::set(key);
    }
    INIT_CALLED.store(true, Ordering::Relaxed);
    if announce {
        send(
            &chan,
            &Report::Ready {
                pid: std::process::id(),
            },
            &[],
        );
    }

    let hook_name = name;
    std::panic::set_hook(Box::new(move |info| {
        let message = processing_core::panic_message(info.payload());
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        sys::write_stderr(&format!(
            "process '{hook_name}' panicked at {}:\n{message}\n",
            location.as_deref().unwrap_or("<unknown>")
        ));
        *PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some((message, location));
    }));

    let outcome = std::panic::catch_unwind(AssertUnwindSafe(move || match closure {
        Some(c) => c(),
        None => {
            // SAFETY: the build identity matched (checked by `run_child`; a forked child is the
            // same image), so `entry` is an offset produced by `entry_offset` in this image.
            let trampoline = unsafe { target::resolve(entry) };
            trampoline(&args, arg_handles)
        }
    }));
    let (report, fds, code) = match outcome {
        Ok(Ok((bytes, fds))) if bytes.is_empty() && fds.is_empty() => {
            // Nothing to send: the parent decodes the empty value from exit code 0.
            flush_and_exit(0)
        }
        Ok(Ok((bytes, fds))) => (Report::Returned(bytes), fds, 0),
        Ok(Err(message)) => (Report::Failed(message), Vec::new(), 1),
        Err(payload) => {
            let (message, location) = PANIC
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_else(|| (processing_core::panic_message(&*payload), None));
            (Report::Panicked { message, location }, Vec::new(), 1)
        }
    };
    send(&chan, &report, &fds);
    flush_and_exit(code)
}

fn flush_and_exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    sys::exit_now(code)
}

fn send(chan: &Channel, report: &Report, handles: &[OwnedOsHandle]) {
    match codec::encode(report) {
        Ok(bytes) => {
            if chan.send_frame(0, &bytes, handles).is_err() {
                // The parent is gone or stopped listening; nothing to report to.
            }
        }
        Err(e) => sys::write_stderr(&format!("processing: cannot encode a report: {e}\n")),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod r06_tests {
    use super::*;

    /// The peak resident set of this process in KiB, after resetting it to the current one.
    fn reset_peak() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    fn status_kib(field: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn r06_bootstrap_channel_allocates_what_arrived() {
        let (a, b) = sys::channel_pair().unwrap();
        // A frame announcing 1 GiB (below the channel's 2 GiB cap), then 10 bytes, then the end.
        let mut lie = processing_core::frame::Header::for_len(1 << 30)
            .as_bytes()
            .to_vec();
        lie.extend_from_slice(&0u32.to_le_bytes());
        lie.extend_from_slice(&[7u8; 10]);
        reset_peak();
        let (before, virtual_before) = (status_kib("VmHWM:"), status_kib("VmPeak:"));
        let n = processing_core::os::send(a.as_fd(), &lie, 0).unwrap();
        assert_eq!(n, lie.len());
        drop(a);
        assert!(b.recv_frame().is_err(), "a truncated frame is an error");
        let grown = status_kib("VmHWM:").saturating_sub(before);
        assert!(grown < 64 * 1024, "the receiver grew by {grown} KiB");
        // Not even address space is reserved for the announced length.
        let reserved = status_kib("VmPeak:").saturating_sub(virtual_before);
        assert!(reserved < 64 * 1024, "the receiver reserved {reserved} KiB");
    }
}
