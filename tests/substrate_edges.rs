//! Conformance tests R07 and R08 (docs/conformance.md, "Robustness at the edges"): the
//! shared-memory substrate (owner-checked lock words, the pipe ring, the queue) at the edges:
//! processes killed mid-message or mid-get, reused pids.
//!
//! Linux only: R07 exercises the shared-memory pipe ring (Linux's `Pipe` fast path) and R08
//! forces pid reuse through `/proc/sys/kernel/ns_last_pid`.
#![cfg(target_os = "linux")]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use processing::process::Process;
use processing::transport::{Connection, ConnectionError, Pipe, Queue, ReadOnly, WriteOnly};
use serde::{Deserialize, Deserializer, Serialize};

const BIG: usize = 4 << 20;
const LONG: Duration = Duration::from_secs(60);

/// The state letter of `/proc/<pid>/stat` (`'Z'` for a zombie), `None` once reaped.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Waits (bounded) until `pid` is a zombie: killed, not yet reaped.
fn until_zombie(pid: u32) {
    let t = Instant::now();
    loop {
        match proc_state(pid) {
            Some('Z') => return,
            None => panic!("{pid} was reaped before it could be seen as a zombie"),
            Some(_) => {}
        }
        assert!(t.elapsed() < LONG, "{pid} never became a zombie");
        std::thread::yield_now();
    }
}

// ---------------------------------------------------------------------------------------------
// R07

/// Sends one 4 MiB message on a shared writer end, after telling the parent it starts.
fn big_writer((w, started): (Connection<(), WriteOnly>, Queue<u32>)) {
    started.put(std::process::id()).unwrap();
    let _ = w.send_bytes(&vec![0xAA; BIG]);
}

/// How the survivor's send went: sent, the error's text, milliseconds taken.
type Report = (bool, String, u64);

/// The surviving writer: sends a small message and reports how the send went (`true`: sent;
/// `false`: a typed error) and how long it took.
fn small_writer((w, report): (Connection<(), WriteOnly>, Queue<Report>)) {
    let t = Instant::now();
    let r = w.send_bytes(b"survivor");
    let ms = t.elapsed().as_millis() as u64;
    report
        .put((
            r.is_ok(),
            r.err().map(|e| e.to_string()).unwrap_or_default(),
            ms,
        ))
        .unwrap();
}

fn r07_round(reap_before_survivor_reports: bool) {
    let (r, w): (Connection<(), ReadOnly>, Connection<(), WriteOnly>) = Pipe::simplex().unwrap();
    let started: Queue<u32> = Queue::new().unwrap();
    let report: Queue<Report> = Queue::new().unwrap();
    // Forked: our own child, which stays a zombie until we reap it (a fork-server child is
    // the server's, reaped by the server as soon as it relayed the status).
    let mut big = Process::new(big_writer, (w.clone(), started.clone()))
        .start_method(processing::StartMethod::Fork);
    big.start().unwrap();
    let big_pid = started.get_timeout(LONG).unwrap();
    // The reader reads nothing yet, so the 4 MiB message fills the ring and its writer stays
    // inside the send; once bytes show up it has begun (and holds the end's write lock).
    assert!(r.poll(LONG).unwrap(), "the big message never started");
    let mut small = Process::new(small_writer, (w.clone(), report.clone()));
    small.start().unwrap();
    drop(w);
    big.kill().unwrap();
    if reap_before_survivor_reports {
        assert!(big.join().is_err());
    } else {
        // Killed, not reaped: a zombie still holds the pid (an owner check that counts
        // zombies as alive would make the survivor spin for ever).
        until_zombie(big_pid);
    }
    // The reader: whole messages (only "survivor" can be whole: the big one was cut) or a
    // typed error, never bytes of two messages merged.
    let mut got = Vec::new();
    let end = loop {
        match r.recv_bytes() {
            Ok(m) => {
                assert!(
                    m == b"survivor" || m == vec![0xAA; BIG],
                    "received {} bytes that nobody sent as one message",
                    m.len()
                );
                got.push(m.len());
            }
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            end,
            ConnectionError::Torn | ConnectionError::Eof | ConnectionError::Broken
        ),
        "unexpected error {end:?}"
    );
    // The survivor's send ended (sent or a typed error), it did not spin for ever.
    let (sent, err, ms) = report
        .get_timeout(LONG)
        .expect("the survivor's send never ended");
    assert!(
        sent || err.contains("died in the middle"),
        "survivor: {err}"
    );
    assert!(
        !got.contains(&BIG),
        "the killed writer's message cannot be whole"
    );
    if sent {
        assert!(got.contains(&8), "a sent message is received whole");
    }
    eprintln!(
        "reaped={reap_before_survivor_reports} sent={sent} ({ms} ms) end={end:?} got={got:?}"
    );
    small.join().unwrap();
    if !reap_before_survivor_reports {
        assert!(big.join().is_err());
    }
}

