//! The per-process reactor behind every `*_async` wait of the workspace (feature `async`).
//!
//! One thread per process, started on first use, serves every pending future of every crate:
//!
//! - **Descriptors** ([`wait_fd`], Linux): a future registers a descriptor (a pidfd, a socket,
//!   a pipe end) with the reactor's epoll set, one-shot; the reactor wakes the future's waker
//!   when the kernel reports it ready. No thread per waiter, no polling.
//! - **Timers** ([`Sleep`], [`Backoff`]): a heap of deadlines the reactor sleeps towards
//!   (a timerfd in the epoll set on Linux, a condition variable elsewhere). [`Backoff`] is how a
//!   wait on shared memory (a queue, a lock word, a semaphore) is awaited: the future tries the
//!   non-blocking operation, and when it would block it asks to be polled again after a delay
//!   that grows from 20 µs to 10 ms. The reactor thread never touches shared memory itself, so
//!   the protocols of the shared-memory primitives stay where they are.
//!
//! Futures built on it are runtime-agnostic (tokio, smol, `futures::executor::block_on`): they
//! need nothing from the executor but its [`Waker`]. Dropping one
//! unregisters it (a descriptor leaves the epoll set at once; a timer entry is dropped when it
//! expires and then wakes nobody who cares).
//!
//! ```
//! use processing::core::aio::Sleep;
//! use std::time::Duration;
//! let start = std::time::Instant::now();
//! futures_executor_like_block_on(Sleep::new(Duration::from_millis(5)));
//! assert!(start.elapsed() >= Duration::from_millis(5));
//! # fn futures_executor_like_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     processing::core::aio::block_on(f)
//! # }
//! ```

mod reactor;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

#[cfg(windows)]
pub use crate::sys::aio_windows::HandleReady;
pub use reactor::reactor_thread_started;
#[cfg(target_os = "linux")]
pub use reactor::{wait_fd, FdReady, Interest};

/// Waits until a kernel object is signalled (Windows; a process handle: the process ended),
/// through the system thread pool (`RegisterWaitForSingleObject`): many waits share a pool
/// thread, none blocks the caller. Dropping the future unregisters the wait.
#[cfg(windows)]
pub fn wait_handle(h: std::os::windows::io::BorrowedHandle<'_>) -> std::io::Result<HandleReady> {
    crate::sys::aio_windows::wait_handle(h)
}

/// A future that completes at a deadline.
#[derive(Debug)]
pub struct Sleep {
    deadline: Instant,
}

impl Sleep {
    /// Completes `d` from now (`Duration::MAX` never completes).
    pub fn new(d: Duration) -> Sleep {
        Sleep {
            deadline: Instant::now().checked_add(d).unwrap_or_else(far_future),
        }
    }

    /// Completes at `deadline`.
    pub fn until(deadline: Instant) -> Sleep {
        Sleep { deadline }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 86_400)
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        reactor::add_timer(self.deadline, cx.waker().clone());
        Poll::Pending
    }
}

/// The retry schedule of a future waiting on shared memory: after each failed non-blocking
/// attempt, [`Backoff::wait`] asks the reactor to wake the task after the next delay (20 µs,
/// doubling, at most 10 ms).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

/// The first retry delay of a [`Backoff`].
pub const BACKOFF_MIN: Duration = Duration::from_micros(20);
/// The longest retry delay of a [`Backoff`]: the worst added latency of a wait on shared
/// memory.
pub const BACKOFF_MAX: Duration = Duration::from_millis(10);

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

impl Backoff {
    /// A fresh schedule (next delay [`BACKOFF_MIN`]).
    pub fn new() -> Backoff {
        Backoff { next: BACKOFF_MIN }
    }

    /// Arranges for `cx`'s task to be woken after the next delay; the caller returns
    /// `Poll::Pending`.
    pub fn wait(&mut self, cx: &mut Context<'_>) {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        reactor::add_timer(Instant::now() + d, cx.waker().clone());
    }

    /// A future completing after the next delay (for `async fn` callers).
    pub fn sleep(&mut self) -> Sleep {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        Sleep::new(d)
    }

    /// Starts the schedule over (after progress was made).
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Retries `f` on the [`Backoff`] schedule until it returns `Some`.
pub async fn retry<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let mut backoff = Backoff::new();
    loop {
        if let Some(v) = f() {
            return v;
        }
        backoff.sleep().await;
    }
}

/// A future that retries `f` on the [`Backoff`] schedule until it returns `Some`, or until
/// `deadline` passes (then `None`).
pub fn retry_until<T, F: FnMut() -> Option<T> + Unpin>(
    deadline: Option<Instant>,
    f: F,
) -> RetryUntil<F> {
    RetryUntil {
        f,
        deadline,
        backoff: Backoff::new(),
    }
}

/// The future of [`retry_until`].
#[derive(Debug)]
pub struct RetryUntil<F> {
    f: F,
    deadline: Option<Instant>,
    backoff: Backoff,
}

impl<T, F: FnMut() -> Option<T> + Unpin> Future for RetryUntil<F> {
    type Output = Option<T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        if let Some(v) = (this.f)() {
            return Poll::Ready(Some(v));
        }
        if let Some(d) = this.deadline {
            let now = Instant::now();
            if now >= d {
                return Poll::Ready(None);
            }
            // Never sleep past the deadline.
            let mut b = this.backoff.clone();
            if now + b.next > d {
                reactor::add_timer(d, cx.waker().clone());
                return Poll::Pending;
            }
            b.wait(cx);
            this.backoff = b;
            return Poll::Pending;
        }
        this.backoff.wait(cx);
        Poll::Pending
    }
}

struct ThreadWaker {
    thread: std::thread::Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Runs a future to completion on the calling thread (a minimal executor for doc examples and
/// for blocking callers; any executor works with the futures of this workspace).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let tw = Arc::new(ThreadWaker {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(tw.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        while !tw.woken.swap(false, Ordering::AcqRel) {
            std::thread::park();
        }
    }
}
