//! Error texts that say what to do: a refused connect names the address, a failed handshake
//! says "authkey mismatch", a Python pickle on a typed `recv` points at `recv_bytes`, a value
//! received as another type than it was sent is a typed error (never a wrong value).
// xtask: not-conformance

mod support;

use support::closed_port;

use std::time::Duration;

use processing::{Client, Connection, ConnectionError, FrameError, Listener, Pipe};

#[test]
fn refused_connect_names_the_address() {
    let addr = closed_port().to_string();
    let e = Client::connect::<u8>(addr.as_str(), Some(b"key")).unwrap_err();
    let text = e.to_string();
    assert!(text.contains(&addr), "{text}");
    assert!(text.starts_with("cannot connect to "), "{text}");
    let e = processing::Manager::connect(addr.as_str(), b"key".to_vec()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains(&addr), "{text}");
}

#[test]
fn wrong_authkey_says_authkey_mismatch_on_both_sides() {
    let listener = Listener::bind("127.0.0.1:0", Some(b"right key")).unwrap();
    let address = listener.address().to_string();
    let server = std::thread::spawn(move || listener.accept::<u8>().map(drop));
    let client = Client::connect::<u8>(address.as_str(), Some(b"wrong key")).unwrap_err();
    let server = server.join().unwrap().unwrap_err();
    for e in [client.to_string(), server.to_string()] {
        assert!(
            e.contains(
                "authkey mismatch (or the peer is not a processing/multiprocessing listener)"
            ),
            "{e}"
        );
    }
}

#[test]
fn python_pickle_on_a_typed_recv_points_at_recv_bytes() {
    let (a, b) = Pipe::new::<u32>().unwrap();
    // What Python's `conn.send({"n": 1})` writes.
    a.send_bytes(b"\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01n\x94K\x01s.")
        .unwrap();
    let e = b.recv().unwrap_err();
    assert!(
        matches!(e, ConnectionError::Frame(FrameError::PickleMessage)),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("python pickle"), "{text}");
    assert!(text.contains("recv_bytes"), "{text}");
    // The message was consumed whole: the connection goes on.
    a.send(&7).unwrap();
    assert_eq!(b.recv().unwrap(), 7);
}

/// Receives one message as `u32` and says what came.
fn recv_as_u32(conn: Connection<u32>) -> Result<u32, String> {
    conn.recv().map_err(|e| e.to_string())
}

#[test]
fn a_value_received_as_another_type_is_an_error_not_a_wrong_value() {
    let (parent, child) = Pipe::new::<i32>().unwrap();
    let mut p = processing::spawn(recv_as_u32, child.with_type::<u32>()).unwrap();
    parent.send(&-3).unwrap();
    let text = p.join().unwrap().unwrap_err();
    assert!(text.contains("`u32`"), "{text}");
    assert!(
        text.contains("both ends of a connection must use the same type"),
        "{text}"
    );

    // Raw bytes on a typed end are refused the same way.
    let (a, b) = Pipe::new::<u32>().unwrap();
    a.send_bytes(&[0, 5]).unwrap();
    assert!(matches!(
        b.recv(),
        Err(ConnectionError::Frame(FrameError::TypeMismatch { .. }))
    ));
    // The same type on both ends still works.
    a.send(&5).unwrap();
    assert!(b.poll(Duration::from_secs(30)).unwrap());
    assert_eq!(b.recv().unwrap(), 5);
}
