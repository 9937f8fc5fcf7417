//! `Manager`: starting, serving and connecting to a manager server, and creating shared objects.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::address::Address;
use crate::calls::{unexpected_reply, ControlReply, ControlRequest};
use crate::client::{self, RawProxy, Remote};
use crate::custom::{table_of, SharedType, TypeList};
use crate::error::ManagerError;
use crate::protocol::{Elem, TypeIdentity};
use crate::proxy::*;
use crate::server::objects::{Init, Kind};
use crate::server::{Server, ServerConfig};
use crate::sys;
use crate::wire::Framed;

/// A handle on a manager server: creates shared objects and hands out their proxies.
///
/// A manager made by [`Manager::start`] (or [`Manager::start_in_thread`]) owns its server:
/// the server stops when the manager is shut down or dropped, or when this process exits.
/// A manager made by [`Manager::connect`] only talks to a server that lives elsewhere.
///
/// ```
/// use processing::manager::Manager;
/// let manager = Manager::start_in_thread().unwrap();
/// let list = manager.list::<u32>().unwrap();
/// list.extend(0..10).unwrap();
/// list.reverse().unwrap();
/// assert_eq!(list.to_vec().unwrap(), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
/// manager.shutdown().unwrap();
/// assert!(list.len().is_err()); // the server is gone: an error, not a hang
/// ```
#[derive(Debug)]
pub struct Manager {
    remote: Arc<Remote>,
    owner: Option<Owner>,
}

#[derive(Debug)]
struct Owner {
    /// The owner's control connection: closing it stops the server.
    control: Option<Framed>,
    server: ServerHandle,
}

#[derive(Debug)]
enum ServerHandle {
    Thread(Option<std::thread::JoinHandle<()>>),
    Process(Option<Box<crate::spawn::ServerProcess>>),
}

/// Configures a manager: its custom types and authkey, then starts, serves or connects.
///
/// ```
/// let manager = processing::manager::Manager::builder()
///     .authkey(b"secret".to_vec())
///     .start_in_thread()
///     .unwrap();
/// assert_eq!(manager.namespace().unwrap().names().unwrap(), Vec::<String>::new());
/// ```
pub struct ManagerBuilder<L: TypeList = ()> {
    authkey: Option<Vec<u8>>,
    types: PhantomData<fn() -> L>,
}

impl<L: TypeList> std::fmt::Debug for ManagerBuilder<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("types", &table_of::<L>())
            .finish_non_exhaustive()
    }
}

impl Default for ManagerBuilder<()> {
    fn default() -> Self {
        ManagerBuilder {
            authkey: None,
            types: PhantomData,
        }
    }
}

impl ManagerBuilder<()> {
    /// A builder with no custom types and the process's authkey.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Arguments of a spawned server process.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ServerArgs {
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
    pub(crate) owner_token: u64,
}

impl<L: TypeList> ManagerBuilder<L> {
    /// Registers the custom type `T` (see [`shared_type!`](crate::shared_type)). A server
    /// creates only registered types; a client's registrations are compared with the server's
    /// at connect time.
    pub fn register<T: SharedType>(self) -> ManagerBuilder<(T, L)> {
        ManagerBuilder {
            authkey: self.authkey,
            types: PhantomData,
        }
    }

    /// Uses `key` instead of the process's authkey.
    pub fn authkey(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.authkey = Some(key.into());
        self
    }

    fn key(&self) -> Vec<u8> {
        self.authkey
            .clone()
            .unwrap_or_else(|| processing_core::authkey::get().to_vec())
    }

    /// The key as proxies carry it: `None` when it is the process's key (children have it).
    fn travelling_key(&self) -> Option<Vec<u8>> {
        self.authkey
            .clone()
            .filter(|k| **k != *processing_core::authkey::get())
    }

    /// What every proxy of a manager reached at `address` shares: the server run `instance`,
    /// the key as it travels, the registered types.
    fn remote(&self, address: Address, instance: u64, types: Vec<TypeIdentity>) -> Arc<Remote> {
        Arc::new(Remote {
            address,
            instance,
            authkey: self.travelling_key(),
            types,
        })
    }

