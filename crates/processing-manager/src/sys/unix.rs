//! Unix: local managers listen on a socket path inside a private (0700) directory; remote ones
//! on TCP.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};

use std::time::Duration;

use crate::address::Address;

/// A connected byte stream to or from a manager server.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }

    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }

    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(d),
            Stream::Tcp(s) => s.set_read_timeout(d),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A bound listening socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix(l) => Ok(Stream::Unix(l.accept()?.0)),
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
        }
    }
}

/// Connects to `address`, giving up after `timeout` for TCP.
pub(crate) fn connect(address: &Address, timeout: Duration) -> io::Result<Stream> {
    match address {
        Address::Local(path) => Ok(Stream::Unix(UnixStream::connect(path)?)),
        Address::Tcp(host_port) => super::connect_tcp(host_port, timeout).map(Stream::Tcp),
    }
}

/// Binds `address`; a TCP port 0 is resolved to the port the system chose. A stale socket file
/// at a local path is replaced (a manager restarted on the same address).
pub(crate) fn bind(address: &Address) -> io::Result<(Listener, Address)> {
    match address {
        Address::Local(path) => {
            if std::fs::symlink_metadata(path).is_ok() && UnixStream::connect(path).is_err() {
                std::fs::remove_file(path)?;
            }
            let l = UnixListener::bind(path)?;
            Ok((Listener::Unix(l), address.clone()))
        }
        Address::Tcp(host_port) => {
            // std sets SO_REUSEADDR on Unix, so a restarted server can rebind at once.
            let l = TcpListener::bind(host_port.as_str())?;
            let local = l.local_addr()?;
            Ok((Listener::Tcp(l), Address::Tcp(local.to_string())))
        }
    }
}

/// Reads what is available without blocking: `Ok(None)` when nothing is, `Ok(Some(0))` at end
/// of stream.
pub(crate) fn try_read(stream: &Stream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    recv_flags(stream, buf, libc::MSG_DONTWAIT)
}

/// Whether the peer has closed its end (a non-blocking peek reads end of stream).
pub(crate) fn peer_closed(stream: &Stream) -> bool {
    let mut byte = [0u8; 1];
    match recv_flags(stream, &mut byte, libc::MSG_DONTWAIT | libc::MSG_PEEK) {
        Ok(Some(0)) => true,
        Ok(_) => false,
        Err(_) => true,
    }
}

fn recv_flags(stream: &Stream, buf: &mut [u8], flags: i32) -> io::Result<Option<usize>> {
    match processing_core::os::recv(stream.as_fd(), buf, flags) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// A fresh address for a local manager: a socket path in a new private directory.
pub(crate) fn new_local_address() -> io::Result<Address> {
    sweep_stale_addresses();
    let tag: String = processing_core::authkey::random_bytes(8)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{tag}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(Address::Local(dir.join(SOCKET_NAME)))
}

/// The private directory of a local address made by [`new_local_address`], if it is one.
fn private_dir(path: &std::path::Path) -> Option<&std::path::Path> {
    path.parent().filter(|dir| {
        dir.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(DIR_PREFIX))
    })
}

const DIR_PREFIX: &str = "processing-mgr-";
/// The socket's file name inside a private directory.
const SOCKET_NAME: &str = "s";

/// Removes the socket file of a local address (and its private directory when it is ours).
pub(crate) fn remove_local_address(address: &Address) {
    if let Address::Local(path) = address {
        let _ = std::fs::remove_file(path);
        if let Some(dir) = private_dir(path) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Has the resource tracker remove the private directory of a local address once this process
/// has ended, however it ends (an in-thread server dies with its program, SIGKILL included).
/// Best effort: without a tracker, the next local manager's sweep removes it.
pub(crate) fn remove_address_at_exit(address: &Address) {
    if let Address::Local(path) = address {
        if let Some(dir) = private_dir(path) {
            if let Err(e) = processing_shm::tracker::remove_dir_at_exit(dir) {
                tracing::debug!(target: "processing", dir = %dir.display(), error = %e, "the tracker will not remove this manager's directory");
            }
        }
    }
}

/// What the termination handler of a server process removes: its socket and directory.
static ON_TERMINATE: std::sync::OnceLock<(std::ffi::CString, Option<std::ffi::CString>)> =
    std::sync::OnceLock::new();

extern "C" fn remove_and_die(sig: libc::c_int) {
    if let Some((socket, dir)) = ON_TERMINATE.get() {
        // SAFETY: unlink and rmdir are async-signal-safe and read NUL-terminated strings that
        // live in a static for the rest of the process.
        unsafe {
            libc::unlink(socket.as_ptr());
            if let Some(dir) = dir {
                libc::rmdir(dir.as_ptr());
            }
        }
    }
    // SAFETY: signal and raise are async-signal-safe; the default action then ends the process
    // as the signal would have.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// In a server process: a termination signal (the parent-death signal a daemonic server gets
/// when its owner dies, or `terminate`) first removes the socket and its private directory.
pub(crate) fn remove_address_on_termination(address: &Address) {
    use std::os::unix::ffi::OsStrExt;
    let Address::Local(path) = address else {
        return;
    };
    let Ok(socket) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    let dir = private_dir(path).and_then(|d| std::ffi::CString::new(d.as_os_str().as_bytes()).ok());
    if ON_TERMINATE.set((socket, dir)).is_err() {
        return;
    }
    for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is valid; the handler only calls async-signal-safe
        // functions on data set before it is installed.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = remove_and_die as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// Removes the private directories of local managers whose owner process is gone (a program
/// killed together with its in-thread server leaves one behind).
pub(crate) fn sweep_stale_addresses() {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let uid = processing_core::os::uid();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        // The owner is gone and nothing answers on the socket (a process in another pid
        // namespace sharing the directory would still answer).
        if meta.is_dir()
            && meta.uid() == uid
            && !processing_core::os::pid_alive(pid)
            && UnixStream::connect(entry.path().join(SOCKET_NAME)).is_err()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Waits until `stream` has bytes to read (or is closed) without blocking a thread: on Linux
/// through the reactor's epoll set, elsewhere one step of `backoff` (the caller reads again).
#[cfg(feature = "async")]
pub(crate) async fn readable(
    stream: &Stream,
    backoff: &mut processing_core::aio::Backoff,
) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let _ = backoff;
        use processing_core::aio::{wait_fd, Interest};
        // `wait_fd` duplicates the descriptor before the future outlives this borrow.
        wait_fd(stream.as_fd(), Interest::Readable)?.await
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
        backoff.sleep().await;
        Ok(())
    }
}
