//! The thread twin's synchronisation under several threads (the root suite's
//! `one_api_sync.rs` compares it with the process-shared primitives).

use std::thread;
use std::time::Duration;

use processing_pool::dummy::{Barrier, Condition, Event, Lock, RLock, Semaphore};
use processing_sync::{BarrierError, ReleaseError};

const SLACK: Duration = Duration::from_secs(20);

#[test]
fn barrier_passes_in_lockstep_with_distinct_indexes() {
    const PARTIES: usize = 4;
    const PASSES: usize = 50;
    let barrier = Barrier::new(PARTIES).unwrap();
    let per_thread: Vec<Vec<usize>> = thread::scope(|s| {
        let handles: Vec<_> = (0..PARTIES)
            .map(|_| {
                s.spawn(|| {
                    (0..PASSES)
                        .map(|_| barrier.wait_timeout(SLACK).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for pass in 0..PASSES {
        let mut indexes: Vec<usize> = per_thread.iter().map(|v| v[pass]).collect();
        indexes.sort();
        assert_eq!(indexes, (0..PARTIES).collect::<Vec<_>>(), "pass {pass}");
    }
    assert_eq!((barrier.n_waiting(), barrier.broken()), (0, false));
}

#[test]
fn barrier_reset_fails_the_waiters_and_is_usable_again() {
    let barrier = Barrier::new(3).unwrap();
    let outcomes: Vec<Result<usize, BarrierError>> = thread::scope(|s| {
        let waiters: Vec<_> = (0..2).map(|_| s.spawn(|| barrier.wait())).collect();
        while barrier.n_waiting() < 2 {
            thread::yield_now();
        }
        barrier.reset();
        waiters.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes,
        [Err(BarrierError::Broken), Err(BarrierError::Broken)]
    );
    assert!(!barrier.broken());
    thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| barrier.wait_timeout(SLACK)))
            .collect();
        let mut idx: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
        idx.sort();
        assert_eq!(idx, [0, 1, 2]);
    });
}

#[test]
fn condition_never_notifies_a_waiter_that_gave_up() {
    let cond = Condition::new().unwrap();
    let ready = Event::new().unwrap();
    {
        let _g = cond.acquire().unwrap();
        assert!(!cond.wait_timeout(Duration::from_millis(20)).unwrap());
    }
    let notified = thread::scope(|s| {
        let h = s.spawn(|| {
            let _g = cond.acquire().unwrap();
            ready.set();
            cond.wait_timeout(SLACK).unwrap()
        });
        assert!(ready.wait_timeout(SLACK));
        // The waiter let the lock go inside its wait: taking it means it waits now.
        let _g = cond.acquire().unwrap();
        cond.notify().unwrap();
        drop(_g);
        h.join().unwrap()
    });
    assert!(notified, "the one notify went to the live waiter");
}

#[test]
fn condition_wait_restores_the_rlock_depth() {
    let lock = RLock::new().unwrap();
    let cond = Condition::with_lock(lock.clone()).unwrap();
    lock.acquire().unwrap().forget();
    lock.acquire().unwrap().forget();
    // Another thread can take the lock while we wait (every level was let go)...
    thread::scope(|s| {
        s.spawn(|| {
            let _g = cond.acquire_timeout(SLACK).unwrap();
            cond.notify_all().unwrap();
        });
        cond.wait_for_timeout(|| false, Duration::from_millis(50))
            .unwrap();
    });
    // ...and both levels are held again afterwards.
    assert!(lock.is_owned());
    lock.release().unwrap();
    lock.release().unwrap();
    assert_eq!(lock.release().unwrap_err(), ReleaseError::NotOwner);
}

#[test]
fn lock_released_by_another_thread_wakes_a_waiter() {
    let lock = Lock::new().unwrap();
    lock.acquire().unwrap().forget();
    thread::scope(|s| {
        let waiter = s.spawn(|| lock.acquire_timeout(SLACK).map(|g| g.forget()).is_ok());
        s.spawn(|| lock.release().unwrap());
        assert!(waiter.join().unwrap());
    });
    assert!(lock.is_locked());
    lock.release().unwrap();
}

#[test]
fn semaphore_release_wakes_a_blocked_acquire() {
    let sem = Semaphore::new(0).unwrap();
    thread::scope(|s| {
        let waiter = s.spawn(|| sem.acquire().map(|g| g.forget()).is_ok());
        sem.release().unwrap();
        assert!(waiter.join().unwrap());
    });
    assert_eq!(sem.value(), 0);
}
