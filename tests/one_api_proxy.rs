//! Conformance A01–A04, the manager proxy's column: each proxy answers with the shapes of the
//! direct object (the same error types, guards that release on drop, the item handed back by a
//! failed put), against a manager server running in its own process. The `fn` pointer
//! bindings check the signatures at compile time; the calls check the outcomes.

mod support;

use support::run;

use std::time::{Duration, Instant};

use processing::manager::{
    BarrierProxy, BoundedSemaphoreProxy, ConditionProxy, EventProxy, JoinableQueueProxy, LockProxy,
    Manager, ManagerError, Proxy, ProxyGuard, QueueProxy, RLockProxy, RemoteErrorKind,
    SemaphoreProxy,
};
use processing::{
    AcquireError, BarrierError, ConditionError, GetError, GetTimeoutError, JoinTimeoutError,
    Process, PutError, PutTimeoutError, ReleaseError, TaskDoneError, TryGetError, TryPutError,
};

/// How long a wait that must time out waits.
const SHORT: Duration = Duration::from_millis(30);
/// A generous bound for a wait that must succeed on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// The `ManagerError` a `Manager(..)` variant carries as its source.
fn manager_cause(e: &dyn std::error::Error) -> &ManagerError {
    e.source()
        .and_then(|c| c.downcast_ref::<ManagerError>())
        .expect("the source of a Manager variant is the ManagerError")
}

#[test]
fn a01_queue_proxy_shapes() {
    // The proxy's operations have the direct queue's signatures, error types included.
    type Q = QueueProxy<String>;
    let _: fn(&Q, String) -> Result<(), PutError<String>> = Q::put;
    let _: fn(&Q, String) -> Result<(), TryPutError<String>> = Q::try_put;
    let _: fn(&Q, String, Duration) -> Result<(), PutTimeoutError<String>> = Q::put_timeout;
    let _: fn(&Q) -> Result<String, GetError> = Q::get;
    let _: fn(&Q) -> Result<String, TryGetError> = Q::try_get;
    let _: fn(&Q, Duration) -> Result<String, GetTimeoutError> = Q::get_timeout;
    let _: fn(&processing::Queue<String>, String) -> Result<(), TryPutError<String>> =
        processing::Queue::try_put;
    let _: fn(&processing::Queue<String>, Duration) -> Result<String, GetTimeoutError> =
        processing::Queue::get_timeout;
    let _: fn(&Q) -> Result<usize, ManagerError> = Q::len;
    let _: fn(&Q) -> Result<bool, ManagerError> = Q::is_empty;
    let _: fn(&Q) -> Result<bool, ManagerError> = Q::is_full;
    let _: fn(&Q) -> Result<(), ManagerError> = Q::close;
    let _: fn(&Q) -> Result<bool, ManagerError> = Q::is_closed;

    let m = Manager::start().unwrap();
    let q: QueueProxy<String> = m.bounded_queue(1).unwrap();
    q.put("first".into()).unwrap();
    assert!(q.is_full().unwrap());
    // A failed try_put / put_timeout hands the item back.
    let e = q.try_put("second".into()).unwrap_err();
    assert!(e.is_full(), "{e}");
    assert_eq!(e.into_inner(), "second");
    let began = Instant::now();
    let e = q.put_timeout("third".into(), SHORT).unwrap_err();
    assert!(began.elapsed() >= SHORT);
    assert!(e.is_timeout(), "{e}");
    assert_eq!(e.into_inner(), "third");
    assert_eq!(q.len().unwrap(), 1);
    assert_eq!(q.get().unwrap(), "first");
    assert!(q.is_empty().unwrap());
    // No item: `Empty` for one attempt, `Timeout` for a wait.
    assert!(q.try_get().unwrap_err().is_empty());
    let began = Instant::now();
    assert!(q.get_timeout(SHORT).unwrap_err().is_timeout());
    assert!(began.elapsed() >= SHORT);

    // A client blocked in `get` in another process is woken by `close` (had the close come
    // first, its get would end the same way: the queue is empty and closed).
    fn blocked_get((q, started): (QueueProxy<String>, EventProxy)) -> bool {
        started.set().unwrap();
        q.get().unwrap_err().is_closed()
    }
    let started = m.event().unwrap();
    let mut getter = Process::new(blocked_get, (q.clone(), started.clone()));
    getter.start().unwrap();
    started.wait().unwrap();
    q.close().unwrap();
    assert!(getter.join().unwrap(), "the blocked get ended with Closed");
    assert!(q.is_closed().unwrap());
    // Closed: puts fail with the item back, gets report Closed.
    let e = q.put("late".into()).unwrap_err();
    assert!(e.is_closed(), "{e}");
    assert_eq!(e.into_inner(), "late");
    assert!(q.try_put("late".into()).unwrap_err().is_closed());
    assert!(q.put_timeout("late".into(), SHORT).unwrap_err().is_closed());
    assert!(q.get().unwrap_err().is_closed());
    assert!(q.try_get().unwrap_err().is_closed());
    assert!(q.get_timeout(SHORT).unwrap_err().is_closed());

    // The manager's own failure is the Manager variant, with the item and the cause.
    let q2: QueueProxy<String> = m.queue().unwrap();
    m.shutdown().unwrap();
    let e = q2.try_put("lost?".into()).unwrap_err();
    assert!(e.is_manager(), "{e}");
    assert!(manager_cause(&e).is_disconnected());
    assert_eq!(e.into_inner(), "lost?");
    let e = q2.get_timeout(SHORT).unwrap_err();
    assert!(e.is_manager(), "{e}");
    assert!(manager_cause(&e).is_disconnected());
    assert!(q2.len().unwrap_err().is_disconnected());
}

