//! Robustness at the edges, listener side: R05 (idle peers neither delay a legitimate client
//! nor pile up) and R06 (a lying length prefix costs only the bytes that arrived).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use processing::transport::MAX_PENDING_HANDSHAKES;
use processing::{Address, Client, Listener};

/// Accepts one connection on a thread while a legitimate client connects and exchanges one
/// message; returns how long the client waited.
fn legitimate_exchange(listener: Listener) -> Duration {
    let address = listener.address().clone();
    let server = std::thread::spawn(move || {
        let conn = listener.accept::<String>().expect("accept");
        let m = conn.recv().expect("recv");
        conn.send(&format!("echo {m}")).expect("send");
        listener
    });
    let began = Instant::now();
    let c = Client::connect::<String>(&address, Some(b"r05")).expect("connect");
    c.send(&"hi".to_string()).unwrap();
    assert_eq!(c.recv().unwrap(), "echo hi");
    let took = began.elapsed();
    drop(server.join().unwrap());
    took
}

/// Idle TCP peers: connected, silent.
fn idle_tcp(listener: &Listener, n: usize) -> Vec<std::net::TcpStream> {
    let Address::Tcp(a) = listener.address() else {
        panic!("a tcp listener")
    };
    (0..n)
        .map(|_| std::net::TcpStream::connect(a).unwrap())
        .collect()
}

/// Idle local peers: connected, silent.
#[cfg(unix)]
fn idle_local(listener: &Listener, n: usize) -> Vec<std::os::unix::net::UnixStream> {
    let path = listener.local_path().unwrap().to_path_buf();
    (0..n)
        .map(|_| std::os::unix::net::UnixStream::connect(&path).unwrap())
        .collect()
}

#[test]
fn r05_idle_peers_do_not_delay_a_tcp_client() {
    let listener = Listener::bind("127.0.0.1:0", Some(b"r05")).unwrap();
    let idle = idle_tcp(&listener, 100);
    let took = legitimate_exchange(listener);
    eprintln!("r05: the legitimate client took {took:?} with 100 idle peers");
    assert!(took < Duration::from_secs(1), "the client waited {took:?}");
    drop(idle);
}

#[cfg(unix)]
#[test]
fn r05_idle_peers_do_not_delay_a_local_client() {
    let listener = Listener::bind(Address::unique_local(), Some(b"r05")).unwrap();
    let idle = idle_local(&listener, 100);
    let took = legitimate_exchange(listener);
    eprintln!("r05: the legitimate client took {took:?} with 100 idle peers");
    assert!(took < Duration::from_secs(1), "the client waited {took:?}");
    drop(idle);
}

#[test]
fn r05_pending_handshakes_are_capped_and_time_out() {
    // Capped: with more idle peers than the cap, the oldest are cut off (they read the end of
    // the stream) while the newest still wait.
    let listener = Listener::bind("127.0.0.1:0", Some(b"r05")).unwrap();
    let mut idle = idle_tcp(&listener, MAX_PENDING_HANDSHAKES + 10);
    // The end of the stream (after the challenge, if it was sent already): cut off.
    let oldest = &mut idle[0];
    oldest
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut bytes = Vec::new();
    oldest
        .read_to_end(&mut bytes)
        .expect("cut off, not timed out");
    // The newest still waits for its answer (nothing but the challenge arrives).
    let newest = idle.last_mut().unwrap();
    newest.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    let alive = match newest.read(&mut buf) {
        Ok(n) => n > 0,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    };
    assert!(alive, "the newest pending peer was cut off");
    drop(idle);
    drop(listener);

    // Timed out: a silent peer is dropped after the handshake timeout.
    let listener = Listener::builder()
        .authkey(b"r05")
        .handshake_timeout(Some(Duration::from_millis(200)))
        .bind("127.0.0.1:0")
        .unwrap();
    let mut idle = idle_tcp(&listener, 1);
    let began = Instant::now();
    idle[0]
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut bytes = Vec::new();
    idle[0]
        .read_to_end(&mut bytes)
        .expect("dropped, not timed out");
    assert!(began.elapsed() < Duration::from_secs(20));
    // A deadline, not only a read timeout: a peer that trickles its answer a byte at a time
    // (each byte well within the read timeout) is cut off too.
    let Address::Tcp(a) = listener.address().clone() else {
        unreachable!()
    };
    let mut trickler = std::net::TcpStream::connect(a).unwrap();
    let began = Instant::now();
    let mut challenge = [0u8; 4 + 11 + 8 + 40];
    trickler.read_exact(&mut challenge).unwrap();
    trickler.write_all(&255i32.to_be_bytes()).unwrap();
    trickler
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let cut = (0..255).any(|_| {
        let mut byte = [0u8; 1];
        match trickler.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                trickler.write_all(b"x").is_err()
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => trickler.write_all(b"x").is_err(),
            Err(_) => true,
        }
    });
    assert!(cut, "a trickling peer was never cut off");
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "cut off after {:?}",
        began.elapsed()
    );
    // The listener goes on serving.
    let took = legitimate_exchange(listener);
    assert!(took < Duration::from_secs(5), "the client waited {took:?}");
}

#[cfg(target_os = "linux")]
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
#[test]
fn r06_listener_connection_allocates_what_arrived() {
    for address in [Address::unique_local(), "127.0.0.1:0".parse().unwrap()] {
        let listener = Listener::bind(address, Some(b"r06")).unwrap();
        let peer = match listener.address() {
            Address::Tcp(a) => {
                let a = *a;
                std::thread::spawn(move || {
                    let mut s = std::net::TcpStream::connect(a).unwrap();
                    lie(&mut s);
                })
            }
            Address::Local(_) => {
                let path = listener.local_path().unwrap().to_path_buf();
                std::thread::spawn(move || {
                    let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
                    lie(&mut s);
                })
            }
        };
        let conn = listener.accept::<Vec<u8>>().unwrap();
        // Reset the peak resident set to the current one, then receive the lying frame.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let before = status_kib("VmHWM:");
        assert!(conn.recv_bytes().unwrap_err().is_malformed());
        let grown = status_kib("VmHWM:").saturating_sub(before);
        eprintln!("r06: the receiver's peak resident memory grew by {grown} kB");
        assert!(grown < 64 * 1024, "the receiver grew by {grown} kB");
        peer.join().unwrap();
    }
}

/// Authenticates, announces a 1 GiB message, sends 10 bytes of it and closes.
#[cfg(target_os = "linux")]
fn lie<S: Read + Write>(s: &mut S) {
    processing::transport::handshake_client(s, b"r06").unwrap();
    s.write_all(&(1i32 << 30).to_be_bytes()).unwrap();
    s.write_all(&[5u8; 10]).unwrap();
}
