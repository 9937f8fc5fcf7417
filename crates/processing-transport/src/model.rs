//! The lock-free protocols of this crate over loom's atomics and processing-shm's heap model
//! regions, exposed under `cfg(loom)` for `tests/loom_*.rs`: the queue ring
//! ([`QueueRing`]), its overflow chain ([`ChainQueue`]) and the pipe ring ([`PipeEnd`], Linux). Sleeping is a yield; every loom
//! thread plays one process.
#![allow(missing_docs)]

pub use crate::queue::model::{ChainQueue, Fail, QueueRing};
#[cfg(target_os = "linux")]
pub use crate::sys::ring::model::{pipe_pair, PipeEnd};
