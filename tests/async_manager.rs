//! Awaitable waits of the manager's proxies (feature `async`) against a real manager server
//! process: each twin under tokio and under `futures::executor::block_on`, and their
//! cancellation. (The thread count of 1 000 waiters is in `async_manager_threads.rs`, alone in
//! its binary so that no other test's threads come and go while it counts.)
// xtask: not-conformance
#![cfg(feature = "async")]

mod support;

use support::poll_once;

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use processing::manager::{ConditionProxy, Manager};

const PATIENCE: Duration = Duration::from_secs(60);

/// Runs `make()`'s future under tokio (current thread and multi-thread) and under
/// `futures::executor::block_on`.
fn under_both<F: Future<Output = ()>>(make: impl Fn() -> F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(make());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(make());
    futures::executor::block_on(make());
}

#[test]
fn queue_get_and_put_async() {
    let m = Manager::start().unwrap();
    under_both(|| async {
        // One slot: each side waits for the other in turn, on one task.
        let q = m.bounded_queue::<u32>(1).unwrap();
        let producer = async {
            for i in 0..50 {
                q.put_async(i).await.unwrap();
            }
        };
        let consumer = async {
            let mut got = Vec::new();
            for _ in 0..50 {
                got.push(q.get_async().await.unwrap());
            }
            got
        };
        let ((), got) = futures::join!(producer, consumer);
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        // Closed and drained: the blocking form's error.
        q.close().unwrap();
        assert!(q.get_async().await.unwrap_err().is_closed());
        let e = q.put_async(9).await.unwrap_err();
        assert!(e.is_closed());
        assert_eq!(e.into_inner(), 9);
    });
}

#[test]
fn joinable_queue_join_async() {
    let m = Manager::start().unwrap();
    under_both(|| async {
        let q = m.joinable_queue::<u32>().unwrap();
        q.put(1).unwrap();
        let worker = {
            let q = q.clone();
            std::thread::spawn(move || {
                assert_eq!(q.get().unwrap(), 1);
                q.task_done().unwrap();
            })
        };
        q.join_async().await.unwrap();
        worker.join().unwrap();
    });
}

/// A thread that acquires (a clone of) `$lock` and holds it until told to let go: the sender
/// that tells it, once it holds the lock.
macro_rules! held_elsewhere {
    ($lock:expr) => {{
        let lock = $lock.clone();
        let (held_tx, held_rx) = mpsc::channel();
        let (go, go_rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let g = lock.acquire().unwrap();
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            drop(g);
        });
        held_rx.recv().unwrap();
        go
    }};
}

#[test]
fn lock_like_acquire_async_waits_for_a_holder() {
    let m = Manager::start().unwrap();
    under_both(|| async {
        // Lock held by another thread (another connection): the async acquire waits.
        let lock = m.lock().unwrap();
        let go = held_elsewhere!(lock);
        let mut f = std::pin::pin!(lock.acquire_async());
        assert!(poll_once(f.as_mut()));
        go.send(()).unwrap();
        let g = f.await.unwrap();
        assert!(lock.is_locked().unwrap());
        g.release().unwrap();
        assert!(!lock.is_locked().unwrap());

        // RLock: reentrant on this thread's connection, waits for another holder.
        let r = m.rlock().unwrap();
        {
            let outer = r.acquire_async().await.unwrap();
            let inner = r.acquire_async().await.unwrap();
            drop(inner);
            outer.release().unwrap();
        }
        let go = held_elsewhere!(r);
        let mut f = std::pin::pin!(r.acquire_async());
        assert!(poll_once(f.as_mut()));
        go.send(()).unwrap();
        f.await.unwrap().release().unwrap();

        // Semaphore: waits for a unit another thread releases.
        let s = m.semaphore(0).unwrap();
        let mut f = std::pin::pin!(s.acquire_async());
        assert!(poll_once(f.as_mut()));
        let releaser = {
            let s = s.clone();
            std::thread::spawn(move || s.release().unwrap())
        };
        let g = f.await.unwrap();
        releaser.join().unwrap();
        assert_eq!(s.value().unwrap(), 0);
        drop(g);
        assert_eq!(s.value().unwrap(), 1);

        // Bounded semaphore: the same, and the guard gives the unit back.
        let b = m.bounded_semaphore(1).unwrap();
        let g = b.acquire_async().await.unwrap();
        let mut f = std::pin::pin!(b.acquire_async());
        assert!(poll_once(f.as_mut()));
        let (g2, ()) = futures::join!(f, async move { g.release().unwrap() });
        drop(g2.unwrap());
        assert_eq!(b.value().unwrap(), 1);
    });
}

