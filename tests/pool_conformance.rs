//! Pool conformance (docs/conformance.md W01–W13), each body run against the process pool
//! (`processing::Pool`) and the thread pool (`processing::dummy::Pool`) where it applies.

mod support;

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use processing::{Callbacks, IMap, Pool, PoolError};

// ---- task functions (fn items: they run in worker processes or threads) ----

fn square(x: u64) -> u64 {
    x * x
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn panic_on_7(x: u64) -> u64 {
    if x == 7 {
        panic!("boom at {x}");
    }
    x
}

fn my_pid(_: u64) -> u32 {
    std::process::id()
}

thread_local! {
    static INIT_RUNS: Cell<u32> = const { Cell::new(0) };
    static INIT_VALUE: Cell<u64> = const { Cell::new(0) };
}

fn init_worker(value: u64) {
    INIT_RUNS.with(|c| c.set(c.get() + 1));
    INIT_VALUE.with(|c| c.set(value));
}

fn init_seen(_: u64) -> (u32, u64) {
    (INIT_RUNS.with(Cell::get), INIT_VALUE.with(Cell::get))
}

/// Which pool a test body runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Processes,
    Threads,
}

/// Either kind of pool, used through `Deref<Target = Pool>`.
#[derive(Debug)]
enum AnyPool {
    Processes(Pool),
    Threads(processing::dummy::Pool),
}

impl std::ops::Deref for AnyPool {
    type Target = Pool;
    fn deref(&self) -> &Pool {
        match self {
            AnyPool::Processes(p) => p,
            AnyPool::Threads(p) => p,
        }
    }
}

/// Builds a pool of `kind` with the builder calls in `$setup` applied to `$b`.
macro_rules! build {
    ($kind:expr, |$b:ident| $setup:expr) => {
        match $kind {
            Kind::Processes => {
                let $b = Pool::builder();
                ($setup).build().map(AnyPool::Processes)
            }
            Kind::Threads => {
                let $b = processing::dummy::Pool::builder();
                ($setup).build().map(AnyPool::Threads)
            }
        }
    };
}

fn pool(kind: Kind, n: usize) -> AnyPool {
    build!(kind, |b| b.processes(n)).expect("pool starts")
}

// ---- bodies ----

fn w01(kind: Kind) {
    let p = pool(kind, 2);
    let serial: Vec<u64> = (0..100).map(square).collect();
    assert_eq!(p.apply(square, 12).unwrap(), 144);
    assert_eq!(p.map(square, 0..100u64).unwrap(), serial);
    assert_eq!(p.chunksize(7).map(square, 0..100u64).unwrap(), serial);
    assert_eq!(p.chunksize(1000).map(square, 0..100u64).unwrap(), serial);
    let pairs: Vec<(u64, u64)> = (0..50).map(|i| (i, 2 * i)).collect();
    let sums: Vec<u64> = pairs.iter().map(|&(a, b)| a + b).collect();
    assert_eq!(p.starmap(add, pairs.clone()).unwrap(), sums);
    assert_eq!(p.chunksize(3).starmap(add, pairs).unwrap(), sums);
    assert_eq!(
        p.map_async(square, 0..100u64).unwrap().get().unwrap(),
        serial
    );
    assert_eq!(
        p.chunksize(9)
            .map_async(square, 0..100u64)
            .unwrap()
            .get()
            .unwrap(),
        serial
    );
}

fn w02(kind: Kind) {
    let p = pool(kind, 2);
    let t = Instant::now();
    let r = p.apply_async(sleep_ms, 300).unwrap();
    assert_eq!(r.get().unwrap(), 300);
    assert!(t.elapsed() >= Duration::from_millis(300));

    let r = p.apply_async(sleep_ms, 3000).unwrap();
    let t = Instant::now();
    let e = r.get_timeout(Duration::from_millis(200)).unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(!r.ready());
    assert_eq!(r.successful(), None);
    assert_eq!(r.get().unwrap(), 3000);
}

