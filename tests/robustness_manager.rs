//! Robustness at the edges, manager side: R05 (idle peers), R06 (lying length prefixes), R09
//! (huge timeouts, panicking calls), R11 (killed clients give their references back) and R12
//! (a killed owner leaves no socket directory).

mod support;

use support::free_port;

#[cfg(target_os = "linux")]
use std::io::{Read, Write};
use std::net::TcpStream;
#[cfg(target_os = "linux")]
use std::os::unix::net::UnixStream;
#[cfg(target_os = "linux")]
use std::path::PathBuf;
use std::time::{Duration, Instant};

use processing::manager::{
    shared_type, Address, ListProxy, Manager, ManagerBuilder, QueueProxy, RemoteErrorKind,
};
#[cfg(target_os = "linux")]
use processing::Pipe;
use processing::Process;
use serde::{Deserialize, Serialize};

const PATIENCE: Duration = Duration::from_secs(60);

#[cfg(target_os = "linux")]
/// A field of `/proc/<pid>/status` in kB (or a count).
fn status(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
/// Waits (polling, bounded) until `check` holds; returns whether it did.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(target_os = "linux")]
fn local_path(m: &Manager) -> PathBuf {
    match m.address() {
        Address::Local(p) => p.clone(),
        other => panic!("expected a local manager, got {other}"),
    }
}

/// A manager started here: its handle, its server's pid and its socket's path.
#[cfg(target_os = "linux")]
fn local_manager() -> (Manager, u32, PathBuf) {
    let m = Manager::start().unwrap();
    let pid = m.server_pid().unwrap();
    let path = local_path(&m);
    (m, pid, path)
}

fn serve_main((address, key): (String, Vec<u8>)) {
    Manager::builder()
        .authkey(key)
        .serve(address.as_str())
        .expect("serve");
}

/// A manager server process on a free local TCP port with `key`: its address and the process.
fn tcp_server(key: &[u8]) -> (String, Process<()>) {
    let address = format!("127.0.0.1:{}", free_port());
    let mut server = Process::new(serve_main, (address.clone(), key.to_vec()));
    server.start().unwrap();
    (address, server)
}

/// Connects a legitimate client, makes one call, and returns how long that took.
fn legitimate_call(address: Address, key: Vec<u8>) -> Duration {
    let began = Instant::now();
    let m = ManagerBuilder::new()
        .authkey(key)
        .connect(address)
        .expect("connect");
    let list = m.list_from([1u32, 2, 3]).expect("list");
    assert_eq!(list.len().unwrap(), 3);
    began.elapsed()
}

#[cfg(target_os = "linux")]
#[test]
fn r05_idle_peers_do_not_delay_a_local_manager_client() {
    let (m, pid, path) = local_manager();
    let threads_before = status(pid, "Threads:");
    let idle: Vec<UnixStream> = (0..100)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    let took = legitimate_call(
        m.address().clone(),
        processing::core::authkey::get().to_vec(),
    );
    eprintln!("r05: the legitimate client took {took:?} with 100 idle peers");
    assert!(took < Duration::from_secs(1), "the client waited {took:?}");
    // Idle peers cost a bounded number of threads (the oldest pending ones are cut off).
    eprintln!(
        "r05: server threads {threads_before} before, {} with 100 idle peers",
        status(pid, "Threads:")
    );
    let mut threads = 0;
    let bounded = eventually(Duration::from_secs(20), || {
        threads = status(pid, "Threads:");
        threads <= threads_before + 40
    });
    assert!(
        bounded,
        "{threads} server threads with 100 idle peers ({threads_before} before)"
    );
    drop(idle);
    m.shutdown().unwrap();
}

#[test]
fn r05_idle_peers_do_not_delay_a_tcp_manager_client() {
    let key = b"r05-key".to_vec();
    let (address, mut server) = tcp_server(&key);
    let m = ManagerBuilder::new()
        .authkey(key.clone())
        .connect_timeout(address.as_str(), PATIENCE)
        .expect("connect");
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(address.as_str()).unwrap())
        .collect();
    let took = legitimate_call(Address::parse(&address), key);
    eprintln!("r05: the legitimate client took {took:?} with 100 idle peers");
    assert!(took < Duration::from_secs(1), "the client waited {took:?}");
    drop(idle);
    m.shutdown().unwrap();
    server.join_timeout(PATIENCE).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn r06_manager_server_allocates_what_arrived() {
    let (m, pid, path) = local_manager();
    let key = processing::core::authkey::get().to_vec();
    // Warm up (a first connection and call), then take the baseline.
    assert_eq!(m.list_from([1u32]).unwrap().len().unwrap(), 1);
    let before = status(pid, "VmHWM:");
    let peers: Vec<_> = (0..3)
        .map(|_| {
            let (path, key) = (path.clone(), key.clone());
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&path).unwrap();
                processing::transport::handshake_client(&mut s, &key).unwrap();
                // A frame announcing 1 GiB, of which 10 bytes ever come.
                s.write_all(processing::core::frame::Header::for_len(1 << 30).as_bytes())
                    .unwrap();
                s.write_all(&[9u8; 10]).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                // The server gives up on the truncated frame and closes.
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
            })
        })
        .collect();
    for p in peers {
        p.join().unwrap();
    }
    let grown = status(pid, "VmHWM:").saturating_sub(before);
    eprintln!(
        "r06: the server's peak resident memory grew by {grown} kB (3 peers announcing 1 GiB)"
    );
    assert!(
        grown < 64 * 1024,
        "the server's peak resident memory grew by {grown} kB"
    );
    // And it still serves.
    assert_eq!(m.list_from([1u32, 2]).unwrap().len().unwrap(), 2);
    m.shutdown().unwrap();
}