/// Both rounds, in a child started with the spawn method: the rounds fork, and a fork of this
/// multi-threaded test binary could inherit a lock that another test's thread holds at that
/// moment (the fork start method, as Python's, is for processes without other threads).
fn r07_rounds(_: ()) -> Result<(), String> {
    r07_round(true);
    r07_round(false);
    Ok(())
}

#[test]
fn r07_shared_writer_killed_mid_message() {
    support::in_spawned_child(r07_rounds, (), "a round hung");
}

// ---------------------------------------------------------------------------------------------
// R08

/// Set in the consumer process only: decoding item 0 stalls there (inside `get`, with the
/// queue's get lock held) after telling the parent so.
static STALL: AtomicBool = AtomicBool::new(false);
static INSIDE_GET: OnceLock<Queue<u32>> = OnceLock::new();

#[derive(Debug, Serialize, PartialEq)]
struct Item(u64);

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        if STALL.load(Ordering::Relaxed) {
            if let Some(q) = INSIDE_GET.get() {
                q.put(std::process::id()).unwrap();
            }
            loop {
                std::thread::park();
            }
        }
        Ok(Item(v))
    }
}

fn stalling_consumer((q, inside): (Queue<Item>, Queue<u32>)) {
    INSIDE_GET.set(inside).unwrap();
    STALL.store(true, Ordering::Relaxed);
    let _ = q.get();
}

/// A live child process whose pid is `target`, killed and reaped on drop.
struct Squatter(libc::pid_t);

impl Drop for Squatter {
    fn drop(&mut self) {
        // SAFETY: our own unreaped child: the pid cannot have been reused.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

/// Starts an unrelated process (a forked child that only waits for a signal) that gets the
/// pid `target`: `/proc/sys/kernel/ns_last_pid` is set to `target - 1` before each fork (the
/// machine's other processes may take the pid first, hence several attempts); where that file
/// cannot be written, forks are cycled until the pid allocator wraps around to `target`.
fn squat(target: u32) -> Squatter {
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for _ in 0..(3 * pid_max) {
        let _ = std::fs::write("/proc/sys/kernel/ns_last_pid", (target - 1).to_string());
        // SAFETY: the child only calls async-signal-safe functions (getpid, pause, _exit).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                if libc::getpid() as u32 == target {
                    loop {
                        libc::pause();
                    }
                }
                libc::_exit(0);
            }
        }
        if pid as u32 == target {
            return Squatter(pid);
        }
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
    panic!("pid {target} could not be reused");
}

/// The scenario is real pid reuse: the consumer is SIGKILLed inside `get` (in the middle of
/// decoding, the get lock held), reaped, and its pid is then taken by an unrelated live process
/// (see `squat`: `ns_last_pid`, or fork cycling). The queue's other consumer must get every
/// item, the one the dead consumer was reading first.
#[test]
fn r08_queue_consumer_killed_in_get_pid_reused() {
    let q: Queue<Item> = Queue::new().unwrap();
    for i in 0..3 {
        q.put(Item(i)).unwrap();
    }
    let inside: Queue<u32> = Queue::new().unwrap();
    let mut consumer = Process::new(stalling_consumer, (q.clone(), inside.clone()));
    consumer.start().unwrap();
    let pid = inside.get_timeout(LONG).unwrap();
    let stamp = processing::shm::liveness::stamp_of(pid).unwrap();
    consumer.kill().unwrap();
    assert!(consumer.join().is_err());
    // The stamp is the start time in clock ticks: a process started within the same tick is
    // indistinguishable (a limit of the check), so the squatter must start in a later tick.
    let squatter = loop {
        let s = squat(pid);
        let now = processing::shm::liveness::stamp_of(pid).expect("the squatter runs");
        if now != stamp {
            break s;
        }
    };
    assert!(
        processing::shm::liveness::is_alive(pid, 0),
        "the pid runs again"
    );
    let t = Instant::now();
    for i in 0..3 {
        assert_eq!(q.get_timeout(LONG).unwrap(), Item(i));
    }
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "the dead consumer's lock took {took:?} to recover"
    );
    drop(squatter);
}
