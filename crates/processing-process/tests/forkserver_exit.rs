//! How a fork-server child's end reaches its requester: the code the child announces before
//! its `_exit` (no wake-up of the server on the way), and the status the server relays
//! (signals, `exit` called by the target).
#![cfg(target_os = "linux")]

use std::time::Duration;

use processing::{Event, Process, ProcessError, StartMethod};

/// Generous: a hang (waiting for a relay from a stopped server) fails here, not a slow machine.
const LONG: Duration = Duration::from_secs(60);

fn server_pid(_: ()) -> u32 {
    std::os::unix::process::parent_id()
}

fn wait_then_return(go: Event) -> u32 {
    go.wait();
    42
}

fn wait_then_panic(go: Event) {
    go.wait();
    panic!("on purpose");
}

fn wait_then_exit(go: Event) {
    go.wait();
    std::process::exit(3);
}

fn sleep_long(_: ()) {
    std::thread::sleep(Duration::from_secs(600));
}

fn forkserver<F, A, R>(target: F, arg: A) -> Process<R>
where
    F: Fn(A) -> R + 'static,
    A: serde::Serialize + serde::de::DeserializeOwned,
    R: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut p = Process::new(target, arg).start_method(StartMethod::ForkServer);
    p.start().expect("start");
    p
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill takes a pid and a signal number.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

/// Runs in its own (spawned) process, so that stopping its fork server stops no other test:
/// with the server stopped, children that end through the bootstrap are joined from their
/// announced codes; once it runs again, a child that announced nothing gets the relayed one.
/// Returns (value, panic seen, exit code after a panic, `exit(3)` seen, killed seen).
fn with_stopped_server(_: ()) -> (u32, bool, Option<i32>, bool, bool) {
    let server = forkserver(server_pid, ()).join().expect("server pid");
    let (go_value, go_panic, go_exit) = (
        Event::new().unwrap(),
        Event::new().unwrap(),
        Event::new().unwrap(),
    );
    let mut value = forkserver(wait_then_return, go_value.clone());
    let mut panics = forkserver(wait_then_panic, go_panic.clone());
    let mut exits = forkserver(wait_then_exit, go_exit.clone());
    let mut killed = forkserver(sleep_long, ());
    signal(server, libc::SIGSTOP);
    go_value.set();
    go_panic.set();
    let got = value.join_timeout(LONG);
    let panicked = panics.join_timeout(LONG);
    let panic_code = panics.exitcode();
    signal(server, libc::SIGCONT);
    go_exit.set();
    let exited = exits.join_timeout(LONG);
    killed.kill().expect("kill");
    let signaled = killed.join_timeout(LONG);
    (
        got.expect("joined while the server was stopped"),
        matches!(panicked, Err(ProcessError::Panicked { .. })),
        panic_code,
        matches!(exited, Err(ProcessError::Exited(3))),
        matches!(signaled, Err(ProcessError::Signaled(9))),
    )
}

#[test]
fn forkserver_child_end_without_and_with_the_server() {
    let mut probe = Process::new(with_stopped_server, ()).start_method(StartMethod::Spawn);
    probe.start().unwrap();
    let (value, panicked, panic_code, exited, signaled) = probe
        .join_timeout(LONG * 3)
        .expect("the probe finished (a join waited for the stopped server)");
    assert_eq!(value, 42);
    assert!(panicked, "the panic was not reported");
    assert_eq!(panic_code, Some(1));
    assert!(exited, "exit(3) in the target was not relayed as Exited(3)");
    assert!(signaled, "the kill was not relayed as Signaled(9)");
}

/// The CPUs the calling thread may run on.
fn allowed_cpus(_: ()) -> Vec<usize> {
    // SAFETY: cpu_set_t is plain old data; zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most one cpu_set_t into `set`.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(r, 0, "sched_getaffinity");
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: every index is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// The server pins itself to its CPU for each fork (so that the child starts where the server
/// is about to leave the CPU free): the child, and the server after it, may still run on every
/// CPU the requester may.
#[test]
fn a_forkserver_child_may_run_on_the_cpus_of_its_requester() {
    let ours = allowed_cpus(());
    for _ in 0..3 {
        let mut p = forkserver(allowed_cpus, ());
        assert_eq!(p.join_timeout(LONG).expect("join"), ours);
    }
    let mut p = forkserver(server_pid, ());
    let server = p.join_timeout(LONG).expect("join");
    let status = std::fs::read_to_string(format!("/proc/{server}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap()
        .to_string();
    let mine = std::fs::read_to_string("/proc/self/status").unwrap();
    let my_line = mine
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap();
    assert_eq!(line, my_line, "the server stayed pinned");
}

/// The CPUs of a child started with the fork method, from a process of one thread (the fork
/// method is for such), with the CPUs of that process.
fn fork_child_cpus(_: ()) -> (Vec<usize>, Vec<usize>) {
    let mut p = Process::new(allowed_cpus, ()).start_method(StartMethod::Fork);
    p.start().expect("start");
    (p.join_timeout(LONG).expect("join"), allowed_cpus(()))
}

/// The fork method pins the forking thread for the fork too: the child, and the thread after
/// it, may still run on every CPU they could.
#[test]
fn a_fork_child_may_run_on_the_cpus_of_its_parent() {
    let mut p = Process::new(fork_child_cpus, ()).start_method(StartMethod::Spawn);
    p.start().expect("start");
    let (child, parent) = p.join_timeout(LONG).expect("join");
    assert_eq!(child, allowed_cpus(()));
    assert_eq!(parent, allowed_cpus(()), "the forking thread stayed pinned");
}