fn w03(kind: Kind) {
    let p = pool(kind, 2);
    let serial: Vec<u64> = (0..1000).map(square).collect();
    let all = |it: IMap<'_, u64>| it.collect::<Result<Vec<u64>, _>>().unwrap();
    let sorted = |mut v: Vec<u64>| {
        v.sort_unstable();
        v
    };
    assert_eq!(all(p.imap(square, 0..1000u64).unwrap()), serial);
    assert_eq!(
        all(p.chunksize(100).imap(square, 0..1000u64).unwrap()),
        serial
    );
    let unordered = p.imap_unordered(square, 0..1000u64).unwrap();
    assert_eq!(sorted(all(unordered)), serial);
    let unordered = p.chunksize(100).imap_unordered(square, 0..1000u64);
    assert_eq!(sorted(all(unordered.unwrap())), serial);

    let mut it = p.imap(sleep_ms, [1500u64, 1]).unwrap();
    let t = Instant::now();
    let e = it.next_timeout(Duration::from_millis(200)).unwrap_err();
    assert!(e.is_timeout());
    assert!(t.elapsed() >= Duration::from_millis(200) && t.elapsed() < Duration::from_millis(1400));
    assert_eq!(
        it.next_timeout(Duration::from_secs(30)).unwrap(),
        Some(1500)
    );
    assert_eq!(it.next_timeout(Duration::from_secs(30)).unwrap(), Some(1));
    assert_eq!(it.next_timeout(Duration::from_secs(30)).unwrap(), None);
}

fn w04(kind: Kind) {
    let p = pool(kind, 2);
    let e = p.apply(panic_on_7, 7).unwrap_err();
    assert!(e.is_panic(), "{e}");
    assert_eq!(e.panic_message(), Some("boom at 7"));
    match &e {
        PoolError::Panic {
            location: Some(l), ..
        } => assert!(l.contains("pool_conformance.rs"), "{l}"),
        other => panic!("no location: {other:?}"),
    }
    let e = p.map(panic_on_7, 0..100u64).unwrap_err();
    assert_eq!(e.panic_message(), Some("boom at 7"));
    let e = p.chunksize(1).map(panic_on_7, 0..100u64).unwrap_err();
    assert_eq!(e.panic_message(), Some("boom at 7"));
    let results: Vec<_> = p.imap(panic_on_7, 5..9u64).unwrap().collect();
    assert_eq!(results[0], Ok(5));
    assert!(results[2].as_ref().unwrap_err().is_panic());
    assert_eq!(results[3], Ok(8));
    // Still usable, still its size.
    assert_eq!(p.map(square, 0..10u64).unwrap()[9], 81);
    assert_eq!(p.worker_pids().len(), 2);
}

fn w05(kind: Kind) {
    let p = pool(kind, 2);
    let t = Instant::now();
    assert_eq!(p.map(square, Vec::<u64>::new()).unwrap(), Vec::<u64>::new());
    assert_eq!(
        p.map_async(square, Vec::<u64>::new())
            .unwrap()
            .get()
            .unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(p.imap(square, Vec::<u64>::new()).unwrap().count(), 0);
    assert_eq!(
        p.imap_unordered(square, Vec::<u64>::new()).unwrap().count(),
        0
    );
    assert_eq!(
        p.starmap(add, Vec::<(u64, u64)>::new()).unwrap(),
        Vec::<u64>::new()
    );
    assert!(t.elapsed() < Duration::from_secs(5));
}

fn w06(kind: Kind) {
    let e = build!(kind, |b| b.processes(0)).unwrap_err();
    assert!(e.is_zero_processes(), "{e}");
    let e = build!(kind, |b| b.processes(1).max_tasks_per_child(0)).unwrap_err();
    assert!(e.is_zero_max_tasks(), "{e}");
    let e = build!(kind, |b| b.processes(1).max_memory_per_child(0)).unwrap_err();
    assert!(e.is_zero_max_memory(), "{e}");
    match kind {
        Kind::Processes => assert!(Pool::new(0).unwrap_err().is_zero_processes()),
        Kind::Threads => assert!(processing::dummy::Pool::new(0)
            .unwrap_err()
            .is_zero_processes()),
    }
}

fn w07(kind: Kind) {
    let p = build!(kind, |b| b.processes(2).max_tasks_per_child(10)).unwrap();
    let results: Vec<_> = (0..100u64)
        .map(|i| p.apply_async(square, i).unwrap())
        .collect();
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), (i * i) as u64);
    }
    if kind == Kind::Processes {
        let pids: HashSet<u32> = (0..100u64)
            .map(|i| p.apply_async(my_pid, i).unwrap())
            .map(|r| r.get().unwrap())
            .collect();
        assert!(pids.len() >= 10, "only {} distinct worker pids", pids.len());
    }
    let p = build!(kind, |b| b.processes(2).max_tasks_per_child(1)).unwrap();
    let results: Vec<_> = (0..20u64)
        .map(|i| p.apply_async(square, i).unwrap())
        .collect();
    assert_eq!(p.map(square, 0..20u64).unwrap()[19], 361);
    p.close();
    let t = Instant::now();
    p.join().unwrap();
    assert!(t.elapsed() < Duration::from_secs(30));
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), (i * i) as u64);
    }
}

