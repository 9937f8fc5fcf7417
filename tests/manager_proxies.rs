//! Conformance M01–M06: manager proxies used from child processes (which receive the proxies as
//! spawn arguments), against a manager server running in its own process.

mod support;

use support::run;

use std::time::Duration;

use processing::manager::{
    shared_type, BarrierProxy, ConditionProxy, DictProxy, EventProxy, JoinableQueueProxy,
    ListProxy, LockProxy, Manager, NamespaceProxy, Proxy, QueueProxy, RLockProxy, RemoteErrorKind,
    SemaphoreProxy, ValueProxy,
};
use processing::Process;
use processing_suite::shared::{EventLike, LockLike, QueueLike};
use serde::{Deserialize, Serialize};

fn list_child(l: ListProxy<i64>) {
    for i in 0..5 {
        l.push(i).unwrap();
    }
    l.extend([10, 11]).unwrap();
}

#[test]
fn m01_list_proxy() {
    let m = Manager::start().unwrap();
    let l = m.list::<i64>().unwrap();
    l.push(100).unwrap();
    run(list_child, l.clone());
    assert_eq!(l.to_vec().unwrap(), [100, 0, 1, 2, 3, 4, 10, 11]);
    assert_eq!(l.len().unwrap(), 8);
    assert_eq!(l.index(&3).unwrap(), Some(4));
    assert_eq!(l.slice(1..3).unwrap(), [0, 1]);
    l.sort().unwrap();
    assert_eq!(l.to_vec().unwrap(), [0, 1, 2, 3, 4, 10, 11, 100]);
    l.reverse().unwrap();
    assert_eq!(l.pop().unwrap(), Some(0));
    assert_eq!(l.get(0).unwrap(), 100);
    assert_eq!(l.count(&10).unwrap(), 1);
    m.shutdown().unwrap();
}

fn dict_child((d, ns): (DictProxy<String, i32>, NamespaceProxy)) {
    d.insert("child".into(), 2).unwrap();
    d.remove(&"gone".into()).unwrap();
    ns.set("from_child", &vec!["a".to_string(), "b".to_string()])
        .unwrap();
    let seen: i32 = ns.get("x").unwrap().unwrap();
    ns.set("x", &(seen + 1)).unwrap();
}

#[test]
fn m02_dict_and_namespace_proxies() {
    let m = Manager::start().unwrap();
    let d = m.dict::<String, i32>().unwrap();
    d.insert("parent".into(), 1).unwrap();
    d.insert("gone".into(), 0).unwrap();
    let ns = m.namespace().unwrap();
    ns.set("x", &41).unwrap();
    run(dict_child, (d.clone(), ns.clone()));
    assert_eq!(d.get(&"child".into()).unwrap(), Some(2));
    assert_eq!(d.get(&"gone".into()).unwrap(), None);
    assert_eq!(d.keys().unwrap(), ["parent", "child"]);
    assert_eq!(d.values().unwrap(), [1, 2]);
    assert_eq!(
        d.items().unwrap(),
        [("parent".to_string(), 1), ("child".to_string(), 2)]
    );
    assert_eq!(d.len().unwrap(), 2);
    assert!(d.contains_key(&"parent".into()).unwrap());
    assert_eq!(ns.get::<i32>("x").unwrap(), Some(42));
    assert_eq!(
        ns.get::<Vec<String>>("from_child").unwrap().unwrap(),
        ["a", "b"]
    );
    assert_eq!(ns.names().unwrap(), ["from_child", "x"]);
}

fn nested_child(d: DictProxy<String, ListProxy<u32>>) -> u32 {
    // Read the list the parent stored, and mutate it through the copy of the proxy.
    let shared = d.get(&"shared".into()).unwrap().unwrap();
    shared.push(2).unwrap();
    // Store a list created here; it must outlive this process's own proxy.
    let m_list = d.get(&"factory".into()).unwrap().unwrap();
    m_list.push(7).unwrap();
    shared.len().unwrap() as u32
}

#[test]
fn m03_nested_proxies() {
    let m = Manager::start().unwrap();
    let d = m.dict::<String, ListProxy<u32>>().unwrap();
    let inner = m.list::<u32>().unwrap();
    inner.push(1).unwrap();
    d.insert("shared".into(), inner.clone()).unwrap();
    d.insert("factory".into(), m.list::<u32>().unwrap())
        .unwrap();
    assert_eq!(run(nested_child, d.clone()), 2);
    // The parent's own proxy sees the child's mutation: the nested proxy stayed live and shared.
    assert_eq!(inner.to_vec().unwrap(), [1, 2]);
    assert_eq!(
        d.get(&"factory".into()).unwrap().unwrap().to_vec().unwrap(),
        [7]
    );
    let before = m.live_objects().unwrap();
    drop(inner);
    // The dict still holds the inner list.
    assert_eq!(m.live_objects().unwrap(), before);
    assert_eq!(
        d.get(&"shared".into()).unwrap().unwrap().to_vec().unwrap(),
        [1, 2]
    );
    d.clear().unwrap();
    assert_eq!(m.live_objects().unwrap(), before - 2);
}

