//! Platforms without the shared-memory fast path: `RingEnd` has no values, so every `Pipe`
//! pair runs on its stream (socket or named pipe) alone.

use std::io;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

use processing_core::handles::{BorrowedOsHandle, OwnedOsHandle};

use super::Stream;

/// Never enabled here.
pub(crate) fn enabled() -> bool {
    false
}

/// Uninhabited: no connection has a ring on this platform.
#[derive(Debug)]
pub(crate) enum RingEnd {}

/// The lock type of the ring API (never constructed here).
pub(crate) struct RingLock<'a>(PhantomData<&'a ()>);

/// `&self` methods of the uninhabited `RingEnd`, the ring API of `ring.rs` by signature: none
/// can be called (there is no value to call it on), so each body is the empty match.
macro_rules! unreachable_methods {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;)*) => {
        $(
            pub(crate) fn $name(&self $(, $arg: $ty)*) -> $ret {
                match *self {}
            }
        )*
    };
}

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "shared-memory pipes are not available on this platform",
    )
}

impl RingEnd {
    pub(crate) fn pair() -> io::Result<(RingEnd, RingEnd)> {
        Err(unsupported())
    }

    pub(crate) fn from_fd(_memfd: OwnedOsHandle, _side: u8) -> io::Result<RingEnd> {
        Err(unsupported())
    }

    unreachable_methods! {
        fn memfd() -> BorrowedOsHandle<'_>;
        fn side() -> u8;
        fn lock_write() -> RingLock<'_>;
        fn lock_read() -> RingLock<'_>;
        fn read(
            _dst: &mut [MaybeUninit<u8>],
            _stream: &Stream,
            _handles: &mut Vec<OwnedOsHandle>,
        ) -> io::Result<usize>;
        fn read_bytes(
            _dst: &mut [u8],
            _stream: &Stream,
            _handles: &mut Vec<OwnedOsHandle>,
        ) -> io::Result<usize>;
        fn wait_readable(
            _stream: &Stream,
            _handles: &mut Vec<OwnedOsHandle>,
            _deadline: Option<std::time::Instant>,
        ) -> io::Result<bool>;
        fn arm(_stream: &Stream, _handles: &mut Vec<OwnedOsHandle>) -> io::Result<bool>;
        fn drain(_stream: &Stream, _handles: &mut Vec<OwnedOsHandle>) -> io::Result<()>;
        fn readable_now() -> bool;
        fn write_all(_data: &[u8], _stream: &Stream) -> io::Result<()>;
        fn send_handles(_stream: &Stream, _handles: &[OwnedOsHandle]) -> io::Result<()>;
    }
}
