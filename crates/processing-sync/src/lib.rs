//! Synchronisation primitives that live in shared memory and work across processes.
//!
//! Layer: `core → shm → **sync** → transport → process → {manager, pool} → processing`.
//! It will hold `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Condition`, `Event`,
//! `Barrier` and the locked `Value<T>` / `Array<T>`. It never depends on transport or process.