    /// Starts the server in a daemonic child process and returns its owner (see
    /// [`Manager::start`]).
    pub fn start(self) -> Result<Manager, ManagerError> {
        let address = sys::new_local_address()?;
        let owner_token = owner_token();
        let args = ServerArgs {
            address: address.clone(),
            authkey: self.key(),
            owner_token,
        };
        let process = crate::spawn::start::<L>(args).map_err(|e| {
            sys::remove_local_address(&address);
            ManagerError::Start(processing_core::ErrorContext::with_source(
                "cannot start the server process",
                e,
            ))
        })?;
        self.attach_owner(
            address,
            owner_token,
            ServerHandle::Process(Some(Box::new(process))),
            Duration::from_secs(30),
        )
    }

    /// Starts a server on a thread of this process (useful in tests and when no child
    /// process is wanted). Proxies work from other processes all the same, as long as this
    /// process lives; the server stops when the manager is shut down or dropped.
    pub fn start_in_thread(self) -> Result<Manager, ManagerError> {
        let address = sys::new_local_address()?;
        let owner_token = owner_token();
        let config = ServerConfig {
            authkey: self.key(),
            owner_token: Some(owner_token),
            types: table_of::<L>(),
        };
        let (server, listener) = Server::bind(&address, config)?;
        let bound = server.address().clone();
        // The program may be killed with its server: the tracker removes the socket
        // directory then (R12).
        sys::remove_address_at_exit(&bound);
        let thread = std::thread::Builder::new()
            .name("manager-server".into())
            .spawn(move || {
                server.run(listener);
                sys::remove_local_address(server.address());
            })?;
        self.attach_owner(
            bound,
            owner_token,
            ServerHandle::Thread(Some(thread)),
            Duration::from_secs(10),
        )
    }

    fn attach_owner(
        self,
        address: Address,
        owner_token: u64,
        mut server: ServerHandle,
        patience: Duration,
    ) -> Result<Manager, ManagerError> {
        let types = table_of::<L>().identities();
        let key = self.key();
        let deadline = saturating_deadline(patience);
        let mut pause = Duration::from_micros(200);
        let (control, welcome) = loop {
            match client::open(&address, &key, Some(owner_token), &types) {
                Ok(pair) => break pair,
                Err(e) if e.is_disconnected() && Instant::now() < deadline && server.is_alive() => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => {
                    server.abandon();
                    sys::remove_local_address(&address);
                    return Err(match e {
                        ManagerError::Disconnected(m) => ManagerError::Start(m),
                        other => other,
                    });
                }
            }
        };
        let remote = self.remote(address, welcome.instance, types);
        Ok(Manager {
            remote,
            owner: Some(Owner {
                control: Some(control),
                server,
            }),
        })
    }

    /// Serves a manager on `address` in this thread until a client asks it to shut down
    /// ([`Manager::shutdown`] on a connected manager). `host:port` serves TCP (port 0 picks a
    /// free one); a path serves a local socket. Every connection must prove it knows the
    /// authkey (the builder's, or this process's).
    pub fn serve(self, address: impl Into<Address>) -> Result<(), ManagerError> {
        self.serve_with(address, |_| {})
    }

    /// [`ManagerBuilder::serve`], calling `ready` with the bound address (port 0 resolved)
    /// once clients can connect.
    pub fn serve_with(
        self,
        address: impl Into<Address>,
        ready: impl FnOnce(&Address),
    ) -> Result<(), ManagerError> {
        let address = address.into();
        let config = ServerConfig {
            authkey: self.key(),
            owner_token: None,
            types: table_of::<L>(),
        };
        let (server, listener) = Server::bind(&address, config)?;
        ready(server.address());
        server.run(listener);
        if !server.address().is_tcp() {
            let _ = std::fs::remove_file(match server.address() {
                Address::Local(p) => p,
                Address::Tcp(_) => unreachable_path(),
            });
        }
        Ok(())
    }

    /// Connects to a manager served at `address`.
    pub fn connect(self, address: impl Into<Address>) -> Result<Manager, ManagerError> {
        self.connect_timeout(address, Duration::ZERO)
    }

