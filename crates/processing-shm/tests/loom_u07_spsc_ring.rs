//! Model checks of the one SPSC message ring (`processing_shm::spsc`) with loom: messages in
//! order with the sleep hand-over (a lost wake-up is a deadlock), a message of several parts
//! across the wrap-around, a full ring holding the producer, staged messages published by one
//! commit, and a consumer sleeping on the ring's futex word.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p processing-shm --release --test
//! loom_u07_spsc_ring`. Each loom thread plays one process over one heap region standing in for
//! the mapping; a bell other than the futex is a `loom::sync::Notify` (a permit, as a wake-up
//! frame waiting in a socket is); the futex sleep is a yield. Every copy is checked against the
//! bytes' loom cells, so reading a message whose commit does not happen-before the read (a
//! Relaxed commit store, a commit before the copy) fails the model. Its users' models:
//! processing-pool's `loom_u03_reply_ring`, processing-manager's `loom_u05_mailbox`.
#![cfg(all(loom, unix))]

use std::time::Duration;

use loom::sync::{Arc, Notify};
use loom::thread;
use processing_shm::model::spsc::{advance, pair, spawn_producer, take};
use processing_shm::model::{builder, message as msg, HeapRegion};
use processing_shm::spsc::{self, Consumer, Producer, Size};

/// 64 bytes of entries, messages up to 20 bytes (a 24-byte entry).
const SIZE: Size = Size {
    capacity: 64,
    max_message: 20,
};

fn check(f: impl Fn() + Sync + Send + 'static) {
    builder(2).check(f);
}

/// A fresh ring of [`SIZE`] and its user's bell.
fn ring() -> (Producer, Consumer, Arc<Notify>) {
    let (tx, rx) = pair(SIZE);
    (tx, rx, Arc::new(Notify::new()))
}

/// The next message, waiting for it by yielding (a consumer that does not sleep).
fn next(rx: &mut Consumer) -> Vec<u8> {
    loop {
        if let Some(m) = rx.take().unwrap() {
            return m.to_vec();
        }
        thread::yield_now();
    }
}

#[test]
fn u07_spsc_exchange_and_wake_up() {
    check(|| {
        let (tx, mut rx, bell) = ring();
        let producer = spawn_producer(tx, &bell, vec![msg(1, 3), msg(2, 11)]);
        assert_eq!(take(&mut rx, &bell, 2), vec![msg(1, 3), msg(2, 11)]);
        producer.join().unwrap();
        assert_eq!(rx.take(), Ok(None));
    });
}

#[test]
fn u07_spsc_message_of_parts_wraps_at_the_end() {
    check(|| {
        let (mut tx, mut rx, bell) = ring();
        // Six 8-byte entries bring both positions to 48: a 24-byte entry no longer fits
        // before the end (48 + 24 > 64), so the producer writes WRAP there and continues at 0.
        advance(&mut tx, &mut rx, &bell, 6, 4);
        let producer = thread::spawn(move || {
            let (a, b) = (msg(8, 7), msg(9, 13));
            tx.push(&[&a, &[], &b]).unwrap();
        });
        let mut whole = msg(8, 7);
        whole.extend(msg(9, 13));
        assert_eq!(next(&mut rx), whole);
        producer.join().unwrap();
        assert_eq!(rx.take(), Ok(None));
    });
}

#[test]
fn u07_spsc_full_ring_holds_the_producer() {
    check(|| {
        let (mut tx, mut rx, bell) = ring();
        // Two 24-byte entries fill 48 of the 64 bytes: the third wraps (16 bytes skipped) and
        // waits until the consumer released the first (at its next take).
        tx.push(&[&msg(0, 20)]).unwrap();
        tx.push(&[&msg(1, 20)]).unwrap();
        let producer = spawn_producer(tx, &bell, vec![msg(2, 20)]);
        let got = take(&mut rx, &bell, 3);
        assert_eq!(got, (0..3).map(|i| msg(i, 20)).collect::<Vec<_>>());
        producer.join().unwrap();
    });
}

#[test]
fn u07_spsc_staged_messages_commit_together() {
    check(|| {
        let (mut tx, mut rx) = pair(SIZE);
        let producer = thread::spawn(move || {
            tx.write(&[&msg(1, 5)]).unwrap();
            tx.write(&[&msg(2, 6)]).unwrap();
            tx.commit();
        });
        // The first message shows only with the second: once it is there, the second is
        // too, without waiting (one commit published both).
        assert_eq!(next(&mut rx), msg(1, 5));
        assert_eq!(
            rx.take().unwrap(),
            Some(&msg(2, 6)[..]),
            "half a commit seen"
        );
        producer.join().unwrap();
    });
}

#[test]
fn u07_spsc_futex_sleeper_is_woken() {
    check(|| {
        let (mut tx, mut rx) = pair(SIZE);
        let producer = thread::spawn(move || {
            if tx.push(&[&msg(3, 9)]).unwrap() {
                tx.wake();
            }
        });
        loop {
            if let Some(m) = rx.take().unwrap() {
                assert_eq!(m, &msg(3, 9)[..]);
                break;
            }
            rx.sleep(Duration::from_millis(100), || None::<()>).unwrap();
        }
        producer.join().unwrap();
    });
}

#[test]
fn u07_spsc_too_large_and_misplaced_rings_are_refused() {
    check(|| {
        let (mut tx, _rx) = pair(SIZE);
        assert_eq!(tx.push(&[&[0u8; 21]]), Err(spsc::TooLarge));
        let map = std::sync::Arc::new(HeapRegion::new(SIZE.bytes()));
        assert!(Producer::new(map.clone(), 64, SIZE).is_err());
        let odd = Size {
            capacity: 64,
            max_message: 30,
        };
        assert!(Consumer::new(map, 0, odd).is_err());
    });
}