fn w08(kind: Kind) {
    let p = pool(kind, 2);
    let results: Vec<_> = (0..10_000)
        .map(|_| p.apply_async(sleep_ms, 500).unwrap())
        .collect();
    let mapped = p.map_async(sleep_ms, vec![500u64; 100]).unwrap();
    let t = Instant::now();
    p.terminate();
    p.join().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "terminate+join took {:?}",
        t.elapsed()
    );
    let terminated = results
        .into_iter()
        .filter(|r| {
            r.get_timeout(Duration::from_secs(5))
                .is_err_and(|e| e.is_terminated())
        })
        .count();
    assert!(terminated >= 9_990, "{terminated}");
    assert!(mapped.get().unwrap_err().is_terminated());
}

fn w09(kind: Kind) {
    let p = pool(kind, 2);
    assert!(p.join().unwrap_err().is_not_closed());
    assert_eq!(p.apply(square, 3).unwrap(), 9);
    p.close();
    assert!(p.apply(square, 3).unwrap_err().is_closed());
    assert!(p.apply_async(square, 3).unwrap_err().is_closed());
    assert!(p.map(square, 0..3u64).unwrap_err().is_closed());
    assert!(p.imap(square, 0..3u64).unwrap_err().is_closed());
    p.join().unwrap();
    let p = pool(kind, 2);
    p.terminate();
    assert!(p.apply(square, 3).unwrap_err().is_closed());
    p.join().unwrap();
    if kind == Kind::Processes {
        let p = pool(kind, 3);
        assert_eq!(p.apply(square, 2).unwrap(), 4);
        let pids = p.worker_pids();
        assert_eq!(pids.len(), 3);
        drop(p);
        // A dropped pool has joined its workers: none runs. (Under the fork server, a joined
        // worker's status is relayed before the server reaps it, so its pid may name a zombie
        // for a moment; `stamp_of` counts a zombie as not running, `pid_alive` would not.)
        for pid in pids {
            assert!(
                processing::shm::liveness::stamp_of(pid).is_none(),
                "worker {pid} outlived its pool"
            );
        }
    }
}

fn w10(kind: Kind) {
    let p = build!(kind, |b| b.processes(3).initializer(init_worker, 42)).unwrap();
    let seen = p.chunksize(1).map(init_seen, 0..60u64).unwrap();
    assert!(seen.iter().all(|&s| s == (1, 42)), "{seen:?}");
}

fn w11(kind: Kind) {
    let p = pool(kind, 2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let input = (0u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let mut it = p.imap(square, input).unwrap();
    let bound = it.lookahead();
    let first: Vec<u64> = it.by_ref().take(50).collect::<Result<_, _>>().unwrap();
    assert_eq!(first, (0..50u64).map(square).collect::<Vec<_>>());
    let n = pulled.load(Ordering::SeqCst);
    assert!(
        n >= 50 && n <= 50 + bound + 1,
        "pulled {n} items for 50 results (look-ahead {bound})"
    );
    drop(it);
    let mut it = p
        .chunksize(10)
        .imap_unordered(
            square,
            (0u64..).inspect({
                let c = pulled.clone();
                move |_| {
                    c.fetch_add(1, Ordering::SeqCst);
                }
            }),
        )
        .unwrap();
    let before = pulled.load(Ordering::SeqCst);
    for _ in 0..100 {
        it.next().unwrap().unwrap();
    }
    let n = pulled.load(Ordering::SeqCst) - before;
    assert!(n <= 100 + 10 * (it.lookahead() + 1), "pulled {n}");
}

fn w13(kind: Kind) {
    let p = build!(kind, |b| b
        .processes(2)
        .task_timeout(Duration::from_millis(500)))
    .unwrap();
    let before = p.worker_pids();
    let t = Instant::now();
    let slow = p.apply_async(sleep_ms, 10_000).unwrap();
    let quick: Vec<_> = (0..20u64)
        .map(|i| p.apply_async(square, i).unwrap())
        .collect();
    let e = slow.get().unwrap_err();
    assert!(e.is_task_timeout(), "{e}");
    assert!(
        t.elapsed() >= Duration::from_millis(500) && t.elapsed() < Duration::from_secs(6),
        "{:?}",
        t.elapsed()
    );
    for (i, r) in quick.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), (i * i) as u64);
    }
    assert_eq!(p.apply(square, 5).unwrap(), 25);
    assert_eq!(p.worker_pids().len(), 2);
    if kind == Kind::Processes {
        assert_ne!(p.worker_pids(), before, "the late worker was not replaced");
    }
}

