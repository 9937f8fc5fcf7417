//! The Process conformance behaviours (P01–P11), each written once and run by the root test
//! files for every start method (`tests/process_conformance.rs`, `tests/process_fork.rs`).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use processing::process::{ProcessError, Stdio};
use processing::{active_children, current_process, parent_process, Process, StartMethod};

/// A one-shot gate a child waits at: the child connects and blocks until the parent opens it.
#[derive(Debug)]
pub struct Gate {
    listener: TcpListener,
}

impl Gate {
    /// A closed gate on a loopback port.
    pub fn new() -> Gate {
        Gate {
            listener: TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"),
        }
    }

    /// The port a child passes to [`wait_at_gate`].
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Lets the (one) waiting child through.
    pub fn open(&self) {
        if let Ok((mut s, _)) = self.listener.accept() {
            let _ = s.write_all(b"g");
        }
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

/// Child side of [`Gate`]: returns once the parent opens the gate (or goes away).
pub fn wait_at_gate(port: u16) {
    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
    }
}

/// Sleeps `ms` milliseconds (a target that stays alive until terminated).
pub fn sleeper(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Does nothing.
pub fn noop(_: ()) {}

/// Whether `pid` is a running (not zombie) process.
pub fn running(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => {
                let state = stat
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next());
                !matches!(state, Some("Z") | Some("X") | None)
            }
            Err(_) => false,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        processing::core::os::pid_alive(pid)
    }
}

/// A temporary file path unique to this process and call.
pub fn temp_path(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "processing-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn p01_child((port, values, text): (u16, Vec<u32>, String)) -> (Vec<u32>, String, String, u32) {
    wait_at_gate(port);
    (
        values,
        text,
        current_process().name().to_string(),
        current_process().pid(),
    )
}

/// P01 Lifecycle.
pub fn p01_lifecycle(method: StartMethod) {
    let gate = Gate::new();
    let mut p = Process::new(p01_child, (gate.port(), vec![1, 2, 3], "abc".to_string()))
        .name("p01-child")
        .start_method(method);
    assert!(!p.is_alive());
    assert_eq!(p.pid(), None);
    assert_eq!(p.exitcode(), None);
    assert_eq!(p.get_name(), "p01-child");
    p.start().unwrap();
    let pid = p.pid().expect("pid after start");
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    assert!(active_children()
        .iter()
        .any(|c| c.pid() == pid && c.name() == "p01-child"));
    gate.open();
    let (values, text, name, child_pid) = p.join().unwrap();
    assert_eq!(values, vec![1, 2, 3]);
    assert_eq!(text, "abc");
    assert_eq!(name, "p01-child");
    assert_eq!(child_pid, pid);
    assert_eq!(p.exitcode(), Some(0));
    assert!(!p.is_alive());
    assert!(!active_children().iter().any(|c| c.pid() == pid));
}

fn p02_child(_: ()) -> (String, u32, bool, bool, Vec<u8>) {
    let me = current_process();
    (
        me.name().to_string(),
        me.pid(),
        me.daemon(),
        me.is_alive(),
        me.authkey().to_vec(),
    )
}

/// P02 current_process in the main process (and, for contrast, in a child).
pub fn p02_current_process(method: StartMethod) {
    let me = current_process();
    assert!(me.is_alive());
    assert!(!me.daemon());
    assert_eq!(me.name(), "MainProcess");
    assert_eq!(me.pid(), std::process::id());
    let mut p = Process::new(p02_child, ()).name("p02").start_method(method);
    p.start().unwrap();
    let pid = p.pid().unwrap();
    let (name, child_pid, daemon, alive, key) = p.join().unwrap();
    assert_eq!(
        (name.as_str(), child_pid, daemon, alive),
        ("p02", pid, false, true)
    );
    assert_eq!(key, me.authkey().to_vec(), "the authkey is inherited");
}

/// P03 terminate → −SIGTERM, kill → −SIGKILL, join(0) at once, join after kill promptly.
/// Joins `p`, which was terminated: SIGTERM on Unix (exit code `-SIGTERM`), an exit elsewhere.
fn joins_terminated<R>(p: &mut Process<R>)
where
    R: serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let err = p.join().unwrap_err();
    #[cfg(unix)]
    {
        assert!(matches!(err, ProcessError::Signaled(15)), "{err:?}");
        assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
    }
    #[cfg(not(unix))]
    assert!(matches!(err, ProcessError::Exited(_)), "{err:?}");
}

