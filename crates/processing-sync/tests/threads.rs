//! The primitives across threads of one process (the root `tests/sync_*.rs` run the same
//! behaviours across processes).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use processing_core::codec;
use processing_sync::*;

#[path = "common/until_entered.rs"]
mod until_entered;

use until_entered::until_entered;

const SLACK: Duration = Duration::from_secs(5);

fn assert_about(elapsed: Duration, t: Duration) {
    assert!(elapsed >= t && elapsed < t + SLACK, "{elapsed:?} vs {t:?}");
}

#[test]
fn s01_lock_basics_threads() {
    let lock = Lock::new().unwrap();
    let g = lock.acquire().unwrap();
    assert!(lock.try_acquire().unwrap_err().is_would_block());
    let l2 = lock.clone();
    let t = Duration::from_millis(200);
    let start = Instant::now();
    let r = thread::spawn(move || {
        l2.acquire_timeout(t)
            .map(|_| ())
            .map_err(|e| e.is_timeout())
    })
    .join()
    .unwrap();
    assert_eq!(r, Err(true));
    assert_about(start.elapsed(), t);
    drop(g);
    assert!(lock.release().unwrap_err().is_not_locked());
    // Any thread may release a Lock.
    lock.acquire().unwrap().forget();
    let l3 = lock.clone();
    thread::spawn(move || l3.release().unwrap()).join().unwrap();
    assert!(!lock.is_locked());
}

#[test]
fn s02_rlock_threads() {
    let lock = RLock::new().unwrap();
    for _ in 0..3 {
        lock.acquire().unwrap().forget();
    }
    let l2 = lock.clone();
    assert!(
        thread::spawn(move || l2.release().unwrap_err().is_not_owner())
            .join()
            .unwrap()
    );
    let l3 = lock.clone();
    assert!(
        thread::spawn(move || l3.try_acquire().unwrap_err().is_would_block())
            .join()
            .unwrap()
    );
    for _ in 0..3 {
        lock.release().unwrap();
    }
    assert!(lock.release().unwrap_err().is_not_owner());
    let l4 = lock.clone();
    assert!(thread::spawn(move || l4.try_acquire().is_ok())
        .join()
        .unwrap());
}

#[test]
fn s03_guard_released_on_panic() {
    let lock = Lock::new().unwrap();
    let l2 = lock.clone();
    let r = thread::spawn(move || {
        let _g = l2.acquire().unwrap();
        panic!("boom");
    })
    .join();
    assert!(r.is_err());
    assert!(!lock.is_locked());
}

#[test]
fn s04_semaphores() {
    let sem = Semaphore::new(2).unwrap();
    sem.acquire().unwrap().forget();
    assert_eq!(sem.value(), 1);
    sem.try_acquire().unwrap().forget();
    assert!(sem.try_acquire().unwrap_err().is_would_block());
    for _ in 0..3 {
        sem.release().unwrap();
    }
    assert_eq!(sem.value(), 3);
    let b = BoundedSemaphore::new(2).unwrap();
    b.acquire().unwrap().forget();
    b.release().unwrap();
    assert!(b.release().unwrap_err().is_bound());
    assert_eq!(b.value(), 2);
}

#[test]
fn s04_counts_past_the_shared_word_are_refused() {
    // The shared layouts count in 32-bit words: the largest count is accepted, one more is
    // an error (never a truncated count).
    let max = u32::MAX as usize;
    assert_eq!(Semaphore::new(max).unwrap().value(), max);
    assert_eq!(BoundedSemaphore::new(max).unwrap().value(), max);
    if let Some(over) = max.checked_add(1) {
        assert!(Semaphore::new(over).unwrap_err().is_invalid_argument());
        assert!(BoundedSemaphore::new(over)
            .unwrap_err()
            .is_invalid_argument());
        assert!(Barrier::new(over).unwrap_err().is_invalid_argument());
    }
    assert!(Semaphore::new(max).unwrap().release().unwrap_err() == ReleaseError::Overflow);
    assert_eq!(Barrier::new(max).unwrap().parties(), max);
}

#[test]
fn s05_semaphore_zero() {
    let sem = Semaphore::new(0).unwrap();
    let start = Instant::now();
    assert!(sem.try_acquire().unwrap_err().is_would_block());
    let t = Duration::from_millis(200);
    assert!(sem.acquire_timeout(t).unwrap_err().is_timeout());
    assert_about(start.elapsed(), t);
    let s2 = sem.clone();
    let h = thread::spawn(move || s2.acquire().unwrap().forget());
    sem.release().unwrap();
    h.join().unwrap();
    assert_eq!(sem.value(), 0);
}

