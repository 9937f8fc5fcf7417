//! The server's bookkeeping of client processes, driven by connections that play client
//! processes (a process id, an anchor or not) so that the orderings that matter can be forced.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use processing_core::codec::{decode, encode};

use crate::calls::{ControlReply, ControlRequest, QueueRequest, Wait};
use crate::client::open_for_test;
use crate::protocol::STATUS_OK;
use crate::server::objects::{Init, Kind};
use crate::wire::Framed;
use crate::{Address, ListProxy, Manager, Proxy, QueueProxy};
#[cfg(unix)]
use crate::{DictProxy, ValueProxy};

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
    // The reply is held until the client is gone (else the server could answer first).
    let gate = Armed::arm(&m, q.as_raw().id());
    send(&mut conn, q.as_raw().id(), &get_request(Wait::No));
    gate.wait_reached();
    shut(&conn, std::net::Shutdown::Write);
    gate.open();
    // The server took item 1, finds the client gone, puts it back and closes the connection:
    // no reply.
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

/// A reply held on its way out, armed by a test for one object of one server: the window in
/// which the tests kill a client whose call took a value out of that object.
struct Gate {
    address: String,
    object: u64,
    reached: bool,
    open: bool,
}

static GATES: Mutex<Vec<Gate>> = Mutex::new(Vec::new());
static GATES_CHANGED: Condvar = Condvar::new();

fn gates() -> std::sync::MutexGuard<'static, Vec<Gate>> {
    GATES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Called by the server (tests only) after a call to `object` took a value out, before its
