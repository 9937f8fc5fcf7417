//! Platforms without the shared-memory mailbox: every message travels on the socket.

use std::io;
use std::path::{Path, PathBuf};

/// Never constructed here.
#[derive(Debug)]
pub(crate) enum Mailbox {}

impl Mailbox {
    pub(crate) fn create(_path: &Path) -> io::Result<Mailbox> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no shared-memory mailbox on this platform",
        ))
    }

    pub(crate) fn open(path: &Path) -> io::Result<Mailbox> {
        Mailbox::create(path)
    }

    pub(crate) fn write(&mut self, _parts: &[&[u8]]) -> bool {
        match *self {}
    }

    pub(crate) fn publish(&mut self) {
        match *self {}
    }

    pub(crate) fn read(
        &mut self,
        _buf: &mut Vec<u8>,
        _cancelled: impl FnMut() -> Option<io::Error>,
    ) -> io::Result<Option<usize>> {
        match *self {}
    }
}

/// No mailboxes, no paths.
pub(crate) fn mailbox_path(_socket: &Path) -> Option<PathBuf> {
    None
}
