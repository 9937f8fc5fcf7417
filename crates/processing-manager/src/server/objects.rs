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

use processing_core::codec::{decode, encode};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::custom::SharedObject;
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
    /// Applies one call.
    fn call(&self, cx: &Cx<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>, RemoteError>;
    /// Takes the proxy references held by the contents (the object is being freed).
    fn drain_refs(&self) -> Vec<u64> {
        Vec::new()
    }
    /// A connection closed: give up what it held (locks).
    fn on_disconnect(&self, _conn: u64) {}
}

fn ok<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, RemoteError> {
    encode(v).map_err(|e| RemoteError::new(RemoteErrorKind::BadArguments, e.to_string()))
}

fn args<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RemoteError> {
    decode(bytes).map_err(RemoteError::bad_args)
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

/// Waits on `cv` until `ready` holds, the deadline passes (`Ok(false)`), or the call is
/// cancelled (the client went away or the server is stopping).
fn wait_until<'g, S>(
    cx: &Cx<'_>,
    cv: &Condvar,
    mut guard: MutexGuard<'g, S>,
    deadline: Option<Instant>,
    mut ready: impl FnMut(&mut S) -> bool,
) -> Result<(MutexGuard<'g, S>, bool), RemoteError> {
    const SLICE: Duration = Duration::from_millis(100);
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

/// The deadline of a wait; a timeout too large to represent (`Duration::MAX`) is no deadline.
fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
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
}

pub(crate) struct ListObj {
    tag: String,
    state: Mutex<ListState>,
}

impl ListObj {
    pub(crate) fn new(tag: String, items: Vec<Elem>) -> Self {
        ListObj {
            tag,
            state: Mutex::new(ListState { items, version: 0 }),
        }
    }
}

impl Object for ListObj {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, cx: &Cx<'_>, method: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let mut s = lock(&self.state);
        let mutating = matches!(
            method,
            "push"
                | "extend"
                | "insert"
                | "set"
                | "pop"
                | "remove"
                | "reverse"
                | "clear"
                | "permute"
        );
        if mutating {
            s.version += 1;
        }
        match method {
            "push" => {
                let e: Elem = args(a)?;
                cx.adopt(&e)?;
                s.items.push(e);
                ok(&())
            }
            "extend" => {
                let es: Vec<Elem> = args(a)?;
                cx.adopt_all(&es)?;
                s.items.extend(es);
                ok(&())
            }
            "insert" => {
                let (i, e): (i64, Elem) = args(a)?;
                cx.adopt(&e)?;
                let len = s.items.len();
                let at = clamp(Some(i), len, len);
                s.items.insert(at, e);
                ok(&())
            }
            "get" => {
                let i: i64 = args(a)?;
                let at = index(i, s.items.len())?;
                cx.share(&s.items[at]);
                ok(&s.items[at])
            }
            "set" => {
                let (i, e): (i64, Elem) = args(a)?;
                let at = index(i, s.items.len())?;
                cx.adopt(&e)?;
                let old = std::mem::replace(&mut s.items[at], e);
                cx.release(&old);
                ok(&())
            }
            "slice" => {
                let (start, end): (Option<i64>, Option<i64>) = args(a)?;
                let len = s.items.len();
                let (from, to) = (clamp(start, len, 0), clamp(end, len, len));
                let part = if from < to {
                    &s.items[from..to]
                } else {
                    &[][..]
                };
                cx.share_all(part);
                ok(part)
            }
            "pop" => {
                let i: Option<i64> = args(a)?;
                let len = s.items.len();
                if len == 0 {
                    return Err(RemoteError::new(
                        RemoteErrorKind::IndexOutOfRange,
                        "pop from empty list",
                    ));
                }
                let at = index(i.unwrap_or(-1), len)?;
                // The popped element's references pass to the caller's copy.
                ok(&s.items.remove(at))
            }
            "remove" => {
                let needle: Vec<u8> = args(a)?;
                let Some(at) = s.items.iter().position(|e| e.bytes == needle) else {
                    return Err(RemoteError::new(
                        RemoteErrorKind::NotFound,
                        "list.remove(x): x not in list",
                    ));
                };
                let old = s.items.remove(at);
                cx.release(&old);
                ok(&())
            }
            "index" => {
                let needle: Vec<u8> = args(a)?;
                match s.items.iter().position(|e| e.bytes == needle) {
                    Some(at) => ok(&(at as u64)),
                    None => Err(RemoteError::new(
                        RemoteErrorKind::NotFound,
                        "value is not in list",
                    )),
                }
            }
            "count" => {
                let needle: Vec<u8> = args(a)?;
                ok(&(s.items.iter().filter(|e| e.bytes == needle).count() as u64))
            }
            "contains" => {
                let needle: Vec<u8> = args(a)?;
                ok(&s.items.iter().any(|e| e.bytes == needle))
            }
            "reverse" => {
                s.items.reverse();
                ok(&())
            }
            "len" => ok(&(s.items.len() as u64)),
            "clear" => {
                let old = std::mem::take(&mut s.items);
                cx.release_all(&old);
                ok(&())
            }
            "to_vec" => {
                cx.share_all(&s.items);
                ok(&s.items)
            }
            "snapshot" => {
                cx.share_all(&s.items);
                ok(&(s.version, &s.items))
            }
            "permute" => {
                let (version, order): (u64, Vec<u32>) = args(a)?;
                // `version` was read before this call bumped it.
                if version.checked_add(1) != Some(s.version) {
                    return Err(RemoteError::new(
                        RemoteErrorKind::Conflict,
                        "list changed while sorting",
                    ));
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
                ok(&())
            }
            _ => {
                if mutating {
                    s.version -= 1;
                }
                Err(RemoteError::unknown_method("list", method))
            }
        }
    }

