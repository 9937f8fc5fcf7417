//! `Pipe` and `Connection<T>`: framed, typed messages over a stream, with OS handles beside them.

#[cfg(feature = "async")]
#[path = "async_io.rs"]
mod async_io;
#[cfg(feature = "async")]
pub use async_io::AcceptAsync;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use processing_core::frame::{Body, FrameReader, FrameSource, Header, Sealed, RESERVED};
use processing_core::handles::{self, BorrowedOsHandle, OwnedOsHandle, TransferableHandle};
use processing_core::{codec, HandleError};
use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{ConnectionError, FrameError};
use crate::frame::{self, fingerprint, looks_like_pickle, DEFAULT_MAX_MESSAGE_SIZE};
use crate::sys::{self, RingEnd, RingLock, Stream, StreamKind};
use crate::wait::{Deadline, RawWaitable, Waitable};

/// Size of the read-ahead buffer of a connection (a longer message is read into its own
/// buffer, which grows with the bytes that arrive: see [`processing_core::frame`]).
const CHUNK: usize = 64 * 1024;
/// How long a receive busy-polls before it blocks in the kernel. A blocking wake-up across
/// cores costs tens of microseconds on virtual machines; a short bounded spin catches a reply
/// that is already on its way, and the yields keep a shared core usable.
const SPIN: Duration = Duration::from_micros(60);
/// Largest number of OS handles in one typed message (the count travels in one byte).
const MAX_HANDLES: usize = 250;

/// Messages up to this size are copied behind their header and sent with one system call.
const COALESCE: usize = 16 * 1024;

mod sealed {
    pub trait Sealed {}
}

/// Which ways a [`Connection`] can move messages: [`Duplex`], [`ReadOnly`] or [`WriteOnly`].
pub trait Direction: sealed::Sealed + Send + Sync + 'static {
    /// Whether `send` is available.
    const CAN_SEND: bool;
    /// Whether `recv` is available.
    const CAN_RECV: bool;
}

/// Directions that can send.
pub trait CanSend: Direction {}
/// Directions that can receive.
pub trait CanRecv: Direction {}

/// Both ends send and receive (`Pipe::new`, listener connections).
#[derive(Debug, Clone, Copy)]
pub struct Duplex;
/// The read end of a simplex pipe: it has no `send`.
#[derive(Debug, Clone, Copy)]
pub struct ReadOnly;
/// The write end of a simplex pipe: it has no `recv`.
#[derive(Debug, Clone, Copy)]
pub struct WriteOnly;

impl sealed::Sealed for Duplex {}
impl sealed::Sealed for ReadOnly {}
impl sealed::Sealed for WriteOnly {}
impl Direction for Duplex {
    const CAN_SEND: bool = true;
    const CAN_RECV: bool = true;
}
impl Direction for ReadOnly {
    const CAN_SEND: bool = false;
    const CAN_RECV: bool = true;
}
impl Direction for WriteOnly {
    const CAN_SEND: bool = true;
    const CAN_RECV: bool = false;
}
impl CanSend for Duplex {}
impl CanSend for WriteOnly {}
impl CanRecv for Duplex {}
impl CanRecv for ReadOnly {}

/// Defines `SimplexPair<T>` and `Pipe` (`new`, `simplex`) over the `Connection` in scope and
/// its `pair::<T, A, B>() -> Result<EndPair<T, A, B>, ConnectionError>` (`EndPair`, defined
/// here: `(Connection<T, A>, Connection<T, B>)`)
/// (two connected ends of the directions asked for): the pipe of processes and of the thread
/// twin, documented once (the examples name `Pipe` by the path `$path`).
#[doc(hidden)]
#[macro_export]
macro_rules! __pipe {
    ($path:literal) => {
        /// Two connected ends, of directions `A` and `B` (what `pair` makes).
        type EndPair<T, A, B> = (Connection<T, A>, Connection<T, B>);

        /// The `(reader, writer)` ends of a simplex pipe.
        pub type SimplexPair<T> = (
            Connection<T, $crate::ReadOnly>,
            Connection<T, $crate::WriteOnly>,
        );

        /// Creates connected pairs of [`Connection`]s.
        ///
        #[doc = concat!("```\nuse ", $path, ";")]
        /// let (a, b) = Pipe::new::<String>().unwrap();
        /// a.send(&"ping".to_string()).unwrap();
        /// assert_eq!(b.recv().unwrap(), "ping");
        /// drop(a);
        /// assert!(b.recv().unwrap_err().is_eof());
        /// ```
        #[derive(Debug)]
        pub struct Pipe(());

        impl Pipe {
            /// A duplex pair: both ends send and receive.
            ///
            #[doc = concat!("```\nlet (a, b) = ", $path, "::new::<u32>().unwrap();")]
            /// b.send(&7).unwrap();
            /// assert_eq!(a.recv().unwrap(), 7);
            /// ```
            #[allow(clippy::new_ret_no_self)]
            pub fn new<T>(
            ) -> ::std::result::Result<(Connection<T>, Connection<T>), $crate::ConnectionError> {
                pair()
            }

            /// A one-way pair `(reader, writer)`: the reader cannot send, the writer cannot
            /// receive.
            ///
            #[doc = concat!("```\nlet (rx, tx) = ", $path, "::simplex::<u32>().unwrap();")]
            /// tx.send(&1).unwrap();
            /// assert_eq!(rx.recv().unwrap(), 1);
            /// ```
            ///
            #[doc = concat!("```compile_fail\nlet (rx, _tx) = ", $path, "::simplex::<u32>().unwrap();")]
            /// rx.send(&1).unwrap(); // the read end has no `send`
            /// ```
            pub fn simplex<T>() -> ::std::result::Result<SimplexPair<T>, $crate::ConnectionError> {
                pair()
            }
        }
    };
}

