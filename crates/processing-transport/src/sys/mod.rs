//! The platform seam of processing-transport: `unix.rs` or `windows.rs`, one fixed list of names.
//!
//! Both provide `Stream` (a connected byte stream that may carry OS handles), `LocalListener`
//! and `connect_local` (private local sockets / named pipes), `wait_any` and `RawWaitable`.
//! `RingEnd` is the shared-memory fast path of `Pipe` pairs: real on Linux
//! (`ring.rs`), an uninhabited type elsewhere (`no_ring.rs`: pairs stay on the stream).

/// What kind of stream a connection runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// A Unix domain socket (can carry descriptors) or a Windows named pipe.
    Local,
    /// A TCP socket.
    Tcp,
}

impl StreamKind {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            StreamKind::Local => 0,
            StreamKind::Tcp => 1,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<StreamKind> {
        match b {
            0 => Some(StreamKind::Local),
            1 => Some(StreamKind::Tcp),
            _ => None,
        }
    }
}

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::RawWaitable;
#[cfg(unix)]
pub(crate) use unix::{borrow_handle, connect_local, wait_any, LocalListener, Stream};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::RawWaitable;
#[cfg(windows)]
pub(crate) use windows::{borrow_handle, connect_local, wait_any, LocalListener, Stream};

#[cfg(target_os = "linux")]
pub(crate) mod ring;
#[cfg(target_os = "linux")]
pub(crate) use ring::{enabled as ring_enabled, RingEnd, RingLock};

#[cfg(not(target_os = "linux"))]
mod no_ring;
#[cfg(not(target_os = "linux"))]
pub(crate) use no_ring::{enabled as ring_enabled, RingEnd, RingLock};
