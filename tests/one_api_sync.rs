//! One API, synchronisation (A02, A04): the process-shared primitives (`processing::…`) and
//! their thread twins (`processing::dummy::…`) answer alike.
//!
//! `same_source!` expands ONE block twice, once under `use processing::{…}` and once under
//! `use processing::dummy::{…}`: that it compiles proves the call sites are unchanged (the
//! block also pins each method's signature as a `fn` pointer type). Each row's body runs
//! against both, across a real child process for the direct objects (a thread for the twin),
//! checks its outcomes as it goes, and returns a transcript of them; the test asserts the two
//! transcripts are equal (the same errors, the same counts).

use std::time::Duration;

/// A wait that must time out.
const T: Duration = Duration::from_millis(100);
/// A generous bound on a wait that must succeed (a loaded machine is slow, never this slow).
const SLACK: Duration = Duration::from_secs(20);

macro_rules! same_source {
    ($($body:tt)*) => {
        /// The direct, process-shared objects; children are processes.
        mod direct {
            #[allow(unused_imports)]
            use processing::{
                Array, ArrayGuard, Barrier, BoundedSemaphore, Condition, Event, Lock, LockGuard,
                Process, RLock, RLockGuard, Semaphore, SemaphoreGuard, Value, ValueGuard,
            };
            $($body)*
        }
        /// The thread twins; children are threads.
        mod twin {
            #[allow(unused_imports)]
            use processing::dummy::{
                Array, ArrayGuard, Barrier, BoundedSemaphore, Condition, Event, Lock, LockGuard,
                Process, RLock, RLockGuard, Semaphore, SemaphoreGuard, Value, ValueGuard,
            };
            $($body)*
        }
    };
}

