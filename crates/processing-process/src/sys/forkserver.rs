//! Linux: the fork server.
//!
//! A process that uses the forkserver start method re-executes its own program once, from the
//! launcher thread, with [`SERVER_MARKER`](crate::wire::SERVER_MARKER)`=<fd>:<pid>`. That
//! program's pre-main hook becomes the server: a single-threaded loop that polls a
//! `SOCK_SEQPACKET` control socket and the pidfds of its live children.
//!
//! A start sends one request byte with two descriptors attached: the child's end of a fresh
//! bootstrap socketpair and the server's end of a fresh *status* socketpair
//! (`SOCK_SEQPACKET`). The server `fork`s an ordinary child (plain `fork()` in a
//! single-threaded process: libc does its own bookkeeping, nothing here touches its private
//! state) and opens a pidfd for it. The child closes every descriptor but 0–2, its bootstrap
//! end and its copy of the status socket, and runs the ordinary child bootstrap, reading its
//! launch frame (target, arguments, redirections, environment) straight from the requester and
//! answering `Ready{pid}` to it. The requester opens its own pidfd for the child from that pid
//! (trusted because nothing was relayed yet, see below).
//!
//! Ending, two paths. The bootstrap ends every child through `exit_now`, which first sends
//! `A` and the exit code on the status socket (the child's last act before `_exit`): the
//! requester, woken by its pidfd, then has the code without the server on the way — start and
//! join hand off requester → server → child → requester → (exit) requester, not a fifth time
//! through the server, which matters when busy processes hold the CPUs and every wake-up may
//! wait for a scheduler tick. And for every child, however it ended, the server reaps it and
//! relays its status (`S`: the code, or minus the signal) on the status socket *before* the
//! reap, then closes it — as Python's forkserver relays the status. A relayed status wins
//! over an announced one; a child that announced nothing (a signal, `exit` called by the
//! target) gets the relayed one. The requester's [`ProcHandle`] is a "relayed" one: it waits
//! on the pidfd (also the sentinel), signals through it (`pidfd_send_signal`, immune to pid
//! reuse) and never calls `waitpid`; without a pidfd it waits on the status socket alone.
//!
//! A start that fails in the server (no descriptor left, `fork` refused) gets an `E` answer
//! with the OS error on the status socket, and no child runs the target: the requester sees
//! end of stream on its bootstrap channel instead of `Ready`, and reports the server's error.
//!
//! The server's standard descriptors are `/dev/null`; it exits when the control socket reaches
//! end of stream (its user exited, whatever the cause) and has the parent-death signal as a
//! second line. Daemonic children arm their own parent-death signal against the server, which
//! dies with its user.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use processing_core::os::{recv_with_fds, send_with_fds};

use super::unix::{
    close_fds_except, on_launcher, pidfd_open, pin_to_this_cpu, restore_affinity, set_cloexec,
    socketpair, Channel, ProcHandle,
};
use crate::error::{SpawnError, SpawnErrorKind};
use crate::wire::SERVER_MARKER;

#[derive(Debug)]
struct Server {
    owner: u32,
    pid: u32,
    control: OwnedFd,
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

/// Forgets a server handle inherited through `fork` (its descriptor may be closed or reused),
/// and a fork-server child's own state (a child forked from it is not the server's child).
pub(super) fn forget_inherited() {
    CHILD_STATUS.store(-1, Ordering::Relaxed);
    SERVER_PARENT.store(0, Ordering::Relaxed);
    if let Ok(mut slot) = SERVER.try_lock() {
        if let Some(old) = slot.take() {
            std::mem::forget(old);
        }
    }
}

/// A request sent to the fork server: the requester's end of the child's status socket.
#[derive(Debug)]
pub(crate) struct ForkRequest {
    status: OwnedFd,
}

/// Asks this process's fork server (started on first use) for a child on `child_end`. The
/// child runs once the launch frame is written into the requester's end of the bootstrap
/// channel and answers `Ready`; dropping that end instead makes it exit unstarted.
pub(crate) fn forkserver_request(child_end: Channel) -> Result<ForkRequest, SpawnError> {
    let (status, server_end) = socketpair(libc::SOCK_SEQPACKET)
        .map_err(|e| SpawnError::io("cannot create the fork server's status socket", e))?;
    let mut slot = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let me = std::process::id();
    let mut attempt = 0;
    loop {
        if slot.as_ref().is_none_or_owner(me) {
            if let Some(old) = slot.take() {
                std::mem::forget(old);
            }
            *slot = Some(start_server()?);
        }
        let Some(server) = slot.as_ref() else {
            continue;
        };
        match send_with_fds(
            server.control.as_fd(),
            b"F",
            &[child_end.as_fd(), server_end.as_fd()],
        ) {
            Ok(_) => return Ok(ForkRequest { status }),
            Err(e) if attempt == 0 && server_gone(&e) => {
                // The server is gone: reap it and start another, once.
                crate::registry::reap_later(server.pid);
                *slot = None;
                attempt += 1;
            }
            Err(e) => return Err(SpawnError::io("cannot reach the fork server", e)),
        }
    }
}

impl ForkRequest {
    /// The child's handle once it answered `Ready{pid}` (`ready`); otherwise why it did not
    /// start, preferring the server's own error (`fork` or a descriptor refused, with the OS
    /// error) to the requester's view (end of stream on the bootstrap channel).
    pub(crate) fn finish(self, ready: Result<u32, SpawnError>) -> Result<ProcHandle, SpawnError> {
        match ready {
            Ok(pid) => Ok(ProcHandle::relayed(pid, self.status)),
            Err(e) => {
                let mut msg = [0u8; 8];
                match recv_with_fds(self.status.as_fd(), &mut msg, libc::MSG_DONTWAIT) {
                    Ok((5, _)) if msg[0] == b'E' => Err(SpawnError::io(
                        "the fork server cannot start a child",
                        io::Error::from_raw_os_error(i32::from_le_bytes([
                            msg[1], msg[2], msg[3], msg[4],
                        ])),
                    )),
                    _ => Err(e),
                }
            }
        }
    }
}

fn server_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN | libc::EBADF)
    )
}

