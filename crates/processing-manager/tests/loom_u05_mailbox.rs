//! Model checks of the manager's mailbox (`sys/mailbox_linux.rs`, Linux) with loom: request
//! and response through the two slots, a slot reused for the next call, a message announced
//! as travelling on the socket, and a sleeping receiver ended by the peer-closed check.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p processing-manager --release --test
//! loom_u05_mailbox`. Each loom thread plays one process with its own mapping of the mailbox
//! file; the futex sleep is a yield. Every copy is checked against the bytes' loom cells, so a
//! receiver that could copy a message before its publication (a Relaxed sequence bump, a bump
//! before the copy) fails the model. The same mailbox runs across real processes in the
//! manager tests.
#![cfg(all(loom, target_os = "linux"))]

use std::io;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use processing_manager::model::{pair, End};
use processing_shm::model::builder;

fn check(f: impl Fn() + Sync + Send + 'static) {
    builder(2).check(f);
}

fn never() -> Option<io::Error> {
    None
}

#[test]
fn u05_mailbox_request_and_response() {
    check(|| {
        let (mut client, mut server) = pair().unwrap();
        let srv = thread::spawn(move || {
            for _ in 0..2 {
                let req = server.recv(never).unwrap().unwrap();
                let resp: Vec<u8> = req.iter().map(|b| b + 100).collect();
                server.send(&resp);
            }
        });
        // Two calls: the second reuses both slots after the peer answered the first.
        client.send(&[1, 2, 3]);
        assert_eq!(client.recv(never).unwrap(), Some(vec![101, 102, 103]));
        client.send(&[7; 9]);
        assert_eq!(client.recv(never).unwrap(), Some(vec![107; 9]));
        srv.join().unwrap();
    });
}

#[test]
fn u05_mailbox_large_message_goes_on_the_socket() {
    check(|| {
        let (mut client, mut server) = pair().unwrap();
        let srv = thread::spawn(move || server.recv(never).unwrap());
        client.send(&vec![0u8; End::capacity() + 1]);
        assert_eq!(srv.join().unwrap(), None);
    });
}

#[test]
fn u05_mailbox_closed_peer_ends_a_sleeping_receiver() {
    check(|| {
        let (client, mut server) = pair().unwrap();
        let closed = Arc::new(AtomicBool::new(false));
        let srv = {
            let closed = closed.clone();
            thread::spawn(move || {
                server.recv(|| {
                    closed
                        .load(Ordering::Acquire)
                        .then(|| io::ErrorKind::UnexpectedEof.into())
                })
            })
        };
        // The client goes away without sending (its socket's end of stream, here a flag).
        drop(client);
        closed.store(true, Ordering::Release);
        let e = srv.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    });
}