/// Runs `f` on a thread and fails the test if it does not return within `limit`.
fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).expect("the call did not return")
}

#[test]
fn r09_manager_timeouts_accept_duration_max() {
    let m = Manager::start().unwrap();
    let address = m.address().clone();
    let q: QueueProxy<u32> = m.queue().unwrap();
    q.put(7).unwrap();
    let q2 = q.clone();
    assert_eq!(
        within(PATIENCE, move || q2.get_timeout(Duration::MAX).unwrap()),
        7
    );
    q.put_timeout(8, Duration::MAX).unwrap();
    let lock = m.lock().unwrap();
    lock.acquire_timeout(Duration::MAX)
        .unwrap()
        .release()
        .unwrap();
    let event = m.event().unwrap();
    event.set().unwrap();
    assert!(event.wait_timeout(Duration::MAX).unwrap());
    let cond = m.condition().unwrap();
    let g = cond.acquire().unwrap();
    let mut calls = 0;
    assert!(cond
        .wait_for_timeout(
            || {
                calls += 1;
                true
            },
            Duration::MAX
        )
        .unwrap());
    g.release().unwrap();
    // A predicate that needs a notification: another client notifies while we wait for ever.
    let flag: ListProxy<u32> = m.list().unwrap();
    let (c2, f2) = (cond.clone(), flag.clone());
    let notifier = std::thread::spawn(move || {
        let g = c2.acquire().unwrap();
        f2.push(1).unwrap();
        c2.notify_all().unwrap();
        g.release().unwrap();
    });
    let g = cond.acquire().unwrap();
    let f3 = flag.clone();
    assert!(cond
        .wait_for_timeout(move || f3.len().unwrap() > 0, Duration::MAX)
        .unwrap());
    g.release().unwrap();
    notifier.join().unwrap();
    // The connect timeout saturates too.
    let other = ManagerBuilder::new()
        .connect_timeout(address, Duration::MAX)
        .unwrap();
    assert_eq!(other.list_from([1u8]).unwrap().len().unwrap(), 1);
    // The server still serves the first connection.
    assert_eq!(q.get_timeout(Duration::MAX).unwrap(), 8);
    m.shutdown().unwrap();
}

/// A custom type whose decoding panics on one value: a server-side panic a client can cause.
#[derive(Debug, Serialize, Deserialize)]
#[serde(from = "u32")]
pub struct Fragile(u32);

impl From<u32> for Fragile {
    fn from(v: u32) -> Self {
        assert!(v != 13, "thirteen is unlucky");
        Fragile(v)
    }
}

impl Fragile {
    fn get(&self) -> u32 {
        self.0
    }
}

shared_type! {
    /// A value whose construction panics on 13.
    pub proxy FragileProxy for Fragile {
        fn get(&self) -> u32;
    }
}

#[test]
fn r09_a_panicking_server_call_fails_only_that_call() {
    let m = Manager::builder().register::<Fragile>().start().unwrap();
    let list = m.list_from([1u32, 2, 3]).unwrap();
    let err = m.create(Fragile(13)).unwrap_err();
    let remote = err.as_remote().expect("a remote error");
    assert_eq!(remote.kind, RemoteErrorKind::Panicked, "{err}");
    // The same connection and the server go on serving.
    assert_eq!(m.create(Fragile(5)).unwrap().get().unwrap(), 5);
    assert_eq!(list.to_vec().unwrap(), [1, 2, 3]);
    // (An argument that overflowed a server-side computation is a typed error, not a panic:
    // the list's `Permute` request, which no proxy can send malformed, is tested at the wire
    // level in processing-manager's own tests.)
    assert_eq!(list.len().unwrap(), 3);
    m.shutdown().unwrap();
}

#[cfg(target_os = "linux")]
fn doomed_client((ready, address): (QueueProxy<u32>, Address)) {
    let m = ManagerBuilder::new().connect(address).expect("connect");
    let list = m.list_from(0..100u32).expect("list");
    let lock = m.lock().expect("lock");
    let q: QueueProxy<ListProxy<u32>> = m.queue().expect("queue");
    q.put(list.clone()).expect("put");
    // Held until the process dies (the server releases it then).
    lock.acquire().expect("acquire").forget();
    ready.put(std::process::id()).expect("ready");
    // Blocks for ever: the parent kills us in the middle of this call.
    let _ = q.get();
    let _ = q.get();
}

