//! The server core tested with the server on a thread of the test process (no process
//! boundary): protocol, reference counting, nested proxies, custom types, failure modes.

use std::time::{Duration, Instant};

use processing_manager::{shared_type, ListProxy, Manager, ManagerError, RemoteErrorKind};
use serde::Serialize;

#[path = "common/account.rs"]
mod account;

use account::{Account, BankError};

impl Account {
    #[allow(dead_code)]
    fn secret(&self) -> i64 {
        42
    }
    fn boom(&mut self) {
        panic!("boom")
    }
}

shared_type! {
    /// A bank account held by the manager.
    pub proxy AccountProxy for Account {
        fn deposit(&mut self, amount: i64) -> i64;
        fn withdraw(&mut self, amount: i64) -> Result<i64, BankError>;
        fn balance(&self) -> i64;
        fn boom(&mut self);
    }
}

#[test]
fn list_operations() {
    let m = Manager::start_in_thread().unwrap();
    let l = m.list::<i32>().unwrap();
    for i in 0..10 {
        l.push(i).unwrap();
    }
    l.reverse().unwrap();
    assert_eq!(l.to_vec().unwrap(), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    l.sort().unwrap();
    assert_eq!(l.slice(2..5).unwrap(), [2, 3, 4]);
    assert_eq!(l.slice(-2..).unwrap(), [8, 9]);
    assert_eq!(l.get(-1).unwrap(), 9);
    assert_eq!(l.pop().unwrap(), Some(9));
    assert_eq!(l.pop_at(0).unwrap(), 0);
    assert_eq!(l.index(&5).unwrap(), Some(4));
    assert_eq!(l.index(&50).unwrap(), None);
    l.insert(0, 5).unwrap();
    assert_eq!(l.count(&5).unwrap(), 2);
    assert!(l.remove(&5).unwrap());
    assert_eq!(l.len().unwrap(), 8);
    let err = l.get(100).unwrap_err();
    assert!(err.as_remote().unwrap().is_index_out_of_range());
    l.clear().unwrap();
    assert_eq!(l.pop().unwrap(), None);
}

#[test]
fn nested_proxies_stay_live_and_are_counted() {
    let m = Manager::start_in_thread().unwrap();
    let base = m.live_objects().unwrap();
    let d = m.dict::<String, ListProxy<i32>>().unwrap();
    {
        let inner = m.list::<i32>().unwrap();
        inner.push(1).unwrap();
        d.insert("a".into(), inner).unwrap();
    }
    // The dict keeps the inner list alive after its creating proxy is gone.
    assert_eq!(m.live_objects().unwrap(), base + 2);
    let again = d.get(&"a".into()).unwrap().unwrap();
    again.push(2).unwrap();
    let third = d.get(&"a".into()).unwrap().unwrap();
    assert_eq!(third.to_vec().unwrap(), [1, 2]);
    drop((again, third));
    assert_eq!(m.live_objects().unwrap(), base + 2);
    d.remove(&"a".into()).unwrap();
    assert_eq!(m.live_objects().unwrap(), base + 1);
    drop(d);
    assert_eq!(m.live_objects().unwrap(), base);
}

#[test]
fn reading_returns_a_copy() {
    let m = Manager::start_in_thread().unwrap();
    let d = m.dict::<u8, Vec<u8>>().unwrap();
    d.insert(1, vec![1]).unwrap();
    let mut copy = d.get(&1).unwrap().unwrap();
    copy.push(2);
    assert_eq!(d.get(&1).unwrap().unwrap(), [1]);
}

#[test]
fn custom_type_methods_errors_and_unknown_methods() {
    let m = Manager::builder()
        .register::<Account>()
        .start_in_thread()
        .unwrap();
    let a: AccountProxy = m.create(Account { balance: 10 }).unwrap();
    assert_eq!(a.deposit(5).unwrap(), 15);
    assert_eq!(
        a.withdraw(20).unwrap(),
        Err(BankError::Insufficient { missing: 5 })
    );
    assert_eq!(a.withdraw(5).unwrap(), Ok(10));
    let e = a.boom().unwrap_err();
    assert_eq!(e.as_remote().unwrap().kind, RemoteErrorKind::Panicked);
    assert_eq!(a.balance().unwrap(), 10);
    // `secret` exists on the type but is not exposed.
    // A request of a method index the type does not have (its four methods are #0 to #3):
    // what a client of another definition would send.
    #[derive(Serialize)]
    enum Bogus {
        _Deposit,
        _Withdraw,
        _Balance,
        _Boom,
        Secret,
    }
    let e = processing_manager::Proxy::as_raw(&a)
        .request::<_, i64>(&Bogus::Secret)
        .unwrap_err();
    assert!(e.is_unknown_method(), "{e}");
    assert_eq!(a.balance().unwrap(), 10);
}

#[test]
fn unregistered_custom_type_is_refused() {
    let m = Manager::start_in_thread().unwrap();
    let e = m.create(Account { balance: 1 }).unwrap_err();
    assert_eq!(e.as_remote().unwrap().kind, RemoteErrorKind::NotRegistered);
}

#[test]
fn wrong_authkey_is_refused() {
    let key = b"right key".to_vec();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        Manager::builder()
            .authkey(key)
            .serve_with("127.0.0.1:0", |a| tx.send(a.clone()).unwrap())
            .unwrap();
    });
    let address = rx.recv().unwrap();
    let e = Manager::connect(address.clone(), b"wrong key".to_vec()).unwrap_err();
    assert!(e.is_auth(), "{e}");
    let m = Manager::connect(address, b"right key".to_vec()).unwrap();
    let q = m.queue::<u8>().unwrap();
    q.put(1).unwrap();
    assert_eq!(q.get().unwrap(), 1);
    m.shutdown().unwrap();
    server.join().unwrap();
}

