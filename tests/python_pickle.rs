// xtask: not-conformance
// xtask: wine-skip-file(needs a Windows build of Python 3.12+; the Wine prefix has none)
//! Python objects on a connection (feature `pickle`) against real Python 3.12 and 3.13:
//! Python's `conn.send(obj)` into typed Rust values and `PickleValue`, Rust's `send_pickle` into
//! Python's `conn.recv()`, the `python_echo` example driven by Python's `Client`, and hostile
//! pickles (that would run `os.system`) refused on the Rust side with nothing run.
//!
//! Pythons are looked for at the pyenv paths of the CI machines and in `PROCESSING_TEST_PYTHONS`
//! (colon-separated); the tests are skipped with a loud message when none is found.
#![cfg(feature = "pickle")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use processing::pickle::{ByteBuf, PickleError, PickleValue};
use processing::{Address, Client, ConnectionError, Listener};
use serde::{Deserialize, Serialize};

#[path = "../examples/python_echo.rs"]
#[allow(dead_code)]
mod python_echo;

#[path = "../crates/processing-transport/tests/common/pickle_fixtures.rs"]
mod pickle_fixtures;

use pickle_fixtures::Shape;

mod python_support;

const KEY: &[u8] = b"pickle secret";

/// Shared by the Python scripts: the objects sent, a structural comparison that tells a tuple
/// from a list and bytes from a bytearray, and a pickle that runs `os.system` when loaded.
const PY_COMMON: &str = r#"
import os, pickle, sys
from multiprocessing.connection import Client, Listener

def shape(x):
    t = type(x).__name__
    if isinstance(x, (list, tuple)):
        return (t, [shape(i) for i in x])
    if isinstance(x, (set, frozenset)):
        return (t, sorted(repr(shape(i)) for i in x))
    if isinstance(x, dict):
        return (t, [(shape(k), shape(v)) for k, v in x.items()])
    return (t, repr(x))

def same(a, b):
    return a == b and shape(a) == shape(b)

OBJECTS = [
    {"a": [1, 2.5, "x", None, b"y", (True,)]},
    None, True, False, 0, -1, 255, 2**31, -2**63, 2**64 - 1, 2**100, -2**300, 0.1, -0.0,
    float("inf"), "", "é€😀", "s" * 70000, b"", b"\x00\xff" * 40000,
    [], (), {}, set(), frozenset(),
    [1, [2, [3, [4, (5, (6,))]]]],
    {1: "int key", (2, "tuple key"): [b"bytes"], None: {"nested": {"deeper": set([1, 2])}},
     2.5: frozenset({"f"}), False: (None,), b"k": ()},
    [(i, str(i), {i}) for i in range(1500)],
    {str(i): [i] * 3 for i in range(1200)},
]

class RunsCode:
    def __init__(self, path):
        self.path = path
    def __reduce__(self):
        return (os.system, ("touch " + self.path,))

def hostile(path, protocol):
    return pickle.dumps(RunsCode(path), protocol=protocol)

def prove_live(path):
    # The hostile pickle really runs its command when Python loads it.
    pickle.loads(hostile(path, 4))
    assert os.path.exists(path), "the hostile pickle is live"
    os.remove(path)
"#;

/// Drives the echo example: every object comes back equal and of the same types, a pickle
/// that would run `touch MARKER` is refused, `"bye"` ends it.
const PY_ECHO_CLIENT: &str = r#"
host, port, key, marker, probe = sys.stdin.readline().split()
prove_live(probe)
with Client((host, int(port)), authkey=bytes.fromhex(key)) as c:
    for o in OBJECTS:
        c.send(o)
        r = c.recv()
        assert same(o, r), (shape(o), shape(r))
    for proto in (2, 4, 5):
        c.send_bytes(hostile(marker, proto))
        r = c.recv()
        op = "GLOBAL" if proto == 2 else "STACK_GLOBAL"
        assert list(r) == ["refused"] and ("opcode " + op + " ") in r["refused"], r
    c.send("bye")
    assert c.recv() == "bye"
print("OK", flush=True)
"#;

/// Talks to the test's own Rust listener: typed structs both ways, dynamic values both ways,
/// hostile pickles.
const PY_TYPED_CLIENT: &str = r#"
host, port, key, marker, probe = sys.stdin.readline().split()
prove_live(probe)
with Client((host, int(port)), authkey=bytes.fromhex(key)) as c:
    c.send({"id": 7, "items": [("apple", 2), ("pear", 1)], "tags": {"b", "a"}, "note": None,
            "blob": b"\x00\x01", "scores": {1: 0.5, -3: 2.0}, "shape": {"Rect": {"w": 2, "h": 3}}})
    back = c.recv()
    expected = {"id": 8, "items": [("apple", 2), ("pear", 1), ("plum", 9)], "tags": ["a", "b", "c"],
                "note": "seen", "blob": b"\x00\x01\x02", "scores": {-3: 2.0, 1: 0.5},
                "shape": "Point"}
    assert same(back, expected), (shape(back), shape(expected))
    c.send(OBJECTS[0])
    c.send((1, [2.5, None], {b"k": {3, 4}}, frozenset({"x"}), 2**130, -5))
    back = c.recv()
    expected = {(1, "t"): [{7}, frozenset(), bytearray(b"ba"), b"by", -2**200, 2**127 - 1]}
    assert same(back, expected), (shape(back), shape(expected))
    c.send_bytes(hostile(marker, 2))
    c.send_bytes(hostile(marker, 4))
    c.send("done")
