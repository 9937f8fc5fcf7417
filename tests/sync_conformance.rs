//! Synchronisation conformance (S01–S12) across real processes, and threads where it
//! applies; plus the crashed-holder and killed-waiter guarantees.

mod support;

use support::start;

use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use processing::shm::RawValue;
use processing::sync::{
    AcquireError, Barrier, BarrierError, BoundedSemaphore, Condition, Event, Lock, RLock,
    RLockGuard, Semaphore, Value,
};
use processing::Process;

#[path = "../crates/processing-sync/tests/common/until_entered.rs"]
mod until_entered;

use until_entered::until_entered;

const SLACK: Duration = Duration::from_secs(5);
const T: Duration = Duration::from_millis(300);

fn assert_about(elapsed: Duration, t: Duration) {
    assert!(
        elapsed >= t && elapsed < t + SLACK,
        "elapsed {elapsed:?}, expected about {t:?}"
    );
}

/// Polls `cond` every few milliseconds until it holds (or fails the test after the slack).
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < SLACK * 2, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------- S01 Lock

fn s01_child((lock, t): (Lock, Duration)) -> (bool, bool, Duration, bool) {
    let try_failed = lock.try_acquire().err().is_some_and(|e| e.is_would_block());
    let start = Instant::now();
    let timed_out = lock
        .acquire_timeout(t)
        .err()
        .is_some_and(|e| e.is_timeout());
    let elapsed = start.elapsed();
    // Python's Lock may be released by anyone: release the parent's hold.
    let released = lock.release().is_ok();
    (try_failed, timed_out, elapsed, released)
}

#[test]
fn s01_lock_basics() {
    let lock = Lock::new().unwrap();
    let g = lock.acquire().unwrap();
    assert!(lock.try_acquire().unwrap_err().is_would_block());
    g.forget();
    let (try_failed, timed_out, elapsed, released) =
        start(s01_child, (lock.clone(), T)).join().unwrap();
    assert!(try_failed && timed_out && released);
    assert_about(elapsed, T);
    assert!(!lock.is_locked());
    assert!(lock.release().unwrap_err().is_not_locked());
    let _g = lock.acquire().unwrap();
}

fn hold_and_die((lock, held): (Lock, Event)) {
    lock.acquire().unwrap().forget();
    held.set();
    thread::sleep(Duration::from_secs(600));
}

fn hold_and_exit(lock: Lock) {
    lock.acquire().unwrap().forget();
    std::process::exit(0);
}

#[test]
fn s01_lock_owner_died_is_recovered() {
    // A holder that exits without releasing.
    let lock = Lock::new().unwrap();
    start(hold_and_exit, lock.clone()).join().unwrap_or(());
    let start_t = Instant::now();
    let err = lock.acquire_timeout(SLACK).unwrap_err();
    assert!(err.is_owner_died(), "{err:?}");
    drop(err.into_guard());
    assert!(start_t.elapsed() < SLACK);
    assert!(!lock.is_locked());

    // A holder killed while the parent is already blocked waiting.
    let held = Event::new().unwrap();
    let mut p = start(hold_and_die, (lock.clone(), held.clone()));
    held.wait();
    let l2 = lock.clone();
    let waiter = thread::spawn(move || l2.acquire().map(|_| ()).map_err(|e| e.is_owner_died()));
    thread::sleep(Duration::from_millis(150));
    p.kill().unwrap();
    let _ = p.join();
    assert_eq!(waiter.join().unwrap(), Err(true));
    // And the lock works normally afterwards.
    assert!(lock.acquire_timeout(SLACK).is_ok());
}

fn rlock_hold_and_die((lock, held): (RLock, Event)) {
    lock.acquire().unwrap().forget();
    lock.acquire().unwrap().forget();
    held.set();
    thread::sleep(Duration::from_secs(600));
}

#[test]
fn s02_rlock_owner_died_is_recovered() {
    let lock = RLock::new().unwrap();
    let held = Event::new().unwrap();
    let mut p = start(rlock_hold_and_die, (lock.clone(), held.clone()));
    held.wait();
    p.kill().unwrap();
    let _ = p.join();
    let g = match lock.acquire_timeout(SLACK) {
        Err(AcquireError::OwnerDied(g)) => g,
        other => panic!("expected OwnerDied, got {other:?}"),
    };
    // Recovered at depth one: one release frees it.
    drop(g);
    assert!(lock.release().unwrap_err().is_not_owner());
}

// ---------------------------------------------------------------- S02 RLock

