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

    pub(crate) fn memfd(&self) -> BorrowedOsHandle<'_> {
        match *self {}
    }

    pub(crate) fn side(&self) -> u8 {
        match *self {}
    }

    pub(crate) fn lock_write(&self) -> RingLock<'_> {
        match *self {}
    }

    pub(crate) fn lock_read(&self) -> RingLock<'_> {
        match *self {}
    }

    pub(crate) fn read(
        &self,
        _dst: &mut [MaybeUninit<u8>],
        _stream: &Stream,
        _handles: &mut Vec<OwnedOsHandle>,
    ) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn read_bytes(
        &self,
        _dst: &mut [u8],
        _stream: &Stream,
        _handles: &mut Vec<OwnedOsHandle>,
    ) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn arm(
        &self,
        _stream: &Stream,
        _handles: &mut Vec<OwnedOsHandle>,
    ) -> io::Result<bool> {
        match *self {}
    }

    pub(crate) fn drain(
        &self,
        _stream: &Stream,
        _handles: &mut Vec<OwnedOsHandle>,
    ) -> io::Result<()> {
        match *self {}
    }

    pub(crate) fn readable_now(&self) -> bool {
        match *self {}
    }

    pub(crate) fn write_all(&self, _data: &[u8], _stream: &Stream) -> io::Result<()> {
        match *self {}
    }

    pub(crate) fn send_handles(
        &self,
        _stream: &Stream,
        _handles: &[OwnedOsHandle],
    ) -> io::Result<()> {
        match *self {}
    }
}