print("OK", flush=True)
"#;

/// Listens for the test's Rust client: receives a typed struct, answers with a Python object.
const PY_LISTENER: &str = r#"
key = bytes.fromhex(sys.stdin.readline().strip())
with Listener(("127.0.0.1", 0), authkey=key) as l:
    print(l.address[1], flush=True)
    with l.accept() as c:
        got = c.recv()
        expected = {"id": 1, "items": [("x", 1)], "tags": [], "note": None, "blob": b"",
                    "scores": {}, "shape": {"Pair": (1, -1)}}
        assert same(got, expected), (shape(got), shape(expected))
        c.send({"id": 2, "items": [["y", 2]], "tags": ("t",), "note": "from python",
                "blob": b"\xff", "scores": {4: 1}, "shape": {"Circle": 0.5}})
        # Keys that are sequences (a Vec, a BTreeSet) in Rust arrive hashable, as tuples.
        keyed = c.recv()
        expected = ({(1, 2): [3]}, {(4,): True})
        assert same(keyed, expected), (shape(keyed), shape(expected))
print("OK", flush=True)
"#;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Order {
    id: u64,
    items: Vec<(String, u32)>,
    tags: BTreeSet<String>,
    note: Option<String>,
    blob: ByteBuf,
    scores: BTreeMap<i64, f64>,
    shape: Shape,
}

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn start_python(python: &Path, script: &str, first_line: &str) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(python)
        .arg("-c")
        .arg(format!("{PY_COMMON}\n{script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python starts");
    // The key travels on stdin, never on the command line.
    writeln!(child.stdin.take().unwrap(), "{first_line}").unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

fn line(out: &mut impl BufRead) -> String {
    let mut s = String::new();
    out.read_line(&mut s).unwrap();
    s.trim().to_string()
}

/// Paths that a hostile pickle would create if it ran (`marker`), and that Python creates to
/// prove the pickle is live (`probe`).
fn markers(tag: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let m = dir.join(format!("pickle-pwned-{tag}-{pid}"));
    let p = dir.join(format!("pickle-probe-{tag}-{pid}"));
    let _ = std::fs::remove_file(&m);
    let _ = std::fs::remove_file(&p);
    (m, p)
}

fn tcp_port(a: &Address) -> u16 {
    match a {
        Address::Tcp(sa) => sa.port(),
        other => panic!("tcp listener expected, got {other}"),
    }
}

/// The example's binary, when the build has made it (`cargo test` of the whole suite or
/// `cargo xtask test` builds examples; `--test python_pickle` alone does not).
fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?.join("examples");
    let bin = dir.join(format!("python_echo{}", std::env::consts::EXE_SUFFIX));
    bin.is_file().then_some(bin)
}

#[test]
fn pickle_echo_example_round_trips_python_objects() {
    for python in python_support::pythons("python_pickle") {
        let (marker, probe) = markers("echo");
        // The example as its own process when built, else its code on a thread here.
        let (port, mut server): (u16, Box<dyn FnMut() -> bool>) = match example_binary() {
            Some(bin) => {
                let mut child = Command::new(bin)
                    .args(["127.0.0.1:0", std::str::from_utf8(KEY).unwrap()])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("the example starts");
                let mut out = BufReader::new(child.stdout.take().unwrap());
                let l = line(&mut out);
                let port = l.rsplit(':').next().unwrap().parse().expect(&l);
                (port, Box::new(move || child.wait().unwrap().success()))
            }
            None => {
                eprintln!(
                    "python_pickle: examples/python_echo not built; running its code in-process"
                );
                let (tx, rx) = std::sync::mpsc::channel();
                let t = std::thread::spawn(move || {
                    python_echo::serve("127.0.0.1:0", KEY, |a| {
                        tx.send(tcp_port(a)).unwrap();
                        Ok(())
                    })
                    .map_err(|e| e.to_string())
                });
                let port = rx.recv().unwrap();
                let mut t = Some(t);
                (
                    port,
                    Box::new(move || t.take().unwrap().join().unwrap().is_ok()),
                )
            }
        };
        let (mut child, mut out) = start_python(
            &python,
            PY_ECHO_CLIENT,
            &format!(
                "127.0.0.1 {port} {} {} {}",
                hex(KEY),
                marker.display(),
                probe.display()
            ),
        );
        assert_eq!(line(&mut out), "OK", "{}", python.display());
        assert!(child.wait().unwrap().success());
        assert!(server(), "the example exits cleanly after \"bye\"");
        assert!(!marker.exists(), "a refused pickle ran code");
    }
}