fn cancel_and_callbacks(kind: Kind) {
    let p = pool(kind, 1);
    let busy = p.apply_async(sleep_ms, 400).unwrap();
    // Let the worker take the first task before queueing the one to cancel.
    std::thread::sleep(Duration::from_millis(100));
    let queued = p.apply_async(square, 3).unwrap();
    assert!(queued.cancel());
    assert!(queued.get().unwrap_err().is_cancelled());
    assert!(!busy.cancel());
    assert_eq!(busy.get().unwrap(), 400);

    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    let ok = p
        .apply_async_with(
            square,
            6,
            Callbacks::new().callback(move |v: &u64| tx.send(Ok(*v)).unwrap()),
        )
        .unwrap();
    assert_eq!(ok.get().unwrap(), 36);
    assert_eq!(rx.recv().unwrap(), Ok(36));
    let bad = p
        .apply_async_with(
            panic_on_7,
            7,
            Callbacks::new()
                .error_callback(move |e: &PoolError| tx2.send(Err(e.to_string())).unwrap()),
        )
        .unwrap();
    assert!(bad.get().is_err());
    assert!(rx.recv().unwrap().unwrap_err().contains("boom at 7"));
}

fn progress_bar_map(kind: Kind) {
    let p = build!(kind, |b| b.processes(2).progress(true)).unwrap();
    assert_eq!(p.map(square, 0..500u64).unwrap()[499], 249_001);
    let got: Vec<u64> = p
        .imap(square, 0..50u64)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got[49], 2401);
}

macro_rules! suite {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;
            #[test]
            fn w01_apply_map_starmap_match_serial() {
                w01($kind)
            }
            #[test]
            fn w02_get_waits_and_get_timeout_times_out() {
                w02($kind)
            }
            #[test]
            fn w03_imap_ordered_unordered_and_next_timeout() {
                w03($kind)
            }
            #[test]
            fn w04_panic_is_an_error_with_message_and_location() {
                w04($kind)
            }
            #[test]
            fn w05_empty_input_returns_promptly() {
                w05($kind)
            }
            #[test]
            fn w06_zero_processes_and_zero_max_tasks_are_errors() {
                w06($kind)
            }
            #[test]
            fn w07_max_tasks_per_child_replaces_workers() {
                w07($kind)
            }
            #[test]
            fn w08_terminate_with_queued_tasks_returns_promptly() {
                w08($kind)
            }
            #[test]
            fn w09_closed_pool_join_before_close_and_drop() {
                w09($kind)
            }
            #[test]
            fn w10_initializer_runs_once_per_worker() {
                w10($kind)
            }
            #[test]
            fn w11_imap_endless_input_bounded_lookahead() {
                w11($kind)
            }
            #[test]
            fn w13_task_timeout_fails_task_and_replaces_worker() {
                w13($kind)
            }
            #[test]
            fn w01_progress_bar_does_not_change_results() {
                progress_bar_map($kind)
            }
            #[test]
            fn w02_cancel_and_callbacks() {
                super::cancel_and_callbacks($kind)
            }
        }
    };
}

suite!(threads, Kind::Threads);
suite!(processes, Kind::Processes);

// ---- W12: worker deaths (process pool only: a thread cannot die alone) ----

fn abort_task(_: u64) -> u64 {
    std::process::abort()
}

fn exit_task(code: i32) -> u64 {
    std::process::exit(code)
}

/// Writes this worker's pid into the FIFO at `path`, then sleeps far longer than any test.
#[cfg(unix)]
fn report_pid_then_sleep(path: String) -> u64 {
    use std::io::Write;
    let mut fifo = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    writeln!(fifo, "{}", std::process::id()).unwrap();
    drop(fifo);
    std::thread::sleep(Duration::from_secs(120));
    0
}

/// Puts this worker's pid into `q`, then sleeps far longer than any test.
#[cfg(windows)]
fn report_pid_to_queue_then_sleep(q: processing::Queue<u32>) -> u64 {
    q.put(std::process::id()).unwrap();
    std::thread::sleep(Duration::from_secs(120));
    0
}

