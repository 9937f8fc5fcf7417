//! Linux: the fork server.
//!
//! A process that uses the forkserver start method re-executes its own program once, from the
//! launcher thread, with [`SERVER_MARKER`](crate::wire::SERVER_MARKER)`=<fd>:<pid>`. That
//! program's pre-main hook becomes the server: a single-threaded loop over a `SOCK_SEQPACKET`
//! control socket. Each request is one byte with one descriptor attached (the child's end of
//! a fresh bootstrap socketpair). The server `clone`s with `CLONE_PARENT`, so the new process
//! is a real child of the requesting process (its launcher thread): `waitpid`, pidfds and the
//! parent-death signal work as for any child. The new process closes the control socket and
//! runs the ordinary child bootstrap on the descriptor it was given, reading its launch frame
//! (target, arguments, redirections, environment) straight from the requester.
//!
//! The server's standard descriptors are `/dev/null`; it exits when the control socket reaches
//! end of stream (its user exited, whatever the cause) and has the parent-death signal as a
//! second line.
//!
//! A raw `clone` skips glibc's `fork` bookkeeping, so the child redoes the two parts that
//! matter: the thread id cached in glibc's thread descriptor (written by the kernel through
//! `CLONE_CHILD_SETTID`, at an address verified against `gettid()` at server start) and the
//! robust-futex list head (re-registered with the address glibc registered in the server, the
//! very call glibc's `fork` makes in a child).

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use processing_core::os::{recv_with_fds, send_with_fds};

use super::unix::{on_launcher, set_cloexec, socketpair, Channel};
use crate::error::{SpawnError, SpawnErrorKind};
use crate::wire::SERVER_MARKER;