#[cfg(target_os = "linux")]
/// Starts `n` clients, waits until each is inside its blocking call, and kills them all.
fn kill_clients(m: &Manager, ready: &QueueProxy<u32>, n: usize) {
    for batch in 0..n.div_ceil(25) {
        let count = 25.min(n - batch * 25);
        let mut clients: Vec<Process<()>> = (0..count)
            .map(|_| {
                let mut p = Process::new(doomed_client, (ready.clone(), m.address().clone()));
                p.start().unwrap();
                p
            })
            .collect();
        for _ in 0..count {
            ready.get_timeout(PATIENCE).expect("a client is ready");
        }
        for p in &clients {
            p.kill().unwrap();
        }
        for p in &mut clients {
            assert!(p.join_timeout(PATIENCE).is_err());
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn r11_killed_clients_give_their_references_back() {
    let m = Manager::start().unwrap();
    let pid = m.server_pid().unwrap();
    let ready: QueueProxy<u32> = m.queue().unwrap();
    let base_objects = m.live_objects().unwrap();
    // Warm up the server's allocator (its arenas grow with the number of connections served
    // at once) with a first round like the measured one, then take the baseline.
    kill_clients(&m, &ready, 100);
    assert!(
        eventually(PATIENCE, || m.live_objects().unwrap() == base_objects),
        "warm-up: {} objects, {base_objects} expected",
        m.live_objects().unwrap()
    );
    let base_rss = status(pid, "VmRSS:");
    kill_clients(&m, &ready, 100);
    let mut objects = 0;
    assert!(
        eventually(PATIENCE, || {
            objects = m.live_objects().unwrap();
            objects == base_objects
        }),
        "{objects} objects after the clients died, {base_objects} before"
    );
    let mut rss = 0;
    let back = eventually(Duration::from_secs(20), || {
        rss = status(pid, "VmRSS:");
        rss <= base_rss + 1024
    });
    eprintln!("r11: server rss {base_rss} kB before, {rss} kB after 100 killed clients");
    assert!(back, "server rss {rss} kB, baseline {base_rss} kB");
    m.shutdown().unwrap();
}

#[cfg(target_os = "linux")]
fn owner_main((tx, in_thread): (processing::Connection<String>, bool)) {
    let m = if in_thread {
        Manager::start_in_thread()
    } else {
        Manager::start()
    }
    .expect("start");
    let _list = m.list_from([1u32]).expect("list");
    let path = local_path(&m);
    tx.send(&path.display().to_string()).expect("send");
    loop {
        std::thread::park();
    }
}

/// Kills an owner process (its manager in a thread when `in_thread`) and checks that its
/// socket directory is gone soon after.
#[cfg(target_os = "linux")]
fn killed_owner_leaves_no_socket_directory(in_thread: bool, killed_what: &str) {
    let (rx, tx) = Pipe::new::<String>().unwrap();
    let mut owner = Process::new(owner_main, (tx, in_thread));
    owner.start().unwrap();
    let socket = PathBuf::from(rx.recv().unwrap());
    let dir = socket.parent().unwrap().to_path_buf();
    assert!(dir.exists());
    owner.kill().unwrap();
    let killed = Instant::now();
    assert!(owner.join_timeout(PATIENCE).is_err());
    let gone = eventually(Duration::from_secs(2), || !dir.exists());
    assert!(
        gone,
        "{} still exists {:?} after the {killed_what} was killed",
        dir.display(),
        killed.elapsed()
    );
}

#[cfg(target_os = "linux")]
#[test]
fn r12_a_killed_owner_leaves_no_socket_directory() {
    killed_owner_leaves_no_socket_directory(false, "owner");
}

#[cfg(target_os = "linux")]
#[test]
fn r12_in_thread_manager_leaves_nothing_after_sigkill() {
    // No other manager starts here (its start would sweep the directory): the resource
    // tracker, which outlives the program's processes, removes it.
    killed_owner_leaves_no_socket_directory(true, "program");
}

#[test]
fn r11_references_outlive_the_thread_and_connection_that_took_them() {
    let key = b"r11-key".to_vec();
    let (address, mut server) = tcp_server(&key);
    let connect = || {
        ManagerBuilder::new()
            .authkey(key.clone())
            .connect_timeout(address.as_str(), PATIENCE)
            .expect("connect")
    };
    let m = connect();
    // Made on a thread whose connection closes when it ends; used after that.
    let list = std::thread::scope(|s| {
        s.spawn(|| connect().list_from([1u32, 2, 3]).unwrap())
            .join()
            .unwrap()
    });
    for _ in 0..50 {
        assert_eq!(list.len().unwrap(), 3, "the list was freed with its thread");
    }
    assert_eq!(m.live_objects().unwrap(), 1);
    // A second manager handle in this thread replaces the thread's cached connection.
    let again = connect();
    for _ in 0..50 {
        assert_eq!(
            list.len().unwrap(),
            3,
            "the list was freed with a connection"
        );
    }
    drop(list);
    assert_eq!(again.live_objects().unwrap(), 0);
    again.shutdown().unwrap();
    server.join_timeout(PATIENCE).unwrap();
}
