//! The client side: one connection per (server, process, thread), the call path with its
//! bounded spin, and the bookkeeping of proxy references embedded in values.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use processing_core::codec::{decode, encode};
use processing_core::CodecError;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::address::Address;
use crate::calls::{ControlReply, ControlRequest};
use crate::error::{ManagerError, RemoteError};
use crate::protocol::{self, Elem, Hello, TypeIdentity, Welcome, STATUS_OK};
use crate::sys::{self, Mailbox};
use crate::wire::Framed;

/// How long a client polls for a reply before blocking. Most calls are answered within a few
/// microseconds; a blocking wake-up across cores costs 25–40 µs on small VMs.
const CLIENT_SPIN: Duration = Duration::from_micros(100);

/// How long connecting to a TCP server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a proxy's server is and how to talk to it. Shared by every proxy of one manager.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Remote {
    pub(crate) address: Address,
    /// The server run the proxy belongs to (0: accept any, used before the first handshake).
    pub(crate) instance: u64,
    /// `None`: the process's authkey (children inherit it); `Some`: an explicit key given to
    /// `Manager::connect`, which travels with the proxy.
    pub(crate) authkey: Option<Vec<u8>>,
    pub(crate) types: Vec<TypeIdentity>,
}

impl Remote {
    fn key(&self) -> Vec<u8> {
        match &self.authkey {
            Some(k) => k.clone(),
            None => processing_core::authkey::get().to_vec(),
        }
    }
}

/// Opens an authenticated connection and performs the handshake.
pub(crate) fn open(
    address: &Address,
    key: &[u8],
    owner_token: Option<u64>,
    types: &[TypeIdentity],
) -> Result<(Framed, Welcome), ManagerError> {
    open_as(address, key, owner_token, types, process_id(), false)
}

/// A connection to `address` (with the process's authkey) that says it belongs to client
/// process `process`, an anchor or not: the tests of the server play client processes with it.
#[cfg(test)]
pub(crate) fn open_for_test(address: &Address, process: u64, anchor: bool) -> Framed {
    let key = processing_core::authkey::get().to_vec();
    open_as(address, &key, None, &[], process, anchor)
        .expect("connect")
        .0
}

/// [`open`], saying whether the connection is this process's anchor (see [`ensure_anchor`]).
fn open_as(
    address: &Address,
    key: &[u8],
    owner_token: Option<u64>,
    types: &[TypeIdentity],
    process: u64,
    anchor: bool,
) -> Result<(Framed, Welcome), ManagerError> {
    let stream = sys::connect(address, CONNECT_TIMEOUT).map_err(|e| {
        ManagerError::disconnected(format!("cannot connect to the manager at {address}"), e)
    })?;
    let mut f = Framed::new(stream);
    crate::auth::client_side(&mut f, key)?;
    let hello = Hello {
        owner_token,
        types: types.to_vec(),
        process,
        anchor,
    };
    f.send(&[&protocol::versioned(&encode(&hello)?)])
        .map_err(|e| {
            ManagerError::disconnected(format!("handshake with the manager at {address}"), e)
        })?;
    f.stream
        .set_read_timeout(Some(crate::auth::AUTH_TIMEOUT))
        .map_err(|e| {
            ManagerError::disconnected(format!("handshake with the manager at {address}"), e)
        })?;
    let frame = f
        .recv(Duration::ZERO)
        .map_err(|e| {
            ManagerError::disconnected(format!("handshake with the manager at {address}"), e)
        })?
        .to_vec();
    f.stream.set_read_timeout(None).map_err(|e| {
        ManagerError::disconnected(format!("handshake with the manager at {address}"), e)
    })?;
    let body =
        protocol::check_versioned(&frame).map_err(|m| ManagerError::Incompatible(m.into()))?;
    let Some((&status, payload)) = body.split_first() else {
        return Err(ManagerError::Incompatible("empty handshake reply".into()));
    };
    if status != STATUS_OK {
        return Err(ManagerError::Incompatible(
            String::from_utf8_lossy(payload).into_owned().into(),
        ));
    }
    let welcome: Welcome = decode(payload).map_err(|e| {
        ManagerError::Incompatible(processing_core::ErrorContext::with_source(
            "malformed welcome",
            e,
        ))
    })?;
    for theirs in &welcome.types {
        if let Some(mine) = types.iter().find(|t| t.name == theirs.name) {
            if mine.fingerprint != theirs.fingerprint {
                return Err(ManagerError::Incompatible(format!(
                    "custom type `{}` differs between client and server: another build or another definition",
                    theirs.name
                ).into()));
            }
        }
    }
    Ok((f, welcome))
}

