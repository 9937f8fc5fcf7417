//! A pool of worker processes that never hangs when a worker dies.
//!
//! Layer: `core → shm → sync → transport → process → {manager, **pool**} → processing`.
//! It will hold `Pool` with `apply`, `map`, `imap` and friends. It never depends on manager or
//! the facade.
