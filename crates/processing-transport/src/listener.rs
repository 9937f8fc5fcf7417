//! `Listener` and `Client`: authenticated connections at local or TCP addresses.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::address::{Address, IntoAddress};
use crate::auth::{self, Role};
use crate::connection::{Connection, Duplex};
use crate::error::{AuthError, ConnectionError, ListenerError};
use crate::frame::DEFAULT_MAX_MESSAGE_SIZE;
use crate::sys::{self, LocalListener, Stream};

/// Default limit on how long a peer may take over the handshake.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings shared by [`ListenerBuilder`] and [`ClientBuilder`].
#[derive(Debug, Clone)]
struct Settings {
    authkey: Option<Arc<[u8]>>,
    allow_empty_tcp: bool,
    max_message: u64,
    handshake_timeout: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            authkey: None,
            allow_empty_tcp: false,
            max_message: DEFAULT_MAX_MESSAGE_SIZE,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }
}

impl Settings {
    /// The key to use, checked against the address family.
    fn key_for(&self, address: &Address) -> Result<Arc<[u8]>, ListenerError> {
        let key = self
            .authkey
            .clone()
            .unwrap_or_else(processing_core::authkey::get);
        if key.is_empty() && address.is_tcp() && !self.allow_empty_tcp {
            return Err(ListenerError::UnauthenticatedTcp);
        }
        Ok(key)
    }
}

fn in_use(address: &Address, e: std::io::Error) -> ListenerError {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        ListenerError::AddressInUse(address.to_string())
    } else {
        ListenerError::Io(e)
    }
}

/// Configures a [`Listener`] (rayon-style by-value setters, then [`bind`](Self::bind)).
///
/// ```
/// use processing_transport::Listener;
/// let l = Listener::builder().authkey(b"secret").max_message_size(1 << 20)
///     .bind("127.0.0.1:0").unwrap();
/// assert!(l.address().is_tcp());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ListenerBuilder {
    settings: Settings,
}

impl ListenerBuilder {
    /// The authkey both sides must share (default: [`processing_core::authkey::get`]).
    pub fn authkey(mut self, key: &[u8]) -> Self {
        self.settings.authkey = Some(key.into());
        self
    }

    /// Accept an empty authkey on a TCP address (refused by default: anyone who can reach the
    /// port could connect).
    pub fn allow_unauthenticated_tcp(mut self, allow: bool) -> Self {
        self.settings.allow_empty_tcp = allow;
        self
    }

    /// The largest message accepted connections receive (default 16 GiB).
    pub fn max_message_size(mut self, max: u64) -> Self {
        self.settings.max_message = max;
        self
    }

    /// How long a connecting peer may take over the handshake (default 30 s; `None`: forever).
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.handshake_timeout = timeout;
        self
    }

    /// Binds the address. A live listener already there is [`ListenerError::AddressInUse`]; a
    /// stale socket file left by a dead process is replaced.
    pub fn bind(self, address: impl IntoAddress) -> Result<Listener, ListenerError> {
        let address = address.into_address()?;
        let authkey = self.settings.key_for(&address)?;
        let (inner, address) = match &address {
            Address::Local(name) => (Inner::Local(LocalListener::bind(name)?), address),
            Address::Tcp(a) => {
                let l = TcpListener::bind(a).map_err(|e| in_use(&address, e))?;
                let bound = l.local_addr()?;
                (Inner::Tcp(l), Address::Tcp(bound))
            }
        };
        Ok(Listener {
            inner,
            address,
            authkey,
            settings: self.settings,
        })
    }
}

#[derive(Debug)]
enum Inner {
    Local(LocalListener),
    Tcp(TcpListener),
}

/// Accepts authenticated connections at an [`Address`].
///
/// Every accepted peer passes the mutual HMAC-SHA256 handshake before `accept` returns, and
/// nothing it sends beyond the 256-byte handshake frames is read before that. A local listener
/// removes its socket file when dropped.
///
/// ```
/// use processing_transport::{Client, Listener, Address};
/// let listener = Listener::bind(Address::unique_local(), None).unwrap();
/// let addr = listener.address().clone();
/// let t = std::thread::spawn(move || {
///     let c = Client::connect::<String>(&addr, None).unwrap();
///     c.send(&"hello".to_string()).unwrap();
/// });
/// let conn = listener.accept::<String>().unwrap();
/// assert_eq!(conn.recv().unwrap(), "hello");
/// t.join().unwrap();
/// ```
#[derive(Debug)]
pub struct Listener {
    inner: Inner,
    address: Address,
    authkey: Arc<[u8]>,
    settings: Settings,
}

