//! The async twins of `Barrier::wait` and `RLock::acquire` (feature `async`): each body under
//! tokio and under `futures::executor::block_on`, and their cancellation.
// xtask: not-conformance
#![cfg(feature = "async")]

mod support;

use support::{poll_once, tokio_and_block_on};

use std::time::Duration;

use processing::{Barrier, Process, RLock};

/// A party in another process, with the blocking wait.
fn party(b: Barrier) -> usize {
    b.wait().unwrap()
}

async fn barrier_passes() {
    // Three futures of one task form a pass.
    let b = Barrier::new(3).unwrap();
    let (x, y, z) = futures::join!(b.wait_async(), b.wait_async(), b.wait_async());
    let mut indexes = [x.unwrap(), y.unwrap(), z.unwrap()];
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2]);
    // With a blocking party in a child process, twice (the barrier is cyclic).
    let b = Barrier::new(2).unwrap();
    for _ in 0..2 {
        let mut child = Process::new(party, b.clone());
        child.start().unwrap();
        let mine = b.wait_async().await.unwrap();
        let theirs = child.join_async().await.unwrap();
        assert_eq!(mine + theirs, 1);
    }
    // A broken barrier fails the wait.
    b.abort();
    assert!(b.wait_async().await.is_err());
}

async fn rlock_contended() {
    let lock = RLock::new().unwrap();
    {
        let g = lock.acquire_async().await.unwrap();
        let again = lock.acquire_async().await.unwrap();
        assert!(lock.is_owned());
        drop(again);
        drop(g);
    }
    assert!(!lock.is_owned());
    // Held by another thread: the future waits until that thread lets go.
    let (held_tx, held) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let other = lock.clone();
    let holder = std::thread::spawn(move || {
        let g = other.acquire().unwrap();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        drop(g);
    });
    held.recv().unwrap();
    let mut f = std::pin::pin!(lock.acquire_async());
    assert!(
        poll_once(f.as_mut()),
        "acquired a lock another thread holds"
    );
    release.send(()).unwrap();
    let g = f.await;
    assert!(lock.is_owned());
    drop(g);
    holder.join().unwrap();
    assert!(!lock.is_owned());
}

tokio_and_block_on! {
    barrier_passes: barrier_tokio, barrier_block_on;
    rlock_contended: rlock_tokio, rlock_block_on;
}

#[test]
fn cancelled_barrier_wait_takes_its_arrival_back() {
    let b = Barrier::new(2).unwrap();
    {
        let f = std::pin::pin!(b.wait_async());
        assert!(poll_once(f));
        assert_eq!(b.n_waiting(), 1);
    }
    // Dropped: not counted, and nothing broken.
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.broken());
    // The next pass needs two real arrivals.
    std::thread::scope(|s| {
        let t = s.spawn(|| b.wait_timeout(Duration::from_secs(60)).unwrap());
        let mine = futures::executor::block_on(b.wait_async()).unwrap();
        assert_eq!(mine + t.join().unwrap(), 1);
    });
    // Dropped after its pass completed: the pass stays completed for the others.
    let b = Barrier::new(2).unwrap();
    let mut f = Box::pin(b.wait_async());
    assert!(poll_once(f.as_mut()));
    std::thread::scope(|s| {
        s.spawn(|| b.wait_timeout(Duration::from_secs(60)).unwrap());
    });
    drop(f);
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.broken());
}

#[test]
fn cancelled_rlock_acquire_holds_nothing() {
    let lock = RLock::new().unwrap();
    let (held, release) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    std::thread::scope(|s| {
        s.spawn(|| {
            let g = lock.acquire().unwrap();
            held.wait();
            release.wait();
            drop(g);
        });
        held.wait();
        {
            let f = std::pin::pin!(lock.acquire_async());
            assert!(poll_once(f));
        }
        release.wait();
    });
    // Another thread takes it at once: the dropped future left nothing held.
    std::thread::scope(|s| {
        s.spawn(|| assert!(lock.try_acquire().is_ok()));
    });
    assert!(!lock.is_owned());
}
