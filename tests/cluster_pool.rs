//! Conformance K01–K09: the Pool on Redis Streams, with a private `redis-server` per test and
//! three worker hosts (each its own process tree: this binary, made a worker host by
//! `PROCESSING_CLUSTER_WORKER`) on loopback.
#![cfg(feature = "cluster")]

mod cluster_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cluster_support::{hosts, wait_for, Host, Redis, KEY};
use processing::cluster::PoolBuilderExt;
use processing::{Pool, PoolError};

fn cluster_pool(url: &str, slots: usize) -> processing::cluster::ClusterPoolBuilder {
    Pool::builder()
        .processes(slots)
        .cluster(url)
        .key(KEY.as_bytes().to_vec())
        .visibility_timeout(Duration::from_secs(1))
}

/// A Redis server and `n` worker hosts of this build on it; `None` (the test passes without
/// running) where no `redis-server` can be started.
fn cluster(n: usize) -> Option<(Redis, Vec<Host>)> {
    let redis = Redis::start()?;
    let hosts = hosts(&redis.url(), n);
    Some((redis, hosts))
}

fn square(x: u64) -> u64 {
    x * x
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[test]
fn k01_map_imap_starmap_apply_async_match_the_local_pool() {
    let Some((redis, _hosts)) = cluster(2) else {
        return;
    };
    let pool = cluster_pool(&redis.url(), 8).build().unwrap();
    let expected: Vec<u64> = (0..1000u64).map(square).collect();
    assert_eq!(pool.map(square, 0..1000u64).unwrap(), expected);
    assert_eq!(pool.chunksize(7).map(square, 0..1000u64).unwrap(), expected);
    let imap: Vec<u64> = pool
        .imap(square, 0..1000u64)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(imap, expected);
    let mut unordered: Vec<u64> = pool
        .imap_unordered(square, 0..1000u64)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    unordered.sort_unstable();
    assert_eq!(unordered, expected);
    let pairs: Vec<(u64, u64)> = (0..1000u64).map(|i| (i, 2 * i)).collect();
    assert_eq!(
        pool.starmap(add, pairs).unwrap(),
        (0..1000u64).map(|i| 3 * i).collect::<Vec<_>>()
    );
    let handles: Vec<_> = (0..1000u64)
        .map(|i| pool.apply_async(square, i).unwrap())
        .collect();
    let applied: Vec<u64> = handles.into_iter().map(|h| h.get().unwrap()).collect();
    assert_eq!(applied, expected);
    assert_eq!(pool.apply(square, 12).unwrap(), 144);
    // The same answers as the local pool.
    let local = Pool::new(2).unwrap();
    assert_eq!(local.map(square, 0..1000u64).unwrap(), expected);
    pool.close();
    pool.join().unwrap();
    keys_expire_then_go(&redis, pool);
    // Slots that retire after each task (max_tasks_per_child) keep the pool going.
    let pool = Pool::builder()
        .processes(1)
        .max_tasks_per_child(1)
        .cluster(&redis.url())
        .key(KEY.as_bytes().to_vec())
        .build()
        .unwrap();
    assert_eq!(pool.chunksize(1).map(square, 0..20u64).unwrap()[19], 361);
}

/// Records one execution of task `i` (a file per execution), sleeps, returns `i * i`.
fn counted((i, dir): (u64, PathBuf)) -> u64 {
    record(i, &dir);
    std::thread::sleep(Duration::from_millis(10));
    i * i
}

/// One file per execution of task `i`.
fn record(i: u64, dir: &Path) {
    let name = format!(
        "{i}.{}.{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    std::fs::write(dir.join(name), b"").unwrap();
}

fn executions(dir: &Path) -> Vec<u64> {
    let mut per = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(i) = n.split('.').next().and_then(|s| s.parse::<u64>().ok()) {
            per.push(i);
        }
    }
    per
}

/// Tasks `0..n` of [`counted`] and the like, each with `dir`, where its executions are
/// recorded.
fn tasks_in(dir: &Path, n: u64) -> Vec<(u64, PathBuf)> {
    (0..n).map(|i| (i, dir.to_path_buf())).collect()
}

/// A cluster of `hosts` worker hosts, a pool of `slots` on it and a fresh directory `name`
/// for recording executions (see [`cluster`]: `None` without `redis-server`).
fn recording_cluster(
    hosts: usize,
    slots: usize,
    name: &str,
) -> Option<(Redis, Vec<Host>, PathBuf, Pool)> {
    let (redis, hosts) = cluster(hosts)?;
    let pool = cluster_pool(&redis.url(), slots).build().unwrap();
    Some((redis, hosts, temp_dir(name), pool))
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("processing-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn k02_killed_host_mid_map_every_result_once_in_flight_tasks_rerun() {
    let Some((_redis, mut hosts, dir, pool)) = recording_cluster(2, 6, "k02") else {
        return;
    };
    let n = 300u64;
    let it = pool
        .chunksize(1)
        .imap_unordered(counted, tasks_in(&dir, n))
        .unwrap();
    let mut seen = vec![0u32; n as usize];
    let mut killed_at = None;
    let mut got = 0;
    for r in it {
        let v = r.unwrap();
        let i = (v as f64).sqrt().round() as usize;
        assert_eq!((i * i) as u64, v);
        seen[i] += 1;
        got += 1;
        if got == 60 && killed_at.is_none() {
            hosts[0].kill();
            killed_at = Some(Instant::now());
        }
    }
    assert!(seen.iter().all(|&c| c == 1), "each result exactly once");
    let runs = executions(&dir);
    let mut per = vec![0u32; n as usize];
    for i in runs {
        per[i as usize] += 1;
    }
    assert!(per.iter().all(|&c| c >= 1));
    let rerun = per.iter().filter(|&&c| c > 1).count();
    assert!(
        rerun >= 1,
        "the tasks the killed host was running ran again elsewhere"
    );
    assert!(
        rerun <= 2 * 6,
        "only tasks in flight on the dead host re-ran ({rerun})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn crash_on_seven(i: u64) -> u64 {
    if i == 7 {
        std::process::abort();
    }
    i
}

#[test]
fn k03_task_killing_its_worker_fails_after_max_deliveries() {
    let Some((redis, _hosts)) = cluster(2) else {
        return;
    };
    let pool = cluster_pool(&redis.url(), 4)
        .max_deliveries(3)
        .build()
        .unwrap();
    let out: Vec<Result<u64, PoolError>> = pool
        .chunksize(1)
        .imap(crash_on_seven, 0..20u64)
        .unwrap()
        .collect();
    assert_eq!(out.len(), 20);
    for (i, r) in out.iter().enumerate() {
        if i == 7 {
            match r {
                Err(PoolError::DeliveriesExhausted { attempts, last }) => {
                    assert_eq!(*attempts, 3);
                    assert!(last.is_worker_lost(), "{last}");
                    let msg = r.as_ref().unwrap_err().to_string();
                    assert!(msg.contains("3 deliveries"), "{msg}");
                }
                other => panic!("task 7: {other:?}"),
            }
        } else {
            assert_eq!(r.as_ref().unwrap(), &(i as u64));
        }
    }
    // The hosts go on.
    assert_eq!(pool.map(square, 0..10u64).unwrap()[9], 81);
}

#[test]
fn k04_imap_over_endless_input_keeps_a_bounded_window_in_redis() {
    let Some((redis, _hosts)) = cluster(2) else {
        return;
    };
    let slots = 4;
    let pool = cluster_pool(&redis.url(), slots).build().unwrap();
    let mut c = redis.client();
    let stream = {
        let keys = c.keys("processing:pool:*:tasks");
        assert_eq!(keys.len(), 1, "{keys:?}");
        keys[0].clone()
    };
    let mut max_len = 0;
    let mut sum = 0u64;
    for (k, r) in pool
        .chunksize(1)
        .imap(square, 0u64..)
        .unwrap()
        .take(3000)
        .enumerate()
    {
        sum += r.unwrap();
        if k % 50 == 0 {
            let len = c.cmd(&["XLEN", &stream]).unwrap().int();
            max_len = max_len.max(len);
        }
    }
    assert_eq!(sum, (0..3000u64).map(square).sum::<u64>());
    assert!(
        max_len <= slots as i64,
        "at most one entry per slot in Redis, saw {max_len}"
    );
}

#[test]
fn k05_no_worker_of_this_build_is_a_typed_error_within_its_timeout() {
    let Some(redis) = Redis::start() else { return };
    // A worker host of another build (the cluster_map example), when it was built.
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().and_then(Path::parent).map(|d| {
        d.join("examples")
            .join(format!("cluster_map{}", std::env::consts::EXE_SUFFIX))
    });
    let _foreign = example
        .filter(|p| p.exists())
        .map(|p| Host::start_exe(&p, &redis.url(), 1));
    if _foreign.is_some() {
        // The foreign host is up (it marks its own build alive) and never takes our tasks.
        let mut c = redis.client();
        wait_for("the foreign host", Duration::from_secs(30), || {
            !c.keys("processing:*:alive").is_empty()
        });
    }
    let pool = cluster_pool(&redis.url(), 2)
        .worker_wait(Duration::from_secs(2))
        .build()
        .unwrap();
    let t = Instant::now();
    let r = pool.apply(square, 3);
    let waited = t.elapsed();
    match r {
        Err(PoolError::NoCompatibleWorker { build, waited: w }) => {
            assert_eq!(build.len(), 16);
            assert!(w >= Duration::from_secs(2));
        }
        other => panic!("expected NoCompatibleWorker, got {other:?}"),
    }
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    // A worker of this build then serves the same pool.
    let _host = Host::start(&redis.url(), 1);
    assert_eq!(pool.apply(square, 4).unwrap(), 16);
}

fn touch(path: PathBuf) -> u32 {
    std::fs::write(path, b"ran").unwrap();
    1
}

#[test]
fn k06_unsigned_or_foreign_key_tasks_are_refused_counted_never_run() {
    let Some((redis, _hosts)) = cluster(1) else {
        return;
    };
    let dir = temp_dir("k06");
    // A driver with another key.
    let foreign = Pool::builder()
        .processes(1)
        .cluster(&redis.url())
        .key(b"not the cluster key".to_vec())
        .build()
        .unwrap();
    let marker = dir.join("foreign-ran");
    let r = foreign.apply(touch, marker.clone());
    assert!(
        matches!(r, Err(PoolError::Cluster(ref m)) if m.message().contains("refused")),
        "{r:?}"
    );
    assert!(
        !marker.exists(),
        "a task signed with another key never runs"
    );
    // An entry written to the stream directly.
    let pool = cluster_pool(&redis.url(), 2).build().unwrap();
    let mut c = redis.client();
    let streams = c.keys("processing:pool:*:tasks");
    for s in &streams {
        let v = c
            .cmd(&["XADD", s, "*", "d", "forged batch", "m", "0123456789"])
            .unwrap();
        assert!(matches!(v, cluster_support::Value::Str(_)), "{v:?}");
    }
    wait_for(
        "the refusals to be counted",
        Duration::from_secs(20),
        || {
            let keys = c.keys("processing:*:refused");
            keys.iter()
                .map(|k| c.cmd(&["GET", k]).unwrap().int())
                .sum::<i64>()
                > streams.len() as i64
        },
    );
    // The signed pool still works.
    assert_eq!(pool.apply(square, 5).unwrap(), 25);
    let _ = std::fs::remove_dir_all(&dir);
}

fn slow((i, dir): (u64, PathBuf)) -> u64 {
    std::fs::write(dir.join(format!("{i}")), b"").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    i
}

#[test]
fn k07_terminate_drops_pending_tasks_and_leaves_no_keys() {
    let Some((redis, _hosts, dir, pool)) = recording_cluster(2, 6, "k07") else {
        return;
    };
    let r = pool
        .chunksize(1)
        .map_async(slow, tasks_in(&dir, 10_000))
        .unwrap();
    wait_for("tasks to start", Duration::from_secs(30), || {
        std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) >= 20
    });
    pool.terminate();
    let t = Instant::now();
    pool.join().unwrap();
    assert!(r.get().unwrap_err().is_terminated());
    // Workers stop taking the pool's tasks within a second.
    std::thread::sleep(Duration::from_millis(1000).saturating_sub(t.elapsed()));
    let after_1s = std::fs::read_dir(&dir).unwrap().count();
    std::thread::sleep(Duration::from_millis(500));
    let later = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(after_1s, later, "no task of the pool starts after a second");
    assert!(later < 10_000);
    keys_expire_then_go(&redis, pool);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A closed pool's keys expire within a minute and are gone once it is dropped.
fn keys_expire_then_go(redis: &Redis, pool: Pool) {
    let mut c = redis.client();
    for k in c.keys("processing:pool:*") {
        let ttl = c.cmd(&["TTL", &k]).unwrap().int();
        assert!((0..=60).contains(&ttl), "key {k} left with TTL {ttl}");
    }
    drop(pool);
    assert!(c.keys("processing:pool:*").is_empty());
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn k08_redis_restart_mid_map_is_an_error_or_resumes_never_a_hang() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let _hosts = hosts(&redis.url(), 2);
    let pool = cluster_pool(&redis.url(), 4)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = pool
        .chunksize(1)
        .map_async(sleep_ms, vec![5u64; 2000])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    redis.restart();
    let t = Instant::now();
    match r.get_timeout(Duration::from_secs(60)) {
        Ok(v) => assert_eq!(v.len(), 2000),
        Err(PoolError::Cluster(m)) => assert!(!m.message().is_empty()),
        Err(other) => panic!("expected a cluster error, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(60));
    drop(pool);
    // The hosts reconnected: a new pool on the restarted server is served.
    let pool = cluster_pool(&redis.url(), 2).build().unwrap();
    assert_eq!(pool.map(square, 0..50u64).unwrap()[7], 49);
}

#[test]
fn k09_task_timeout_fails_the_task_and_the_host_keeps_serving() {
    let Some(redis) = Redis::start() else { return };
    let _host = Host::start(&redis.url(), 1);
    let pool = Pool::builder()
        .processes(2)
        .task_timeout(Duration::from_millis(500))
        .cluster(&redis.url())
        .key(KEY.as_bytes().to_vec())
        .build()
        .unwrap();
    let t = Instant::now();
    let r = pool.apply(sleep_ms, 30_000);
    assert!(r.unwrap_err().is_task_timeout());
    assert!(t.elapsed() < Duration::from_secs(20));
    // The one worker process was replaced: the host serves the next tasks.
    assert_eq!(pool.map(square, 0..20u64).unwrap()[3], 9);
    assert_eq!(pool.apply(sleep_ms, 10).unwrap(), 10);
}

#[test]
fn k02_long_task_is_never_stolen_while_its_host_lives() {
    // Tasks three times longer than the visibility timeout: the heartbeat keeps them.
    let Some((_redis, _hosts, dir, pool)) = recording_cluster(1, 3, "k02-long") else {
        return;
    };
    assert_eq!(
        pool.chunksize(1)
            .map(long_counted, tasks_in(&dir, 3))
            .unwrap(),
        [0, 1, 4]
    );
    let mut per = executions(&dir);
    per.sort_unstable();
    assert_eq!(per, [0, 1, 2], "each long task ran exactly once");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn k02_queued_task_is_never_stolen_while_its_host_lives() {
    // Two pools at once on hosts of one worker each: a host may take an entry of each pool
    // for its one free worker. The one it queues waits longer than the visibility timeout;
    // the heartbeat keeps it too.
    let Some((redis, _hosts, dir_a, pool_a)) = recording_cluster(1, 3, "k02-queued-a") else {
        return;
    };
    let pool_b = cluster_pool(&redis.url(), 3).build().unwrap();
    let dir_b = temp_dir("k02-queued-b");
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            pool_a
                .chunksize(1)
                .map(long_counted, tasks_in(&dir_a, 3))
                .unwrap()
        });
        let b = s.spawn(|| {
            pool_b
                .chunksize(1)
                .map(long_counted, tasks_in(&dir_b, 3))
                .unwrap()
        });
        assert_eq!(a.join().unwrap(), [0, 1, 4]);
        assert_eq!(b.join().unwrap(), [0, 1, 4]);
    });
    for dir in [&dir_a, &dir_b] {
        let mut per = executions(dir);
        per.sort_unstable();
        assert_eq!(per, [0, 1, 2], "each task ran exactly once");
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn long_counted((i, dir): (u64, PathBuf)) -> u64 {
    record(i, &dir);
    std::thread::sleep(Duration::from_millis(3000));
    i * i
}
