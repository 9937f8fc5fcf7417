//! Unix: socketpair bootstrap channels, re-exec with `Command`, `fork`, `waitpid`, pidfds,
//! signals, resource limits and the parent-death signal. Every raw `fork` and `Command::new`
//! of the crate lives here (and in `forkserver.rs`).

use processing_core::ErrorChain;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use processing_core::frame::{self, FrameSource, Sealed};
use processing_core::os::{self, recv_with_fds, send_with_fds, MAX_FDS_PER_MESSAGE};

use super::{apply_env_and_cwd, configure_exec, Event, ExecRequest};
use crate::error::SpawnError;
use crate::wire::{self, Frame, Setup, StdioMsg};
use crate::{Resource, StartMethod};

/// The signal `terminate` sends.
pub(crate) const TERMINATE: i32 = libc::SIGTERM;
/// The signal `kill` sends.
pub(crate) const KILL: i32 = libc::SIGKILL;

/// The platform's default start method.
pub(crate) fn default_start_method() -> StartMethod {
    if cfg!(target_os = "linux") {
        StartMethod::ForkServer
    } else {
        StartMethod::Spawn
    }
}

/// The start methods this platform offers.
pub(crate) fn available_methods() -> &'static [StartMethod] {
    if cfg!(target_os = "linux") {
        &[
            StartMethod::ForkServer,
            StartMethod::Spawn,
            StartMethod::Fork,
        ]
    } else {
        &[StartMethod::Spawn, StartMethod::Fork]
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A connected socketpair of `kind`, both ends close-on-exec.
pub(crate) fn socketpair(kind: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let kind = kind | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` is a valid array of two descriptors for the kernel to fill.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) })?;
    // SAFETY: socketpair succeeded, so both descriptors are fresh and owned by nobody else.
    let pair = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    os::set_cloexec(pair.0.as_fd(), true)?;
    os::set_cloexec(pair.1.as_fd(), true)?;
    Ok(pair)
}

/// `processing_core::os::set_cloexec` on a descriptor number (the fork server's and a
/// pre-exec child's form): `fd` must be open for the call, which only changes its flags.
pub(crate) fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: the caller passes a descriptor that is open for the whole call (its own, or one
    // a pre-exec child inherited); the borrow ends with the call.
    os::set_cloexec(unsafe { BorrowedFd::borrow_raw(fd) }, on)
}

/// The bootstrap channel: a Unix stream socket carrying frames with descriptors.
#[derive(Debug)]
pub(crate) struct Channel {
    fd: OwnedFd,
}

/// Two connected channel ends: the parent's and the child's.
pub(crate) fn channel_pair() -> io::Result<(Channel, Channel)> {
    let (a, b) = socketpair(libc::SOCK_STREAM)?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub(crate) fn from_fd(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn as_os_handle(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The descriptor number, for a forked child to close its copy of the parent's end.
    pub(crate) fn raw_for_child(&self) -> i64 {
        i64::from(self.fd.as_raw_fd())
    }

    /// Sends one frame; `handles` are attached to its first byte.
    pub(crate) fn send_frame(
        &self,
        split: u32,
        body: &[u8],
        handles: &[OwnedFd],
    ) -> io::Result<()> {
        if handles.len() > MAX_FDS_PER_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many descriptors in one message",
            ));
        }
        let mut buf = wire::frame_bytes(split, body)?;
        let borrowed: Vec<BorrowedFd<'_>> = handles.iter().map(|h| h.as_fd()).collect();
        match frame::seal(&mut buf) {
            Some(Sealed::Whole(bytes)) => self.send_all(bytes, &borrowed),
            Some(Sealed::Split(header, body)) => {
                self.send_all(header.as_bytes(), &borrowed)?;
                self.send_all(body, &[])
            }
            None => Err(io::ErrorKind::InvalidInput.into()),
        }
    }

    /// Sends all of `bytes`, `fds` with the first byte.
    fn send_all(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        let mut sent = send_with_fds(self.fd.as_fd(), bytes, fds)?;
        while sent < bytes.len() {
            let n = send_with_fds(self.fd.as_fd(), &bytes[sent..], &[])?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            sent += n;
        }
        Ok(())
    }

    /// Receives one frame; `None` at a clean end of stream.
    pub(crate) fn recv_frame(&self) -> io::Result<Option<Frame>> {
        let mut src = FdSource {
            fd: self.fd.as_fd(),
            handles: Vec::new(),
        };
        let Some(payload) = wire::read_payload(&mut src)? else {
            return Ok(None);
        };
        Frame::new(payload, src.handles).map(Some)
    }

    /// Whether a frame (or end of stream) can be read without blocking.
    pub(crate) fn readable_now(&self) -> bool {
        poll_two(Some(self.raw()), None, Some(Duration::ZERO))
            .map(|r| r.0)
            .unwrap_or(true)
    }
}

/// The channel's bytes for the framer, with the descriptors that arrive beside them.
struct FdSource<'a> {
    fd: BorrowedFd<'a>,
    handles: Vec<OwnedFd>,
}

impl FrameSource for FdSource<'_> {
    type Error = io::Error;

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (n, fds) = recv_with_fds(self.fd, buf, 0)?;
        self.handles.extend(fds);
        Ok(n)
    }
}

/// Polls up to two descriptors for readability; returns which were ready.
fn poll_two(
    a: Option<RawFd>,
    b: Option<RawFd>,
    timeout: Option<Duration>,
) -> io::Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: a.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: b.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = match timeout {
        None => -1,
        Some(d) => (d.as_millis().min(i32::MAX as u128) as i32)
            .saturating_add(i32::from(d.subsec_nanos() % 1_000_000 != 0)),
    };
    // Negative descriptors are ignored.
    match os::poll(&mut fds, ms) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok((false, false)),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    Ok((fds[0].revents != 0, fds[1].revents != 0))
}

/// A started child as the parent sees it: our own child (waited with `waitpid`), or a
/// fork-server child (`relay`: the server reaps it; the child announces its exit code and the
/// server relays the status on a socket).
#[derive(Debug)]
pub(crate) struct ProcHandle {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    relay: Option<Relay>,
}

/// The requester's side of a fork-server child: its status socket and, where one could be
/// opened, a pidfd (readable once the child ended, straight from the kernel).
///
/// Two messages can arrive on the status socket: `A` (announced by the child itself, as the
/// very last thing before `_exit`, from every exit of the bootstrap) and `S` (relayed by the
/// server after the child ended, before it reaps it). A child that ends through the bootstrap
/// is therefore known to have ended, with its code, as soon as its pidfd is readable: no wake-up
/// of the server lies on the way. A child that ends otherwise (a signal, `exit` called by the
/// target) announces nothing, and its status is the server's.
#[derive(Debug)]
struct Relay {
    status: OwnedFd,
    /// Trusted only when opened before the server relayed anything (see [`ProcHandle::relayed`]).
    pidfd: Option<OwnedFd>,
    state: Mutex<RelayState>,
    /// The pidfd turned readable and the child had announced nothing: the end is the
    /// server's relay, so the status socket is the sentinel from then on.
    silent_end: std::sync::atomic::AtomicBool,
}

/// What arrived on a status socket so far.
#[derive(Debug, Default)]
struct RelayState {
    /// The code the child announced before its `_exit`.
    announced: Option<i32>,
    /// The status the server relayed (the truth, when both are there).
    relayed: Option<i32>,
    /// End of stream: the server is gone (after relaying, or killed before).
    closed: bool,
}

impl RelayState {
    /// Takes every message queued on `status` without blocking.
    fn drain(&mut self, status: BorrowedFd<'_>) {
        let mut msg = [0u8; 8];
        loop {
            match recv_with_fds(status, &mut msg, libc::MSG_DONTWAIT) {
                Ok((5, _)) => {
                    let code = i32::from_le_bytes([msg[1], msg[2], msg[3], msg[4]]);
                    match msg[0] {
                        b'A' => self.announced = Some(code),
                        b'S' => self.relayed = Some(code),
                        _ => {}
                    }
                }
                Ok((0, _)) => {
                    self.closed = true;
                    return;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }
}

/// Whether `fd` is readable now (a pidfd: the process ended).
fn readable(fd: &OwnedFd) -> bool {
    poll_two(Some(fd.as_raw_fd()), None, Some(Duration::ZERO)).is_ok_and(|r| r.0)
}

impl ProcHandle {
    /// Takes over `pid`, which must be an unreaped child of this process.
    pub(crate) fn open(pid: u32) -> ProcHandle {
        let pid = pid as libc::pid_t;
        ProcHandle {
            pid,
            pidfd: pidfd_open(pid),
            relay: None,
        }
    }

    /// A fork-server child that answered `Ready{pid}`: `status` is its status socket.
    ///
    /// Its pidfd is opened here, from the pid. The server relays a status before it reaps a
    /// child, so if nothing was relayed (and the server is still there) once the pidfd is
    /// open, the pid still named the child when it was opened; otherwise the pidfd is
    /// dropped and the relay alone tells the end.
    #[cfg(target_os = "linux")]
    pub(crate) fn relayed(pid: u32, status: OwnedFd) -> ProcHandle {
        let pid = pid as libc::pid_t;
        let mut state = RelayState::default();
        let pidfd = pidfd_open(pid);
        state.drain(status.as_fd());
        let pidfd = pidfd.filter(|_| state.relayed.is_none() && !state.closed);
        ProcHandle {
            pid,
            pidfd: None,
            relay: Some(Relay {
                status,
                pidfd,
                state: Mutex::new(state),
                silent_end: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// The exit code if the child has ended (reaping it): the code, or minus the signal.
    pub(crate) fn try_wait(&self) -> io::Result<Option<i32>> {
        if let Some(relay) = &self.relay {
            return self.try_relayed(relay);
        }
        Ok(os::waitpid(self.pid, true)?.map(decode_status))
    }

    fn try_relayed(&self, relay: &Relay) -> io::Result<Option<i32>> {
        // The pidfd first: a child that announced its code did so before it ended, so once
        // the pidfd is readable the announcement is queued.
        let ended = relay.pidfd.as_ref().is_some_and(readable);
        let mut state = relay.state.lock().unwrap_or_else(|e| e.into_inner());
        state.drain(relay.status.as_fd());
        if let Some(code) = state.relayed {
            return Ok(Some(code));
        }
        if ended {
            if let Some(code) = state.announced {
                return Ok(Some(code));
            }
            // Ended without announcing (a signal, or `exit` called by the target): the server
            // was woken by the same exit and relays the status at once; from now on the status
            // socket is what to wait on.
            relay
                .silent_end
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if state.closed && (ended || relay.pidfd.is_none()) {
            return Err(lost_relay());
        }
        Ok(None)
    }

    /// Sends `signal`. Our own child: the caller guarantees it is not reaped yet. A fork-server
    /// child: through its pidfd (immune to pid reuse; a zombie ignores the signal); without
    /// one, through a pidfd opened now and trusted only if the server has not relayed the
    /// child's status yet (it relays before it reaps, so the pid still named the child when
    /// the pidfd was opened); a child that already ended is not signalled.
    pub(crate) fn signal(&self, signal: i32) -> io::Result<()> {
        let Some(relay) = &self.relay else {
            // The pid is our unreaped child (a zombie at worst), so it cannot be reused.
            return os::kill(self.pid, signal);
        };
        if let Some(pidfd) = &relay.pidfd {
            return pidfd_signal(pidfd, signal);
        }
        let Some(pidfd) = pidfd_open(self.pid) else {
            let err = io::Error::last_os_error();
            // ESRCH: the child is gone already.
            return if err.raw_os_error() == Some(libc::ESRCH) {
                Ok(())
            } else {
                Err(err)
            };
        };
        let mut state = relay.state.lock().unwrap_or_else(|e| e.into_inner());
        state.drain(relay.status.as_fd());
        if state.relayed.is_some() || state.closed {
            // The child ended, or the server is gone (the pid may be reused by now): nothing
            // to signal.
            return Ok(());
        }
        pidfd_signal(&pidfd, signal)
    }

    /// The waitable sentinel, readable once the child ended: its pidfd (a fork-server
    /// child's too, where one could be opened), else a fork-server child's status socket
    /// (readable once a status is there). A fork-server child that ended without announcing
    /// its code (see [`Relay`]) switches to the status socket once its end was seen, since its
    /// status is then the server's to relay.
    pub(crate) fn sentinel(&self) -> Option<BorrowedFd<'_>> {
        use std::sync::atomic::Ordering::Relaxed;
        match &self.relay {
            Some(relay) => Some(match &relay.pidfd {
                Some(pidfd) if !relay.silent_end.load(Relaxed) => pidfd.as_fd(),
                _ => relay.status.as_fd(),
            }),
            None => self.pidfd.as_ref().map(|f| f.as_fd()),
        }
    }

    /// What to poll for the end of the child.
    fn waitable(&self) -> Option<RawFd> {
        self.sentinel().map(|f| f.as_raw_fd())
    }

    /// Blocks until the child ended and returns its code (after a SIGKILL: promptly).
    fn wait_blocking(&self) -> Option<i32> {
        if self.relay.is_none() {
            return os::waitpid(self.pid, false)
                .ok()
                .flatten()
                .map(decode_status);
        }
        loop {
            match self.try_wait() {
                Ok(Some(code)) => return Some(code),
                Err(_) => return None,
                Ok(None) => {}
            }
            let _ = wait_event(None, self, None);
        }
    }
}

fn lost_relay() -> io::Error {
    io::Error::other("the fork server ended before relaying the child's exit status")
}

/// `pidfd_send_signal`: a signal that cannot reach a reused pid. A child that already ended
/// is not an error.
#[cfg(target_os = "linux")]
fn pidfd_signal(pidfd: &OwnedFd, signal: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal takes a descriptor, a signal number, a null siginfo and flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(err)
}

#[cfg(not(target_os = "linux"))]
fn pidfd_signal(_pidfd: &OwnedFd, _signal: i32) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

fn decode_status(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        -libc::WTERMSIG(status)
    } else {
        status
    }
}

#[cfg(target_os = "linux")]
pub(crate) fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor (close-on-exec) or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel returned a fresh descriptor owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(not(target_os = "linux"))]
fn pidfd_open(_pid: libc::pid_t) -> Option<OwnedFd> {
    None
}

/// Waits until `chan` is readable, the process may have exited, or `timeout` passes.
pub(crate) fn wait_event(
    chan: Option<&Channel>,
    proc: &ProcHandle,
    timeout: Option<Duration>,
) -> io::Result<Event> {
    match proc.waitable() {
        Some(fd) => {
            let (c, _) = poll_two(chan.map(Channel::raw), Some(fd), timeout)?;
            Ok(Event { channel: c })
        }
        None => {
            // Without pidfds the exit is noticed by polling in short slices.
            let slice = Duration::from_millis(2);
            let t = timeout.map_or(slice, |t| t.min(slice));
            let (c, _) = poll_two(chan.map(Channel::raw), None, Some(t))?;
            Ok(Event { channel: c })
        }
    }
}

/// Kills and reaps a child that did not run the bootstrap, waiting at most `grace` first.
pub(crate) fn reap_within(proc: &ProcHandle, grace: Duration) -> Option<i32> {
    let deadline = Instant::now().checked_add(grace);
    loop {
        match proc.try_wait() {
            Ok(Some(code)) => return Some(code),
            Err(_) => return None,
            Ok(None) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = proc.signal(KILL);
            return proc.wait_blocking();
        }
        let _ = wait_event(None, proc, Some(Duration::from_millis(5)));
    }
}

/// The executable to re-run: `/proc/self/exe` on Linux (the very image, even if the file was
/// replaced), else `current_exe()`.
fn self_exe() -> io::Result<(PathBuf, Option<PathBuf>)> {
    let exe = std::env::current_exe()?;
    if cfg!(target_os = "linux") && Path::new("/proc/self/exe").exists() {
        return Ok((PathBuf::from("/proc/self/exe"), Some(exe)));
    }
    Ok((exe, None))
}

/// A fingerprint of the running executable file (device, inode, size, modification time).
pub(crate) fn image_fingerprint() -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let meta = if cfg!(target_os = "linux") {
        std::fs::metadata("/proc/self/exe")
    } else {
        std::env::current_exe().and_then(std::fs::metadata)
    };
    match meta {
        Ok(m) => crate::target::fingerprint(&[
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime() as u64,
            m.mtime_nsec() as u64,
        ]),
        Err(_) => 0,
    }
}

/// Re-executes the program (or `program`) with the child marker; returns the child.
///
/// A child that must die with this process is started from the launcher thread, because the
/// parent-death signal follows the thread that forked.
pub(crate) fn spawn_exec(req: ExecRequest) -> Result<ProcHandle, SpawnError> {
    let via_launcher = req.die_with_parent;
    let run = move || -> Result<u32, SpawnError> {
        let ExecRequest {
            program,
            env,
            cwd,
            stdio,
            child_end,
            ..
        } = req;
        let mut cmd = match program {
            Some(p) => std::process::Command::new(p),
            None => {
                let (exe, arg0) =
                    self_exe().map_err(|e| SpawnError::io("cannot locate the executable", e))?;
                let mut cmd = std::process::Command::new(exe);
                if let Some(a) = arg0 {
                    cmd.arg0(a);
                }
                cmd
            }
        };
        let fd = child_end.raw();
        configure_exec(&mut cmd, fd.to_string(), env, cwd, stdio);
        // SAFETY: the closure runs in the forked child before exec and only calls fcntl, which
        // is async-signal-safe, on a descriptor that the child inherited.
        unsafe {
            cmd.pre_exec(move || set_cloexec(fd, false));
        }
        let child = cmd
            .spawn()
            .map_err(|e| SpawnError::io("cannot execute the program", e))?;
        drop(child_end);
        Ok(child.id())
    };
    let pid = if via_launcher {
        on_launcher(run)?
    } else {
        run()?
    };
    Ok(ProcHandle::open(pid))
}

type Job = Box<dyn FnOnce() + Send>;

static LAUNCHER: Mutex<Option<(u32, mpsc::Sender<Job>)>> = Mutex::new(None);

/// Runs `f` on the launcher: a thread that lives as long as the process, so that the parent
/// of children it creates never "dies" before the process does (PR_SET_PDEATHSIG fires when
/// the parent *thread* exits).
pub(crate) fn on_launcher<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    let sender = {
        let mut slot = LAUNCHER.lock().unwrap_or_else(|e| e.into_inner());
        let me = std::process::id();
        match slot.as_ref() {
            Some((owner, s)) if *owner == me => s.clone(),
            _ => {
                let (s, r) = mpsc::channel::<Job>();
                let spawned = std::thread::Builder::new()
                    .name("processing-launcher".into())
                    .stack_size(256 * 1024)
                    .spawn(move || {
                        for job in r {
                            job();
                        }
                    });
                if spawned.is_err() {
                    // No thread available: run here (the parent-death signal then follows
                    // the calling thread).
                    drop(slot);
                    job();
                    return rx.recv().unwrap_or_else(|_| unreachable_result());
                }
                if let Some(old) = slot.replace((me, s.clone())) {
                    // Inherited through fork: the thread behind it does not exist here.
                    std::mem::forget(old);
                }
                s
            }
        }
    };
    if let Err(mpsc::SendError(job)) = sender.send(job) {
        job();
    }
    rx.recv().unwrap_or_else(|_| unreachable_result())
}

fn unreachable_result<T>() -> T {
    // The job always sends before it is dropped; a missing result means it panicked, which
    // the launcher thread reports on its own.
    exit_now(crate::wire::EXIT_BOOTSTRAP_FAILED)
}

/// Forgets process-local state inherited through `fork` (without closing anything: the
/// descriptors may already be closed or reused in the child).
pub(crate) fn forget_inherited_state() {
    if let Ok(mut slot) = LAUNCHER.try_lock() {
        if let Some(old) = slot.take() {
            std::mem::forget(old);
        }
    }
    #[cfg(target_os = "linux")]
    super::forkserver::forget_inherited();
}

/// `fork()`: `Ok(None)` in the child, `Ok(Some(pid))` in the parent.
///
/// # Safety
/// In the child only async-signal-safe work is guaranteed to be safe if other threads exist;
/// the caller holds this crate's locks across the call and keeps the child's work small.
pub(crate) unsafe fn fork_raw() -> io::Result<Option<u32>> {
    let mask = pin_to_this_cpu();
    // SAFETY: per this function's contract.
    let pid = unsafe { libc::fork() };
    // (In the child, a plain system call: async-signal-safe.)
    restore_affinity(mask.as_ref());
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid as u32)),
    }
}

/// Pins the calling thread to the CPU it runs on, so that the child it forks next starts there
/// (and takes that CPU as soon as the parent waits or sleeps) rather than queueing behind
/// another process on another CPU for a scheduler tick; returns the thread's mask, which parent
/// and child restore right after the fork.
pub(crate) fn pin_to_this_cpu() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain old data; zero is a valid (empty) set.
    let mut mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: sched_getaffinity writes at most `size` bytes into `mask`.
    if unsafe { libc::sched_getaffinity(0, size, &mut mask) } != 0 {
        return None;
    }
    // Already on one CPU (pinned by the user, or a one-CPU machine): nothing to pin, nothing
    // to restore (two system calls fewer per fork).
    // SAFETY: CPU_COUNT reads the set just filled.
    if unsafe { libc::CPU_COUNT(&mask) } <= 1 {
        return None;
    }
    // SAFETY: sched_getcpu takes no arguments.
    let cpu = unsafe { libc::sched_getcpu() };
    if cpu < 0 || cpu as usize >= libc::CPU_SETSIZE as usize {
        return None;
    }
    // SAFETY: as above.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu as usize, &mut one) };
    // SAFETY: reads `size` bytes of `one`.
    if unsafe { libc::sched_setaffinity(0, size, &one) } != 0 {
        return None;
    }
    Some(mask)
}

/// Restores the mask [`pin_to_this_cpu`] saved.
pub(crate) fn restore_affinity(mask: Option<&libc::cpu_set_t>) {
    if let Some(mask) = mask {
        // SAFETY: reads one cpu_set_t through a valid reference.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), mask) };
    }
}

/// Closes descriptor `raw` by number (a forked child's copy of the parent's channel end).
pub(crate) fn close_raw(raw: i64) {
    // SAFETY: closes this process's copy of a descriptor nothing else in the child uses.
    unsafe { libc::close(raw as RawFd) };
}

/// The null device.
pub(crate) const NULL_DEVICE: &str = "/dev/null";

/// Whether the fork start method exists here.
pub(crate) fn fork_supported() -> Result<(), SpawnError> {
    Ok(())
}

/// Child side: ignore SIGPIPE as the Rust runtime does for `main` (the bootstrap runs before it).
pub(crate) fn child_defaults() {
    let _ = os::ignore_signal(libc::SIGPIPE);
}

/// Child side: applies redirections, environment, directory, limits and the parent-death signal.
pub(crate) fn apply_setup(setup: Setup, parent_pid: u32) -> Result<(), ErrorChain> {
    let Setup {
        env,
        cwd,
        stdio,
        limits,
        die_with_parent,
    } = setup;
    for (target, msg) in stdio.into_iter().enumerate() {
        if let StdioMsg::Handle(h) = msg {
            let fd = h.into_inner();
            // SAFETY: dup2 onto a standard descriptor number; `fd` is owned and valid.
            cvt(unsafe { libc::dup2(fd.as_raw_fd(), target as RawFd) }).map_err(|e| {
                ErrorChain::with_source(format!("cannot redirect descriptor {target}"), &e)
            })?;
        }
    }
    apply_env_and_cwd(env, cwd)?;
    for (resource, soft, hard) in limits {
        set_limit(resource, soft, hard)
            .map_err(|e| ErrorChain::with_source(format!("cannot set limit {resource:?}"), &e))?;
    }
    if die_with_parent {
        die_with(parent_pid)?;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn die_with(parent_pid: u32) -> Result<(), ErrorChain> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only records a signal number for this process.
    cvt(unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        )
    })
    .map_err(|e| ErrorChain::with_source("cannot set the parent-death signal", &e))?;
    // The parent may have died before the signal was armed. A fork-server child's parent is the server (which dies with the requester).
    let parent = super::forkserver::server_parent().unwrap_or(parent_pid);
    if std::os::unix::process::parent_id() != parent {
        return Err("the parent exited before the child started".into());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn die_with(parent_pid: u32) -> Result<(), ErrorChain> {
    // No parent-death signal: a watcher thread polls the parent.
    std::thread::Builder::new()
        .name("processing-parent-watch".into())
        .spawn(move || loop {
            if std::os::unix::process::parent_id() != parent_pid {
                let _ = os::kill(std::process::id() as i32, libc::SIGTERM);
            }
            std::thread::sleep(Duration::from_millis(200));
        })
        .map(drop)
        .map_err(|e| ErrorChain::with_source("cannot start the parent watcher", &e))
}

fn set_limit(resource: Resource, soft: u64, hard: u64) -> io::Result<()> {
    let which = match resource {
        Resource::AddressSpace => libc::RLIMIT_AS,
        Resource::CpuTime => libc::RLIMIT_CPU,
        Resource::OpenFiles => libc::RLIMIT_NOFILE,
        Resource::FileSize => libc::RLIMIT_FSIZE,
        Resource::CoreSize => libc::RLIMIT_CORE,
        Resource::DataSize => libc::RLIMIT_DATA,
        Resource::StackSize => libc::RLIMIT_STACK,
    };
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads a valid rlimit structure.
    cvt(unsafe { libc::setrlimit(which, &lim) }).map(drop)
}

/// Whether resource limits can be applied here.
pub(crate) fn limits_supported() -> bool {
    true
}

/// Child side (fork method): closes every descriptor except `keep`.
pub(crate) fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&f| f >= 0).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut low: RawFd = 0;
    for &k in keep.iter().chain(std::iter::once(&RawFd::MAX)) {
        if k > low {
            close_range(low, k - 1);
        }
        low = k.saturating_add(1);
    }
}

fn close_range(low: RawFd, high: RawFd) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: close_range closes descriptors of this process only; the caller owns them all.
        let r = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                low as libc::c_uint,
                high as libc::c_uint,
                0,
            )
        };
        if r == 0 {
            return;
        }
    }
    let max = match os::sysconf(libc::_SC_OPEN_MAX) {
        Some(max) if max > 0 => max.min(65_536) as RawFd,
        _ => 1024,
    };
    for fd in low..=high.min(max) {
        // SAFETY: closing descriptors the caller gave up (EBADF for unused numbers is fine).
        unsafe { libc::close(fd) };
    }
}

/// Child side: ends the process at once with `code`, without running exit handlers (a
/// fork-server child announces `code` to its requester first).
pub(crate) fn exit_now(code: i32) -> ! {
    #[cfg(target_os = "linux")]
    super::forkserver::announce_exit(code);
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Writes `text` to descriptor 2 directly (past any in-process output capture).
pub(crate) fn write_stderr(text: &str) {
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        // SAFETY: writing a valid buffer to descriptor 2.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// Child side: the channel named by the marker's value.
pub(crate) fn parse_marker(value: &str) -> Option<Channel> {
    let fd: RawFd = value.trim().parse().ok()?;
    // The descriptor must be open; then it is ours (the parent passed it for this purpose).
    if !os::fd_is_open(fd) {
        return None;
    }
    let _ = set_cloexec(fd, true);
    // SAFETY: the descriptor is open and was handed to this process as its bootstrap channel.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Some(Channel { fd })
}

/// Duplicates standard descriptor `n` for a fork-server child (which has none of ours).
/// `ErrorKind::NotFound` if `n` is closed here; other errors (no descriptor left) as they are.
pub(crate) fn dup_stdio(n: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `n` is a standard descriptor number; borrowing it for the duration of the
    // duplication is fine even if it is closed (the dup then fails).
    let borrowed = unsafe { BorrowedFd::borrow_raw(n) };
    borrowed.try_clone_to_owned().map_err(|e| {
        if e.raw_os_error() == Some(libc::EBADF) {
            io::Error::new(io::ErrorKind::NotFound, e)
        } else {
            e
        }
    })
}

/// Reaps `pid` if it ended; true once it is gone.
pub(crate) fn reap_pid(pid: u32) -> bool {
    ProcHandle {
        pid: pid as libc::pid_t,
        pidfd: None,
        relay: None,
    }
    .try_wait()
    .map_or(true, |s| s.is_some())
}

/// The raw numbers of handles, for [`close_fds_except`].
pub(crate) fn raw_numbers(handles: &[OwnedFd]) -> Vec<RawFd> {
    handles.iter().map(|h| h.as_raw_fd()).collect()
}