fn s02_child(lock: RLock) -> (bool, bool) {
    (
        lock.release().unwrap_err().is_not_owner(),
        lock.try_acquire().err().is_some_and(|e| e.is_would_block()),
    )
}

#[test]
fn s02_rlock_basics() {
    let lock = RLock::new().unwrap();
    for _ in 0..3 {
        lock.acquire().unwrap().forget();
    }
    assert_eq!(start(s02_child, lock.clone()).join().unwrap(), (true, true));
    for _ in 0..3 {
        lock.release().unwrap();
    }
    assert!(lock.release().unwrap_err().is_not_owner());
    // Free again: another process gets it.
    fn grab(lock: RLock) -> bool {
        lock.try_acquire().is_ok()
    }
    assert!(start(grab, lock).join().unwrap());
}

// ---------------------------------------------------------------- S03 guards

fn panic_holding(lock: Lock) {
    let _g = lock.acquire().unwrap();
    panic!("child panics while holding the lock");
}

#[test]
fn s03_guards_release_on_drop_and_panic() {
    let lock = Lock::new().unwrap();
    {
        let _g = lock.acquire().unwrap();
        assert!(lock.is_locked());
    }
    assert!(!lock.is_locked());
    assert!(start(panic_holding, lock.clone()).join().is_err());
    // Released by unwinding, not recovered from a dead owner.
    assert!(lock.try_acquire().is_ok());
    let l2 = lock.clone();
    assert!(thread::spawn(move || {
        let _g = l2.acquire().unwrap();
        panic!("thread panics");
    })
    .join()
    .is_err());
    assert!(lock.try_acquire().is_ok());
}

// ---------------------------------------------------------------- S04, S05 semaphores

fn sem_take_two(sem: Semaphore) -> (usize, bool) {
    sem.acquire().unwrap().forget();
    sem.acquire().unwrap().forget();
    (
        sem.value(),
        sem.try_acquire().err().is_some_and(|e| e.is_would_block()),
    )
}

fn bounded_release(sem: BoundedSemaphore) -> bool {
    sem.release().unwrap_err().is_bound()
}

#[test]
fn s04_semaphore_counts() {
    let sem = Semaphore::new(2).unwrap();
    assert_eq!(start(sem_take_two, sem.clone()).join().unwrap(), (0, true));
    assert!(sem.try_acquire().unwrap_err().is_would_block());
    for _ in 0..3 {
        sem.release().unwrap();
    }
    assert_eq!(
        sem.value(),
        3,
        "an unbounded semaphore goes past its initial value"
    );
    let b = BoundedSemaphore::new(2).unwrap();
    b.acquire().unwrap().forget();
    b.release().unwrap();
    assert!(start(bounded_release, b.clone()).join().unwrap());
    assert_eq!(b.value(), 2);
}

fn sem_timeout((sem, t): (Semaphore, Duration)) -> (bool, bool, Duration) {
    let try_failed = sem.try_acquire().err().is_some_and(|e| e.is_would_block());
    let start = Instant::now();
    let timed_out = sem.acquire_timeout(t).err().is_some_and(|e| e.is_timeout());
    (try_failed, timed_out, start.elapsed())
}

fn sem_acquire_one(sem: Semaphore) -> usize {
    sem.acquire().unwrap().forget();
    sem.value()
}

#[test]
fn s05_semaphore_zero_times_out() {
    let sem = Semaphore::new(0).unwrap();
    let (try_failed, timed_out, elapsed) = start(sem_timeout, (sem.clone(), T)).join().unwrap();
    assert!(try_failed && timed_out);
    assert_about(elapsed, T);
    // A release in the parent wakes a child blocked in acquire.
    let mut p = start(sem_acquire_one, sem.clone());
    thread::sleep(Duration::from_millis(50));
    sem.release().unwrap();
    assert_eq!(p.join().unwrap(), 0);
}

// ---------------------------------------------------------------- S06–S09 Condition

/// Waits once on `cond` after counting itself in `entered` under the lock; counts itself in
/// `woken` afterwards. Returns whether it was notified.
fn cond_waiter(
    (cond, entered, woken, timeout): (Condition, Value<u32>, Value<u32>, Option<Duration>),
) -> bool {
    let _g = cond.acquire().unwrap();
    entered.set(entered.get() + 1);
    let notified = match timeout {
        None => cond.wait().map(|_| true).unwrap(),
        Some(t) => cond.wait_timeout(t).unwrap(),
    };
    *woken.lock().unwrap() += 1;
    notified
}