pub fn p03_terminate_sets_negative_signal(method: StartMethod) {
    let mut p = Process::new(sleeper, 60_000).start_method(method);
    p.start().unwrap();
    let t = Instant::now();
    assert!(p.join_timeout(Duration::ZERO).unwrap_err().is_timeout());
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(p.is_alive());
    p.terminate().unwrap();
    joins_terminated(&mut p);

    let mut p = Process::new(sleeper, 60_000).start_method(method);
    p.start().unwrap();
    p.kill().unwrap();
    let t = Instant::now();
    let err = p.join().unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5));
    #[cfg(unix)]
    {
        assert!(matches!(err, ProcessError::Signaled(9)), "{err:?}");
        assert_eq!(p.exitcode(), Some(-libc::SIGKILL));
    }
    #[cfg(not(unix))]
    assert!(err.to_string().contains("exited"), "{err:?}");
}

fn panicker(text: String) -> u32 {
    panic!("{text}")
}

fn exiter(code: i32) -> u32 {
    std::process::exit(code)
}

/// P04 exit codes: 0 on return, 1 on panic (message on stderr and in the error), n on exit(n).
pub fn p04_exit_codes(method: StartMethod) {
    let mut p = Process::new(noop, ()).start_method(method);
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));

    let path = temp_path("p04-stderr");
    let file = std::fs::File::create(&path).unwrap();
    let mut p = Process::new(panicker, "boom-p04".to_string())
        .stderr(Stdio::file(file))
        .start_method(method);
    p.start().unwrap();
    match p.join() {
        Err(ProcessError::Panicked { message, location }) => {
            assert_eq!(message, "boom-p04");
            assert!(
                location
                    .as_deref()
                    .is_some_and(|l| l.contains("process_cases.rs")),
                "{location:?}"
            );
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(p.exitcode(), Some(1));
    let stderr = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    assert!(stderr.contains("boom-p04"), "child stderr: {stderr:?}");

    let mut p = Process::new(exiter, 7).start_method(method);
    p.start().unwrap();
    assert!(matches!(p.join(), Err(ProcessError::Exited(7))));
    assert_eq!(p.exitcode(), Some(7));
}

/// A value with some structure, to come back through join.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Sum of the inputs.
    pub total: u64,
    /// The inputs as text.
    pub words: Vec<String>,
    /// Optional note.
    pub note: Option<String>,
}

fn summarise(values: Vec<u64>) -> Summary {
    Summary {
        total: values.iter().sum(),
        words: values.iter().map(|v| v.to_string()).collect(),
        note: None,
    }
}

/// P05 the target's return value comes back through join.
pub fn p05_return_value(method: StartMethod) {
    let mut p = Process::new(summarise, vec![1, 2, 39]).start_method(method);
    p.start().unwrap();
    let s = p.join().unwrap();
    assert_eq!(
        s,
        Summary {
            total: 42,
            words: vec!["1".into(), "2".into(), "39".into()],
            note: None
        }
    );
    assert!(matches!(p.join(), Err(ProcessError::AlreadyJoined)));
}

fn daemon_creator(method: StartMethod) -> (bool, bool, bool) {
    let mut p = Process::new(noop, ()).start_method(method);
    let inherited = p.is_daemon();
    let err = p.start().unwrap_err();
    (
        current_process().daemon(),
        inherited,
        err.spawn_error().is_some_and(|e| e.is_daemonic()),
    )
}

fn start_daemon_and_leave(method: StartMethod) -> u32 {
    let mut p = Process::new(sleeper, 60_000)
        .daemon(true)
        .start_method(method);
    p.start().unwrap();
    p.pid().unwrap()
}

/// P06 the daemon flag: inherited default, before start only, terminated with the parent,
/// no children of daemons.
pub fn p06_daemon(method: StartMethod) {
    let p = Process::new(noop, ()).start_method(method);
    assert!(
        !p.is_daemon(),
        "defaults to the creator's flag (not daemonic)"
    );
    let mut p = Process::new(daemon_creator, method)
        .daemon(true)
        .start_method(method);
    p.start().unwrap();
    assert!(p.is_daemon());
    assert_eq!(p.join().unwrap(), (true, true, true));

    let mut parent = Process::new(start_daemon_and_leave, method).start_method(method);
    parent.start().unwrap();
    let grandchild = parent.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(grandchild) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !running(grandchild),
        "the daemonic child {grandchild} outlived its parent"
    );
}

