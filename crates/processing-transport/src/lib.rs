//! Moving values between processes: pipes, connections, authenticated listeners and queues.
//!
//! Layer: `core → shm → sync → **transport** → process → {manager, pool} → processing`.
//! It holds [`Pipe`]/[`Connection`] (framed typed messages with OS handles beside them),
//! [`Listener`]/[`Client`] (local sockets and TCP behind a mutual HMAC-SHA256 handshake that
//! speaks the wire of Python's `multiprocessing.connection`), and [`wait`] over connections and
//! anything [`Waitable`] (process sentinels implement it in the process layer), and the
//! [`Queue`] family (multi-producer, multi-consumer queues in shared memory). It never
//! depends on process, manager or pool.
//!
//! ```
//! use processing::transport::Pipe;
//! let (parent, child) = Pipe::new::<(u32, String)>().unwrap();
//! child.send(&(1, "one".into())).unwrap();
//! assert_eq!(parent.recv().unwrap(), (1, "one".to_string()));
//! ```

#![doc(html_root_url = "https://docs.rs/processing-transport/0.1.0")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod address;
mod auth;
mod connection;
mod error;
pub mod frame;
mod listener;
mod loom;
/// The lock-free protocols over loom's atomics, for the model-checking tests (`tests/loom_*.rs`).
#[cfg(loom)]
pub mod model;
#[cfg(feature = "pickle")]
pub mod pickle;
mod sys;
mod wait;

pub use address::{Address, IntoAddress};
pub use auth::{handshake_client, handshake_server};
#[cfg(feature = "async")]
pub use connection::AcceptAsync;
pub use connection::{
    CanRecv, CanSend, Connection, Direction, Duplex, Pipe, ReadOnly, SimplexPair, WriteOnly,
};
pub use error::{AuthError, ConnectionError, FrameError, ListenerError};
pub use listener::{Client, ClientBuilder, Listener, ListenerBuilder, MAX_PENDING_HANDSHAKES};
#[doc(hidden)]
pub use wait::Deadline;
pub use wait::{wait, RawWaitable, Waitable};

pub mod queue;

pub use queue::{GetError, JoinableQueue, PutError, Queue, QueueBuilder, QueueError, SimpleQueue};
