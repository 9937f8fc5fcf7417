//! Unix: the resource tracker, a helper process that removes the segments of dead processes.
//!
//! The first process that creates or opens a segment starts the tracker: it binds a listening
//! socket in a private 0700 directory, re-executes its own executable with the listener as
//! descriptor 3 and [`MARKER_ENV`] set, and records the socket's path in [`PATH_ENV`] so that
//! its children (spawned later) connect to the same tracker. A pre-main hook registered with
//! `processing_core::on_load!` turns the re-executed process into the tracker before `main`.
//!
//! Each client process keeps one connection open and writes `R <name>\n` for each segment it
//! creates, and `D <path>\n` for each private directory of this library (a local manager's
//! socket directory) to remove once it is gone: when that connection closes, however the
//! process ended, the tracker removes those directories. The tracker never trusts the connection for ownership: it reads the holder table
//! in each segment's header, which lists every process that attached (creators and openers
//! alike). It sweeps its names when a client disconnects (a process ended) and every second:
//! a segment none of whose holders runs and with no handle in flight is unlinked. Once no
//! client is left it also removes segments whose in-flight handles were never received, and
//! it exits when it has neither clients nor segments left to watch.
//!
//! This module is the only place in processing-shm that creates a process.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::unix::Segment;
use crate::liveness;
use crate::segment::header;

/// Set (to the listener's descriptor number) in the environment of the tracker process.
const MARKER_ENV: &str = "PROCESSING_SHM_TRACKER_FD";
/// The socket path of this process tree's tracker (not a secret: the directory is 0700).
const PATH_ENV: &str = "PROCESSING_SHM_TRACKER";
const LISTENER_FD: RawFd = 3;

struct Client {
    pid: u32,
    stream: UnixStream,
}

static CLIENT: Mutex<Option<Client>> = Mutex::new(None);

/// Makes sure this process is connected to a tracker (starting one if needed). Calling it
/// early in `main`, before threads exist, is the cleanest moment to set the environment
/// variable children inherit.
pub(crate) fn tracker_ensure() -> io::Result<()> {
    let mut slot = CLIENT.lock().unwrap_or_else(|e| e.into_inner());
    ensure_locked(&mut slot).map(|_| ())
}

/// The variable that leads a child to this process's tracker, once connected to one.
pub(crate) fn tracker_child_env() -> Option<(&'static str, String)> {
    let slot = CLIENT.lock().unwrap_or_else(|e| e.into_inner());
    if slot
        .as_ref()
        .is_none_or(|c| c.pid != liveness::current_pid())
    {
        return None;
    }
    drop(slot);
    std::env::var(PATH_ENV).ok().map(|v| (PATH_ENV, v))
}

fn ensure_locked(slot: &mut Option<Client>) -> io::Result<&mut UnixStream> {
    let pid = liveness::current_pid();
    if slot.as_ref().is_none_or(|c| c.pid != pid) {
        // A connection inherited through `fork` is forgotten, not closed: a forked child may
        // have closed that descriptor number already (or reused it).
        if let Some(inherited) = slot.take() {
            std::mem::forget(inherited);
        }
        *slot = Some(Client {
            pid,
            stream: connect()?,
        });
    }
    match slot {
        Some(c) => Ok(&mut c.stream),
        None => Err(io::Error::other("no tracker connection")),
    }
}

/// Tells the tracker about segment `name`. `created`: this process made it, so a tracker is
/// started if none is reachable; a segment that was only opened is already known to its
/// creator's tracker, which watches every holder in the segment's table, so it is reported
/// only over a connection that already exists. Best effort: without a tracker, segments are
/// still removed by their last dropper, only crashes may leave them behind.
pub(crate) fn tracker_register(name: &str, created: bool) {
    let mut slot = CLIENT.lock().unwrap_or_else(|e| e.into_inner());
    if !created
        && slot
            .as_ref()
            .is_none_or(|c| c.pid != liveness::current_pid())
    {
        return;
    }
    let line = format!("R {name}\n");
    for _ in 0..2 {
        match ensure_locked(&mut slot) {
            Ok(stream) => {
                if stream.write_all(line.as_bytes()).is_ok() {
                    return;
                }
                // The tracker is gone (it exits with its last client, e.g. after our parent
                // died): start over with a fresh one.
                *slot = None;
                std::env::remove_var(PATH_ENV);
            }
            Err(_) => return,
        }
    }
}

