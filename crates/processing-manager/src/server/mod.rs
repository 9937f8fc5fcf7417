//! The manager server: accepts connections, authenticates them, and serves each on its own
//! thread (so a blocking call, such as a queue `get`, blocks only its caller).

pub(crate) mod objects;
mod registry;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use processing_core::codec::{decode, encode};

use crate::address::Address;
use crate::calls::{decode_request, ControlReply, ControlRequest};
use crate::custom::TypeTable;
use crate::error::{ManagerError, RemoteError, RemoteErrorKind};
use crate::protocol::{self, Elem, Hello, Welcome, STATUS_ERR, STATUS_OK};
use crate::sys::{self, Listener, Mailbox, Stream};
use crate::wire::Framed;
use objects::{Init, Kind, Taken, Undo};
use registry::{Holder, Registry};

/// How long a connection's handler polls for the next request before blocking: clients in a
/// loop of calls send the next one within microseconds.
const SERVER_SPIN: Duration = Duration::from_micros(60);

/// The most connections that may be authenticating at once. A new one beyond it disconnects
/// the oldest (a legitimate client authenticates within milliseconds; a peer that connects and
/// stays silent is the one that waits), so idle peers cost at most this many threads.
const MAX_PENDING: usize = 32;

/// How long the reaper sleeps when nothing is authenticating (it also wakes at every new
/// connection and when the server stops).
const REAPER_IDLE: Duration = Duration::from_secs(1);

/// What a server needs to know when it starts.
pub(crate) struct ServerConfig {
    pub(crate) authkey: Vec<u8>,
    pub(crate) owner_token: Option<u64>,
    pub(crate) types: TypeTable,
}

/// What the connection loop does after answering a control call.
#[derive(Default)]
struct After {
    stop: bool,
    mailbox: Option<Mailbox>,
}

/// A running server (shared by the accept loop and the connection threads).
pub(crate) struct Server {
    config: ServerConfig,
    registry: Registry,
    instance: u64,
    address: Address,
    stopping: AtomicBool,
    conns: Mutex<HashMap<u64, Stream>>,
    next_conn: AtomicU64,
    named: Mutex<()>,
    /// Connections still authenticating, oldest first: (connection number, a clone to cut it,
    /// its deadline).
    pending: Mutex<std::collections::VecDeque<(u64, Stream, Instant)>>,
    /// Wakes the reaper: a connection started authenticating, or the server stops.
    pending_cv: Condvar,
}

/// The context of one call on the server.
pub(crate) struct Cx<'a> {
    registry: &'a Registry,
    /// The connection making the call: the owner identity of locks.
    pub(crate) conn: u64,
    /// The life of the client process making the call: it holds the references it is given.
    holder: &'a Holder,
    stream: &'a Stream,
    stopping: &'a AtomicBool,
    deferred: RefCell<Vec<u64>>,
    /// References the call grants the client besides those in its reply (a created object's).
    granted: RefCell<Vec<u64>>,
    /// What the call took out of its object to send it (a queue's item, a list's popped
    /// element, a dict's removed value), and how to undo that: put back when the reply cannot
    /// be delivered.
    unsent: RefCell<Option<Taken>>,
}