    /// Connects to a manager served at `address`, retrying for up to `patience` while the
    /// server is not accepting yet (it may still be starting).
    pub fn connect_timeout(
        self,
        address: impl Into<Address>,
        patience: Duration,
    ) -> Result<Manager, ManagerError> {
        let address = address.into();
        let types = table_of::<L>().identities();
        let key = self.key();
        let deadline = saturating_deadline(patience);
        let (framed, welcome) = loop {
            match client::open(&address, &key, None, &types) {
                Ok(pair) => break pair,
                Err(e) if e.is_disconnected() && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        };
        let remote = self.remote(address, welcome.instance, types);
        client::keep_connection(&remote, framed);
        Ok(Manager {
            remote,
            owner: None,
        })
    }
}

/// `now + patience`, or the farthest representable instant for a huge `patience`
/// (`Duration::MAX` means for ever).
fn saturating_deadline(patience: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(patience).unwrap_or_else(|| far_future(now))
}

fn far_future(now: Instant) -> Instant {
    // About 30 years: later than any process lives, and representable on every platform.
    now.checked_add(Duration::from_secs(1 << 30)).unwrap_or(now)
}

fn unreachable_path() -> &'static std::path::Path {
    std::path::Path::new("")
}

fn owner_token() -> u64 {
    u64::from_le_bytes(
        processing_core::authkey::random_bytes(8)
            .try_into()
            .unwrap_or([3; 8]),
    )
}

impl ServerHandle {
    fn is_alive(&self) -> bool {
        match self {
            ServerHandle::Thread(t) => t.as_ref().is_some_and(|t| !t.is_finished()),
            ServerHandle::Process(p) => p.as_ref().is_some_and(|p| p.is_alive()),
        }
    }

    /// Waits for the server to finish, killing a process that does not within `patience`.
    fn finish(&mut self, patience: Duration) {
        match self {
            ServerHandle::Thread(t) => {
                if let Some(t) = t.take() {
                    let deadline = saturating_deadline(patience);
                    while !t.is_finished() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    if t.is_finished() {
                        let _ = t.join();
                    }
                }
            }
            ServerHandle::Process(p) => {
                if let Some(mut p) = p.take() {
                    if p.join_timeout(patience).is_err() && p.is_alive() {
                        let _ = p.kill();
                        let _ = p.join_timeout(patience);
                    }
                }
            }
        }
    }

    /// Gives up on a server that never became reachable.
    fn abandon(&mut self) {
        if let ServerHandle::Process(Some(p)) = self {
            let _ = p.kill();
        }
        self.finish(Duration::from_secs(2));
    }
}