fn waiters(
    cond: &Condition,
    entered: &Value<u32>,
    woken: &Value<u32>,
    timeout: Option<Duration>,
    processes: usize,
    threads: usize,
) -> (Vec<Process<bool>>, Vec<thread::JoinHandle<bool>>) {
    let ps = (0..processes)
        .map(|_| {
            start(
                cond_waiter,
                (cond.clone(), entered.clone(), woken.clone(), timeout),
            )
        })
        .collect();
    let ts = (0..threads)
        .map(|_| {
            let args = (cond.clone(), entered.clone(), woken.clone(), timeout);
            thread::spawn(move || cond_waiter(args))
        })
        .collect();
    (ps, ts)
}

/// A fresh condition with the counters its waiters keep: how many entered `wait`, how many
/// woke.
fn counted_condition() -> (Condition, Value<u32>, Value<u32>) {
    let cond = Condition::new().unwrap();
    (cond, Value::new(0u32).unwrap(), Value::new(0u32).unwrap())
}

fn settle_at(woken: &Value<u32>, n: u32) {
    until("wake-ups", || woken.get() >= n);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(woken.get(), n, "more waiters woke than were notified");
}

#[test]
fn s06_notify_wakes_exactly_one() {
    let (cond, entered, woken) = counted_condition();
    let (ps, ts) = waiters(&cond, &entered, &woken, None, 2, 2);
    drop(until_entered(&cond, &entered, 4));
    for k in 1..=4 {
        let g = cond.acquire().unwrap();
        cond.notify().unwrap();
        drop(g);
        settle_at(&woken, k);
    }
    for mut p in ps {
        assert!(p.join().unwrap());
    }
    for t in ts {
        assert!(t.join().unwrap());
    }
}

#[test]
fn s07_notify_all_skips_timed_out_and_notify_n() {
    let (cond, entered, woken) = counted_condition();
    // Three waiters that time out before anyone notifies.
    let (ps, ts) = waiters(&cond, &entered, &woken, Some(T), 2, 1);
    drop(until_entered(&cond, &entered, 3));
    for mut p in ps {
        assert!(!p.join().unwrap());
    }
    for t in ts {
        assert!(!t.join().unwrap());
    }
    woken.set(0);
    // Six that wait for good: notify_n(2) wakes two; notify_all the remaining four and no
    // phantom from the timed-out ones.
    let (ps, ts) = waiters(&cond, &entered, &woken, None, 3, 3);
    let g = until_entered(&cond, &entered, 9);
    cond.notify_n(2).unwrap();
    drop(g);
    settle_at(&woken, 2);
    let g = cond.acquire().unwrap();
    cond.notify_all().unwrap();
    drop(g);
    settle_at(&woken, 6);
    for mut p in ps {
        assert!(p.join().unwrap());
    }
    for t in ts {
        assert!(t.join().unwrap());
    }
    let _g = cond.acquire().unwrap();
    assert!(
        !cond.wait_timeout(Duration::from_millis(50)).unwrap(),
        "a stale notification was left over"
    );
}

fn make_true((cond, flag): (Condition, Value<u32>)) {
    for i in 1..=3 {
        thread::sleep(Duration::from_millis(30));
        let _g = cond.acquire().unwrap();
        flag.set(i);
        cond.notify_all().unwrap();
    }
}

#[test]
fn s08_wait_timeout_and_wait_for() {
    let cond = Condition::new().unwrap();
    let flag = Value::new(0u32).unwrap();
    {
        let _g = cond.acquire().unwrap();
        let start_t = Instant::now();
        assert!(!cond.wait_timeout(T).unwrap());
        assert_about(start_t.elapsed(), T);
    }
    let mut p = start(make_true, (cond.clone(), flag.clone()));
    {
        let _g = cond.acquire().unwrap();
        cond.wait_for(|| flag.get() == 3).unwrap();
        assert_eq!(flag.get(), 3);
    }
    p.join().unwrap();
    let _g = cond.acquire().unwrap();
    let start_t = Instant::now();
    assert!(!cond.wait_for_timeout(|| flag.get() == 4, T).unwrap());
    assert_about(start_t.elapsed(), T);
}

fn misuse(cond: Condition) -> (bool, bool, bool) {
    (
        cond.wait().unwrap_err().is_not_owner(),
        cond.wait_timeout(Duration::ZERO)
            .unwrap_err()
            .is_not_owner(),
        cond.notify().unwrap_err().is_not_owner(),
    )
}

#[test]
fn s09_condition_without_lock_is_an_error() {
    let cond = Condition::new().unwrap();
    assert_eq!(misuse(cond.clone()), (true, true, true));
    // Held by the parent is not held by the child.
    let _g = cond.acquire().unwrap();
    assert_eq!(
        start(misuse, cond.clone()).join().unwrap(),
        (true, true, true)
    );
    assert!(cond.notify_all().is_ok());
}