#[test]
fn event_and_barrier_wait_async() {
    let m = Manager::start().unwrap();
    under_both(|| async {
        let e = m.event().unwrap();
        let mut f = std::pin::pin!(e.wait_async());
        assert!(poll_once(f.as_mut()));
        let setter = {
            let e = e.clone();
            std::thread::spawn(move || e.set().unwrap())
        };
        f.await.unwrap();
        setter.join().unwrap();

        let b = m.barrier(2).unwrap();
        let other = {
            let b = b.clone();
            std::thread::spawn(move || b.wait().unwrap())
        };
        let mine = b.wait_async().await.unwrap();
        let theirs = other.join().unwrap();
        assert_eq!(mine + theirs, 1);
        b.abort().unwrap();
        assert!(b.wait_async().await.unwrap_err().is_broken());
    });
}

#[test]
fn a_dropped_acquire_async_takes_nothing() {
    let m = Manager::start().unwrap();
    let lock = m.lock().unwrap();
    let go = held_elsewhere!(lock);
    {
        let f = std::pin::pin!(lock.acquire_async());
        assert!(poll_once(f));
    }
    go.send(()).unwrap();
    // A third party gets the lock once the holder let go.
    let third = {
        let lock = lock.clone();
        std::thread::spawn(move || lock.acquire_timeout(PATIENCE).map(|g| g.release()).is_ok())
    };
    assert!(third.join().unwrap());
    assert!(!lock.is_locked().unwrap());

    // A semaphore: the dropped acquire took no unit.
    let s = m.semaphore(0).unwrap();
    {
        let f = std::pin::pin!(s.acquire_async());
        assert!(poll_once(f));
    }
    s.release().unwrap();
    assert_eq!(s.value().unwrap(), 1);
}

#[test]
fn a_dropped_get_async_loses_no_item() {
    let m = Manager::start().unwrap();
    let q = m.queue::<u32>().unwrap();
    {
        let f = std::pin::pin!(q.get_async());
        assert!(poll_once(f));
    }
    q.put(5).unwrap();
    assert_eq!(q.get_timeout(PATIENCE).unwrap(), 5);

    // Dropped after the item arrived (its readiness may be on the way): still not taken.
    {
        let mut f = std::pin::pin!(q.get_async());
        assert!(poll_once(f.as_mut()));
        q.put(6).unwrap();
    }
    assert_eq!(q.len().unwrap(), 1);
    assert_eq!(q.get_timeout(PATIENCE).unwrap(), 6);

    // A dropped put on a full queue put nothing.
    let b = m.bounded_queue::<u32>(1).unwrap();
    b.put(1).unwrap();
    {
        let f = std::pin::pin!(b.put_async(2));
        assert!(poll_once(f));
    }
    assert_eq!(b.get().unwrap(), 1);
    assert!(b.try_get().unwrap_err().is_empty());
}

#[test]
fn condition_wait_async_releases_and_takes_the_lock_back() {
    let m = Manager::start().unwrap();
    under_both(|| async {
        let c = m.condition().unwrap();
        // The futures can be spawned on a multi-threaded runtime.
        fn is_send<T: Send>(_: &T) {}
        is_send(&c.wait_async());
        is_send(&c.wait_for_async(|| true));
        // Not held: the blocking form's error.
        assert!(c.wait_async().await.unwrap_err().is_not_owner());
        let g = c.acquire().unwrap();
        let outer = c.acquire().unwrap();
        let mut f = std::pin::pin!(c.wait_async());
        // Registered, with the lock released: another thread takes it and notifies.
        assert!(poll_once(f.as_mut()));
        let notifier = notifier(&c, false);
        f.await.unwrap();
        notifier.join().unwrap();
        // Held again, with both levels, by this thread.
        assert!(held_for_another_thread(&c));
        drop(outer);
        drop(g);
        assert!(c.try_acquire().is_ok());

        // acquire_async of the condition's lock waits for another holder.
        let go = held_elsewhere!(c);
        let mut f = std::pin::pin!(c.acquire_async());
        assert!(poll_once(f.as_mut()));
        go.send(()).unwrap();
        f.await.unwrap().release().unwrap();
    });
}

