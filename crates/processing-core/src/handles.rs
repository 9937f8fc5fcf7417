//! The side channel that carries OS handles along with a serialized message.
//!
//! A value that owns an OS handle (a `Connection`'s socket, a process sentinel) embeds a
//! [`TransferableHandle`]. Serializing it does not write the handle's number into the bytes;
//! what happens depends on the platform:
//!
//! - **Unix**: the descriptor is duplicated into the *outgoing* list of the innermost
//!   [`collect`] call on this thread and the message records its index. The channel that sends
//!   the message (a pipe, the spawn bootstrap) passes the list with `SCM_RIGHTS`; the receiver
//!   decodes inside [`provide`], which hands the received descriptors back by index. Serializing
//!   a handle outside [`collect`] (for example into a shared-memory queue) is an error.
//! - **Windows**: the handle is duplicated within the sending process and the message records
//!   `(sender pid, handle value)`; the receiver pulls it with `DuplicateHandle(...,
//!   DUPLICATE_CLOSE_SOURCE)`. This works through any channel while the sender lives.
//!
//! ```
//! use processing::core::handles;
//! // Plain values need no handles: the outgoing list is empty.
//! let (bytes, fds) = handles::collect(|| processing::core::codec::encode(&5u8)).unwrap();
//! assert!(fds.is_empty());
//! let v: u8 = handles::provide(fds, || processing::core::codec::decode(&bytes)).unwrap();
//! assert_eq!(v, 5);
//! ```

use std::cell::RefCell;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[cfg(unix)]
pub use std::os::fd::{
    AsFd as AsOsHandle, BorrowedFd as BorrowedOsHandle, OwnedFd as OwnedOsHandle,
};
#[cfg(windows)]
pub use std::os::windows::io::{
    AsHandle as AsOsHandle, BorrowedHandle as BorrowedOsHandle, OwnedHandle as OwnedOsHandle,
};

/// An OS handle could not travel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// A handle was serialized where no handle-carrying channel is active (Unix).
    #[error("an OS handle can only travel as a spawn argument or through a pipe, not through this channel")]
    NoChannel,
    /// The message referred to a handle that did not arrive with it.
    #[error("the message refers to OS handle #{0}, which did not arrive with it")]
    Missing(u32),
    /// The operating system refused to duplicate the handle.
    #[error("cannot duplicate OS handle: {0}")]
    Io(#[from] std::io::Error),
}

thread_local! {
    static OUTGOING: RefCell<Vec<Vec<OwnedOsHandle>>> = const { RefCell::new(Vec::new()) };
    static INCOMING: RefCell<Vec<Vec<Option<OwnedOsHandle>>>> = const { RefCell::new(Vec::new()) };
    static DUP_ERROR: RefCell<Option<std::io::Error>> = const { RefCell::new(None) };
}

/// Keeps the operating system's error of a failed duplication for [`take_os_error`] (the
/// serializer's own error type carries only text).
pub(crate) fn record_os_error(e: &std::io::Error) {
    let kept = match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(e.kind(), e.to_string()),
    };
    DUP_ERROR.with(|d| *d.borrow_mut() = Some(kept));
}

/// The operating system's error of the last handle this thread failed to duplicate while
/// serializing (descriptors exhausted...), taken: call it right after a failed encoding to
/// report the cause as a typed error rather than text.
///
/// ```
/// assert!(processing::core::handles::take_os_error().is_none());
/// ```
pub fn take_os_error() -> Option<std::io::Error> {
    DUP_ERROR.with(|d| d.borrow_mut().take())
}

/// Runs `f` (which serializes a message) and returns its result together with the OS handles
/// the serialization referred to, in index order. On Windows the list is always empty.
///
/// Calls nest: each collects only what is serialized directly inside it.
pub fn collect<R, E>(f: impl FnOnce() -> Result<R, E>) -> Result<(R, Vec<OwnedOsHandle>), E> {
    OUTGOING.with(|o| o.borrow_mut().push(Vec::new()));
    DUP_ERROR.with(|d| d.borrow_mut().take());
    let result = f();
    let handles = OUTGOING.with(|o| o.borrow_mut().pop()).unwrap_or_default();
    result.map(|r| (r, handles))
}

