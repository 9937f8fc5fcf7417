//! Awaitable process joins and pool results (feature `async`), each body run under tokio and
//! under `futures::executor::block_on`.
// xtask: not-conformance
#![cfg(feature = "async")]

mod support;

use support::{poll_once, tokio_rt};

use std::pin::Pin;
use std::sync::mpsc;
use std::time::Duration;

use futures::StreamExt;
use processing::{Callbacks, Event, Pool, Process};

fn square(x: u64) -> u64 {
    x * x
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn big(n: usize) -> Vec<u8> {
    vec![7u8; n]
}

/// Signals `started`, then waits for `go`; returns `v`.
fn gated((started, go, v): (Event, Event, u64)) -> u64 {
    started.set();
    go.wait();
    v
}

async fn join_returns_value() {
    let go = Event::new().unwrap();
    go.set();
    let mut child = Process::new(gated, (Event::new().unwrap(), go, 42));
    child.start().unwrap();
    assert_eq!(child.join_async().await.unwrap(), 42);
    assert!(child.join_async().await.is_err(), "joined twice");
}

async fn join_reads_a_report_larger_than_the_socket_buffer() {
    let mut child = Process::new(big, 4 << 20);
    child.start().unwrap();
    let v = child.join_async().await.unwrap();
    assert_eq!(v.len(), 4 << 20);
    assert!(v.iter().all(|&b| b == 7));
}

#[test]
fn join_async_tokio() {
    tokio_rt().block_on(async {
        join_returns_value().await;
        join_reads_a_report_larger_than_the_socket_buffer().await;
    });
}

#[test]
fn join_async_block_on() {
    futures::executor::block_on(async {
        join_returns_value().await;
        join_reads_a_report_larger_than_the_socket_buffer().await;
    });
}

#[test]
fn join_async_dropped_leaves_the_child_running() {
    let (started, go) = (Event::new().unwrap(), Event::new().unwrap());
    let mut child = Process::new(gated, (started.clone(), go.clone(), 5));
    child.start().unwrap();
    started.wait();
    {
        let mut fut = child.join_async();
        assert!(poll_once(Pin::new(&mut fut)));
    }
    assert!(child.is_alive());
    go.set();
    assert_eq!(child.join().unwrap(), 5);
}

async fn pool_results(pool: &Pool) {
    // Many in flight at once, awaited out of order.
    let rs: Vec<_> = (0..200u64)
        .map(|i| pool.apply_async(square, i).unwrap())
        .collect();
    let mut sum = 0;
    for r in rs.into_iter().rev() {
        sum += r.await.unwrap();
    }
    assert_eq!(sum, (0..200u64).map(|i| i * i).sum::<u64>());
    let m = pool.map_async(square, 0..50u64).unwrap().await.unwrap();
    assert_eq!(m, (0..50u64).map(|i| i * i).collect::<Vec<_>>());
    let s = pool
        .starmap_async(add, (0..20u64).map(|i| (i, 1)))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(s, (1..21u64).collect::<Vec<_>>());
    // IMap as a stream, ordered and unordered.
    let v = pool.imap(square, 0..30u64).unwrap();
    let v: Vec<u64> = StreamExt::map(v, Result::unwrap).collect().await;
    assert_eq!(v, (0..30u64).map(|i| i * i).collect::<Vec<_>>());
    let u = pool.imap_unordered(square, 0..30u64).unwrap();
    let mut u: Vec<u64> = StreamExt::map(u, Result::unwrap).collect().await;
    u.sort();
    assert_eq!(u, v);
}

#[test]
fn pool_results_tokio() {
    let pool = Pool::new(2).unwrap();
    tokio_rt().block_on(pool_results(&pool));
}

#[test]
fn pool_results_block_on() {
    let pool = Pool::new(2).unwrap();
    futures::executor::block_on(pool_results(&pool));
}

#[test]
fn pool_dropped_future_cancels_a_task_not_started() {
    let pool = Pool::new(1).unwrap();
    let (started, go) = (Event::new().unwrap(), Event::new().unwrap());
    let busy = pool
        .apply_async(gated, (started.clone(), go.clone(), 1))
        .unwrap();
    // The only worker is inside `gated`: the next task waits in the pool's queue.
    started.wait();
    let (tx, rx) = mpsc::channel();
    let mut queued = pool
        .apply_async_with(
            square,
            3,
            Callbacks::new().error_callback(move |e| tx.send(e.is_cancelled()).unwrap()),
        )
        .unwrap();
    assert!(poll_once(Pin::new(&mut queued)));
    drop(queued);
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(true));
    go.set();
    assert_eq!(futures::executor::block_on(busy).unwrap(), 1);
    // A result never polled is not cancelled by its drop (the blocking API's behaviour).
    let (tx, rx) = mpsc::channel();
    drop(
        pool.apply_async_with(
            square,
            4,
            Callbacks::new().callback(move |v: &u64| tx.send(*v).unwrap()),
        )
        .unwrap(),
    );
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(16));
}

#[test]
fn pool_dropped_future_of_a_started_task_lets_it_finish() {
    let pool = Pool::new(1).unwrap();
    let (started, go) = (Event::new().unwrap(), Event::new().unwrap());
    let (tx, rx) = mpsc::channel();
    let mut r = pool
        .apply_async_with(
            gated,
            (started.clone(), go.clone(), 9),
            Callbacks::new().callback(move |v: &u64| tx.send(*v).unwrap()),
        )
        .unwrap();
    started.wait();
    assert!(poll_once(Pin::new(&mut r)));
    drop(r);
    go.set();
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(9));
}

/// `Pool::join_async`: refused before close; after close it ends once the queued work is
/// done; after terminate, once the workers are stopped.
async fn pool_join_async_waits_for_the_workers() {
    let pool = Pool::new(2).unwrap();
    assert!(pool.join_async().await.unwrap_err().is_not_closed());
    let (started, go) = (Event::new().unwrap(), Event::new().unwrap());
    let held = pool
        .apply_async(gated, (started.clone(), go.clone(), 5))
        .unwrap();
    let queued: Vec<_> = (0..20u64)
        .map(|i| pool.apply_async(square, i).unwrap())
        .collect();
    started.wait();
    pool.close();
    {
        // A task still runs: the join is pending, and a dropped join takes nothing with it.
        let mut early = std::pin::pin!(pool.join_async());
        assert!(poll_once(early.as_mut()));
    }
    go.set();
    pool.join_async().await.unwrap();
    assert_eq!(held.get().unwrap(), 5);
    for (i, r) in queued.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), (i * i) as u64);
    }

    let pool = Pool::new(2).unwrap();
    let (started, go) = (Event::new().unwrap(), Event::new().unwrap());
    let stuck = pool.apply_async(gated, (started.clone(), go, 1)).unwrap();
    started.wait();
    pool.terminate();
    pool.join_async().await.unwrap();
    assert!(stuck.get().unwrap_err().is_terminated());
}

#[test]
fn pool_join_async_tokio() {
    fn is_send<T: Send>(_: &T) {}
    let pool = Pool::new(1).unwrap();
    is_send(&pool.join_async());
    drop(pool);
    tokio_rt().block_on(pool_join_async_waits_for_the_workers());
}

#[test]
fn pool_join_async_block_on() {
    futures::executor::block_on(pool_join_async_waits_for_the_workers());
}
