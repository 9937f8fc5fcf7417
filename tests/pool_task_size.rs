//! A pool task's encoded arguments and results are limited to what a worker's frame carries
//! (2 GiB): over it, that task alone fails with a codec error naming the size.
// xtask: not-conformance
// (Linux: the test needs 4 GiB of transient memory, too much for the Windows leg under Wine.)
#![cfg(target_os = "linux")]

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
