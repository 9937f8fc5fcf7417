//! The pipe of the thread twin: [`Pipe`] and [`Connection`], with the signatures and the
//! [`ConnectionError`] of `processing::{Pipe, Connection}`.
//!
//! Messages are encoded and decoded as for processes (typed messages in postcard behind a
//! handle-count byte, raw messages as they are), so a value that cannot cross a process
//! boundary fails here the same way, and a message sent with `send_bytes` reads with `recv`
//! exactly as it would on a process pipe.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use processing_transport::frame::DEFAULT_MAX_MESSAGE_SIZE;
use processing_transport::{
    CanRecv, CanSend, ConnectionError, Deadline, Direction, Duplex, FrameError,
};
use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

use super::registry;
use crate::wait::{lock, wait_on};

/// One direction of a pair: the messages on their way and whether either side is gone.
struct Chan {
    state: Mutex<ChanState>,
    ready: Condvar,
}

#[derive(Default)]
struct ChanState {
    messages: VecDeque<Vec<u8>>,
    writer_gone: bool,
    reader_gone: bool,
}

impl Chan {
    fn new() -> Arc<Chan> {
        Arc::new(Chan {
            state: Mutex::new(ChanState::default()),
            ready: Condvar::new(),
        })
    }
}

/// One end; the last clone's drop closes it (the peer then reads the end of the stream).
struct End {
    id: u64,
    incoming: Arc<Chan>,
    outgoing: Arc<Chan>,
    max_message: AtomicU64,
    broken: AtomicBool,
    can_send: bool,
    can_recv: bool,
}

impl Drop for End {
    fn drop(&mut self) {
        lock(&self.incoming.state).reader_gone = true;
        self.incoming.ready.notify_all();
        lock(&self.outgoing.state).writer_gone = true;
        self.outgoing.ready.notify_all();
    }
}

processing_transport::__pipe!("processing::dummy::Pipe");

/// Two connected twin ends.
fn pair<T, A: Direction, B: Direction>() -> Result<EndPair<T, A, B>, ConnectionError> {
    let (ab, ba) = (Chan::new(), Chan::new());
    let end = |incoming: &Arc<Chan>, outgoing: &Arc<Chan>, can_send, can_recv| {
        Arc::new(End {
            id: registry::next_id(),
            incoming: incoming.clone(),
            outgoing: outgoing.clone(),
            max_message: AtomicU64::new(DEFAULT_MAX_MESSAGE_SIZE),
            broken: AtomicBool::new(false),
            can_send,
            can_recv,
        })
    };
    Ok((
        Connection::from_end(end(&ba, &ab, A::CAN_SEND, A::CAN_RECV)),
        Connection::from_end(end(&ab, &ba, B::CAN_SEND, B::CAN_RECV)),
    ))
}

/// One end of a twin pipe, carrying messages of type `T`, with the methods, signatures and
/// [`ConnectionError`]s of `processing_transport::Connection` (the end of the stream is
/// [`ConnectionError::Eof`] once every clone of the other end is dropped).
///
/// ```
/// use std::time::Duration;
/// let (a, b) = processing::dummy::Pipe::new::<u32>().unwrap();
/// assert!(a.try_recv().unwrap_err().is_would_block());
/// assert!(a.recv_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
/// b.send(&7).unwrap();
/// assert!(a.poll(Duration::ZERO).unwrap());
/// assert_eq!(a.recv().unwrap(), 7);
/// ```
pub struct Connection<T, D: Direction = Duplex> {
    end: Arc<End>,
    _marker: PhantomData<(fn() -> T, D)>,
}

impl<T, D: Direction> Clone for Connection<T, D> {
    fn clone(&self) -> Self {
        Connection::from_end(self.end.clone())
    }
}

impl<T, D: Direction> fmt::Debug for Connection<T, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("type", &std::any::type_name::<T>())
            .field("direction", &std::any::type_name::<D>())
            .finish()
    }
}

impl<T, D: Direction> Connection<T, D> {
    fn from_end(end: Arc<End>) -> Self {
        Connection {
            end,
            _marker: PhantomData,
        }
    }

    /// The same end, for messages of another type.
    pub fn with_type<U>(self) -> Connection<U, D> {
        Connection::from_end(self.end)
    }

    /// The largest message this end accepts; a longer one is a [`FrameError::TooLarge`] error
    /// and leaves the end broken, as on a process pipe.
    pub fn set_max_message_size(&self, max: u64) {
        self.end.max_message.store(max, Ordering::Relaxed);
    }

    /// The largest message this end accepts.
    pub fn max_message_size(&self) -> u64 {
        self.end.max_message.load(Ordering::Relaxed)
    }

    /// Closes this end (it closes when the last clone is dropped).
    pub fn close(self) {}

    fn push(&self, message: Vec<u8>) -> Result<(), ConnectionError> {
        let chan = &self.end.outgoing;
        let mut s = lock(&chan.state);
        if s.reader_gone {
            return Err(ConnectionError::Disconnected);
        }
        s.messages.push_back(message);
        chan.ready.notify_all();
        Ok(())
    }

    fn pop(&self, deadline: Deadline) -> Result<Vec<u8>, ConnectionError> {
        if self.end.broken.load(Ordering::Relaxed) {
            return Err(ConnectionError::Broken);
        }
        let chan = &self.end.incoming;
        let mut s = lock(&chan.state);
        loop {
            if let Some(m) = s.messages.pop_front() {
                let max = self.max_message_size();
                if m.len() as u64 > max {
                    self.end.broken.store(true, Ordering::Relaxed);
                    return Err(FrameError::TooLarge {
                        len: m.len() as u64,
                        max,
                    }
                    .into());
                }
                return Ok(m);
            }
            if s.writer_gone {
                return Err(ConnectionError::Eof);
            }
            s = wait_on(&chan.ready, s, deadline.instant()).map_err(|_| match deadline {
                Deadline::Now => ConnectionError::WouldBlock,
                _ => ConnectionError::Timeout,
            })?;
        }
    }