/// Starts `n` waiter threads: each registers in `entered` under the lock, waits once
/// (with `timeout`, if any) and then counts itself in `woken`.
fn start_waiters(
    cond: &Condition,
    n: usize,
    entered: &Value<u32>,
    woken: &Arc<AtomicUsize>,
    timeout: Option<Duration>,
) -> Vec<thread::JoinHandle<bool>> {
    (0..n)
        .map(|_| {
            let (c, e, w) = (cond.clone(), entered.clone(), woken.clone());
            thread::spawn(move || {
                let _g = c.acquire().unwrap();
                e.set(e.get() + 1);
                let r = match timeout {
                    None => c.wait().map(|_| true).unwrap(),
                    Some(t) => c.wait_timeout(t).unwrap(),
                };
                w.fetch_add(1, Ordering::SeqCst);
                r
            })
        })
        .collect()
}

fn until_woken(woken: &AtomicUsize, n: usize) {
    let start = Instant::now();
    while woken.load(Ordering::SeqCst) < n {
        assert!(start.elapsed() < SLACK, "waiters were not woken");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn s06_notify_wakes_one_threads() {
    let cond = Condition::new().unwrap();
    let entered = Value::new(0u32).unwrap();
    let woken = Arc::new(AtomicUsize::new(0));
    let hs = start_waiters(&cond, 3, &entered, &woken, None);
    drop(until_entered(&cond, &entered, 3));
    for expected in 1..=3 {
        let g = cond.acquire().unwrap();
        cond.notify().unwrap();
        drop(g);
        until_woken(&woken, expected);
        thread::sleep(Duration::from_millis(50));
        assert_eq!(
            woken.load(Ordering::SeqCst),
            expected,
            "one notify woke more than one waiter"
        );
    }
    for h in hs {
        assert!(h.join().unwrap());
    }
}

#[test]
fn s07_notify_all_and_n_threads() {
    let cond = Condition::new().unwrap();
    let entered = Value::new(0u32).unwrap();
    let woken = Arc::new(AtomicUsize::new(0));
    // Three waiters that time out first.
    let timed = start_waiters(&cond, 3, &entered, &woken, Some(Duration::from_millis(100)));
    drop(until_entered(&cond, &entered, 3));
    for h in timed {
        assert!(!h.join().unwrap());
    }
    assert_eq!(woken.swap(0, Ordering::SeqCst), 3);
    // Then five that wait for good: notify_n(2) wakes two, notify_all the other three.
    let hs = start_waiters(&cond, 5, &entered, &woken, None);
    let g = until_entered(&cond, &entered, 8);
    cond.notify_n(2).unwrap();
    drop(g);
    until_woken(&woken, 2);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(woken.load(Ordering::SeqCst), 2);
    let g = cond.acquire().unwrap();
    cond.notify_all().unwrap();
    drop(g);
    until_woken(&woken, 5);
    for h in hs {
        assert!(h.join().unwrap());
    }
    // Nobody is left waiting: a new waiter is not released by an old notify_all.
    let g = cond.acquire().unwrap();
    assert!(!cond.wait_timeout(Duration::from_millis(50)).unwrap());
    drop(g);
}

#[test]
fn s09_condition_needs_lock() {
    let cond = Condition::new().unwrap();
    assert!(cond.wait().unwrap_err().is_not_owner());
    assert!(cond
        .wait_timeout(Duration::ZERO)
        .unwrap_err()
        .is_not_owner());
    assert!(cond.notify_all().unwrap_err().is_not_owner());
    let g = cond.acquire().unwrap();
    let c2 = cond.clone();
    assert!(
        thread::spawn(move || c2.notify().unwrap_err().is_not_owner())
            .join()
            .unwrap()
    );
    drop(g);
}

#[test]
fn s08_wait_for_threads() {
    let cond = Condition::new().unwrap();
    let flag = Value::new(0u32).unwrap();
    let (c2, f2) = (cond.clone(), flag.clone());
    let h = thread::spawn(move || {
        let _g = c2.acquire().unwrap();
        c2.wait_for(|| f2.get() == 3).unwrap();
        f2.get()
    });
    for i in 1..=3 {
        thread::sleep(Duration::from_millis(20));
        let _g = cond.acquire().unwrap();
        flag.set(i);
        cond.notify_all().unwrap();
    }
    assert_eq!(h.join().unwrap(), 3);
    let _g = cond.acquire().unwrap();
    let t = Duration::from_millis(150);
    let start = Instant::now();
    assert!(!cond.wait_for_timeout(|| false, t).unwrap());
    assert_about(start.elapsed(), t);
    assert!(!cond.wait_timeout(t).unwrap());
}

#[test]
fn s10_event_threads() {
    let ev = Event::new().unwrap();
    assert!(!ev.is_set());
    let t = Duration::from_millis(100);
    let start = Instant::now();
    assert!(!ev.wait_timeout(t));
    assert_about(start.elapsed(), t);
    let e2 = ev.clone();
    let h = thread::spawn(move || e2.wait());
    thread::sleep(Duration::from_millis(20));
    ev.set();
    h.join().unwrap();
    assert!(ev.wait_timeout(Duration::ZERO));
    ev.clear();
    assert!(!ev.is_set());
}

static ACTIONS: AtomicUsize = AtomicUsize::new(0);
fn count_action() {
    ACTIONS.fetch_add(1, Ordering::SeqCst);
}

/// A thread waiting on `b`, once it waits.
fn one_waiting(b: &Barrier) -> thread::JoinHandle<Result<usize, BarrierError>> {
    let other = b.clone();
    let h = thread::spawn(move || other.wait());
    while b.n_waiting() < 1 {
        thread::sleep(Duration::from_millis(1));
    }
    h
}

#[test]
fn s11_barrier_threads() {
    let n = 4;
    let b = Barrier::with_action(n, count_action).unwrap();
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let b = b.clone();
            thread::spawn(move || (0..10).map(|_| b.wait().unwrap()).collect::<Vec<_>>())
        })
        .collect();
    let results: Vec<Vec<usize>> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    for pass in 0..10 {
        let mut idx: Vec<usize> = results.iter().map(|r| r[pass]).collect();
        idx.sort();
        assert_eq!(idx, vec![0, 1, 2, 3]);
    }
    assert_eq!(ACTIONS.load(Ordering::SeqCst), 10);

    // abort breaks waiters; reset makes it usable again.
    let h = one_waiting(&b);
    b.abort();
    assert!(h.join().unwrap().unwrap_err().is_broken());
    assert!(b.broken());
    assert!(b.wait().unwrap_err().is_broken());
    b.reset();
    assert!(!b.broken());
    let h = one_waiting(&b);
    b.reset();
    assert!(h.join().unwrap().unwrap_err().is_broken());
    assert!(!b.broken());

    // A timeout breaks it for everyone.
    let b4 = b.clone();
    let h = thread::spawn(move || b4.wait());
    let t = Duration::from_millis(100);
    let start = Instant::now();
    assert!(b.wait_timeout(t).unwrap_err().is_timeout());
    assert_about(start.elapsed(), t);
    assert!(h.join().unwrap().unwrap_err().is_broken());
    b.reset();

    let one = Barrier::new(1).unwrap();
    for _ in 0..3 {
        assert_eq!(one.wait().unwrap(), 0);
    }
}

#[test]
fn s12_contention_threads() {
    let v = Value::new(0u64).unwrap();
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let v = v.clone();
            thread::spawn(move || {
                for _ in 0..20_000 {
                    *v.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(v.get(), 80_000);
}

static OTHER_ACTIONS: AtomicUsize = AtomicUsize::new(0);
fn other_action() {
    OTHER_ACTIONS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn handles_round_trip() {
    let lock = Lock::new().unwrap();
    let back: Lock = codec::decode(&codec::encode(&lock).unwrap()).unwrap();
    let g = back.acquire().unwrap();
    assert!(lock.is_locked());
    drop(g);
    let b = Barrier::with_action(1, other_action).unwrap();
    let b2: Barrier = codec::decode(&codec::encode(&b).unwrap()).unwrap();
    b2.wait().unwrap();
    assert_eq!(OTHER_ACTIONS.load(Ordering::SeqCst), 1);
    let a = Array::<i16>::new(3).unwrap();
    let a2: Array<i16> = codec::decode(&codec::encode(&a).unwrap()).unwrap();
    a2.write(0, &[1, 2, 3]).unwrap();
    assert_eq!(a.to_vec(), vec![1, 2, 3]);
}
