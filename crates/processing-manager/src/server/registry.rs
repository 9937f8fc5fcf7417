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
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            objects: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            next_id: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn table(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
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
