//! The server's table of shared objects and their reference counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{RemoteError, RemoteErrorKind};
use crate::server::objects::Object;

struct Entry {
    object: Arc<dyn Object>,
    refs: u64,
}

/// The references one client process holds (proxies, values it was sent), booked under the
/// process id of its `Hello` so that a process that ends, also by dying, gives them back.
///
/// One `Holder` is one life of a process as the server sees it: it starts with the first
/// connection of that process id and ends (is *released*) when the process's last anchor
/// closes. Every connection of the process keeps the `Holder` it joined, so a reply still on its
/// way when the process ended (a queue item popped, a list created) cannot be booked on a
/// released life, where nothing would ever give it back: the reply settles against its own
/// life, sees it released, and gives the references back at once. A process id that connects
/// again after its anchor closed starts a new life, untouched by the late replies of the old
/// one.
pub(crate) struct Holder {
    process: u64,
    state: Mutex<HolderState>,
}

#[derive(Default)]
struct HolderState {
    /// Open connections of this life (anchors included).
    conns: usize,
    /// Open anchors: when the last one closes, the life ends.
    anchors: usize,
    released: bool,
    /// Replies between [`Registry::begin_reply`] and [`Registry::end_reply`]: a release that
    /// comes meanwhile leaves their references to them (and gives back the rest after the last).
    settling: usize,
    /// References held, by object id.
    held: HashMap<u64, u64>,
}

impl Holder {
    fn state(&self) -> MutexGuard<'_, HolderState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Objects by id, each with the number of proxies (and stored elements) referring to it.
///
/// Invariant: an object is in the table exactly while its count is positive; when it drops to
/// zero the object is removed and the references its contents held are released in turn.
pub(crate) struct Registry {
    objects: Mutex<HashMap<u64, Entry>>,
    names: Mutex<HashMap<String, u64>>,
    next_id: std::sync::atomic::AtomicU64,
    /// The current life of each client process with a connection open (or references held).
    holders: Mutex<HashMap<u64, Arc<Holder>>>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            objects: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            next_id: std::sync::atomic::AtomicU64::new(1),
            holders: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn holders(&self) -> MutexGuard<'_, HashMap<u64, Arc<Holder>>> {
        self.holders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection of client process `process` opened (`anchor`: it is the process's anchor):
    /// the life it belongs to, the current one unless that was released.
    pub(crate) fn attach(&self, process: u64, anchor: bool) -> Arc<Holder> {
        // Lock order: the map, then a holder.
        let mut holders = self.holders();
        if let Some(current) = holders.get(&process) {
            let mut st = current.state();
            if !st.released {
                st.conns += 1;
                st.anchors += usize::from(anchor);
                drop(st);
                return Arc::clone(current);
            }
        }
        let holder = Arc::new(Holder {
            process,
            state: Mutex::new(HolderState {
                conns: 1,
                anchors: usize::from(anchor),
                ..HolderState::default()
            }),
        });
        holders.insert(process, Arc::clone(&holder));
        holder
    }

    /// A connection of `holder`'s life closed; when it was the last anchor, the life ends and
    /// every reference it still holds is given back (after the replies still settling).
    pub(crate) fn detach(&self, holder: &Arc<Holder>, anchor: bool) {
        let (give_back, forget) = {
            let mut st = holder.state();
            st.conns = st.conns.saturating_sub(1);
            if anchor {
                st.anchors = st.anchors.saturating_sub(1);
                if st.anchors == 0 {
                    st.released = true;
                }
            }
            let give_back = if st.released && st.settling == 0 {
                std::mem::take(&mut st.held)
            } else {
                HashMap::new()
            };
            let idle = st.conns == 0 && st.held.is_empty() && st.settling == 0;
            (give_back, st.released || idle)
        };
        if forget {
            self.forget(holder);
        }
        self.give_back(give_back);
    }

    /// Removes `holder` from the map if it is still its process's current life and is released
    /// or idle (no connection, nothing held): an idle life's next connection starts a new one.
    fn forget(&self, holder: &Arc<Holder>) {
        let mut holders = self.holders();
        let Some(current) = holders.get(&holder.process) else {
            return;
        };
        if !Arc::ptr_eq(current, holder) {
            return;
        }
        let st = holder.state();
        let idle = st.conns == 0 && st.held.is_empty() && st.settling == 0;
        if st.released || idle {
            drop(st);
            holders.remove(&holder.process);
        }
    }

    fn give_back(&self, held: HashMap<u64, u64>) {
        for (id, n) in held {
            for _ in 0..n {
                self.decref(id);
            }
        }
    }

    /// A reply carrying references `ids` is about to be sent: they become `holder`'s. `false`
    /// (nothing booked) when its life was released already: the caller gives them back.
    /// `true` must be followed by [`Registry::end_reply`].
    pub(crate) fn begin_reply(&self, holder: &Holder, ids: &[u64]) -> bool {
        let mut st = holder.state();
        if st.released {
            return false;
        }
        st.settling += 1;
        for &id in ids {
            *st.held.entry(id).or_insert(0) += 1;
        }
        true
    }

    /// The reply of a [`Registry::begin_reply`] was not delivered: its references `ids` are not
    /// `holder`'s after all (the caller takes them back). They are still booked: a release
    /// waits for the replies settling.
    pub(crate) fn unbook(&self, holder: &Holder, ids: &[u64]) {
        let mut st = holder.state();
        for &id in ids {
            if let Some(n) = st.held.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    st.held.remove(&id);
                }
            }
        }
    }