impl Cx<'_> {
    /// Takes references for the proxies embedded in a value about to be stored.
    pub(crate) fn adopt(&self, e: &Elem) -> Result<(), RemoteError> {
        self.adopt_all(std::slice::from_ref(e))
    }

    /// [`Cx::adopt`] for several values: all or nothing.
    pub(crate) fn adopt_all(&self, elems: &[Elem]) -> Result<(), RemoteError> {
        let mut taken = Vec::new();
        for id in elems.iter().flat_map(|e| e.refs.iter()) {
            if let Err(err) = self.registry.incref(*id) {
                self.deferred.borrow_mut().extend(taken);
                return Err(err);
            }
            taken.push(*id);
        }
        Ok(())
    }

    /// Adds references for a copy of a stored value that is sent to the client.
    pub(crate) fn share(&self, e: &Elem) {
        for id in &e.refs {
            let _ = self.registry.incref(*id);
        }
    }

    /// [`Cx::share`] for several values.
    pub(crate) fn share_all<'e>(&self, elems: impl IntoIterator<Item = &'e Elem>) {
        for e in elems {
            self.share(e);
        }
    }

    /// Releases the references of a value leaving the store (after the call, outside any
    /// object's lock).
    pub(crate) fn release(&self, e: &Elem) {
        self.deferred.borrow_mut().extend(e.refs.iter().copied());
    }

    /// [`Cx::release`] for several values.
    pub(crate) fn release_all(&self, elems: &[Elem]) {
        for e in elems {
            self.release(e);
        }
    }

    /// The client gets one reference on `id` (its process holds it until it gives it back or
    /// ends), booked with the reply.
    pub(crate) fn grant(&self, id: u64) {
        self.granted.borrow_mut().push(id);
    }

    /// `item` was taken out of the called object to be sent in the reply: if the reply cannot
    /// be delivered (the client is gone), the object takes it back as `undo` says
    /// ([`objects::Object::put_back`]), as if the call had not happened. The references `undo`
    /// holds (a dict key's) are released once the reply is delivered.
    pub(crate) fn sending(&self, item: Elem, undo: Undo) {
        *self.unsent.borrow_mut() = Some(Taken { item, undo });
    }

    /// An error when the call should give up waiting: the server is stopping or the client
    /// closed its connection.
    pub(crate) fn check_cancelled(&self) -> Result<(), RemoteError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(RemoteError::new(
                RemoteErrorKind::ShuttingDown,
                "the manager is shutting down",
            ));
        }
        if sys::peer_closed(self.stream) {
            return Err(RemoteError::new(
                RemoteErrorKind::Refused,
                "the client went away",
            ));
        }
        Ok(())
    }
}

impl Server {
    /// Binds `address` and prepares a server; [`Server::run`] then serves it.
    pub(crate) fn bind(
        address: &Address,
        config: ServerConfig,
    ) -> Result<(Arc<Server>, Listener), ManagerError> {
        let (listener, bound) = sys::bind(address).map_err(|e| {
            ManagerError::Address(processing_core::ErrorContext::with_source(
                format!("cannot bind {address}"),
                e,
            ))
        })?;
        let instance = u64::from_le_bytes(
            processing_core::authkey::random_bytes(8)
                .try_into()
                .unwrap_or([7; 8]),
        ) | 1;
        let server = Server {
            config,
            registry: Registry::new(),
            instance,
            address: bound,
            stopping: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            named: Mutex::new(()),
            pending: Mutex::new(std::collections::VecDeque::new()),
            pending_cv: Condvar::new(),
        };
        Ok((Arc::new(server), listener))
    }