trait OwnerCheck {
    fn is_none_or_owner(&self, me: u32) -> bool;
}

impl OwnerCheck for Option<&Server> {
    /// True when a (new) server is needed: none yet, or one inherited from another process.
    fn is_none_or_owner(&self, me: u32) -> bool {
        match self {
            None => true,
            Some(s) => s.owner != me,
        }
    }
}

fn start_server() -> Result<Server, SpawnError> {
    let me = std::process::id();
    let server = on_launcher(move || -> Result<Server, SpawnError> {
        let (ours, theirs) = socketpair(libc::SOCK_SEQPACKET)
            .map_err(|e| SpawnError::io("cannot create the fork server socket", e))?;
        let exe = std::env::current_exe()
            .map_err(|e| SpawnError::io("cannot locate the executable", e))?;
        let program = if std::path::Path::new("/proc/self/exe").exists() {
            "/proc/self/exe".into()
        } else {
            exe.clone()
        };
        let fd = theirs.as_raw_fd();
        let mut cmd = std::process::Command::new(program);
        std::os::unix::process::CommandExt::arg0(&mut cmd, exe);
        cmd.env(SERVER_MARKER, format!("{fd}:{me}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: the closure runs in the forked child before exec and only calls fcntl
        // (async-signal-safe) on a descriptor the child inherited.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || set_cloexec(fd, false));
        }
        let child = cmd
            .spawn()
            .map_err(|e| SpawnError::io("cannot start the fork server", e))?;
        drop(theirs);
        Ok(Server {
            owner: me,
            pid: child.id(),
            control: ours,
        })
    })?;
    // The server says one byte when it is ready; end of stream means it never ran.
    let mut byte = [0u8; 1];
    match recv_with_fds(server.control.as_fd(), &mut byte, 0) {
        Ok((1, _)) => {
            tracing::debug!(target: "processing", pid = server.pid, "fork server started");
            Ok(server)
        }
        _ => {
            let code = super::unix::reap_within(
                &super::unix::ProcHandle::open(server.pid),
                std::time::Duration::from_secs(5),
            );
            Err(SpawnError::new(
                SpawnErrorKind::NoBootstrap,
                format!(
                    "the fork server did not run the processing bootstrap (exit code {}); the pre-main hook is disabled ({}) and processing::init() was not called",
                    code.map_or("unknown".to_string(), |c| c.to_string()),
                    crate::wire::NO_AUTO_BOOTSTRAP
                ),
            ))
        }
    }
}

/// The server's pre-main entry: `marker` is `<control fd>:<user pid>`. Never returns.
pub(crate) fn serve_forkserver(marker: &str) -> ! {
    use super::unix::exit_now;
    let mut parts = marker.split(':');
    let fd: Option<RawFd> = parts.next().and_then(|s| s.parse().ok());
    let user: Option<u32> = parts.next().and_then(|s| s.parse().ok());
    let (Some(fd), Some(user)) = (fd, user) else {
        exit_now(crate::wire::EXIT_BOOTSTRAP_FAILED)
    };
    // SAFETY: fcntl(F_GETFD) only queries the descriptor.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        exit_now(crate::wire::EXIT_BOOTSTRAP_FAILED);
    }
    let _ = set_cloexec(fd, true);
    // SAFETY: the descriptor is open and was passed to this process as its control socket.
    let control = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: prctl/getppid/signal record a signal number or disposition and query the parent;
    // no memory is touched.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() as u32 != user {
            exit_now(0);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // An ignored SIGCHLD (inherited through exec) would reap children before their status
        // is relayed.
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
    // Computed once here, inherited by every child instead of recomputed in each.
    let _ = crate::target::BuildId::current();
    if send_with_fds(control.as_fd(), b"R", &[]).is_err() {
        exit_now(0);
    }
    let mut children: Vec<Child> = Vec::new();
    let mut reserve: Vec<OwnedFd> = Vec::with_capacity(2);
    let _ = fill_reserve(&mut reserve);
    // The server holds 0–2, the control socket, the reserve and two per child (a few more
    // at most, from std): far below the limit the reserve need not be touched.
    let limit = descriptor_limit();
    let mut buf = [0u8; 16];
    loop {
        let mut polled: Vec<libc::pollfd> = std::iter::once(control.as_raw_fd())
            .chain(
                children
                    .iter()
                    .map(|c| c.pidfd.as_ref().map_or(-1, |f| f.as_raw_fd())),
            )
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // A child without a pidfd (none could be opened) is checked every 10 ms instead.
        let timeout = if children.iter().any(|c| c.pidfd.is_none()) {
            10
        } else {
            -1
        };
        // SAFETY: `polled` is a valid array of `polled.len()` pollfd structs for the call;
        // negative descriptors are ignored.
        let r = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, timeout) };
        if r < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            exit_now(0);
        }
        // Ended children first: their pidfds are readable.
        let mut i = 0;
        children.retain(|child| {
            let check = polled[1 + i].revents != 0 || child.pidfd.is_none();
            i += 1;
            !(check && child.relay_if_ended())
        });
        if polled[0].revents == 0 {
            continue;
        }
        // Room for the request's two descriptors even at the limit: the reserve is released
        // for the receive and taken again after it; if it cannot be, the server is out of
        // descriptors and says so (EMFILE) instead of losing requests to truncation.
        let near_limit = 2 * children.len() + 32 >= limit;
        if near_limit {
            reserve.clear();
        }
        let received = recv_with_fds(control.as_fd(), &mut buf, libc::MSG_DONTWAIT);
        let refilled = if near_limit {
            fill_reserve(&mut reserve)
        } else {
            Ok(())
        };
        match received {
            Ok((0, _)) => exit_now(0),
            Ok((_, fds)) => {
                let mut fds = fds.into_iter();
                if let (Some(child_end), Some(status)) = (fds.next(), fds.next()) {
                    if let Err(errno) = refilled {
                        answer(&status, b'E', errno);
                        drop((child_end, status));
                        let _ = fill_reserve(&mut reserve);
                    } else if let Some(child) = fork_one(child_end, status) {
                        children.push(child);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // Descriptors truncated in transit (none left here): the request's descriptors
            // are closed, so its requester sees end of stream on its status socket.
            Err(e) if e.kind() == io::ErrorKind::Other => {}
            Err(_) => exit_now(0),
        }
    }
}

/// This process's soft `RLIMIT_NOFILE` (a large number if unlimited or unknown).
fn descriptor_limit() -> usize {
    // SAFETY: rlimit is plain old data; zero is a valid value.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return usize::MAX;
    }
    usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
}