crate::__pipe!("processing::transport::Pipe");

/// Two connected ends: a socket pair, and the shared-memory rings where there are.
fn pair<T, A: Direction, B: Direction>() -> Result<EndPair<T, A, B>, ConnectionError> {
    let (a, b) = Stream::pair()?;
    let (ra, rb) = ring_pair();
    Ok((Connection::from_parts(a, ra), Connection::from_parts(b, rb)))
}

/// The shared-memory rings of a new pair, when the platform has them and they are switched on
/// (otherwise, or if creating them fails, the pair runs on its socket alone).
fn ring_pair() -> (Option<RingEnd>, Option<RingEnd>) {
    if !sys::ring_enabled() {
        return (None, None);
    }
    match RingEnd::pair() {
        Ok((a, b)) => (Some(a), Some(b)),
        Err(e) => {
            tracing::debug!("pipe falls back to its socket: {e}");
            (None, None)
        }
    }
}

/// One end of a pipe or of a listener/client connection, carrying messages of type `T`.
///
/// Messages keep their boundaries; `send`/`recv` move serde values (postcard), `send_bytes`/
/// `recv_bytes` move raw bytes in the frame format of Python's `multiprocessing.connection`.
///
/// **Both ends must agree on `T`.** A typed message carries a 4-byte fingerprint of the
/// sender's `T` (a hash of [`std::any::type_name`]), checked by every `recv`: a message sent
/// as another type (an `i32` received as a `u32`) is
/// [`FrameError::TypeMismatch`](crate::FrameError::TypeMismatch), never a wrong value. The
/// fingerprint only travels with typed messages between two Rust ends: `send_bytes`/
/// `recv_bytes` and the pickle methods keep the frames of Python's `multiprocessing`.
/// Clones share the same end (and its read buffer); the OS object closes when the last clone
/// is dropped. A connection is itself `Serialize + Deserialize` and travels as a spawn argument
/// or through another pipe (on Unix only through channels that carry descriptors; elsewhere
/// serializing fails with [`HandleError::NoChannel`]).
pub struct Connection<T, D: Direction = Duplex> {
    inner: Arc<Inner>,
    _marker: PhantomData<(fn() -> T, D)>,
}

struct Inner {
    stream: Stream,
    /// `Pipe` pairs on Linux: the shared-memory rings that carry the bytes (the stream then
    /// carries doorbells, OS handles and the end of the stream).
    ring: Option<RingEnd>,
    reader: Mutex<Reader>,
    writer: Mutex<()>,
    max_message: AtomicU64,
}

struct Reader {
    /// The framer's resumable reader: the read-ahead, and the part of a message that a receive
    /// which timed out in its middle left for the next receive. Exact (never reading ahead)
    /// during the handshake and on ring ends.
    frames: FrameReader,
    handles: VecDeque<OwnedOsHandle>,
    broken: bool,
}

/// Whether bytes (or the end of the stream) can be read from `io`, waiting for them until
/// `deadline` (`None`: for ever). Handles that arrive on the socket meanwhile go to `handles`.
fn wait_readable(
    io: Io<'_>,
    handles: &mut VecDeque<OwnedOsHandle>,
    deadline: Option<Instant>,
) -> Result<bool, ConnectionError> {
    let left = |d: Option<Instant>| d.map(|d| d.saturating_duration_since(Instant::now()));
    let Some(ring) = io.ring else {
        return Ok(io.stream.poll_readable(left(deadline))?);
    };
    // Ring: spin, then sleep on the socket (see `RingEnd::wait_readable`).
    let mut arrived = Vec::new();
    let ready = ring.wait_readable(io.stream, &mut arrived, deadline);
    handles.extend(arrived);
    Ok(ready?)
}

impl<T, D: Direction> Clone for Connection<T, D> {
    fn clone(&self) -> Self {
        Connection {
            inner: self.inner.clone(),
            _marker: PhantomData,
        }
    }
}

