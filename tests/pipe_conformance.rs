//! C01–C08: Pipe and Connection across real processes (see docs/conformance.md).

use std::time::{Duration, Instant};

#[cfg(unix)]
use processing::transport::FrameError;
use processing::transport::{ConnectionError, Waitable};
use processing::{spawn, wait, Connection, Pipe, Process};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Text(String),
    Numbers(Vec<i64>),
    Pair(u8, f64),
    Stop,
}

fn echo_typed(conn: Connection<Msg>) -> u32 {
    let mut n = 0;
    while let Ok(m) = conn.recv() {
        if m == Msg::Stop {
            break;
        }
        conn.send(&m).unwrap();
        n += 1;
    }
    n
}

fn echo_bytes(conn: Connection<()>) {
    while let Ok(b) = conn.recv_bytes() {
        if conn.send_bytes(&b).is_err() {
            break;
        }
    }
}

#[test]
fn c01_round_trips_buffer_too_short_and_eof() {
    let (parent, child) = Pipe::new::<Msg>().unwrap();
    let mut p = spawn(echo_typed, child).unwrap();
    for m in [
        Msg::Text("hello".into()),
        Msg::Numbers(vec![1, -2, 3]),
        Msg::Pair(7, 2.5),
    ] {
        parent.send(&m).unwrap();
        assert_eq!(parent.recv().unwrap(), m);
    }
    parent.send(&Msg::Stop).unwrap();
    assert_eq!(p.join().unwrap(), 3);
    // The child's end is gone with the child: the end of the stream is an error.
    let e = parent.recv().unwrap_err();
    assert!(matches!(e, ConnectionError::Eof), "{e}");

    let (parent, child) = Pipe::new::<()>().unwrap();
    let mut p = spawn(echo_bytes, child).unwrap();
    parent.send_bytes(b"abc").unwrap();
    assert_eq!(parent.recv_bytes().unwrap(), b"abc");
    parent.send_bytes(b"hello").unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(parent.recv_bytes_into(&mut buf, 3).unwrap(), 5);
    assert_eq!(&buf[3..8], b"hello");
    parent
        .send_bytes(b"a message longer than the room")
        .unwrap();
    match parent.recv_bytes_into(&mut buf, 4) {
        Err(ConnectionError::BufferTooShort(m)) => assert_eq!(m, b"a message longer than the room"),
        other => panic!("expected BufferTooShort, got {other:?}"),
    }
    let big: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 253) as u8).collect();
    parent.send_bytes(&big).unwrap();
    assert!(parent.recv_bytes().unwrap() == big, "16 MiB round trip");
    drop(parent);
    p.join().unwrap();
}

fn wait_then_send(conn: Connection<u32>) {
    // Wait for the go-ahead, then answer.
    let v = conn.recv().unwrap();
    conn.send(&(v + 1)).unwrap();
}

#[test]
fn c02_poll() {
    let (parent, child) = Pipe::new::<u32>().unwrap();
    let mut p = spawn(wait_then_send, child).unwrap();
    let t = Instant::now();
    assert!(!parent.poll(Duration::ZERO).unwrap());
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "poll(0) returns at once"
    );
    let t = Instant::now();
    assert!(!parent.poll(Duration::from_millis(300)).unwrap());
    let el = t.elapsed();
    assert!(
        el >= Duration::from_millis(300) && el < Duration::from_secs(5),
        "{el:?}"
    );
    parent.send(&41).unwrap();
    assert!(parent.poll(Duration::from_secs(10)).unwrap());
    let t = Instant::now();
    assert!(parent.poll(Duration::from_secs(10)).unwrap());
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "poll with data pending returns at once"
    );
    assert_eq!(parent.recv().unwrap(), 42);
    p.join().unwrap();
}

fn simplex_writer(tx: Connection<String, processing::transport::WriteOnly>) {
    tx.send(&"one way".to_string()).unwrap();
}

#[test]
fn c03_simplex_pipe_is_one_way_by_type() {
    // `rx.send(..)` and `tx.recv()` do not compile (see the compile_fail doctests of
    // `Pipe::simplex`); here the allowed direction works across processes.
    let (rx, tx) = Pipe::simplex::<String>().unwrap();
    let mut p = spawn(simplex_writer, tx).unwrap();
    assert_eq!(rx.recv().unwrap(), "one way");
    p.join().unwrap();
    assert!(rx.recv().unwrap_err().is_eof());
}

fn send_many(conn: Connection<()>) {
    conn.send_bytes(b"").unwrap();
    for i in 0..200usize {
        conn.send_bytes(&vec![i as u8; i * 37]).unwrap();
        conn.send_bytes(b"").unwrap();
    }
}

#[test]
fn c04_empty_messages_and_boundaries() {
    let (parent, child) = Pipe::new::<()>().unwrap();
    let mut p = spawn(send_many, child).unwrap();
    assert!(
        parent.poll(Duration::from_secs(10)).unwrap(),
        "an empty message makes poll true"
    );
    assert_eq!(parent.recv_bytes().unwrap(), b"");
    for i in 0..200usize {
        assert_eq!(parent.recv_bytes().unwrap(), vec![i as u8; i * 37]);
        assert_eq!(parent.recv_bytes().unwrap(), b"");
    }
    p.join().unwrap();
}

