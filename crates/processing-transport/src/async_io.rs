//! Awaitable connection and listener operations (feature `async`). On Linux a future waits
//! for the socket's readiness in the reactor's epoll set (`processing_core::aio::wait_fd`);
//! elsewhere it checks readiness without blocking on the reactor's [`Backoff`] schedule.
//! `Listener::accept_async` needs no reactor: it waits on the listener's queue of
//! authenticated connections, whose producers wake its waker.
//!
//! `recv_async` looks for a message again for up to 10 µs before it sleeps on the reactor
//! (a peer answering a request often replies within that, and the reactor's hand-over costs
//! two thread wake-ups): the executor thread is held that long at most per wait.
//!
//! Once the socket is ready the operation itself runs as the blocking one does: a message is
//! read (or written) to its end on the polling task. A sender writes a message in one go, so a
//! reader waits at most for the rest of a message already under way; a `send_async` of a
//! message larger than the room left in the socket (or shared-memory ring) waits on the task
//! for the reader to make room.

use std::time::Duration;

use processing_core::aio::Backoff;
use serde::{de::DeserializeOwned, Serialize};

use super::{CanRecv, CanSend, Connection};
use crate::sys::RawWaitable;
use crate::ConnectionError;
use crate::{Listener, ListenerError};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// How long `readable_async` looks again before it sleeps on the reactor.
const ASYNC_SPIN: Duration = Duration::from_micros(10);

/// Waits until `raw` is ready (Linux: epoll; elsewhere: one backoff step, the caller checks
/// again).
async fn ready(
    raw: Option<RawWaitable>,
    writable: bool,
    backoff: &mut Backoff,
) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if let Some(raw) = raw {
        use processing_core::aio::{wait_fd, Interest};
        // SAFETY: `raw` belongs to a connection or listener the caller borrows for the whole
        // call; `wait_fd` duplicates it before this borrow ends.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
        let interest = if writable {
            Interest::Writable
        } else {
            Interest::Readable
        };
        return wait_fd(fd, interest)?.await;
    }
    let _ = (raw, writable);
    backoff.sleep().await;
    Ok(())
}

impl<T, D: CanRecv> Connection<T, D> {
    /// Awaits the next message (or the end of the stream) without reading it: afterwards
    /// [`recv`](Connection::recv) does not wait. Cancellation safe.
    pub async fn readable_async(&self) -> Result<(), ConnectionError> {
        let mut backoff = Backoff::new();
        // A reply often follows within microseconds (a request/response peer): look again
        // for at most `ASYNC_SPIN` before going through the reactor, whose hand-over costs two
        // thread wake-ups. Bounded and short, so the executor thread is held only briefly.
        let spin_end = std::time::Instant::now() + ASYNC_SPIN;
        loop {
            // Also arms the shared-memory ring's doorbell: a writer then rings the socket.
            if self.poll(Duration::ZERO)? {
                return Ok(());
            }
            if std::time::Instant::now() < spin_end {
                std::hint::spin_loop();
                continue;
            }
            ready(self.inner.stream.raw_waitable(), false, &mut backoff).await?;
        }
    }

    /// Awaits and receives one message, like [`recv`](Connection::recv), without blocking a
    /// thread while none is there (feature `async`; any executor). Cancellation safe while
    /// waiting: a dropped future took nothing.
    ///
    /// ```
    /// let (a, b) = processing::transport::Pipe::new::<u32>().unwrap();
    /// a.send(&7).unwrap();
    /// assert_eq!(processing::core::aio::block_on(b.recv_async()).unwrap(), 7);
    /// ```
    pub async fn recv_async(&self) -> Result<T, ConnectionError>
    where
        T: DeserializeOwned,
    {
        self.readable_async().await?;
        self.recv()
    }

    /// Awaits and receives one message's bytes, like [`recv_bytes`](Connection::recv_bytes).
    pub async fn recv_bytes_async(&self) -> Result<Vec<u8>, ConnectionError> {
        self.readable_async().await?;
        self.recv_bytes()
    }
}

impl<T, D: CanSend> Connection<T, D> {
    /// Awaits room in the socket, then sends `value` like [`send`](Connection::send)
    /// (feature `async`). Cancellation safe before the write starts; see the module notes for
    /// a message larger than the room left.
    ///
    /// ```
    /// let (a, b) = processing::transport::Pipe::new::<u32>().unwrap();
    /// processing::core::aio::block_on(a.send_async(&9)).unwrap();
    /// assert_eq!(b.recv().unwrap(), 9);
    /// ```
    pub async fn send_async(&self, value: &T) -> Result<(), ConnectionError>
    where
        T: Serialize,
    {
        #[cfg(target_os = "linux")]
        ready(self.inner.stream.raw_waitable(), true, &mut Backoff::new()).await?;
        self.send(value)
    }

    /// Awaits room in the socket, then sends `bytes` like
    /// [`send_bytes`](Connection::send_bytes).
    pub async fn send_bytes_async(&self, bytes: &[u8]) -> Result<(), ConnectionError> {
        #[cfg(target_os = "linux")]
        ready(self.inner.stream.raw_waitable(), true, &mut Backoff::new()).await?;
        self.send_bytes(bytes)
    }
}

impl Listener {
    /// Awaits the next authenticated peer and returns its connection, like
    /// [`accept`](Listener::accept) (feature `async`). The listener's own thread accepts and
    /// authenticates peers and queues them; the future waits on that queue (its waker is
    /// woken when a connection or a failed handshake is queued, or the listener stops), so it
    /// holds no thread and reads nothing from a socket. Cancellation safe: a connection is
    /// taken from the queue only by the poll that returns it, and a dropped future withdraws
    /// its waker.
    ///
    /// ```
    /// use processing::transport::{Client, Listener};
    /// let l = Listener::bind("tcp://127.0.0.1:0", Some(b"k")).unwrap();
    /// let addr = l.address().clone();
    /// let t = std::thread::spawn(move || {
    ///     let c = Client::connect::<u8>(addr, Some(b"k")).unwrap();
    ///     c.send(&1).unwrap();
    /// });
    /// let c = processing::core::aio::block_on(l.accept_async::<u8>()).unwrap();
    /// assert_eq!(c.recv().unwrap(), 1);
    /// t.join().unwrap();
    /// ```
    pub fn accept_async<T>(&self) -> AcceptAsync<'_, T> {
        AcceptAsync {
            listener: self,
            key: None,
            _type: PhantomData,
        }
    }
}

/// The future of [`Listener::accept_async`] (feature `async`).
#[must_use = "futures do nothing unless awaited"]
pub struct AcceptAsync<'a, T> {
    listener: &'a Listener,
    /// Our entry in the listener's waker list, once registered.
    key: Option<u64>,
    _type: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for AcceptAsync<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptAsync")
            .field("listener", self.listener)
            .finish_non_exhaustive()
    }
}

impl<T> Future for AcceptAsync<'_, T> {
    type Output = Result<Connection<T>, ListenerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.listener
            .poll_ready(cx, &mut this.key)
            .map(|outcome| outcome.map(Connection::with_type))
    }
}

impl<T> Drop for AcceptAsync<'_, T> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.listener.forget_waiter(k);
        }
    }
}