/// Runs in a child process: whether the lock is taken now (`WouldBlock`), else takes it with a
/// guard and releases it on drop.
fn try_lock_in_child(lock: LockProxy) -> String {
    match lock.try_acquire() {
        Ok(guard) => {
            drop(guard);
            "acquired".into()
        }
        Err(AcquireError::WouldBlock) => "would block".into(),
        Err(e) => panic!("unexpected: {e}"),
    }
}

fn try_semaphore_in_child(s: SemaphoreProxy) -> bool {
    s.acquire_timeout(PATIENCE).map(drop).is_ok()
}

#[test]
fn a02_lock_proxy_guards() {
    type G<'a> = ProxyGuard<'a>;
    let _: for<'a> fn(&'a LockProxy) -> Result<G<'a>, AcquireError<G<'a>>> = LockProxy::acquire;
    let _: for<'a> fn(&'a LockProxy) -> Result<G<'a>, AcquireError<G<'a>>> = LockProxy::try_acquire;
    let _: for<'a> fn(&'a LockProxy, Duration) -> Result<G<'a>, AcquireError<G<'a>>> =
        LockProxy::acquire_timeout;
    let _: for<'a> fn(&'a RLockProxy) -> Result<G<'a>, AcquireError<G<'a>>> =
        RLockProxy::try_acquire;
    let _: for<'a> fn(&'a SemaphoreProxy, Duration) -> Result<G<'a>, AcquireError<G<'a>>> =
        SemaphoreProxy::acquire_timeout;
    let _: for<'a> fn(&'a BoundedSemaphoreProxy) -> Result<G<'a>, AcquireError<G<'a>>> =
        BoundedSemaphoreProxy::acquire;
    let _: for<'a> fn(&'a ConditionProxy) -> Result<G<'a>, AcquireError<G<'a>>> =
        ConditionProxy::acquire;
    let _: fn(G<'static>) -> Result<(), ReleaseError> = ProxyGuard::release;
    let _: fn(&LockProxy) -> Result<(), ReleaseError> = LockProxy::release;
    let _: fn(&SemaphoreProxy) -> Result<usize, ManagerError> = SemaphoreProxy::value;

    let m = Manager::start().unwrap();
    // Lock: a guard held here blocks another process; dropping it releases through the
    // manager, and the other process then acquires.
    let lock = m.lock().unwrap();
    let guard = lock.acquire().unwrap();
    assert!(lock.is_locked().unwrap());
    assert_eq!(run(try_lock_in_child, lock.clone()), "would block");
    assert!(lock.try_acquire().unwrap_err().is_would_block());
    let began = Instant::now();
    assert!(lock.acquire_timeout(SHORT).unwrap_err().is_timeout());
    assert!(began.elapsed() >= SHORT);
    drop(guard);
    assert!(!lock.is_locked().unwrap());
    assert_eq!(run(try_lock_in_child, lock.clone()), "acquired");
    // An explicit release reports; releasing an unlocked lock is NotLocked.
    lock.acquire_timeout(PATIENCE).unwrap().release().unwrap();
    assert!(lock.release().unwrap_err().is_not_locked());

    // RLock: reentrant for its holder, NotOwner for another client.
    let rlock = m.rlock().unwrap();
    let outer = rlock.acquire().unwrap();
    let inner = rlock.try_acquire().unwrap();
    let other = rlock.clone();
    let (would_block, not_owner) = std::thread::spawn(move || {
        (
            other.try_acquire().unwrap_err().is_would_block(),
            other.release().unwrap_err().is_not_owner(),
        )
    })
    .join()
    .unwrap();
    assert!(would_block && not_owner);
    inner.release().unwrap();
    drop(outer);
    assert!(rlock.release().unwrap_err().is_not_locked());

    // Semaphore: one unit per guard; a dropped guard gives its unit back.
    let sem = m.semaphore(2).unwrap();
    let a = sem.acquire().unwrap();
    let b = sem.try_acquire().unwrap();
    assert_eq!(sem.value().unwrap(), 0);
    assert!(sem.try_acquire().unwrap_err().is_would_block());
    assert!(sem.acquire_timeout(SHORT).unwrap_err().is_timeout());
    drop(a);
    assert_eq!(sem.value().unwrap(), 1);
    assert!(run(try_semaphore_in_child, sem.clone()));
    b.release().unwrap();
    sem.release_n(3).unwrap();
    assert_eq!(sem.value().unwrap(), 5);

    // Bounded semaphore: a release past the initial value is Bound.
    let bounded = m.bounded_semaphore(1).unwrap();
    assert!(bounded.release().unwrap_err().is_bound());
    let g = bounded.acquire().unwrap();
    assert!(bounded.try_acquire().unwrap_err().is_would_block());
    drop(g);
    assert_eq!(bounded.value().unwrap(), 1);

    // The manager's own failure is the Manager variant.
    m.shutdown().unwrap();
    let e = lock.try_acquire().unwrap_err();
    assert!(e.is_manager(), "{e}");
    assert!(manager_cause(&e).is_disconnected());
    let e = lock.release().unwrap_err();
    assert!(matches!(e, ReleaseError::Manager(_)), "{e}");
    assert!(manager_cause(&e).is_disconnected());
}