impl<T, D: Direction> fmt::Debug for Connection<T, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("stream", &self.inner.stream)
            .field("shared_memory", &self.inner.ring.is_some())
            .field("type", &std::any::type_name::<T>())
            .field("direction", &std::any::type_name::<D>())
            .finish()
    }
}

fn lock<G>(m: &Mutex<G>) -> MutexGuard<'_, G> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a read, first without blocking, then busy-polling for a bounded time, then blocking.
fn read_some(mut f: impl FnMut(bool) -> std::io::Result<usize>) -> std::io::Result<usize> {
    match f(true) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        r => return r,
    }
    let started = Instant::now();
    let mut round = 0u32;
    loop {
        round += 1;
        if round & 7 == 0 {
            std::thread::yield_now();
            if started.elapsed() > SPIN {
                break;
            }
        } else {
            std::hint::spin_loop();
        }
        match f(true) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            r => return r,
        }
    }
    f(false)
}

/// Where a connection's bytes come from.
#[derive(Clone, Copy)]
struct Io<'a> {
    stream: &'a Stream,
    ring: Option<&'a RingEnd>,
}

impl Inner {
    fn io(&self) -> Io<'_> {
        Io {
            stream: &self.stream,
            ring: self.ring.as_ref(),
        }
    }

    /// Serialises writers: this process's threads, and (ring) other processes holding the
    /// same end.
    fn write_guard(&self) -> (MutexGuard<'_, ()>, Option<RingLock<'_>>) {
        let g = lock(&self.writer);
        (g, self.ring.as_ref().map(RingEnd::lock_write))
    }

    /// Writes `data`, with `handles` travelling ahead of (ring) or with (stream) its first byte.
    /// The caller holds the write guard.
    fn write_all(&self, data: &[u8], handles: &[OwnedOsHandle]) -> std::io::Result<()> {
        match &self.ring {
            Some(ring) => {
                if !handles.is_empty() {
                    ring.send_handles(&self.stream, handles)?;
                }
                ring.write_all(data, &self.stream)
            }
            None => self.stream.write_all(data, handles),
        }
    }
}

/// A connection's bytes as the framer reads them. Each read waits as the receive asks
/// (a [`Deadline`], or for ever: a bounded spin then a blocking read); handles that arrive meanwhile
/// are kept for the message they belong to.
struct Source<'a, 'h> {
    io: Io<'a>,
    handles: &'h mut VecDeque<OwnedOsHandle>,
    wait: Deadline,
}

impl Source<'_, '_> {
    /// Waits for bytes until the deadline, if there is one: `Timeout` past it.
    fn wait(&mut self) -> Result<(), ConnectionError> {
        if let Some(d) = self.wait.instant() {
            if !wait_readable(self.io, self.handles, Some(d))? {
                return Err(ConnectionError::Timeout);
            }
        }
        Ok(())
    }
}

impl FrameSource for Source<'_, '_> {
    type Error = ConnectionError;

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ConnectionError> {
        loop {
            self.wait()?;
            let mut arrived = Vec::new();
            let stream = self.io.stream;
            let n = match (self.io.ring, self.wait) {
                (Some(ring), _) => ring.read_bytes(buf, stream, &mut arrived),
                (None, Deadline::Never) => read_some(|nb| stream.read_chunk(buf, nb, &mut arrived)),
                (None, Deadline::At(_) | Deadline::Now) => {
                    match stream.read_chunk(buf, true, &mut arrived) {
                        // Readable a moment ago, taken since by another holder of the end.
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            self.handles.extend(arrived);
                            continue;
                        }
                        r => r,
                    }
                }
            };
            self.handles.extend(arrived);
            return Ok(n?);
        }
    }

    fn read_spare(&mut self, v: &mut Vec<u8>, want: usize) -> Result<usize, ConnectionError> {
        loop {
            self.wait()?;
            let stream = self.io.stream;
            return Ok(match (self.io.ring, self.wait) {
                (Some(ring), _) => {
                    let mut arrived = Vec::new();
                    let spare: &mut [MaybeUninit<u8>] = v.spare_capacity_mut();
                    let room = spare.len().min(want);
                    let n = ring.read(&mut spare[..room], stream, &mut arrived);
                    self.handles.extend(arrived);
                    let n = n?;
                    // SAFETY: `read` initialised the first n <= room bytes of the spare capacity.
                    unsafe { v.set_len(v.len() + n) };
                    n
                }
                (None, Deadline::Never) => read_some(|nb| stream.read_spare(v, want, nb))?,
                (None, Deadline::At(_) | Deadline::Now) => match stream.read_spare(v, want, true) {
                    // Readable a moment ago, taken since by another holder of the end.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    r => r?,
                },
            });
        }
    }
}