/// Holds two spare descriptors (duplicates of the null device on 0), or returns the errno.
fn fill_reserve(reserve: &mut Vec<OwnedFd>) -> Result<(), i32> {
    while reserve.len() < 2 {
        // SAFETY: descriptor 0 is the server's null device for its whole life.
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        match stdin.try_clone_to_owned() {
            Ok(fd) => reserve.push(fd),
            Err(e) => return Err(e.raw_os_error().unwrap_or(libc::EMFILE)),
        }
    }
    Ok(())
}

/// A live child of the server, as the server tracks it.
struct Child {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    /// The server's end of the requester's status socket.
    status: OwnedFd,
}

impl Child {
    /// Relays the child's status if it ended, then reaps it; true once it is gone. The status
    /// is sent *before* the reap (`waitid(WNOWAIT)` first), so a requester that finds no
    /// status on its socket knows the pid still names its child (see `ProcHandle::signal`).
    fn relay_if_ended(&self) -> bool {
        // SAFETY: siginfo_t is plain old data; zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on our own child with a valid siginfo pointer; WNOWAIT leaves it
        // unreaped.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: after a successful waitid the kernel filled in `si_pid` (0: not ended).
        if r == 0 && unsafe { info.si_pid() } == 0 {
            return false;
        }
        let mut raw = 0;
        let code = if r == 0 {
            // SAFETY: `si_status` is valid for a CLD_* child state change.
            let status = unsafe { info.si_status() };
            match info.si_code {
                libc::CLD_EXITED => status,
                _ => -status,
            }
        } else {
            255
        };
        answer(&self.status, b'S', code);
        // SAFETY: reaping our own child, which has ended.
        unsafe { libc::waitpid(self.pid, &mut raw, 0) };
        true
    }
}

