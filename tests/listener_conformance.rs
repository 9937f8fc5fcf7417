//! L01–L04: Listener and Client across real processes (see docs/conformance.md).

use std::io::Write;
use std::time::{Duration, Instant};

use processing::transport::AuthError;
use processing::{spawn, Address, Client, Listener, ListenerError};

/// Connects to `address` with `key` (`None`: the authkey inherited from the parent) and sends
/// "hello"; returns the error text on failure.
fn say_hello((address, key): (Address, Option<Vec<u8>>)) -> Result<String, String> {
    let c = Client::connect::<String>(&address, key.as_deref())
        .map_err(|e| format!("{e}|auth={}", e.is_auth()))?;
    c.send(&"hello".to_string()).map_err(|e| e.to_string())?;
    c.recv().map_err(|e| e.to_string())
}

#[test]
fn l01_each_family_delivers_hello() {
    for address in [Address::unique_local(), "127.0.0.1:0".parse().unwrap()] {
        // Default authkey on both sides: the child inherited the parent's.
        let listener = Listener::bind(address, None).unwrap();
        let mut p = spawn(say_hello, (listener.address().clone(), None)).unwrap();
        let conn = listener.accept::<String>().unwrap();
        assert_eq!(conn.recv().unwrap(), "hello");
        conn.send(&"welcome".to_string()).unwrap();
        assert_eq!(p.join().unwrap(), Ok("welcome".to_string()));
    }
}

fn try_bind(address: Address) -> bool {
    matches!(Listener::bind(&address, None), Err(e) if e.is_address_in_use())
}

#[test]
fn l02_address_in_use() {
    for address in [Address::unique_local(), "127.0.0.1:0".parse().unwrap()] {
        let listener = Listener::bind(address, None).unwrap();
        let bound = listener.address().clone();
        assert!(Listener::bind(&bound, None)
            .unwrap_err()
            .is_address_in_use());
        let mut p = spawn(try_bind, bound.clone()).unwrap();
        assert!(p.join().unwrap(), "another process sees the address in use");
        drop(listener);
        // Free again once the listener is gone.
        if !bound.is_tcp() {
            drop(Listener::bind(&bound, None).unwrap());
        }
    }
}

fn raw_payload_first(address: std::net::SocketAddr) {
    let mut s = std::net::TcpStream::connect(address).unwrap();
    // A frame announcing 1 GiB of payload, without any handshake.
    let _ = s.write_all(&(1i32 << 30).to_be_bytes());
    let _ = s.write_all(&[b'x'; 65536]);
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn l03_mismatched_keys_fail_on_both_sides() {
    for address in [Address::unique_local(), "127.0.0.1:0".parse().unwrap()] {
        let listener = Listener::bind(address, Some(b"right key")).unwrap();
        let mut p = spawn(
            say_hello,
            (listener.address().clone(), Some(b"wrong key".to_vec())),
        )
        .unwrap();
        let e = listener.accept::<String>().unwrap_err();
        assert!(
            matches!(e, ListenerError::Auth(AuthError::WrongDigest)),
            "{e}"
        );
        let child = p.join().unwrap().unwrap_err();
        assert!(child.ends_with("auth=true"), "{child}");
    }
    // A peer that skips the handshake and sends payload: refused at the first frame header,
    // without reading (or allocating for) the announced payload.
    let listener = Listener::bind("127.0.0.1:0", Some(b"k")).unwrap();
    let Address::Tcp(sa) = listener.address().clone() else {
        unreachable!()
    };
    let mut p = spawn(raw_payload_first, sa).unwrap();
    let t = Instant::now();
    let e = listener.accept::<Vec<u8>>().unwrap_err();
    assert!(
        matches!(e, ListenerError::Auth(AuthError::Protocol(_))),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    p.join().unwrap();
}

#[test]
fn l04_empty_authkey_rules() {
    let listener = Listener::bind(Address::unique_local(), Some(b"")).unwrap();
    let mut p = spawn(say_hello, (listener.address().clone(), Some(Vec::new()))).unwrap();
    let conn = listener.accept::<String>().unwrap();
    assert_eq!(conn.recv().unwrap(), "hello");
    conn.send(&"ok".to_string()).unwrap();
    assert_eq!(p.join().unwrap(), Ok("ok".to_string()));

    assert!(matches!(
        Listener::bind("127.0.0.1:0", Some(b"")),
        Err(ListenerError::UnauthenticatedTcp)
    ));
    let open = Listener::builder()
        .authkey(b"")
        .allow_unauthenticated_tcp(true)
        .bind("127.0.0.1:0")
        .unwrap();
    // A client with an empty key on TCP is refused on its side too, unless it opts in.
    let mut p = spawn(say_hello, (open.address().clone(), Some(Vec::new()))).unwrap();
    let child = p.join().unwrap().unwrap_err();
    assert!(child.contains("empty authkey"), "{child}");
}
