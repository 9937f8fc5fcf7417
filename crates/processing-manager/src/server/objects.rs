//! The built-in shared objects as the server holds them.
//!
//! Containers store [`Elem`]s (postcard bytes plus embedded proxy ids), so the server needs no
//! code of the element type: equality (`index`, `count`, `remove`, dict keys) is equality of
//! encodings, and `sort` is computed by the client and applied here as a permutation.
//! Blocking operations (a queue `get`, a lock `acquire`) block the calling connection's handler
//! thread on the object's condition variable, waking every 100 ms to notice a closed client or a
//! stopping server.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use processing_core::codec::encode;
use serde::{Deserialize, Serialize};

use crate::calls::*;
use crate::custom::ErasedObject;
use crate::error::{RemoteError, RemoteErrorKind};
use crate::protocol::Elem;
use crate::server::Cx;

/// The kinds of built-in objects (and custom ones), as named in a create request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    List,
    Dict,
    Namespace,
    Value,
    Array,
    Queue,
    JoinableQueue,
    Lock,
    RLock,
    Semaphore,
    BoundedSemaphore,
    Condition,
    Event,
    Barrier,
    Custom,
}

/// A shared object on the server.
pub(crate) trait Object: Send + Sync {
    /// The kind and element type this object was created with, e.g. `list<i32>`.
    fn tag(&self) -> &str;
    /// Applies one call: decodes the request (a variant of the type's request enum), returns
    /// the encoded reply.
    fn call(&self, cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError>;
    /// Takes the proxy references held by the contents (the object is being freed).
    fn drain_refs(&self) -> Vec<u64> {
        Vec::new()
    }
    /// A connection closed: give up what it held (locks).
    fn on_disconnect(&self, _conn: u64) {}
    /// Undoes a take-out whose reply was not delivered (see [`Cx::sending`]): `taken.item` goes
    /// back where `taken.undo` says, with its references (and those of the undo's key); `Ok`
    /// carries the references of what the undo displaced (a swapped-in value), for the caller
    /// to release. `Err` hands back what the object did not keep, whose references the caller
    /// releases: the object was freed meanwhile, its place was filled again (a dict key or
    /// namespace name set meanwhile, a value written again after a swap: the newer value
    /// wins), or it never gives anything out.
    fn put_back(&self, taken: Taken) -> Result<Vec<u64>, Taken> {
        Err(taken)
    }
}

/// Where a value taken out of an object by a call goes back when the call's reply is not
/// delivered (the client is gone): the undo of each take-out.
#[derive(Debug)]
pub(crate) enum Undo {
    /// A queue's `get`: back at the head.
    Head,
    /// A list's `pop`: back at this index (counted from the front), or at the end when the list
    /// is shorter now.
    At(usize),
    /// A dict's `remove`: back under this key (which the object holds again, with its
    /// references), at its place in insertion order (`seq`), unless the key was set meanwhile.
    Key { key: Elem, seq: u64 },
    /// A namespace's `remove`: back under this name, unless the name was set meanwhile.
    Name(String),
    /// A value's `swap`, which left the value at this version: the previous value comes back
    /// (the swapped-in one goes) unless the value was written again since.
    Swapped(u64),
}

impl Undo {
    /// The references the undo itself holds (a dict key's): released once the reply is
    /// delivered, or when the value cannot go back.
    pub(crate) fn refs(&self) -> &[u64] {
        match self {
            Undo::Key { key, .. } => &key.refs,
            _ => &[],
        }
    }
}

/// A value a call took out of its object to send it, and how to put it back.
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) item: Elem,
    pub(crate) undo: Undo,
}

/// Decodes a request of type `Q` for an object called `name`, applies `f`, encodes its reply.
fn serve<Q: Request, R: Serialize>(
    name: &str,
    request: &[u8],
    f: impl FnOnce(Q) -> Result<R, RemoteError>,
) -> Result<Vec<u8>, RemoteError> {
    serve_then(name, request, f, drop)
}

/// [`serve`], handing the reply to `then` once encoded.
fn serve_then<Q: Request, R: Serialize>(
    name: &str,
    request: &[u8],
    f: impl FnOnce(Q) -> Result<R, RemoteError>,
    then: impl FnOnce(R),
) -> Result<Vec<u8>, RemoteError> {
    let reply = f(decode_request::<Q>(name, request)?)?;
    let bytes = encode(&reply).map_err(RemoteError::bad_args)?;
    then(reply);
    Ok(bytes)
}

fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn refs_of<'a>(elems: impl IntoIterator<Item = &'a Elem>) -> Vec<u64> {
    elems
        .into_iter()
        .flat_map(|e| e.refs.iter().copied())
        .collect()
}

/// Waits on `cv` until `ready` holds, the wait runs out (`Ok(false)`; `Wait::No` checks once),
/// or the call is cancelled (the client went away or the server is stopping).
fn wait_until<'g, S>(
    cx: &Cx<'_>,
    cv: &Condvar,
    mut guard: MutexGuard<'g, S>,
    wait: Wait,
    mut ready: impl FnMut(&mut S) -> bool,
) -> Result<(MutexGuard<'g, S>, bool), RemoteError> {
    const SLICE: Duration = Duration::from_millis(100);
    let deadline = match wait {
        Wait::No => {
            let r = ready(&mut guard);
            return Ok((guard, r));
        }
        // A timeout too large to represent is no deadline.
        Wait::For(d) => Instant::now().checked_add(d),
        Wait::Forever => None,
    };
    loop {
        if ready(&mut guard) {
            return Ok((guard, true));
        }
        let slice = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Ok((guard, false));
                }
                (d - now).min(SLICE)
            }
            None => SLICE,
        };
        guard = cv
            .wait_timeout(guard, slice)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        cx.check_cancelled()?;
    }
}

