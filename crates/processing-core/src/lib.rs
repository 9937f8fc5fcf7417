//! The bottom layer of `processing`: what every other crate shares.
//!
//! Layer: below everything (`core → shm → sync → transport → process → {manager, pool} →
//! processing`). It holds the codec every value uses to cross a process boundary (postcard,
//! never anything that runs code while decoding), the per-process authentication key, the side
//! channel that carries OS handles (file descriptors on Unix, `HANDLE`s on Windows) along with a
//! serialized message, the one framer of length-prefixed messages on byte streams (`frame`), and
//! a few portable process facts (pid, liveness). It must never depend on another crate of the
//! workspace.
//!
//! ```
//! let bytes = processing::core::codec::encode(&(1u8, "abc")).unwrap();
//! let back: (u8, String) = processing::core::codec::decode(&bytes).unwrap();
//! assert_eq!(back, (1, "abc".to_string()));
//! ```

#![doc(html_root_url = "https://docs.rs/processing-core/0.1.0")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "async")]
pub mod aio;
pub mod authkey;
mod chain;
pub mod codec;
mod deadline;
pub mod frame;
pub mod handles;
pub mod os;
mod panic;
mod predicates;
mod spin;
pub mod startup;
mod sys;

pub use chain::{find_in_chain, ErrorChain, ErrorContext};
pub use codec::CodecError;
pub use deadline::{time_left, Expired};
pub use panic::panic_message;

/// The cause carried by an error variant whose source lives in a higher layer (a manager proxy's
/// `ManagerError` inside a queue or lock error): any error, sendable between threads, whose
/// concrete type `source()` + `downcast_ref` recover.
///
/// ```
/// let cause: processing::core::BoxError = Box::new(std::io::Error::other("gone"));
/// assert!(cause.downcast_ref::<std::io::Error>().is_some());
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
pub use handles::{HandleError, OwnedOsHandle, TransferableHandle};

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    static RAN: AtomicBool = AtomicBool::new(false);
    fn mark() {
        RAN.store(true, Ordering::SeqCst);
    }
    crate::on_load!(mark);

    #[test]
    fn on_load_runs_before_main() {
        assert!(RAN.load(Ordering::SeqCst));
    }
}
