//! The server's bookkeeping of client processes, driven by connections that play client
//! processes (a process id, an anchor or not) so that the orderings that matter can be forced.

use std::time::{Duration, Instant};

use processing_core::codec::{decode, encode};

use crate::calls::{ControlReply, ControlRequest, QueueRequest, Wait};
use crate::client::open_for_test;
use crate::protocol::STATUS_OK;
use crate::server::objects::{Init, Kind};
use crate::wire::Framed;
use crate::{ListProxy, Manager, Proxy, QueueProxy};

const PATIENCE: Duration = Duration::from_secs(60);

/// Waits (polling, bounded) until `check` holds; whether it did.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// A client process played by two connections to `m`: its anchor (the process lives while it
/// is open) and one connection for its calls.
fn open_process(m: &Manager, process: u64) -> (Framed, Framed) {
    let anchor = open_for_test(m.address(), process, true);
    (anchor, open_for_test(m.address(), process, false))
}

fn send(conn: &mut Framed, object: u64, request: &[u8]) {
    conn.send(&[&object.to_le_bytes(), request]).expect("send");
}

/// The payload of the reply, or `None` when the server closed the connection instead.
fn reply(conn: &mut Framed) -> Option<Vec<u8>> {
    let frame = conn.recv(Duration::ZERO).ok()?;
    assert_eq!(frame.first(), Some(&STATUS_OK), "the call failed");
    Some(frame[1..].to_vec())
}

fn create_request() -> Vec<u8> {
    encode(&ControlRequest::Create {
        kind: Kind::List,
        tag: ListProxy::<u32>::tag(),
        init: Init::Elems(Vec::new()),
        name: None,
    })
    .unwrap()
}

/// Creates a list on `conn` (which then holds it).
fn create_list(conn: &mut Framed) -> u64 {
    send(conn, 0, &create_request());
    match decode(&reply(conn).expect("a reply")).unwrap() {
        ControlReply::Created(id) => id,
        other => panic!("unexpected reply {other:?}"),
    }
}

fn get_request(wait: Wait) -> Vec<u8> {
    encode(&QueueRequest::Get { wait }).unwrap()
}

/// A process whose anchor closed while it had a call in progress: what that call's reply
/// gives it is given back at once (the process is gone), not booked for ever.
#[test]
fn a_reply_settled_after_its_process_ended_gives_its_references_back() {
    let m = Manager::start_in_thread().unwrap();
    let base = m.live_objects().unwrap();
    let (anchor, mut conn) = open_process(&m, 0x5eed_0000_0000_0001);
    create_list(&mut conn);
    assert_eq!(m.live_objects().unwrap(), base + 1);
    // The process ends: its anchor closes, and what it held is given back.
    drop(anchor);
    assert!(eventually(|| m.live_objects().unwrap() == base));
    // A call of that process served after its end (its request was on the way): the object
    // created for it is freed at once, and the connection closes instead of answering.
    send(&mut conn, 0, &create_request());
    assert!(
        reply(&mut conn).is_none(),
        "a reply to a process that ended"
    );
    assert_eq!(m.live_objects().unwrap(), base);
    m.shutdown().unwrap();
}

/// The window of the flaky R11: a `get` waiting when its process ends takes an item after the
/// end. The item goes back to the queue (with its reference), nothing leaks.
#[test]
fn a_get_that_completes_after_its_process_ended_puts_the_item_back() {
    let m = Manager::start_in_thread().unwrap();
    let q: QueueProxy<ListProxy<u32>> = m.queue().unwrap();
    let list = m.list_from([1u32, 2, 3]).unwrap();
    let base = m.live_objects().unwrap();
    let (anchor, mut conn) = open_process(&m, 0x5eed_0000_0000_0002);
    create_list(&mut conn);
    send(&mut conn, q.as_raw().id(), &get_request(Wait::Forever));
    drop(anchor);
    // The release of the process's life (its list freed) while its get still waits.
    assert!(eventually(|| m.live_objects().unwrap() == base));
    q.put(list.clone()).unwrap();
    // The get takes the item, finds its process gone, and puts it back.
    assert!(
        reply(&mut conn).is_none(),
        "a reply to a process that ended"
    );
    assert_eq!(q.len().unwrap(), 1);
    drop(conn);
    drop(list);
    assert_eq!(m.live_objects().unwrap(), base);
    assert_eq!(q.get().unwrap().to_vec().unwrap(), [1, 2, 3]);
    m.shutdown().unwrap();
}

