//! Model checks of the lock, condition, semaphore, event and barrier algorithms with loom.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p processing-sync --release --test loom_lock`.
//! loom explores the interleavings of the threads of one process; sleeping is modelled as a
//! spurious wake-up (a yield), the weakest thing a futex or kernel semaphore promises. The
//! same algorithms run across real processes in the workspace's `tests/sync_*.rs`.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread::{self, JoinHandle};
use processing_sync::model::*;

fn check(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

#[test]
fn loom_lock_mutual_exclusion() {
    check(|| {
        let lock = Arc::new(lock_new());
        let cell = Arc::new(UnsafeCell::new(0u32));
        let ths: Vec<_> = (0..2)
            .map(|_| {
                let (lock, cell) = (lock.clone(), cell.clone());
                thread::spawn(move || {
                    assert!(lock_acquire(&lock));
                    // SAFETY: the lock makes this the only access (loom reports otherwise).
                    cell.with_mut(|p| unsafe { *p += 1 });
                    assert!(lock_release(&lock));
                })
            })
            .collect();
        for t in ths {
            t.join().unwrap();
        }
        // SAFETY: all threads joined.
        assert_eq!(cell.with(|p| unsafe { *p }), 2);
        assert!(
            !lock_release(&lock),
            "releasing an unlocked lock is refused"
        );
    });
}

#[test]
fn loom_rlock_recursion_and_exclusion() {
    check(|| {
        let lock = Arc::new(lock_new());
        let cell = Arc::new(UnsafeCell::new(0u32));
        let other = {
            let (lock, cell) = (lock.clone(), cell.clone());
            thread::spawn(move || {
                rlock_acquire(&lock);
                // SAFETY: guarded by the lock.
                cell.with_mut(|p| unsafe { *p += 1 });
                assert!(rlock_release(&lock));
            })
        };
        rlock_acquire(&lock);
        rlock_acquire(&lock);
        // SAFETY: guarded by the lock.
        cell.with_mut(|p| unsafe { *p += 1 });
        assert!(rlock_release(&lock));
        assert!(rlock_release(&lock));
        assert!(!rlock_release(&lock));
        other.join().unwrap();
        // SAFETY: all threads joined.
        assert_eq!(cell.with(|p| unsafe { *p }), 2);
    });
}

/// A lock, a condition and a flag guarded by the lock, with a thread running `waiter` on them
/// (holding the lock, which it releases before it returns).
#[allow(clippy::type_complexity)]
fn condition_with_waiter<R: Send + 'static>(
    waiter: impl FnOnce(&LockState, &ConditionState, &UnsafeCell<bool>) -> R + Send + 'static,
) -> (
    Arc<LockState>,
    Arc<ConditionState>,
    Arc<UnsafeCell<bool>>,
    JoinHandle<R>,
) {
    let lock = Arc::new(lock_new());
    let cond = Arc::new(ConditionState::new());
    let flag = Arc::new(UnsafeCell::new(false));
    let thread = {
        let (lock, cond, flag) = (lock.clone(), cond.clone(), flag.clone());
        thread::spawn(move || {
            rlock_acquire(&lock);
            let r = waiter(&lock, &cond, &flag);
            assert!(rlock_release(&lock));
            r
        })
    };
    (lock, cond, flag, thread)
}

#[test]
fn loom_condition_notify_is_not_lost() {
    check(|| {
        let (lock, cond, flag, waiter) = condition_with_waiter(|lock, cond, flag| {
            // SAFETY: guarded by the lock, which wait re-acquires before returning.
            while !flag.with(|p| unsafe { *p }) {
                cond_wait(cond, lock);
            }
        });
        rlock_acquire(&lock);
        // SAFETY: guarded by the lock.
        flag.with_mut(|p| unsafe { *p = true });
        cond_notify(&cond, 1);
        assert!(rlock_release(&lock));
        waiter.join().unwrap();
    });
}

#[test]
fn loom_condition_grant_matches_wakeup() {
    check(|| {
        let (lock, cond, entered, waiter) = condition_with_waiter(|lock, cond, entered| {
            // SAFETY: guarded by the lock.
            entered.with_mut(|p| unsafe { *p = true });
            // One wait whose deadline passes after its first sleep: notified or not.
            let notified = cond_wait_once(cond, lock);
            // SAFETY: guarded by the lock (re-acquired by wait).
            entered.with_mut(|p| unsafe { *p = false });
            notified
        });
        rlock_acquire(&lock);
        // SAFETY: guarded by the lock.
        let waiting = entered.with(|p| unsafe { *p });
        let granted = cond_notify(&cond, 1);
        assert!(rlock_release(&lock));
        let notified = waiter.join().unwrap();
        // `entered` is true exactly while the waiter is inside wait. A notify grants a
        // wake-up exactly then, and that waiter reports it; before it entered or after it
        // left, nothing is granted or left over.
        assert_eq!(granted, u32::from(waiting));
        assert_eq!(notified, waiting);
    });
}

#[test]
fn loom_semaphore_counts() {
    check(|| {
        let sem = Arc::new(SemaphoreState::new(1, 1));
        let cell = Arc::new(UnsafeCell::new(0u32));
        let ths: Vec<_> = (0..2)
            .map(|_| {
                let (sem, cell) = (sem.clone(), cell.clone());
                thread::spawn(move || {
                    sem_acquire(&sem);
                    // SAFETY: one permit makes this exclusive.
                    cell.with_mut(|p| unsafe { *p += 1 });
                    assert!(sem_release(&sem));
                })
            })
            .collect();
        for t in ths {
            t.join().unwrap();
        }
        assert!(
            !sem_release(&sem),
            "a bounded semaphore refuses a release past its bound"
        );
        // SAFETY: all threads joined.
        assert_eq!(cell.with(|p| unsafe { *p }), 2);
    });
}

#[test]
fn loom_event_wakes_waiter() {
    check(|| {
        let ev = Arc::new(EventState::new());
        let waiter = {
            let ev = ev.clone();
            thread::spawn(move || assert!(event_wait(&ev)))
        };
        event_set(&ev);
        waiter.join().unwrap();
    });
}

/// Runs `f` on `state` on a second thread and on this one: (this one's result, the other's).
fn on_two_threads<S, R>(state: &Arc<S>, f: fn(&S) -> R) -> (R, R)
where
    S: Send + Sync + 'static,
    R: Send + 'static,
{
    let other = {
        let state = state.clone();
        thread::spawn(move || f(&state))
    };
    let mine = f(state);
    (mine, other.join().unwrap())
}

#[test]
fn loom_barrier_indexes() {
    check(|| {
        let (mine, theirs) = on_two_threads(&Arc::new(BarrierState::new(2)), barrier_wait);
        let mut idx = [mine, theirs];
        idx.sort_unstable();
        assert_eq!(idx, [0, 1]);
    });
}

/// A waiter that leaves (a dropped `wait_async`) either took part in a completed pass or is
/// no longer counted: two of them never leave a count behind or disagree about the pass.
#[test]
fn loom_barrier_withdrawn_arrivals() {
    check(|| {
        let barrier = Arc::new(BarrierState::new(2));
        let (mine, theirs) = on_two_threads(&barrier, barrier_arrive_and_leave);
        assert_eq!(mine, theirs, "one saw the pass complete, the other did not");
        assert_eq!(barrier_n_waiting(&barrier), 0);
    });
}
