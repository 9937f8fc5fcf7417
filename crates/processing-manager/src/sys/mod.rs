//! The one platform seam of the manager: streams, listeners, the non-blocking read used by the
//! bounded spin, and the peer-closed check.
//!
//! Every platform module exports the same names: `Stream`, `Listener`, `connect`, `bind`,
//! `try_read`, `peer_closed`, `new_local_address`, `remove_local_address`,
//! `remove_address_on_termination`, `remove_address_at_exit`.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Connects to the TCP `host_port`, trying each resolved address within `timeout`; the stream
/// has `TCP_NODELAY` set. The error is the last address's, or `NotFound` when none resolved.
fn connect_tcp(host_port: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing");
    for addr in host_port.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

#[cfg(target_os = "linux")]
pub(crate) mod mailbox_linux;
#[cfg(target_os = "linux")]
pub(crate) use mailbox_linux::{mailbox_path, Mailbox};

#[cfg(not(target_os = "linux"))]
mod mailbox_none;
#[cfg(not(target_os = "linux"))]
pub(crate) use mailbox_none::{mailbox_path, Mailbox};