impl Reader {
    fn new(exact: bool) -> Reader {
        let mut frames = FrameReader::new(CHUNK);
        frames.set_exact(exact);
        Reader {
            frames,
            handles: VecDeque::new(),
            broken: false,
        }
    }

    fn read_frame(
        &mut self,
        io: Io<'_>,
        max: u64,
        wait: Deadline,
    ) -> Result<Body, ConnectionError> {
        if self.broken {
            return Err(ConnectionError::Broken);
        }
        let mut source = Source {
            io,
            handles: &mut self.handles,
            wait,
        };
        let r = self.frames.read_frame(&mut source, max);
        if let Err(e) = &r {
            // A timeout leaves the stream in step: what arrived of the frame stays in the
            // reader for the next receive.
            if !matches!(e, ConnectionError::Eof | ConnectionError::Timeout) {
                self.broken = true;
            }
        }
        r
    }

    fn body<'a>(&'a self, body: &'a Body) -> &'a [u8] {
        self.frames.body(body)
    }

    fn take_handles(
        &mut self,
        io: Io<'_>,
        n: usize,
    ) -> Result<Vec<OwnedOsHandle>, ConnectionError> {
        if let (Some(ring), true) = (io.ring, self.handles.len() < n) {
            // Ring: the handles were sent on the socket before the message was published.
            let mut arrived = Vec::new();
            ring.drain(io.stream, &mut arrived)?;
            self.handles.extend(arrived);
        }
        if self.handles.len() < n {
            return Err(FrameError::MissingHandles {
                announced: n,
                arrived: self.handles.len(),
            }
            .into());
        }
        Ok(self.handles.drain(..n).collect())
    }
}

impl<T, D: Direction> Connection<T, D> {
    pub(crate) fn from_stream(stream: Stream) -> Self {
        Connection::from_parts(stream, None)
    }

    fn from_parts(stream: Stream, ring: Option<RingEnd>) -> Self {
        // A ring end reads each frame exactly (no read-ahead): reading the ring costs no
        // system call, and ends shared by several processes then never split a frame.
        let exact = ring.is_some();
        Connection {
            inner: Arc::new(Inner {
                stream,
                ring,
                reader: Mutex::new(Reader::new(exact)),
                writer: Mutex::new(()),
                max_message: AtomicU64::new(DEFAULT_MAX_MESSAGE_SIZE),
            }),
            _marker: PhantomData,
        }
    }

    /// Wraps an OS object that is already connected to a peer speaking the same frames (Unix:
    /// a Unix domain or TCP stream socket; Windows: a byte-mode pipe handle), as Python's
    /// `Connection(handle)` does.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use std::io::Write;
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let conn = processing::transport::Connection::<()>::from_os_handle(a.into()).unwrap();
    /// b.write_all(&[0, 0, 0, 2, b'h', b'i']).unwrap();
    /// assert_eq!(conn.recv_bytes().unwrap(), b"hi");
    /// # }
    /// ```
    pub fn from_os_handle(handle: OwnedOsHandle) -> Result<Self, ConnectionError> {
        Ok(Connection::from_stream(Stream::adopt(handle)?))
    }

    /// The same end, for messages of another type (connections are untyped on the wire, as in
    /// Python: a typed message is checked only when it is received).
    ///
    /// ```
    /// let (a, b) = processing::transport::Pipe::new::<u8>().unwrap();
    /// let a = a.with_type::<String>();
    /// a.send(&"now text".to_string()).unwrap();
    /// assert!(b.recv().is_err());
    /// ```
    pub fn with_type<U>(self) -> Connection<U, D> {
        Connection {
            inner: self.inner,
            _marker: PhantomData,
        }
    }

    /// The largest message this end accepts (default 16 GiB); a longer length prefix is a
    /// [`FrameError::TooLarge`] error before anything is allocated.
    ///
    /// ```
    /// let (a, b) = processing::transport::Pipe::new::<Vec<u8>>().unwrap();
    /// b.set_max_message_size(4);
    /// a.send_bytes(b"too long").unwrap();
    /// assert!(b.recv_bytes().unwrap_err().is_malformed());
    /// ```
    pub fn set_max_message_size(&self, max: u64) {
        self.inner.max_message.store(max, Ordering::Relaxed);
    }

    /// The largest message this end accepts.
    pub fn max_message_size(&self) -> u64 {
        self.inner.max_message.load(Ordering::Relaxed)
    }

    /// Closes this end (the OS object closes when the last clone is dropped). Closing never
    /// affects copies of the end that were sent to other processes.
    ///
    /// ```
    /// let (a, b) = processing::transport::Pipe::new::<u8>().unwrap();
    /// a.close();
    /// assert!(b.recv().unwrap_err().is_eof());
    /// ```
    pub fn close(self) {}

