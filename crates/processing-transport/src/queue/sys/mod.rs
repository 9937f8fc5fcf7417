//! Platform seam of the queue: waiting on a 32-bit word of shared memory until it changes, and
//! waking the processes that wait on it. The rest of `queue` never writes `#[cfg]` for a platform.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::{wait, wake_all};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{wait, wake_all};
