//! A child made by the fork start method inherits the parent's reactor pointer but not its
//! thread: its own awaited waits must start a reactor of their own (feature `async`).
// xtask: not-conformance
#![cfg(all(feature = "async", unix))]

use std::time::Duration;

use processing::{Pipe, Process, StartMethod};

/// Awaits a timer and a pipe in the forked child, then answers.
fn child_awaits(conn: processing::Connection<u32>) -> u32 {
    processing::aio::block_on(async {
        processing::aio::Sleep::new(Duration::from_millis(2)).await;
        let v = conn.recv_async().await.unwrap();
        conn.send_async(&(v + 1)).await.unwrap();
        v
    })
}

#[test]
fn forked_child_runs_its_own_reactor() {
    let (ours, theirs) = Pipe::new::<u32>().unwrap();
    // The parent's reactor runs before the fork.
    futures::executor::block_on(processing::aio::Sleep::new(Duration::from_millis(1)));
    assert!(processing::aio::reactor_thread_started());
    let mut child = Process::new(child_awaits, theirs).start_method(StartMethod::Fork);
    child.start().unwrap();
    futures::executor::block_on(async {
        ours.send_async(&41).await.unwrap();
        assert_eq!(ours.recv_async().await.unwrap(), 42);
        assert_eq!(child.join_async().await.unwrap(), 41);
    });
}
