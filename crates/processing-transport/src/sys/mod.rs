//! The platform seam of processing-transport: `unix.rs` or `windows.rs`, one fixed list of names.
//!
//! Both provide `Stream` (a connected byte stream that may carry OS handles), `LocalListener`
//! and `connect_local` (private local sockets / named pipes), `wait_any`, `RawWaitable` and
//! `yield_now`. `RingEnd` is the shared-memory fast path of `Pipe` pairs: real on Linux
//! (`ring.rs`), an uninhabited type elsewhere (`no_ring.rs`: pairs stay on the stream).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::RawWaitable;
#[cfg(unix)]
pub(crate) use unix::{
    borrow_handle, connect_local, wait_any, yield_now, LocalListener, Stream, StreamKind,
};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::RawWaitable;
#[cfg(windows)]
pub(crate) use windows::{
    borrow_handle, connect_local, wait_any, yield_now, LocalListener, Stream, StreamKind,
};

#[cfg(target_os = "linux")]
mod ring;
#[cfg(target_os = "linux")]
pub(crate) use ring::{enabled as ring_enabled, RingEnd, RingLock};

#[cfg(not(target_os = "linux"))]
mod no_ring;
#[cfg(not(target_os = "linux"))]
pub(crate) use no_ring::{enabled as ring_enabled, RingEnd, RingLock};
