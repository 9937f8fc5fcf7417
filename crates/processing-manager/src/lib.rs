//! A manager server process that shares objects through typed proxies.
//!
//! Layer: `core → shm → sync → transport → process → {**manager**, pool} → processing`.
//! It will hold `Manager` and the proxies of lists, dicts, namespaces, queues and primitives.
//! It never depends on pool or the facade.