#[derive(Serialize, Deserialize)]
struct Prims {
    queue: QueueProxy<u32>,
    joinable: JoinableQueueProxy<u32>,
    lock: LockProxy,
    rlock: RLockProxy,
    semaphore: SemaphoreProxy,
    condition: ConditionProxy,
    event: EventProxy,
    barrier: BarrierProxy,
    value: ValueProxy<i64>,
}

fn prims_child(p: Prims) -> bool {
    // Event: wait for the parent's go.
    p.event.wait().unwrap();
    // Lock + value: locked increments.
    for _ in 0..50 {
        let _g = p.lock.acquire().unwrap();
        let v = p.value.get().unwrap();
        p.value.set(v + 1).unwrap();
    }
    // RLock is reentrant for its holder.
    let outer = p.rlock.acquire().unwrap();
    let inner = p.rlock.acquire().unwrap();
    inner.release().unwrap();
    outer.release().unwrap();
    // Released by its holder: one more release is refused. (The other child may hold the
    // lock by now: then it is not this caller's to release.)
    let e = p.rlock.release().unwrap_err();
    assert!(e.is_not_locked() || e.is_not_owner(), "{e}");
    // Semaphore: take one unit for good.
    p.semaphore.acquire().unwrap().forget();
    // Joinable queue: consume and confirm.
    let item = p.joinable.get().unwrap();
    p.joinable.task_done().unwrap();
    p.queue.put(item * 10).unwrap();
    // Condition: wait until the value reaches 100 (the other child also adds 50).
    {
        let _g = p.condition.acquire().unwrap();
        let reached = p
            .condition
            .wait_for_timeout(|| p.value.get().unwrap() >= 100, Duration::from_secs(30))
            .unwrap();
        assert!(reached);
    }
    p.barrier.wait().unwrap();
    true
}

#[test]
fn m04_primitive_proxies_from_child_processes() {
    let m = Manager::start().unwrap();
    let p = Prims {
        queue: m.queue().unwrap(),
        joinable: m.joinable_queue().unwrap(),
        lock: m.lock().unwrap(),
        rlock: m.rlock().unwrap(),
        semaphore: m.semaphore(2).unwrap(),
        condition: m.condition().unwrap(),
        event: m.event().unwrap(),
        barrier: m.barrier(3).unwrap(),
        value: m.value(0i64).unwrap(),
    };
    let clone = || Prims {
        queue: p.queue.clone(),
        joinable: p.joinable.clone(),
        lock: p.lock.clone(),
        rlock: p.rlock.clone(),
        semaphore: p.semaphore.clone(),
        condition: p.condition.clone(),
        event: p.event.clone(),
        barrier: p.barrier.clone(),
        value: p.value.clone(),
    };
    let mut children: Vec<_> = (0..2)
        .map(|_| {
            let mut c = Process::new(prims_child, clone());
            c.start().unwrap();
            c
        })
        .collect();
    p.joinable.put(1).unwrap();
    p.joinable.put(2).unwrap();
    p.event.set().unwrap();
    p.joinable.join().unwrap();
    let mut got = vec![p.queue.get().unwrap(), p.queue.get().unwrap()];
    got.sort();
    assert_eq!(got, [10, 20]);
    // Keep notifying until both children passed the condition (a notify may precede a wait)
    // and wait at the barrier.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while p.barrier.n_waiting().unwrap() < 2 {
        // A child that failed never arrives: end with its error rather than wait for ever.
        if std::time::Instant::now() > deadline {
            for c in &mut children {
                if let Some(e) = c
                    .join_timeout(Duration::ZERO)
                    .err()
                    .filter(|e| !e.is_timeout())
                {
                    panic!("a child failed: {e}");
                }
            }
            panic!("the children did not reach the barrier in 60 s");
        }
        let g = p.condition.acquire().unwrap();
        p.condition.notify_all().unwrap();
        drop(g);
        std::thread::sleep(Duration::from_millis(5));
    }
    p.barrier.wait().unwrap();
    for c in &mut children {
        assert!(c.join().unwrap());
    }
    assert_eq!(p.value.get().unwrap(), 100);
    assert_eq!(p.semaphore.value().unwrap(), 0);
    assert!(!p.lock.is_locked().unwrap());
}

fn copy_child(v: ValueProxy<Vec<u8>>) {
    let mut copy = v.get().unwrap();
    copy.push(99);
}