/// reply is settled: an armed gate holds the reply there until the test opens it.
pub(super) fn reply_gate(address: &Address, object: u64) {
    let address = address.to_string();
    let mut gates = gates();
    let Some(gate) = gates
        .iter_mut()
        .find(|g| g.address == address && g.object == object && !g.reached)
    else {
        return;
    };
    gate.reached = true;
    GATES_CHANGED.notify_all();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let at = gates
            .iter()
            .position(|g| g.address == address && g.object == object);
        match at {
            Some(at) if gates[at].open => {
                gates.remove(at);
                return;
            }
            None => return,
            Some(_) if Instant::now() >= deadline => return,
            Some(_) => {
                gates = GATES_CHANGED
                    .wait_timeout(gates, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
}

/// A test's handle on its gate.
#[cfg(unix)]
struct Armed {
    address: String,
    object: u64,
}

#[cfg(unix)]
impl Armed {
    /// Holds the reply of the next take-out from `object` (of `m`'s server).
    fn arm(m: &Manager, object: u64) -> Armed {
        let address = m.address().to_string();
        gates().push(Gate {
            address: address.clone(),
            object,
            reached: false,
            open: false,
        });
        Armed { address, object }
    }

    fn find<'g>(&self, gates: &'g mut [Gate]) -> Option<&'g mut Gate> {
        gates
            .iter_mut()
            .find(|g| g.address == self.address && g.object == self.object)
    }

    /// Waits until a call took a value out and its reply is held.
    fn wait_reached(&self) {
        let deadline = Instant::now() + PATIENCE;
        let mut gates = gates();
        while !self.find(&mut gates).is_some_and(|g| g.reached) {
            assert!(Instant::now() < deadline, "no take-out reached the gate");
            gates = GATES_CHANGED
                .wait_timeout(gates, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Lets the held reply go on.
    fn open(self) {
        if let Some(gate) = self.find(&mut gates()) {
            gate.open = true;
        }
        GATES_CHANGED.notify_all();
    }
}

/// Starts a client process running `call(args)`, waits until the server holds the reply of its
/// take-out from `object`, lets `meanwhile` run, kills the client, and lets the reply go on:
/// a reply that can never be delivered.
#[cfg(unix)]
fn kill_mid_take_out<A: serde::Serialize + serde::de::DeserializeOwned>(
    m: &Manager,
    object: u64,
    call: impl Fn(A) + 'static,
    args: A,
    meanwhile: impl FnOnce(),
) {
    let gate = Armed::arm(m, object);
    let mut client = processing_process::Process::new(call, args);
    client.start().expect("start the client");
    gate.wait_reached();
    meanwhile();
    client.kill().expect("kill the client");
    assert!(
        client.join_timeout(PATIENCE).is_err(),
        "the client ended its call"
    );
    gate.open();
}

/// Waits until the manager has `n` live objects; else fails with `what` and the count.
fn assert_live(m: &Manager, n: usize, what: &str) {
    assert!(
        eventually(|| m.live_objects().unwrap() == n),
        "{what}: {} objects, {n} expected",
        m.live_objects().unwrap()
    );
}

/// Runs `test` against a fresh in-thread manager (given its count of live objects); once the
/// test dropped all it made, no object may be left (no reference leaked).
fn without_leaks(test: impl FnOnce(&Manager, usize)) {
    let m = Manager::start_in_thread().unwrap();
    let before = m.live_objects().unwrap();
    test(&m, before);
    assert_live(&m, before, "a reference leaked");
    m.shutdown().unwrap();
}

/// The contents of a list of lists.
#[cfg(unix)]
fn nested(l: &ListProxy<ListProxy<u32>>) -> Vec<Vec<u32>> {
    l.to_vec()
        .unwrap()
        .iter()
        .map(|inner| inner.to_vec().unwrap())
        .collect()
}

/// A list of one-element lists `[[0], [1], ...]`.
#[cfg(unix)]
fn list_of_lists(m: &Manager, n: u32) -> ListProxy<ListProxy<u32>> {
    let l = m.list().unwrap();
    for i in 0..n {
        l.push(m.list_from([i]).unwrap()).unwrap();
    }
    l
}

/// A client process killed while its `pop_at(1)` is in flight: the element is back at index
/// 1, with its reference (nothing freed, nothing leaked once the list goes).
#[cfg(unix)]
#[test]
fn a_list_pop_for_a_killed_client_puts_the_element_back_at_its_index() {
    without_leaks(|m, _| {
        let l = list_of_lists(m, 4);
        let base = m.live_objects().unwrap();
        kill_mid_take_out(
            m,
            l.as_raw().id(),
            |l: ListProxy<ListProxy<u32>>| drop(l.pop_at(1)),
            l.clone(),
            || assert_eq!(l.len().unwrap(), 3, "the element is out while held"),
        );
        assert!(eventually(|| l.len().unwrap() == 4), "the element is lost");
        assert_eq!(nested(&l), [[0], [1], [2], [3]]);
        assert!(eventually(|| m.live_objects().unwrap() == base));
        drop(l);
    });
}

/// The list shrank while the popped element was away: it goes back at the end. A `pop` of the
/// last element goes back at the index it had, before the elements pushed meanwhile, as if it
/// had stayed.
#[cfg(unix)]
#[test]
fn a_list_pop_for_a_killed_client_goes_back_at_the_end_when_the_list_shrank() {
    without_leaks(|m, _| {
        let l = list_of_lists(m, 4);
        kill_mid_take_out(
            m,
            l.as_raw().id(),
            |l: ListProxy<ListProxy<u32>>| drop(l.pop_at(2)),
            l.clone(),
            || {
                // [0, 1, 3] -> [0]
                assert_eq!(l.pop().unwrap().unwrap().to_vec().unwrap(), [3]);
                assert_eq!(l.pop().unwrap().unwrap().to_vec().unwrap(), [1]);
            },
        );
        assert!(eventually(|| l.len().unwrap() == 2), "the element is lost");
        assert_eq!(nested(&l), [[0], [2]]);
        kill_mid_take_out(
            m,
            l.as_raw().id(),
            |l: ListProxy<ListProxy<u32>>| drop(l.pop()),
            l.clone(),
            || l.push(m.list_from([7]).unwrap()).unwrap(),
        );
        assert!(eventually(|| l.len().unwrap() == 3), "the element is lost");
        assert_eq!(nested(&l), [[0], [2], [7]]);
        drop(l);
    });
}

/// A client process killed while its dict `remove` is in flight: the value is back under its
/// key, at its place in insertion order, with its reference (and its key's).
#[cfg(unix)]
#[test]
fn a_dict_pop_for_a_killed_client_puts_the_value_back_under_its_key() {
    without_leaks(|m, _| {
        let d = m.dict::<ListProxy<u32>, ListProxy<u32>>().unwrap();
        let keys: Vec<ListProxy<u32>> = (0..3).map(|i| m.list_from([i]).unwrap()).collect();
        for (i, k) in keys.iter().enumerate() {
            d.insert(k.clone(), m.list_from([10 + i as u32]).unwrap())
                .unwrap();
        }
        let base = m.live_objects().unwrap();
        kill_mid_take_out(
            m,
            d.as_raw().id(),
            |(d, key): (DictProxy<ListProxy<u32>, ListProxy<u32>>, ListProxy<u32>)| {
                drop(d.remove(&key))
            },
            (d.clone(), keys[1].clone()),
            || assert_eq!(d.len().unwrap(), 2, "the entry is out while held"),
        );
        assert!(eventually(|| d.len().unwrap() == 3), "the value is lost");
        let items: Vec<(Vec<u32>, Vec<u32>)> = d
            .items()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_vec().unwrap(), v.to_vec().unwrap()))
            .collect();
        assert_eq!(
            items,
            [
                (vec![0], vec![10]),
                (vec![1], vec![11]),
                (vec![2], vec![12])
            ]
        );
        assert!(eventually(|| m.live_objects().unwrap() == base));
        drop((d, keys));
    });
}

/// The key was set again while the removed value was away: the newer value wins, and the
/// removed one is dropped with its references released (its object freed).
#[cfg(unix)]
#[test]
fn a_dict_pop_for_a_killed_client_yields_to_a_newer_value_and_releases_the_old() {
    without_leaks(|m, _| {
        let d = m.dict::<String, ListProxy<u32>>().unwrap();
        d.insert("a".into(), m.list_from([1]).unwrap()).unwrap();
        d.insert("b".into(), m.list_from([2]).unwrap()).unwrap();
        let base = m.live_objects().unwrap();
        kill_mid_take_out(
            m,
            d.as_raw().id(),
            |d: DictProxy<String, ListProxy<u32>>| drop(d.remove(&"a".into())),
            d.clone(),
            || {
                let newer = m.list_from([3]).unwrap();
                assert!(d.insert("a".into(), newer).unwrap().is_none());
            },
        );
        // The old value [1] is freed once dropped; the newer one [3] took its place.
        assert_live(m, base, "the old value was not released");
        assert_eq!(d.get(&"a".into()).unwrap().unwrap().to_vec().unwrap(), [3]);
        assert_eq!(d.keys().unwrap(), ["b", "a"]);
        drop(d);
    });
}

/// A client that shut its sending side while the reply of its namespace `remove` was on its
/// way: the value is back under its name, with its reference.
#[cfg(unix)]
#[test]
fn a_namespace_remove_for_a_client_gone_puts_the_value_back() {
    let m = Manager::start_in_thread().unwrap();
    let ns = m.namespace().unwrap();
    let inner = m.list_from([5u32]).unwrap();
    ns.set("x", &inner).unwrap();
    drop(inner);
    let base = m.live_objects().unwrap();
    let mut conn = open_for_test(m.address(), 0x5eed_0000_0000_0006, false);
    let request = encode(&crate::calls::NamespaceRequest::Remove { name: "x".into() }).unwrap();
    let gate = Armed::arm(&m, ns.as_raw().id());
    send(&mut conn, ns.as_raw().id(), &request);
    gate.wait_reached();
    assert!(!ns.contains("x").unwrap(), "the value is out while held");
    shut(&conn, std::net::Shutdown::Write);
    gate.open();
    assert!(
        reply(&mut conn).is_none(),
        "the value was sent to a client gone"
    );
    assert_eq!(
        m.live_objects().unwrap(),
        base,
        "the value's object was freed"
    );
    let back: ListProxy<u32> = ns.get("x").unwrap().expect("the value is lost");
    assert_eq!(back.to_vec().unwrap(), [5]);
    drop(conn);
    m.shutdown().unwrap();
}

/// A client process killed while its value `swap` is in flight: the swap is undone (the
/// previous value back, the swapped-in one released) unless the value was written since: then
/// the newer value wins and the previous one is released.
#[cfg(unix)]
#[test]
fn a_value_swap_for_a_killed_client_is_undone_unless_written_since() {
    type Swap = (ValueProxy<ListProxy<u32>>, ListProxy<u32>);
    without_leaks(|m, before| {
        let v = m.value(m.list_from([1u32]).unwrap()).unwrap();
        let two = m.list_from([2u32]).unwrap();
        kill_mid_take_out(
            m,
            v.as_raw().id(),
            |(v, new): Swap| drop(v.swap(new)),
            (v.clone(), two.clone()),
            || {
                assert_eq!(
                    v.get().unwrap().to_vec().unwrap(),
                    [2],
                    "swapped while held"
                )
            },
        );
        assert!(
            eventually(|| v.get().unwrap().to_vec().unwrap() == [1]),
            "the previous value is lost"
        );
        drop(two);
        assert_live(m, before + 2, "the swapped-in value was not released");
        let three = m.list_from([3u32]).unwrap();
        kill_mid_take_out(
            m,
            v.as_raw().id(),
            |(v, new): Swap| drop(v.swap(new)),
            (v.clone(), three.clone()),
            || v.set(m.list_from([4u32]).unwrap()).unwrap(),
        );
        drop(three);
        // [1] (the previous value, not put back) and [3] (overwritten) are freed.
        assert_live(m, before + 2, "the previous value was not released");
        assert_eq!(v.get().unwrap().to_vec().unwrap(), [4]);
        drop(v);
    });
}

/// A dict `remove` whose reply is delivered releases the key it kept for its undo: the removed
/// key's object is freed once its last proxy goes.
#[test]
fn a_delivered_dict_pop_releases_its_key() {
    without_leaks(|m, before| {
        let d = m.dict::<ListProxy<u32>, u32>().unwrap();
        let key = m.list_from([1u32]).unwrap();
        d.insert(key.clone(), 7).unwrap();
        assert_eq!(d.remove(&key).unwrap(), Some(7));
        assert!(d.is_empty().unwrap());
        drop(key);
        assert_live(m, before + 1, "the removed key is still held");
        drop(d);
    });
}
