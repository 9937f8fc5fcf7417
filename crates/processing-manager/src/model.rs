//! The manager's mailbox (`sys/mailbox_linux.rs`) over loom's atomics, exposed under
//! `cfg(loom)` for `tests/loom_*.rs`: each loom thread plays one process with its own mapping
//! of the mailbox file; the futex sleep is a yield.
#![allow(missing_docs)]

pub use crate::sys::mailbox_linux::model::{pair, End, CHECKED};
