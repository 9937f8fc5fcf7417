//! Model checks of the pool's reply ring (`backend/ring.rs`) with loom: a worker (producer)
//! and its supervisor (consumer) exchange entries, wrap around the end of the ring, wait for
//! room in a full ring, and hand over the sleep of the consumer without losing a wake-up.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p processing-pool --release --test
//! loom_u03_reply_ring`. The ring holds 64 bytes under loom. Each loom thread plays one side
//! over one heap region standing in for the mapping; the stream's wake-up frame is a
//! `loom::sync::Notify` (a permit, as a frame waiting in the socket is), so a lost wake-up is a
//! deadlock loom reports. Every copy is checked against the bytes' loom cells, so reading an
//! entry whose publication does not happen-before the read fails the model. The same ring runs
//! across real processes in the pool tests.
#![cfg(loom)]

use loom::sync::{Arc, Notify};
use loom::thread;
use processing_pool::model::{ReplyRing, CAPACITY};

fn check(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(2).min(2));
    builder.check(f);
}

fn msg(tag: u8, len: usize) -> Vec<u8> {
    (0..len as u8)
        .map(|i| tag.wrapping_mul(16).wrapping_add(i))
        .collect()
}

/// The producer's side: push, ring the bell when the consumer sleeps.
fn produce(ring: &ReplyRing, bell: &Notify, payload: &[u8]) {
    if ring.push(payload) {
        bell.notify();
    }
}

/// The consumer's side: `n` entries from `pos` on, sleeping (on the bell) when the ring is
/// empty, releasing each entry after copying it.
fn consume(ring: &ReplyRing, bell: &Notify, pos: &mut u64, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < n {
        match ring.take(*pos).expect("ring corrupt") {
            Some((bytes, next)) => {
                out.push(bytes);
                *pos = next;
                ring.release(next);
            }
            None => {
                if ring.prepare_sleep(*pos) {
                    bell.wait();
                    ring.end_sleep();
                }
            }
        }
    }
    out
}

#[test]
fn u03_reply_ring_exchange_and_wake_up() {
    check(|| {
        let ring = Arc::new(ReplyRing::new());
        let bell = Arc::new(Notify::new());
        let producer = {
            let (ring, bell) = (ring.clone(), bell.clone());
            thread::spawn(move || {
                produce(&ring, &bell, &msg(1, 4));
                produce(&ring, &bell, &msg(2, 9));
            })
        };
        let mut pos = 0;
        let got = consume(&ring, &bell, &mut pos, 2);
        assert_eq!(got, vec![msg(1, 4), msg(2, 9)]);
        producer.join().unwrap();
        assert_eq!(ring.take(pos), Ok(None));
    });
}

#[test]
fn u03_reply_ring_wraps_at_the_end() {
    check(|| {
        assert_eq!(CAPACITY, 64);
        let ring = Arc::new(ReplyRing::new());
        let bell = Arc::new(Notify::new());
        // Seven 8-byte entries bring both positions to 56: a 16-byte entry no longer fits
        // before the end, so the producer writes WRAP there and continues at 0, where the
        // consumer must follow it.
        let mut pos = 0;
        for i in 0..7 {
            produce(&ring, &bell, &msg(i, 4));
            assert_eq!(consume(&ring, &bell, &mut pos, 1), vec![msg(i, 4)]);
        }
        let producer = {
            let (ring, bell) = (ring.clone(), bell.clone());
            thread::spawn(move || {
                produce(&ring, &bell, &msg(8, 12));
                produce(&ring, &bell, &msg(9, 12));
            })
        };
        let got = consume(&ring, &bell, &mut pos, 2);
        assert_eq!(got, vec![msg(8, 12), msg(9, 12)]);
        producer.join().unwrap();
    });
}

#[test]
fn u03_reply_ring_full_ring_holds_the_producer() {
    check(|| {
        let ring = Arc::new(ReplyRing::new());
        let bell = Arc::new(Notify::new());
        // Three 16-byte entries fill 48 of the 64 bytes; the producer adds two more, the second
        // of which waits until the consumer releases the first.
        for i in 0..3 {
            produce(&ring, &bell, &msg(i, 12));
        }
        let producer = {
            let (ring, bell) = (ring.clone(), bell.clone());
            thread::spawn(move || {
                produce(&ring, &bell, &msg(3, 12));
                produce(&ring, &bell, &msg(4, 12));
            })
        };
        let mut pos = 0;
        let got = consume(&ring, &bell, &mut pos, 5);
        assert_eq!(got, (0..5).map(|i| msg(i, 12)).collect::<Vec<_>>());
        producer.join().unwrap();
    });
}