/// One status message: a tag byte (`S` status, `E` error) and an `i32`.
fn answer(status: &OwnedFd, tag: u8, value: i32) -> bool {
    let mut msg = [tag, 0, 0, 0, 0];
    msg[1..].copy_from_slice(&value.to_le_bytes());
    send_with_fds(status.as_fd(), &msg, &[]).is_ok()
}

/// The pid of the fork server that forked this process, in a fork-server child.
static SERVER_PARENT: AtomicU32 = AtomicU32::new(0);

/// In a fork-server child: its copy of the server's end of its status socket (-1 elsewhere),
/// and that socket's inode (a descriptor number the target closed and reused is not it).
static CHILD_STATUS: AtomicI32 = AtomicI32::new(-1);
static CHILD_STATUS_INODE: AtomicU64 = AtomicU64::new(0);

/// In a fork-server child: the server's pid (its real parent, whose death the parent-death
/// signal follows). `None` elsewhere.
pub(crate) fn server_parent() -> Option<u32> {
    match SERVER_PARENT.load(Ordering::Relaxed) {
        0 => None,
        pid => Some(pid),
    }
}

/// In a fork-server child about to `_exit(code)`: tells the requester `code` on the status
/// socket (`A`), so that it knows the status when the child's pidfd turns readable, without
/// waiting for the server's relay. Nothing elsewhere.
pub(super) fn announce_exit(code: i32) {
    let fd = CHILD_STATUS.swap(-1, Ordering::Relaxed);
    if fd < 0 || socket_inode(fd) != Some(CHILD_STATUS_INODE.load(Ordering::Relaxed)) {
        return;
    }
    // SAFETY: `fd` is open (fstat just succeeded) and is the status socket this child was
    // given (same inode); the borrow ends with the call.
    let status = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut msg = [b'A', 0, 0, 0, 0];
    msg[1..].copy_from_slice(&code.to_le_bytes());
    let _ = send_with_fds(status, &msg, &[]);
}

/// The inode of socket `fd`, if `fd` is an open socket.
fn socket_inode(fd: RawFd) -> Option<u64> {
    // SAFETY: stat is plain old data; zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one stat through a valid pointer; a closed `fd` is EBADF.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return None;
    }
    Some(st.st_ino)
}

fn fork_one(child_end: OwnedFd, status: OwnedFd) -> Option<Child> {
    let server = std::process::id();
    let mask = pin_to_this_cpu();
    // SAFETY: the server is single-threaded (it never returns to `main`), so the child may do
    // anything the parent could.
    match unsafe { libc::fork() } {
        0 => {
            restore_affinity(mask.as_ref());
            SERVER_PARENT.store(server, Ordering::Relaxed);
            // Only the bootstrap channel, this child's status socket (for `announce_exit`) and
            // 0–2 (/dev/null) stay: not the control socket, not the other children's pidfds
            // and status sockets.
            close_fds_except(&[0, 1, 2, child_end.as_raw_fd(), status.as_raw_fd()]);
            if let Some(inode) = socket_inode(status.as_raw_fd()) {
                CHILD_STATUS_INODE.store(inode, Ordering::Relaxed);
                CHILD_STATUS.store(status.as_raw_fd(), Ordering::Relaxed);
            }
            // The owner is never dropped (the bootstrap does not return; `announce_exit` uses
            // the descriptor by number).
            std::mem::forget(status);
            crate::bootstrap::run_child(Channel::from_fd(child_end), crate::StartMethod::ForkServer)
        }
        -1 => {
            let errno = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EAGAIN);
            restore_affinity(mask.as_ref());
            answer(&status, b'E', errno);
            None
        }
        pid => {
            restore_affinity(mask.as_ref());
            drop(child_end);
            // No pidfd (no descriptor left here): the child is then checked by polling.
            let pidfd = pidfd_open(pid);
            Some(Child { pid, pidfd, status })
        }
    }
}