    /// The reply of a [`Registry::begin_reply`] is settled (sent, or taken back): a release
    /// that came meanwhile gives back what the life holds.
    pub(crate) fn end_reply(&self, holder: &Arc<Holder>) {
        let give_back = {
            let mut st = holder.state();
            st.settling -= 1;
            if st.released && st.settling == 0 {
                std::mem::take(&mut st.held)
            } else {
                return;
            }
        };
        self.give_back(give_back);
    }

    /// `holder`'s process gives back one reference on `id` (a proxy dropped). Ignored when its
    /// life was released and no longer books `id`: the release gave it back already (the
    /// request was sent before the process ended, and served after).
    pub(crate) fn drop_ref(&self, holder: &Holder, id: u64) {
        {
            let mut st = holder.state();
            let released = st.released;
            match st.held.get_mut(&id) {
                Some(n) => {
                    *n -= 1;
                    if *n == 0 {
                        st.held.remove(&id);
                    }
                }
                None if released => return,
                None => {}
            }
        }
        self.decref(id);
    }

    /// Adds `object` with one reference and returns its id.
    pub(crate) fn insert(&self, object: Arc<dyn Object>) -> u64 {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.table().insert(id, Entry { object, refs: 1 });
        id
    }

    pub(crate) fn get(&self, id: u64) -> Result<Arc<dyn Object>, RemoteError> {
        self.table()
            .get(&id)
            .map(|e| e.object.clone())
            .ok_or_else(|| unknown(id))
    }

    pub(crate) fn incref(&self, id: u64) -> Result<(), RemoteError> {
        match self.table().get_mut(&id) {
            Some(e) => {
                e.refs += 1;
                Ok(())
            }
            None => Err(unknown(id)),
        }
    }

    /// Drops one reference; frees the object (and, transitively, what its contents referred to)
    /// when none is left. Unknown ids are ignored: a late decref after a free is harmless.
    pub(crate) fn decref(&self, id: u64) {
        let mut pending = vec![id];
        while let Some(id) = pending.pop() {
            let freed = {
                let mut table = self.table();
                match table.get_mut(&id) {
                    Some(e) if e.refs > 1 => {
                        e.refs -= 1;
                        None
                    }
                    Some(_) => table.remove(&id).map(|e| e.object),
                    None => None,
                }
            };
            // The table lock is released before touching the object's own lock.
            if let Some(object) = freed {
                pending.extend(object.drain_refs());
            }
        }
    }

    /// Every live object (for disconnect cleanup).
    pub(crate) fn all(&self) -> Vec<Arc<dyn Object>> {
        self.table().values().map(|e| e.object.clone()).collect()
    }

    /// Number of live objects.
    pub(crate) fn len(&self) -> usize {
        self.table().len()
    }

    /// Looks `name` up, adding a reference for the caller.
    pub(crate) fn lookup_name(&self, name: &str) -> Option<u64> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let id = *names.get(name)?;
        self.incref(id).ok().map(|()| id)
    }

    /// Binds `name` to `id` unless it is bound already; the binding holds a reference.
    /// Returns the id the name is bound to afterwards (with a reference added for the caller
    /// when it is not `id`).
    pub(crate) fn bind_name(&self, name: &str, id: u64) -> u64 {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&existing) = names.get(name) {
            if self.incref(existing).is_ok() {
                return existing;
            }
        }
        names.insert(name.to_string(), id);
        let _ = self.incref(id);
        id
    }
}

fn unknown(id: u64) -> RemoteError {
    RemoteError::new(
        RemoteErrorKind::UnknownObject,
        format!("no object with id {id} (freed, or from another server run)"),
    )
}
