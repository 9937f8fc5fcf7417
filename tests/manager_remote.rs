//! Conformance M07–M08: a manager served on a TCP port with an authkey and used by client
//! processes; failure modes (shutdown, killed server) and restarting on the same address.

mod support;

use support::free_port;

use std::time::{Duration, Instant};

use processing::manager::{EventProxy, ListProxy, Manager, ManagerBuilder, QueueProxy};
use processing::Process;

const PATIENCE: Duration = Duration::from_secs(30);

fn serve_main((address, key): (String, Vec<u8>)) {
    Manager::builder()
        .authkey(key)
        .serve(address.as_str())
        .expect("serve");
}

fn start_server(address: &str, key: &[u8]) -> Process<()> {
    let mut p = Process::new(serve_main, (address.to_string(), key.to_vec()));
    p.start().unwrap();
    p
}

fn connect(address: &str, key: &[u8]) -> Manager {
    ManagerBuilder::new()
        .authkey(key.to_vec())
        .connect_timeout(address, PATIENCE)
        .expect("connect")
}

fn producer((address, key): (String, Vec<u8>)) {
    let m = connect(&address, &key);
    let q = m.named("jobs").queue::<u32>().unwrap();
    for i in 0..100 {
        q.put(i).unwrap();
    }
}

fn consumer((address, key): (String, Vec<u8>)) -> u32 {
    let m = connect(&address, &key);
    let q = m.named("jobs").queue::<u32>().unwrap();
    (0..100).map(|_| q.get().unwrap()).sum()
}

#[test]
fn m07_remote_manager() {
    let port = free_port();
    let key = b"m07 shared secret".to_vec();
    // Bound on every interface, so another host could connect; the clients use loopback.
    let mut server = start_server(&format!("0.0.0.0:{port}"), &key);
    let address = format!("127.0.0.1:{port}");
    let mut consumer_p = Process::new(consumer, (address.clone(), key.clone()));
    consumer_p.start().unwrap();
    let mut producer_p = Process::new(producer, (address.clone(), key.clone()));
    producer_p.start().unwrap();
    producer_p.join().unwrap();
    assert_eq!(consumer_p.join().unwrap(), (0..100).sum::<u32>());

    let wrong = ManagerBuilder::new()
        .authkey(b"not the key".to_vec())
        .connect(address.as_str());
    assert!(wrong.unwrap_err().is_auth());

    let m = connect(&address, &key);
    let q: QueueProxy<u32> = m.lookup("jobs").unwrap().expect("named queue exists");
    assert!(q.is_empty().unwrap());
    m.shutdown().unwrap();
    server.join().unwrap();
}

/// A started manager and a list of it that holds one item: each call on the list afterwards
/// reaches the server.
fn manager_with_a_list() -> (Manager, ListProxy<u32>) {
    let m = Manager::start().unwrap();
    let l = m.list::<u32>().unwrap();
    l.push(1).unwrap();
    (m, l)
}

fn blocked_getter((q, started): (QueueProxy<u32>, EventProxy)) -> bool {
    // The reply may be lost to the shutdown this signal triggers; the call was applied.
    let _ = started.set();
    q.get().is_err()
}

#[test]
fn m08_proxy_after_shutdown_is_an_error_not_a_hang() {
    let (m, l) = manager_with_a_list();
    let q = m.queue::<u32>().unwrap();
    let started = m.event().unwrap();
    let mut waiter = Process::new(blocked_getter, (q.clone(), started.clone()));
    waiter.start().unwrap();
    started.wait().unwrap();
    let t = Instant::now();
    m.shutdown().unwrap();
    let e = l.len().unwrap_err();
    assert!(e.is_disconnected(), "{e}");
    assert!(l.push(2).is_err());
    assert!(t.elapsed() < PATIENCE);
    assert!(
        waiter.join().unwrap(),
        "a call blocked in the server fails when it stops"
    );
}

/// The server killed from outside: SIGKILL on Unix, TerminateProcess on Windows.
#[test]
fn m08_proxy_after_server_killed_is_an_error_not_a_hang() {
    let (m, l) = manager_with_a_list();
    let pid = m
        .server_pid()
        .expect("a started manager has a server process");
    processing_suite::kill_from_outside(pid);
    let t = Instant::now();
    loop {
        if l.push(2).is_err() {
            break;
        }
        assert!(
            t.elapsed() < PATIENCE,
            "calls kept succeeding after the server was killed"
        );
    }
    assert!(l.len().is_err());
    assert!(t.elapsed() < PATIENCE);
    drop(m);
}

#[test]
fn m08_restart_on_the_same_address() {
    let key = b"m08".to_vec();
    let address = format!("127.0.0.1:{}", free_port());

    let mut first = start_server(&address, &key);
    let m = connect(&address, &key);
    let old: ListProxy<u32> = m.named("l").list().unwrap();
    old.push(1).unwrap();
    m.shutdown().unwrap();
    first.join().unwrap();
    assert!(old.len().is_err());

    let mut second = start_server(&address, &key);
    let m = connect(&address, &key);
    let new: ListProxy<u32> = m.named("l").list().unwrap();
    assert_eq!(new.len().unwrap(), 0, "a fresh server");
    // A proxy of the earlier run is refused, never aliased to an object of the new run.
    let e = old.len().unwrap_err();
    assert!(e.is_disconnected(), "{e}");
    m.shutdown().unwrap();
    second.join().unwrap();
}
