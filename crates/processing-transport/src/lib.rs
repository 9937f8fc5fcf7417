//! Moving values between processes: pipes, connections, listeners and queues.
//!
//! Layer: `core → shm → sync → **transport** → process → {manager, pool} → processing`.
//! It will hold `Pipe`/`Connection<T>`, `Listener`/`Client` with authkey handshakes, and the
//! `Queue` family. It never depends on process, manager or pool.

pub mod queue;

pub use queue::{GetError, JoinableQueue, PutError, Queue, QueueBuilder, QueueError, SimpleQueue};
