// xtask: serial
// xtask: not-conformance
//! The soak test of issue 13: a pool of 4 whose workers are SIGKILLed one at a time every
//! 100–300 ms while it runs thousands of tasks. Every task's result is correct or a
//! `WorkerLost` naming a killed worker (at most one per kill), nothing hangs, and no
//! descriptor or segment is left over. Bounded to about 30 s.

#[cfg(target_os = "linux")]
#[test]
fn soak_pool_with_workers_killed_every_100_to_300_ms() {
    use std::collections::HashSet;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use processing::{Pool, PoolError};

    fn work(x: u64) -> u64 {
        // Long enough that kills land inside tasks, short enough for thousands of them.
        if x.is_multiple_of(7) {
            std::thread::sleep(Duration::from_micros(500));
        }
        x.wrapping_mul(x) ^ 0x5a5a
    }
    fn expected(x: u64) -> u64 {
        x.wrapping_mul(x) ^ 0x5a5a
    }
    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
    }
    fn our_segments() -> usize {
        let prefix = format!("processing-{}-", std::process::id());
        std::fs::read_dir("/dev/shm").map_or(0, |d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .count()
        })
    }

    // Warm up what lives for the program (fork server), then take the baseline.
    drop(Pool::new(1).unwrap());
    let fds_before = open_fds();
    let segments_before = our_segments();

    let pool = Arc::new(Pool::new(4).unwrap());
    let killed: Arc<Mutex<HashSet<u32>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let (pool, killed, stop) = (pool.clone(), killed.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seed = u64::from(std::process::id()) | 1;
            let mut next = move || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100 + next() % 201));
                let pids = pool.worker_pids();
                if pids.is_empty() {
                    continue;
                }
                let pid = pids[(next() % pids.len() as u64) as usize];
                // Pin the process first (a pidfd), then check it is ours: a worker of this
                // program is our child (spawn, fork) or the forkserver's, which is our child.
                // A worker reaped meanwhile may have left its pid to an unrelated process;
                // its stale pidfd then makes the signal fail instead of reaching a stranger.
                // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
                let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as i32, 0) };
                let Ok(pidfd) = i32::try_from(pidfd) else {
                    continue;
                };
                if pidfd < 0 {
                    continue;
                }
                // SAFETY: pidfd_open returned this descriptor to us; nothing else owns it.
                let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
                let me = std::process::id();
                let ours =
                    parent_of(pid) == Some(me) || parent_of(pid).and_then(parent_of) == Some(me);
                if !ours {
                    continue;
                }
                killed.lock().unwrap().insert(pid);
                // SAFETY: pidfd_send_signal on a descriptor we own, with no siginfo.
                unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        pidfd.as_raw_fd(),
                        libc::SIGKILL,
                        std::ptr::null::<libc::siginfo_t>(),
                        0,
                    )
                };
            }
        })
    };

    let started = Instant::now();
    let (mut ok, mut lost, mut x) = (0usize, 0usize, 0u64);
    while started.elapsed() < Duration::from_secs(30) && ok + lost < 2_000_000 {
        let round: Vec<(u64, processing::AsyncResult<u64>)> = (0..500)
            .map(|_| {
                x += 1;
                (x, pool.apply_async(work, x).unwrap())
            })
            .collect();
        for (input, r) in round {
            match r.get_timeout(Duration::from_secs(60)) {
                Ok(v) => {
                    assert_eq!(v, expected(input), "wrong result for {input}");
                    ok += 1;
                }
                Err(PoolError::WorkerLost { pid, .. }) => {
                    assert!(
                        killed.lock().unwrap().contains(&pid),
                        "task {input} lost to worker {pid}, which was not killed"
                    );
                    lost += 1;
                }
                Err(e) if e.is_timeout() => panic!("task {input} hung"),
                Err(e) => panic!("task {input}: {e}"),
            }
        }
        // A lazy map with chunks: one item per input, each a value or its chunk's loss.
        let items: Vec<_> = pool.chunksize(8).imap(work, 0..200u64).unwrap().collect();
        assert_eq!(items.len(), 200);
        for (input, item) in items.into_iter().enumerate() {
            match item {
                Ok(v) => assert_eq!(v, expected(input as u64)),
                Err(PoolError::WorkerLost { pid, .. }) => {
                    assert!(killed.lock().unwrap().contains(&pid))
                }
                Err(e) => panic!("imap input {input}: {e}"),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    killer.join().unwrap();
    let kills = killed.lock().unwrap().len();
    assert!(ok > 5_000, "only {ok} tasks in {:?}", started.elapsed());
    assert!(kills > 20, "only {kills} kills");
    // Only a task that was running can be lost: at most one per kill.
    assert!(lost <= kills, "{lost} tasks lost to {kills} kills");
    // The pool is whole and serves.
    assert_eq!(pool.map(work, 0..100u64).unwrap()[10], expected(10));
    let pool = Arc::try_unwrap(pool).unwrap();
    pool.close();
    pool.join().unwrap();
    drop(pool);
    let fds_after = open_fds();
    assert!(
        fds_after <= fds_before + 2,
        "descriptors: {fds_before} before, {fds_after} after"
    );
    assert_eq!(our_segments(), segments_before, "segments left over");
    eprintln!("soak: {ok} results, {lost} lost to {kills} kills");
}

/// The parent pid of `pid`, from `/proc/PID/stat`.
#[cfg(target_os = "linux")]
fn parent_of(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok())
        })
}