/// Asks the tracker to remove directory `dir` (and what it holds) once this process has ended,
/// however it ends: the tracker does it when this process's connection closes. Only
/// directories whose name starts with [`crate::NAME_PREFIX`] are accepted.
pub(crate) fn tracker_remove_dir_at_exit(dir: &std::path::Path) -> io::Result<()> {
    let text = dir
        .to_str()
        .filter(|t| !t.contains('\n') && dir.is_absolute())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a plain absolute path"))?;
    if !dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(crate::NAME_PREFIX))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a directory of this library",
        ));
    }
    let line = format!("D {text}\n");
    let mut slot = CLIENT.lock().unwrap_or_else(|e| e.into_inner());
    let mut last = io::Error::other("no tracker connection");
    for _ in 0..2 {
        let stream = ensure_locked(&mut slot)?;
        match stream.write_all(line.as_bytes()) {
            Ok(()) => return Ok(()),
            Err(e) => {
                // The tracker is gone: start over with a fresh one.
                last = e;
                *slot = None;
                std::env::remove_var(PATH_ENV);
            }
        }
    }
    Err(last)
}

fn connect() -> io::Result<UnixStream> {
    if let Some(path) = std::env::var_os(PATH_ENV) {
        if let Ok(stream) = UnixStream::connect(&path) {
            return Ok(stream);
        }
    }
    start()
}

