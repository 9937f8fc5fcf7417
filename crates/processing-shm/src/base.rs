//! The base address of shared memory, the one place that says why holding it is thread-safe.

use std::ptr::NonNull;

/// The first byte of shared memory: a mapping (a segment, a `Region`) or heap bytes standing
/// in for one. It is only an address: holding it or passing it to another thread touches no
/// memory, so it is `Send` and `Sync`, and so is a type made of it and of owned thread-safe
/// parts (a descriptor, a length, a name). Every access through it is an `unsafe` of its user,
/// with the protocol over the memory (atomics, single writers, the caller's locks) as its
/// safety argument, whichever thread makes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SharedBase(NonNull<u8>);

// SAFETY: an address of shared memory, never dereferenced by this type (see above); the
// memory is shared between processes by design and synchronised by its users, not by thread
// identity.
unsafe impl Send for SharedBase {}
// SAFETY: as for Send; `&SharedBase` hands out only the address.
unsafe impl Sync for SharedBase {}

impl SharedBase {
    pub(crate) fn new(ptr: NonNull<u8>) -> SharedBase {
        SharedBase(ptr)
    }

    /// The address.
    pub(crate) fn get(self) -> NonNull<u8> {
        self.0
    }
}
