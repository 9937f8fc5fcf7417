//! The one platform seam of the manager: streams, listeners, the non-blocking read used by the
//! bounded spin, and the peer-closed check.
//!
//! Every platform module exports the same names: `Stream`, `Listener`, `connect`, `bind`,
//! `try_read`, `peer_closed`, `new_local_address`, `remove_local_address`.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