    /// Cuts the connection under any thread reading it (a listener dropping a handshake).
    pub(crate) fn abort(&self) {
        self.inner.stream.shutdown();
    }

    pub(crate) fn set_exact_reads(&self, exact: bool) {
        lock(&self.inner.reader)
            .frames
            .set_exact(exact || self.inner.ring.is_some());
    }

    pub(crate) fn set_read_timeout(
        &self,
        timeout: Option<Duration>,
    ) -> Result<(), ConnectionError> {
        self.inner
            .stream
            .set_read_timeout(timeout)
            .map_err(ConnectionError::Io)
    }

    /// Writes the frame built in `buf` behind [`RESERVED`] bytes of header room, with
    /// `handles` travelling with its first byte.
    fn write_frame(
        &self,
        buf: &mut [u8],
        handles: &[OwnedOsHandle],
    ) -> Result<(), ConnectionError> {
        let _w = self.inner.write_guard();
        match processing_core::frame::seal(buf) {
            Some(Sealed::Whole(bytes)) => self.inner.write_all(bytes, handles)?,
            Some(Sealed::Split(header, body)) => {
                self.inner.write_all(header.as_bytes(), handles)?;
                self.inner.write_all(body, &[])?;
            }
            None => {
                return Err(ConnectionError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a frame buffer without header room",
                )))
            }
        }
        Ok(())
    }
}

impl<T, D: CanSend> Connection<T, D> {
    /// Sends `bytes` as one message.
    ///
    /// ```
    /// let (a, b) = processing::transport::Pipe::new::<()>().unwrap();
    /// a.send_bytes(b"").unwrap();
    /// a.send_bytes(b"abc").unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"");
    /// assert_eq!(b.recv_bytes().unwrap(), b"abc");
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), ConnectionError> {
        if bytes.len() <= COALESCE {
            let mut buf = Vec::with_capacity(RESERVED + bytes.len());
            buf.extend_from_slice(&[0; RESERVED]);
            buf.extend_from_slice(bytes);
            return self.write_frame(&mut buf, &[]);
        }
        let header = Header::for_len(bytes.len() as u64);
        let _w = self.inner.write_guard();
        self.inner.write_all(header.as_bytes(), &[])?;
        self.inner.write_all(bytes, &[])?;
        Ok(())
    }

    /// Sends a value; OS handles inside it (connections, sentinels) travel beside it.
    ///
    /// ```
    /// let (a, b) = processing::transport::Pipe::new::<(u8, String)>().unwrap();
    /// a.send(&(1, "one".into())).unwrap();
    /// assert_eq!(b.recv().unwrap(), (1, "one".to_string()));
    /// ```
    pub fn send(&self, value: &T) -> Result<(), ConnectionError>
    where
        T: Serialize,
    {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0u8; RESERVED + 1]);
        buf.extend_from_slice(&fingerprint::<T>());
        let ((), handles) = handles::collect(|| codec::encode_into(value, &mut buf))?;
        if !handles.is_empty() && !self.inner.stream.carries_handles() {
            return Err(HandleError::NoChannel.into());
        }
        if handles.len() > MAX_HANDLES {
            return Err(ConnectionError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a message may carry at most {MAX_HANDLES} os handles"),
            )));
        }
        buf[RESERVED] = handles.len() as u8;
        self.write_frame(&mut buf, &handles)
    }

    /// Sends `value` as a pickle that Python's `Connection.recv()` loads (protocol 5, plain
    /// data only: maps and structs become `dict`, sequences `list`, tuples `tuple`; see the
    /// [`pickle`](crate::pickle) module). Use [`PickleValue`](crate::pickle::PickleValue) for
    /// `set`s, `frozenset`s and dicts with keys of mixed types. Dict keys must be hashable in
    /// Python: a map key that serializes as a sequence (a `Vec`) makes Python's `recv()` raise
    /// `TypeError`; use a tuple.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// let (a, b) = processing::transport::Pipe::new::<()>().unwrap();
    /// let mut m = BTreeMap::new();
    /// m.insert("answer".to_string(), 42u32);
    /// a.send_pickle(&m).unwrap();
    /// // Python's `conn.recv()` on `b`'s side would return {'answer': 42}.
    /// assert_eq!(b.recv_bytes().unwrap(), b"\x80\x05}(\x8c\x06answerK*u.");
    /// ```
    #[cfg(feature = "pickle")]
    pub fn send_pickle<V: Serialize + ?Sized>(&self, value: &V) -> Result<(), ConnectionError> {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0u8; RESERVED]);
        crate::pickle::write_into(value, &mut buf)?;
        self.write_frame(&mut buf, &[])
    }
}