/// The constructors of the synchronisation primitives (no type parameter), one per line:
/// `name(arguments) -> Proxy = (kind, initial state)`.
macro_rules! primitive_creators {
    ($(
        $(#[$doc:meta])*
        $name:ident($($arg:ident: $argty:ty),*) -> $proxy:ty = ($kind:expr, $init:expr);
    )*) => {$(
        $(#[$doc])*
        pub fn $name(&self $(, $arg: $argty)*) -> Result<$proxy, ManagerError> {
            self.make($kind, $init)
        }
    )*};
}

/// The object constructors of [`Manager`] and [`Named`]; the type provides `remote()` and
/// `object_name()` (the name objects are created under, if any).
macro_rules! creators {
    () => {
        fn make<P: Proxy>(&self, kind: Kind, init: Init) -> Result<P, ManagerError> {
            self.create_kind(kind, P::tag(), init)
        }

        fn create_kind<P: Proxy>(
            &self,
            kind: Kind,
            tag: String,
            init: Init,
        ) -> Result<P, ManagerError> {
            create(self.remote(), kind, tag, init, self.object_name())
        }

        /// A new shared list.
        pub fn list<T: Serialize + DeserializeOwned>(&self) -> Result<ListProxy<T>, ManagerError> {
            self.list_from(std::iter::empty())
        }

        /// A new shared list holding `values`.
        pub fn list_from<T: Serialize + DeserializeOwned>(
            &self,
            values: impl IntoIterator<Item = T>,
        ) -> Result<ListProxy<T>, ManagerError> {
            self.make_holding(Kind::List, values)
        }

        /// A new shared dictionary.
        pub fn dict<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned>(
            &self,
        ) -> Result<DictProxy<K, V>, ManagerError> {
            self.make(Kind::Dict, Init::Pairs(Vec::new()))
        }

        /// A new namespace (named attributes of any serde value).
        pub fn namespace(&self) -> Result<NamespaceProxy, ManagerError> {
            self.make(Kind::Namespace, Init::Nothing)
        }

        /// A new shared value.
        pub fn value<T: Serialize + DeserializeOwned>(
            &self,
            value: T,
        ) -> Result<ValueProxy<T>, ManagerError> {
            let e = client::encode_elem(self.remote(), &value)?;
            self.make(Kind::Value, Init::One(e))
        }

        /// A new fixed-length shared array holding `values`.
        pub fn array<T: Serialize + DeserializeOwned>(
            &self,
            values: impl IntoIterator<Item = T>,
        ) -> Result<ArrayProxy<T>, ManagerError> {
            self.make_holding(Kind::Array, values)
        }

        /// A new unbounded queue.
        pub fn queue<T: Serialize + DeserializeOwned>(
            &self,
        ) -> Result<QueueProxy<T>, ManagerError> {
            self.make(Kind::Queue, Init::Size(0))
        }

        /// A new queue holding at most `capacity` items (`put` waits for room).
        pub fn bounded_queue<T: Serialize + DeserializeOwned>(
            &self,
            capacity: usize,
        ) -> Result<QueueProxy<T>, ManagerError> {
            self.make(Kind::Queue, Init::Size(capacity.max(1) as u64))
        }

        /// A new joinable queue (`task_done` / `join`).
        pub fn joinable_queue<T: Serialize + DeserializeOwned>(
            &self,
        ) -> Result<JoinableQueueProxy<T>, ManagerError> {
            self.make(Kind::JoinableQueue, Init::Size(0))
        }

        primitive_creators! {
            /// A new lock.
            lock() -> LockProxy = (Kind::Lock, Init::Nothing);
            /// A new reentrant lock.
            rlock() -> RLockProxy = (Kind::RLock, Init::Nothing);
            /// A new semaphore with `value` units.
            semaphore(value: usize) -> SemaphoreProxy = (Kind::Semaphore, Init::Size(value as u64));
            /// A new bounded semaphore with `value` units.
            bounded_semaphore(value: usize) -> BoundedSemaphoreProxy =
                (Kind::BoundedSemaphore, Init::Size(value as u64));
            /// A new condition variable (over a reentrant lock).
            condition() -> ConditionProxy = (Kind::Condition, Init::Nothing);
            /// A new event.
            event() -> EventProxy = (Kind::Event, Init::Nothing);
            /// A new barrier for `parties` parties.
            barrier(parties: usize) -> BarrierProxy = (Kind::Barrier, Init::Size(parties as u64));
        }

        /// A new object of the registered custom type `T`, starting as `value`.
        pub fn create<T: SharedType>(&self, value: T) -> Result<T::Proxy, ManagerError> {
            let bytes = processing_core::codec::encode(&value)?;
            self.create_kind(
                Kind::Custom,
                <T::Proxy as Proxy>::tag(),
                Init::Custom(bytes),
            )
        }

        /// A new object of `kind` (a list or an array) holding `values`.
        fn make_holding<P: Proxy, T: Serialize>(
            &self,
            kind: Kind,
            values: impl IntoIterator<Item = T>,
        ) -> Result<P, ManagerError> {
            let elems = values
                .into_iter()
                .map(|v| client::encode_elem(self.remote(), &v))
                .collect::<Result<Vec<Elem>, _>>()?;
            self.make(kind, Init::Elems(elems))
        }
    };
}

impl Manager {
    /// Starts a manager server in a child process and returns its owner.
    ///
    /// The server is a daemonic child: it stops when this manager is shut down or dropped,
    /// and when this process exits or dies.
    pub fn start() -> Result<Manager, ManagerError> {
        ManagerBuilder::new().start()
    }

    /// Starts a manager server on a thread of this process (see
    /// [`ManagerBuilder::start_in_thread`]).
    pub fn start_in_thread() -> Result<Manager, ManagerError> {
        ManagerBuilder::new().start_in_thread()
    }

    /// A builder, to register custom types or set an authkey.
    pub fn builder() -> ManagerBuilder<()> {
        ManagerBuilder::new()
    }

    /// Serves a manager on `address` with `authkey` in this thread until a client shuts it
    /// down (see [`ManagerBuilder::serve`]).
    pub fn serve(
        address: impl Into<Address>,
        authkey: impl Into<Vec<u8>>,
    ) -> Result<(), ManagerError> {
        ManagerBuilder::new().authkey(authkey).serve(address)
    }

    /// Connects to a manager served at `address` with `authkey`; a wrong key is
    /// [`ManagerError::Auth`].
    pub fn connect(
        address: impl Into<Address>,
        authkey: impl Into<Vec<u8>>,
    ) -> Result<Manager, ManagerError> {
        ManagerBuilder::new().authkey(authkey).connect(address)
    }

    /// The server's address.
    pub fn address(&self) -> &Address {
        &self.remote.address
    }

    /// The server process's id, for a manager started with [`Manager::start`].
    pub fn server_pid(&self) -> Option<u32> {
        match &self.owner.as_ref()?.server {
            ServerHandle::Process(Some(p)) => p.pid(),
            _ => None,
        }
    }

    /// Whether this handle owns (started) its server.
    pub fn is_owner(&self) -> bool {
        self.owner.is_some()
    }

    /// The number of live objects on the server (each freed when its last proxy is dropped).
    pub fn live_objects(&self) -> Result<usize, ManagerError> {
        match client::control(&self.remote, &ControlRequest::Objects)? {
            ControlReply::Objects(n) => Ok(n as usize),
            _ => Err(unexpected_reply("manager")),
        }
    }

    /// Creates or finds the object called `name`: objects made through the returned scope
    /// are shared by name, so that clients of a remote manager can meet at one queue.
    ///
    /// ```
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let a = m.named("jobs").queue::<u32>().unwrap();
    /// let b = m.named("jobs").queue::<u32>().unwrap();
    /// a.put(7).unwrap();
    /// assert_eq!(b.get().unwrap(), 7);
    /// assert!(m.named("jobs").list::<u32>().is_err()); // another type under that name
    /// ```
    pub fn named<'m>(&'m self, name: &'m str) -> Named<'m> {
        Named {
            manager: self,
            name,
        }
    }

    /// The object called `name`, if one exists, as proxy type `P` (an error if it has another
    /// type).
    pub fn lookup<P: Proxy>(&self, name: &str) -> Result<Option<P>, ManagerError> {
        let request = ControlRequest::Lookup {
            name: name.to_string(),
            tag: P::tag(),
        };
        let ControlReply::Found(id) = client::control(&self.remote, &request)? else {
            return Err(unexpected_reply("manager"));
        };
        Ok(id.map(|id| P::from_raw(RawProxy::adopt(self.remote.clone(), id))))
    }

    /// Stops the server. For a started manager: the server process (or thread) ends and this
    /// waits for it. For a connected one: asks the remote server to stop serving.
    /// Proxies used afterwards return [`ManagerError::Disconnected`].
    pub fn shutdown(mut self) -> Result<(), ManagerError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ManagerError> {
        let Some(mut owner) = self.owner.take() else {
            return client::control(&self.remote, &ControlRequest::Shutdown).map(drop);
        };
        if let Some(mut control) = owner.control.take() {
            let request = processing_core::codec::encode(&ControlRequest::Shutdown)?;
            if control.send(&[&0u64.to_le_bytes(), &request]).is_ok() {
                let _ = control
                    .stream
                    .set_read_timeout(Some(Duration::from_secs(5)));
                let _ = control.recv(Duration::ZERO);
            }
        }
        owner.server.finish(Duration::from_secs(5));
        sys::remove_local_address(&self.remote.address);
        client::forget_all(&self.remote);
        Ok(())
    }

    fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// Objects created through the manager itself are unnamed.
    fn object_name(&self) -> Option<&str> {
        None
    }

    creators!();
}

impl Drop for Manager {
    fn drop(&mut self) {
        if self.owner.is_some() {
            let _ = self.stop();
        }
    }
}

/// Creates objects under a name (see [`Manager::named`]): the first creation makes the object,
/// later ones (from any client) return a proxy of the same object; asking with another type
/// is a remote `TypeMismatch` error.
#[derive(Debug)]
pub struct Named<'m> {
    manager: &'m Manager,
    name: &'m str,
}

impl Named<'_> {
    fn remote(&self) -> &Arc<Remote> {
        &self.manager.remote
    }

    fn object_name(&self) -> Option<&str> {
        Some(self.name)
    }

    creators!();
}

/// Creates an object on the server (or finds the one called `name`) and wraps it in `P`.
fn create<P: Proxy>(
    remote: &Arc<Remote>,
    kind: Kind,
    tag: String,
    init: Init,
    name: Option<&str>,
) -> Result<P, ManagerError> {
    let request = ControlRequest::Create {
        kind,
        tag,
        init,
        name: name.map(str::to_string),
    };
    match client::control(remote, &request)? {
        ControlReply::Created(id) => Ok(P::from_raw(RawProxy::adopt(remote.clone(), id))),
        _ => Err(unexpected_reply("manager")),
    }
}
