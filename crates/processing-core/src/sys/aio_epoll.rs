//! The Linux side of the reactor (`crate::aio`): an epoll set holding a timerfd (the next
//! timer deadline) and one-shot registrations of waited descriptors.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

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
    // SAFETY: one valid pollfd; a zero timeout never blocks.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n != 0
}

/// The epoll token of the timerfd (descriptor tokens start at 1).
const TIMER_TOKEN: u64 = 0;

pub(crate) struct Poller {
    epoll: OwnedFd,
    timer: OwnedFd,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: plain syscall; the result is checked and owned below.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `ep` is a fresh descriptor nobody else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
        // SAFETY: plain syscall; the result is checked and owned below.
        let tf = cvt(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
            )
        })?;
        // SAFETY: `tf` is a fresh descriptor nobody else owns.
        let timer = unsafe { OwnedFd::from_raw_fd(tf) };
        let p = Poller { epoll, timer };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: TIMER_TOKEN,
        };
        // SAFETY: both descriptors are open; `ev` is a valid epoll_event.
        cvt(unsafe {
            libc::epoll_ctl(
                p.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                p.timer.as_raw_fd(),
                &mut ev,
            )
        })?;
        Ok(p)
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
        // SAFETY: `fd` is open (the reactor owns a duplicate); `ev` is valid.
        cvt(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Removes `fd` from the set (before its duplicate is closed: the registration belongs to
    /// the open file, which the caller's descriptor keeps alive).
    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) {
        // SAFETY: `fd` is open; a failure (not registered) leaves nothing to undo.
        unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                std::ptr::null_mut(),
            );
        }
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
                // SAFETY: reads at most 8 bytes into `buf`; non-blocking, EAGAIN is fine.
                unsafe {
                    libc::read(self.timer.as_raw_fd(), buf.as_mut_ptr().cast(), 8);
                }
            } else {
                tokens.push(token);
            }
        }
        Ok(())
    }
}