    fn drain_refs(&self) -> Vec<u64> {
        refs_of(&std::mem::take(&mut lock(&self.state).items))
    }
}

// ---------------------------------------------------------------------------------------------
// dict (insertion-ordered, keyed by the key's encoding)

#[derive(Default)]
struct DictState {
    index: HashMap<Vec<u8>, u64>,
    entries: BTreeMap<u64, (Elem, Elem)>,
    next_seq: u64,
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

    fn remove(&mut self, key: &[u8]) -> Option<(Elem, Elem)> {
        let seq = self.index.remove(key)?;
        self.entries.remove(&seq)
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

    fn call(&self, cx: &Cx<'_>, method: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let mut s = lock(&self.state);
        match method {
            "get" => {
                let key: Vec<u8> = args(a)?;
                let v = s
                    .index
                    .get(&key)
                    .and_then(|seq| s.entries.get(seq))
                    .map(|(_, v)| v);
                if let Some(v) = v {
                    cx.share(v);
                }
                ok(&v)
            }
            "insert" => {
                let (k, v): (Elem, Elem) = args(a)?;
                cx.adopt(&k)?;
                cx.adopt(&v)?;
                ok(&s.insert(cx, k, v))
            }
            "update" => {
                let items: Vec<(Elem, Elem)> = args(a)?;
                for (k, v) in &items {
                    cx.adopt(k)?;
                    cx.adopt(v)?;
                }
                for (k, v) in items {
                    if let Some(old) = s.insert(cx, k, v) {
                        cx.release(&old);
                    }
                }
                ok(&())
            }
            "remove" => {
                let key: Vec<u8> = args(a)?;
                let removed = s.remove(&key).map(|(k, v)| {
                    cx.release(&k);
                    v
                });
                ok(&removed)
            }
            "contains_key" => {
                let key: Vec<u8> = args(a)?;
                ok(&s.index.contains_key(&key))
            }
            "keys" => {
                let keys: Vec<&Elem> = s.entries.values().map(|(k, _)| k).collect();
                cx.share_all(keys.iter().copied());
                ok(&keys)
            }
            "values" => {
                let values: Vec<&Elem> = s.entries.values().map(|(_, v)| v).collect();
                cx.share_all(values.iter().copied());
                ok(&values)
            }
            "items" => {
                let items: Vec<(&Elem, &Elem)> = s.entries.values().map(|(k, v)| (k, v)).collect();
                for (k, v) in &items {
                    cx.share(k);
                    cx.share(v);
                }
                ok(&items)
            }
            "len" => ok(&(s.entries.len() as u64)),
            "clear" => {
                let old = std::mem::take(&mut *s);
                for (k, v) in old.entries.values() {
                    cx.release(k);
                    cx.release(v);
                }
                ok(&())
            }
            _ => Err(RemoteError::unknown_method("dict", method)),
        }
    }

    fn drain_refs(&self) -> Vec<u64> {
        let old = std::mem::take(&mut *lock(&self.state));
        old.entries
            .values()
            .flat_map(|(k, v)| k.refs.iter().chain(&v.refs).copied())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// namespace

pub(crate) struct NamespaceObj {
    attrs: Mutex<BTreeMap<String, Elem>>,
}

impl NamespaceObj {
    pub(crate) fn new() -> Self {
        NamespaceObj {
            attrs: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Object for NamespaceObj {
    fn tag(&self) -> &str {
        "namespace"
    }

    fn call(&self, cx: &Cx<'_>, method: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let mut attrs = lock(&self.attrs);
        match method {
            "get" => {
                let name: String = args(a)?;
                let v = attrs.get(&name);
                if let Some(v) = v {
                    cx.share(v);
                }
                ok(&v)
            }
            "set" => {
                let (name, v): (String, Elem) = args(a)?;
                cx.adopt(&v)?;
                if let Some(old) = attrs.insert(name, v) {
                    cx.release(&old);
                }
                ok(&())
            }
            "remove" => {
                let name: String = args(a)?;
                ok(&attrs.remove(&name))
            }
            "contains" => {
                let name: String = args(a)?;
                ok(&attrs.contains_key(&name))
            }
            "names" => ok(&attrs.keys().collect::<Vec<_>>()),
            _ => Err(RemoteError::unknown_method("namespace", method)),
        }
    }

    fn drain_refs(&self) -> Vec<u64> {
        refs_of(std::mem::take(&mut *lock(&self.attrs)).values())
    }
}

// ---------------------------------------------------------------------------------------------
// value and array

pub(crate) struct ValueObj {
    tag: String,
    value: Mutex<Elem>,
}

impl ValueObj {
    pub(crate) fn new(tag: String, value: Elem) -> Self {
        ValueObj {
            tag,
            value: Mutex::new(value),
        }
    }
}

impl Object for ValueObj {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, cx: &Cx<'_>, method: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let mut v = lock(&self.value);
        match method {
            "get" => {
                cx.share(&v);
                ok(&*v)
            }
            "set" => {
                let e: Elem = args(a)?;
                cx.adopt(&e)?;
                let old = std::mem::replace(&mut *v, e);
                cx.release(&old);
                ok(&())
            }
            "swap" => {
                let e: Elem = args(a)?;
                cx.adopt(&e)?;
                ok(&std::mem::replace(&mut *v, e))
            }
            _ => Err(RemoteError::unknown_method("value", method)),
        }
    }

    fn drain_refs(&self) -> Vec<u64> {
        std::mem::take(&mut lock(&self.value).refs)
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

    fn call(&self, cx: &Cx<'_>, method: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let mut items = lock(&self.items);
        match method {
            "get" => {
                let i: i64 = args(a)?;
                let at = index(i, items.len())?;
                cx.share(&items[at]);
                ok(&items[at])
            }
            "set" => {
                let (i, e): (i64, Elem) = args(a)?;
                let at = index(i, items.len())?;
                cx.adopt(&e)?;
                let old = std::mem::replace(&mut items[at], e);
                cx.release(&old);
                ok(&())
            }
            "len" => ok(&(items.len() as u64)),
            "to_vec" => {
                cx.share_all(items.iter());
                ok(&*items)
            }
            _ => Err(RemoteError::unknown_method("array", method)),
        }
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

    fn call(&self, cx: &Cx<'_>, method: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let s = lock(&self.state);
        match method {
            "put" => {
                let (e, block, timeout): (Elem, bool, Option<Duration>) = args(a)?;
                let (mut s, room) = if block {
                    wait_until(cx, &self.changed, s, deadline(timeout), |s| !self.full(s))?
                } else {
                    let room = !self.full(&s);
                    (s, room)
                };
                if !room {
                    return ok(&false);
                }
                cx.adopt(&e)?;
                s.items.push_back(e);
                s.unfinished += 1;
                self.changed.notify_all();
                ok(&true)
            }
            "get" => {
                let (block, timeout): (bool, Option<Duration>) = args(a)?;
                let (mut s, _) = if block {
                    wait_until(cx, &self.changed, s, deadline(timeout), |s| {
                        !s.items.is_empty()
                    })?
                } else {
                    (s, true)
                };
                let item = s.items.pop_front();
                if item.is_some() {
                    self.changed.notify_all();
                }
                ok(&item)
            }
            "len" => ok(&(s.items.len() as u64)),
            "is_empty" => ok(&s.items.is_empty()),
            "is_full" => ok(&self.full(&s)),
            "task_done" if self.joinable => {
                let mut s = s;
                if s.unfinished == 0 {
                    return Err(RemoteError::new(
                        RemoteErrorKind::NotAcquired,
                        "task_done() called too many times",
                    ));
                }
                s.unfinished -= 1;
                if s.unfinished == 0 {
                    self.changed.notify_all();
                }
                ok(&())
            }
            "join" if self.joinable => {
                let timeout: Option<Duration> = args(a)?;
                let (guard, done) = wait_until(cx, &self.changed, s, deadline(timeout), |s| {
                    s.unfinished == 0
                })?;
                drop(guard);
                ok(&done)
            }
            _ => Err(RemoteError::unknown_method(
                if self.joinable {
                    "joinable queue"
                } else {
                    "queue"
                },
                method,
            )),
        }
    }

    fn drain_refs(&self) -> Vec<u64> {
        refs_of(&std::mem::take(&mut lock(&self.state).items))
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

    fn call(&self, cx: &Cx<'_>, method: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let s = lock(&self.state);
        match method {
            "acquire" => {
                let (block, timeout): (bool, Option<Duration>) = args(a)?;
                let me = cx.conn;
                let free = |s: &mut LockState| {
                    s.owner.is_none() || (self.reentrant && s.owner == Some(me))
                };
                let (mut s, got) = if block {
                    wait_until(cx, &self.changed, s, deadline(timeout), free)?
                } else {
                    let mut s = s;
                    let got = free(&mut s);
                    (s, got)
                };
                if got {
                    s.owner = Some(me);
                    s.count += 1;
                }
                ok(&got)
            }
            "release" => {
                let mut s = s;
                let held = s.owner.is_some() && (!self.reentrant || s.owner == Some(cx.conn));
                if !held {
                    let what = if self.reentrant {
                        "cannot release un-acquired or foreign rlock"
                    } else {
                        "release of unlocked lock"
                    };
                    return Err(RemoteError::new(RemoteErrorKind::NotAcquired, what));
                }
                s.count -= 1;
                if s.count == 0 {
                    s.owner = None;
                    self.changed.notify_all();
                }
                ok(&())
            }
            "locked" => ok(&s.owner.is_some()),
            _ => Err(RemoteError::unknown_method(self.tag(), method)),
        }
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

    fn call(&self, cx: &Cx<'_>, method: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let v = lock(&self.value);
        match method {
            "acquire" => {
                let (block, timeout): (bool, Option<Duration>) = args(a)?;
                let (mut v, got) = if block {
                    wait_until(cx, &self.changed, v, deadline(timeout), |v| *v > 0)?
                } else {
                    let got = *v > 0;
                    (v, got)
                };
                if got {
                    *v -= 1;
                }
                ok(&got)
            }
            "release" => {
                let n: u64 = args(a)?;
                let mut v = v;
                let Some(after) = v.checked_add(n) else {
                    return Err(RemoteError::bad_args("semaphore value would overflow"));
                };
                if let Some(bound) = self.bound {
                    if after > bound {
                        return Err(RemoteError::new(
                            RemoteErrorKind::NotAcquired,
                            "semaphore released too many times",
                        ));
                    }
                }
                *v = after;
                self.changed.notify_all();
                ok(&())
            }
            "value" => ok(&*v),
            _ => Err(RemoteError::unknown_method(self.tag(), method)),
        }
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

fn not_owner() -> RemoteError {
    RemoteError::new(
        RemoteErrorKind::NotAcquired,
        "cannot use an un-acquired condition",
    )
}

impl Object for ConditionObj {
    fn tag(&self) -> &str {
        "condition"
    }

    fn call(&self, cx: &Cx<'_>, method: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let me = cx.conn;
        let s = lock(&self.state);
        match method {
            "acquire" => {
                let (block, timeout): (bool, Option<Duration>) = args(a)?;
                let free = |s: &mut CondState| s.owner.is_none() || s.owner == Some(me);
                let (mut s, got) = if block {
                    wait_until(cx, &self.changed, s, deadline(timeout), free)?
                } else {
                    let mut s = s;
                    let got = free(&mut s);
                    (s, got)
                };
                if got {
                    s.owner = Some(me);
                    s.count += 1;
                }
                ok(&got)
            }
            "release" => {
                let mut s = s;
                if s.owner != Some(me) {
                    return Err(not_owner());
                }
                s.count -= 1;
                if s.count == 0 {
                    s.owner = None;
                    self.changed.notify_all();
                }
                ok(&())
            }
            "wait" => {
                let timeout: Option<Duration> = args(a)?;
                let mut s = s;
                if s.owner != Some(me) {
                    return Err(not_owner());
                }
                let saved = s.count;
                s.owner = None;
                s.count = 0;
                let ticket = s.next_ticket;
                s.next_ticket += 1;
                s.waiting.push_back(ticket);
                self.changed.notify_all();
                let waited = wait_until(cx, &self.changed, s, deadline(timeout), |s| {
                    s.notified.contains(&ticket)
                });
                let (s, notified) = match waited {
                    Ok(r) => r,
                    Err(e) => {
                        let mut s = lock(&self.state);
                        s.waiting.retain(|&t| t != ticket);
                        s.notified.remove(&ticket);
                        return Err(e);
                    }
                };
                let mut s = s;
                s.waiting.retain(|&t| t != ticket);
                s.notified.remove(&ticket);
                // Re-acquire before returning, as threading.Condition does.
                let (mut s, _) = wait_until(cx, &self.changed, s, None, |s| s.owner.is_none())?;
                s.owner = Some(me);
                s.count = saved;
                ok(&notified)
            }
            "notify" => {
                let n: u64 = args(a)?;
                let mut s = s;
                if s.owner != Some(me) {
                    return Err(not_owner());
                }
                for _ in 0..n {
                    let Some(t) = s.waiting.pop_front() else {
                        break;
                    };
                    s.notified.insert(t);
                }
                self.changed.notify_all();
                ok(&())
            }
            "notify_all" => {
                let mut s = s;
                if s.owner != Some(me) {
                    return Err(not_owner());
                }
                while let Some(t) = s.waiting.pop_front() {
                    s.notified.insert(t);
                }
                self.changed.notify_all();
                ok(&())
            }
            _ => Err(RemoteError::unknown_method("condition", method)),
        }
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

    fn call(&self, cx: &Cx<'_>, method: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let mut flag = lock(&self.flag);
        match method {
            "set" => {
                *flag = true;
                self.changed.notify_all();
                ok(&())
            }
            "clear" => {
                *flag = false;
                ok(&())
            }
            "is_set" => ok(&*flag),
            "wait" => {
                let timeout: Option<Duration> = args(a)?;
                let (guard, set) = wait_until(cx, &self.changed, flag, deadline(timeout), |f| *f)?;
                drop(guard);
                ok(&set)
            }
            _ => Err(RemoteError::unknown_method("event", method)),
        }
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

fn broken() -> RemoteError {
    RemoteError::new(RemoteErrorKind::BrokenBarrier, "the barrier is broken")
}

impl Object for BarrierObj {
    fn tag(&self) -> &str {
        "barrier"
    }

    fn call(&self, cx: &Cx<'_>, method: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let mut s = lock(&self.state);
        match method {
            "wait" => {
                let timeout: Option<Duration> = args(a)?;
                if s.broken {
                    return Err(broken());
                }
                let arrival = s.count;
                s.count += 1;
                if s.count == self.parties {
                    s.count = 0;
                    s.generation += 1;
                    self.changed.notify_all();
                    return ok(&arrival);
                }
                let generation = s.generation;
                let waited = wait_until(cx, &self.changed, s, deadline(timeout), |s| {
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
                        return Err(broken());
                    }
                    return ok(&arrival);
                }
                if !passed {
                    // A timed-out waiter breaks the barrier for everyone, as in Python.
                    s.broken = true;
                    self.changed.notify_all();
                }
                Err(broken())
            }
            "abort" => {
                s.broken = true;
                self.changed.notify_all();
                ok(&())
            }
            "reset" => {
                if s.count > 0 {
                    s.reset_generation = Some(s.generation);
                }
                s.generation += 1;
                s.count = 0;
                s.broken = false;
                self.changed.notify_all();
                ok(&())
            }
            "parties" => ok(&self.parties),
            "n_waiting" => ok(&s.count),
            "broken" => ok(&s.broken),
            _ => Err(RemoteError::unknown_method("barrier", method)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// custom

pub(crate) struct CustomObj {
    tag: String,
    inner: Mutex<Box<dyn SharedObject>>,
}

impl CustomObj {
    pub(crate) fn new(tag: String, inner: Box<dyn SharedObject>) -> Self {
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

    fn call(&self, _cx: &Cx<'_>, method: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let mut inner = lock(&self.inner);
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.call(method, a)));
        match result {
            Ok(r) => r,
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".into());
                Err(RemoteError::new(
                    RemoteErrorKind::Panicked,
                    format!("{}::{method}: {msg}", self.tag),
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
