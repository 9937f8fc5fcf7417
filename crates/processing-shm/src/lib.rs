//! Shared-memory segments and plain-old-data views of them.
//!
//! Layer: `core → **shm** → sync → transport → process → {manager, pool} → processing`.
//! It will hold `SharedMemory` (create, create_named, open, unlink), `RawValue<T>` and
//! `RawArray<T>` for plain-old-data `T`, and the resource tracker that removes the segments of
//! crashed processes. It knows nothing about processes, locks or channels.
