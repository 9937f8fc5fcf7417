//! Processes with a thread-shaped API.
//!
//! Layer: `core → shm → sync → transport → **process** → {manager, pool} → processing`.
//! It will hold `Process`, the spawn, fork and forkserver start methods and the child bootstrap.
//! It never depends on manager, pool or the facade.
