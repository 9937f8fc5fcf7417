//! `Listener` and `Client`: authenticated connections at local or TCP addresses.

use std::collections::VecDeque;
use std::fmt;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

/// `builder` with `authkey` set through `set`, if one is given (else the process's authkey).
fn with_key<B>(builder: B, authkey: Option<&[u8]>, set: fn(B, &[u8]) -> B) -> B {
    match authkey {
        Some(k) => set(builder, k),
        None => builder,
    }
}

/// The by-value setters a [`ListenerBuilder`] and a [`ClientBuilder`] share over their
/// `settings`, with the doc comments given before each name.
macro_rules! settings_setters {
    (
        $(#[$authkey:meta])* fn authkey;
        $(#[$allow:meta])* fn allow_unauthenticated_tcp;
        $(#[$max:meta])* fn max_message_size;
        $(#[$handshake:meta])* fn handshake_timeout;
    ) => {
        $(#[$authkey])*
        pub fn authkey(mut self, key: &[u8]) -> Self {
            self.settings.authkey = Some(key.into());
            self
        }

        $(#[$allow])*
        pub fn allow_unauthenticated_tcp(mut self, allow: bool) -> Self {
            self.settings.allow_empty_tcp = allow;
            self
        }

        $(#[$max])*
        pub fn max_message_size(mut self, max: u64) -> Self {
            self.settings.max_message = max;
            self
        }

        $(#[$handshake])*
        pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
            self.settings.handshake_timeout = timeout;
            self
        }
    };
}

/// Configures a [`Listener`] (rayon-style by-value setters, then [`bind`](Self::bind)).
///
/// ```
/// use processing::transport::Listener;
/// let l = Listener::builder().authkey(b"secret").max_message_size(1 << 20)
///     .bind("127.0.0.1:0").unwrap();
/// assert!(l.address().is_tcp());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ListenerBuilder {
    settings: Settings,
}

impl ListenerBuilder {
    settings_setters! {
        /// The authkey both sides must share (default: [`processing_core::authkey::get`]).
        fn authkey;
        /// Accept an empty authkey on a TCP address (refused by default: anyone who can reach the
        /// port could connect).
        fn allow_unauthenticated_tcp;
        /// The largest message accepted connections receive (default 16 GiB).
        fn max_message_size;
        /// How long a connecting peer may take over the handshake (default 30 s; `None`: forever).
        fn handshake_timeout;
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
        let local_path = match &inner {
            Inner::Local(l) => l.path().map(Path::to_path_buf),
            Inner::Tcp(_) => None,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready_cv: Condvar::new(),
            room_cv: Condvar::new(),
            reap_cv: Condvar::new(),
            stopping: AtomicBool::new(false),
            authkey,
            settings: self.settings,
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("processing-listener".into())
                .spawn(move || shared.accept_loop(inner))?
        };
        if shared.settings.handshake_timeout.is_some() {
            let reaper = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name("processing-handshake-reaper".into())
                .stack_size(HANDSHAKE_STACK)
                .spawn(move || reaper.reap_loop());
            if let Err(e) = spawned {
                // The per-read timeout still bounds every silent peer.
                tracing::debug!("listener: cannot start the handshake reaper: {e}");
            }
        }
        Ok(Listener {
            address,
            local_path,
            shared,
            acceptor: Some(acceptor),
        })
    }
}

#[derive(Debug)]
enum Inner {
    Local(LocalListener),
    Tcp(TcpListener),
}

impl Inner {
    fn accept(&self) -> std::io::Result<Stream> {
        match self {
            Inner::Local(l) => l.accept(),
            Inner::Tcp(l) => Ok(Stream::from_tcp(l.accept()?.0)),
        }
    }
}

/// The most peers that may be in the middle of the handshake at once. A new peer beyond it
/// cuts the oldest one off: a legitimate client answers within milliseconds, so only a peer
/// that connected and stays silent loses its place, and idle peers cost at most this many
/// threads.
///
/// ```
/// use processing::transport::{Listener, MAX_PENDING_HANDSHAKES};
/// let l = Listener::bind("127.0.0.1:0", Some(b"key")).unwrap();
/// let Some(addr) = l.address().to_string().strip_prefix("tcp://").map(str::to_owned) else {
///     unreachable!()
/// };
/// // More silent peers than the cap: the oldest is cut off (it reads the end of the stream).
/// let mut idle: Vec<_> = (0..MAX_PENDING_HANDSHAKES + 1)
///     .map(|_| std::net::TcpStream::connect(&addr).unwrap())
///     .collect();
/// let mut rest = Vec::new();
/// std::io::Read::read_to_end(&mut idle[0], &mut rest).unwrap();
/// ```
pub const MAX_PENDING_HANDSHAKES: usize = 32;
/// Authenticated connections waiting for `accept`; beyond it the listener stops accepting (new
/// peers then wait in the kernel's backlog).
const MAX_READY: usize = 64;
/// Stack of a handshake thread (the handshake needs little: HMAC and 256-byte frames).
const HANDSHAKE_STACK: usize = 256 * 1024;

/// What the accepting thread, the handshake threads and `accept` share.
struct Shared {
    state: Mutex<State>,
    /// Signalled when `ready` gains an entry or the accepting thread ends.
    ready_cv: Condvar,
    /// Signalled when `ready` has room again or the listener stops.
    room_cv: Condvar,
    /// Signalled when a handshake starts or the accepting thread ends (wakes the reaper).
    reap_cv: Condvar,
    stopping: AtomicBool,
    authkey: Arc<[u8]>,
    settings: Settings,
}

/// A peer in the middle of the handshake.
struct Pending {
    id: u64,
    /// A clone of its connection, to cut it off.
    conn: Connection<()>,
    /// When it is cut off if not done (`None`: no handshake timeout).
    deadline: Option<Instant>,
}

#[derive(Default)]
struct State {
    /// Authenticated connections, and failed handshakes to report, in arrival order.
    ready: VecDeque<Result<Connection<()>, ListenerError>>,
    /// Connections in the middle of the handshake, oldest first.
    pending: VecDeque<Pending>,
    next: u64,
    /// The accepting thread has ended.
    closed: bool,
    /// Tasks awaiting `accept_async` (feature `async`), by waiter key; woken (and removed)
    /// when `ready` gains an entry or the accepting thread ends.
    #[cfg(feature = "async")]
    wakers: std::collections::BTreeMap<u64, std::task::Waker>,
    #[cfg(feature = "async")]
    next_waiter: u64,
}

impl State {
    /// Wakes every task awaiting `accept_async`: each looks at `ready` again (one takes the
    /// entry, the others register again), so a woken future that is dropped before it polls
    /// loses no connection and starves no other waiter.
    fn wake_async(&mut self) {
        #[cfg(feature = "async")]
        for (_, w) in std::mem::take(&mut self.wakers) {
            w.wake();
        }
    }
}

/// What `accept` returns once the accepting thread ended.
fn stopped() -> ListenerError {
    ListenerError::Io(std::io::Error::other("the listener stopped accepting"))
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The accepting thread: accepts peers as they come and starts a handshake for each.
    fn accept_loop(self: Arc<Self>, inner: Inner) {
        let mut failures = 0u32;
        loop {
            {
                let mut state = lock(&self.state);
                while state.ready.len() >= MAX_READY && !self.stopping.load(Ordering::Acquire) {
                    state = self.room_cv.wait(state).unwrap_or_else(|e| e.into_inner());
                }
            }
            if self.stopping.load(Ordering::Acquire) {
                break;
            }
            let accepted = inner.accept();
            if self.stopping.load(Ordering::Acquire) {
                break;
            }
            match accepted {
                Ok(stream) => {
                    failures = 0;
                    self.start_handshake(Connection::from_stream(stream));
                }
                Err(e) => {
                    // Reported to `accept` (EMFILE and friends), then a short back-off.
                    failures += 1;
                    let mut state = lock(&self.state);
                    state.ready.push_back(Err(ListenerError::Io(e)));
                    state.wake_async();
                    drop(state);
                    self.ready_cv.notify_one();
                    std::thread::sleep(Duration::from_millis(u64::from(failures.min(50))));
                }
            }
        }
        drop(inner);
        let mut state = lock(&self.state);
        state.closed = true;
        for p in state.pending.drain(..) {
            p.conn.abort();
        }
        state.wake_async();
        drop(state);
        self.ready_cv.notify_all();
        self.reap_cv.notify_all();
    }

    /// The reaper thread: cuts off a peer whose handshake outlived its deadline (the read
    /// timeout alone would let a peer that trickles bytes hold on far longer).
    fn reap_loop(&self) {
        let mut state = lock(&self.state);
        while !state.closed {
            let now = Instant::now();
            // Peers are pending in arrival order with one timeout: the front expires first.
            while let Some(p) = state.pending.front() {
                if p.deadline.is_some_and(|d| d <= now) {
                    if let Some(p) = state.pending.pop_front() {
                        tracing::debug!("listener: a handshake passed its deadline");
                        p.conn.abort();
                    }
                } else {
                    break;
                }
            }
            let next = state.pending.front().and_then(|p| p.deadline);
            state = match next {
                Some(d) => {
                    self.reap_cv
                        .wait_timeout(state, d.saturating_duration_since(now))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.reap_cv.wait(state).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    fn start_handshake(self: &Arc<Self>, conn: Connection<()>) {
        let id = {
            let mut state = lock(&self.state);
            while state.pending.len() >= MAX_PENDING_HANDSHAKES {
                if let Some(oldest) = state.pending.pop_front() {
                    tracing::debug!("listener: too many pending handshakes, the oldest is cut off");
                    oldest.conn.abort();
                }
            }
            let id = state.next;
            state.next += 1;
            let deadline = self
                .settings
                .handshake_timeout
                .and_then(|t| Instant::now().checked_add(t));
            state.pending.push_back(Pending {
                id,
                conn: conn.clone(),
                deadline,
            });
            id
        };
        self.reap_cv.notify_one();
        let shared = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("processing-handshake".into())
            .stack_size(HANDSHAKE_STACK)
            .spawn(move || shared.handshake(id, conn));
        if let Err(e) = spawned {
            tracing::debug!("listener: cannot start a handshake thread: {e}");
            let mut state = lock(&self.state);
            if let Some(at) = state.pending.iter().position(|p| p.id == id) {
                if let Some(p) = state.pending.remove(at) {
                    p.conn.abort();
                }
            }
        }
    }

    /// A handshake thread: authenticates one peer and hands the outcome to `accept`.
    fn handshake(&self, id: u64, conn: Connection<()>) {
        let result = auth::handshake(
            &conn,
            &self.authkey,
            Role::Server,
            self.settings.handshake_timeout,
        );
        let mut state = lock(&self.state);
        let Some(at) = state.pending.iter().position(|p| p.id == id) else {
            // Cut off meanwhile (too many pending, or the listener stopped).
            return;
        };
        state.pending.remove(at);
        let outcome = match result {
            Ok(()) => {
                conn.set_max_message_size(self.settings.max_message);
                Ok(conn)
            }
            // A peer that left, or stayed silent past the deadline, is skipped.
            Err(AuthError::Connection(e))
                if matches!(
                    *e,
                    ConnectionError::Eof | ConnectionError::Disconnected | ConnectionError::Timeout
                ) =>
            {
                tracing::debug!("listener: handshake abandoned: {e}");
                return;
            }
            Err(e) => Err(e.into()),
        };
        state.ready.push_back(outcome);
        state.wake_async();
        drop(state);
        self.ready_cv.notify_one();
    }
}

/// Accepts authenticated connections at an [`Address`].
///
/// A background thread accepts peers as they connect and authenticates each on its own
/// short-lived thread, so a slow or silent peer never delays the others: every peer gets the
/// handshake timeout ([`ListenerBuilder::handshake_timeout`]) and at most
/// [`MAX_PENDING_HANDSHAKES`] handshakes run at once (a new peer beyond that cuts the oldest
/// off). Every connection [`accept`](Self::accept) returns passed the mutual HMAC-SHA256
/// handshake, and nothing its peer sent beyond the 256-byte handshake frames was read before
/// that. A local listener removes its socket file when dropped.
///
/// ```
/// use processing::transport::{Client, Listener, Address};
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
pub struct Listener {
    address: Address,
    local_path: Option<PathBuf>,
    shared: Arc<Shared>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// Binds `address` with `authkey` (`None`: the process's authkey).
    pub fn bind(
        address: impl IntoAddress,
        authkey: Option<&[u8]>,
    ) -> Result<Listener, ListenerError> {
        with_key(
            ListenerBuilder::default(),
            authkey,
            ListenerBuilder::authkey,
        )
        .bind(address)
    }

    /// A builder with more settings.
    pub fn builder() -> ListenerBuilder {
        ListenerBuilder::default()
    }

    /// The bound address (for TCP port 0, the port the system chose).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Waits for the next authenticated peer and returns its connection. A handshake that
    /// failed (a wrong key, a peer that does not speak the protocol) is an error (`is_auth()`);
    /// a peer that closes or stays silent past the handshake timeout is skipped.
    pub fn accept<T>(&self) -> Result<Connection<T>, ListenerError> {
        let mut state = lock(&self.shared.state);
        loop {
            if let Some(outcome) = state.ready.pop_front() {
                drop(state);
                self.shared.room_cv.notify_one();
                return outcome.map(Connection::with_type);
            }
            if state.closed {
                return Err(stopped());
            }
            state = self
                .shared
                .ready_cv
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// One look at the queue of authenticated connections for `accept_async` (feature
    /// `async`): an entry if there is one (the outcome [`accept`](Self::accept) would return),
    /// else the error of a stopped listener, else `Pending` with `cx`'s waker registered
    /// under `*key` (given a key on first use), to be woken when an entry is queued.
    #[cfg(feature = "async")]
    pub(crate) fn poll_ready(
        &self,
        cx: &mut std::task::Context<'_>,
        key: &mut Option<u64>,
    ) -> std::task::Poll<Result<Connection<()>, ListenerError>> {
        use std::task::Poll;
        let mut state = lock(&self.shared.state);
        if let Some(outcome) = state.ready.pop_front() {
            if let Some(k) = key.take() {
                state.wakers.remove(&k);
            }
            drop(state);
            self.shared.room_cv.notify_one();
            return Poll::Ready(outcome);
        }
        if state.closed {
            if let Some(k) = key.take() {
                state.wakers.remove(&k);
            }
            return Poll::Ready(Err(stopped()));
        }
        let k = *key.get_or_insert_with(|| {
            let k = state.next_waiter;
            state.next_waiter += 1;
            k
        });
        match state.wakers.get_mut(&k) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => w.clone_from(cx.waker()),
            None => {
                state.wakers.insert(k, cx.waker().clone());
            }
        }
        Poll::Pending
    }

    /// Withdraws the waiter `key` of a dropped `accept_async` future (feature `async`).
    #[cfg(feature = "async")]
    pub(crate) fn forget_waiter(&self, key: u64) {
        lock(&self.shared.state).wakers.remove(&key);
    }

    /// The path of the socket file of a local listener (Unix).
    pub fn local_path(&self) -> Option<&std::path::Path> {
        self.local_path.as_deref()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        // Taking the lock orders the flag before a wait of the accepting thread that checked it.
        drop(lock(&self.shared.state));
        self.shared.room_cv.notify_all();
        // Wake the accepting thread with a connection of our own, then wait for it to close
        // the socket (and remove a local socket's file).
        let woken = match &self.address {
            Address::Local(name) => sys::connect_local(name).is_ok(),
            Address::Tcp(a) => {
                let mut a = *a;
                if a.ip().is_unspecified() {
                    a.set_ip(if a.is_ipv4() {
                        std::net::Ipv4Addr::LOCALHOST.into()
                    } else {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    });
                }
                TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok()
            }
        };
        if let Some(acceptor) = self.acceptor.take() {
            if woken {
                let _ = acceptor.join();
            }
        }
    }
}

/// Configures a client connection (by-value setters, then [`connect`](Self::connect)).
///
/// ```
/// use processing::transport::{Client, Listener};
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
    settings_setters! {
        /// The authkey both sides must share (default: [`processing_core::authkey::get`]).
        fn authkey;
        /// Allow an empty authkey on a TCP address (refused by default).
        fn allow_unauthenticated_tcp;
        /// The largest message the connection receives (default 16 GiB).
        fn max_message_size;
        /// How long the server may take over the handshake (default 30 s; `None`: forever).
        fn handshake_timeout;
    }

    /// Connects and authenticates.
    pub fn connect<T>(self, address: impl IntoAddress) -> Result<Connection<T>, ListenerError> {
        let address = address.into_address()?;
        let key = self.settings.key_for(&address)?;
        let stream = match &address {
            Address::Local(name) => sys::connect_local(name),
            Address::Tcp(a) => TcpStream::connect(a)
                .map(Stream::from_tcp)
                .map_err(ListenerError::from),
        }
        .map_err(|e| e.connecting(&address))?;
        let conn: Connection<T, Duplex> = Connection::from_stream(stream);
        auth::handshake(&conn, &key, Role::Client, self.settings.handshake_timeout)?;
        conn.set_max_message_size(self.settings.max_message);
        Ok(conn)
    }
}

/// Connects to a [`Listener`].
///
/// ```no_run
/// let conn = processing::transport::Client::connect::<String>("127.0.0.1:6000", Some(b"key")).unwrap();
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
        with_key(ClientBuilder::default(), authkey, ClientBuilder::authkey).connect(address)
    }

    /// A builder with more settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }
}
