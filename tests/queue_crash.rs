// xtask: not-conformance
//! Killing a process in the middle of put or get leaves the queue usable for everyone else.

use std::time::Duration;

use processing::process::Process;
use processing::transport::queue::{Queue, QueueBuilder};

fn tight_put((q, started): (Queue<u64>, Queue<bool>)) {
    started.put(true).unwrap();
    let mut i = 0u64;
    loop {
        q.put(i).unwrap();
        i += 1;
    }
}

fn tight_get((q, started): (Queue<u64>, Queue<bool>)) {
    started.put(true).unwrap();
    loop {
        let _ = q.get().unwrap();
    }
}

fn small_queue() -> Queue<u64> {
    // A small ring keeps the producer waiting on the consumer, so a kill lands anywhere (an
    // item bound, however large, makes a full ring wait instead of overflowing).
    QueueBuilder::new()
        .capacity_bytes(1024)
        .max_items(1 << 20)
        .build()
        .unwrap()
}

#[test]
fn queue_survives_sigkill_in_tight_put_and_get_loops() {
    for round in 0..4u64 {
        // Producer killed mid-put: every committed item is intact and in order.
        let q = small_queue();
        let started = Queue::new().unwrap();
        let mut producer = Process::new(tight_put, (q.clone(), started.clone()));
        producer.start().unwrap();
        assert!(started.get().unwrap());
        let mut expect = 0u64;
        for _ in 0..(2_000 + round * 1_500) {
            assert_eq!(q.get().unwrap(), expect);
            expect += 1;
        }
        producer.kill().unwrap();
        assert!(producer.join().is_err());
        while let Ok(v) = q.try_get() {
            assert_eq!(v, expect, "items after the kill must continue the sequence");
            expect += 1;
        }
        q.put_timeout(u64::MAX, Duration::from_secs(10)).unwrap();
        assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), u64::MAX);

        // Consumer killed mid-get: the rest of the sequence is still there, at most one lost.
        let q = small_queue();
        let mut consumer = Process::new(tight_get, (q.clone(), started.clone()));
        consumer.start().unwrap();
        assert!(started.get().unwrap());
        let n = 5_000 + round * 3_000;
        for i in 0..n {
            q.put(i).unwrap();
        }
        consumer.kill().unwrap();
        assert!(consumer.join().is_err());
        let mut rest = Vec::new();
        while let Ok(v) = q.try_get() {
            rest.push(v);
        }
        if let Some(&first) = rest.first() {
            assert_eq!(
                rest,
                (first..n).collect::<Vec<_>>(),
                "remaining items must be contiguous"
            );
        }
        for i in 0..100 {
            q.put_timeout(i, Duration::from_secs(10)).unwrap();
        }
        for i in 0..100 {
            assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), i);
        }
    }
}
