//! Stand-ins for shared mappings in the loom models of the rings (`tests/loom_*.rs` of
//! processing-transport, processing-pool and processing-manager), compiled only under
//! `cfg(loom)`.
//!
//! A [`HeapRegion`] is a zero-filled, page-aligned heap buffer that plays a mapping shared by
//! the model's threads. Loom cannot see plain reads and writes through raw pointers, so the
//! rings report each copy into or out of a region with [`wrote`] and [`read`]; these check the
//! bytes' per-byte `loom::cell::UnsafeCell` shadows, so that loom reports a consumer reading
//! bytes whose writing does not happen-before the read (a commit published too early or with
//! too weak an ordering). A pointer outside every live region is not checked.
#![allow(missing_docs)]

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use loom::cell::UnsafeCell;

struct Inner {
    ptr: NonNull<u8>,
    layout: Layout,
    /// Offset of the first checked byte (`shadow[0]`).
    from: usize,
    shadow: Box<[UnsafeCell<()>]>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let start = self.ptr.as_ptr() as usize;
        REGIONS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|r| r.0 != start);
        // SAFETY: allocated in `HeapRegion::new` with this layout, freed once (last Arc).
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// Live regions: (start address, length, address of the `Inner`). A plain std mutex: it must
/// add no happens-before edge of its own to the model.
static REGIONS: Mutex<Vec<(usize, usize, usize)>> = Mutex::new(Vec::new());

/// A zero-filled heap buffer standing in for a shared mapping; clones share the bytes.
#[derive(Clone)]
pub struct HeapRegion(Arc<Inner>);

impl std::fmt::Debug for HeapRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapRegion")
            .field("len", &self.len())
            .finish()
    }
}

// SAFETY: the bytes are shared memory by design; the protocols under test synchronise their
// use (and the shadows check it).
unsafe impl Send for HeapRegion {}
// SAFETY: as above.
unsafe impl Sync for HeapRegion {}

impl HeapRegion {
    /// A zero-filled region of `len` bytes, aligned to 4096 (created inside a loom model),
    /// every byte checked.
    pub fn new(len: usize) -> HeapRegion {
        HeapRegion::tracking_from(len, 0)
    }

    /// Like [`new`](Self::new), but only bytes from `from` on are checked (the data area after
    /// a header of atomics: fewer loom objects per run).
    pub fn tracking_from(len: usize, from: usize) -> HeapRegion {
        let layout = Layout::from_size_align(len.max(1), 4096).expect("region layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("out of memory");
        let shadow = (from.min(len)..len).map(|_| UnsafeCell::new(())).collect();
        let inner = Arc::new(Inner {
            ptr,
            layout,
            from: from.min(len),
            shadow,
        });
        REGIONS.lock().unwrap_or_else(|e| e.into_inner()).push((
            ptr.as_ptr() as usize,
            len,
            Arc::as_ptr(&inner) as usize,
        ));
        HeapRegion(inner)
    }

    /// The first byte.
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.0.ptr
    }

    /// Bytes in the region.
    pub fn len(&self) -> usize {
        self.0.layout.size()
    }

    /// Whether the region has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs `f` on the shadow cells of `[ptr, ptr + len)` if that range lies in a live region.
fn with_shadow(ptr: *const u8, len: usize, f: impl Fn(&UnsafeCell<()>)) {
    let at = ptr as usize;
    let found = REGIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|r| at >= r.0 && at < r.0 + r.1)
        .map(|r| (at - r.0, r.1, r.2));
    let Some((off, rlen, inner)) = found else {
        return;
    };
    assert!(off + len <= rlen, "access past the end of a model region");
    // SAFETY: the entry is removed (under the mutex) before its `Inner` is freed, and the
    // caller is accessing the region's bytes, so it keeps the region alive meanwhile.
    let inner = unsafe { &*(inner as *const Inner) };
    let start = off.max(inner.from) - inner.from;
    let end = (off + len).max(inner.from) - inner.from;
    for cell in &inner.shadow[start..end] {
        f(cell);
    }
}

/// Records a plain write of `len` bytes at `ptr` (a data race with any access that does not
/// happen-before it fails the model).
pub fn wrote(ptr: *const u8, len: usize) {
    with_shadow(ptr, len, |c| c.with_mut(|_| ()));
}

/// Records a plain read of `len` bytes at `ptr` (a data race with a write that does not
/// happen-before it fails the model).
pub fn read(ptr: *const u8, len: usize) {
    with_shadow(ptr, len, |c| c.with(|_| ()));
}