#[test]
fn c05_parent_closes_child_end_after_start() {
    let (parent, child) = Pipe::new::<Msg>().unwrap();
    let mut p = Process::new(echo_typed, child.clone());
    p.start().unwrap();
    child.close();
    parent.send(&Msg::Text("still works".into())).unwrap();
    assert_eq!(parent.recv().unwrap(), Msg::Text("still works".into()));
    parent.send(&Msg::Stop).unwrap();
    assert_eq!(p.join().unwrap(), 1);
}

fn relay(carrier: Connection<Connection<String>>) -> String {
    let conn = carrier.recv().unwrap();
    let m = conn.recv().unwrap();
    conn.send(&format!("{m} via a connection received over a pipe"))
        .unwrap();
    m
}

#[test]
fn c06_connection_sent_over_a_pipe() {
    let (carrier_parent, carrier_child) = Pipe::new::<Connection<String>>().unwrap();
    let (mine, theirs) = Pipe::new::<String>().unwrap();
    let mut p = spawn(relay, carrier_child).unwrap();
    carrier_parent.send(&theirs).unwrap();
    drop(theirs);
    mine.send(&"hi".to_string()).unwrap();
    assert_eq!(
        mine.recv().unwrap(),
        "hi via a connection received over a pipe"
    );
    assert_eq!(p.join().unwrap(), "hi");
}

/// A process sentinel seen through the transport's `Waitable` trait.
struct Sentinel(processing::transport::RawWaitable);

impl Waitable for Sentinel {
    fn raw_waitable(&self) -> Option<processing::transport::RawWaitable> {
        Some(self.0)
    }
}

fn sentinel_of<R: Serialize + serde::de::DeserializeOwned>(p: &Process<R>) -> Sentinel {
    #[cfg(unix)]
    use std::os::fd::AsRawFd as _;
    #[cfg(windows)]
    use std::os::windows::io::AsRawHandle as _;
    let s = p.sentinel().expect("a started process has a sentinel");
    #[cfg(unix)]
    return Sentinel(s.as_raw_fd());
    #[cfg(windows)]
    return Sentinel(s.as_raw_handle());
}

fn exit_on_message(conn: Connection<u32>) {
    let _ = conn.recv();
}

#[test]
fn c07_wait_over_connections_and_sentinels() {
    let (a, a_child) = Pipe::new::<u32>().unwrap();
    let (b, b_child) = Pipe::new::<u32>().unwrap();
    let mut pa = spawn(wait_then_send, a_child).unwrap();
    let mut pb = spawn(exit_on_message, b_child).unwrap();
    let sb = sentinel_of(&pb);
    let t = Instant::now();
    assert!(wait(&[&a, &b, &sb], Some(Duration::from_millis(300)))
        .unwrap()
        .is_empty());
    let el = t.elapsed();
    assert!(
        el >= Duration::from_millis(300) && el < Duration::from_secs(5),
        "{el:?}"
    );
    a.send(&1).unwrap();
    assert_eq!(
        wait(&[&a, &b, &sb], Some(Duration::from_secs(20))).unwrap(),
        [0]
    );
    assert_eq!(a.recv().unwrap(), 2);
    b.send(&0).unwrap();
    // The child exits: its sentinel and the end of its connection become ready.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline && !seen.contains(&2) {
        seen = wait(&[&a, &b, &sb], Some(Duration::from_secs(20))).unwrap();
        if seen.contains(&1) && !seen.contains(&2) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(
        seen.contains(&2),
        "the sentinel of an exited child is ready: {seen:?}"
    );
    pa.join().unwrap();
    pb.join().unwrap();
}

fn send_garbage(conn: Connection<()>) {
    conn.send_bytes(&[0, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap();
}

#[cfg(unix)]
fn write_hostile(raw: processing::core::TransferableHandle) {
    use std::io::Write;
    let mut s = std::os::unix::net::UnixStream::from(raw.into_inner());
    // Long-form header announcing 2^63 bytes, then a few bytes.
    s.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    s.write_all(&(1u64 << 63).to_be_bytes()).unwrap();
    s.write_all(b"junk").unwrap();
}

#[test]
fn c08_malformed_bytes_are_errors() {
    let (parent, child) = Pipe::new::<Msg>().unwrap();
    let mut p = spawn(send_garbage, child.with_type::<()>()).unwrap();
    let e = parent.recv().unwrap_err();
    assert!(e.is_malformed(), "{e}");
    p.join().unwrap();

    #[cfg(unix)]
    {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let conn = Connection::<()>::from_os_handle(a.into()).unwrap();
        let mut p = spawn(
            write_hostile,
            processing::core::TransferableHandle::new(b.into()),
        )
        .unwrap();
        let e = conn.recv_bytes().unwrap_err();
        assert!(
            matches!(e, ConnectionError::Frame(FrameError::TooLarge { .. })),
            "{e}"
        );
        p.join().unwrap();
    }
}
