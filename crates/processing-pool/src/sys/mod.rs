//! The platform seam of processing-pool: `unix.rs` or `windows.rs`, one fixed list of names.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
#[allow(unused_imports)]
pub(crate) use unix::{ignore_interrupts, resident_bytes};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
#[allow(unused_imports)]
pub(crate) use windows::{ignore_interrupts, resident_bytes};
