//! Model checks of the overflow chain of an unbounded queue (`queue/segment.rs`, `Chain`)
//! with loom: the hand-over from the ring to the chain and back with items kept in order, and
//! a producer extending the chain with a new segment while a consumer drains and removes the
//! old ones.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p processing-transport --release --test
//! loom_u06_queue_chain`. Each loom thread plays one process with its own view of the queue
//! (its own chain cache); chain segments are heap regions registered under a name (what named
//! shared memory is in a real run), and opening one by name adds no happens-before edge: only
//! the protocol's own stores publish a segment (`overflow.active` the first one, a segment's
//! `has_next` its successor). Every payload copy is checked against the bytes' loom cells. The
//! same chain runs across real processes in the workspace's `tests/queue_*.rs`.
#![cfg(loom)]

use loom::thread;
use processing_shm::model::builder;
use processing_transport::model::ChainQueue;

/// Bytes of each queue ring (the smallest a chain segment may have).
const RING: u64 = 1024;

fn check(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = builder(2);
    // Every byte of a segment name in shared memory is an atomic (a branch of the model).
    builder.max_branches = 100_000;
    builder.check(f);
}

/// The largest item a ring of [`RING`] bytes takes: four of them fill it.
fn item(q: &ChainQueue, tag: u8) -> Vec<u8> {
    vec![tag; q.max_inline()]
}

/// A fresh queue with its ring full (items 0..4), and a view for another process.
fn full_queue() -> (ChainQueue, ChainQueue) {
    let producer = ChainQueue::new(RING);
    for tag in 0..4 {
        producer.put(&item(&producer, tag)).unwrap();
    }
    assert!(!producer.chain_active());
    let consumer = producer.view();
    (producer, consumer)
}

/// Items put while the ring is full go to the chain, behind the ring's items; once the chain
/// is drained the consumer ends it (holding both locks) and puts go to the ring again. The
/// last put races with that end: it lands in the chain before the end or in the ring after
/// it. A consumer racing with the producer gets every item once, in order, whichever of ring
/// and chain it came through, and every chain segment is removed.
///
/// (This model found a consumer that read the ring's commit, was preempted while the producer
/// put an item into the ring and the next one into a new chain, then saw the chain active and
/// took the chain's item first: `Ring::get` now reads the commit again after seeing the chain
/// active.)
/// Gets items `0..n` in order, waiting for each, while a producer thread may still put; then
/// joins it.
fn drain_in_order<T>(consumer: &ChainQueue, n: u8, producer: thread::JoinHandle<T>) -> T {
    for tag in 0..n {
        assert_eq!(
            consumer.get(true).unwrap(),
            item(consumer, tag),
            "item {tag}"
        );
    }
    producer.join().unwrap()
}

#[test]
fn u06_queue_chain_ring_to_chain_and_back_keeps_order() {
    check(|| {
        let (producer, consumer) = full_queue();
        let producer = thread::spawn(move || {
            for tag in 4..7 {
                producer.put(&item(&producer, tag)).unwrap();
            }
            producer
        });
        let producer = drain_in_order(&consumer, 7, producer);
        // Drained: the chain ends (at the latest at this get), and the next put goes to the
        // ring.
        assert!(consumer.get(false).is_err());
        assert!(!consumer.chain_active());
        producer.put(&item(&producer, 7)).unwrap();
        assert!(!producer.chain_active());
        assert_eq!(consumer.get(false).unwrap(), item(&consumer, 7));
        assert_eq!(
            ChainQueue::segments_left(),
            0,
            "every chain segment removed"
        );
    });
}

/// The chain's first segment is full: the producer links a successor (publishing it with the
/// first segment's `has_next`) while the consumer drains the ring and the first segment, moves
/// on to the successor and removes the drained segment.
#[test]
fn u06_queue_chain_extends_while_consumer_drains_and_removes() {
    check(|| {
        let (producer, consumer) = full_queue();
        // Four more fill the chain's first segment (a ring of the same size).
        for tag in 4..8 {
            producer.put(&item(&producer, tag)).unwrap();
        }
        assert!(producer.chain_active());
        let producer = thread::spawn(move || {
            producer.put(&item(&producer, 8)).unwrap();
            producer
        });
        let producer = drain_in_order(&consumer, 9, producer);
        assert!(consumer.is_empty());
        assert!(consumer.get(false).is_err());
        assert!(!consumer.chain_active());
        drop(producer);
        assert_eq!(
            ChainQueue::segments_left(),
            0,
            "every chain segment removed"
        );
    });
}
