//! The reactor thread: a heap of timers and (Linux) an epoll set of one-shot descriptor
//! registrations. Platform calls live in `crate::sys` (`aio_epoll` on Linux); elsewhere the
//! thread sleeps on a condition variable and serves timers only.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

#[cfg(target_os = "linux")]
pub use linux::{wait_fd, FdReady, Interest};

struct State {
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_wakers: HashMap<u64, Waker>,
    next_id: u64,
    /// The deadline the reactor thread sleeps towards, if any.
    armed: Option<Instant>,
    #[cfg(target_os = "linux")]
    fds: HashMap<u64, linux::FdEntry>,
}

struct Reactor {
    /// The process that made it (see `REACTOR`).
    pid: u32,
    state: Mutex<State>,
    #[cfg(target_os = "linux")]
    poller: crate::sys::aio_epoll::Poller,
    #[cfg(not(target_os = "linux"))]
    cond: std::sync::Condvar,
}

/// This process's reactor. A process made by `fork` inherits the pointer but not the thread
/// (nor an epoll set of its own): each reactor records the pid that made it, and a process
/// that finds another pid's reactor makes its own. Creation is lock-free (a lock held by a
/// parent's thread at `fork` would never be released in the child); two threads racing to
/// create one both succeed and the loser's reactor idles (a one-off leak of a thread).
static REACTOR: AtomicPtr<Reactor> = AtomicPtr::new(std::ptr::null_mut());

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn current() -> Option<&'static Reactor> {
    let p = REACTOR.load(Ordering::Acquire);
    // SAFETY: a non-null pointer comes from `Box::leak` below and is never freed.
    let r = unsafe { p.as_ref() }?;
    (r.pid == std::process::id()).then_some(r)
}

fn reactor() -> Option<&'static Reactor> {
    if let Some(r) = current() {
        return Some(r);
    }
    let seen = REACTOR.load(Ordering::Acquire);
    let r: &'static Reactor = Box::leak(Box::new(Reactor {
        pid: std::process::id(),
        state: Mutex::new(State {
            timers: BinaryHeap::new(),
            timer_wakers: HashMap::new(),
            next_id: 1,
            armed: None,
            #[cfg(target_os = "linux")]
            fds: HashMap::new(),
        }),
        #[cfg(target_os = "linux")]
        poller: crate::sys::aio_epoll::Poller::new().ok()?,
        #[cfg(not(target_os = "linux"))]
        cond: std::sync::Condvar::new(),
    }));
    std::thread::Builder::new()
        .name("processing-aio".into())
        .spawn(move || r.run())
        .ok()?;
    let mine = r as *const Reactor as *mut Reactor;
    match REACTOR.compare_exchange(seen, mine, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(r),
        // Another thread of this process won the race: use its reactor.
        Err(_) => current(),
    }
}

/// Whether this process's reactor thread runs (it starts on the first pending wait).
pub fn reactor_thread_started() -> bool {
    current().is_some()
}

/// Wakes `waker` at `deadline`. If the reactor cannot run (no thread or epoll could be
/// created), the waker is woken at once: the future retries without sleeping rather than hang.
pub(super) fn add_timer(deadline: Instant, waker: Waker) {
    let Some(r) = reactor() else {
        waker.wake();
        return;
    };
    let mut s = lock(&r.state);
    let id = s.next_id;
    s.next_id += 1;
    s.timers.push(Reverse((deadline, id)));
    s.timer_wakers.insert(id, waker);
    if !matches!(s.armed, Some(a) if a <= deadline) {
        s.armed = Some(deadline);
        r.arm(deadline);
    }
}

impl Reactor {
    #[cfg(target_os = "linux")]
    fn arm(&self, deadline: Instant) {
        self.poller.arm_timer(Some(deadline));
    }

    #[cfg(not(target_os = "linux"))]
    fn arm(&self, _deadline: Instant) {
        self.cond.notify_one();
    }

