//! The mailbox over loom's atomics, for `tests/loom_u05_mailbox.rs` (see [`crate::model`]):
//! a pair of ends over a real mailbox file with the slots' atomics built in place.

use std::ptr::addr_of_mut;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use processing_shm::model::Shadow;

use super::*;

/// Bytes of each slot's payload that loom cells check (model messages are shorter).
pub const CHECKED: usize = 64;

/// One side of a mailbox (client or server), its file mapped once per side.
pub struct End {
    mailbox: Mailbox,
    _shadows: Arc<(Shadow, Shadow)>,
}

impl std::fmt::Debug for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.mailbox.fmt(f)
    }
}

/// The slot's atomics, built in place (loom's atomics are objects of the model, not zero
/// bytes), then stored again with SeqCst (loom counts an initial value as a non-SeqCst
/// store, which a SeqCst load could still return).
///
/// # Safety
/// `slot` points to a slot of a live mapping that nobody uses yet.
unsafe fn build(slot: *mut Slot) {
    // SAFETY: per the contract; the fields are written without reading the zero bytes.
    unsafe {
        for word in [
            addr_of_mut!((*slot).seq),
            addr_of_mut!((*slot).sleeping),
            addr_of_mut!((*slot).len),
        ] {
            word.write(AtomicU32::new(0));
            (*word).store(0, Ordering::SeqCst);
        }
    }
}

/// A client and a server end of a fresh mailbox (a file in the temporary directory,
/// unlinked once both mapped it).
pub fn pair() -> io::Result<(End, End)> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "processing-mailbox-model-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let client = Mailbox::create(&path)?;
    let server = Mailbox::open(&path);
    let _ = std::fs::remove_file(&path);
    let server = server?;
    // SAFETY: both slots lie in the client's fresh mapping, not used yet; the server's
    // mapping shows the same bytes.
    unsafe {
        build(addr_of_mut!((*client.base).request));
        build(addr_of_mut!((*client.base).response));
    }
    let data = |m: &Mailbox, request: bool| -> *const u8 {
        // SAFETY: `base` points to the live mapping of a `Shared`; only addresses are
        // computed.
        unsafe {
            if request {
                addr_of_mut!((*m.base).request.data).cast::<u8>()
            } else {
                addr_of_mut!((*m.base).response.data).cast::<u8>()
            }
        }
    };
    let shadows = Arc::new((
        Shadow::new(&[data(&client, true), data(&server, true)], CHECKED),
        Shadow::new(&[data(&client, false), data(&server, false)], CHECKED),
    ));
    Ok((
        End {
            mailbox: client,
            _shadows: shadows.clone(),
        },
        End {
            mailbox: server,
            _shadows: shadows,
        },
    ))
}

impl End {
    /// Writes and publishes `msg` (at most [`CHECKED`] bytes), or an "on the socket"
    /// announcement if `msg` is larger than a slot.
    pub fn send(&mut self, msg: &[u8]) {
        if self.mailbox.write(&[msg]) {
            assert!(msg.len() <= CHECKED, "model messages are short");
        }
        self.mailbox.publish();
    }

    /// Waits for the next message: `Some(bytes)`, or `None` when it travels on the socket;
    /// `cancelled` is asked while it sleeps (the peer-closed check).
    pub fn recv(
        &mut self,
        cancelled: impl FnMut() -> Option<io::Error>,
    ) -> io::Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self
            .mailbox
            .read(&mut buf, Duration::from_micros(1), cancelled)?
            .map(|_| buf))
    }

    /// Bytes a slot holds; a larger message goes on the socket.
    pub fn capacity() -> usize {
        CAPACITY
    }
}
