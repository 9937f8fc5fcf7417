//! The Linux side of the reactor (`crate::aio`): an epoll set holding a timerfd (the next
//! timer deadline) and one-shot registrations of waited descriptors.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use crate::os::cvt;

/// Whether `fd` is ready for reading (or writing) now, without waiting (`poll` with a zero
/// timeout); an error, hang-up or invalid descriptor counts as ready (the next call tells).
pub(crate) fn ready_now(fd: BorrowedFd<'_>, readable: bool) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: if readable {
            libc::POLLIN
        } else {
            libc::POLLOUT
        },
        revents: 0,
    };
    // A zero timeout never blocks.
    crate::os::poll(std::slice::from_mut(&mut p), 0).map_or(true, |n| n != 0)
}

/// The epoll token of the timerfd (descriptor tokens start at 1).
const TIMER_TOKEN: u64 = 0;

pub(crate) struct Poller {
    epoll: OwnedFd,
    /// A `File` only to read its 8-byte expiry count with std's `Read`.
    timer: File,
}

/// A new epoll set and a new non-blocking monotonic timerfd, both close-on-exec.
fn epoll_and_timer() -> io::Result<(OwnedFd, OwnedFd)> {
    // SAFETY: both calls take flags only and return a fresh descriptor owned by nobody else
    // (or -1, checked before it is owned); the epoll set is dropped (closed) if the timer fails.
    unsafe {
        let epoll = OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?);
        let timer = cvt(libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
        ))?;
        Ok((epoll, OwnedFd::from_raw_fd(timer)))
    }
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        let (epoll, timer) = epoll_and_timer()?;
        let p = Poller {
            epoll,
            timer: File::from(timer),
        };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: TIMER_TOKEN,
        };
        p.ctl(libc::EPOLL_CTL_ADD, p.timer.as_raw_fd(), Some(&mut ev))?;
        Ok(p)
    }

    /// `epoll_ctl(op, fd)` on this poller's set (`ev`: `None` for `EPOLL_CTL_DEL`).
    fn ctl(
        &self,
        op: libc::c_int,
        fd: RawFd,
        ev: Option<&mut libc::epoll_event>,
    ) -> io::Result<()> {
        let ev = ev.map_or(std::ptr::null_mut(), |e| e as *mut libc::epoll_event);
        // SAFETY: the epoll descriptor is open; `ev` is null or a valid epoll_event borrowed
        // for the call; epoll_ctl only reads it. A closed `fd` is an error, not undefined.
        cvt(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, ev) }).map(drop)
    }

    /// Sets the timerfd to fire at `deadline` (`None`: disarmed).
    pub(crate) fn arm_timer(&self, deadline: Option<Instant>) {
        let mut spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        if let Some(d) = deadline {
            let rel = d.saturating_duration_since(Instant::now());
            // A zero it_value disarms: fire in 1 ns instead.
            let ns = rel.subsec_nanos().max(u32::from(rel.as_secs() == 0));
            spec.it_value.tv_sec = rel.as_secs().min(i64::MAX as u64) as libc::time_t;
            spec.it_value.tv_nsec = ns as libc::c_long;
        }
        // SAFETY: the timerfd is open; `spec` is valid; the old value is not asked for. It
        // cannot fail with valid arguments, and a failure would only delay a timer.
        unsafe {
            libc::timerfd_settime(self.timer.as_raw_fd(), 0, &spec, std::ptr::null_mut());
        }
    }

    /// Adds `fd` one-shot for readability (or writability) under `token`.
    pub(crate) fn add(&self, fd: RawFd, readable: bool, token: u64) -> io::Result<()> {
        let dir = if readable {
            libc::EPOLLIN | libc::EPOLLRDHUP
        } else {
            libc::EPOLLOUT
        };
        let mut ev = libc::epoll_event {
            events: (dir | libc::EPOLLONESHOT) as u32,
            u64: token,
        };
        // `fd` is open: the reactor owns a duplicate.
        self.ctl(libc::EPOLL_CTL_ADD, fd, Some(&mut ev))
    }

    /// Removes `fd` from the set (before its duplicate is closed: the registration belongs to
    /// the open file, which the caller's descriptor keeps alive).
    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) {
        // A failure (not registered) leaves nothing to undo.
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd.as_raw_fd(), None);
    }

    /// Waits for events; fills `tokens` with the ready descriptor tokens (the timer is drained
    /// and not listed).
    pub(crate) fn wait(&self, tokens: &mut Vec<u64>) -> io::Result<()> {
        tokens.clear();
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        // SAFETY: `evs` has room for 64 events; the epoll descriptor is open.
        let n = cvt(unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), evs.as_mut_ptr(), 64, -1) })?;
        for ev in &evs[..n as usize] {
            let token = ev.u64;
            if token == TIMER_TOKEN {
                let mut buf = [0u8; 8];
                // Non-blocking: EAGAIN (already drained) is fine.
                let _ = (&self.timer).read(&mut buf);
            } else {
                tokens.push(token);
            }
        }
        Ok(())
    }
}
