//! How the twin's queues and pipe ends serialize: by id, in a table of this process.
//!
//! Serializing a handle pins its shared state in the table (it is "in flight", as a serialized
//! shared-memory handle keeps its segment alive), and deserializing takes the pin back, so a
//! handle moved into a thread pool's task arguments survives its sender dropping it. A handle
//! deserialized again later (the same bytes twice) attaches while any other handle lives.
//! Twin handles are threads' objects: deserializing one in another process fails.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use serde::{Deserialize, Serialize};

use crate::wait::lock;

type Shared = Arc<dyn Any + Send + Sync>;

struct Entry {
    weak: Weak<dyn Any + Send + Sync>,
    in_flight: Vec<Shared>,
}

fn table() -> &'static Mutex<HashMap<u64, Entry>> {
    static TABLE: OnceLock<Mutex<HashMap<u64, Entry>>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A fresh id for a twin object.
pub(super) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The serialized form of a twin handle.
#[derive(Serialize, Deserialize)]
pub(super) struct Wire {
    pid: u32,
    id: u64,
}

/// Pins `obj` as in flight and returns its serialized form.
pub(super) fn send<X: Any + Send + Sync>(id: u64, obj: &Arc<X>) -> Wire {
    // Entries of objects gone and not in flight are swept once the table has doubled since the
    // last sweep: amortised O(1) per send, and at most twice the live entries (plus 64) kept.
    static SWEEP_AT: AtomicUsize = AtomicUsize::new(64);
    let mut t = lock(table());
    if t.len() >= SWEEP_AT.load(Ordering::Relaxed) {
        t.retain(|_, e| !e.in_flight.is_empty() || e.weak.strong_count() > 0);
        SWEEP_AT.store((t.len() * 2).max(64), Ordering::Relaxed);
    }
    let shared: Shared = obj.clone();
    let e = t.entry(id).or_insert_with(|| Entry {
        weak: Arc::downgrade(&shared),
        in_flight: Vec::new(),
    });
    e.in_flight.push(shared);
    Wire {
        pid: processing_core::os::pid(),
        id,
    }
}

/// The object `wire` names, taking back one pin.
pub(super) fn receive<X: Any + Send + Sync>(wire: Wire, what: &str) -> Result<Arc<X>, String> {
    if wire.pid != processing_core::os::pid() {
        return Err(format!(
            "a thread twin's {what} cannot leave its process (it was sent by process {})",
            wire.pid
        ));
    }
    let mut t = lock(table());
    let entry = t
        .get_mut(&wire.id)
        .ok_or_else(|| format!("the thread twin's {what} no longer exists"))?;
    let shared = match entry.in_flight.pop() {
        Some(s) => s,
        None => entry
            .weak
            .upgrade()
            .ok_or_else(|| format!("the thread twin's {what} no longer exists"))?,
    };
    if entry.in_flight.is_empty() && entry.weak.strong_count() <= 1 {
        t.remove(&wire.id);
    }
    shared
        .downcast::<X>()
        .map_err(|_| format!("the serialized handle is not a thread twin's {what}"))
}
