//! Zero-filled, page-aligned heap bytes that stand in for a shared mapping where none can be
//! made: the loom models' regions ([`crate::model::HeapRegion`]) and Miri's
//! (`Region::heap_pair`).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::ptr::NonNull;

use crate::base::SharedBase;

/// Zero-filled heap bytes aligned to a page (4096), freed on drop.
#[derive(Debug)]
pub(crate) struct HeapBytes {
    ptr: SharedBase,
    layout: Layout,
}

impl HeapBytes {
    /// `len` zero-filled bytes (one at least).
    pub(crate) fn new(len: usize) -> io::Result<HeapBytes> {
        let layout = Layout::from_size_align(len.max(1), 4096)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        Ok(HeapBytes {
            ptr: SharedBase::new(ptr),
            layout,
        })
    }

    /// The first byte.
    pub(crate) fn as_ptr(&self) -> NonNull<u8> {
        self.ptr.get()
    }

    /// Bytes allocated (the loom models' regions report it).
    #[cfg(loom)]
    pub(crate) fn len(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for HeapBytes {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.ptr.get().as_ptr(), self.layout) };
    }
}