impl<T, D: CanRecv> Connection<T, D> {
    /// Receives one message as bytes; blocks until one arrives. At the end of the stream
    /// (the peer closed), [`ConnectionError::Eof`].
    ///
    /// ```
    /// let (a, b) = processing::transport::Pipe::new::<()>().unwrap();
    /// b.send_bytes(&[1, 2, 3]).unwrap();
    /// assert_eq!(a.recv_bytes().unwrap(), [1, 2, 3]);
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        self.recv_bytes_with(Deadline::Never, false)
    }

    /// Receives one message as bytes, waiting at most `timeout` for it (`Duration::MAX`: as
    /// long as needed, zero: one attempt): [`ConnectionError::Timeout`] when none came. Part
    /// of a message that arrived before the timeout stays buffered for the next receive.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = processing::transport::Pipe::new::<()>().unwrap();
    /// assert!(a.recv_bytes_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// b.send_bytes(b"late").unwrap();
    /// assert_eq!(a.recv_bytes_timeout(Duration::MAX).unwrap(), b"late");
    /// ```
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, ConnectionError> {
        self.recv_bytes_with(Deadline::after(timeout), false)
    }

    /// Receives one message as bytes if a whole one is there now:
    /// [`ConnectionError::WouldBlock`] otherwise (also while another thread of this process
    /// receives on the same end).
    ///
    /// ```
    /// let (a, b) = processing::transport::Pipe::new::<()>().unwrap();
    /// assert!(a.try_recv_bytes().unwrap_err().is_would_block());
    /// b.send_bytes(b"now").unwrap();
    /// assert!(a.poll(std::time::Duration::MAX).unwrap());
    /// assert_eq!(a.try_recv_bytes().unwrap(), b"now");
    /// ```
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        self.recv_bytes_with(Deadline::Now, true)
    }

    fn recv_bytes_with(&self, wait: Deadline, attempt: bool) -> Result<Vec<u8>, ConnectionError> {
        let mut r = self.reader(attempt)?;
        let _g = self.inner.ring.as_ref().map(RingEnd::lock_read);
        let body = r
            .read_frame(self.inner.io(), self.max_message_size(), wait)
            .map_err(|e| attempt_error(e, attempt))?;
        Ok(r.frames.into_vec(body))
    }

    /// The reader, waiting for another thread's receive to end, or (`attempt`) not.
    fn reader(&self, attempt: bool) -> Result<MutexGuard<'_, Reader>, ConnectionError> {
        if !attempt {
            return Ok(lock(&self.inner.reader));
        }
        match self.inner.reader.try_lock() {
            Ok(g) => Ok(g),
            Err(std::sync::TryLockError::Poisoned(e)) => Ok(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => Err(ConnectionError::WouldBlock),
        }
    }

    /// Receives one message into `buf[offset..]` and returns its length. If it does not fit,
    /// [`ConnectionError::BufferTooShort`] carries the whole message.
    ///
    /// ```
    /// let (a, b) = processing::transport::Pipe::new::<()>().unwrap();
    /// b.send_bytes(b"hello").unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(a.recv_bytes_into(&mut buf, 2).unwrap(), 5);
    /// assert_eq!(&buf[2..7], b"hello");
    /// b.send_bytes(b"too long for it").unwrap();
    /// let err = a.recv_bytes_into(&mut buf, 0).unwrap_err();
    /// assert!(matches!(err, processing::transport::ConnectionError::BufferTooShort(m) if m == b"too long for it"));
    /// ```
    pub fn recv_bytes_into(&self, buf: &mut [u8], offset: usize) -> Result<usize, ConnectionError> {
        if offset > buf.len() {
            return Err(ConnectionError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "offset is beyond the end of the buffer",
            )));
        }
        let mut r = lock(&self.inner.reader);
        let _g = self.inner.ring.as_ref().map(RingEnd::lock_read);
        let body = r.read_frame(self.inner.io(), self.max_message_size(), Deadline::Never)?;
        let room = &mut buf[offset..];
        let bytes = r.body(&body);
        if bytes.len() > room.len() {
            return Err(ConnectionError::BufferTooShort(r.frames.into_vec(body)));
        }
        room[..bytes.len()].copy_from_slice(bytes);
        Ok(bytes.len())
    }

    /// Receives one value; blocks until it arrives.
    ///
    /// ```
    /// let (a, b) = processing::transport::Pipe::new::<Vec<u32>>().unwrap();
    /// a.send(&vec![1, 2]).unwrap();
    /// assert_eq!(b.recv().unwrap(), [1, 2]);
    /// ```
    pub fn recv(&self) -> Result<T, ConnectionError>
    where
        T: DeserializeOwned,
    {
        self.recv_with(Deadline::Never, false)
    }

    /// Receives one value, waiting at most `timeout` for it (`Duration::MAX`: as long as
    /// needed, zero: one attempt): [`ConnectionError::Timeout`] when none came. Part of a
    /// message that arrived before the timeout stays buffered: the next receive continues it,
    /// so a timeout never puts the stream out of step. (A receive of another thread on the same
    /// end is waited for first.)
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = processing::transport::Pipe::new::<u32>().unwrap();
    /// let e = a.recv_timeout(Duration::from_millis(1)).unwrap_err();
    /// assert!(e.is_timeout());
    /// b.send(&7).unwrap();
    /// assert_eq!(a.recv_timeout(Duration::from_secs(30)).unwrap(), 7);
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, ConnectionError>
    where
        T: DeserializeOwned,
    {
        self.recv_with(Deadline::after(timeout), false)
    }

    /// Receives one value if a whole message is there now: [`ConnectionError::WouldBlock`]
    /// otherwise (also while another thread of this process receives on the same end).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = processing::transport::Pipe::new::<u32>().unwrap();
    /// assert!(a.try_recv().unwrap_err().is_would_block());
    /// b.send(&7).unwrap();
    /// assert!(a.poll(Duration::MAX).unwrap());
    /// assert_eq!(a.try_recv().unwrap(), 7);
    /// ```
    pub fn try_recv(&self) -> Result<T, ConnectionError>
    where
        T: DeserializeOwned,
    {
        self.recv_with(Deadline::Now, true)
    }

    fn recv_with(&self, wait: Deadline, attempt: bool) -> Result<T, ConnectionError>
    where
        T: DeserializeOwned,
    {
        let mut r = self.reader(attempt)?;
        let _g = self.inner.ring.as_ref().map(RingEnd::lock_read);
        let io = self.inner.io();
        let body = r
            .read_frame(io, self.max_message_size(), wait)
            .map_err(|e| attempt_error(e, attempt))?;
        let (&count, _) = r.body(&body).split_first().ok_or(FrameError::EmptyTyped)?;
        let handles = match r.take_handles(io, count as usize) {
            // Python's `send` pickles: its first byte (PROTO, 0x80) reads as 128 handles.
            Err(ConnectionError::Frame(FrameError::MissingHandles { .. }))
                if looks_like_pickle(r.body(&body)) =>
            {
                return Err(FrameError::PickleMessage.into())
            }
            h => h?,
        };
        let payload = frame::typed_payload::<T>(&r.body(&body)[1..])?;
        Ok(handles::provide(handles, || codec::decode(payload))?)
    }

    /// Receives one message that Python's `Connection.send(obj)` wrote (a pickle), as any
    /// `Deserialize` type `V` or as the dynamic [`PickleValue`](crate::pickle::PickleValue).
    /// Only Python data decodes (`None`, `bool`, `int`, `float`, `str`, `bytes`, `list`,
    /// `tuple`, `dict`, `set`, `frozenset`): a pickle that would import or call anything is
    /// refused with [`PickleError::Refused`](crate::pickle::PickleError::Refused) and nothing
    /// of it runs. The message is consumed either way, so the connection stays usable after a
    /// refused or mistyped pickle. See the [`pickle`](crate::pickle) module for the mapping and
    /// the limits.
    ///
    /// ```
    /// use processing::transport::pickle::PickleValue;
    /// let (a, b) = processing::transport::Pipe::new::<()>().unwrap();
    /// // What Python's `conn.send({"n": 1})` writes.
    /// a.send_bytes(b"\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01n\x94K\x01s.").unwrap();
    /// let v: std::collections::BTreeMap<String, u32> = b.recv_pickle().unwrap();
    /// assert_eq!(v["n"], 1);
    /// a.send_pickle(&("tuple", vec![1.5])).unwrap();
    /// let v: PickleValue = b.recv_pickle().unwrap();
    /// assert_eq!(v, PickleValue::Tuple(vec![
    ///     PickleValue::Str("tuple".into()),
    ///     PickleValue::List(vec![PickleValue::Float(1.5)]),
    /// ]));
    /// ```
    #[cfg(feature = "pickle")]
    pub fn recv_pickle<V: DeserializeOwned>(&self) -> Result<V, ConnectionError> {
        let mut r = lock(&self.inner.reader);
        let _g = self.inner.ring.as_ref().map(RingEnd::lock_read);
        let body = r.read_frame(self.inner.io(), self.max_message_size(), Deadline::Never)?;
        Ok(crate::pickle::from_slice(r.body(&body))?)
    }

    /// Whether a message (or the end of the stream) can be received without blocking, waiting
    /// up to `timeout` for one.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = processing::transport::Pipe::new::<()>().unwrap();
    /// assert!(!b.poll(Duration::ZERO).unwrap());
    /// a.send_bytes(b"").unwrap();
    /// assert!(b.poll(Duration::from_secs(5)).unwrap());
    /// ```
    pub fn poll(&self, timeout: Duration) -> Result<bool, ConnectionError> {
        let mut r = lock(&self.inner.reader);
        if r.broken || r.frames.frame_ready(self.max_message_size()) {
            return Ok(true);
        }
        let deadline = Instant::now().checked_add(timeout);
        wait_readable(self.inner.io(), &mut r.handles, deadline)
    }
}

