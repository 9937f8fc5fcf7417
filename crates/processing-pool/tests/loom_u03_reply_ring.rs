//! Model checks of the pool's reply ring with loom: processing-shm's SPSC ring as the pool
//! builds it (`backend/processes.rs`: its dimensions, and the sleep hand-over whose bell is a
//! wake-up frame on the worker's socket). A worker (producer) and its supervisor (consumer)
//! exchange replies, wrap around the end of the ring, wait for room in a full ring, and hand
//! over the sleep of the supervisor without losing a wake-up.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p processing-pool --release --test
//! loom_u03_reply_ring`. The ring holds 64 bytes under loom. Each loom thread plays one side
//! over one heap region standing in for the mapping; the stream's wake-up frame is a
//! `loom::sync::Notify` (a permit, as a frame waiting in the socket is), so a lost wake-up is a
//! deadlock loom reports. Every copy is checked against the bytes' loom cells, so reading a
//! reply whose commit does not happen-before the read fails the model. The ring itself is
//! model-checked in processing-shm (`loom_u07_spsc_ring`); the same ring runs across real
//! processes in the pool tests.
#![cfg(all(loom, unix))]

use loom::sync::{Arc, Notify};
use processing_pool::model::{pair, CAPACITY, MAX_REPLY};
use processing_shm::model::spsc::{advance, push as produce, spawn_producer, take as consume};
use processing_shm::model::{builder, message as msg};

fn check(f: impl Fn() + Sync + Send + 'static) {
    builder(2).check(f);
}

#[test]
fn u03_reply_ring_exchange_and_wake_up() {
    check(|| {
        let (tx, mut rx) = pair();
        let bell = Arc::new(Notify::new());
        let producer = spawn_producer(tx, &bell, vec![msg(1, 4), msg(2, 9)]);
        let got = consume(&mut rx, &bell, 2);
        assert_eq!(got, vec![msg(1, 4), msg(2, 9)]);
        producer.join().unwrap();
        assert_eq!(rx.take(), Ok(None));
    });
}

#[test]
fn u03_reply_ring_wraps_at_the_end() {
    check(|| {
        assert_eq!((CAPACITY, MAX_REPLY), (64, 12));
        let (mut tx, mut rx) = pair();
        let bell = Arc::new(Notify::new());
        // Seven 8-byte entries bring both positions to 56: a 16-byte entry no longer fits
        // before the end, so the producer writes WRAP there and continues at 0, where the
        // consumer must follow it.
        advance(&mut tx, &mut rx, &bell, 7, 4);
        let producer = spawn_producer(tx, &bell, vec![msg(8, 12), msg(9, 12)]);
        let got = consume(&mut rx, &bell, 2);
        assert_eq!(got, vec![msg(8, 12), msg(9, 12)]);
        producer.join().unwrap();
    });
}

#[test]
fn u03_reply_ring_full_ring_holds_the_producer() {
    check(|| {
        let (mut tx, mut rx) = pair();
        let bell = Arc::new(Notify::new());
        // Three 16-byte entries fill 48 of the 64 bytes; the producer adds two more, the second
        // of which waits until the consumer releases the first.
        for i in 0..3 {
            produce(&mut tx, &bell, &msg(i, 12));
        }
        let producer = spawn_producer(tx, &bell, vec![msg(3, 12), msg(4, 12)]);
        let got = consume(&mut rx, &bell, 5);
        assert_eq!(got, (0..5).map(|i| msg(i, 12)).collect::<Vec<_>>());
        producer.join().unwrap();
    });
}