/// Runs `f` (which deserializes a message) with `handles`, the OS handles that arrived with the
/// message. Handles the message did not claim are closed when this returns.
pub fn provide<R>(handles: Vec<OwnedOsHandle>, f: impl FnOnce() -> R) -> R {
    INCOMING.with(|i| i.borrow_mut().push(handles.into_iter().map(Some).collect()));
    let result = f();
    INCOMING.with(|i| i.borrow_mut().pop());
    result
}

/// Whether a [`collect`] is active on this thread (Unix: a handle may be serialized now).
pub fn channel_active() -> bool {
    cfg!(windows) || OUTGOING.with(|o| !o.borrow().is_empty())
}

/// An owned OS handle that can be serialized into a message (see the module docs).
///
/// ```
/// # #[cfg(unix)] {
/// use processing::core::{codec, handles::{self, TransferableHandle}};
/// let file = std::fs::File::open("/dev/null").unwrap();
/// let h = TransferableHandle::new(file.into());
/// let (bytes, fds) = handles::collect(|| codec::encode(&h)).unwrap();
/// assert_eq!(fds.len(), 1);
/// let back: TransferableHandle = handles::provide(fds, || codec::decode(&bytes)).unwrap();
/// let _owned = back.into_inner();
/// # }
/// ```
#[derive(Debug)]
pub struct TransferableHandle(OwnedOsHandle);

impl TransferableHandle {
    /// Wraps an owned handle.
    pub fn new(handle: OwnedOsHandle) -> Self {
        TransferableHandle(handle)
    }

    /// The owned handle.
    pub fn into_inner(self) -> OwnedOsHandle {
        self.0
    }

    /// Borrows the handle.
    pub fn as_handle(&self) -> BorrowedOsHandle<'_> {
        AsOsHandleExt::as_fd_or_handle(&self.0)
    }
}

/// Serializes a borrowed handle through the side channel (for use inside `Serialize` impls of
/// types that keep their handle in another shape).
pub fn serialize_handle<S: Serializer>(
    handle: BorrowedOsHandle<'_>,
    s: S,
) -> Result<S::Ok, S::Error> {
    crate::sys::serialize_handle(handle, &OUTGOING, s)
}

/// Deserializes a handle written by [`serialize_handle`].
pub fn deserialize_handle<'de, D: Deserializer<'de>>(d: D) -> Result<OwnedOsHandle, D::Error> {
    crate::sys::deserialize_handle(&INCOMING, d)
}

impl Serialize for TransferableHandle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_handle(self.as_handle(), s)
    }
}

impl<'de> Deserialize<'de> for TransferableHandle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_handle(d).map(TransferableHandle)
    }
}

/// Borrowing either a descriptor or a handle under one name.
trait AsOsHandleExt {
    fn as_fd_or_handle(&self) -> BorrowedOsHandle<'_>;
}

#[cfg(unix)]
impl<T: std::os::fd::AsFd> AsOsHandleExt for T {
    fn as_fd_or_handle(&self) -> BorrowedOsHandle<'_> {
        self.as_fd()
    }
}

#[cfg(windows)]
impl<T: std::os::windows::io::AsHandle> AsOsHandleExt for T {
    fn as_fd_or_handle(&self) -> BorrowedOsHandle<'_> {
        self.as_handle()
    }
}

#[allow(unused_imports)]
use AsOsHandleExt as _;
pub(crate) type Outgoing = std::thread::LocalKey<RefCell<Vec<Vec<OwnedOsHandle>>>>;
pub(crate) type Incoming = std::thread::LocalKey<RefCell<Vec<Vec<Option<OwnedOsHandle>>>>>;

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn handle_outside_channel_is_an_error() {
        use super::*;
        let file = std::fs::File::open("/dev/null").unwrap();
        let h = TransferableHandle::new(file.into());
        assert!(crate::codec::encode(&h).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn missing_handle_is_an_error() {
        use super::*;
        let file = std::fs::File::open("/dev/null").unwrap();
        let h = TransferableHandle::new(file.into());
        let (bytes, _fds) = collect(|| crate::codec::encode(&h)).unwrap();
        let r: Result<TransferableHandle, _> = provide(Vec::new(), || crate::codec::decode(&bytes));
        assert!(r.is_err());
    }
}