    /// The address the server is bound to (port 0 resolved).
    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    /// Accepts connections until [`Server::stop`].
    pub(crate) fn run(self: &Arc<Self>, listener: Listener) {
        let reaper = {
            let server = Arc::clone(self);
            std::thread::Builder::new()
                .name("manager-reaper".into())
                .stack_size(128 * 1024)
                .spawn(move || server.reap())
        };
        if let Err(e) = &reaper {
            // The read timeout of each authentication read still bounds silent peers.
            tracing::debug!("manager: cannot start the handshake reaper: {e}");
        }
        let mut failures = 0u32;
        while !self.stopping.load(Ordering::Acquire) {
            match listener.accept() {
                Ok(stream) => {
                    failures = 0;
                    if self.stopping.load(Ordering::Acquire) {
                        break;
                    }
                    let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
                    self.admit(conn, &stream);
                    let server = Arc::clone(self);
                    let spawned = std::thread::Builder::new()
                        .name("manager-conn".into())
                        .spawn(move || server.serve_connection(conn, stream));
                    if let Err(e) = spawned {
                        self.settled(conn);
                        tracing::warn!("manager: cannot start a connection thread: {e}");
                    }
                }
                Err(e) => {
                    // Transient failures (EMFILE, ECONNABORTED): back off briefly.
                    failures += 1;
                    tracing::debug!("manager: accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(u64::from(failures.min(50))));
                }
            }
        }
        drop(listener);
        // Wake every connection thread: blocked reads see end of stream, waits see `stopping`.
        for (_, s) in self.conns.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            s.shutdown();
        }
        for (_, s, _) in self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            s.shutdown();
        }
        self.pending_cv.notify_all();
        if let Ok(reaper) = reaper {
            let _ = reaper.join();
        }
    }

    /// The reaper thread: cuts off a connection still authenticating past its deadline (the
    /// read timeout alone would let a peer that trickles bytes hold on far longer).
    fn reap(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        while !self.stopping.load(Ordering::Acquire) {
            let now = Instant::now();
            // One deadline for all, in arrival order: the front expires first.
            while pending.front().is_some_and(|(_, _, d)| *d <= now) {
                if let Some((_, s, _)) = pending.pop_front() {
                    tracing::debug!("manager: a connection passed its authentication deadline");
                    s.shutdown();
                }
            }
            let wait = pending
                .front()
                .map_or(REAPER_IDLE, |(_, _, d)| d.saturating_duration_since(now));
            pending = self
                .pending_cv
                .wait_timeout(pending, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Asks the server to stop: no new connections, every connection closed.
    pub(crate) fn stop(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        for s in self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            s.shutdown();
        }
        // Wake the accept loop with a connection of our own.
        let _ = sys::connect(&wake_address(&self.address), Duration::from_secs(1));
    }

    /// Records a connection that starts authenticating; beyond [`MAX_PENDING`], the oldest
    /// still authenticating is cut off.
    fn admit(&self, conn: u64, stream: &Stream) {
        let Ok(clone) = stream.try_clone() else {
            return;
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        while pending.len() >= MAX_PENDING {
            if let Some((_, oldest, _)) = pending.pop_front() {
                oldest.shutdown();
            }
        }
        let now = Instant::now();
        let deadline = now.checked_add(crate::auth::AUTH_TIMEOUT).unwrap_or(now);
        pending.push_back((conn, clone, deadline));
        drop(pending);
        self.pending_cv.notify_one();
    }

    /// The connection finished authenticating (or failed): it no longer counts as pending.
    fn settled(&self, conn: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = pending.iter().position(|(c, _, _)| *c == conn) {
            pending.remove(at);
        }
    }

    fn serve_connection(self: Arc<Self>, conn: u64, stream: Stream) {
        let mut f = Framed::new(stream);
        let authenticated = crate::auth::server_side(&mut f, &self.config.authkey)
            .map_err(|e| format!("connection refused: {e}"));
        // Settled before the handshake's answer lets the client go on: a connection still
        // counted as pending after its client was told it is in could be cut as the oldest
        // pending one by later arrivals (the owner's own connection, whose end stops the
        // server).
        self.settled(conn);
        let authenticated = authenticated.and_then(|()| {
            self.handshake(&mut f)
                .map_err(|e| format!("handshake failed: {e}"))
        });
        let hello = match authenticated {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!("manager: {e}");
                return;
            }
        };
        if let Ok(clone) = f.stream.try_clone() {
            self.conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(conn, clone);
        }
        if self.stopping.load(Ordering::Acquire) {
            f.stream.shutdown();
        }
        let is_owner = hello.owner_token.is_some() && hello.owner_token == self.config.owner_token;
        // The life of the client process this connection belongs to: it holds the references
        // the connection's replies give the client.
        let holder = self.registry.attach(hello.process, hello.anchor);
        let mut request = Vec::with_capacity(256);
        let mut after = After::default();
        let mut mailbox: Option<Mailbox> = None;
        loop {
            let received = match mailbox.as_mut() {
                None => f.recv(SERVER_SPIN).map(|frame| {
                    request.clear();
                    request.extend_from_slice(frame);
                }),
                Some(mb) => {
                    let stream = &f.stream;
                    let stopping = &self.stopping;
                    let cancelled = || {
                        (stopping.load(Ordering::Acquire) || sys::peer_closed(stream))
                            .then(|| std::io::Error::from(std::io::ErrorKind::ConnectionAborted))
                    };
                    match mb.read(&mut request, cancelled) {
                        Ok(Some(_)) => Ok(()),
                        Ok(None) => f.recv(Duration::ZERO).map(|frame| {
                            request.clear();
                            request.extend_from_slice(frame);
                        }),
                        Err(e) => Err(e),
                    }
                }
            };
            if received.is_err() {
                break;
            }
            let cx = Cx {
                registry: &self.registry,
                conn,
                holder: &holder,
                stream: &f.stream,
                stopping: &self.stopping,
                deferred: RefCell::new(Vec::new()),
                granted: RefCell::new(Vec::new()),
                unsent: RefCell::new(None),
            };
            let mut target: Option<Arc<dyn objects::Object>> = None;
            // A panic while serving one call (a bug, or an argument no check foresaw) fails that
            // call; the connection and the server go on.
            let (result, sent) = protocol::collect_sent_refs(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    protocol::parse_request(&request).and_then(|(object, payload)| {
                        if object == 0 {
                            let request = decode_request("the manager", payload)?;
                            self.control(&cx, request, &mut after)
                                .and_then(|reply| encode(&reply).map_err(RemoteError::bad_args))
                        } else {
                            let object = self.registry.get(object)?;
                            let reply = object.call(&cx, payload);
                            target = Some(object);
                            reply
                        }
                    })
                }))
                .unwrap_or_else(|payload| Err(panicked(payload.as_ref())))
            });
            // The references of values sent back are the client's now (until it gives them
            // back, or its process ends). They are booked before the reply leaves, so that the
            // client cannot give one back before it is booked.
            let unsent = cx.unsent.take();
            #[cfg(test)]
            if unsent.is_some() {
                if let Ok((object, _)) = protocol::parse_request(&request) {
                    tests::reply_gate(&self.address, object);
                }
            }
            let mut booked = Vec::new();
            if result.is_ok() {
                booked = sent;
                booked.extend(cx.granted.take());
            }
            let settling = !(booked.is_empty() && unsent.is_none());
            let live = !settling || self.registry.begin_reply(&holder, &booked);
            for id in cx.deferred.into_inner() {
                self.registry.decref(id);
            }
            if !live {
                // The client process ended while this call ran (its last anchor closed): what
                // the reply would give it goes back where it came from, and the connection,
                // whose peer is gone, closes.
                self.take_back(target.as_deref(), unsent, &booked);
                break;
            }
            let err_payload;
            let parts: [&[u8]; 2] = match &result {
                Ok(payload) => [&[STATUS_OK], payload],
                Err(err) => {
                    err_payload = encode(err).unwrap_or_default();
                    [&[STATUS_ERR], &err_payload]
                }
            };
            // A reply that carries something taken out of an object is not sent to a client
            // known to be gone (a shared-memory mailbox would accept it all the same).
            let gone = unsent.is_some() && sys::peer_closed(&f.stream);
            let sent = match mailbox.as_mut() {
                _ if gone => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
                Some(mb) => {
                    let fits = mb.write(&parts);
                    mb.publish();
                    if fits {
                        Ok(())
                    } else {
                        f.send(&parts)
                    }
                }
                None => f.send(&parts),
            };
            if settling {
                if sent.is_err() && unsent.is_some() {
                    // Not delivered: the object takes back what it gave.
                    self.registry.unbook(&holder, &booked);
                    self.take_back(target.as_deref(), unsent, &booked);
                } else if let Some(taken) = unsent {
                    // Delivered: the undo is not needed, nor what it held.
                    for &id in taken.undo.refs() {
                        self.registry.decref(id);
                    }
                }
                self.registry.end_reply(&holder);
            }
            if sent.is_err() || after.stop {
                break;
            }
            // The reply to the upgrade went on the socket; from now on the mailbox carries calls.
            if let Some(mb) = after.mailbox.take() {
                mailbox = Some(mb);
            }
        }
        let stop_after = after.stop;
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&conn);
        for object in self.registry.all() {
            object.on_disconnect(conn);
        }
        // The last anchor closing ends the client process's life here: everything it held is
        // given back.
        self.registry.detach(&holder, hello.anchor);
        if is_owner || stop_after {
            self.stop();
        }
    }

    fn handshake(&self, f: &mut Framed) -> Result<Hello, String> {
        f.stream
            .set_read_timeout(Some(crate::auth::AUTH_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let frame = f.recv(Duration::ZERO).map_err(|e| e.to_string())?.to_vec();
        let checked = protocol::check_versioned(&frame).and_then(|payload| {
            let hello: Hello = decode(payload).map_err(|e| format!("malformed hello: {e}"))?;
            for t in &hello.types {
                if let Some(mine) = self.config.types.identity(&t.name) {
                    if mine.fingerprint != t.fingerprint {
                        return Err(format!(
                            "custom type `{}` differs between client and server (fingerprint {:016x} here, {:016x} there): another build or another definition",
                            t.name, mine.fingerprint, t.fingerprint
                        ));
                    }
                }
            }
            Ok(hello)
        });
        match checked {
            Ok(hello) => {
                let welcome = Welcome {
                    instance: self.instance,
                    types: self.config.types.identities(),
                };
                let payload = encode(&welcome).map_err(|e| e.to_string())?;
                let mut body = vec![STATUS_OK];
                body.extend_from_slice(&payload);
                f.send(&[&protocol::versioned(&body)])
                    .map_err(|e| e.to_string())?;
                f.stream.set_read_timeout(None).map_err(|e| e.to_string())?;
                Ok(hello)
            }
            Err(reason) => {
                let mut body = vec![STATUS_ERR];
                body.extend_from_slice(reason.as_bytes());
                let _ = f.send(&[&protocol::versioned(&body)]);
                Err(reason)
            }
        }
    }

    fn control(
        &self,
        cx: &Cx<'_>,
        request: ControlRequest,
        after: &mut After,
    ) -> Result<ControlReply, RemoteError> {
        match request {
            ControlRequest::Create {
                kind,
                tag,
                init,
                name,
            } => {
                let id = match name {
                    None => self.create(cx, kind, tag, init)?,
                    Some(name) => {
                        let _serial = self.named.lock().unwrap_or_else(|e| e.into_inner());
                        match self.registry.lookup_name(&name) {
                            Some(id) => {
                                self.check_tag(id, &tag, &name)?;
                                id
                            }
                            None => {
                                let id = self.create(cx, kind, tag, init)?;
                                self.registry.bind_name(&name, id)
                            }
                        }
                    }
                };
                cx.grant(id);
                Ok(ControlReply::Created(id))
            }
            ControlRequest::Lookup { name, tag } => match self.registry.lookup_name(&name) {
                Some(id) => {
                    self.check_tag(id, &tag, &name)?;
                    cx.grant(id);
                    Ok(ControlReply::Found(Some(id)))
                }
                None => Ok(ControlReply::Found(None)),
            },
            ControlRequest::Incref { id } => {
                self.registry.incref(id)?;
                cx.grant(id);
                Ok(ControlReply::Done)
            }
            ControlRequest::Decref { id } => {
                self.registry.drop_ref(cx.holder, id);
                Ok(ControlReply::Done)
            }
            ControlRequest::Objects => Ok(ControlReply::Objects(self.registry.len() as u64)),
            ControlRequest::Shutdown => {
                after.stop = true;
                Ok(ControlReply::Done)
            }
            ControlRequest::Mailbox { path } => {
                let path: std::path::PathBuf = path.into();
                // Only a mailbox file inside this server's own private directory.
                let ours = match &self.address {
                    Address::Local(socket) => {
                        path.parent() == socket.parent()
                            && path
                                .file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with("mb-"))
                    }
                    Address::Tcp(_) => false,
                };
                if !ours {
                    return Err(RemoteError::new(
                        RemoteErrorKind::Refused,
                        "mailbox outside the server's directory",
                    ));
                }
                let mb = Mailbox::open(&path)
                    .map_err(|e| RemoteError::new(RemoteErrorKind::Refused, e.to_string()))?;
                after.mailbox = Some(mb);
                Ok(ControlReply::Done)
            }
        }
    }

    /// A reply that will not reach its client gives back what it carried: `unsent` (taken out
    /// of `target`) to its object, which undoes the take-out, with the item's references (and
    /// those its undo holds); the other references `booked` for it are released, and so are
    /// those of an item its object does not take back.
    fn take_back(
        &self,
        target: Option<&dyn objects::Object>,
        unsent: Option<Taken>,
        booked: &[u64],
    ) {
        let mut release = booked.to_vec();
        if let Some(taken) = unsent {
            let refs = taken.item.refs.clone();
            let back = match target {
                Some(object) => object.put_back(taken),
                None => Err(taken),
            };
            match back {
                Ok(displaced) => {
                    // The item's references (booked with the reply) are the object's again;
                    // those of what the undo displaced (a swapped-in value) are released.
                    for id in refs {
                        if let Some(at) = release.iter().position(|&r| r == id) {
                            release.swap_remove(at);
                        }
                    }
                    release.extend(displaced);
                }
                // Dropped: the item's references are among those booked; the undo's are not.
                Err(dropped) => release.extend_from_slice(dropped.undo.refs()),
            }
        }
        for id in release {
            self.registry.decref(id);
        }
    }

    fn check_tag(&self, id: u64, tag: &str, name: &str) -> Result<(), RemoteError> {
        let object = self.registry.get(id)?;
        if object.tag() != tag {
            self.registry.decref(id);
            return Err(RemoteError::new(
                RemoteErrorKind::TypeMismatch,
                format!("`{name}` is a {}, not a {tag}", object.tag()),
            ));
        }
        Ok(())
    }

    fn create(&self, cx: &Cx<'_>, kind: Kind, tag: String, init: Init) -> Result<u64, RemoteError> {
        use objects::*;
        let bad = || RemoteError::bad_args("initial value does not fit the kind of object");
        let object: Arc<dyn Object> = match (kind, init) {
            (Kind::List, Init::Elems(es)) => {
                cx.adopt_all(&es)?;
                Arc::new(ListObj::new(tag, es))
            }
            (Kind::Array, Init::Elems(es)) => {
                cx.adopt_all(&es)?;
                Arc::new(ArrayObj::new(tag, es))
            }
            (Kind::Dict, Init::Pairs(pairs)) => {
                for (k, v) in &pairs {
                    cx.adopt(k)?;
                    cx.adopt(v)?;
                }
                Arc::new(DictObj::new(tag, cx, pairs))
            }
            (Kind::Value, Init::One(e)) => {
                cx.adopt(&e)?;
                Arc::new(ValueObj::new(tag, e))
            }
            (Kind::Namespace, _) => Arc::new(NamespaceObj::new()),
            (Kind::Queue, Init::Size(n)) => Arc::new(QueueObj::new(tag, n as usize, false)),
            (Kind::JoinableQueue, Init::Size(n)) => Arc::new(QueueObj::new(tag, n as usize, true)),
            (Kind::Lock, _) => Arc::new(LockObj::new(false)),
            (Kind::RLock, _) => Arc::new(LockObj::new(true)),
            (Kind::Semaphore, Init::Size(n)) => Arc::new(SemaphoreObj::new(n, false)),
            (Kind::BoundedSemaphore, Init::Size(n)) => Arc::new(SemaphoreObj::new(n, true)),
            (Kind::Condition, _) => Arc::new(ConditionObj::new()),
            (Kind::Event, _) => Arc::new(EventObj::new()),
            (Kind::Barrier, Init::Size(n)) => Arc::new(BarrierObj::new(n)),
            (Kind::Custom, Init::Custom(bytes)) => {
                let inner = self.config.types.construct(&tag, &bytes)?;
                Arc::new(CustomObj::new(tag, inner))
            }
            _ => return Err(bad()),
        };
        Ok(self.registry.insert(object))
    }
}

/// The error of a call whose handler panicked.
fn panicked(payload: &(dyn std::any::Any + Send)) -> RemoteError {
    let message = processing_core::panic_message(payload);
    RemoteError::new(
        RemoteErrorKind::Panicked,
        format!("the server failed while serving this call: {message}"),
    )
}

/// The address to connect to in order to wake our own accept loop (an unspecified IP is not
/// connectable everywhere).
fn wake_address(address: &Address) -> Address {
    if let Address::Tcp(s) = address {
        if let Ok(mut sa) = s.parse::<std::net::SocketAddr>() {
            if sa.ip().is_unspecified() {
                sa.set_ip(if sa.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
                return Address::Tcp(sa.to_string());
            }
        }
    }
    address.clone()
}