// ---------------------------------------------------------------- S10 Event

fn set_later(ev: Event) {
    thread::sleep(Duration::from_millis(50));
    ev.set();
}

fn wait_event(ev: Event) -> bool {
    ev.wait_timeout(SLACK * 2)
}

#[test]
fn s10_event() {
    let ev = Event::new().unwrap();
    assert!(!ev.is_set());
    let start_t = Instant::now();
    assert!(!ev.wait_timeout(T));
    assert_about(start_t.elapsed(), T);
    let waiters: Vec<_> = (0..2).map(|_| start(wait_event, ev.clone())).collect();
    let mut setter = start(set_later, ev.clone());
    let start_t = Instant::now();
    ev.wait();
    assert!(start_t.elapsed() < SLACK);
    setter.join().unwrap();
    for mut w in waiters {
        assert!(w.join().unwrap());
    }
    let start_t = Instant::now();
    assert!(ev.wait_timeout(SLACK));
    assert!(
        start_t.elapsed() < Duration::from_secs(1),
        "wait on a set event returns at once"
    );
    ev.clear();
    assert!(!ev.is_set());
}

// ---------------------------------------------------------------- S11 Barrier

/// The counter the barrier action bumps, attached in each process before it waits.
static ACTION_COUNTER: OnceLock<RawValue<u32>> = OnceLock::new();

fn count_pass() {
    if let Some(c) = ACTION_COUNTER.get() {
        c.set(c.get() + 1);
    }
}

fn barrier_party((barrier, counter, passes): (Barrier, RawValue<u32>, usize)) -> Vec<usize> {
    let _ = ACTION_COUNTER.set(counter);
    (0..passes).map(|_| barrier.wait().unwrap()).collect()
}

fn barrier_wait_once(barrier: Barrier) -> Result<usize, BarrierError> {
    barrier.wait()
}

#[test]
fn s11_barrier() {
    const N: usize = 3;
    const PASSES: usize = 10;
    let counter = RawValue::new(0u32).unwrap();
    let _ = ACTION_COUNTER.set(counter.clone());
    let barrier = Barrier::with_action(N, count_pass).unwrap();
    assert_eq!(barrier.parties(), N);
    let ps: Vec<_> = (0..N - 1)
        .map(|_| start(barrier_party, (barrier.clone(), counter.clone(), PASSES)))
        .collect();
    let mine: Vec<usize> = (0..PASSES).map(|_| barrier.wait().unwrap()).collect();
    let mut all = vec![mine];
    for mut p in ps {
        all.push(p.join().unwrap());
    }
    for pass in 0..PASSES {
        let mut idx: Vec<usize> = all.iter().map(|v| v[pass]).collect();
        idx.sort_unstable();
        assert_eq!(idx, (0..N).collect::<Vec<_>>(), "pass {pass}");
    }
    assert_eq!(
        counter.get(),
        PASSES as u32,
        "the action runs once per pass"
    );

    // abort breaks a waiter in another process; reset makes the barrier usable again.
    let mut p = start(barrier_wait_once, barrier.clone());
    until("a waiter", || barrier.n_waiting() == 1);
    barrier.abort();
    assert_eq!(p.join().unwrap(), Err(BarrierError::Broken));
    assert!(barrier.broken());
    assert_eq!(barrier.wait(), Err(BarrierError::Broken));
    barrier.reset();
    assert!(!barrier.broken());
    let mut p = start(barrier_wait_once, barrier.clone());
    until("a waiter", || barrier.n_waiting() == 1);
    barrier.reset();
    assert_eq!(p.join().unwrap(), Err(BarrierError::Broken));
    assert!(!barrier.broken());

    // A timeout breaks it for everyone.
    let mut p = start(barrier_wait_once, barrier.clone());
    until("a waiter", || barrier.n_waiting() == 1);
    let start_t = Instant::now();
    assert_eq!(barrier.wait_timeout(T), Err(BarrierError::Timeout));
    assert_about(start_t.elapsed(), T);
    assert_eq!(p.join().unwrap(), Err(BarrierError::Broken));
    barrier.reset();

    let one = Barrier::new(1).unwrap();
    assert_eq!((one.wait(), one.wait()), (Ok(0), Ok(0)));
}

// ---------------------------------------------------------------- S12 contention

fn increments((v, m): (Value<i64>, u32)) {
    for _ in 0..m {
        *v.lock().unwrap() += 1;
    }
}

