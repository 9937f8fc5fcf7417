//! Typed listener addresses: a local name or a TCP `host:port`.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::ListenerError;

/// Where a [`Listener`](crate::Listener) listens.
///
/// `Local` names a private local socket: on Unix a Unix domain socket, either at an absolute
/// path or (for a bare name) inside the per-user 0700 directory
/// `$XDG_RUNTIME_DIR/processing-<uid>/` (or `/tmp/processing-<uid>/`); on Windows the named
/// pipe `\\.\pipe\<name>`. `Tcp` is a TCP socket address.
///
/// Parsing: `tcp://host:port` and anything that parses as `host:port` with a numeric port is
/// TCP; `local:name` and everything else is local.
///
/// ```
/// use processing::transport::Address;
/// let a: Address = "127.0.0.1:6000".parse().unwrap();
/// assert!(matches!(a, Address::Tcp(_)));
/// let b: Address = "my-service".parse().unwrap();
/// assert_eq!(b, Address::Local("my-service".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Address {
    /// A private local socket (see the type's docs).
    Local(String),
    /// A TCP address.
    Tcp(SocketAddr),
}

impl Address {
    /// A fresh local address, unique to this process and call.
    ///
    /// ```
    /// let a = processing::transport::Address::unique_local();
    /// assert_ne!(a, processing::transport::Address::unique_local());
    /// ```
    pub fn unique_local() -> Address {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let r = processing_core::authkey::random_bytes(4);
        Address::Local(format!(
            "l-{}-{}-{:02x}{:02x}{:02x}{:02x}",
            processing_core::os::pid(),
            n,
            r[0],
            r[1],
            r[2],
            r[3]
        ))
    }

    /// Whether this is a TCP address.
    pub fn is_tcp(&self) -> bool {
        matches!(self, Address::Tcp(_))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Local(name) => write!(f, "local:{name}"),
            Address::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

fn resolve(s: &str) -> Result<Address, ListenerError> {
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(Address::Tcp)
        .ok_or_else(|| ListenerError::InvalidAddress(s.to_string()))
}

impl FromStr for Address {
    type Err = ListenerError;

    fn from_str(s: &str) -> Result<Address, ListenerError> {
        if let Some(rest) = s.strip_prefix("tcp://") {
            return resolve(rest);
        }
        if let Some(rest) = s.strip_prefix("local:") {
            return Ok(Address::Local(rest.to_string()));
        }
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(Address::Tcp(a));
        }
        let looks_tcp = s.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains(['/', '\\']) && port.parse::<u16>().is_ok()
        });
        if looks_tcp {
            return resolve(s);
        }
        if s.is_empty() {
            return Err(ListenerError::InvalidAddress(s.to_string()));
        }
        Ok(Address::Local(s.to_string()))
    }
}

/// Things that name an [`Address`]: an `Address`, a string, a `SocketAddr`.
pub trait IntoAddress {
    /// The address, or an error for an unparsable string.
    fn into_address(self) -> Result<Address, ListenerError>;
}

impl IntoAddress for Address {
    fn into_address(self) -> Result<Address, ListenerError> {
        Ok(self)
    }
}

impl IntoAddress for &Address {
    fn into_address(self) -> Result<Address, ListenerError> {
        Ok(self.clone())
    }
}

impl IntoAddress for &str {
    fn into_address(self) -> Result<Address, ListenerError> {
        self.parse()
    }
}

impl IntoAddress for String {
    fn into_address(self) -> Result<Address, ListenerError> {
        self.parse()
    }
}

impl IntoAddress for &String {
    fn into_address(self) -> Result<Address, ListenerError> {
        self.parse()
    }
}

impl IntoAddress for SocketAddr {
    fn into_address(self) -> Result<Address, ListenerError> {
        Ok(Address::Tcp(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(
            "local:a:b".parse::<Address>().unwrap(),
            Address::Local("a:b".into())
        );
        assert!("tcp://127.0.0.1:1".parse::<Address>().unwrap().is_tcp());
        assert!("localhost:80".parse::<Address>().unwrap().is_tcp());
        assert_eq!(
            "/tmp/x.sock".parse::<Address>().unwrap(),
            Address::Local("/tmp/x.sock".into())
        );
        assert!("".parse::<Address>().is_err());
        let a = Address::unique_local();
        assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
        let t: Address = "[::1]:9".parse().unwrap();
        assert_eq!(t.to_string().parse::<Address>().unwrap(), t);
    }
}