struct Conn {
    framed: Framed,
    mailbox: Option<Mailbox>,
    reply: Vec<u8>,
    pid: u32,
}

/// Moves a local connection onto a shared-memory mailbox (where the platform has one).
fn upgrade(address: &Address, framed: &mut Framed) -> Option<Mailbox> {
    let Address::Local(socket) = address else {
        return None;
    };
    let path = sys::mailbox_path(socket)?;
    let mailbox = Mailbox::create(&path).ok()?;
    let upgraded = (|| {
        let request = encode(&ControlRequest::Mailbox {
            path: path.to_string_lossy().into_owned(),
        })
        .ok()?;
        framed.send(&[&0u64.to_le_bytes(), &request]).ok()?;
        let reply = framed.recv(Duration::ZERO).ok()?;
        (reply.first() == Some(&STATUS_OK)).then_some(())
    })();
    let _ = std::fs::remove_file(&path);
    upgraded.map(|()| mailbox)
}

type ConnKey = (Address, u64);

/// A random id of this process, new in a forked child: the server books the references this
/// process holds under it.
fn process_id() -> u64 {
    static ID: Mutex<Option<(u32, u64)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut id = ID.lock().unwrap_or_else(|e| e.into_inner());
    match *id {
        Some((p, token)) if p == pid => token,
        _ => {
            let token = u64::from_le_bytes(
                processing_core::authkey::random_bytes(8)
                    .try_into()
                    .unwrap_or([5; 8]),
            ) ^ u64::from(pid);
            *id = Some((pid, token));
            token
        }
    }
}

/// Each process's anchor connection per server run: it makes no calls and stays open while
/// the process lives (statics are never dropped), so the server gives back everything the
/// process held exactly when the process is gone, whichever threads' connections came and
/// went meanwhile.
static ANCHORS: Mutex<Vec<(ConnKey, u32, Framed)>> = Mutex::new(Vec::new());

/// Opens this process's anchor to `remote`'s server unless it has one.
fn ensure_anchor(remote: &Remote) {
    let key = (remote.address.clone(), remote.instance);
    let pid = std::process::id();
    let mut anchors = ANCHORS.lock().unwrap_or_else(|e| e.into_inner());
    // Anchors inherited through a fork are the parent's: forget them (without closing their
    // socket under the parent's feet, which a copy closing would not do anyway).
    anchors.retain(|(_, p, _)| *p == pid);
    if anchors.iter().any(|(k, _, _)| *k == key) {
        return;
    }
    if let Ok((framed, welcome)) = open_as(
        &remote.address,
        &remote.key(),
        None,
        &remote.types,
        process_id(),
        true,
    ) {
        if remote.instance == 0 || welcome.instance == remote.instance {
            anchors.push((key, pid, framed));
        }
    }
}

thread_local! {
    static CONNS: RefCell<HashMap<ConnKey, Rc<RefCell<Conn>>>> = RefCell::new(HashMap::new());
    static ENCODE_SCOPE: RefCell<Vec<(u64, Vec<u64>)>> = const { RefCell::new(Vec::new()) };
    static DECODE_SCOPE: RefCell<Vec<(u64, Vec<u64>)>> = const { RefCell::new(Vec::new()) };
}

fn connection(remote: &Remote) -> Result<Rc<RefCell<Conn>>, ManagerError> {
    let key = (remote.address.clone(), remote.instance);
    let pid = std::process::id();
    let cached = CONNS
        .try_with(|c| c.borrow().get(&key).cloned())
        .map_err(|_| ManagerError::Disconnected("thread is exiting".into()))?;
    if let Some(conn) = cached {
        if conn.borrow().pid == pid {
            return Ok(conn);
        }
    }
    Ok(cache(remote, open_checked(remote)?))
}

/// Opens a new connection to `remote`'s server run (with this process's anchor).
fn open_checked(remote: &Remote) -> Result<Framed, ManagerError> {
    ensure_anchor(remote);
    let (framed, welcome) = open(&remote.address, &remote.key(), None, &remote.types)?;
    if remote.instance != 0 && welcome.instance != remote.instance {
        return Err(ManagerError::Disconnected(
            format!(
                "the manager at {} was restarted; this proxy belongs to an earlier server",
                remote.address
            )
            .into(),
        ));
    }
    Ok(framed)
}