#[test]
fn m05_reading_returns_a_copy() {
    let m = Manager::start().unwrap();
    let v = m.value(vec![1u8, 2]).unwrap();
    run(copy_child, v.clone());
    let mut local = v.get().unwrap();
    local.push(3);
    assert_eq!(
        v.get().unwrap(),
        [1, 2],
        "mutating a copy does not write back"
    );
    v.set(local).unwrap();
    assert_eq!(v.get().unwrap(), [1, 2, 3]);
    let l = m.list_from(vec![vec![1u8]]).unwrap();
    let mut first = l.get(0).unwrap();
    first.push(2);
    assert_eq!(l.get(0).unwrap(), [1]);
}

#[path = "../crates/processing-manager/tests/common/account.rs"]
mod account;

use account::{Account, BankError};

impl Account {
    /// Not exposed through the manager (so never called).
    #[allow(dead_code)]
    pub(crate) fn audit(&mut self) {
        self.balance = 0;
    }
}

shared_type! {
    /// A bank account held by the manager.
    pub proxy AccountProxy for Account {
        fn deposit(&mut self, amount: i64) -> i64;
        fn withdraw(&mut self, amount: i64) -> Result<i64, BankError>;
        fn balance(&self) -> i64;
    }
}

/// A request of a method index `Account` does not expose (it has three: #0 to #2), as a
/// client with another definition of the type would send.
#[derive(Serialize)]
enum Bogus {
    _Deposit,
    _Withdraw,
    _Balance,
    Audit,
}

fn account_child(a: AccountProxy) -> (i64, Result<i64, BankError>, bool) {
    let after = a.deposit(5).unwrap();
    let refused = a.withdraw(1000).unwrap();
    let unknown = a.as_raw().request::<_, ()>(&Bogus::Audit).unwrap_err();
    (after, refused, unknown.is_unknown_method())
}

#[test]
fn m06_custom_types() {
    let m = Manager::builder().register::<Account>().start().unwrap();
    let a: AccountProxy = m.create(Account { balance: 10 }).unwrap();
    let (after, refused, unknown_is_remote_error) = run(account_child, a.clone());
    assert_eq!(after, 15);
    assert_eq!(refused, Err(BankError::Insufficient { missing: 985 }));
    assert!(unknown_is_remote_error);
    assert_eq!(a.withdraw(15).unwrap(), Ok(0));
    let e = a.as_raw().request::<_, ()>(&Bogus::Audit).unwrap_err();
    assert_eq!(e.as_remote().unwrap().kind, RemoteErrorKind::UnknownMethod);
    // A manager that did not register the type refuses to create it.
    let plain = Manager::start().unwrap();
    let e = plain.create(Account { balance: 1 }).unwrap_err();
    assert_eq!(e.as_remote().unwrap().kind, RemoteErrorKind::NotRegistered);
}

// One test body, run against every backend sharing the behaviour (manager proxies here; the
// direct `processing` objects join once they are merged).

fn queue_consumer<Q: QueueLike<u32>>(q: Q) -> u32 {
    (0..100).map(|_| q.get_item()).sum()
}

fn queue_behaviour<Q: QueueLike<u32> + 'static>(q: Q) {
    let mut c = Process::new(queue_consumer::<Q>, q.clone());
    c.start().unwrap();
    for i in 0..100 {
        q.put_item(i);
    }
    assert_eq!(c.join().unwrap(), (0..100).sum::<u32>());
    assert_eq!(q.try_get_item(), None);
}

fn lock_holder<L: LockLike, E: EventLike>((lock, held, done): (L, E, E)) {
    lock.lock_acquire();
    held.event_set();
    done.event_wait();
    lock.lock_release();
}

fn lock_event_behaviour<L: LockLike + 'static, E: EventLike + 'static>(lock: L, held: E, done: E) {
    let mut c = Process::new(
        lock_holder::<L, E>,
        (lock.clone(), held.clone(), done.clone()),
    );
    c.start().unwrap();
    held.event_wait();
    assert!(!lock.lock_try_acquire());
    done.event_set();
    c.join().unwrap();
    assert!(done.event_is_set());
    lock.lock_acquire();
    lock.lock_release();
}

#[test]
fn m04_shared_behaviour_on_direct_objects() {
    queue_behaviour(processing::Queue::<u32>::new().unwrap());
    lock_event_behaviour(
        processing::Lock::new().unwrap(),
        processing::Event::new().unwrap(),
        processing::Event::new().unwrap(),
    );
}

#[test]
fn m04_shared_behaviour_on_manager_proxies() {
    let m = Manager::start().unwrap();
    queue_behaviour(m.queue::<u32>().unwrap());
    lock_event_behaviour(m.lock().unwrap(), m.event().unwrap(), m.event().unwrap());
}
