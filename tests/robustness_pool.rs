//! Robustness of the pool at the edges (docs/conformance.md R02, R03, R04, R09, R10, R15): few
//! descriptors, workers stopped or killed with tasks queued, huge timeouts, failing inputs in
//! a chunk, a worker's memory limit, Ctrl-C during a map.

mod support;

use std::time::Duration;

use processing::{Pool, PoolError};

fn square(x: u64) -> u64 {
    x * x
}

fn panic_on_3_and_8(x: u64) -> u64 {
    if x == 3 || x == 8 {
        panic!("input {x} fails");
    }
    x * 10
}

/// The same checks against the process pool and the thread pool.
fn r10_check(pool: &Pool, ordered: bool) {
    let it = if ordered {
        pool.chunksize(4).imap(panic_on_3_and_8, 0..10u64).unwrap()
    } else {
        pool.chunksize(4)
            .imap_unordered(panic_on_3_and_8, 0..10u64)
            .unwrap()
    };
    let items: Vec<Result<u64, PoolError>> = it.collect();
    assert_eq!(items.len(), 10, "one item per input: {items:?}");
    if ordered {
        for (x, item) in items.iter().enumerate() {
            match item {
                Err(e) if x == 3 || x == 8 => {
                    assert_eq!(
                        e.panic_message(),
                        Some(format!("input {x} fails").as_str()),
                        "{e}"
                    );
                }
                Ok(v) if x != 3 && x != 8 => assert_eq!(*v, x as u64 * 10),
                other => panic!("input {x}: unexpected {other:?}"),
            }
        }
    } else {
        let mut values: Vec<u64> = items.iter().filter_map(|r| r.clone().ok()).collect();
        values.sort_unstable();
        assert_eq!(values, [0, 10, 20, 40, 50, 60, 70, 90]);
        let mut failed: Vec<String> = items
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| e.panic_message().unwrap_or_default().to_string())
            .collect();
        failed.sort();
        assert_eq!(failed, ["input 3 fails", "input 8 fails"]);
    }
}

#[test]
fn r10_imap_with_failing_inputs_yields_one_item_per_input() {
    let pool = Pool::new(2).unwrap();
    r10_check(&pool, true);
    r10_check(&pool, false);
    // A map still fails as a whole with the first failure.
    assert!(pool
        .chunksize(4)
        .map(panic_on_3_and_8, 0..10u64)
        .unwrap_err()
        .is_panic());
    // The pool goes on.
    assert_eq!(pool.map(square, 0..4u64).unwrap(), [0, 1, 4, 9]);
}

#[test]
fn r10_thread_pool_imap_with_failing_inputs_yields_one_item_per_input() {
    let pool = processing::dummy::Pool::new(2).unwrap();
    r10_check(&pool, true);
    r10_check(&pool, false);
}

#[test]
fn r09_pool_accepts_duration_max() {
    let pool = Pool::builder()
        .processes(2)
        .task_timeout(Duration::MAX)
        .build()
        .unwrap();
    assert_eq!(pool.map(square, 0..20u64).unwrap()[19], 361);
    let r = pool.apply_async(square, 3).unwrap();
    assert!(r.wait_timeout(Duration::MAX));
    assert_eq!(r.get_timeout(Duration::MAX).unwrap(), 9);
    let mut it = pool.imap(square, 0..3u64).unwrap();
    assert_eq!(it.next_timeout(Duration::MAX).unwrap(), Some(0));
    let threads = processing::dummy::Pool::builder()
        .processes(1)
        .task_timeout(Duration::MAX)
        .build()
        .unwrap();
    assert_eq!(threads.apply(square, 5).unwrap(), 25);
}

#[test]
fn r09_sync_primitives_accept_duration_max() {
    let lock = processing::Lock::new().unwrap();
    drop(lock.acquire_timeout(Duration::MAX).unwrap());
    let event = processing::Event::new().unwrap();
    event.set();
    assert!(event.wait_timeout(Duration::MAX));
    let sem = processing::Semaphore::new(1).unwrap();
    drop(sem.acquire_timeout(Duration::MAX).unwrap());
    let barrier = processing::Barrier::new(1).unwrap();
    barrier.wait_timeout(Duration::MAX).unwrap();
}

// ---- R15: memory limit ----

/// Grows this worker by `mib` MiB (kept for the worker's life) and returns its pid.
fn grow(mib: usize) -> u32 {
    let mut v = vec![0u8; mib << 20];
    // Touch every page so that it is resident.
    for i in (0..v.len()).step_by(4096) {
        v[i] = 1;
    }
    std::mem::forget(v);
    std::process::id()
}