#[test]
fn s12_contention_sums_exactly() {
    const N: usize = 4;
    const M: u32 = 20_000;
    let v = Value::new(0i64).unwrap();
    let ps: Vec<_> = (0..N).map(|_| start(increments, (v.clone(), M))).collect();
    let ts: Vec<_> = (0..2)
        .map(|_| {
            let v = v.clone();
            thread::spawn(move || increments((v, M)))
        })
        .collect();
    for mut p in ps {
        p.join().unwrap();
    }
    for t in ts {
        t.join().unwrap();
    }
    assert_eq!(v.get(), (N as i64 + 2) * M as i64);
}

// ---------------------------------------------------------------- killed waiters

fn sem_waiter((sem, ready): (Semaphore, Event)) {
    ready.set();
    sem.acquire().unwrap().forget();
}

fn event_waiter((ev, ready): (Event, Event)) {
    ready.set();
    ev.wait();
}

fn cond_sleeper((cond, entered): (Condition, Value<u32>)) {
    let _g = cond.acquire().unwrap();
    entered.set(entered.get() + 1);
    let _ = cond.wait();
}

fn kill(mut p: Process<()>) {
    p.kill().unwrap();
    let _ = p.join();
}

#[test]
fn s13_killed_waiters_leave_primitives_usable() {
    // Semaphore.
    let sem = Semaphore::new(0).unwrap();
    let ready = Event::new().unwrap();
    let p = start(sem_waiter, (sem.clone(), ready.clone()));
    ready.wait();
    thread::sleep(Duration::from_millis(50));
    kill(p);
    sem.release().unwrap();
    assert!(sem.acquire_timeout(SLACK).is_ok());

    // Event.
    let ev = Event::new().unwrap();
    let ready = Event::new().unwrap();
    let p = start(event_waiter, (ev.clone(), ready.clone()));
    ready.wait();
    thread::sleep(Duration::from_millis(50));
    kill(p);
    ev.set();
    assert!(ev.wait_timeout(Duration::ZERO));

    // Condition: the dead waiter is not counted by later notifications.
    let cond = Condition::new().unwrap();
    let entered = Value::new(0u32).unwrap();
    let p = start(cond_sleeper, (cond.clone(), entered.clone()));
    drop(until_entered(&cond, &entered, 1));
    kill(p);
    let woken = Value::new(0u32).unwrap();
    let (ps, _) = waiters(&cond, &entered, &woken, None, 1, 0);
    let g = until_entered(&cond, &entered, 2);
    cond.notify().unwrap();
    drop(g);
    for mut p in ps {
        assert!(p.join().unwrap(), "the live waiter got the notification");
    }
    let _g = cond.acquire().unwrap();
    cond.notify_all().unwrap();
    assert!(
        !cond.wait_timeout(Duration::from_millis(50)).unwrap(),
        "no grant left for the dead waiter"
    );
    drop(_g);

    // Barrier: a dead party breaks the pass instead of wedging it.
    let barrier = Barrier::new(3).unwrap();
    let p = start(barrier_wait_once, barrier.clone());
    until("a waiter", || barrier.n_waiting() == 1);
    let mut p2 = start(barrier_wait_once, barrier.clone());
    until("two waiters", || barrier.n_waiting() == 2);
    let mut killed = p;
    killed.kill().unwrap();
    let _ = killed.join();
    assert_eq!(p2.join().unwrap(), Err(BarrierError::Broken));
    barrier.reset();
    let b2 = barrier.clone();
    let t = thread::spawn(move || b2.wait());
    let mut p3 = start(barrier_wait_once, barrier.clone());
    let mine = barrier.wait().unwrap();
    let mut idx = vec![
        mine,
        t.join().unwrap().unwrap(),
        p3.join().unwrap().unwrap(),
    ];
    idx.sort_unstable();
    assert_eq!(idx, vec![0, 1, 2]);
}

// ---------------------------------------------------------------- threads only

#[test]
fn s06_notify_counts_across_threads() {
    let (cond, entered, woken) = counted_condition();
    let (_, ts) = waiters(&cond, &entered, &woken, None, 0, 3);
    drop(until_entered(&cond, &entered, 3));
    let n = Arc::new(AtomicUsize::new(0));
    for k in 1..=3 {
        let g = cond.acquire().unwrap();
        cond.notify().unwrap();
        drop(g);
        settle_at(&woken, k);
        n.fetch_add(1, AtomicOrdering::SeqCst);
    }
    for t in ts {
        assert!(t.join().unwrap());
    }
}