/// A process id that connects again after its anchor closed starts a new life: its new
/// references are booked (and given back when that life ends).
#[test]
fn a_process_that_connects_again_starts_a_new_life() {
    let m = Manager::start_in_thread().unwrap();
    let base = m.live_objects().unwrap();
    let process = 0x5eed_0000_0000_0003;
    let (anchor, mut old) = open_process(&m, process);
    create_list(&mut old);
    drop(anchor);
    assert!(eventually(|| m.live_objects().unwrap() == base));
    let (anchor, mut conn) = open_process(&m, process);
    create_list(&mut conn);
    create_list(&mut conn);
    assert_eq!(m.live_objects().unwrap(), base + 2);
    // A late call on a connection of the old life does not touch the new one.
    send(&mut old, 0, &create_request());
    assert!(reply(&mut old).is_none());
    assert_eq!(m.live_objects().unwrap(), base + 2);
    drop(conn);
    assert_eq!(m.live_objects().unwrap(), base + 2, "the anchor keeps them");
    drop(anchor);
    assert!(eventually(|| m.live_objects().unwrap() == base));
    m.shutdown().unwrap();
}

/// A client that sent a `get` and closed its sending side: the server, which sees the client
/// gone, does not send it the item (a shared-memory mailbox would accept it all the same) but
/// puts it back at the head of the queue, the order and the count of unfinished tasks unchanged.
#[cfg(unix)]
#[test]
fn a_get_for_a_client_gone_puts_the_item_back_at_the_head() {
    use crate::JoinableQueueProxy;
    let m = Manager::start_in_thread().unwrap();
    let q: JoinableQueueProxy<u32> = m.joinable_queue().unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    let mut conn = open_for_test(m.address(), 0x5eed_0000_0000_0004, false);
    send(&mut conn, q.as_raw().id(), &get_request(Wait::No));
    shut(&conn, std::net::Shutdown::Write);
    // The server reads the request, takes item 1, finds the client gone, puts it back and
    // closes the connection: no reply.
    assert!(
        reply(&mut conn).is_none(),
        "the item was sent to a client gone"
    );
    assert_eq!(q.len().unwrap(), 2);
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.get().unwrap(), 2);
    q.task_done().unwrap();
    q.task_done().unwrap();
    q.join_timeout(PATIENCE).unwrap();
    assert!(q.task_done().is_err(), "one task done too many");
    m.shutdown().unwrap();
}

/// The reply's send itself fails (the client shut its reading side: the server sees no end of
/// stream, its write fails): the item goes back, with its reference.
#[cfg(unix)]
#[test]
fn a_get_whose_reply_fails_to_send_puts_the_item_back() {
    let m = Manager::start_in_thread().unwrap();
    let q: QueueProxy<ListProxy<u32>> = m.queue().unwrap();
    q.put(m.list_from([1u32]).unwrap()).unwrap();
    q.put(m.list_from([2u32]).unwrap()).unwrap();
    let base = m.live_objects().unwrap();
    let mut conn = open_for_test(m.address(), 0x5eed_0000_0000_0005, false);
    shut(&conn, std::net::Shutdown::Read);
    send(&mut conn, q.as_raw().id(), &get_request(Wait::No));
    // The server closes the connection after its send failed (and the item went back).
    let mut hung_up = [libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&conn.stream.as_fd()),
        events: 0,
        revents: 0,
    }];
    let n = processing_core::os::poll(&mut hung_up, PATIENCE.as_millis() as i32).unwrap();
    assert_eq!(n, 1, "the server did not close the connection");
    assert_ne!(hung_up[0].revents & libc::POLLHUP, 0);
    assert_eq!(q.len().unwrap(), 2);
    assert_eq!(
        m.live_objects().unwrap(),
        base,
        "the item's reference went back with it"
    );
    assert_eq!(q.get().unwrap().to_vec().unwrap(), [1]);
    assert_eq!(q.get().unwrap().to_vec().unwrap(), [2]);
    drop(conn);
    m.shutdown().unwrap();
}

#[cfg(unix)]
fn shut(conn: &Framed, how: std::net::Shutdown) {
    use crate::sys::Stream;
    match &conn.stream {
        Stream::Unix(s) => s.shutdown(how).unwrap(),
        Stream::Tcp(s) => s.shutdown(how).unwrap(),
    }
}
