//! Helpers the root tests share: starting and running a child process, ports, a tokio runtime,
//! one poll of a future and the parent's thread count. Each test binary includes this module
//! and uses what it needs.

#![allow(dead_code, unused_imports, unused_macros)]

use std::future::Future;
use std::pin::Pin;
use std::task::Context;

use processing::Process;
use serde::{de::DeserializeOwned, Serialize};

/// Starts `f(args)` in a child process.
pub fn start<F, A, R>(f: F, args: A) -> Process<R>
where
    F: Fn(A) -> R + 'static,
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + 'static,
{
    let mut p = Process::new(f, args);
    p.start().expect("start child");
    p
}

/// Runs `f(args)` in a child process and returns its result.
pub fn run<F, A, R>(f: F, args: A) -> R
where
    F: Fn(A) -> R + 'static,
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + 'static,
{
    start(f, args).join().expect("child failed")
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    closed_port().port()
}

/// An address on which nothing listens (bound, then released).
pub fn closed_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// A two-thread tokio runtime with every driver.
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Polls `f` once with a waker that does nothing; `true` if it was pending.
pub fn poll_once<F: Future>(f: Pin<&mut F>) -> bool {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    f.poll(&mut cx).is_pending()
}

/// The number of threads of this process (Linux: `/proc/self/status`).
pub fn threads() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Runs `f(arg)` in a child started with the spawn method and returns its report; a child
/// that does not end within 120 s (a hang) fails the test with `hung`.
pub fn in_spawned_child<F, A>(f: F, arg: A, hung: &str)
where
    F: Fn(A) -> Result<(), String> + Copy + Send + Sync + 'static,
    A: Serialize + DeserializeOwned + 'static,
{
    let mut p = Process::new(f, arg).start_method(processing::StartMethod::Spawn);
    p.start().unwrap();
    match p.join_timeout(std::time::Duration::from_secs(120)) {
        Ok(report) => report.unwrap(),
        Err(e) if e.is_timeout() => {
            let _ = p.kill();
            let _ = p.join();
            panic!("{hung}");
        }
        Err(e) => panic!("the scenario failed: {e}"),
    }
}

/// The descriptors this process has open (Linux).
#[cfg(target_os = "linux")]
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Lowers this process's descriptor limit to what it uses plus `extra` (Linux).
#[cfg(target_os = "linux")]
pub fn limit_fds(extra: usize) -> Result<(), String> {
    let soft = (open_fds() + extra) as libc::rlim_t;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit structure.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err("getrlimit failed".into());
        }
        lim.rlim_cur = soft.min(lim.rlim_max);
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return Err("setrlimit failed".into());
        }
    }
    Ok(())
}

/// Two tests of each async body `$body()`: `$tokio` runs it on [`tokio_rt`], `$block_on`
/// under `futures::executor::block_on`.
macro_rules! tokio_and_block_on {
    ($($body:ident: $tokio:ident, $block_on:ident;)*) => {$(
        #[test]
        fn $tokio() {
            $crate::support::tokio_rt().block_on($body());
        }

        #[test]
        fn $block_on() {
            futures::executor::block_on($body());
        }
    )*};
}
pub(crate) use tokio_and_block_on;

/// The entries of `dir` that process `pid` created (every segment carries its creator's pid in
/// its name); none when `dir` cannot be read.
pub fn created_by(dir: &std::path::Path, pid: impl std::fmt::Display) -> Vec<String> {
    let prefix = format!("processing-{pid}-");
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// The segments process `pid` created that still have a name under /dev/shm (Linux).
#[cfg(target_os = "linux")]
pub fn segments_of(pid: impl std::fmt::Display) -> Vec<String> {
    created_by("/dev/shm".as_ref(), pid)
}

/// The pid a task wrote as one line into the FIFO at `path` (blocks until the task opened it,
/// that is, until the task runs); the FIFO is removed after.
#[cfg(unix)]
pub fn pid_from_fifo(path: &std::path::Path) -> u32 {
    use std::io::BufRead as _;
    let mut line = String::new();
    std::io::BufReader::new(std::fs::File::open(path).unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = std::fs::remove_file(path);
    line.trim().parse().unwrap()
}