same_source! {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use processing::sync::{AcquireError, BarrierError, ConditionError, ReleaseError, SyncError};

    use super::{SLACK, T};

    /// Starts `f(args)` as a child (a process, or a thread for the twin).
    macro_rules! start {
        ($f:expr, $args:expr) => {{
            let mut p = Process::new($f, $args);
            p.start().expect("start child");
            p
        }};
    }

    /// What every acquire returns.
    type Acquired<G> = Result<G, AcquireError<G>>;

    /// `Ok`, or the error's variant (a guard it carries is not part of the outcome).
    fn outcome<G>(r: Result<G, AcquireError<G>>) -> String {
        match r {
            Ok(_) => "Ok".into(),
            Err(e) => format!("{:?}", e.map_guard(|_| ())),
        }
    }

    // ------------------------------------------------------------------------------ A02

    /// Holds `lock` until `go` is set; `held` tells the parent it holds it.
    fn hold_lock((lock, held, go): (Lock, Event, Event)) -> bool {
        let guard = lock.acquire().expect("child acquire");
        held.set();
        let went = go.wait_timeout(SLACK);
        drop(guard);
        went
    }

    /// From another process (thread): the outcome of `try_acquire` and of `release` on an
    /// RLock the parent holds.
    fn probe_rlock(lock: RLock) -> (String, String) {
        let tried = outcome(lock.try_acquire());
        let released = format!("{:?}", lock.release());
        (tried, released)
    }

    /// Takes one permit for good (the guard is forgotten).
    fn take_permit(sem: Semaphore) -> usize {
        sem.acquire().expect("child acquire").forget();
        sem.value()
    }

    pub fn a02() -> Vec<String> {
        // The signatures, as `fn` pointer types: a mismatch does not compile.
        let _: fn() -> Result<Lock, SyncError> = Lock::new;
        let _: fn(&Lock) -> Result<LockGuard<'_>, AcquireError<LockGuard<'_>>> = Lock::acquire;
        let _: fn(&Lock) -> Result<LockGuard<'_>, AcquireError<LockGuard<'_>>> = Lock::try_acquire;
        let _: fn(&Lock, Duration) -> Result<LockGuard<'_>, AcquireError<LockGuard<'_>>> =
            Lock::acquire_timeout;
        let _: fn(&Lock) -> Result<(), ReleaseError> = Lock::release;
        let _: fn(&RLock, Duration) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> =
            RLock::acquire_timeout;
        let _: fn(&RLock) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> =
            RLock::try_acquire;
        let _: fn(usize) -> Result<Semaphore, SyncError> = Semaphore::new;
        let _: fn(usize) -> Result<BoundedSemaphore, SyncError> = BoundedSemaphore::new;
        let _: fn(&Semaphore) -> Result<SemaphoreGuard<'_>, AcquireError<SemaphoreGuard<'_>>> =
            Semaphore::acquire;
        let _: fn(
            &BoundedSemaphore,
            Duration,
        ) -> Result<SemaphoreGuard<'_>, AcquireError<SemaphoreGuard<'_>>> =
            BoundedSemaphore::acquire_timeout;
        let _: fn(&Semaphore) -> usize = Semaphore::value;

        let mut log = Vec::new();

        // Lock held by a child: try_acquire is WouldBlock, acquire_timeout is Timeout.
        let lock = Lock::new().unwrap();
        let (held, go) = (Event::new().unwrap(), Event::new().unwrap());
        let mut child = start!(hold_lock, (lock.clone(), held.clone(), go.clone()));
        assert!(held.wait_timeout(SLACK), "the child never took the lock");
        let tried = lock.try_acquire();
        assert!(tried.as_ref().unwrap_err().is_would_block());
        log.push(format!("lock try_acquire held: {}", outcome(tried)));
        let t0 = Instant::now();
        let timed = lock.acquire_timeout(T);
        assert!(t0.elapsed() >= T);
        assert!(timed.as_ref().unwrap_err().is_timeout());
        log.push(format!("lock acquire_timeout held: {}", outcome(timed)));
        go.set();
        assert!(child.join().unwrap());
        // Released by the child's guard: a second acquire succeeds; ours releases on drop.
        {
            let _guard = lock.acquire_timeout(SLACK).expect("the child's guard released");
            assert!(lock.is_locked());
        }
        assert!(!lock.is_locked());
        log.push(format!("lock try_acquire free: {}", outcome(lock.try_acquire())));
        assert!(!lock.is_locked(), "the try_acquire guard released on drop");
        // Release of an unlocked lock; an explicit release of a guard reports.
        let err = lock.release().unwrap_err();
        assert_eq!(err, ReleaseError::NotLocked);
        log.push(format!("lock release unlocked: {err:?}"));
        let guard = lock.acquire().unwrap();
        log.push(format!("lock guard release: {:?}", guard.release()));
        assert!(!lock.is_locked());
        // A zero timeout is one attempt.
        lock.acquire().unwrap().forget();
        let zero = outcome(lock.acquire_timeout(Duration::ZERO));
        log.push(format!("lock acquire_timeout zero: {zero}"));
        lock.release().unwrap();

        // RLock: reentrant for its thread, refused to others (and their releases too).
        let rlock = RLock::new().unwrap();
        let a = rlock.acquire().unwrap();
        let b = rlock.try_acquire().expect("reentrant try_acquire");
        let c = rlock.acquire_timeout(T).expect("reentrant acquire_timeout");
        let (tried, released) = start!(probe_rlock, rlock.clone()).join().unwrap();
        assert_eq!(tried, "WouldBlock");
        log.push(format!("rlock from another: {tried}, {released}"));
        drop((c, b));
        assert!(rlock.is_owned());
        drop(a);
        assert!(!rlock.is_owned());
        let err = rlock.release().unwrap_err();
        assert_eq!(err, ReleaseError::NotOwner);
        log.push(format!("rlock release unowned: {err:?}"));
        let (tried, _) = start!(probe_rlock, rlock.clone()).join().unwrap();
        log.push(format!("rlock from another, free: {tried}"));

        // Semaphore: permits, WouldBlock, Timeout, a child's permit, counts as usize.
        let sem = Semaphore::new(2).unwrap();
        let one = sem.acquire().unwrap();
        assert_eq!(start!(take_permit, sem.clone()).join().unwrap(), 0);
        log.push(format!("semaphore try_acquire empty: {}", outcome(sem.try_acquire())));
        log.push(format!("semaphore acquire_timeout empty: {}", outcome(sem.acquire_timeout(T))));
        drop(one);
        let value: usize = sem.value();
        assert_eq!(value, 1);
        sem.release().unwrap();
        sem.release().unwrap(); // past the initial value: a plain semaphore allows it
        log.push(format!("semaphore value: {}", sem.value()));
        let over = u32::MAX as usize;
        log.push(format!("semaphore u32::MAX: {:?}", Semaphore::new(over).map(|s| s.value())));
        if let Some(over) = over.checked_add(1) {
            assert!(Semaphore::new(over).unwrap_err().is_invalid_argument());
            assert!(BoundedSemaphore::new(over).unwrap_err().is_invalid_argument());
        }
        let full = Semaphore::new(over).unwrap();
        log.push(format!("semaphore overflow: {:?}", full.release()));

        // BoundedSemaphore: over-release is Bound, a guard returns its permit.
        let bounded = BoundedSemaphore::new(1).unwrap();
        assert!(BoundedSemaphore::new(0).unwrap_err().is_invalid_argument());
        {
            let _g = bounded.acquire_timeout(SLACK).unwrap();
            log.push(format!("bounded try_acquire empty: {}", outcome(bounded.try_acquire())));
        }
        assert_eq!(bounded.value(), 1);
        let err = bounded.release().unwrap_err();
        assert_eq!(err, ReleaseError::Bound);
        log.push(format!("bounded over-release: {err:?}"));

        // Value and Array: a guard that dereferences to the data, one-copy accessors under
        // the lock, a child's update seen by the parent, the same range errors.
        let _: fn(&Value<u64>) -> Acquired<ValueGuard<'_, u64>> = Value::lock;
        let _: fn(&Array<u32>) -> Acquired<ArrayGuard<'_, u32>> = Array::lock;
        let _: fn(&Value<u64>) -> &Lock = Value::get_lock;
        let value = Value::new(1u64).unwrap();
        *value.lock().unwrap() += 1;
        start!(bump, value.clone()).join().unwrap();
        value.set(value.get() * 2);
        assert_eq!(value.get(), 6, "the child's increment is seen");
        log.push(format!("value: {}", value.get()));
        {
            let _g = value.lock().unwrap();
            log.push(format!("value's lock held: {}", outcome(value.get_lock().try_acquire())));
        }
        let array = Array::<u32>::from_slice(&[1, 2, 3]).unwrap();
        {
            let mut items = array.lock().unwrap();
            items[0] = 7;
        }
        log.push(format!("array: {:?} {:?} {:?}", array.to_vec(), array.get(2), array.get(3)));
        log.push(format!("array set out of range: {:?}", array.set(3, 0)));
        log.push(format!("array slice: {:?} {:?}", array.slice(1..), array.slice(2..5)));
        let (fits, past) = (array.write(1, &[8, 9]), array.write(2, &[0, 0]));
        log.push(format!("array write: {fits:?} {past:?}"));
        assert_eq!(array.to_vec(), [7, 8, 9]);
        let (len, empty) = (array.len(), array.is_empty());
        log.push(format!("array after: {:?} len {len} {empty}", array.to_vec()));
        log
    }

    fn bump(value: Value<u64>) {
        *value.lock().expect("child lock") += 1;
    }

    // ------------------------------------------------------------------------------ A04

    /// Waits on `cond` (telling the parent through `ready` once it holds the lock, so the
    /// parent's acquire means it waits); tells `done` when woken. Returns whether notified.
    fn cond_waiter((cond, ready, done): (Condition, Semaphore, Semaphore)) -> bool {
        let guard = cond.acquire().expect("child acquire");
        ready.release().unwrap();
        let notified = cond.wait_timeout(SLACK * 2).expect("child wait");
        done.release().unwrap();
        drop(guard);
        notified
    }

    fn set_event(ev: Event) {
        ev.set();
    }

    fn party(barrier: Barrier) -> Result<usize, BarrierError> {
        barrier.wait_timeout(SLACK)
    }

    /// Arrives at the barrier and reports how it ended (to see an abort from outside).
    fn lone_party((barrier, arrived): (Barrier, Event)) -> Result<usize, BarrierError> {
        arrived.set();
        barrier.wait()
    }

    pub fn a04() -> Vec<String> {
        let _: fn(&Condition) -> Result<(), ConditionError> = Condition::wait;
        let _: fn(&Condition, Duration) -> Result<bool, ConditionError> = Condition::wait_timeout;
        let _: fn(&Condition, usize) -> Result<(), ConditionError> = Condition::notify_n;
        let _: fn(&Condition) -> Result<(), ConditionError> = Condition::notify_all;
        let _: fn(&Condition) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> =
            Condition::try_acquire;
        let _: fn(RLock) -> Result<Condition, SyncError> = Condition::with_lock;
        let _: fn(&Event) = Event::set;
        let _: fn(&Event) -> bool = Event::is_set;
        let _: fn(&Event, Duration) -> bool = Event::wait_timeout;
        let _: fn(usize) -> Result<Barrier, SyncError> = Barrier::new;
        let _: fn(&Barrier) -> Result<usize, BarrierError> = Barrier::wait;
        let _: fn(&Barrier, Duration) -> Result<usize, BarrierError> = Barrier::wait_timeout;
        let _: fn(&Barrier) -> usize = Barrier::parties;
        let _: fn(&Barrier) -> usize = Barrier::n_waiting;
        let _: fn(&Barrier) -> bool = Barrier::broken;

        let mut log = Vec::new();

        // Condition: NotOwner without the lock, a timed-out wait is false.
        let cond = Condition::new().unwrap();
        let err = cond.notify().unwrap_err();
        assert_eq!(err, ConditionError::NotOwner);
        log.push(format!("condition notify unowned: {err:?}"));
        log.push(format!("condition wait unowned: {:?}", cond.wait_timeout(T)));
        {
            let _g = cond.acquire().unwrap();
            let t0 = Instant::now();
            log.push(format!("condition wait_timeout: {:?}", cond.wait_timeout(T)));
            assert!(t0.elapsed() >= T);
            assert!(cond.lock().is_owned(), "the lock is held again after the wait");
            let waited = cond.wait_for_timeout(|| false, T);
            log.push(format!("condition wait_for_timeout: {waited:?}"));
        }
        // notify_n(2) wakes exactly two of three waiting children, notify_all the third.
        let (ready, done) = (Semaphore::new(0).unwrap(), Semaphore::new(0).unwrap());
        let children: Vec<_> = (0..3)
            .map(|_| start!(cond_waiter, (cond.clone(), ready.clone(), done.clone())))
            .collect();
        for _ in 0..3 {
            ready.acquire_timeout(SLACK).expect("a child never waited").forget();
        }
        {
            let _g = cond.acquire().unwrap(); // every child waits now (each let the lock go)
            cond.notify_n(2usize).unwrap();
        }
        for _ in 0..2 {
            done.acquire_timeout(SLACK).expect("notify_n woke fewer than 2").forget();
        }
        log.push(format!("condition third after notify_n(2): {}", outcome(done.try_acquire())));
        {
            let _g = cond.acquire().unwrap();
            cond.notify_all().unwrap();
        }
        done.acquire_timeout(SLACK).expect("notify_all missed the third").forget();
        let notified: Vec<bool> = children.into_iter().map(|mut c| c.join().unwrap()).collect();
        log.push(format!("condition children notified: {notified:?}"));
        // A condition over a given RLock shares it.
        let shared = RLock::new().unwrap();
        let over = Condition::with_lock(shared.clone()).unwrap();
        {
            let _g = shared.acquire().unwrap();
            log.push(format!("condition over a held rlock: {:?}", over.notify_n(0)));
        }

        // Event.
        let ev = Event::new().unwrap();
        log.push(format!("event unset: {} {}", ev.is_set(), ev.wait_timeout(T)));
        start!(set_event, ev.clone()).join().unwrap();
        ev.wait();
        let (set, waited) = (ev.is_set(), ev.wait_timeout(Duration::ZERO));
        log.push(format!("event set by a child: {set} {waited}"));
        ev.clear();
        log.push(format!("event cleared: {}", ev.is_set()));

        // Barrier: three parties (two children), distinct indexes.
        let barrier = Barrier::new(3).unwrap();
        let (parties, n_waiting): (usize, usize) = (barrier.parties(), barrier.n_waiting());
        log.push(format!("barrier parties, n_waiting: {parties}, {n_waiting}"));
        for _pass in 0..2 {
            let children: Vec<_> = (0..2).map(|_| start!(party, barrier.clone())).collect();
            let mut indexes = vec![barrier.wait_timeout(SLACK).unwrap()];
            for mut c in children {
                indexes.push(c.join().unwrap().unwrap());
            }
            indexes.sort();
            assert_eq!(indexes, [0, 1, 2]);
            log.push(format!("barrier pass indexes: {indexes:?}"));
        }
        // A waiting party is counted; abort breaks it (Broken), and later waits, until reset.
        let two = Barrier::new(2).unwrap();
        let arrived = Event::new().unwrap();
        let mut waiter = start!(lone_party, (two.clone(), arrived.clone()));
        assert!(arrived.wait_timeout(SLACK));
        let t0 = Instant::now();
        while two.n_waiting() == 0 {
            assert!(t0.elapsed() < SLACK, "the party never waited");
            std::thread::yield_now();
        }
        log.push(format!("barrier n_waiting: {}", two.n_waiting()));
        two.abort();
        let err = waiter.join().unwrap().unwrap_err();
        assert_eq!(err, BarrierError::Broken);
        log.push(format!("barrier aborted waiter: {err:?}"));
        let (broken, n, waited) = (two.broken(), two.n_waiting(), two.wait());
        log.push(format!("barrier after abort: {broken} {n} {waited:?}"));
        two.reset();
        log.push(format!("barrier after reset: {}", two.broken()));
        // A lone wait with a timeout: Timeout for it, and the barrier is broken.
        let t0 = Instant::now();
        log.push(format!("barrier wait_timeout: {:?}", two.wait_timeout(T)));
        assert!(t0.elapsed() >= T);
        log.push(format!("barrier broken by the timeout: {}", two.broken()));
        assert!(Barrier::new(0).unwrap_err().is_invalid_argument());
        // The action runs once per pass in the last arriver (here the only one); a panicking
        // action is ActionPanicked for its party and breaks the barrier.
        let counted = Barrier::with_action(1, count_pass).unwrap();
        let before = PASSES.load(Ordering::SeqCst);
        log.push(format!("barrier action passes: {:?} {:?}", counted.wait(), counted.wait()));
        assert_eq!(PASSES.load(Ordering::SeqCst) - before, 2);
        let panicking = Barrier::with_action(1, panic_pass).unwrap();
        let (first, broken) = (panicking.wait(), panicking.broken());
        log.push(format!("barrier action panicked: {first:?} {broken}"));
        log
    }

    static PASSES: AtomicUsize = AtomicUsize::new(0);

    fn count_pass() {
        PASSES.fetch_add(1, Ordering::SeqCst);
    }

    fn panic_pass() {
        panic!("the barrier action panics (expected by the test)");
    }
}

fn assert_same(direct: Vec<String>, twin: Vec<String>) {
    assert_eq!(direct.len(), twin.len());
    for (d, t) in direct.iter().zip(&twin) {
        assert_eq!(d, t, "the direct object and its twin differ");
    }
}

#[test]
fn a02_lock_semaphore_shapes_direct_and_dummy() {
    let direct = direct::a02();
    let twin = twin::a02();
    assert_same(direct, twin);
}

#[test]
fn a04_condition_event_barrier_shapes_direct_and_dummy() {
    let direct = direct::a04();
    let twin = twin::a04();
    assert_same(direct, twin);
}