/// A timeout of a one-attempt receive is reported as [`ConnectionError::WouldBlock`].
fn attempt_error(e: ConnectionError, attempt: bool) -> ConnectionError {
    match e {
        ConnectionError::Timeout if attempt => ConnectionError::WouldBlock,
        e => e,
    }
}

impl<T, D: CanRecv> Waitable for Connection<T, D> {
    fn raw_waitable(&self) -> Option<RawWaitable> {
        self.inner.stream.raw_waitable()
    }

    fn is_ready(&self) -> bool {
        if let Some(ring) = &self.inner.ring {
            // `wait` sleeps on the socket after this: arm the doorbell first.
            return match self.inner.reader.try_lock() {
                Ok(mut r) => {
                    if r.broken || r.frames.frame_ready(self.max_message_size()) {
                        return true;
                    }
                    let mut arrived = Vec::new();
                    let ready = ring.arm(&self.inner.stream, &mut arrived);
                    r.handles.extend(arrived);
                    ready.unwrap_or(true)
                }
                Err(_) => ring.readable_now(),
            };
        }
        if let Ok(r) = self.inner.reader.try_lock() {
            if r.frames.frame_ready(self.max_message_size()) {
                return true;
            }
        }
        self.raw_waitable().is_none()
            && self
                .inner
                .stream
                .poll_readable(Some(Duration::ZERO))
                .unwrap_or(true)
    }
}