#[test]
fn proxy_after_shutdown_is_an_error_not_a_hang() {
    let m = Manager::start_in_thread().unwrap();
    let q = m.queue::<u8>().unwrap();
    let waiter = {
        let q = q.clone();
        std::thread::spawn(move || q.get())
    };
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    m.shutdown().unwrap();
    assert!(waiter.join().unwrap().is_err());
    let e = q.put(1).unwrap_err();
    assert!(e.is_manager(), "{e}");
    let cause = std::error::Error::source(&e)
        .and_then(|c| c.downcast_ref::<ManagerError>())
        .expect("the manager's error is the source");
    assert!(cause.is_disconnected(), "{cause}");
    assert_eq!(e.into_inner(), 1);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn blocking_primitives_across_threads() {
    let m = Manager::start_in_thread().unwrap();
    let (lock, ev, barrier, cond) = (
        m.lock().unwrap(),
        m.event().unwrap(),
        m.barrier(3).unwrap(),
        m.condition().unwrap(),
    );
    let counter = m.value(0i64).unwrap();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (lock, ev, barrier, counter) =
                (lock.clone(), ev.clone(), barrier.clone(), counter.clone());
            std::thread::spawn(move || {
                ev.wait().unwrap();
                for _ in 0..50 {
                    let _g = lock.acquire().unwrap();
                    let v = counter.get().unwrap();
                    counter.set(v + 1).unwrap();
                }
                barrier.wait().unwrap()
            })
        })
        .collect();
    ev.set().unwrap();
    barrier.wait().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(counter.get().unwrap(), 100);
    let _g = cond.acquire().unwrap();
    assert!(!cond.wait_timeout(Duration::from_millis(20)).unwrap());
}

#[test]
fn lock_held_by_a_vanished_client_is_released() {
    let m = Manager::start_in_thread().unwrap();
    let lock = m.lock().unwrap();
    let l2 = lock.clone();
    std::thread::spawn(move || {
        l2.acquire().unwrap().forget();
        // The thread exits holding the lock: its connection closes.
    })
    .join()
    .unwrap();
    let _g = lock.acquire_timeout(Duration::from_secs(10)).unwrap();
}

#[test]
fn named_objects_and_type_mismatch() {
    let m = Manager::start_in_thread().unwrap();
    let a = m.named("x").list::<u8>().unwrap();
    a.push(1).unwrap();
    let b = m.lookup::<ListProxy<u8>>("x").unwrap().unwrap();
    assert_eq!(b.to_vec().unwrap(), [1]);
    let e = m.lookup::<ListProxy<String>>("x").unwrap_err();
    assert_eq!(e.as_remote().unwrap().kind, RemoteErrorKind::TypeMismatch);
    assert!(m.lookup::<ListProxy<u8>>("y").unwrap().is_none());
}

#[test]
fn incompatible_custom_type_definition_is_refused() {
    // A client whose `Account` has other methods than the server's: simulated by a type with
    // the same name in another module is not possible, so compare identities directly.
    let a = processing_manager::TypeIdentity::new("app::Account", 8, "fn balance(&self) -> i64;");
    let b = processing_manager::TypeIdentity::new("app::Account", 8, "fn balance(&self) -> i32;");
    assert_ne!(a, b);
    let _: Option<ManagerError> = None;
}

#[test]
fn messages_larger_than_the_mailbox_travel_on_the_socket() {
    let m = Manager::start_in_thread().unwrap();
    let l = m.list::<Vec<u8>>().unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    l.push(big.clone()).unwrap();
    l.push(vec![1]).unwrap();
    assert_eq!(l.get(0).unwrap(), big);
    assert_eq!(l.to_vec().unwrap(), [big, vec![1]]);
}
