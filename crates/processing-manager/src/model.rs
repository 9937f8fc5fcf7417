//! The manager's mailbox (`sys/mailbox_linux.rs`: two of processing-shm's SPSC rings) over a
//! heap region, exposed under `cfg(loom)` for `tests/loom_*.rs`: each loom thread plays one
//! process with its end of the mailbox; the futex sleep is a yield.
#![allow(missing_docs)]

pub use crate::sys::mailbox_linux::model::{pair, End};
