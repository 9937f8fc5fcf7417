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
use processing_transport::model::{Fail, QueueRing};

fn check(f: impl Fn() + Sync + Send + 'static) {
    check_bounded(2, f);
}

/// `LOOM_MAX_PREEMPTIONS` (the loom leg sets 2), capped at `max`.
fn check_bounded(max: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(max).min(max));
    builder.check(f);
}

fn msg(tag: u8, len: usize) -> Vec<u8> {
    (0..len as u8)
        .map(|i| tag.wrapping_mul(16).wrapping_add(i))
        .collect()
}

#[test]
fn u02_queue_ring_exchange_keeps_order_and_bytes() {
    check(|| {
        let q = Arc::new(QueueRing::new(64, 0));
        let producer = {
            let q = q.clone();
            thread::spawn(move || {
                q.put(&msg(1, 5), true).unwrap();
                q.put(&msg(2, 8), true).unwrap();
            })
        };
        assert_eq!(q.get(true).unwrap(), msg(1, 5));
        assert_eq!(q.get(true).unwrap(), msg(2, 8));
        producer.join().unwrap();
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
        let producer = {
            let q = q.clone();
            thread::spawn(move || {
                q.put(&msg(7, 8), true).unwrap();
                q.put(&msg(8, 8), true).unwrap();
            })
        };
        assert_eq!(q.get(true).unwrap(), msg(7, 8));
        assert_eq!(q.get(true).unwrap(), msg(8, 8));
        producer.join().unwrap();
    });
}

#[test]
fn u02_queue_ring_full_ring_holds_the_producer() {
    check(|| {
        // One item at most: the second put waits until the consumer took the first.
        let q = Arc::new(QueueRing::new(32, 1));
        let producer = {
            let q = q.clone();
            thread::spawn(move || {
                q.put(&msg(1, 4), true).unwrap();
                q.put(&msg(2, 4), true).unwrap();
            })
        };
        assert_eq!(q.get(true).unwrap(), msg(1, 4));
        assert_eq!(q.get(true).unwrap(), msg(2, 4));
        producer.join().unwrap();
        assert!(q.is_empty());
    });
}

#[test]
fn u02_queue_ring_close_ends_a_waiting_consumer() {
    check(|| {
        let q = Arc::new(QueueRing::new(32, 0));
        let consumer = {
            let q = q.clone();
            thread::spawn(move || q.get(true))
        };
        q.close();
        assert_eq!(consumer.join().unwrap(), Err(Fail::Closed));
    });
}

#[test]
fn u02_queue_ring_close_ends_a_producer_waiting_for_room() {
    check(|| {
        let q = Arc::new(QueueRing::new(32, 1));
        q.put(&msg(1, 4), false).unwrap();
        let producer = {
            let q = q.clone();
            thread::spawn(move || q.put(&msg(2, 4), true))
        };
        q.close();
        assert_eq!(producer.join().unwrap(), Err(Fail::Closed));
        // What was committed before the close is still there.
        assert_eq!(q.get(false).unwrap(), msg(1, 4));
    });
}

/// Three threads that all wait by yielding: with two preemptions loom finds paths on which
/// two waiters hand the CPU to each other for ever (a switch at a yield is free), so this model
/// runs with one, which still covers every interleaving with one forced switch.
#[test]
fn u02_queue_ring_two_producers_one_consumer() {
    check_bounded(1, || {
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