#[test]
fn a03_joinable_queue_proxy_shapes() {
    type J = JoinableQueueProxy<u32>;
    let _: fn(&J) -> Result<(), TaskDoneError> = J::task_done;
    let _: fn(&J) -> Result<(), ManagerError> = J::join;
    let _: fn(&J, Duration) -> Result<(), JoinTimeoutError> = J::join_timeout;
    let _: fn(&J) -> Result<u32, TryGetError> = J::try_get;
    let _: fn(&processing::JoinableQueue<u32>) -> Result<(), TaskDoneError> =
        processing::JoinableQueue::task_done;

    let m = Manager::start().unwrap();
    let q: J = m.joinable_queue().unwrap();
    // An extra task_done is TooMany, as on the direct queue.
    assert!(q.task_done().unwrap_err().is_too_many());
    q.put(1).unwrap();
    q.put(2).unwrap();
    let began = Instant::now();
    assert!(q.join_timeout(SHORT).unwrap_err().is_timeout());
    assert!(began.elapsed() >= SHORT);

    fn consume(q: JoinableQueueProxy<u32>) -> u32 {
        let mut sum = 0;
        for _ in 0..2 {
            sum += q.get().unwrap();
            q.task_done().unwrap();
        }
        sum
    }
    let mut consumer = Process::new(consume, q.clone());
    consumer.start().unwrap();
    q.join_timeout(PATIENCE).unwrap();
    q.join().unwrap();
    assert_eq!(consumer.join().unwrap(), 3);
    assert!(q.task_done().unwrap_err().is_too_many());
    assert!(q.try_get().unwrap_err().is_empty());

    m.shutdown().unwrap();
    let e = q.task_done().unwrap_err();
    assert!(matches!(e, TaskDoneError::Manager(_)), "{e}");
    assert!(manager_cause(&e).is_disconnected());
    let e = q.join_timeout(SHORT).unwrap_err();
    assert!(matches!(e, JoinTimeoutError::Manager(_)), "{e}");
}

/// Runs in a child process: holds the condition's lock, says so, and waits to be notified.
fn wait_notified((cond, waiting): (ConditionProxy, EventProxy)) -> bool {
    let _g = cond.acquire().unwrap();
    waiting.set().unwrap();
    // The wait releases the lock on the server: the parent can only take it (and notify)
    // once this wait is registered.
    cond.wait_timeout(PATIENCE).unwrap()
}

