//! The platform seam of processing-pool: `unix.rs` or `windows.rs`, one fixed list of names.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
#[allow(unused_imports)]
pub(crate) use unix::{
    duplex, ignore_interrupts, read_now, resident_bytes, stream_from_handle, wait_readable,
    write_all, Stream,
};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
#[allow(unused_imports)]
pub(crate) use windows::{
    duplex, ignore_interrupts, read_now, resident_bytes, stream_from_handle, wait_readable,
    write_all, Stream,
};
