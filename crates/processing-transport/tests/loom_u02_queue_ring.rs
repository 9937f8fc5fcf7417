//! Model checks of the queue ring (`queue/ring.rs`) with loom: the commit protocol between
//! producers and consumers, wrap-around with a skip frame, a full ring, close, and two
//! producers (the ring is MPMC: each side serialises on its owner-word lock).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p processing-transport --release --test
//! loom_u02_queue_ring`. Each loom thread plays one process over one heap region standing in
//! for the mapping; a sleep is a yield. Every payload copy is checked against the bytes'
//! loom cells, so a consumer that could read a frame before its commit (a Relaxed commit, a
//! commit before the copy) fails the model. The same ring runs across real processes in the
//! workspace's `tests/queue_*.rs`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use processing_shm::model::{builder, message as msg};
use processing_transport::model::{Fail, QueueRing};

fn check(f: impl Fn() + Sync + Send + 'static) {
    builder(2).check(f);
}

/// A producer thread puts `items` (waiting for room) while this thread gets them (waiting for
/// each): they arrive whole and in order.
fn exchange(q: &Arc<QueueRing>, items: Vec<Vec<u8>>) {
    let producer = {
        let (q, items) = (q.clone(), items.clone());
        thread::spawn(move || {
            for item in &items {
                q.put(item, true).unwrap();
            }
        })
    };
    for item in &items {
        assert_eq!(&q.get(true).unwrap(), item);
    }
    producer.join().unwrap();
}

/// `wait` (a get or put that waits) runs on another thread while this one closes the ring: it
/// ends with `Closed`.
fn close_ends<T>(
    q: &Arc<QueueRing>,
    wait: impl FnOnce(&QueueRing) -> Result<T, Fail> + Send + 'static,
) where
    T: std::fmt::Debug + PartialEq + Send + 'static,
{
    let waiter = {
        let q = q.clone();
        thread::spawn(move || wait(&q))
    };
    q.close();
    assert_eq!(waiter.join().unwrap(), Err(Fail::Closed));
}

#[test]
fn u02_queue_ring_exchange_keeps_order_and_bytes() {
    check(|| {
        let q = Arc::new(QueueRing::new(64, 0));
        exchange(&q, vec![msg(1, 5), msg(2, 8)]);
        assert_eq!(q.get(false), Err(Fail::WouldBlock));
    });
}

#[test]
fn u02_queue_ring_wraps_with_a_skip_frame() {
    check(|| {
        // 64 bytes; frames of 12 bytes (8-byte payloads). Four round trips bring the position
        // to 48: the next frame fits (48..60), the one after it does not (4 bytes left), so
        // the producer pads to the end and writes it at 0.
        let q = Arc::new(QueueRing::new(64, 0));
        for i in 0..4 {
            q.put(&msg(i, 8), false).unwrap();
            assert_eq!(q.get(false).unwrap(), msg(i, 8));
        }
        exchange(&q, vec![msg(7, 8), msg(8, 8)]);
    });
}

#[test]
fn u02_queue_ring_full_ring_holds_the_producer() {
    check(|| {
        // One item at most: the second put waits until the consumer took the first.
        let q = Arc::new(QueueRing::new(32, 1));
        exchange(&q, vec![msg(1, 4), msg(2, 4)]);
        assert!(q.is_empty());
    });
}

#[test]
fn u02_queue_ring_close_ends_a_waiting_consumer() {
    check(|| {
        close_ends(&Arc::new(QueueRing::new(32, 0)), |q| q.get(true));
    });
}

#[test]
fn u02_queue_ring_close_ends_a_producer_waiting_for_room() {
    check(|| {
        let q = Arc::new(QueueRing::new(32, 1));
        q.put(&msg(1, 4), false).unwrap();
        close_ends(&q, |q| q.put(&msg(2, 4), true));
        // What was committed before the close is still there.
        assert_eq!(q.get(false).unwrap(), msg(1, 4));
    });
}

/// Three threads that all wait by yielding: with two preemptions loom finds paths on which
/// two waiters hand the CPU to each other for ever (a switch at a yield is free), so this model
/// runs with one, which still covers every interleaving with one forced switch.
#[test]
fn u02_queue_ring_two_producers_one_consumer() {
    builder(1).check(|| {
        let q = Arc::new(QueueRing::new(64, 0));
        let producers: Vec<_> = (1..=2u8)
            .map(|tag| {
                let q = q.clone();
                thread::spawn(move || q.put(&msg(tag, 4 * tag as usize), true).unwrap())
            })
            .collect();
        let mut got = vec![q.get(true).unwrap(), q.get(true).unwrap()];
        for p in producers {
            p.join().unwrap();
        }
        got.sort();
        let mut want = vec![msg(1, 4), msg(2, 8)];
        want.sort();
        assert_eq!(got, want);
    });
}