/// The reply of an acquire that did not get the lock: `WouldBlock` for one attempt, `Timeout`
/// for a wait that ran out.
fn not_acquired(wait: Wait) -> Acquired {
    match wait {
        Wait::No => Acquired::WouldBlock,
        _ => Acquired::Timeout,
    }
}

/// Python-style index: negative counts from the end; out of range is an error.
fn index(i: i64, len: usize) -> Result<usize, RemoteError> {
    let len_i = len as i64;
    let j = if i < 0 { i + len_i } else { i };
    if j < 0 || j >= len_i {
        return Err(RemoteError::new(
            RemoteErrorKind::IndexOutOfRange,
            format!("index {i} out of range for length {len}"),
        ));
    }
    Ok(j as usize)
}

/// Python-style slice bound: negative counts from the end, clamped to `0..=len`.
fn clamp(i: Option<i64>, len: usize, default: usize) -> usize {
    match i {
        None => default,
        Some(i) if i < 0 => (i + len as i64).max(0) as usize,
        Some(i) => (i as usize).min(len),
    }
}

// ---------------------------------------------------------------------------------------------
// list

struct ListState {
    items: Vec<Elem>,
    version: u64,
    /// The list was freed (its items' references given back): it takes nothing back.
    freed: bool,
}

pub(crate) struct ListObj {
    tag: String,
    state: Mutex<ListState>,
}

impl ListObj {
    pub(crate) fn new(tag: String, items: Vec<Elem>) -> Self {
        ListObj {
            tag,
            state: Mutex::new(ListState {
                items,
                version: 0,
                freed: false,
            }),
        }
    }
}

impl Object for ListObj {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        // Where a popped element goes back if the reply is not delivered.
        let popped_at = std::cell::Cell::new(None);
        let sent = |reply: ListReply| {
            if let (ListReply::Item(item), Some(at)) = (reply, popped_at.get()) {
                cx.sending(item, Undo::At(at));
            }
        };
        let apply = |request: ListRequest| {
            let mut s = lock(&self.state);
            if request.mutates() {
                s.version += 1;
            }
            Ok(match request {
                ListRequest::Push { item } => {
                    cx.adopt(&item)?;
                    s.items.push(item);
                    ListReply::Done
                }
                ListRequest::Extend { items } => {
                    cx.adopt_all(&items)?;
                    s.items.extend(items);
                    ListReply::Done
                }
                ListRequest::Insert { index, item } => {
                    cx.adopt(&item)?;
                    let len = s.items.len();
                    let at = clamp(Some(index), len, len);
                    s.items.insert(at, item);
                    ListReply::Done
                }
                ListRequest::Get { index: i } => {
                    let at = index(i, s.items.len())?;
                    cx.share(&s.items[at]);
                    ListReply::Item(s.items[at].clone())
                }
                ListRequest::Set { index: i, item } => {
                    let at = index(i, s.items.len())?;
                    cx.adopt(&item)?;
                    let old = std::mem::replace(&mut s.items[at], item);
                    cx.release(&old);
                    ListReply::Done
                }
                ListRequest::Slice { start, end } => {
                    let len = s.items.len();
                    let (from, to) = (clamp(start, len, 0), clamp(end, len, len));
                    let part = if from < to {
                        s.items[from..to].to_vec()
                    } else {
                        Vec::new()
                    };
                    cx.share_all(&part);
                    ListReply::Items(part)
                }
                ListRequest::Pop { index: i } => {
                    let len = s.items.len();
                    if len == 0 && i.is_none() {
                        return Ok(ListReply::Empty);
                    }
                    let at = index(i.unwrap_or(-1), len)?;
                    // The popped element's references pass to the caller's copy.
                    popped_at.set(Some(at));
                    ListReply::Item(s.items.remove(at))
                }
                ListRequest::Remove { value } => {
                    match s.items.iter().position(|e| e.bytes == value) {
                        Some(at) => {
                            let old = s.items.remove(at);
                            cx.release(&old);
                            ListReply::Found(true)
                        }
                        None => ListReply::Found(false),
                    }
                }
                ListRequest::Index { value } => ListReply::Position(
                    s.items
                        .iter()
                        .position(|e| e.bytes == value)
                        .map(|at| at as u64),
                ),
                ListRequest::Count { value } => {
                    ListReply::Count(s.items.iter().filter(|e| e.bytes == value).count() as u64)
                }
                ListRequest::Contains { value } => {
                    ListReply::Found(s.items.iter().any(|e| e.bytes == value))
                }
                ListRequest::Reverse => {
                    s.items.reverse();
                    ListReply::Done
                }
                ListRequest::Len => ListReply::Count(s.items.len() as u64),
                ListRequest::Clear => {
                    let old = std::mem::take(&mut s.items);
                    cx.release_all(&old);
                    ListReply::Done
                }
                ListRequest::ToVec => {
                    cx.share_all(&s.items);
                    ListReply::Items(s.items.clone())
                }
                ListRequest::Snapshot => {
                    cx.share_all(&s.items);
                    ListReply::Snapshot {
                        version: s.version,
                        items: s.items.clone(),
                    }
                }
                ListRequest::Permute { version, order } => {
                    // `version` was read before this call bumped it.
                    if version.checked_add(1) != Some(s.version) {
                        return Ok(ListReply::Conflict);
                    }
                    let len = s.items.len();
                    let mut seen = vec![false; len];
                    let valid = order.len() == len
                        && order.iter().all(|&i| {
                            (i as usize) < len && !std::mem::replace(&mut seen[i as usize], true)
                        });
                    if !valid {
                        return Err(RemoteError::bad_args("not a permutation of the list"));
                    }
                    let mut old: Vec<Option<Elem>> =
                        std::mem::take(&mut s.items).into_iter().map(Some).collect();
                    s.items = order
                        .iter()
                        .filter_map(|&i| old[i as usize].take())
                        .collect();
                    ListReply::Done
                }
            })
        };
        serve_then("list", request, apply, sent)
    }

    fn drain_refs(&self) -> Vec<u64> {
        let mut s = lock(&self.state);
        s.freed = true;
        refs_of(&std::mem::take(&mut s.items))
    }

    /// A popped element goes back at the index it was popped from, counted from the front, or
    /// at the end when the list is shorter now (elements removed meanwhile). The index is not
    /// adjusted for elements inserted or removed before it meanwhile (the list keeps no history
    /// of them). The list's version changes, as for any write (a `sort` in progress starts over).
    fn put_back(&self, taken: Taken) -> Result<Vec<u64>, Taken> {
        let mut s = lock(&self.state);
        let Undo::At(at) = taken.undo else {
            return Err(taken);
        };
        if s.freed {
            return Err(taken);
        }
        let at = at.min(s.items.len());
        s.items.insert(at, taken.item);
        s.version += 1;
        Ok(Vec::new())
    }
}