/// Caches an already open connection (the one `Manager::connect` authenticated with).
pub(crate) fn keep_connection(remote: &Remote, framed: Framed) {
    ensure_anchor(remote);
    cache(remote, framed);
}

/// Moves an authenticated connection onto a mailbox where possible and makes it this thread's
/// connection to `remote`.
fn cache(remote: &Remote, mut framed: Framed) -> Rc<RefCell<Conn>> {
    let mailbox = upgrade(&remote.address, &mut framed);
    let conn = Rc::new(RefCell::new(Conn {
        framed,
        mailbox,
        reply: Vec::new(),
        pid: std::process::id(),
    }));
    let key = (remote.address.clone(), remote.instance);
    let _ = CONNS.try_with(|c| c.borrow_mut().insert(key, conn.clone()));
    conn
}

/// Drops this thread's connection to `remote` (after a shutdown).
pub(crate) fn forget_all(remote: &Remote) {
    forget_connection(remote);
    let key = (remote.address.clone(), remote.instance);
    ANCHORS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(k, _, _)| *k != key);
}

fn forget_connection(remote: &Remote) {
    let _ = CONNS.try_with(|c| {
        c.borrow_mut()
            .remove(&(remote.address.clone(), remote.instance))
    });
}

/// Sends one request and waits for its reply. Returns the reply payload.
pub(crate) fn call_bytes(
    remote: &Remote,
    object: u64,
    request: &[u8],
) -> Result<Vec<u8>, ManagerError> {
    let conn = connection(remote)?;
    let outcome = {
        let Ok(mut conn) = conn.try_borrow_mut() else {
            return Err(ManagerError::Disconnected(
                "re-entrant call on one connection".into(),
            ));
        };
        let id = object.to_le_bytes();
        let parts: [&[u8]; 2] = [&id, request];
        let Conn {
            framed,
            mailbox,
            reply,
            ..
        } = &mut *conn;
        match mailbox.as_mut() {
            None => framed
                .send(&parts)
                .and_then(|()| framed.recv(CLIENT_SPIN).map(|f| f.to_vec())),
            Some(mb) => {
                // A message too large for the slot is announced first, then sent on the socket
                // (the peer reads the socket only once it saw the announcement).
                let fits = mb.write(&parts);
                mb.publish();
                let sent = if fits { Ok(()) } else { framed.send(&parts) };
                sent.and_then(|()| {
                    let stream = &framed.stream;
                    let gone = || {
                        sys::peer_closed(stream)
                            .then(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
                    };
                    match mb.read(reply, gone)? {
                        Some(_) => Ok(std::mem::take(reply)),
                        None => framed.recv(Duration::ZERO).map(|f| f.to_vec()),
                    }
                })
            }
        }
    };
    let frame = match outcome {
        Ok(frame) => frame,
        Err(e) => {
            forget_connection(remote);
            return Err(ManagerError::disconnected(
                format!("the manager at {}", remote.address),
                e,
            ));
        }
    };
    reply_payload(frame)
}

/// The payload of a reply frame, or the remote error it carries.
/// The frame becomes the payload in place (its status byte removed; no second buffer).
fn reply_payload(mut frame: Vec<u8>) -> Result<Vec<u8>, ManagerError> {
    match frame.first() {
        Some(&STATUS_OK) => {
            frame.remove(0);
            Ok(frame)
        }
        Some(_) => Err(ManagerError::Remote(decode::<RemoteError>(&frame[1..])?)),
        None => Err(ManagerError::Disconnected("empty reply".into())),
    }
}

/// The connection of one awaited wait (feature `async`): a socket of its own, opened on first
/// use and kept for the future's later calls, never the thread's connection nor a mailbox.
/// The request is written, then the reply is awaited on the socket's readability through the
/// reactor (`processing_core::aio`), so no thread blocks while the server waits.
///
/// Dropping it (with the future that owns it) closes the socket: the server's wait on that
/// connection sees the client gone and ends without taking anything (the requests sent here
/// take nothing, or, for a barrier, break it as a vanished party does).
#[cfg(feature = "async")]
#[derive(Default)]
pub(crate) struct AsyncCall {
    framed: Option<Framed>,
}

#[cfg(feature = "async")]
impl AsyncCall {
    /// Sends one typed request to `object` on this connection and awaits its typed reply.
    pub(crate) async fn call<Q: Serialize + ?Sized, R: DeserializeOwned>(
        &mut self,
        remote: &Remote,
        object: u64,
        request: &Q,
    ) -> Result<R, ManagerError> {
        let bytes = encode(request)?;
        let reply = self.call_bytes(remote, object, &bytes).await?;
        Ok(decode(&reply)?)
    }

    async fn call_bytes(
        &mut self,
        remote: &Remote,
        object: u64,
        request: &[u8],
    ) -> Result<Vec<u8>, ManagerError> {
        let framed = match &mut self.framed {
            Some(f) => f,
            None => self.framed.insert(open_checked(remote)?),
        };
        let id = object.to_le_bytes();
        let outcome = async {
            framed.send(&[&id, request])?;
            let mut backoff = processing_core::aio::Backoff::new();
            loop {
                if let Some(frame) = framed.try_recv()? {
                    return Ok::<_, std::io::Error>(frame.to_vec());
                }
                sys::readable(&framed.stream, &mut backoff).await?;
            }
        }
        .await;
        match outcome {
            Ok(frame) => reply_payload(frame),
            Err(e) => {
                self.framed = None;
                Err(ManagerError::disconnected(
                    format!("the manager at {}", remote.address),
                    e,
                ))
            }
        }
    }
}

/// Sends one typed request to `object` and decodes its typed reply.
pub(crate) fn call<Q: Serialize + ?Sized, R: DeserializeOwned>(
    remote: &Remote,
    object: u64,
    request: &Q,
) -> Result<R, ManagerError> {
    let bytes = encode(request)?;
    let reply = call_bytes(remote, object, &bytes)?;
    Ok(decode(&reply)?)
}

/// A call to the server itself (object 0).
pub(crate) fn control(
    remote: &Remote,
    request: &ControlRequest,
) -> Result<ControlReply, ManagerError> {
    call(remote, 0, request)
}

/// Gives back one reference on `id` (nothing to report: a server that is gone freed it).
fn decref(remote: &Remote, id: u64) {
    let _ = control(remote, &ControlRequest::Decref { id });
}

/// Takes one more reference on `id`; whether the server granted it.
fn incref(remote: &Remote, id: u64) -> bool {
    matches!(
        control(remote, &ControlRequest::Incref { id }),
        Ok(ControlReply::Done)
    )
}

/// Encodes `value` for storage on `remote`'s server, recording the proxies of that server
/// embedded in it.
pub(crate) fn encode_elem<T: Serialize + ?Sized>(
    remote: &Remote,
    value: &T,
) -> Result<Elem, CodecError> {
    ENCODE_SCOPE.with(|s| s.borrow_mut().push((remote.instance, Vec::new())));
    let bytes = encode(value);
    let refs = ENCODE_SCOPE
        .with(|s| s.borrow_mut().pop())
        .map(|(_, r)| r)
        .unwrap_or_default();
    Ok(Elem {
        bytes: bytes?,
        refs,
    })
}

/// Decodes a value read from `remote`'s server; embedded proxies adopt the references the
/// server took for them, and references nobody claimed are given back.
pub(crate) fn decode_elem<T: DeserializeOwned>(
    remote: &Arc<Remote>,
    elem: Elem,
) -> Result<T, CodecError> {
    DECODE_SCOPE.with(|s| s.borrow_mut().push((remote.instance, elem.refs)));
    let value = decode(&elem.bytes);
    let unclaimed = DECODE_SCOPE
        .with(|s| s.borrow_mut().pop())
        .map(|(_, r)| r)
        .unwrap_or_default();
    for id in unclaimed {
        decref(remote, id);
    }
    value
}

/// The untyped core of every proxy: the server, the object id, and one reference on it.
///
/// Cloning takes another reference (a call to the server); dropping gives it back. Serialized,
/// it carries its server's address and run id; deserialized in another process it connects on
/// first use (one connection per process and thread) and takes its own reference.
pub struct RawProxy {
    remote: Arc<Remote>,
    id: u64,
    owned: bool,
}

impl std::fmt::Debug for RawProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawProxy")
            .field("address", &self.remote.address)
            .field("id", &self.id)
            .finish()
    }
}