fn start() -> io::Result<UnixStream> {
    let dir = processing_core::os::private_runtime_dir()?;
    let tag: String = processing_core::authkey::random_bytes(6)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = dir.join(format!("tracker-{}-{tag}.sock", liveness::current_pid()));
    let listener = UnixListener::bind(&path)?;
    let fd = listener.as_raw_fd();
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    // A clean environment: the tracker needs nothing from it, and markers that other
    // pre-main hooks look for (a child bootstrap, a forkserver) must not reach it.
    cmd.arg("--processing-resource-tracker")
        .env_clear()
        .env(MARKER_ENV, LISTENER_FD.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (dup2, fcntl, setsid) on descriptors it owns.
    unsafe {
        cmd.pre_exec(move || {
            if fd == LISTENER_FD {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(fd, LISTENER_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            // Its own session: a Ctrl-C aimed at the program must not kill the cleaner.
            libc::setsid();
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    drop(listener);
    // Reap the tracker when it exits so that it does not linger as a zombie of ours.
    let _ = std::thread::Builder::new()
        .name("processing-tracker-reaper".into())
        .spawn(move || child.wait());
    std::env::set_var(PATH_ENV, &path);
    UnixStream::connect(&path)
}

/// The pre-main hook: in the tracker process, runs the tracker and exits.
fn hook() {
    let Some(value) = std::env::var_os(MARKER_ENV) else {
        return;
    };
    let fd: RawFd = value
        .to_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(LISTENER_FD);
    std::env::remove_var(MARKER_ENV);
    close_other_descriptors(fd);
    // SAFETY: the starter placed the listening socket at this descriptor for us alone.
    let listener = unsafe { UnixListener::from_raw_fd(fd) };
    serve(listener);
    std::process::exit(0);
}
processing_core::on_load!(hook);

/// Closes every descriptor above stderr except `keep`: descriptors that leaked into the
/// tracker without close-on-exec (a pipe of the program's) must not be held open by it.
fn close_other_descriptors(keep: RawFd) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd").or_else(|_| std::fs::read_dir("/dev/fd"))
    else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd > 2 && fd != keep {
            // SAFETY: closing a descriptor number; nothing in this process uses them yet
            // (the one the directory listing used is already closed, and closing a stale
            // number fails harmlessly).
            unsafe { libc::close(fd) };
        }
    }
}

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    /// Directories to remove when this client is gone (`D <path>` lines).
    dirs: Vec<PathBuf>,
}

impl Conn {
    /// The client is gone: removes the directories it asked for.
    fn remove_dirs(&mut self) {
        for dir in self.dirs.drain(..) {
            // Only a real directory (not a link to one) of this library.
            let ours = dir
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(crate::NAME_PREFIX));
            if ours && std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
}

fn serve(listener: UnixListener) {
    let socket_path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(PathBuf::from));
    let _ = listener.set_nonblocking(true);
    sweep_orphans();
    let mut conns: Vec<Conn> = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    let started = Instant::now();
    let mut had_client = false;
    let mut last_sweep = Instant::now();
    loop {
        let mut fds: Vec<libc::pollfd> = std::iter::once(listener.as_raw_fd())
            .chain(conns.iter().map(|c| c.stream.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // An error (EINTR) counts as nothing ready.
        let n = processing_core::os::poll(&mut fds, 250).unwrap_or(0);
        let mut lost_client = false;
        if n > 0 {
            if fds[0].revents != 0 {
                while let Ok((stream, _)) = listener.accept() {
                    let _ = stream.set_nonblocking(true);
                    conns.push(Conn {
                        stream,
                        buf: Vec::new(),
                        dirs: Vec::new(),
                    });
                    had_client = true;
                }
            }
            let mut idx = 0;
            let mut keep = Vec::with_capacity(conns.len());
            for mut conn in conns.drain(..) {
                idx += 1;
                let revents = fds.get(idx).map_or(0, |p| p.revents);
                if revents != 0 && !read_client(&mut conn, &mut names) {
                    conn.remove_dirs();
                    lost_client = true;
                    continue;
                }
                keep.push(conn);
            }
            conns = keep;
        }
        if lost_client || last_sweep.elapsed() >= Duration::from_secs(1) {
            // With no client left, a handle still in flight has no process to receive it.
            sweep(&mut names, conns.is_empty());
            last_sweep = Instant::now();
        }
        // Segments still held by live processes that are not clients (children that only
        // opened them) keep the tracker watching until their holders are gone too.
        if conns.is_empty()
            && names.is_empty()
            && (had_client || started.elapsed() > Duration::from_secs(10))
        {
            break;
        }
    }
    if let Some(path) = socket_path {
        let _ = std::fs::remove_file(path);
    }
}

/// Reads what a client sent; false when it disconnected.
fn read_client(conn: &mut Conn, names: &mut HashSet<String>) -> bool {
    let mut chunk = [0u8; 4096];
    // A client that registers a segment and dies at once delivers its last lines together
    // with the end of the stream: parse what arrived before reporting the disconnection.
    let mut alive = true;
    loop {
        match conn.stream.read(&mut chunk) {
            Ok(0) => {
                alive = false;
                break;
            }
            Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                alive = false;
                break;
            }
        }
    }
    while let Some(pos) = conn.buf.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = conn.buf.drain(..=pos).collect();
        let text = |l: &[u8]| {
            std::str::from_utf8(&l[..l.len() - 1])
                .ok()
                .map(str::to_string)
        };
        if let Some(name) = line.strip_prefix(b"R ").and_then(text) {
            names.insert(name);
        } else if let Some(dir) = line.strip_prefix(b"D ").and_then(text) {
            // Bounded: a client asks for a few directories, not for memory.
            if conn.dirs.len() < 1024 {
                conn.dirs.push(PathBuf::from(dir));
            }
        }
    }
    // A client that sends garbage without newlines cannot make us hold unbounded memory.
    if conn.buf.len() > 64 * 1024 {
        conn.buf.clear();
    }
    alive
}

/// Removes the project's segments in `/dev/shm` whose holders are all gone and that no handle
/// in flight refers to. A tracker killed together with its program (`pkill` matches it too: it
/// is the same executable) leaves the segments it watched behind; the next tracker, on any
/// program of this user, removes them when it starts. Where there is no `/dev/shm` this does
/// nothing.
fn sweep_orphans() {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    let mut names: HashSet<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(crate::NAME_PREFIX))
        .collect();
    sweep(&mut names, false);
}

fn sweep(names: &mut HashSet<String>, final_sweep: bool) {
    names.retain(|name| match Segment::open(name) {
        Err(e) if e.is_not_found() => false,
        Err(_) => true,
        Ok(seg) => {
            let h = header(&seg);
            if h.valid(seg.len()) && h.abandoned(final_sweep) {
                let _ = Segment::unlink_name(name);
                false
            } else {
                true
            }
        }
    });
}