// ---------------------------------------------------------------------------------------------
// dict (insertion-ordered, keyed by the key's encoding)

#[derive(Default)]
struct DictState {
    index: HashMap<Vec<u8>, u64>,
    entries: BTreeMap<u64, (Elem, Elem)>,
    /// The insertion order's next place; never reused (a `clear` keeps it), so that a removed
    /// entry put back (see [`Object::put_back`]) takes its old place without meeting a newer one.
    next_seq: u64,
    /// The dict was freed (its entries' references given back): it takes nothing back.
    freed: bool,
}

impl DictState {
    /// Inserts or replaces; returns the previous value (its references pass to the caller).
    fn insert(&mut self, cx: &Cx<'_>, key: Elem, value: Elem) -> Option<Elem> {
        if let Some(seq) = self.index.get(&key.bytes) {
            if let Some(entry) = self.entries.get_mut(seq) {
                cx.release(&key);
                return Some(std::mem::replace(&mut entry.1, value));
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.index.insert(key.bytes.clone(), seq);
        self.entries.insert(seq, (key, value));
        None
    }

    /// Removes `key`'s entry; returns it with its place in insertion order.
    fn remove(&mut self, key: &[u8]) -> Option<(u64, Elem, Elem)> {
        let seq = self.index.remove(key)?;
        self.entries.remove(&seq).map(|(k, v)| (seq, k, v))
    }

    /// Takes every entry out (the place of the next insertion stays where it was).
    fn take_entries(&mut self) -> BTreeMap<u64, (Elem, Elem)> {
        self.index.clear();
        std::mem::take(&mut self.entries)
    }
}

pub(crate) struct DictObj {
    tag: String,
    state: Mutex<DictState>,
}

impl DictObj {
    pub(crate) fn new(tag: String, cx: &Cx<'_>, items: Vec<(Elem, Elem)>) -> Self {
        let mut state = DictState::default();
        for (k, v) in items {
            if let Some(old) = state.insert(cx, k, v) {
                cx.release(&old);
            }
        }
        DictObj {
            tag,
            state: Mutex::new(state),
        }
    }
}

impl Object for DictObj {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        // The key (and place) a removed value goes back under if the reply is not delivered.
        let removed = std::cell::RefCell::new(None);
        let sent = |reply: DictReply| {
            if let (DictReply::Value(Some(item)), Some((key, seq))) = (reply, removed.take()) {
                cx.sending(item, Undo::Key { key, seq });
            }
        };
        let apply = |request: DictRequest| {
            let mut s = lock(&self.state);
            Ok(match request {
                DictRequest::Get { key } => {
                    let v = s
                        .index
                        .get(&key)
                        .and_then(|seq| s.entries.get(seq))
                        .map(|(_, v)| v.clone());
                    if let Some(v) = &v {
                        cx.share(v);
                    }
                    DictReply::Value(v)
                }
                DictRequest::Insert { key, value } => {
                    cx.adopt(&key)?;
                    cx.adopt(&value)?;
                    DictReply::Value(s.insert(cx, key, value))
                }
                DictRequest::Update { items } => {
                    for (k, v) in &items {
                        cx.adopt(k)?;
                        cx.adopt(v)?;
                    }
                    for (k, v) in items {
                        if let Some(old) = s.insert(cx, k, v) {
                            cx.release(&old);
                        }
                    }
                    DictReply::Done
                }
                DictRequest::Remove { key } => {
                    DictReply::Value(s.remove(&key).map(|(seq, k, v)| {
                        // The key's references are released once the reply is delivered (or
                        // the value goes back with its key).
                        *removed.borrow_mut() = Some((k, seq));
                        v
                    }))
                }
                DictRequest::ContainsKey { key } => DictReply::Found(s.index.contains_key(&key)),
                DictRequest::Keys => {
                    let keys: Vec<Elem> = s.entries.values().map(|(k, _)| k.clone()).collect();
                    cx.share_all(&keys);
                    DictReply::Elems(keys)
                }
                DictRequest::Values => {
                    let values: Vec<Elem> = s.entries.values().map(|(_, v)| v.clone()).collect();
                    cx.share_all(&values);
                    DictReply::Elems(values)
                }
                DictRequest::Items => {
                    let items: Vec<(Elem, Elem)> = s.entries.values().cloned().collect();
                    for (k, v) in &items {
                        cx.share(k);
                        cx.share(v);
                    }
                    DictReply::Items(items)
                }
                DictRequest::Len => DictReply::Len(s.entries.len() as u64),
                DictRequest::Clear => {
                    for (k, v) in s.take_entries().values() {
                        cx.release(k);
                        cx.release(v);
                    }
                    DictReply::Done
                }
            })
        };
        let served = serve_then("dict", request, apply, sent);
        // A removal that failed to encode its reply sends nothing: its key is released.
        if let Some((key, _)) = removed.take() {
            cx.release(&key);
        }
        served
    }

    fn drain_refs(&self) -> Vec<u64> {
        let mut s = lock(&self.state);
        s.freed = true;
        s.take_entries()
            .values()
            .flat_map(|(k, v)| k.refs.iter().chain(&v.refs).copied())
            .collect()
    }

    /// A removed value goes back under its key, at its place in insertion order, unless the
    /// key was set again meanwhile: then the newer value wins and the removed one is dropped
    /// (its references, and its key's, released by the caller).
    fn put_back(&self, taken: Taken) -> Result<Vec<u64>, Taken> {
        let mut s = lock(&self.state);
        match taken {
            Taken {
                item,
                undo: Undo::Key { key, seq },
            } if !s.freed && !s.index.contains_key(&key.bytes) => {
                // `seq` is free: entries only ever take fresh places.
                s.index.insert(key.bytes.clone(), seq);
                s.entries.insert(seq, (key, item));
                Ok(Vec::new())
            }
            taken => Err(taken),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// namespace

#[derive(Default)]
struct NamespaceState {
    attrs: BTreeMap<String, Elem>,
    /// The namespace was freed (its values' references given back): it takes nothing back.
    freed: bool,
}

pub(crate) struct NamespaceObj {
    state: Mutex<NamespaceState>,
}

impl NamespaceObj {
    pub(crate) fn new() -> Self {
        NamespaceObj {
            state: Mutex::new(NamespaceState::default()),
        }
    }
}

impl Object for NamespaceObj {
    fn tag(&self) -> &str {
        "namespace"
    }

    fn call(&self, cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        // The name a removed value goes back under if the reply is not delivered.
        let removed = std::cell::RefCell::new(None);
        let sent = |reply: NamespaceReply| {
            if let (NamespaceReply::Value(Some(item)), Some(name)) = (reply, removed.take()) {
                cx.sending(item, Undo::Name(name));
            }
        };
        let apply = |request: NamespaceRequest| {
            let mut s = lock(&self.state);
            let attrs = &mut s.attrs;
            Ok(match request {
                NamespaceRequest::Get { name } => {
                    let v = attrs.get(&name).cloned();
                    if let Some(v) = &v {
                        cx.share(v);
                    }
                    NamespaceReply::Value(v)
                }
                NamespaceRequest::Set { name, value } => {
                    cx.adopt(&value)?;
                    if let Some(old) = attrs.insert(name, value) {
                        cx.release(&old);
                    }
                    NamespaceReply::Done
                }
                NamespaceRequest::Remove { name } => {
                    let value = attrs.remove(&name);
                    if value.is_some() {
                        *removed.borrow_mut() = Some(name);
                    }
                    NamespaceReply::Value(value)
                }
                NamespaceRequest::Contains { name } => {
                    NamespaceReply::Found(attrs.contains_key(&name))
                }
                NamespaceRequest::Names => NamespaceReply::Names(attrs.keys().cloned().collect()),
            })
        };
        serve_then("namespace", request, apply, sent)
    }

    fn drain_refs(&self) -> Vec<u64> {
        let mut s = lock(&self.state);
        s.freed = true;
        refs_of(std::mem::take(&mut s.attrs).values())
    }

    /// A removed value goes back under its name, unless the name was set again meanwhile:
    /// then the newer value wins and the removed one is dropped (its references released by
    /// the caller).
    fn put_back(&self, taken: Taken) -> Result<Vec<u64>, Taken> {
        let mut s = lock(&self.state);
        match taken {
            Taken {
                item,
                undo: Undo::Name(name),
            } if !s.freed && !s.attrs.contains_key(&name) => {
                s.attrs.insert(name, item);
                Ok(Vec::new())
            }
            taken => Err(taken),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// value and array

struct ValueState {
    value: Elem,
    /// Counts the writes (`set`, `swap`): a swap is undone only if none came after it.
    version: u64,
    /// The value was freed (its references given back): it takes nothing back.
    freed: bool,
}

pub(crate) struct ValueObj {
    tag: String,
    state: Mutex<ValueState>,
}

impl ValueObj {
    pub(crate) fn new(tag: String, value: Elem) -> Self {
        ValueObj {
            tag,
            state: Mutex::new(ValueState {
                value,
                version: 0,
                freed: false,
            }),
        }
    }
}

impl Object for ValueObj {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        // The version a swap left, for its undo if the reply is not delivered.
        let swapped = std::cell::Cell::new(None);
        let sent = |reply: ValueReply| {
            if let (ValueReply::Value(old), Some(version)) = (reply, swapped.get()) {
                cx.sending(old, Undo::Swapped(version));
            }
        };
        let apply = |request: ValueRequest| {
            let mut s = lock(&self.state);
            Ok(match request {
                ValueRequest::Get => {
                    cx.share(&s.value);
                    ValueReply::Value(s.value.clone())
                }
                ValueRequest::Set { value } => {
                    cx.adopt(&value)?;
                    s.version += 1;
                    let old = std::mem::replace(&mut s.value, value);
                    cx.release(&old);
                    ValueReply::Done
                }
                ValueRequest::Swap { value } => {
                    cx.adopt(&value)?;
                    s.version += 1;
                    swapped.set(Some(s.version));
                    // The previous value's references pass to the caller's copy.
                    ValueReply::Value(std::mem::replace(&mut s.value, value))
                }
            })
        };
        serve_then("value", request, apply, sent)
    }

    fn drain_refs(&self) -> Vec<u64> {
        let mut s = lock(&self.state);
        s.freed = true;
        std::mem::take(&mut s.value.refs)
    }

    /// A swap is undone as a whole if the value was not written since: the previous value
    /// comes back and the swapped-in one goes (its references, returned, are released by the
    /// caller). Written since, the newer value wins and the previous one is dropped.
    fn put_back(&self, taken: Taken) -> Result<Vec<u64>, Taken> {
        let mut s = lock(&self.state);
        match taken.undo {
            Undo::Swapped(version) if !s.freed && s.version == version => {
                s.version += 1;
                let swapped_in = std::mem::replace(&mut s.value, taken.item);
                Ok(swapped_in.refs)
            }
            _ => Err(taken),
        }
    }
}

pub(crate) struct ArrayObj {
    tag: String,
    items: Mutex<Vec<Elem>>,
}

impl ArrayObj {
    pub(crate) fn new(tag: String, items: Vec<Elem>) -> Self {
        ArrayObj {
            tag,
            items: Mutex::new(items),
        }
    }
}

impl Object for ArrayObj {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        serve("array", request, |request: ArrayRequest| {
            let mut items = lock(&self.items);
            Ok(match request {
                ArrayRequest::Get { index: i } => {
                    let at = index(i, items.len())?;
                    cx.share(&items[at]);
                    ArrayReply::Item(items[at].clone())
                }
                ArrayRequest::Set { index: i, item } => {
                    let at = index(i, items.len())?;
                    cx.adopt(&item)?;
                    let old = std::mem::replace(&mut items[at], item);
                    cx.release(&old);
                    ArrayReply::Done
                }
                ArrayRequest::Len => ArrayReply::Len(items.len() as u64),
                ArrayRequest::ToVec => {
                    cx.share_all(items.iter());
                    ArrayReply::Items(items.clone())
                }
            })
        })
    }

    fn drain_refs(&self) -> Vec<u64> {
        refs_of(&std::mem::take(&mut *lock(&self.items)))
    }
}

// ---------------------------------------------------------------------------------------------
// queue and joinable queue

struct QueueState {
    items: VecDeque<Elem>,
    unfinished: u64,
    closed: bool,
    /// The queue was freed (its items' references given back): it takes nothing back.
    freed: bool,
}

pub(crate) struct QueueObj {
    tag: String,
    maxsize: usize,
    joinable: bool,
    state: Mutex<QueueState>,
    changed: Condvar,
}

impl QueueObj {
    pub(crate) fn new(tag: String, maxsize: usize, joinable: bool) -> Self {
        QueueObj {
            tag,
            maxsize,
            joinable,
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                unfinished: 0,
                closed: false,
                freed: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn full(&self, s: &QueueState) -> bool {
        self.maxsize > 0 && s.items.len() >= self.maxsize
    }
}

impl Object for QueueObj {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let name = if self.joinable {
            "joinable queue"
        } else {
            "queue"
        };
        let sent = |reply: QueueReply| {
            if let QueueReply::Item(item) = reply {
                cx.sending(item, Undo::Head);
            }
        };
        serve_then(
            name,
            request,
            |request: QueueRequest| {
                let s = lock(&self.state);
                Ok(match request {
                    QueueRequest::Put { item, wait } => {
                        let (mut s, ready) =
                            wait_until(cx, &self.changed, s, wait, |s| s.closed || !self.full(s))?;
                        if s.closed {
                            QueueReply::Closed
                        } else if !ready {
                            match wait {
                                Wait::No => QueueReply::Full,
                                _ => QueueReply::Timeout,
                            }
                        } else {
                            cx.adopt(&item)?;
                            s.items.push_back(item);
                            s.unfinished += 1;
                            self.changed.notify_all();
                            QueueReply::Done
                        }
                    }
                    QueueRequest::Get { wait } => {
                        let (mut s, _) = wait_until(cx, &self.changed, s, wait, |s| {
                            s.closed || !s.items.is_empty()
                        })?;
                        match s.items.pop_front() {
                            Some(item) => {
                                self.changed.notify_all();
                                QueueReply::Item(item)
                            }
                            None if s.closed => QueueReply::Closed,
                            None if wait == Wait::No => QueueReply::Empty,
                            None => QueueReply::Timeout,
                        }
                    }
                    QueueRequest::AwaitReady { put, wait } => {
                        let (_s, ready) = wait_until(cx, &self.changed, s, wait, |s| {
                            s.closed
                                || if put {
                                    !self.full(s)
                                } else {
                                    !s.items.is_empty()
                                }
                        })?;
                        QueueReply::Flag(ready)
                    }
                    QueueRequest::Len => QueueReply::Len(s.items.len() as u64),
                    QueueRequest::IsEmpty => QueueReply::Flag(s.items.is_empty()),
                    QueueRequest::IsFull => QueueReply::Flag(self.full(&s)),
                    QueueRequest::Close => {
                        let mut s = s;
                        s.closed = true;
                        self.changed.notify_all();
                        QueueReply::Done
                    }
                    QueueRequest::IsClosed => QueueReply::Flag(s.closed),
                    QueueRequest::TaskDone if self.joinable => {
                        let mut s = s;
                        if s.unfinished == 0 {
                            return Ok(QueueReply::TooMany);
                        }
                        s.unfinished -= 1;
                        if s.unfinished == 0 {
                            self.changed.notify_all();
                        }
                        QueueReply::Done
                    }
                    QueueRequest::Join { wait } if self.joinable => {
                        let (_s, done) =
                            wait_until(cx, &self.changed, s, wait, |s| s.unfinished == 0)?;
                        if done {
                            QueueReply::Done
                        } else {
                            QueueReply::Timeout
                        }
                    }
                    request @ (QueueRequest::TaskDone | QueueRequest::Join { .. }) => {
                        return Err(RemoteError::unknown_method(
                            "a queue that is not joinable",
                            &format!("{request:?}"),
                        ))
                    }
                })
            },
            sent,
        )
    }

    fn drain_refs(&self) -> Vec<u64> {
        let mut s = lock(&self.state);
        s.freed = true;
        refs_of(&std::mem::take(&mut s.items))
    }

    /// The item a `get` took goes back at the head, where it was: the order is kept, and the
    /// count of unfinished tasks, which a `get` does not change, stays right. (A put that came
    /// in meanwhile may leave a bounded queue one over its size until the next get.)
    fn put_back(&self, taken: Taken) -> Result<Vec<u64>, Taken> {
        let mut s = lock(&self.state);
        if s.freed || !matches!(taken.undo, Undo::Head) {
            return Err(taken);
        }
        s.items.push_front(taken.item);
        self.changed.notify_all();
        Ok(Vec::new())
    }
}

// ---------------------------------------------------------------------------------------------
// lock and rlock (owner = the connection, i.e. one thread of one client process)

struct LockState {
    owner: Option<u64>,
    count: u32,
}

pub(crate) struct LockObj {
    reentrant: bool,
    state: Mutex<LockState>,
    changed: Condvar,
}

impl LockObj {
    pub(crate) fn new(reentrant: bool) -> Self {
        LockObj {
            reentrant,
            state: Mutex::new(LockState {
                owner: None,
                count: 0,
            }),
            changed: Condvar::new(),
        }
    }
}

impl Object for LockObj {
    fn tag(&self) -> &str {
        if self.reentrant {
            "rlock"
        } else {
            "lock"
        }
    }

    fn call(&self, cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        serve(self.tag(), request, |request: LockRequest| {
            let s = lock(&self.state);
            let me = cx.conn;
            Ok(match request {
                LockRequest::Acquire { wait } => {
                    let free = |s: &mut LockState| {
                        s.owner.is_none() || (self.reentrant && s.owner == Some(me))
                    };
                    let (mut s, got) = wait_until(cx, &self.changed, s, wait, free)?;
                    LockReply::Acquire(if got {
                        s.owner = Some(me);
                        s.count += 1;
                        Acquired::Yes
                    } else {
                        not_acquired(wait)
                    })
                }
                LockRequest::Release => {
                    let mut s = s;
                    match s.owner {
                        None => LockReply::Refused(Refused::NotLocked),
                        Some(owner) if self.reentrant && owner != me => {
                            LockReply::Refused(Refused::NotOwner)
                        }
                        Some(_) => {
                            s.count -= 1;
                            if s.count == 0 {
                                s.owner = None;
                                self.changed.notify_all();
                            }
                            LockReply::Released
                        }
                    }
                }
                LockRequest::Locked => LockReply::Locked(s.owner.is_some()),
                LockRequest::AwaitFree { wait } => {
                    let (s, _) = wait_until(cx, &self.changed, s, wait, |s| s.owner.is_none())?;
                    LockReply::Locked(s.owner.is_some())
                }
            })
        })
    }

    fn on_disconnect(&self, conn: u64) {
        let mut s = lock(&self.state);
        if s.owner == Some(conn) {
            s.owner = None;
            s.count = 0;
            self.changed.notify_all();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// semaphore and bounded semaphore

pub(crate) struct SemaphoreObj {
    bound: Option<u64>,
    value: Mutex<u64>,
    changed: Condvar,
}

impl SemaphoreObj {
    pub(crate) fn new(value: u64, bounded: bool) -> Self {
        SemaphoreObj {
            bound: bounded.then_some(value),
            value: Mutex::new(value),
            changed: Condvar::new(),
        }
    }
}

impl Object for SemaphoreObj {
    fn tag(&self) -> &str {
        if self.bound.is_some() {
            "bounded_semaphore"
        } else {
            "semaphore"
        }
    }

    fn call(&self, cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        serve(self.tag(), request, |request: SemaphoreRequest| {
            let v = lock(&self.value);
            Ok(match request {
                SemaphoreRequest::Acquire { wait } => {
                    let (mut v, got) = wait_until(cx, &self.changed, v, wait, |v| *v > 0)?;
                    SemaphoreReply::Acquire(if got {
                        *v -= 1;
                        Acquired::Yes
                    } else {
                        not_acquired(wait)
                    })
                }
                SemaphoreRequest::Release { n } => {
                    let mut v = v;
                    match v.checked_add(n) {
                        None => SemaphoreReply::Refused(Refused::Overflow),
                        Some(after) if self.bound.is_some_and(|b| after > b) => {
                            SemaphoreReply::Refused(Refused::Bound)
                        }
                        Some(after) => {
                            *v = after;
                            self.changed.notify_all();
                            SemaphoreReply::Released
                        }
                    }
                }
                SemaphoreRequest::Value => SemaphoreReply::Value(*v),
                SemaphoreRequest::AwaitAvailable { wait } => {
                    let (v, _) = wait_until(cx, &self.changed, v, wait, |v| *v > 0)?;
                    SemaphoreReply::Value(*v)
                }
            })
        })
    }
}

// ---------------------------------------------------------------------------------------------
// condition (over a reentrant lock, as Python's default)

#[derive(Default)]
struct CondState {
    owner: Option<u64>,
    count: u32,
    next_ticket: u64,
    waiting: VecDeque<u64>,
    notified: HashSet<u64>,
    /// The tickets of awaited waits, by the connection they are tied to (the one that
    /// registered them, then the waiting one that claimed them): its closing withdraws them.
    tied: HashMap<u64, u64>,
}

impl CondState {
    /// Takes the waiter `ticket` out; a notification it had (and cannot take) passes to the
    /// next waiter, as if it had been sent to that one. Whether one passed (wake the waiters).
    fn withdraw(&mut self, ticket: u64) -> bool {
        self.waiting.retain(|&t| t != ticket);
        self.tied.remove(&ticket);
        if self.notified.remove(&ticket) {
            if let Some(next) = self.waiting.pop_front() {
                self.notified.insert(next);
                return true;
            }
        }
        false
    }
}

pub(crate) struct ConditionObj {
    state: Mutex<CondState>,
    changed: Condvar,
}

impl ConditionObj {
    pub(crate) fn new() -> Self {
        ConditionObj {
            state: Mutex::new(CondState::default()),
            changed: Condvar::new(),
        }
    }
}

impl Object for ConditionObj {
    fn tag(&self) -> &str {
        "condition"
    }

    fn call(&self, cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        serve("condition", request, |request: ConditionRequest| {
            let me = cx.conn;
            let s = lock(&self.state);
            Ok(match request {
                ConditionRequest::Acquire { wait } => {
                    let free = |s: &mut CondState| s.owner.is_none() || s.owner == Some(me);
                    let (mut s, got) = wait_until(cx, &self.changed, s, wait, free)?;
                    ConditionReply::Acquire(if got {
                        s.owner = Some(me);
                        s.count += 1;
                        Acquired::Yes
                    } else {
                        not_acquired(wait)
                    })
                }
                ConditionRequest::Release => {
                    let mut s = s;
                    match s.owner {
                        None => ConditionReply::Refused(Refused::NotLocked),
                        Some(owner) if owner != me => ConditionReply::Refused(Refused::NotOwner),
                        Some(_) => {
                            s.count -= 1;
                            if s.count == 0 {
                                s.owner = None;
                                self.changed.notify_all();
                            }
                            ConditionReply::Released
                        }
                    }
                }
                ConditionRequest::Wait { wait } => {
                    let mut s = s;
                    if s.owner != Some(me) {
                        return Ok(ConditionReply::NotOwner);
                    }
                    let saved = s.count;
                    s.owner = None;
                    s.count = 0;
                    let ticket = s.next_ticket;
                    s.next_ticket += 1;
                    s.waiting.push_back(ticket);
                    self.changed.notify_all();
                    let waited =
                        wait_until(cx, &self.changed, s, wait, |s| s.notified.contains(&ticket));
                    let (mut s, notified) = match waited {
                        Ok(r) => r,
                        Err(e) => {
                            if lock(&self.state).withdraw(ticket) {
                                self.changed.notify_all();
                            }
                            return Err(e);
                        }
                    };
                    s.waiting.retain(|&t| t != ticket);
                    s.notified.remove(&ticket);
                    // Re-acquire before returning, as threading.Condition does.
                    let (mut s, _) =
                        wait_until(cx, &self.changed, s, Wait::Forever, |s| s.owner.is_none())?;
                    s.owner = Some(me);
                    s.count = saved;
                    ConditionReply::Waited(notified)
                }
                ConditionRequest::Notify { n } => {
                    let mut s = s;
                    if s.owner != Some(me) {
                        return Ok(ConditionReply::NotOwner);
                    }
                    for _ in 0..n {
                        let Some(t) = s.waiting.pop_front() else {
                            break;
                        };
                        s.notified.insert(t);
                    }
                    self.changed.notify_all();
                    ConditionReply::Notified
                }
                ConditionRequest::NotifyAll => {
                    let mut s = s;
                    if s.owner != Some(me) {
                        return Ok(ConditionReply::NotOwner);
                    }
                    while let Some(t) = s.waiting.pop_front() {
                        s.notified.insert(t);
                    }
                    self.changed.notify_all();
                    ConditionReply::Notified
                }
                ConditionRequest::Enqueue => {
                    let mut s = s;
                    if s.owner != Some(me) {
                        return Ok(ConditionReply::NotOwner);
                    }
                    let count = s.count;
                    s.owner = None;
                    s.count = 0;
                    let ticket = s.next_ticket;
                    s.next_ticket += 1;
                    s.waiting.push_back(ticket);
                    s.tied.insert(ticket, me);
                    self.changed.notify_all();
                    ConditionReply::Enqueued { ticket, count }
                }
                ConditionRequest::AwaitNotified { ticket, wait } => {
                    let mut s = s;
                    match s.tied.get_mut(&ticket) {
                        Some(tied) => *tied = me,
                        // Withdrawn (the connection that registered it closed): a wake-up
                        // without a notification.
                        None => return Ok(ConditionReply::Waited(false)),
                    }
                    let (s, _) = wait_until(cx, &self.changed, s, wait, |s| {
                        s.notified.contains(&ticket) || !s.tied.contains_key(&ticket)
                    })?;
                    ConditionReply::Waited(s.notified.contains(&ticket))
                }
                ConditionRequest::Reacquire {
                    ticket,
                    count,
                    cancel,
                    wait,
                } => {
                    let mut s = s;
                    if cancel && s.withdraw(ticket) {
                        self.changed.notify_all();
                    }
                    let free = |s: &mut CondState| s.owner.is_none() || s.owner == Some(me);
                    let (mut s, got) = wait_until(cx, &self.changed, s, wait, free)?;
                    ConditionReply::Acquire(if got {
                        // The wait ends: its ticket (and the notification it took) with it.
                        s.waiting.retain(|&t| t != ticket);
                        s.tied.remove(&ticket);
                        s.notified.remove(&ticket);
                        s.owner = Some(me);
                        s.count = s.count.saturating_add(count);
                        Acquired::Yes
                    } else {
                        not_acquired(wait)
                    })
                }
                ConditionRequest::AwaitFree { wait } => {
                    let (s, _) = wait_until(cx, &self.changed, s, wait, |s| s.owner.is_none())?;
                    ConditionReply::Locked(s.owner.is_some())
                }
            })
        })
    }

    fn on_disconnect(&self, conn: u64) {
        let mut s = lock(&self.state);
        let mut wake = false;
        if s.owner == Some(conn) {
            s.owner = None;
            s.count = 0;
            wake = true;
        }
        let tied: Vec<u64> = s
            .tied
            .iter()
            .filter(|&(_, &c)| c == conn)
            .map(|(&t, _)| t)
            .collect();
        for ticket in tied {
            wake |= s.withdraw(ticket);
        }
        if wake {
            self.changed.notify_all();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// event

pub(crate) struct EventObj {
    flag: Mutex<bool>,
    changed: Condvar,
}

impl EventObj {
    pub(crate) fn new() -> Self {
        EventObj {
            flag: Mutex::new(false),
            changed: Condvar::new(),
        }
    }
}

impl Object for EventObj {
    fn tag(&self) -> &str {
        "event"
    }

    fn call(&self, cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        serve("event", request, |request: EventRequest| {
            let mut flag = lock(&self.flag);
            Ok(match request {
                EventRequest::Set => {
                    *flag = true;
                    self.changed.notify_all();
                    EventReply::Done
                }
                EventRequest::Clear => {
                    *flag = false;
                    EventReply::Done
                }
                EventRequest::IsSet => EventReply::Flag(*flag),
                EventRequest::Wait { wait } => {
                    let (_flag, set) = wait_until(cx, &self.changed, flag, wait, |f| *f)?;
                    EventReply::Flag(set)
                }
            })
        })
    }
}

// ---------------------------------------------------------------------------------------------
// barrier

struct BarrierState {
    count: u64,
    generation: u64,
    broken: bool,
    reset_generation: Option<u64>,
}

pub(crate) struct BarrierObj {
    parties: u64,
    state: Mutex<BarrierState>,
    changed: Condvar,
}

impl BarrierObj {
    pub(crate) fn new(parties: u64) -> Self {
        BarrierObj {
            parties: parties.max(1),
            state: Mutex::new(BarrierState {
                count: 0,
                generation: 0,
                broken: false,
                reset_generation: None,
            }),
            changed: Condvar::new(),
        }
    }
}

impl Object for BarrierObj {
    fn tag(&self) -> &str {
        "barrier"
    }

    fn call(&self, cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        serve("barrier", request, |request: BarrierRequest| {
            let mut s = lock(&self.state);
            Ok(match request {
                BarrierRequest::Wait { wait } => {
                    if s.broken {
                        return Ok(BarrierReply::Broken);
                    }
                    let arrival = s.count;
                    s.count += 1;
                    if s.count == self.parties {
                        s.count = 0;
                        s.generation += 1;
                        self.changed.notify_all();
                        return Ok(BarrierReply::Passed(arrival));
                    }
                    let generation = s.generation;
                    let waited = wait_until(cx, &self.changed, s, wait, |s| {
                        s.generation != generation || s.broken
                    });
                    let (mut s, passed) = match waited {
                        Ok(r) => r,
                        Err(e) => {
                            let mut s = lock(&self.state);
                            s.broken = true;
                            self.changed.notify_all();
                            return Err(e);
                        }
                    };
                    if s.generation != generation {
                        if s.reset_generation == Some(generation) {
                            BarrierReply::Broken
                        } else {
                            BarrierReply::Passed(arrival)
                        }
                    } else if !passed {
                        // A timed-out waiter breaks the barrier for everyone, as in Python.
                        s.broken = true;
                        self.changed.notify_all();
                        BarrierReply::Timeout
                    } else {
                        BarrierReply::Broken
                    }
                }
                BarrierRequest::Abort => {
                    s.broken = true;
                    self.changed.notify_all();
                    BarrierReply::Done
                }
                BarrierRequest::Reset => {
                    if s.count > 0 {
                        s.reset_generation = Some(s.generation);
                    }
                    s.generation += 1;
                    s.count = 0;
                    s.broken = false;
                    self.changed.notify_all();
                    BarrierReply::Done
                }
                BarrierRequest::Parties => BarrierReply::Count(self.parties),
                BarrierRequest::NWaiting => BarrierReply::Count(s.count),
                BarrierRequest::Broken => BarrierReply::Flag(s.broken),
            })
        })
    }
}

// ---------------------------------------------------------------------------------------------
// custom

pub(crate) struct CustomObj {
    tag: String,
    inner: Mutex<Box<dyn ErasedObject>>,
}

impl CustomObj {
    pub(crate) fn new(tag: String, inner: Box<dyn ErasedObject>) -> Self {
        CustomObj {
            tag,
            inner: Mutex::new(inner),
        }
    }
}

impl Object for CustomObj {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, _cx: &Cx<'_>, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let mut inner = lock(&self.inner);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.call(request)));
        match result {
            Ok(r) => r,
            Err(payload) => {
                let msg = processing_core::panic_message(&*payload);
                Err(RemoteError::new(
                    RemoteErrorKind::Panicked,
                    format!("a method of {} panicked: {msg}", self.tag),
                ))
            }
        }
    }
}

/// Arguments of a create request per kind.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Init {
    Elems(Vec<Elem>),
    Pairs(Vec<(Elem, Elem)>),
    One(Elem),
    Size(u64),
    Nothing,
    Custom(#[serde(with = "crate::protocol::bytes_codec")] Vec<u8>),
}