impl RawProxy {
    pub(crate) fn adopt(remote: Arc<Remote>, id: u64) -> Self {
        RawProxy {
            remote,
            id,
            owned: true,
        }
    }

    /// The object's id on its server.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The address of the proxy's server.
    pub fn address(&self) -> &Address {
        &self.remote.address
    }

    /// Sends `request` (a variant of the object type's request enum, see
    /// [`Request`](crate::Request)) and decodes the reply as `R` (the type's reply enum).
    ///
    /// Proxies, those of [`shared_type!`](crate::shared_type) included, are built on this; a
    /// request whose variant the object does not have is answered with a remote error of kind
    /// `UnknownMethod`. There is no call by method name, so a misspelt method does not compile:
    ///
    /// ```compile_fail
    /// use processing::manager::Proxy;
    /// let m = processing::manager::Manager::start_in_thread().unwrap();
    /// let q = m.queue::<u32>().unwrap();
    /// q.as_raw().call("putt", &(1u32,)).unwrap();
    /// ```
    pub fn request<Q: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        request: &Q,
    ) -> Result<R, ManagerError> {
        call(&self.remote, self.id, request)
    }

    /// [`RawProxy::request`] awaited on `call`'s own connection (feature `async`).
    #[cfg(feature = "async")]
    pub(crate) async fn request_async<Q: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        call: &mut AsyncCall,
        request: &Q,
    ) -> Result<R, ManagerError> {
        call.call(&self.remote, self.id, request).await
    }

    /// [`RawProxy::request`] awaited once, on a connection of its own that closes when the
    /// call returns or is dropped (feature `async`): a wait that gives up what it waited for
    /// when it is cancelled.
    #[cfg(feature = "async")]
    pub(crate) async fn request_async_alone<Q: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        request: &Q,
    ) -> Result<R, ManagerError> {
        self.request_async(&mut AsyncCall::default(), request).await
    }

    pub(crate) fn elem<T: Serialize + ?Sized>(&self, value: &T) -> Result<Elem, CodecError> {
        encode_elem(&self.remote, value)
    }

    pub(crate) fn value<T: DeserializeOwned>(&self, elem: Elem) -> Result<T, CodecError> {
        decode_elem(&self.remote, elem)
    }

    /// Gives back the references a value read from the server held, without decoding it.
    pub(crate) fn discard(&self, elem: Elem) {
        for id in elem.refs {
            decref(&self.remote, id);
        }
    }

    pub(crate) fn values<T: DeserializeOwned>(
        &self,
        elems: Vec<Elem>,
    ) -> Result<Vec<T>, CodecError> {
        elems.into_iter().map(|e| self.value(e)).collect()
    }
}