#[test]
fn condition_wait_for_async_and_notify_all_with_several_async_waiters() {
    let m = Manager::start().unwrap();
    under_both(|| async {
        let c = m.condition().unwrap();
        let v = m.value(0u32).unwrap();
        // Three waiters on one task; each holds the lock (on this thread's connection) when
        // it starts waiting, which releases it for the next.
        let waiter = |_| async {
            let g = c.acquire().unwrap();
            c.wait_async().await.unwrap();
            drop(g);
        };
        let mut all = std::pin::pin!(futures::future::join_all((0..3).map(waiter)));
        assert!(poll_once(all.as_mut()));
        let notifier = notifier(&c, true);
        all.await;
        notifier.join().unwrap();

        // wait_for_async: a producer thread counts up under the lock, notifying each time.
        let g = c.acquire().unwrap();
        let producer = {
            let (c, v) = (c.clone(), v.clone());
            std::thread::spawn(move || {
                for i in 1..=5 {
                    let g = c.acquire_timeout(PATIENCE).unwrap();
                    v.set(i).unwrap();
                    c.notify_all().unwrap();
                    drop(g);
                }
            })
        };
        c.wait_for_async(|| v.get().unwrap() == 5).await.unwrap();
        drop(g);
        producer.join().unwrap();
    });
}

/// A thread that waits (blocking) on `c` for at most `PATIENCE`, returned once it holds the
/// lock just before its wait releases it (whoever takes the lock next finds it registered).
/// Its result: whether it was notified.
fn sync_waiter(c: &ConditionProxy) -> std::thread::JoinHandle<bool> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let c = c.clone();
    let waiter = std::thread::spawn(move || {
        let g = c.acquire().unwrap();
        ready_tx.send(()).unwrap();
        let notified = c.wait_timeout(PATIENCE).unwrap();
        drop(g);
        notified
    });
    ready_rx.recv().unwrap();
    waiter
}

/// A thread that takes `c`'s lock (waiting at most `PATIENCE`), wakes one waiter (`all`: every
/// waiter) and lets the lock go.
fn notifier(c: &ConditionProxy, all: bool) -> std::thread::JoinHandle<()> {
    let c = c.clone();
    std::thread::spawn(move || {
        let g = c.acquire_timeout(PATIENCE).unwrap();
        if all {
            c.notify_all().unwrap();
        } else {
            c.notify().unwrap();
        }
        drop(g);
    })
}

/// Whether `c`'s lock is held as another thread sees it (its `try_acquire` would block).
fn held_for_another_thread(c: &ConditionProxy) -> bool {
    let c = c.clone();
    std::thread::spawn(move || c.try_acquire().unwrap_err().is_would_block())
        .join()
        .unwrap()
}

#[test]
fn a_dropped_condition_wait_async_leaves_the_lock_held_and_no_waiter() {
    let m = Manager::start().unwrap();
    let c = m.condition().unwrap();
    let g = c.acquire().unwrap();
    {
        let f = std::pin::pin!(c.wait_async());
        assert!(poll_once(f));
    }
    // Held again by this thread.
    assert!(held_for_another_thread(&c));
    drop(g);
    // No waiter left behind: one notification reaches a waiter that came after.
    let w = sync_waiter(&c);
    // Taken once the waiter's wait released it: the waiter is registered.
    let g = c.acquire().unwrap();
    c.notify().unwrap();
    drop(g);
    assert!(
        w.join().unwrap(),
        "the notification went to the dropped waiter"
    );
}

#[test]
fn a_notification_taken_by_a_dropped_condition_wait_async_passes_on() {
    let m = Manager::start().unwrap();
    let c = m.condition().unwrap();
    let g = c.acquire().unwrap();
    let w;
    {
        // The async waiter registers first, then a blocking one.
        let mut f = std::pin::pin!(c.wait_async());
        assert!(poll_once(f.as_mut()));
        w = sync_waiter(&c);
        let n = c.acquire().unwrap();
        // One notification: to the first waiter, the async one, which is then dropped.
        c.notify().unwrap();
        drop(n);
    }
    // The dropped waiter took the lock back (the level `g` had), and its notification went to
    // the blocking waiter, which wakes once the lock is free.
    assert!(held_for_another_thread(&c));
    drop(g);
    assert!(
        w.join().unwrap(),
        "the notification was lost with the dropped waiter"
    );
}