fn assert_survives(p: &Pool, n: usize) {
    assert_eq!(p.map(square, 0..1000u64).unwrap()[999], 998_001);
    assert_eq!(p.worker_pids().len(), n);
    assert_eq!(p.apply(square, 4).unwrap(), 16);
}

#[test]
fn w12_abort_fails_that_task_with_worker_lost() {
    let p = pool(Kind::Processes, 2);
    let others: Vec<_> = (0..50u64)
        .map(|i| p.apply_async(sleep_ms, i % 3).unwrap())
        .collect();
    let t = Instant::now();
    let e = p.apply(abort_task, 0).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10));
    match e {
        PoolError::WorkerLost {
            signal, exitcode, ..
        } => {
            #[cfg(unix)]
            assert_eq!(signal, Some(libc::SIGABRT), "exitcode {exitcode:?}");
            #[cfg(not(unix))]
            assert!(signal.is_some() || exitcode.is_some());
        }
        other => panic!("expected WorkerLost, got {other:?}"),
    }
    for (i, r) in others.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), i as u64 % 3);
    }
    assert_survives(&p, 2);
}

#[test]
fn w12_exit_fails_that_task_with_its_exit_code() {
    let p = pool(Kind::Processes, 2);
    let batch: Vec<_> = (0..20u64)
        .map(|i| p.apply_async(square, i).unwrap())
        .collect();
    let e = p.apply(exit_task, 7).unwrap_err();
    match e {
        PoolError::WorkerLost {
            exitcode, signal, ..
        } => assert_eq!((exitcode, signal), (Some(7), None)),
        other => panic!("expected WorkerLost, got {other:?}"),
    }
    for (i, r) in batch.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), (i * i) as u64);
    }
    // A map whose chunk kills its worker fails with worker-lost, and nothing hangs.
    let e = p.chunksize(1).map(exit_task, [3, 3]).unwrap_err();
    assert!(e.is_worker_lost(), "{e}");
    assert_survives(&p, 2);
}

#[cfg(unix)]
#[test]
fn w12_sigkill_from_outside_fails_that_task() {
    let p = pool(Kind::Processes, 2);
    let path = std::env::temp_dir().join(format!("processing-w12-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let victim = p
        .apply_async(report_pid_then_sleep, path.to_str().unwrap().to_string())
        .unwrap();
    let others = p.map_async(sleep_ms, vec![20u64; 40]).unwrap();
    // Blocks until the task has opened the FIFO: the task is running.
    let pid = support::pid_from_fifo(&path) as i32;
    assert!(p.worker_pids().contains(&(pid as u32)));
    let t = Instant::now();
    // SAFETY: sending SIGKILL to our own worker process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    match victim.get().unwrap_err() {
        PoolError::WorkerLost {
            signal, pid: lost, ..
        } => {
            assert_eq!(signal, Some(libc::SIGKILL));
            assert_eq!(lost, pid as u32);
        }
        other => panic!("expected WorkerLost, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(others.get().unwrap(), vec![20u64; 40]);
    assert_survives(&p, 2);
    assert!(!p.worker_pids().contains(&(pid as u32)));
}

/// W12 on Windows: `TerminateProcess` by pid from outside the pool (the SIGKILL test's twin).
#[cfg(windows)]
#[test]
fn w12_terminate_process_from_outside_fails_that_task() {
    let p = pool(Kind::Processes, 2);
    let q = processing::Queue::new().unwrap();
    let victim = p
        .apply_async(report_pid_to_queue_then_sleep, q.clone())
        .unwrap();
    let others = p.map_async(sleep_ms, vec![20u64; 40]).unwrap();
    // Returns once the task is running.
    let pid = q.get().unwrap();
    assert!(p.worker_pids().contains(&pid));
    let t = Instant::now();
    // TerminateProcess with exit code 77.
    processing_suite::kill_from_outside(pid);
    match victim.get().unwrap_err() {
        PoolError::WorkerLost {
            exitcode,
            pid: lost,
            ..
        } => {
            assert_eq!(exitcode, Some(77));
            assert_eq!(lost, pid);
        }
        other => panic!("expected WorkerLost, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(others.get().unwrap(), vec![20u64; 40]);
    assert_survives(&p, 2);
    assert!(!p.worker_pids().contains(&pid));
}
