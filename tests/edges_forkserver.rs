//! Robustness at the edges for the fork server (R01, R02 of the catalogue): the resource
//! tracker is one per program whatever starts first, and a start that runs out of descriptors
//! is a prompt typed error.
// xtask: wine-skip-file(the fork server is Linux-only)
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use processing::process::Resource;
use processing::{active_children, Process, Queue, StartMethod};
use processing_suite::process_cases::{noop, sleeper};

/// Larger than a quarter of the default ring (1 MiB): the item is spilled to its own segment.
const SPILLED: usize = 600 * 1024;

fn spilled_item() -> Vec<u8> {
    (0..SPILLED).map(|i| (i % 251) as u8).collect()
}

/// Puts one spilled item and exits at once; returns the address of the resource tracker it
/// registered the item's segment with.
fn put_and_exit(q: Queue<Vec<u8>>) -> Option<String> {
    q.put(spilled_item()).expect("put");
    processing::shm::tracker::child_env().map(|(_, address)| address)
}

/// Receives one item: whether it is the producer's, intact (or why not).
fn get_one(q: Queue<Vec<u8>>) -> Result<bool, String> {
    q.get_timeout(Duration::from_secs(30))
        .map(|item| item == spilled_item())
        .map_err(|e| e.to_string())
}

/// A whole program's life, in a fresh process: a process start before any shared-memory
/// object exists, then a queue, a producer that exits right after its put, and a consumer
/// started after the producer ended.
fn start_first_then_queue(method: StartMethod) -> Result<(bool, bool), String> {
    let mut first = Process::new(noop, ()).start_method(method);
    first.start().map_err(|e| e.to_string())?;
    first.join().map_err(|e| e.to_string())?;
    let q: Queue<Vec<u8>> = Queue::new().map_err(|e| e.to_string())?;
    let mut producer = Process::new(put_and_exit, q.clone()).start_method(method);
    producer.start().map_err(|e| e.to_string())?;
    let producer_tracker = producer.join().map_err(|e| e.to_string())?;
    let one_tracker = producer_tracker.is_some()
        && producer_tracker == processing::shm::tracker::child_env().map(|(_, a)| a);
    let mut consumer = Process::new(get_one, q.clone()).start_method(method);
    consumer.start().map_err(|e| e.to_string())?;
    let intact = consumer
        .join_timeout(Duration::from_secs(60))
        .map_err(|e| e.to_string())??;
    Ok((one_tracker, intact))
}

#[test]
fn r01_spilled_item_survives_when_a_process_starts_first() {
    // Each program in a spawned process of its own: this test binary's own order of first
    // process and first segment does not matter then.
    for method in [StartMethod::ForkServer, StartMethod::Spawn] {
        let mut program =
            Process::new(start_first_then_queue, method).start_method(StartMethod::Spawn);
        program.start().unwrap();
        let received = program
            .join_timeout(Duration::from_secs(120))
            .expect("the program finished");
        let (one_tracker, intact) = received.unwrap_or_else(|e| panic!("{method}: {e}"));
        assert!(
            one_tracker,
            "{method}: the producer registered its segment with a tracker of its own"
        );
        assert!(
            intact,
            "{method}: the consumer did not receive the spilled item intact"
        );
    }
}

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