fn tree_node((path, method): (Vec<u32>, StartMethod)) -> Vec<Vec<u32>> {
    let mut out = vec![path.clone()];
    if path.len() < 2 {
        let mut children: Vec<Process<Vec<Vec<u32>>>> = (0..2)
            .map(|i| {
                let mut child_path = path.clone();
                child_path.push(i);
                let mut p = Process::new(tree_node, (child_path, method)).start_method(method);
                p.start().unwrap();
                p
            })
            .collect();
        for p in &mut children {
            out.extend(p.join().unwrap());
        }
    }
    out
}

/// P07 a tree of depth 2 reports its paths in depth-first order through join values.
pub fn p07_nested_tree(method: StartMethod) {
    let paths = tree_node((Vec::new(), method));
    let expected: Vec<Vec<u32>> = vec![
        vec![],
        vec![0],
        vec![0, 0],
        vec![0, 1],
        vec![1],
        vec![1, 0],
        vec![1, 1],
    ];
    assert_eq!(paths, expected);
}

/// P08 starting twice, joining an unstarted process, setting daemon after start.
pub fn p08_misuse_errors(method: StartMethod) {
    let mut p = Process::new(noop, ()).start_method(method);
    assert!(matches!(p.join(), Err(ProcessError::NotStarted)));
    assert!(matches!(p.terminate(), Err(ProcessError::NotStarted)));
    p.start().unwrap();
    assert!(matches!(p.start(), Err(ProcessError::AlreadyStarted)));
    assert!(matches!(
        p.set_daemon(true),
        Err(ProcessError::AlreadyStarted)
    ));
    p.join().unwrap();
    assert!(matches!(p.start(), Err(ProcessError::AlreadyStarted)));
}

/// P09 100 short processes exit 0; 100 sleepers terminated right after start report −SIGTERM.
pub fn p09_many_processes(method: StartMethod) {
    let mut ps: Vec<Process> = (0..100)
        .map(|_| Process::new(noop, ()).start_method(method))
        .collect();
    for p in &mut ps {
        p.start().unwrap();
    }
    for p in &mut ps {
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(0));
    }
    let mut ps: Vec<Process> = (0..100)
        .map(|_| Process::new(sleeper, 60_000).start_method(method))
        .collect();
    for p in &mut ps {
        p.start().unwrap();
        p.terminate().unwrap();
    }
    for p in &mut ps {
        joins_terminated(p);
    }
}

fn parent_of_me(_: ()) -> Option<(u32, String)> {
    parent_process().map(|p| (p.pid(), p.name().to_string()))
}

fn parent_of_grandchild(method: StartMethod) -> (Option<(u32, String)>, u32) {
    let mut p = Process::new(parent_of_me, ()).start_method(method);
    p.start().unwrap();
    (p.join().unwrap(), std::process::id())
}

/// P10 parent_process: None in the main process; pid and name in a child.
pub fn p10_parent_process(method: StartMethod) {
    assert!(parent_process().is_none());
    let mut p = Process::new(parent_of_me, ()).start_method(method);
    p.start().unwrap();
    assert_eq!(
        p.join().unwrap(),
        Some((std::process::id(), "MainProcess".to_string()))
    );
    let mut p = Process::new(parent_of_grandchild, method)
        .name("middle")
        .start_method(method);
    p.start().unwrap();
    let (grand, middle_pid) = p.join().unwrap();
    assert_eq!(grand, Some((middle_pid, "middle".to_string())));
}

fn count_fds(_: ()) -> usize {
    #[cfg(target_os = "linux")]
    {
        // The directory handle itself is one entry.
        std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count().saturating_sub(1))
            .unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// P11 a child's descriptor count does not grow with the number of live siblings.
pub fn p11_no_fd_leak(method: StartMethod) {
    let measure = || {
        let mut p = Process::new(count_fds, ()).start_method(method);
        p.start().unwrap();
        p.join().unwrap()
    };
    let mut siblings: Vec<Process> = Vec::new();
    let start_sibling = || {
        let mut s = Process::new(sleeper, 60_000).start_method(method);
        s.start().unwrap();
        s
    };
    siblings.push(start_sibling());
    let with_one = measure();
    for _ in 0..9 {
        siblings.push(start_sibling());
    }
    let with_ten = measure();
    for s in &mut siblings {
        s.kill().unwrap();
        let _ = s.join();
    }
    assert!(
        with_ten <= with_one,
        "fds with 1 sibling: {with_one}, with 10: {with_ten}"
    );
    if cfg!(target_os = "linux") {
        assert!(with_one <= 8, "a child has {with_one} descriptors open");
    }
}
