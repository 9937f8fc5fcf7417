//! A manager server process that shares objects through typed proxies.
//!
//! Layer: `core → shm → sync → transport → process → {**manager**, pool} → processing`.
//! It holds [`Manager`] (a server in a child process, on a thread, or served on a TCP port or
//! local socket for other hosts) and the typed proxies of lists, dicts, namespaces, values,
//! arrays, queues and every threading primitive, plus custom types registered with
//! [`shared_type!`]. It never depends on pool or the facade.
//!
//! ```
//! use processing::manager::Manager;
//! let manager = Manager::start_in_thread().unwrap();
//! let d = manager.dict::<String, Vec<u32>>().unwrap();
//! d.insert("primes".into(), vec![2, 3, 5]).unwrap();
//! assert_eq!(d.get(&"primes".into()).unwrap(), Some(vec![2, 3, 5]));
//! ```
//!
//! # How it works
//!
//! The server keeps every shared object in a table of reference-counted entries and serves
//! each client connection (one per process and thread) on its own thread. A proxy is the
//! server address plus an object id; each call is one request frame and one reply frame, and
//! returns after the server applied it. Values inside containers are stored as their postcard
//! encoding, so the server runs no code of the element types (except for registered custom
//! types). Reading returns a copy. Proxies stored inside containers stay live: the server
//! counts them as references and hands out fresh references with every copy it returns.
//!
//! # What a remote server must have
//!
//! Built-in objects need nothing: any server of the same protocol version serves any element
//! type. Custom types must be registered on the server (`ManagerBuilder::register`), with the
//! same definition as the client's: client and server compare type identities at connect time
//! and refuse to talk if they differ.

#![doc(html_root_url = "https://docs.rs/processing-manager/0.1.0")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod address;
mod auth;
mod calls;
mod client;
mod custom;
mod error;
mod manager;
/// The mailbox over a heap region, for the model-checking tests (`tests/loom_*.rs`).
#[cfg(all(loom, target_os = "linux"))]
pub mod model;
mod protocol;
mod proxy;
mod server;
mod spawn;
mod sys;
mod wire;

pub use address::Address;
pub use calls::Request;
pub use client::RawProxy;
pub use custom::{SharedObject, SharedType, TypeList, TypeTableRef};
pub use error::{ManagerError, RemoteError, RemoteErrorKind};
pub use manager::{Manager, ManagerBuilder, Named};
pub use protocol::{TypeIdentity, PROTOCOL_VERSION};
pub use proxy::{
    ArrayProxy, BarrierProxy, BoundedSemaphoreProxy, ConditionProxy, DictProxy, EventProxy,
    JoinableQueueProxy, ListProxy, LockProxy, NamespaceProxy, Proxy, ProxyGuard, QueueProxy,
    RLockProxy, SemaphoreProxy, ValueProxy,
};

/// Support for [`shared_type!`]; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use serde;

    use crate::ManagerError;

    /// The next field of a request or reply.
    pub fn next<'de, A: serde::de::SeqAccess<'de>, T: serde::Deserialize<'de>>(
        seq: &mut A,
    ) -> Result<T, A::Error> {
        seq.next_element()?
            .ok_or_else(|| serde::de::Error::custom("truncated request or reply"))
    }

    /// A request or reply of a shared type: its method index, then that method's fields (read
    /// by [`read`](ByIndex::read) from the same sequence).
    pub trait ByIndex<'de>: Sized {
        /// What the deserializer expected, for its error message.
        const EXPECTING: &'static str;
        /// The variant of method `index`, its fields read from `seq`.
        fn read<A: serde::de::SeqAccess<'de>>(index: u32, seq: &mut A) -> Result<Self, A::Error>;
    }

    /// Deserializes a [`ByIndex`] value (a `(index, fields)` pair).
    pub fn deserialize_by_index<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: serde::Deserializer<'de>,
        T: ByIndex<'de>,
    {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: ByIndex<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
                let index: u32 = next(&mut seq)?;
                T::read(index, &mut seq)
            }
        }
        d.deserialize_tuple(2, V(std::marker::PhantomData))
    }

    /// A request or reply whose method index the type does not have.
    pub fn unknown_index<E: serde::de::Error>(index: u32) -> E {
        E::custom(format_args!("no method #{index}"))
    }

    /// A reply that does not answer the request.
    pub fn unexpected_reply(type_name: &str) -> ManagerError {
        crate::calls::unexpected_reply(type_name)
    }
}