    /// Pops the expired timers; returns their wakers and re-arms for the next one.
    fn expire(&self, s: &mut State) -> Vec<Waker> {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse((d, id))) = s.timers.peek().copied() {
            if d > now {
                break;
            }
            s.timers.pop();
            if let Some(w) = s.timer_wakers.remove(&id) {
                due.push(w);
            }
        }
        s.armed = s.timers.peek().map(|Reverse((d, _))| *d);
        due
    }

    #[cfg(target_os = "linux")]
    fn run(&self) {
        let mut events = Vec::new();
        loop {
            if self.poller.wait(&mut events).is_err() {
                // EINTR and the like: go round again.
                continue;
            }
            let mut wake = Vec::new();
            {
                let mut s = lock(&self.state);
                for &token in &events {
                    if let Some(e) = s.fds.get_mut(&token) {
                        e.fired = true;
                        if let Some(w) = e.waker.take() {
                            wake.push(w);
                        }
                    }
                }
                wake.extend(self.expire(&mut s));
                self.poller.arm_timer(s.armed);
            }
            for w in wake {
                w.wake();
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn run(&self) {
        let mut s = lock(&self.state);
        loop {
            let due = self.expire(&mut s);
            if !due.is_empty() {
                drop(s);
                for w in due {
                    w.wake();
                }
                s = lock(&self.state);
                continue;
            }
            s = match s.armed {
                None => self.cond.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if d <= now {
                        continue;
                    }
                    self.cond
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::{lock, reactor};
    use std::future::Future;
    use std::io;
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    pub(super) struct FdEntry {
        /// A duplicate of the waited descriptor, so that the registration is the reactor's own
        /// (several futures may wait on one descriptor; the caller may close its own).
        pub(super) dup: OwnedFd,
        pub(super) fired: bool,
        pub(super) waker: Option<Waker>,
    }

    /// What a descriptor wait waits for.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Interest {
        /// Readable (or hung up, or in error: the next read tells).
        Readable,
        /// Writable (or in error).
        Writable,
    }

    /// Waits until `fd` is ready for `interest` (level-triggered: ready at once if it already
    /// is, without going through the reactor). Dropping the future removes the registration.
    pub fn wait_fd(fd: BorrowedFd<'_>, interest: Interest) -> io::Result<FdReady> {
        if crate::sys::aio_epoll::ready_now(fd, interest == Interest::Readable) {
            return Ok(FdReady {
                dup: None,
                interest,
                token: None,
            });
        }
        let dup = fd.try_clone_to_owned()?;
        Ok(FdReady {
            dup: Some(dup),
            interest,
            token: None,
        })
    }

    /// The future of [`wait_fd`]: `Ok(())` once the descriptor is ready.
    #[derive(Debug)]
    pub struct FdReady {
        dup: Option<OwnedFd>,
        interest: Interest,
        token: Option<u64>,
    }

    impl Future for FdReady {
        type Output = io::Result<()>;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let Some(r) = reactor() else {
                // No reactor: report ready, the caller's non-blocking retry decides.
                return Poll::Ready(Ok(()));
            };
            let mut s = lock(&r.state);
            match this.token {
                None => {
                    let Some(dup) = this.dup.take() else {
                        return Poll::Ready(Ok(()));
                    };
                    let token = s.next_id;
                    s.next_id += 1;
                    let raw = std::os::fd::AsRawFd::as_raw_fd(&dup);
                    s.fds.insert(
                        token,
                        FdEntry {
                            dup,
                            fired: false,
                            waker: Some(cx.waker().clone()),
                        },
                    );
                    let readable = this.interest == Interest::Readable;
                    if let Err(e) = r.poller.add(raw, readable, token) {
                        s.fds.remove(&token);
                        return Poll::Ready(Err(e));
                    }
                    this.token = Some(token);
                    Poll::Pending
                }
                Some(token) => {
                    let fired = !matches!(s.fds.get(&token), Some(e) if !e.fired);
                    if fired {
                        if let Some(e) = s.fds.remove(&token) {
                            r.poller.delete(e.dup.as_fd());
                        }
                        this.token = None;
                        Poll::Ready(Ok(()))
                    } else {
                        if let Some(e) = s.fds.get_mut(&token) {
                            e.waker = Some(cx.waker().clone());
                        }
                        Poll::Pending
                    }
                }
            }
        }
    }

    impl Drop for FdReady {
        fn drop(&mut self) {
            let Some(token) = self.token.take() else {
                return;
            };
            if let Some(r) = reactor() {
                let mut s = lock(&r.state);
                if let Some(e) = s.fds.remove(&token) {
                    r.poller.delete(e.dup.as_fd());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aio::{block_on, Sleep};
    use std::time::Duration;

    #[test]
    fn timers_wake_at_their_deadlines_not_before() {
        for ms in [3u64, 1, 2] {
            let start = Instant::now();
            block_on(Sleep::new(Duration::from_millis(ms)));
            assert!(start.elapsed() >= Duration::from_millis(ms));
        }
        assert!(reactor_thread_started());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn descriptor_waits_fire_on_readiness_and_leave_the_set_when_dropped() {
        use std::future::Future;
        use std::io::Write;
        use std::os::fd::AsFd;
        use std::os::unix::net::UnixStream;
        use std::pin::Pin;
        use std::task::{Context, Wake};

        struct Noop;
        impl Wake for Noop {
            fn wake(self: std::sync::Arc<Self>) {}
        }
        let waker = Waker::from(std::sync::Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let registered = || {
            let r = reactor().unwrap();
            lock(&r.state).fds.len()
        };

        let (mut a, b) = UnixStream::pair().unwrap();
        let before = registered();
        {
            let mut w = wait_fd(b.as_fd(), Interest::Readable).unwrap();
            assert!(Pin::new(&mut w).poll(&mut cx).is_pending());
            assert_eq!(registered(), before + 1);
        }
        assert_eq!(registered(), before, "a dropped wait left its registration");

        let w = wait_fd(b.as_fd(), Interest::Readable).unwrap();
        a.write_all(b"x").unwrap();
        block_on(w).unwrap();
        assert_eq!(registered(), before);
        // Writable at once (an empty socket buffer).
        block_on(wait_fd(a.as_fd(), Interest::Writable).unwrap()).unwrap();
    }
}
