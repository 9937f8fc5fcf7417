//! Model checks of the pipe ring (`sys/ring.rs`, Linux) with loom: one writer and one reader
//! of a direction exchange bytes in order, wrap around the end of the ring, wait for room in a
//! full ring, hand over the reader's sleep through the doorbell, and learn that the peer end
//! closed while they wait.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p processing-transport --release --test
//! loom_u04_pipe_ring`. Each loom thread plays one process holding one end; the rings are
//! the real memfd mapping (mapped once per end) and the doorbell the real socket pair, polled
//! without blocking (a lost doorbell is a wait without end, which loom reports); the writer's
//! futex sleep is a yield. Every copy is checked against the bytes' loom cells, so a reader
//! that could copy bytes before their publication (a Relaxed `tail`, a publish before the copy)
//! fails the model. The pipe ring is a byte stream: message boundaries are the framer's
//! (`frame.rs`), above it. The same ring runs across real processes in the pipe tests.
#![cfg(all(loom, target_os = "linux"))]

use std::io;

use loom::thread;
use processing_shm::model::builder;
use processing_transport::model::{pipe_pair, PipeEnd};

fn check(f: impl Fn() + Sync + Send + 'static) {
    builder(2).check(f);
}

fn bytes(from: u8, n: usize) -> Vec<u8> {
    (0..n as u8).map(|i| from.wrapping_add(i)).collect()
}

/// The writing end `b` sends `chunks` on another thread (and stays open until it has sent
/// them all) while `a` reads them as one run of bytes.
fn stream(a: &PipeEnd, b: PipeEnd, chunks: Vec<Vec<u8>>) {
    let all = chunks.concat();
    let writer = thread::spawn(move || {
        for chunk in &chunks {
            b.send(chunk).unwrap();
        }
        b
    });
    assert_eq!(a.recv(all.len()).unwrap(), all);
    drop(writer.join().unwrap());
}

#[test]
fn u04_pipe_ring_exchange_in_order() {
    check(|| {
        let (a, b) = pipe_pair(16).unwrap();
        stream(&a, b, vec![bytes(1, 3), bytes(4, 2)]);
    });
}

#[test]
fn u04_pipe_ring_wraps_at_the_end() {
    check(|| {
        // 16 bytes: 12 bytes through first, so that the next 6 are written as 4 at the end and
        // 2 at the start (and read likewise).
        let (a, b) = pipe_pair(16).unwrap();
        for i in 0..3 {
            b.send(&bytes(10 * i, 4)).unwrap();
            assert_eq!(a.recv(4).unwrap(), bytes(10 * i, 4));
        }
        stream(&a, b, vec![bytes(50, 6)]);
    });
}

#[test]
fn u04_pipe_ring_full_ring_holds_the_writer() {
    check(|| {
        // 8 bytes of ring, 12 bytes sent: the writer sleeps for room at least once.
        let (a, b) = pipe_pair(8).unwrap();
        stream(&a, b, vec![bytes(1, 12)]);
    });
}

#[test]
fn u04_pipe_ring_close_ends_a_waiting_reader() {
    check(|| {
        // The writer sends 2 bytes and closes its end: the reader gets them, then the end of
        // the stream, whether it was asleep or not.
        let (a, b) = pipe_pair(8).unwrap();
        let writer = thread::spawn(move || {
            b.send(&bytes(1, 2)).unwrap();
            drop(b);
        });
        assert_eq!(a.recv(2).unwrap(), bytes(1, 2));
        let e = a.recv(1).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        writer.join().unwrap();
    });
}

#[test]
fn u04_pipe_ring_close_ends_a_writer_waiting_for_room() {
    check(|| {
        // Nobody reads: the writer fills the 8 bytes, waits for room, and fails when the
        // reading end closes.
        let (a, b) = pipe_pair(8).unwrap();
        let writer = thread::spawn(move || b.send(&bytes(1, 12)).unwrap_err().kind());
        drop(a);
        assert_eq!(writer.join().unwrap(), io::ErrorKind::BrokenPipe);
    });
}
