//! A pool task's encoded arguments and results are limited to what a worker's frame carries
//! (2 GiB): over it, that task alone fails with a codec error naming the size.
// xtask: not-conformance
// (Linux: the test needs 4 GiB of transient memory, too much for the Windows leg under Wine.)
#![cfg(target_os = "linux")]

use std::time::Duration;

use processing::sync::Event;
use processing::{Pool, PoolError};

fn length(s: String) -> usize {
    s.len()
}

/// (A string: it encodes as one copy of its bytes, also in a debug build.)
fn text(n: usize) -> String {
    "x".repeat(n)
}

/// A task's arguments or results of 2 GiB or more are a codec error naming the size, for that
/// task alone: never a truncated length, a lost worker or a hang; the pool goes on.
#[test]
fn a_pool_task_over_2_gib_is_a_codec_error_and_the_pool_goes_on() {
    let _one_at_a_time = lock_memory();
    const OVER: usize = 1 << 31;
    let pool = Pool::new(1).unwrap();
    let pid = pool.worker_pids();
    let e = pool.apply(length, "x".repeat(OVER)).unwrap_err();
    assert!(matches!(e, PoolError::Codec(_)), "{e}");
    assert!(e.to_string().contains("arguments encode to"), "{e}");
    let e = pool.apply(text, OVER).unwrap_err();
    assert!(matches!(e, PoolError::Codec(_)), "{e}");
    assert!(e.to_string().contains("results encode to"), "{e}");
    assert_eq!(pool.apply(length, text(5)).unwrap(), 5);
    assert_eq!(pool.worker_pids(), pid, "the worker was lost");
}

/// A task just under the limit queued behind a small one travels in a batch of its own: the
/// two together would be more than a worker's frame carries, and such a batch was refused by
/// every new worker, again and again.
#[test]
fn a_task_just_under_the_limit_behind_a_small_one_is_delivered() {
    let _one_at_a_time = lock_memory();
    let pool = Pool::new(1).unwrap();
    // The one worker waits while both tasks are queued: its next batch could take both.
    let go = Event::new().unwrap();
    let busy = pool.apply_async(wait_for, go.clone()).unwrap();
    let small = (1 << 20) - 10;
    let big = (1 << 31) - (1 << 20);
    let lengths = pool
        .chunksize(1)
        .map_async(length, vec![text(small), text(big)])
        .unwrap();
    go.set();
    busy.get_timeout(Duration::from_secs(300)).unwrap();
    let lengths = lengths.get_timeout(Duration::from_secs(300)).unwrap();
    assert_eq!(lengths, [small, big]);
}

fn wait_for(go: Event) {
    go.wait();
}

/// The tests here each need gigabytes: one at a time.
fn lock_memory() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}
