// xtask: not-conformance
// xtask: wine-skip-file(needs a Windows build of Python 3.12+; the Wine prefix has none)
//! Our Listener/Client against Python's `multiprocessing.connection` (3.12+): framing and the
//! mutual HMAC-SHA256 handshake, both directions, right and wrong keys, 64 MiB messages.
//!
//! Pythons are looked for at the pyenv paths of the CI machines and in `PROCESSING_TEST_PYTHONS`
//! (colon-separated); the tests are skipped with a loud message when none is found.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use processing::transport::AuthError;
use processing::{Address, Client, Connection, Listener, ListenerError};

mod python_support;

const BIG: usize = 64 << 20;

fn big_message() -> Vec<u8> {
    (0..BIG).map(|i| i as u8).collect()
}

const PY_CLIENT: &str = r#"
import sys
from multiprocessing.connection import Client
fam, addr, key = sys.stdin.readline().split()
key = bytes.fromhex(key) if key != "-" else b""
if fam == "tcp":
    host, port = addr.rsplit(":", 1)
    address = (host, int(port))
else:
    address = addr
try:
    c = Client(address, authkey=key)
except Exception as e:
    print("AUTHFAIL", type(e).__name__, flush=True)
    sys.exit(3)
c.send_bytes(b"hello from python")
assert c.recv_bytes() == b"hello from rust"
big = c.recv_bytes()
assert len(big) == 64 << 20 and big[:4] == bytes([0, 1, 2, 3]) and big[-1] == 255
c.send_bytes(big)
print("OK", flush=True)
"#;

const PY_LISTENER: &str = r#"
import sys
from multiprocessing.connection import Listener
fam, addr, key = sys.stdin.readline().split()
key = bytes.fromhex(key) if key != "-" else b""
if fam == "tcp":
    l = Listener(("127.0.0.1", 0), authkey=key)
    print(l.address[1], flush=True)
else:
    l = Listener(addr, family="AF_UNIX", authkey=key)
    print("ready", flush=True)
try:
    c = l.accept()
except Exception as e:
    print("AUTHFAIL", type(e).__name__, flush=True)
    sys.exit(3)
m = c.recv_bytes()
c.send_bytes(b"echo " + m)
big = c.recv_bytes()
c.send_bytes(big)
print("OK", flush=True)
"#;

fn hex(key: &[u8]) -> String {
    if key.is_empty() {
        return "-".into();
    }
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn start_python(
    python: &PathBuf,
    script: &str,
    fam: &str,
    addr: &str,
    key: &[u8],
) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(python)
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python starts");
    // The key travels on stdin, never on the command line.
    writeln!(child.stdin.take().unwrap(), "{fam} {addr} {}", hex(key)).unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

fn line(out: &mut BufReader<std::process::ChildStdout>) -> String {
    let mut s = String::new();
    out.read_line(&mut s).unwrap();
    s.trim().to_string()
}

/// The end of every exchange with a Python peer: `big` goes there and comes back intact, then
/// the script reports OK and exits successfully.
fn echo_big_then_ok(
    conn: &Connection<()>,
    big: &[u8],
    mut child: Child,
    mut out: BufReader<ChildStdout>,
    python: &Path,
    fam: &str,
) {
    conn.send_bytes(big).unwrap();
    assert!(conn.recv_bytes().unwrap() == big, "64 MiB came back intact");
    assert_eq!(line(&mut out), "OK", "{} {fam}", python.display());
    assert!(child.wait().unwrap().success());
}

fn unix_path(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir()
        .join(format!("pywire-{tag}-{}-{n}.sock", std::process::id()))
        .display()
        .to_string()
}

fn families() -> Vec<&'static str> {
    if cfg!(unix) {
        vec!["tcp", "unix"]
    } else {
        vec!["tcp"]
    }
}

#[test]
fn python_client_to_our_listener() {
    let big = big_message();
    for python in python_support::pythons("python_wire") {
        for fam in families() {
            let (address, addr_text) = if fam == "tcp" {
                let a: Address = "127.0.0.1:0".parse().unwrap();
                (a, String::new())
            } else {
                let p = unix_path("l");
                (Address::Local(p.clone()), p)
            };
            let listener = Listener::bind(address, Some(b"shared secret")).unwrap();
            let addr_text = match listener.address() {
                Address::Tcp(sa) => sa.to_string(),
                Address::Local(_) => addr_text,
            };
            let (child, out) = start_python(&python, PY_CLIENT, fam, &addr_text, b"shared secret");
            let conn = listener.accept::<()>().unwrap();
            assert_eq!(conn.recv_bytes().unwrap(), b"hello from python");
            conn.send_bytes(b"hello from rust").unwrap();
            echo_big_then_ok(&conn, &big, child, out, &python, fam);
        }
    }
}

#[test]
fn our_client_to_python_listener() {
    let big = big_message();
    for python in python_support::pythons("python_wire") {
        for fam in families() {
            let path = unix_path("c");
            let (child, mut out) = start_python(&python, PY_LISTENER, fam, &path, b"other secret");
            let ready = line(&mut out);
            let address = if fam == "tcp" {
                Address::Tcp(format!("127.0.0.1:{ready}").parse().unwrap())
            } else {
                Address::Local(path.clone())
            };
            let conn = Client::connect::<()>(&address, Some(b"other secret")).unwrap();
            conn.send_bytes(b"ping").unwrap();
            assert_eq!(conn.recv_bytes().unwrap(), b"echo ping");
            echo_big_then_ok(&conn, &big, child, out, &python, fam);
        }
    }
}

#[test]
fn wrong_key_fails_on_both_sides_with_python() {
    for python in python_support::pythons("python_wire") {
        // Python client, our listener.
        let listener = Listener::bind("127.0.0.1:0", Some(b"ours")).unwrap();
        let addr = listener
            .address()
            .to_string()
            .trim_start_matches("tcp://")
            .to_string();
        let (mut child, mut out) = start_python(&python, PY_CLIENT, "tcp", &addr, b"theirs");
        let e = listener.accept::<()>().unwrap_err();
        assert!(
            matches!(e, ListenerError::Auth(AuthError::WrongDigest)),
            "{e}"
        );
        assert_eq!(line(&mut out), "AUTHFAIL AuthenticationError");
        assert_eq!(child.wait().unwrap().code(), Some(3));

        // Our client, Python listener.
        let (mut child, mut out) = start_python(&python, PY_LISTENER, "tcp", "-", b"theirs");
        let port = line(&mut out);
        let e = Client::connect::<()>(format!("127.0.0.1:{port}"), Some(b"ours")).unwrap_err();
        assert!(matches!(e, ListenerError::Auth(AuthError::Rejected)), "{e}");
        assert_eq!(line(&mut out), "AUTHFAIL AuthenticationError");
        assert_eq!(child.wait().unwrap().code(), Some(3));
    }
}