/// A borrowed OS handle serialized through the side channel.
struct HandleRef<'a>(BorrowedOsHandle<'a>);

impl Serialize for HandleRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        handles::serialize_handle(self.0, s)
    }
}

#[derive(Serialize)]
struct WireRef<'a> {
    direction: (bool, bool),
    kind: u8,
    handle: HandleRef<'a>,
    buffered: &'a [u8],
    pending: Vec<HandleRef<'a>>,
    max_message: u64,
    ring: Option<(HandleRef<'a>, u8)>,
}

#[derive(Deserialize)]
struct Wire {
    direction: (bool, bool),
    kind: u8,
    handle: TransferableHandle,
    buffered: Vec<u8>,
    pending: Vec<TransferableHandle>,
    max_message: u64,
    ring: Option<(TransferableHandle, u8)>,
}

impl<T, D: Direction> Serialize for Connection<T, D> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let stream = &self.inner.stream;
        // Unix needs a descriptor-carrying channel (Windows pulls handles by pid and value).
        if !handles::channel_active() {
            return Err(S::Error::custom(HandleError::NoChannel));
        }
        let handle = stream.transfer_handle().map_err(S::Error::custom)?;
        let r = lock(&self.inner.reader);
        if r.frames.in_long_frame() {
            // Its first part is in this process only: the copy could not continue it.
            return Err(S::Error::custom(
                "the connection is in the middle of receiving a long message",
            ));
        }
        WireRef {
            direction: (D::CAN_SEND, D::CAN_RECV),
            kind: stream.kind().to_byte(),
            handle: HandleRef(handle),
            buffered: r.frames.buffered(),
            pending: r
                .handles
                .iter()
                .map(|h| HandleRef(sys::borrow_handle(h)))
                .collect(),
            max_message: self.max_message_size(),
            ring: self
                .inner
                .ring
                .as_ref()
                .map(|ring| (HandleRef(ring.memfd()), ring.side())),
        }
        .serialize(s)
    }
}

impl<'de, T, D: Direction> Deserialize<'de> for Connection<T, D> {
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        let w = Wire::deserialize(d)?;
        let (can_send, can_recv) = w.direction;
        if (D::CAN_SEND && !can_send) || (D::CAN_RECV && !can_recv) {
            return Err(De::Error::custom(
                "connection direction does not match the receiving type",
            ));
        }
        let kind = StreamKind::from_byte(w.kind)
            .ok_or_else(|| De::Error::custom("unknown connection kind"))?;
        let stream = Stream::from_handle(w.handle.into_inner(), kind).map_err(De::Error::custom)?;
        let ring = match w.ring {
            Some((memfd, side)) => {
                Some(RingEnd::from_fd(memfd.into_inner(), side).map_err(De::Error::custom)?)
            }
            None => None,
        };
        let conn = Connection::from_parts(stream, ring);
        conn.set_max_message_size(w.max_message);
        {
            let mut r = lock(&conn.inner.reader);
            if !r.frames.restore(&w.buffered) {
                return Err(De::Error::custom("connection read-ahead is too long"));
            }
            r.handles = w
                .pending
                .into_iter()
                .map(TransferableHandle::into_inner)
                .collect();
        }
        Ok(conn)
    }
}
