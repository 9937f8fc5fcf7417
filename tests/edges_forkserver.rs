//! Robustness at the edges for the fork server (R01, R02 of the catalogue): the resource
//! tracker is one per program whatever starts first, and a start that runs out of descriptors
//! is a prompt typed error.
// xtask: wine-skip-file(the fork server is Linux-only)
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use processing::process::Resource;
use processing::{active_children, Process, StartMethod};
use processing_suite::process_cases::sleeper;

/// The descriptor limit of the probing child: a few dozen starts fit, not 200.
const FEW_DESCRIPTORS: u64 = 64;

/// Runs in a child whose `RLIMIT_NOFILE` is [`FEW_DESCRIPTORS`]: starts fork-server sleepers
/// until a start fails. Returns (children started, the error, its OS error number, the
/// milliseconds the failing start took, live children right after the failure, whether a
/// start succeeds again once descriptors are free).
fn start_until_exhausted(_: ()) -> (usize, String, Option<i32>, u128, usize, bool) {
    let mut started: Vec<Process<()>> = Vec::new();
    let mut failure = None;
    for _ in 0..200 {
        let mut p = Process::new(sleeper, 60_000u64)
            .start_method(StartMethod::ForkServer)
            .daemon(true);
        let t = Instant::now();
        match p.start() {
            Ok(()) => started.push(p),
            Err(e) => {
                failure = Some((e, t.elapsed()));
                break;
            }
        }
    }
    let live = active_children().len();
    let Some((err, took)) = failure else {
        return (started.len(), String::new(), None, 0, live, false);
    };
    let errno = err.spawn_error().and_then(|s| {
        std::error::Error::source(s)?
            .downcast_ref::<std::io::Error>()?
            .raw_os_error()
    });
    let message = format!(
        "{err} (io: {})",
        err.spawn_error().is_some_and(|s| s.is_io())
    );
    // Free descriptors: the fork server still serves.
    for p in started.iter_mut().take(4) {
        let _ = p.kill();
        let _ = p.join();
    }
    let mut again = Process::new(|(): ()| 7u8, ()).start_method(StartMethod::ForkServer);
    let serves = again.start().is_ok() && again.join().ok() == Some(7);
    for p in &mut started {
        let _ = p.kill();
        let _ = p.join();
    }
    (
        started.len(),
        message,
        errno,
        took.as_millis(),
        live,
        serves,
    )
}

#[test]
fn r02_start_forkserver_few_descriptors() {
    let mut probe = Process::new(start_until_exhausted, ())
        .start_method(StartMethod::Spawn)
        .rlimit(Resource::OpenFiles, FEW_DESCRIPTORS, FEW_DESCRIPTORS);
    probe.start().unwrap();
    // Generous: the probe starts a few dozen processes on a loaded machine; a hang fails here.
    let (started, message, errno, took_ms, live, serves) = probe
        .join_timeout(Duration::from_secs(120))
        .expect("the probe finished (no start waited for ever)");
    assert!(
        started > 0 && started < 200,
        "{started} starts before the failure: {message}"
    );
    assert!(
        message.contains("(io: true)"),
        "not an I/O spawn error: {message}"
    );
    assert!(
        matches!(errno, Some(libc::EMFILE) | Some(libc::ENFILE)),
        "the OS error is not the source: {errno:?}: {message}"
    );
    assert!(took_ms < 10_000, "the failing start took {took_ms} ms");
    assert_eq!(
        live, started,
        "a child of the failed start is left behind: {live} live for {started} started"
    );
    assert!(serves, "the fork server stopped serving after the failure");
}