impl Clone for RawProxy {
    fn clone(&self) -> Self {
        let owned = incref(&self.remote, self.id);
        RawProxy {
            remote: self.remote.clone(),
            id: self.id,
            owned,
        }
    }
}

impl Drop for RawProxy {
    fn drop(&mut self) {
        if self.owned {
            decref(&self.remote, self.id);
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    remote: Remote,
    id: u64,
}

#[derive(Serialize)]
struct WireRef<'a> {
    remote: &'a Remote,
    id: u64,
}

impl Serialize for RawProxy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let _ = ENCODE_SCOPE.try_with(|scope| {
            if let Some((instance, refs)) = scope.borrow_mut().last_mut() {
                if *instance == self.remote.instance {
                    refs.push(self.id);
                }
            }
        });
        WireRef {
            remote: &self.remote,
            id: self.id,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawProxy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(d)?;
        let adopted = DECODE_SCOPE
            .try_with(|scope| {
                let mut scope = scope.borrow_mut();
                let Some((instance, refs)) = scope.last_mut() else {
                    return false;
                };
                if *instance != wire.remote.instance {
                    return false;
                }
                match refs.iter().position(|&r| r == wire.id) {
                    Some(at) => {
                        refs.swap_remove(at);
                        true
                    }
                    None => false,
                }
            })
            .unwrap_or(false);
        let remote = Arc::new(wire.remote);
        // A proxy that arrived by other means (a spawn argument, a pipe, a queue) takes its
        // own reference; its sender is expected to hold one meanwhile.
        let owned = adopted || incref(&remote, wire.id);
        Ok(RawProxy {
            remote,
            id: wire.id,
            owned,
        })
    }
}