#[test]
fn a04_condition_event_barrier_proxy_shapes() {
    let _: fn(&ConditionProxy) -> Result<(), ConditionError> = ConditionProxy::wait;
    let _: fn(&ConditionProxy, Duration) -> Result<bool, ConditionError> =
        ConditionProxy::wait_timeout;
    let _: fn(&ConditionProxy) -> Result<(), ConditionError> = ConditionProxy::notify;
    let _: fn(&ConditionProxy, usize) -> Result<(), ConditionError> = ConditionProxy::notify_n;
    let _: fn(&ConditionProxy) -> Result<(), ConditionError> = ConditionProxy::notify_all;
    let _: fn(&processing::Condition) -> Result<(), ConditionError> = processing::Condition::wait;
    let _: fn(&EventProxy) -> Result<(), ManagerError> = EventProxy::set;
    let _: fn(&EventProxy) -> Result<bool, ManagerError> = EventProxy::is_set;
    let _: fn(&EventProxy, Duration) -> Result<bool, ManagerError> = EventProxy::wait_timeout;
    let _: fn(&BarrierProxy) -> Result<usize, BarrierError> = BarrierProxy::wait;
    let _: fn(&BarrierProxy, Duration) -> Result<usize, BarrierError> = BarrierProxy::wait_timeout;
    let _: fn(&BarrierProxy) -> Result<usize, ManagerError> = BarrierProxy::parties;
    let _: fn(&BarrierProxy) -> Result<usize, ManagerError> = BarrierProxy::n_waiting;
    let _: fn(&BarrierProxy) -> Result<bool, ManagerError> = BarrierProxy::broken;

    let m = Manager::start().unwrap();
    // Condition: used without its lock is NotOwner.
    let cond = m.condition().unwrap();
    assert!(cond.wait_timeout(SHORT).unwrap_err().is_not_owner());
    assert!(cond.notify().unwrap_err().is_not_owner());
    assert!(cond.notify_all().unwrap_err().is_not_owner());
    {
        let _g = cond.acquire().unwrap();
        let began = Instant::now();
        assert!(!cond.wait_timeout(SHORT).unwrap());
        assert!(began.elapsed() >= SHORT);
        cond.notify_n(3).unwrap();
        assert!(!cond
            .wait_for_timeout(|| false, SHORT)
            .expect("a predicate that never holds times out"));
    }
    // A waiter in another process is notified.
    let waiting = m.event().unwrap();
    let mut waiter = Process::new(wait_notified, (cond.clone(), waiting.clone()));
    waiter.start().unwrap();
    waiting.wait().unwrap();
    {
        let _g = cond.acquire().unwrap();
        cond.notify().unwrap();
    }
    assert!(waiter.join().unwrap(), "the waiter was notified");

    // Event.
    let event = m.event().unwrap();
    assert!(!event.is_set().unwrap());
    assert!(!event.wait_timeout(SHORT).unwrap());
    event.set().unwrap();
    event.wait().unwrap();
    assert!(event.wait_timeout(SHORT).unwrap());
    event.clear().unwrap();
    assert!(!event.is_set().unwrap());

    // Barrier: a lone wait that times out is Timeout and breaks it; later waits are Broken.
    let barrier = m.barrier(2).unwrap();
    assert_eq!(barrier.parties().unwrap(), 2);
    assert_eq!(barrier.n_waiting().unwrap(), 0);
    assert!(!barrier.broken().unwrap());
    assert!(barrier.wait_timeout(SHORT).unwrap_err().is_timeout());
    assert!(barrier.broken().unwrap());
    assert!(barrier.wait().unwrap_err().is_broken());
    barrier.reset().unwrap();
    assert!(!barrier.broken().unwrap());
    fn pass(b: BarrierProxy) -> usize {
        b.wait_timeout(PATIENCE).unwrap()
    }
    let mut other = Process::new(pass, barrier.clone());
    other.start().unwrap();
    let mine = barrier.wait_timeout(PATIENCE).unwrap();
    let theirs = other.join().unwrap();
    let mut arrivals = [mine, theirs];
    arrivals.sort();
    assert_eq!(arrivals, [0, 1]);
    barrier.abort().unwrap();
    assert!(barrier.wait().unwrap_err().is_broken());

    m.shutdown().unwrap();
    let e = cond.notify().unwrap_err();
    assert!(matches!(e, ConditionError::Manager(_)), "{e}");
    assert!(manager_cause(&e).is_disconnected());
    let e = barrier.wait().unwrap_err();
    assert!(matches!(e, BarrierError::Manager(_)), "{e}");
    assert!(event.set().unwrap_err().is_disconnected());
}

/// A request is a variant of the object's request enum: a name that is not a method does not
/// compile, and a request of a variant index the object does not have (what a client of
/// another build would send) is a typed `UnknownMethod` remote error, not a decoding accident.
#[test]
fn a02_unknown_request_variant_is_a_typed_unknown_method() {
    /// The lock's requests are Acquire, Release, Locked, AwaitFree (#0 to #3); #4 does not
    /// exist.
    #[derive(serde::Serialize)]
    enum NotALockRequest {
        _Acquire,
        _Release,
        _Locked,
        _AwaitFree,
        Fly,
    }
    let m = Manager::start().unwrap();
    let lock = m.lock().unwrap();
    let e = lock
        .as_raw()
        .request::<_, ()>(&NotALockRequest::Fly)
        .unwrap_err();
    let remote = e.as_remote().expect("a remote error");
    assert_eq!(remote.kind, RemoteErrorKind::UnknownMethod, "{e}");
    // The connection and the object go on serving.
    lock.acquire().unwrap().release().unwrap();
    m.shutdown().unwrap();
}
