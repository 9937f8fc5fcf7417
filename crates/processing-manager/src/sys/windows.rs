//! Windows: managers listen on TCP; a local manager binds the loopback interface (std has no
//! local sockets there), protected by the same mutual HMAC authentication as remote ones.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use crate::address::Address;

/// A connected byte stream to or from a manager server.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
}

impl Stream {
    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        let Stream::Tcp(s) = self;
        Ok(Stream::Tcp(s.try_clone()?))
    }

    pub(crate) fn shutdown(&self) {
        let Stream::Tcp(s) = self;
        let _ = s.shutdown(Shutdown::Both);
    }

    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        let Stream::Tcp(s) = self;
        s.set_read_timeout(d)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Stream::Tcp(s) = self;
        s.read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Stream::Tcp(s) = self;
        s.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A bound listening socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
}

impl Listener {
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        let Listener::Tcp(l) = self;
        let (s, _) = l.accept()?;
        s.set_nodelay(true)?;
        Ok(Stream::Tcp(s))
    }
}

fn unsupported_local() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "local socket paths are not supported on Windows; use host:port",
    )
}

/// Connects to `address`, giving up after `timeout`.
pub(crate) fn connect(address: &Address, timeout: Duration) -> io::Result<Stream> {
    let Address::Tcp(host_port) = address else {
        return Err(unsupported_local());
    };
    super::connect_tcp(host_port, timeout).map(Stream::Tcp)
}

/// Binds `address`; port 0 is resolved to the port the system chose.
pub(crate) fn bind(address: &Address) -> io::Result<(Listener, Address)> {
    let Address::Tcp(host_port) = address else {
        return Err(unsupported_local());
    };
    let l = TcpListener::bind(host_port.as_str())?;
    let local = l.local_addr()?;
    Ok((Listener::Tcp(l), Address::Tcp(local.to_string())))
}

/// Reads what is available without blocking: `Ok(None)` when nothing is, `Ok(Some(0))` at end
/// of stream.
pub(crate) fn try_read(stream: &Stream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let Stream::Tcp(s) = stream;
    s.set_nonblocking(true)?;
    let mut reader = s;
    let r = match reader.read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    };
    s.set_nonblocking(false)?;
    r
}

/// Whether the peer has closed its end (a non-blocking peek reads end of stream).
pub(crate) fn peer_closed(stream: &Stream) -> bool {
    let Stream::Tcp(s) = stream;
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let closed = match s.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    let _ = s.set_nonblocking(false);
    closed
}

/// A fresh address for a local manager: a loopback port the system just handed out.
pub(crate) fn new_local_address() -> io::Result<Address> {
    let probe = TcpListener::bind("127.0.0.1:0")?;
    let port = probe.local_addr()?.port();
    drop(probe);
    Ok(Address::Tcp(format!("127.0.0.1:{port}")))
}

/// Nothing to remove for TCP addresses.
pub(crate) fn remove_local_address(_address: &Address) {}

/// A named pipe vanishes with its process: nothing to remove afterwards.
pub(crate) fn remove_address_at_exit(_address: &Address) {}

/// Nothing to remove on termination: Windows managers listen on TCP.
pub(crate) fn remove_address_on_termination(_address: &Address) {}

/// Waits a step of `backoff` before the caller reads `stream` again: Windows sockets have no
/// reactor registration here, so an async call polls its socket without blocking, on the
/// reactor's timer schedule (as the transport's async twins do on Windows).
#[cfg(feature = "async")]
pub(crate) async fn readable(
    stream: &Stream,
    backoff: &mut processing_core::aio::Backoff,
) -> io::Result<()> {
    let _ = stream;
    backoff.sleep().await;
    Ok(())
}