#[test]
fn pickle_python_objects_meet_typed_and_dynamic_rust_values() {
    use PickleValue as P;
    for python in python_support::pythons("python_pickle") {
        let (marker, probe) = markers("typed");
        let listener = Listener::bind("127.0.0.1:0", Some(KEY)).unwrap();
        let port = tcp_port(listener.address());
        let (mut child, mut out) = start_python(
            &python,
            PY_TYPED_CLIENT,
            &format!(
                "127.0.0.1 {port} {} {} {}",
                hex(KEY),
                marker.display(),
                probe.display()
            ),
        );
        let conn = listener.accept::<()>().unwrap();

        // A Python dict into a typed struct, and the struct back into a dict.
        let mut order: Order = conn.recv_pickle().unwrap();
        assert_eq!(
            order,
            Order {
                id: 7,
                items: vec![("apple".into(), 2), ("pear".into(), 1)],
                tags: ["a".to_string(), "b".to_string()].into(),
                note: None,
                blob: ByteBuf(vec![0, 1]),
                scores: [(1, 0.5), (-3, 2.0)].into(),
                shape: Shape::Rect { w: 2, h: 3 },
            }
        );
        order.id += 1;
        order.items.push(("plum".into(), 9));
        order.tags.insert("c".into());
        order.note = Some("seen".into());
        order.blob.0.push(2);
        order.shape = Shape::Point;
        conn.send_pickle(&order).unwrap();

        // Dynamic values: Python's types as they are.
        let v: PickleValue = conn.recv_pickle().unwrap();
        let s = |x: &str| P::Str(x.into());
        assert_eq!(v, pickle_fixtures::echo_value());
        let v: PickleValue = conn.recv_pickle().unwrap();
        let P::Tuple(items) = &v else { panic!("{v:?}") };
        assert_eq!(items[0], P::Int(1));
        assert_eq!(items[1], P::List(vec![P::Float(2.5), P::None]));
        let P::Dict(d) = &items[2] else { panic!() };
        assert_eq!(d[0].0, P::Bytes(b"k".to_vec()));
        assert!(matches!(&d[0].1, P::Set(x) if x.len() == 2));
        assert_eq!(items[3], P::FrozenSet(vec![s("x")]));
        assert!(matches!(&items[4], P::BigInt(b) if b.len() == 17));
        assert_eq!(items[5], P::Int(-5));
        let mut minus_2_200 = vec![0u8; 26];
        minus_2_200[25] = 0xff; // -(2**200) in 26 bytes of two's complement
        conn.send_pickle(&P::Dict(vec![(
            P::Tuple(vec![P::Int(1), s("t")]),
            P::List(vec![
                P::Set(vec![P::Int(7)]),
                P::FrozenSet(vec![]),
                P::ByteArray(b"ba".to_vec()),
                P::Bytes(b"by".to_vec()),
                P::BigInt(minus_2_200),
                P::Int(i128::MAX),
            ]),
        )]))
        .unwrap();

        // Hostile pickles: refused with the opcode named, and the connection goes on.
        for opcode in ["GLOBAL", "STACK_GLOBAL"] {
            let e = conn.recv_pickle::<PickleValue>().unwrap_err();
            match e {
                ConnectionError::Pickle(PickleError::Refused { opcode: o, .. }) => {
                    assert_eq!(o, opcode)
                }
                e => panic!("{e}"),
            }
        }
        assert_eq!(conn.recv_pickle::<String>().unwrap(), "done");
        assert_eq!(line(&mut out), "OK", "{}", python.display());
        assert!(child.wait().unwrap().success());
        assert!(!marker.exists(), "a refused pickle ran code");
    }
}

#[test]
fn pickle_our_client_to_python_listener() {
    for python in python_support::pythons("python_pickle") {
        let (mut child, mut out) = start_python(&python, PY_LISTENER, &hex(KEY));
        let port = line(&mut out);
        let conn = Client::connect::<()>(format!("127.0.0.1:{port}"), Some(KEY)).unwrap();
        conn.send_pickle(&Order {
            id: 1,
            items: vec![("x".into(), 1)],
            tags: BTreeSet::new(),
            note: None,
            blob: ByteBuf(vec![]),
            scores: BTreeMap::new(),
            shape: Shape::Pair(1, -1),
        })
        .unwrap();
        let back: Order = conn.recv_pickle().unwrap();
        conn.send_pickle(&(
            BTreeMap::from([(vec![1u8, 2], vec![3u8])]),
            BTreeMap::from([(BTreeSet::from([4u8]), true)]),
        ))
        .unwrap();
        assert_eq!(
            back,
            Order {
                id: 2,
                items: vec![("y".into(), 2)],
                tags: ["t".to_string()].into(),
                note: Some("from python".into()),
                blob: ByteBuf(vec![0xff]),
                scores: [(4, 1.0)].into(),
                shape: Shape::Circle(0.5),
            }
        );
        assert_eq!(line(&mut out), "OK", "{}", python.display());
        assert!(child.wait().unwrap().success());
    }
}
