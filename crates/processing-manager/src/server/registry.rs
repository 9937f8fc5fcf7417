//! The server's table of shared objects and their reference counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{RemoteError, RemoteErrorKind};
use crate::server::objects::Object;

struct Entry {
    object: Arc<dyn Object>,
    refs: u64,
}

/// Objects by id, each with the number of proxies (and stored elements) referring to it.
///
/// Invariant: an object is in the table exactly while its count is positive; when it drops to
/// zero the object is removed and the references its contents held are released in turn.
pub(crate) struct Registry {
    objects: Mutex<HashMap<u64, Entry>>,
    names: Mutex<HashMap<String, u64>>,
    next_id: std::sync::atomic::AtomicU64,
    /// The references each client process holds (proxies, values it was sent), by the
    /// process id of its `Hello`, so that a process that ends, also by dying, gives them back.
    holders: Mutex<HashMap<u64, HashMap<u64, u64>>>,
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

    fn holders(&self) -> MutexGuard<'_, HashMap<u64, HashMap<u64, u64>>> {
        self.holders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Client process `process` now holds one more reference on each of `ids`.
    pub(crate) fn hold(&self, process: u64, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        let mut holders = self.holders();
        let held = holders.entry(process).or_default();
        for &id in ids {
            *held.entry(id).or_insert(0) += 1;
        }
    }

    /// Client process `process` gave back one reference on `id`.
    pub(crate) fn unhold(&self, process: u64, id: u64) {
        let mut holders = self.holders();
        if let Some(held) = holders.get_mut(&process) {
            if let Some(n) = held.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    held.remove(&id);
                }
            }
            if held.is_empty() {
                holders.remove(&process);
            }
        }
    }

    /// Client process `process` ended: every reference it still held is given back.
    pub(crate) fn release_process(&self, process: u64) {
        let Some(held) = self.holders().remove(&process) else {
            return;
        };
        for (id, n) in held {
            for _ in 0..n {
                self.decref(id);
            }
        }
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
