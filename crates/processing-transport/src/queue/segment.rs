//! The shared memory behind a queue: its own segment, and spill segments for items larger than
//! a quarter of the ring.
//!
//! PROVISIONAL: until processing-shm lands, segments live in a process-local registry on the
//! heap (enough for in-process tests with threads); this module is the only place to change.

use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock};

use super::error::QueueError;

#[derive(Debug)]
struct Block {
    ptr: NonNull<u8>,
    layout: std::alloc::Layout,
}

// SAFETY: the block is plain memory; every access goes through the queue protocol.
unsafe impl Send for Block {}
// SAFETY: as above.
unsafe impl Sync for Block {}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout in `Segment::create` and freed once, here.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

fn registry() -> &'static Mutex<HashMap<String, Arc<Block>>> {
    static R: OnceLock<Mutex<HashMap<String, Arc<Block>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// A mapped, named segment.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    name: String,
    block: Arc<Block>,
}

impl Segment {
    /// Creates a zero-filled segment of `len` bytes with a fresh name.
    pub(crate) fn create(len: usize) -> Result<Segment, QueueError> {
        let layout = std::alloc::Layout::from_size_align(len.max(1), 4096)
            .map_err(|e| QueueError::Segment(e.to_string()))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(|| QueueError::Segment("out of memory".into()))?;
        let block = Arc::new(Block { ptr, layout });
        let bytes = processing_core::authkey::random_bytes(8);
        let name = format!(
            "pq-{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), block.clone());
        Ok(Segment { name, block })
    }

    /// Opens an existing segment by name.
    pub(crate) fn open(name: &str) -> Result<Segment, QueueError> {
        let block = registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| QueueError::Segment(format!("no segment named {name}")))?;
        Ok(Segment {
            name: name.to_string(),
            block,
        })
    }

    /// Removes the name; the memory lives until the last handle is dropped.
    pub(crate) fn unlink(&self) {
        registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
    }

    /// Hands the segment over to whoever opens it next (spill segments outlive their producer).
    pub(crate) fn release_to_consumer(self) {}

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn as_ptr(&self) -> NonNull<u8> {
        self.block.ptr
    }

    pub(crate) fn len(&self) -> usize {
        self.block.layout.size()
    }
}