#[test]
fn r15_worker_over_its_memory_limit_is_replaced_keeping_its_result() {
    // The limit leaves room for a fresh worker's own size, which is larger under Wine.
    let pool = Pool::builder()
        .processes(1)
        .max_memory_per_child(512 << 20)
        .build()
        .unwrap();
    // Small tasks stay in one worker.
    let a = pool.apply(grow, 0).unwrap();
    let b = pool.apply(grow, 0).unwrap();
    assert_eq!(a, b);
    // A task that grows the worker past the limit keeps its result; the worker is replaced.
    let grown = pool.apply(grow, 640).unwrap();
    assert_eq!(grown, a);
    let after = pool.apply(grow, 0).unwrap();
    assert_ne!(after, grown, "the worker over its limit was not replaced");
    assert_eq!(pool.worker_pids(), [after]);
    assert_eq!(pool.map(square, 0..10u64).unwrap()[9], 81);
}

// ---- R02 / R04 / R03 / R15 (Ctrl-C): Linux scenarios ----

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use crate::support::{in_spawned_child, limit_fds, pid_from_fifo, segments_of};

    /// Two tests of `scenario(spawn)`, each in a spawned child: workers started with the spawn
    /// method (`$spawn`) and with fork (`$fork`).
    macro_rules! spawn_and_fork {
        ($scenario:ident: $spawn:ident, $fork:ident) => {
            #[test]
            fn $spawn() {
                in_spawned_child($scenario, true, "the scenario hung");
            }

            #[test]
            fn $fork() {
                in_spawned_child($scenario, false, "the scenario hung");
            }
        };
    }
    use processing::{RawArray, StartMethod};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    /// Opens /dev/null until the descriptors run out; the files free them when dropped.
    fn exhaust_fds() -> Vec<std::fs::File> {
        let mut hog = Vec::new();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            hog.push(f);
        }
        hog
    }

    fn emfile_in(e: &(dyn std::error::Error + 'static)) -> bool {
        let mut next = Some(e);
        while let Some(e) = next {
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.raw_os_error() == Some(libc::EMFILE))
            {
                return true;
            }
            next = e.source();
        }
        false
    }

    fn method(spawn: bool) -> StartMethod {
        if spawn {
            StartMethod::Spawn
        } else {
            StartMethod::Fork
        }
    }

    fn r02_pool_new(spawn: bool) -> Result<(), String> {
        limit_fds(48)?;
        let t = Instant::now();
        let err = match Pool::builder()
            .processes(200)
            .start_method(method(spawn))
            .build()
        {
            Ok(_) => return Err("Pool::new(200) started with 48 descriptors".into()),
            Err(e) => e,
        };
        if t.elapsed() > Duration::from_secs(20) {
            return Err(format!("the failure took {:?}", t.elapsed()));
        }
        if !err.is_spawn() {
            return Err(format!("not a start error: {err}"));
        }
        let Some(source) = std::error::Error::source(&err) else {
            return Err(format!("no source: {err}"));
        };
        if !emfile_in(source) && !err.to_string().contains("Too many open files") {
            return Err(format!("the OS error is not in the chain: {err}"));
        }
        // Everything started for it was stopped: the descriptors are back.
        Ok(())
    }

    spawn_and_fork!(
        r02_pool_new:
        r02_pool_new_with_few_descriptors_is_a_typed_error_spawn,
        r02_pool_new_with_few_descriptors_is_a_typed_error_fork
    );

    /// R02 (a pool replacing a dead worker) and R04 (it serves again afterwards).
    fn r04_scenario(spawn: bool) -> Result<(), String> {
        limit_fds(64)?;
        let pool = Pool::builder()
            .processes(2)
            .start_method(method(spawn))
            .build()
            .map_err(|e| e.to_string())?;
        if pool.apply(square, 4) != Ok(16) {
            return Err("the pool does not serve at first".into());
        }
        let mut hog = exhaust_fds();
        // The pool notices workers killed while idle at once and releases their descriptors;
        // a replacement may start with those before the hog holds them too. Kill what started
        // until no worker is listed: a slot lists its dead worker until its replacement
        // attempt has ended, and a failed attempt has released all it took.
        let mut victims = pool.worker_pids();
        for round in 0.. {
            if victims.is_empty() {
                break;
            }
            if round == 10 {
                return Err(format!(
                    "workers keep starting without descriptors: {victims:?}"
                ));
            }
            for &pid in &victims {
                // SAFETY: SIGKILL to our own worker process.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            let t = Instant::now();
            while pool.worker_pids().iter().any(|p| victims.contains(p)) {
                if t.elapsed() > Duration::from_secs(20) {
                    return Err(format!("killed workers {victims:?} are still listed"));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            hog.extend(exhaust_fds());
            victims = pool.worker_pids();
        }
        // More failures than the old limit of 5, after which the pool used to close for good.
        // Starts are serialised and a failed one releases everything it took, so no attempt
        // ever finds more descriptors than the one before it: every task fails with EMFILE.
        for i in 0..8u64 {
            // What a failed attempt in progress held a moment ago is taken too.
            hog.extend(exhaust_fds());
            let t = Instant::now();
            match pool.apply(square, i) {
                Err(e) if e.is_spawn() => {
                    if !emfile_in(&e) {
                        return Err(format!("task {i}: the OS error is not the source: {e}"));
                    }
                }
                other => return Err(format!("task {i}: expected a start error, got {other:?}")),
            }
            if t.elapsed() > Duration::from_secs(5) {
                return Err(format!("task {i} failed after {:?}", t.elapsed()));
            }
        }
        drop(hog);
        let t = Instant::now();
        match pool.apply(square, 9) {
            Ok(81) => {}
            other => return Err(format!("after freeing descriptors: {other:?}")),
        }
        if t.elapsed() > Duration::from_secs(10) {
            return Err(format!("serving again took {:?}", t.elapsed()));
        }
        let squares = pool.map(square, 0..100u64).map_err(|e| e.to_string())?;
        if squares
            .iter()
            .enumerate()
            .any(|(i, &s)| s != (i * i) as u64)
        {
            return Err("wrong results after recovery".into());
        }
        pool.close();
        pool.join().map_err(|e| e.to_string())?;
        Ok(())
    }

    spawn_and_fork!(
        r04_scenario:
        r04_pool_serves_again_after_start_failures_spawn,
        r04_pool_serves_again_after_start_failures_fork
    );

    // ---- R03 ----

    /// Counts one execution of task `i` in shared memory and returns `i * i`.
    fn counted((counts, i): (RawArray<u32>, u64)) -> u64 {
        let p = counts.as_ptr();
        assert!((i as usize) < counts.len());
        // SAFETY: `i` is in bounds (checked above) and the counters are touched only
        // atomically, by every process; u32 and AtomicU32 have one layout.
        let c = unsafe { AtomicU32::from_ptr(p.add(i as usize)) };
        c.fetch_add(1, Ordering::SeqCst);
        i * i
    }

    /// Bytes queued for reading on the sockets of process `pid` (our child); `None` when this
    /// system does not let us look (no `pidfd_getfd`, or ptrace restrictions).
    fn queued_for(pid: u32) -> Option<usize> {
        // SAFETY: pidfd_open on our own child; the result is checked.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) } as i32;
        if pidfd < 0 {
            return None;
        }
        let mut total = 0;
        let mut looked = false;
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for entry in dir.flatten() {
                let is_socket = std::fs::read_link(entry.path())
                    .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"));
                let Some(n) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<i32>().ok())
                else {
                    continue;
                };
                if !is_socket {
                    continue;
                }
                // SAFETY: duplicates descriptor `n` of our child into this process.
                let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, n, 0) } as i32;
                if fd < 0 {
                    continue;
                }
                looked = true;
                let mut bytes: libc::c_int = 0;
                // SAFETY: FIONREAD writes an int; `fd` is ours.
                if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut bytes) } == 0 {
                    total += bytes.max(0) as usize;
                }
                // SAFETY: closing the duplicate we own.
                unsafe { libc::close(fd) };
            }
        }
        // SAFETY: closing the pidfd we own.
        unsafe { libc::close(pidfd) };
        looked.then_some(total)
    }

    #[test]
    fn r03_stopped_then_killed_worker_fails_no_queued_task() {
        const N: usize = 30;
        let counts = RawArray::<u32>::new(N).unwrap();
        let pool = Pool::new(1).unwrap();
        assert_eq!(pool.apply(square, 2).unwrap(), 4);
        let victim = pool.worker_pids()[0];
        // SAFETY: stopping our own worker process.
        assert_eq!(unsafe { libc::kill(victim as i32, libc::SIGSTOP) }, 0);
        let results: Vec<_> = (0..N as u64)
            .map(|i| pool.apply_async(counted, (counts.clone(), i)).unwrap())
            .collect();
        // The supervisor hands the stopped worker a batch it never reads.
        let t = Instant::now();
        loop {
            match queued_for(victim) {
                Some(0) => {}
                Some(_) => break,
                None => {
                    eprintln!("cannot look into the worker's sockets here: the batch may not have been sent yet");
                    break;
                }
            }
            assert!(t.elapsed() < Duration::from_secs(20), "no batch was sent");
            std::thread::sleep(Duration::from_millis(2));
        }
        // SAFETY: killing our own (stopped) worker.
        assert_eq!(unsafe { libc::kill(victim as i32, libc::SIGKILL) }, 0);
        for (i, r) in results.into_iter().enumerate() {
            assert_eq!(
                r.get_timeout(Duration::from_secs(60)),
                Ok((i * i) as u64),
                "task {i} never began: it must run elsewhere"
            );
        }
        assert_eq!(counts.to_vec(), vec![1u32; N], "each task ran exactly once");
        assert!(!pool.worker_pids().contains(&victim));
    }

    /// Reports this worker's pid on `path` (a FIFO), then runs until killed.
    fn report_pid_and_hang(path: String) -> u64 {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        writeln!(f, "{}", std::process::id()).unwrap();
        drop(f);
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }

    #[test]
    fn r03_killed_worker_fails_only_its_running_task() {
        const N: usize = 40;
        let counts = RawArray::<u32>::new(N).unwrap();
        let pool = Pool::new(1).unwrap();
        let path = processing_suite::process_cases::temp_path("r03-fifo");
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // Queued together: the running task and tasks behind it in the same worker's batch.
        let victim_task = pool
            .apply_async(report_pid_and_hang, path.to_str().unwrap().to_string())
            .unwrap();
        let results: Vec<_> = (0..N as u64)
            .map(|i| pool.apply_async(counted, (counts.clone(), i)).unwrap())
            .collect();
        let pid = pid_from_fifo(&path);
        // SAFETY: killing our own worker while it runs the task.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        match victim_task.get_timeout(Duration::from_secs(60)) {
            Err(PoolError::WorkerLost { pid: lost, .. }) => assert_eq!(lost, pid),
            other => panic!("the running task: expected WorkerLost, got {other:?}"),
        }
        for (i, r) in results.into_iter().enumerate() {
            assert_eq!(r.get_timeout(Duration::from_secs(60)), Ok((i * i) as u64));
        }
        assert_eq!(counts.to_vec(), vec![1u32; N], "each task ran exactly once");
    }

    // ---- R15: Ctrl-C during map ----

    const SIGINT_ROLE: &str = "PROCESSING_R15_SIGINT_CHILD";

    fn slow_square(x: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(200));
        x * x
    }

    #[test]
    fn r15_sigint_child_program() {
        if std::env::var_os(SIGINT_ROLE).is_none() {
            return;
        }
        // A segment of this program, and a pool busy with a long map.
        let _counts = RawArray::<u32>::new(16).unwrap();
        let pool = Pool::new(2).unwrap();
        assert_eq!(pool.apply(square, 3).unwrap(), 9);
        let pids: Vec<String> = pool.worker_pids().iter().map(u32::to_string).collect();
        println!("READY {} {}", std::process::id(), pids.join(" "));
        use std::io::Write as _;
        std::io::stdout().flush().unwrap();
        let _ = pool.map(slow_square, 0..10_000u64);
        println!("MAP RETURNED");
    }

    #[test]
    fn r15_sigint_during_map_ends_the_program_and_leaves_nothing() {
        use std::io::BufRead as _;
        use std::os::unix::process::CommandExt as _;
        let exe = std::env::current_exe().unwrap();
        let mut command = std::process::Command::new(exe);
        // SAFETY: between fork and exec only async-signal-safe calls: signal(2) restores the
        // default action of SIGINT, which a shell starting this test in the background ignores.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = command
            .args(["--exact", "linux::r15_sigint_child_program", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(SIGINT_ROLE, "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "the child ended early"
            );
            // The harness may print the test's name on the same line first.
            if let Some(at) = line.find("READY") {
                line.drain(..at);
                break;
            }
        }
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        let program = words[0].to_string();
        let workers: Vec<i32> = words[1..].iter().map(|w| w.parse().unwrap()).collect();
        assert!(!segments_of(&program).is_empty());
        let t = Instant::now();
        // SAFETY: SIGINT to the child's own process group (it is the group leader).
        assert_eq!(unsafe { libc::kill(-pgid, libc::SIGINT) }, 0);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("the program did not end after SIGINT");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let ended = t.elapsed();
        assert!(!status.success(), "the map ran to its end: {status:?}");
        assert!(ended < Duration::from_secs(2), "ended after {ended:?}");
        // Within 2 s: no process of its group, no worker, no segment of it.
        let gone = |t: Instant| loop {
            // SAFETY: probing our process group and pids with signal 0.
            let group_alive = unsafe { libc::kill(-pgid, 0) } == 0;
            let worker_alive = workers
                .iter()
                .any(|&w| processing_suite::process_cases::running(w as u32));
            let segments = segments_of(&program);
            if !group_alive && !worker_alive && segments.is_empty() {
                return Ok(());
            }
            if t.elapsed() > Duration::from_secs(2) {
                return Err(format!(
                    "group alive {group_alive}, worker alive {worker_alive}, segments {segments:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        gone(t).unwrap();
    }
}