    fn decode(body: &[u8]) -> Result<T, ConnectionError>
    where
        T: DeserializeOwned,
    {
        processing_transport::frame::decode_typed(body)
    }
}

impl<T, D: CanSend> Connection<T, D> {
    /// Sends `bytes` as one message.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.push(bytes.to_vec())
    }

    /// Sends a value (encoded as for a process pipe).
    pub fn send(&self, value: &T) -> Result<(), ConnectionError>
    where
        T: Serialize,
    {
        self.push(processing_transport::frame::encode_typed(value)?)
    }
}

impl<T, D: CanRecv> Connection<T, D> {
    /// Receives one message as bytes; blocks until one arrives ([`ConnectionError::Eof`] once
    /// the other end is gone and every message was read).
    pub fn recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        self.pop(Deadline::Never)
    }

    /// Receives one message as bytes, waiting at most `timeout` (`Duration::MAX`: as long as
    /// needed, zero: one attempt): [`ConnectionError::Timeout`] when none came.
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, ConnectionError> {
        self.pop(Deadline::after(timeout))
    }

    /// Receives one message as bytes if one is there now: [`ConnectionError::WouldBlock`]
    /// otherwise.
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        self.pop(Deadline::Now)
    }

    /// Receives one message into `buf[offset..]` and returns its length; if it does not fit,
    /// [`ConnectionError::BufferTooShort`] carries the whole message.
    pub fn recv_bytes_into(&self, buf: &mut [u8], offset: usize) -> Result<usize, ConnectionError> {
        if offset > buf.len() {
            return Err(ConnectionError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "offset is beyond the end of the buffer",
            )));
        }
        let m = self.pop(Deadline::Never)?;
        let room = &mut buf[offset..];
        if m.len() > room.len() {
            return Err(ConnectionError::BufferTooShort(m));
        }
        room[..m.len()].copy_from_slice(&m);
        Ok(m.len())
    }

    /// Receives one value; blocks until it arrives.
    pub fn recv(&self) -> Result<T, ConnectionError>
    where
        T: DeserializeOwned,
    {
        Self::decode(&self.pop(Deadline::Never)?)
    }

    /// Receives one value, waiting at most `timeout` (`Duration::MAX`: as long as needed,
    /// zero: one attempt): [`ConnectionError::Timeout`] when none came.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, ConnectionError>
    where
        T: DeserializeOwned,
    {
        Self::decode(&self.pop(Deadline::after(timeout))?)
    }

    /// Receives one value if a message is there now: [`ConnectionError::WouldBlock`]
    /// otherwise.
    pub fn try_recv(&self) -> Result<T, ConnectionError>
    where
        T: DeserializeOwned,
    {
        Self::decode(&self.pop(Deadline::Now)?)
    }

    /// Whether a message (or the end of the stream) can be received without blocking, waiting
    /// up to `timeout` for one.
    pub fn poll(&self, timeout: Duration) -> Result<bool, ConnectionError> {
        if self.end.broken.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let deadline = Deadline::after(timeout);
        let chan = &self.end.incoming;
        let mut s = lock(&chan.state);
        loop {
            if !s.messages.is_empty() || s.writer_gone {
                return Ok(true);
            }
            s = match wait_on(&chan.ready, s, deadline.instant()) {
                Ok(s) => s,
                Err(_) => return Ok(false),
            };
        }
    }
}

/// A twin end serializes as an id in this process (see the `registry` module): it travels
/// through a thread pool's task arguments, a twin queue or another twin pipe.
impl<T, D: Direction> Serialize for Connection<T, D> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        registry::send(self.end.id, &self.end).serialize(s)
    }
}

impl<'de, T, D: Direction> Deserialize<'de> for Connection<T, D> {
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        use serde::de::Error as _;
        let wire = registry::Wire::deserialize(d)?;
        let end = registry::receive::<End>(wire, "connection").map_err(De::Error::custom)?;
        if (D::CAN_SEND && !end.can_send) || (D::CAN_RECV && !end.can_recv) {
            return Err(De::Error::custom(
                "connection direction does not match the receiving type",
            ));
        }
        Ok(Connection::from_end(end))
    }
}

/// Awaitable operations (feature `async`), as on process connections.
#[cfg(feature = "async")]
mod awaitable {
    use super::*;

    impl<T, D: CanRecv> Connection<T, D> {
        /// Awaits and receives one value, like [`recv`](Connection::recv).
        ///
        /// ```
        /// let (a, b) = processing::dummy::Pipe::new::<u32>().unwrap();
        /// a.send(&3).unwrap();
        /// assert_eq!(processing::core::aio::block_on(b.recv_async()).unwrap(), 3);
        /// ```
        pub async fn recv_async(&self) -> Result<T, ConnectionError>
        where
            T: DeserializeOwned,
        {
            let body = processing_core::aio::retry(|| match self.pop(Deadline::Now) {
                Err(ConnectionError::WouldBlock) => None,
                r => Some(r),
            })
            .await?;
            Self::decode(&body)
        }
    }

    impl<T, D: CanSend> Connection<T, D> {
        /// Sends one value, like [`send`](Connection::send) (a twin send never waits).
        pub async fn send_async(&self, value: &T) -> Result<(), ConnectionError>
        where
            T: Serialize,
        {
            self.send(value)
        }
    }
}
