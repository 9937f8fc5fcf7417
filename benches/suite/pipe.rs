//! `pipe_rtt_us` and `pipe_bytes_gbps` (docs/benchmarks.md), measured as `baseline.py` does:
//! an 8-byte typed ping-pong with a child echo process (200 warm-up rounds, best of 3 runs of
//! 20 000, or 2 000 with `--quick`), and 1 MiB `send_bytes` one way to a child that receives
//! them all and answers "done" (2 000 messages, 200 with `--quick`).

use std::time::{Duration, Instant};

use processing::{spawn, Connection, Pipe};

use crate::ctx::{best_of, Ctx};

type Ping = Option<Vec<u8>>;

fn echo_loop(conn: Connection<Ping>) {
    while let Ok(Some(m)) = conn.recv() {
        if conn.send(&Some(m)).is_err() {
            break;
        }
    }
}

fn echo_loop_pinned(conn: Connection<Ping>) {
    pin_to_cpu0();
    echo_loop(conn);
}

fn bytes_sink((conn, n): (Connection<()>, u32)) {
    for _ in 0..n {
        if conn.recv_bytes().is_err() {
            return;
        }
    }
    let _ = conn.send_bytes(b"done");
}

#[cfg(target_os = "linux")]
fn set_affinity(set: &libc::cpu_set_t) {
    // SAFETY: sched_setaffinity reads one cpu_set_t from a valid reference; pid 0 is this thread.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
}

/// `taskset -c 0` semantics for the calling thread; returns the previous mask.
#[cfg(target_os = "linux")]
fn pin_to_cpu0() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain old data; zero is the empty set; the CPU_* helpers only touch it.
    unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old);
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        set_affinity(&set);
        Some(old)
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_to_cpu0() -> Option<()> {
    None
}

fn rtt(ctx: &Ctx, pinned: bool) -> Option<(f64, usize)> {
    let (a, b) = Pipe::new::<Ping>().ok()?;
    let previous = if pinned { Some(pin_to_cpu0()?) } else { None };
    let mut child = if pinned {
        spawn(echo_loop_pinned, b).ok()?
    } else {
        spawn(echo_loop, b).ok()?
    };
    let n = if ctx.quick { 2000 } else { 20000 };
    let msg = Some(vec![b'x'; 8]);
    for _ in 0..200 {
        a.send(&msg).ok()?;
        a.recv().ok()?;
    }
    let per = best_of(3, || {
        let t = Instant::now();
        for _ in 0..n {
            a.send(&msg).unwrap();
            a.recv().unwrap();
        }
        t.elapsed() / n as u32
    });
    a.send(&None).ok()?;
    child.join().ok()?;
    #[cfg(target_os = "linux")]
    if let Some(old) = previous {
        set_affinity(&old);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = previous;
    Some((per.as_secs_f64() * 1e6, n))
}

fn throughput(ctx: &Ctx) -> Option<(f64, usize)> {
    let size = 1usize << 20;
    let n: u32 = if ctx.quick { 200 } else { 2000 };
    let (a, b) = Pipe::new::<()>().ok()?;
    let mut child = spawn(bytes_sink, (b, n)).ok()?;
    let buf = vec![0u8; size];
    let t = Instant::now();
    for _ in 0..n {
        a.send_bytes(&buf).ok()?;
    }
    a.recv_bytes().ok()?;
    let dt = t.elapsed().max(Duration::from_nanos(1));
    child.join().ok()?;
    Some((size as f64 * n as f64 / dt.as_secs_f64() / 1e9, n as usize))
}

pub fn run(ctx: &Ctx) {
    if ctx.want("pipe_rtt_us") {
        // Pinned to one CPU each only where the affinity call exists (Linux); the unpinned
        // figure is the headline.
        for pinned in [false, true] {
            if pinned && !cfg!(target_os = "linux") {
                continue;
            }
            match rtt(ctx, pinned) {
                Some((us, n)) => {
                    let mut extra: Vec<(&str, String)> = vec![
                        ("count", n.to_string()),
                        ("message_bytes", "8".into()),
                        ("pinned", pinned.to_string()),
                    ];
                    if !pinned {
                        extra.push(("headline", "true".into()));
                    }
                    ctx.emit("pipe_rtt_us", us, "us", &extra);
                }
                None => eprintln!("pipe_rtt_us (pinned: {pinned}): failed"),
            }
        }
    }
    if ctx.want("pipe_bytes_gbps") {
        match throughput(ctx) {
            Some((gbps, n)) => ctx.emit(
                "pipe_bytes_gbps",
                gbps,
                "GB/s",
                &[
                    ("count", n.to_string()),
                    ("message_bytes", (1 << 20).to_string()),
                    ("headline", "true".into()),
                ],
            ),
            None => eprintln!("pipe_bytes_gbps: failed"),
        }
    }
}
