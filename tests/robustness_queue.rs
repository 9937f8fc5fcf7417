//! Robustness of queues at the edges (docs/conformance.md R14): `Queue::new()` never blocks a
//! put, so a producer can be joined before anything is read, and what it put survives it, even
//! a SIGKILL right after its last put returned.

mod support;

use std::time::{Duration, Instant};

use processing::process::Process;
use processing::transport::queue::{Queue, TryGetError};
#[cfg(target_os = "linux")]
use support::segments_of;

/// Items per producer: several times what the queue's 1 MiB ring holds, so that the overflow
/// chain starts, grows by more than one segment, and is drained again.
const N: u64 = 200_000;

fn item(i: u64) -> (u64, u64) {
    (i, i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn produce(q: Queue<(u64, u64)>) {
    for i in 0..N {
        q.put(item(i)).expect("put");
    }
}

/// Puts every item, says so, then waits to be killed.
fn produce_then_wait((q, done): (Queue<(u64, u64)>, Queue<bool>)) {
    produce(q);
    done.put(true).expect("done");
    loop {
        std::thread::park();
    }
}

/// Joins `p` within `limit` (a join that does not return is the deadlock R14 is about).
fn join_within(p: &mut Process<()>, limit: Duration) -> Result<(), String> {
    let t = Instant::now();
    match p.join_timeout(limit) {
        Ok(()) => Ok(()),
        Err(e) if e.is_timeout() => {
            let _ = p.kill();
            let _ = p.join();
            Err(format!(
                "the producer could not be joined within {:?}",
                t.elapsed()
            ))
        }
        Err(e) => Err(format!("the producer failed: {e}")),
    }
}

/// Reads all `N` items and checks their order, then that nothing is left.
fn drain_in_order(q: &Queue<(u64, u64)>) {
    assert_eq!(q.len(), N as usize);
    for i in 0..N {
        let got = q.get_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(got, item(i), "item {i} out of order");
    }
    assert!(q.is_empty());
    assert!(matches!(q.try_get(), Err(TryGetError::Empty)));
}

#[test]
fn r14_unbounded_queue_producer_exits_before_reader() {
    let q = Queue::new().unwrap();
    let mut p = Process::new(produce, q.clone());
    p.start().unwrap();
    let pid = p.pid().unwrap();
    join_within(&mut p, Duration::from_secs(5)).unwrap();
    drain_in_order(&q);
    // The queue goes on: a later producer and a put from here, in order, through the ring.
    q.put(item(7)).unwrap();
    assert_eq!(q.get().unwrap(), item(7));
    // Every overflow segment the producer made was removed once drained.
    #[cfg(target_os = "linux")]
    assert_eq!(segments_of(pid), Vec::<String>::new());
    let _ = pid;
}

#[test]
fn r14_unbounded_queue_items_survive_sigkill_after_put() {
    let q = Queue::new().unwrap();
    let done = Queue::new().unwrap();
    let mut p = Process::new(produce_then_wait, (q.clone(), done.clone()));
    p.start().unwrap();
    let pid = p.pid().unwrap();
    assert!(done.get_timeout(Duration::from_secs(60)).unwrap());
    // Every put returned: the producer dies at once, without a chance to clean up.
    p.kill().unwrap();
    // Killed, not timed out: join reports how it died.
    let died = p.join_timeout(Duration::from_secs(30)).unwrap_err();
    assert!(!died.is_timeout(), "{died:?}");
    drain_in_order(&q);
    #[cfg(target_os = "linux")]
    assert_eq!(segments_of(pid), Vec::<String>::new());
    let _ = pid;
}

#[test]
fn r14_bounded_queue_still_blocks() {
    let q = Queue::bounded(3).unwrap();
    for i in 0..3u64 {
        q.put(item(i)).unwrap();
    }
    assert!(q.try_put(item(3)).unwrap_err().is_full());
    let t = Instant::now();
    assert!(q
        .put_timeout(item(3), Duration::from_millis(50))
        .unwrap_err()
        .is_timeout());
    assert!(t.elapsed() >= Duration::from_millis(50));
}
