//! Where a manager server listens: a TCP `host:port` or a local socket path.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The address of a manager server.
///
/// A string of the form `host:port` (`127.0.0.1:5000`, `[::1]:0`, `example.org:7000`) is TCP;
/// anything else is a local socket path (Unix only; on Windows local managers use loopback TCP).
///
/// ```
/// use processing::manager::Address;
/// assert!(matches!(Address::parse("127.0.0.1:0"), Address::Tcp(_)));
/// assert!(matches!(Address::parse("/tmp/mgr.sock"), Address::Local(_)));
/// assert_eq!(Address::parse("localhost:7000").to_string(), "localhost:7000");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Address {
    /// A TCP address `host:port`.
    Tcp(String),
    /// A local (Unix domain) socket path.
    Local(PathBuf),
}

impl Address {
    /// Parses `host:port` as TCP and anything else as a local socket path.
    pub fn parse(s: &str) -> Address {
        let looks_tcp = s.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok()
        });
        if looks_tcp {
            Address::Tcp(s.to_string())
        } else {
            Address::Local(PathBuf::from(s))
        }
    }

    /// Whether this is a TCP address.
    pub fn is_tcp(&self) -> bool {
        matches!(self, Address::Tcp(_))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(s) => f.write_str(s),
            Address::Local(p) => write!(f, "{}", p.display()),
        }
    }
}

impl From<&str> for Address {
    fn from(s: &str) -> Self {
        Address::parse(s)
    }
}

impl From<String> for Address {
    fn from(s: String) -> Self {
        Address::parse(&s)
    }
}

impl From<std::net::SocketAddr> for Address {
    fn from(a: std::net::SocketAddr) -> Self {
        Address::Tcp(a.to_string())
    }
}