#[derive(Debug)]
struct Server {
    owner: u32,
    pid: u32,
    control: OwnedFd,
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

/// Forgets a server handle inherited through `fork` (its descriptor may be closed or reused).
pub(super) fn forget_inherited() {
    if let Ok(mut slot) = SERVER.try_lock() {
        if let Some(old) = slot.take() {
            std::mem::forget(old);
        }
    }
}

/// Asks this process's fork server (started on first use) for a child on `child_end`.
pub(crate) fn forkserver_request(child_end: Channel) -> Result<(), SpawnError> {
    let mut slot = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let me = std::process::id();
    for attempt in 0..2 {
        if slot.as_ref().is_none_or_owner(me) {
            if let Some(old) = slot.take() {
                std::mem::forget(old);
            }
            *slot = Some(start_server()?);
        }
        let Some(server) = slot.as_ref() else { continue };
        match send_with_fds(server.control.as_fd(), b"F", &[child_end.as_fd()]) {
            Ok(_) => return Ok(()),
            Err(e) => {
                // The server is gone: reap it and start another, once.
                crate::registry::reap_later(server.pid);
                *slot = None;
                if attempt == 1 {
                    return Err(SpawnError::io("cannot reach the fork server", e));
                }
            }
        }
    }
    Err(SpawnError::new(SpawnErrorKind::Io, "cannot reach the fork server"))
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
        let (ours, theirs) =
            socketpair(libc::SOCK_SEQPACKET).map_err(|e| SpawnError::io("cannot create the fork server socket", e))?;
        let exe = std::env::current_exe().map_err(|e| SpawnError::io("cannot locate the executable", e))?;
        let program =
            if std::path::Path::new("/proc/self/exe").exists() { "/proc/self/exe".into() } else { exe.clone() };
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
        let child = cmd.spawn().map_err(|e| SpawnError::io("cannot start the fork server", e))?;
        drop(theirs);
        Ok(Server { owner: me, pid: child.id(), control: ours })
    })?;
    // The server says one byte when it is ready; end of stream means it never ran.
    let mut byte = [0u8; 1];
    match recv_with_fds(server.control.as_fd(), &mut byte, 0) {
        Ok((1, _)) => {
            tracing::debug!(target: "processing", pid = server.pid, "fork server started");
            Ok(server)
        }
        _ => {
            let code = super::unix::reap_within(&super::unix::ProcHandle::open(server.pid), std::time::Duration::from_secs(5));
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

/// How the server clones: the addresses glibc's fork would fix up in the child.
#[derive(Debug, Clone, Copy)]
struct ClonePlan {
    tid_address: Option<usize>,
    robust_head: usize,
    robust_len: usize,
}

impl ClonePlan {
    fn probe() -> ClonePlan {
        let mut head: usize = 0;
        let mut len: usize = 0;
        // SAFETY: get_robust_list(0, ..) reads this thread's registration into two valid
        // out-pointers.
        let r = unsafe {
            libc::syscall(libc::SYS_get_robust_list, 0, &mut head as *mut usize, &mut len as *mut usize)
        };
        if r != 0 || head == 0 {
            return ClonePlan { tid_address: None, robust_head: 0, robust_len: 0 };
        }
        // glibc's thread descriptor keeps `pid_t tid; pid_t pid_unused; void *robust_prev;`
        // right before `robust_head`. Accept the address only if it holds our thread id.
        let candidate = head - 2 * std::mem::size_of::<libc::pid_t>() - std::mem::size_of::<usize>();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t;
        // SAFETY: `candidate` lies within glibc's thread descriptor, a live allocation of
        // hundreds of bytes that contains `head`; reading an aligned i32 there is valid.
        let found = unsafe { std::ptr::read_volatile(candidate as *const libc::pid_t) };
        ClonePlan { tid_address: (found == tid).then_some(candidate), robust_head: head, robust_len: len }
    }

    /// `clone(CLONE_PARENT)`: `Ok(None)` in the child, `Ok(Some(pid))` in the server.
    fn clone_parent(&self) -> io::Result<Option<u32>> {
        #[repr(C)]
        struct CloneArgs {
            flags: u64,
            pidfd: u64,
            child_tid: u64,
            parent_tid: u64,
            exit_signal: u64,
            stack: u64,
            stack_size: u64,
            tls: u64,
        }
        let mut flags = libc::CLONE_PARENT as u64;
        if self.tid_address.is_some() {
            flags |= libc::CLONE_CHILD_SETTID as u64;
        }
        let args = CloneArgs {
            flags,
            pidfd: 0,
            child_tid: self.tid_address.unwrap_or(0) as u64,
            parent_tid: 0,
            // With CLONE_PARENT the kernel takes the exit signal from the server (SIGCHLD).
            exit_signal: 0,
            stack: 0,
            stack_size: 0,
            tls: 0,
        };
        // SAFETY: clone3 without CLONE_VM duplicates the (single-threaded) server like fork;
        // `args` is a valid clone_args of the size passed; the child continues on a copy of
        // this stack.
        let mut r = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
        if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            r = self.clone_legacy(flags)?;
        }
        match r {
            r if r < 0 => Err(io::Error::last_os_error()),
            0 => {
                if self.robust_head != 0 {
                    // SAFETY: re-registers glibc's own robust list head (same address in the
                    // copied address space), exactly what glibc's fork does in a child.
                    unsafe { libc::syscall(libc::SYS_set_robust_list, self.robust_head, self.robust_len) };
                }
                Ok(None)
            }
            pid => Ok(Some(pid as u32)),
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn clone_legacy(&self, flags: u64) -> io::Result<libc::c_long> {
        // SAFETY: the x86-64 clone order is (flags, stack, parent_tid, child_tid, tls); a null
        // stack without CLONE_VM makes it a fork of this single-threaded process.
        Ok(unsafe {
            libc::syscall(
                libc::SYS_clone,
                flags | libc::SIGCHLD as u64,
                0usize,
                0usize,
                self.tid_address.unwrap_or(0),
                0usize,
            )
        })
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn clone_legacy(&self, _flags: u64) -> io::Result<libc::c_long> {
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

/// The server's pre-main entry: `marker` is `<control fd>:<user pid>`. Never returns.
pub(crate) fn serve_forkserver(marker: &str) -> ! {
    use super::unix::exit_now;
    let mut parts = marker.split(':');
    let fd: Option<RawFd> = parts.next().and_then(|s| s.parse().ok());
    let user: Option<u32> = parts.next().and_then(|s| s.parse().ok());
    let (Some(fd), Some(user)) = (fd, user) else { exit_now(crate::wire::EXIT_BOOTSTRAP_FAILED) };
    // SAFETY: fcntl(F_GETFD) only queries the descriptor.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        exit_now(crate::wire::EXIT_BOOTSTRAP_FAILED);
    }
    let _ = set_cloexec(fd, true);
    // SAFETY: the descriptor is open and was passed to this process as its control socket.
    let control = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: prctl/getppid record a signal number and query the parent; no memory is touched.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        if libc::getppid() as u32 != user {
            exit_now(0);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let plan = ClonePlan::probe();
    if send_with_fds(control.as_fd(), b"R", &[]).is_err() {
        exit_now(0);
    }
    let mut buf = [0u8; 16];
    loop {
        match recv_with_fds(control.as_fd(), &mut buf, 0) {
            Ok((0, _)) => exit_now(0),
            Ok((_, fds)) => {
                for child_end in fds {
                    fork_one(&plan, &control, child_end);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => exit_now(0),
        }
    }
}

fn fork_one(plan: &ClonePlan, control: &OwnedFd, child_end: OwnedFd) {
    match plan.clone_parent() {
        Ok(None) => {
            // SAFETY: the child closes its copy of the control socket by number; nothing else
            // in the child refers to it (the OwnedFd copy is never dropped: the child does
            // not return from the bootstrap).
            unsafe { libc::close(control.as_raw_fd()) };
            crate::bootstrap::run_child(Channel::from_fd(child_end), crate::StartMethod::ForkServer)
        }
        Ok(Some(_pid)) => drop(child_end),
        Err(e) => {
            let chan = Channel::from_fd(child_end);
            crate::bootstrap::refuse(&chan, crate::wire::Refusal::Fork, format!("the fork server cannot fork: {e}"));
        }
    }
}