impl Listener {
    /// Binds `address` with `authkey` (`None`: the process's authkey).
    pub fn bind(
        address: impl IntoAddress,
        authkey: Option<&[u8]>,
    ) -> Result<Listener, ListenerError> {
        let mut b = ListenerBuilder::default();
        if let Some(k) = authkey {
            b = b.authkey(k);
        }
        b.bind(address)
    }

    /// A builder with more settings.
    pub fn builder() -> ListenerBuilder {
        ListenerBuilder::default()
    }

    /// The bound address (for TCP port 0, the port the system chose).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Waits for a peer, authenticates it, and returns the connection. A failed handshake is an
    /// error (`is_auth()`); a peer that closes before answering the challenge is skipped.
    pub fn accept<T>(&self) -> Result<Connection<T>, ListenerError> {
        loop {
            let stream = match &self.inner {
                Inner::Local(l) => l.accept()?,
                Inner::Tcp(l) => Stream::from_tcp(l.accept()?.0),
            };
            let conn: Connection<T, Duplex> = Connection::from_stream(stream);
            match auth::handshake(
                &conn,
                &self.authkey,
                Role::Server,
                self.settings.handshake_timeout,
            ) {
                Ok(()) => {
                    conn.set_max_message_size(self.settings.max_message);
                    return Ok(conn);
                }
                Err(AuthError::Connection(e))
                    if matches!(*e, ConnectionError::Eof | ConnectionError::Disconnected) =>
                {
                    continue
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The listening descriptor, readable when a peer waits (feature `async`).
    #[cfg(all(unix, feature = "async"))]
    pub(crate) fn raw_listen_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match &self.inner {
            Inner::Local(l) => l.raw_fd(),
            Inner::Tcp(l) => l.as_raw_fd(),
        }
    }

    /// The path of the socket file of a local listener (Unix).
    pub fn local_path(&self) -> Option<&std::path::Path> {
        match &self.inner {
            Inner::Local(l) => l.path(),
            Inner::Tcp(_) => None,
        }
    }
}

/// Configures a client connection (by-value setters, then [`connect`](Self::connect)).
///
/// ```
/// use processing_transport::{Client, Listener};
/// let l = Listener::builder().authkey(b"").allow_unauthenticated_tcp(true).bind("127.0.0.1:0").unwrap();
/// let addr = l.address().clone();
/// let t = std::thread::spawn(move || l.accept::<u8>().map(|_| ()));
/// let c = Client::builder().authkey(b"").allow_unauthenticated_tcp(true).connect::<u8>(addr);
/// assert!(c.is_ok());
/// t.join().unwrap().unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    settings: Settings,
}

impl ClientBuilder {
    /// The authkey both sides must share (default: [`processing_core::authkey::get`]).
    pub fn authkey(mut self, key: &[u8]) -> Self {
        self.settings.authkey = Some(key.into());
        self
    }

    /// Allow an empty authkey on a TCP address (refused by default).
    pub fn allow_unauthenticated_tcp(mut self, allow: bool) -> Self {
        self.settings.allow_empty_tcp = allow;
        self
    }

    /// The largest message the connection receives (default 16 GiB).
    pub fn max_message_size(mut self, max: u64) -> Self {
        self.settings.max_message = max;
        self
    }

    /// How long the server may take over the handshake (default 30 s; `None`: forever).
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.handshake_timeout = timeout;
        self
    }

    /// Connects and authenticates.
    pub fn connect<T>(self, address: impl IntoAddress) -> Result<Connection<T>, ListenerError> {
        let address = address.into_address()?;
        let key = self.settings.key_for(&address)?;
        let stream = match &address {
            Address::Local(name) => sys::connect_local(name)?,
            Address::Tcp(a) => Stream::from_tcp(TcpStream::connect(a)?),
        };
        let conn: Connection<T, Duplex> = Connection::from_stream(stream);
        auth::handshake(&conn, &key, Role::Client, self.settings.handshake_timeout)?;
        conn.set_max_message_size(self.settings.max_message);
        Ok(conn)
    }
}

/// Connects to a [`Listener`].
///
/// ```no_run
/// let conn = processing_transport::Client::connect::<String>("127.0.0.1:6000", Some(b"key")).unwrap();
/// conn.send(&"hello".into()).unwrap();
/// ```
#[derive(Debug)]
pub struct Client(());

impl Client {
    /// Connects to `address` and authenticates with `authkey` (`None`: the process's authkey).
    pub fn connect<T>(
        address: impl IntoAddress,
        authkey: Option<&[u8]>,
    ) -> Result<Connection<T>, ListenerError> {
        let mut b = ClientBuilder::default();
        if let Some(k) = authkey {
            b = b.authkey(k);
        }
        b.connect(address)
    }

    /// A builder with more settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }
}
