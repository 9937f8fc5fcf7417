//! Length-prefixed frames on byte streams: the one framer of the workspace.
//!
//! Every stream that carries messages (pipes and listener connections, the handshake, the
//! bootstrap channel between a parent and its child, the pool's worker streams, the manager's
//! sockets) frames them here, in the format of Python's `multiprocessing.connection` — so the
//! transport's streams stay byte-compatible with real Python, and the internal streams use the
//! same bytes:
//!
//! - a 4-byte big-endian signed length, then that many bytes of body;
//! - a body longer than `i32::MAX` bytes is announced by the length `-1` (`ff ff ff ff`)
//!   followed by an 8-byte big-endian unsigned length;
//! - any other negative length is malformed ([`FrameError::NegativeLength`]).
//!
//! What a stream needs beyond a length (a type byte, a count of OS handles that travel beside
//! the bytes) is the caller's body, never a second header.
//!
//! The reading side never trusts a length: it is checked against a maximum the caller gives
//! before anything is allocated ([`FrameError::TooLarge`]), and a body's buffer grows with the
//! bytes that arrive — by at most the larger of [`FIRST_STEP`] and what arrived — so a peer that
//! announces 1 GiB and sends 10 bytes costs about [`FIRST_STEP`], not 1 GiB. A stream that ends
//! inside a frame is [`FrameError::Truncated`] naming the part (header or body), never a hang
//! or a short message.
//!
//! Three ways to read, over one [`FrameSource`] seam (the byte source decides how it waits):
//! - [`read_frame`]: one frame, exactly (no byte of the next frame is read), e.g. from any
//!   blocking [`Read`] through [`ReadSource`];
//! - [`FrameReader`]: a resumable reader with a read-ahead buffer, for sources that give up
//!   (a timeout, a non-blocking read with nothing there): what arrived of a frame stays in the
//!   reader and the next call continues it, so a timeout never puts the stream out of step;
//! - [`split_frames`]: a complete in-memory stream.
//!
//! And to write: [`write_frame`] (header and body in one vectored write) or, for a body built
//! behind [`RESERVED`] bytes of room, [`seal`] / [`write_reserved`] (one plain write).
//!
//! ```
//! use processing::core::frame::{self, FrameReader, ReadSource};
//! let mut wire = Vec::new();
//! frame::write_frame(&mut wire, b"hello").unwrap();
//! frame::write_frame(&mut wire, b"").unwrap();
//! assert_eq!(&wire[..4], &[0, 0, 0, 5]);
//!
//! let mut reader = FrameReader::new(64 * 1024);
//! let mut source = ReadSource(&wire[..]);
//! let body = reader.read_frame(&mut source, 1 << 20).unwrap();
//! assert_eq!(reader.body(&body), b"hello");
//! let body = reader.read_frame(&mut source, 1 << 20).unwrap();
//! assert_eq!(reader.body(&body), b"");
//! // The end of the stream between frames is `Eof`.
//! let e = reader.read_frame(&mut source, 1 << 20).unwrap_err();
//! assert!(frame::FrameError::of(&e).is_some_and(|e| e.is_eof()));
//! ```

use std::fmt;
use std::io::{self, IoSlice, Read, Write};

/// Length of the short header: a 4-byte big-endian signed length.
pub const SHORT_HEADER: usize = 4;
/// Length of the long header: `-1`, then an 8-byte big-endian length.
pub const LONG_HEADER: usize = 12;
/// Bytes a caller reserves at the front of a buffer that [`seal`] turns into a frame.
pub const RESERVED: usize = SHORT_HEADER;
/// The first allocation for a body larger than what arrived with its header; it then grows
/// by at most what arrived (doubling), so a false length never costs more than twice the bytes
/// that came plus this.
pub const FIRST_STEP: usize = 1 << 20;
/// At most this many bytes of a buffer are zeroed ahead of one read by the default
/// [`FrameSource::read_spare`].
const SPARE_STEP: usize = 64 * 1024;

/// Which part of a frame a stream ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FramePart {
    /// The length prefix.
    Header,
    /// The bytes the length announced.
    Body,
}

impl fmt::Display for FramePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FramePart::Header => "header",
            FramePart::Body => "body",
        })
    }
}

/// A stream did not hold a well-formed frame.
///
/// ```
/// use processing::core::frame::{decode_header, FrameError};
/// assert_eq!(decode_header(&[0, 0, 1, 0], 16), Err(FrameError::TooLarge { len: 256, max: 16 }));
/// assert_eq!(decode_header(&[0x80, 0, 0, 0], 16), Err(FrameError::NegativeLength(i32::MIN)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The stream ended cleanly, between two frames (the peer closed it).
    #[error("end of stream: the peer closed it between two frames")]
    Eof,
    /// The stream ended inside a frame: the peer closed it (or died) mid-header or mid-body.
    #[error("the stream ended in the middle of a frame's {part} ({got} of {expected} bytes)")]
    Truncated {
        /// Where it ended.
        part: FramePart,
        /// Bytes of that part that arrived.
        got: u64,
        /// Bytes that part needed.
        expected: u64,
    },
    /// The length prefix is negative (and not the `-1` escape of the long header).
    #[error("malformed frame: negative length {0}")]
    NegativeLength(i32),
    /// The length prefix is larger than the reader accepts (or than this machine can address).
    #[error("a frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: u64,
        /// The reader's limit.
        max: u64,
    },
}

impl FrameError {
    /// Whether the stream ended cleanly between frames ([`FrameError::Eof`]).
    pub fn is_eof(&self) -> bool {
        matches!(self, FrameError::Eof)
    }

    /// The frame error inside an [`io::Error`] made from one (as [`ReadSource`] reports them).
    ///
    /// ```
    /// use processing::core::frame::FrameError;
    /// let e = std::io::Error::from(FrameError::Eof);
    /// assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    /// assert_eq!(FrameError::of(&e), Some(FrameError::Eof));
    /// ```
    pub fn of(e: &io::Error) -> Option<FrameError> {
        e.get_ref()?.downcast_ref::<FrameError>().copied()
    }
}

impl From<FrameError> for io::Error {
    fn from(e: FrameError) -> io::Error {
        let kind = match e {
            FrameError::Eof | FrameError::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            FrameError::NegativeLength(_) | FrameError::TooLarge { .. } => {
                io::ErrorKind::InvalidData
            }
        };
        io::Error::new(kind, e)
    }
}

/// The header announcing a body of some length, ready to write.
///
/// ```
/// use processing::core::frame::Header;
/// assert_eq!(Header::for_len(5).as_bytes(), &[0, 0, 0, 5]);
/// assert_eq!(Header::for_len(1 << 31).as_bytes(), &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Header {
    bytes: [u8; LONG_HEADER],
    len: u8,
}

impl Header {
    /// The header of a body of `len` bytes: the short form up to `i32::MAX`, the long one above.
    pub fn for_len(len: u64) -> Header {
        let mut bytes = [0u8; LONG_HEADER];
        if let Ok(short) = i32::try_from(len) {
            bytes[..SHORT_HEADER].copy_from_slice(&short.to_be_bytes());
            return Header {
                bytes,
                len: SHORT_HEADER as u8,
            };
        }
        bytes[..SHORT_HEADER].copy_from_slice(&(-1i32).to_be_bytes());
        bytes[SHORT_HEADER..].copy_from_slice(&len.to_be_bytes());
        Header {
            bytes,
            len: LONG_HEADER as u8,
        }
    }

    /// The header's bytes (4 or 12).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Header").field(&self.as_bytes()).finish()
    }
}

/// Decodes a frame header from the start of `bytes`.
///
/// `Ok(None)` when more bytes are needed; `Ok(Some((body_len, header_len)))` when the header is
/// whole and the length at most `max` (and addressable); an error for a malformed header or a
/// longer body. Nothing is allocated, whatever the length says.
///
/// ```
/// use processing::core::frame::decode_header;
/// assert_eq!(decode_header(&[0, 0], 10), Ok(None));
/// assert_eq!(decode_header(&[0, 0, 0, 3, b'a'], 10), Ok(Some((3, 4))));
/// assert_eq!(decode_header(&[0xff; 4], 10), Ok(None)); // the long form needs 8 more bytes
/// ```
pub fn decode_header(bytes: &[u8], max: u64) -> Result<Option<(u64, usize)>, FrameError> {
    let Some(short) = bytes.first_chunk::<SHORT_HEADER>() else {
        return Ok(None);
    };
    let (len, header_len) = match i32::from_be_bytes(*short) {
        -1 => {
            let Some(long) = bytes[SHORT_HEADER..].first_chunk::<8>() else {
                return Ok(None);
            };
            (u64::from_be_bytes(*long), LONG_HEADER)
        }
        n if n < 0 => return Err(FrameError::NegativeLength(n)),
        n => (n as u64, SHORT_HEADER),
    };
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    // A body is held in one buffer: its length (with its header) must be addressable.
    if usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(header_len))
        .is_none()
    {
        return Err(FrameError::TooLarge {
            len,
            max: (usize::MAX - LONG_HEADER) as u64,
        });
    }
    Ok(Some((len, header_len)))
}

/// Splits a complete in-memory stream of frames into their bodies; a stream that ends inside a
/// frame is [`FrameError::Truncated`]. Never allocates more than the input holds.
///
/// ```
/// use processing::core::frame::{split_frames, FrameError, FramePart};
/// assert_eq!(split_frames(&[0, 0, 0, 1, 7, 0, 0, 0, 0], 8).unwrap(), [&[7u8][..], &[]]);
/// assert!(matches!(
///     split_frames(&[0, 0, 0, 9, 1], 100),
///     Err(FrameError::Truncated { part: FramePart::Body, got: 1, expected: 9 })
/// ));
/// ```
pub fn split_frames(mut bytes: &[u8], max: u64) -> Result<Vec<&[u8]>, FrameError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some((len, header)) = decode_header(bytes, max)? else {
            let expected = if bytes.len() >= SHORT_HEADER {
                LONG_HEADER
            } else {
                SHORT_HEADER
            };
            return Err(FrameError::Truncated {
                part: FramePart::Header,
                got: bytes.len() as u64,
                expected: expected as u64,
            });
        };
        let body = &bytes[header..];
        // `decode_header` checked that `len` is addressable.
        let len = len as usize;
        let Some(frame) = body.get(..len) else {
            return Err(FrameError::Truncated {
                part: FramePart::Body,
                got: body.len() as u64,
                expected: len as u64,
            });
        };
        out.push(frame);
        bytes = &body[len..];
    }
    Ok(out)
}

/// Where a reader's bytes come from, and how it waits for them.
///
/// A source decides everything about waiting: a blocking read, a spin before one, a deadline,
/// a non-blocking attempt. It reports "not now" as an error of its own type, which the readers
/// pass up unchanged, leaving their state as it was ([`FrameReader`] then continues the frame
/// at its next call). The end of the stream is `Ok(0)`; the readers turn it into
/// [`FrameError::Eof`] or [`FrameError::Truncated`], through `From<FrameError>`.
pub trait FrameSource {
    /// What a read can fail with; frame errors convert into it.
    type Error: From<FrameError>;

    /// Reads at least one byte into `buf` (never empty), or `Ok(0)` at the end of the stream.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error>;

    /// Appends at most `want` bytes to `v`, reading into its spare capacity (the caller leaves
    /// some), or `Ok(0)` at the end of the stream. The default zeroes at most 64 KiB of the
    /// spare capacity and calls [`read`](FrameSource::read); a source that can read into
    /// uninitialised memory overrides it.
    fn read_spare(&mut self, v: &mut Vec<u8>, want: usize) -> Result<usize, Self::Error> {
        let have = v.len();
        let room = (v.capacity() - have).min(want).min(SPARE_STEP);
        v.resize(have + room, 0);
        let r = self.read(&mut v[have..]);
        let n = *r.as_ref().unwrap_or(&0);
        v.truncate(have + n.min(room));
        r
    }
}

/// A blocking [`Read`] as a [`FrameSource`] (interrupted reads are retried; errors are
/// [`io::Error`]s, frame errors inside them: see [`FrameError::of`]).
#[derive(Debug)]
pub struct ReadSource<R>(pub R);

impl<R: Read> FrameSource for ReadSource<R> {
    type Error = io::Error;

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

/// The next growth of a body buffer holding `have` of `len` bytes.
fn growth(have: usize, len: usize) -> usize {
    (len - have).min(have.max(FIRST_STEP))
}

/// Reads the rest of a body of `len` bytes into `v` (which holds its first bytes), growing `v`
/// only as bytes arrive.
fn read_body<S: FrameSource + ?Sized>(
    src: &mut S,
    v: &mut Vec<u8>,
    len: usize,
) -> Result<(), S::Error> {
    while v.len() < len {
        if v.len() == v.capacity() {
            v.reserve_exact(growth(v.len(), len));
        }
        let n = src.read_spare(v, len - v.len())?;
        if n == 0 {
            return Err(FrameError::Truncated {
                part: FramePart::Body,
                got: v.len() as u64,
                expected: len as u64,
            }
            .into());
        }
    }
    Ok(())
}

/// Reads one frame's body into `body` (cleared first), exactly: not a byte of the next frame
/// is consumed. A length above `max` fails before the body is read; at the end of the stream
/// between frames, [`FrameError::Eof`]. The first allocation is at most the frame's length and
/// [`FIRST_STEP`]; a reused `body` keeps its capacity.
///
/// ```
/// use processing::core::frame::{read_frame, FrameError, FramePart, ReadSource};
/// let mut body = Vec::new();
/// read_frame(&mut ReadSource(&[0u8, 0, 0, 2, 1, 2][..]), 16, &mut body).unwrap();
/// assert_eq!(body, [1, 2]);
/// // The peer closed after two bytes of the body.
/// let e = read_frame(&mut ReadSource(&[0u8, 0, 0, 9, 1, 2][..]), 16, &mut body).unwrap_err();
/// assert_eq!(
///     FrameError::of(&e),
///     Some(FrameError::Truncated { part: FramePart::Body, got: 2, expected: 9 })
/// );
/// ```
pub fn read_frame<S: FrameSource + ?Sized>(
    src: &mut S,
    max: u64,
    body: &mut Vec<u8>,
) -> Result<(), S::Error> {
    body.clear();
    let mut header = [0u8; LONG_HEADER];
    let mut have = 0;
    let mut need = SHORT_HEADER;
    let len = loop {
        while have < need {
            let n = src.read(&mut header[have..need])?;
            if n == 0 {
                return Err(closed_in_header(have, need).into());
            }
            have += n;
        }
        match decode_header(&header[..have], max)? {
            Some((len, _)) => break len as usize,
            None => need = LONG_HEADER,
        }
    };
    read_body(src, body, len)
}

fn closed_in_header(got: usize, expected: usize) -> FrameError {
    if got == 0 {
        FrameError::Eof
    } else {
        FrameError::Truncated {
            part: FramePart::Header,
            got: got as u64,
            expected: expected as u64,
        }
    }
}

/// Where a body that [`FrameReader::read_frame`] returned is: in the reader's read-ahead
/// buffer (valid until its next read) or in a buffer of its own.
#[derive(Debug)]
pub struct Body(BodyAt);

#[derive(Debug)]
enum BodyAt {
    Buffered(usize, usize),
    Owned(Vec<u8>),
}

/// A resumable frame reader with a read-ahead buffer.
///
/// A frame that fits the read-ahead buffer is consumed only once whole; a longer one is read
/// into a buffer of its own, kept in the reader while incomplete. So when the source gives up
/// (its error: a timeout, "nothing now"), everything that arrived stays here and the next
/// [`read_frame`](FrameReader::read_frame) continues the same frame: a timed or non-blocking
/// read never puts the stream out of step. In exact mode the reader never reads past the frame
/// it is reading (for a stream whose next bytes belong to someone else, e.g. after a
/// handshake).
///
/// ```
/// use processing::core::frame::{FrameError, FrameReader, FrameSource};
/// use std::io;
///
/// /// Bytes that arrive in pieces, "nothing now" in between.
/// struct Trickle(Vec<Option<Vec<u8>>>);
/// impl FrameSource for Trickle {
///     type Error = io::Error;
///     fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
///         match self.0.first_mut() {
///             None => Ok(0),
///             Some(None) => { self.0.remove(0); Err(io::ErrorKind::TimedOut.into()) }
///             Some(Some(bytes)) => {
///                 let n = bytes.len().min(buf.len());
///                 buf[..n].copy_from_slice(&bytes[..n]);
///                 bytes.drain(..n);
///                 if bytes.is_empty() { self.0.remove(0); }
///                 Ok(n)
///             }
///         }
///     }
/// }
///
/// let mut src = Trickle(vec![Some(vec![0, 0, 0, 3, b'a']), None, Some(b"bc".to_vec())]);
/// let mut reader = FrameReader::new(4096);
/// let e = reader.read_frame(&mut src, 16).unwrap_err();
/// assert_eq!(e.kind(), io::ErrorKind::TimedOut);
/// let body = reader.read_frame(&mut src, 16).unwrap();
/// assert_eq!(reader.body(&body), b"abc");
/// ```
pub struct FrameReader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    exact: bool,
    /// A body longer than the read-ahead buffer, partly read, and its length.
    long: Option<(Vec<u8>, usize)>,
}

impl fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameReader")
            .field("capacity", &self.buf.len())
            .field("buffered", &(self.end - self.start))
            .field("exact", &self.exact)
            .field("long", &self.long.as_ref().map(|(v, len)| (v.len(), *len)))
            .finish()
    }
}

impl FrameReader {
    /// A reader whose read-ahead buffer holds `capacity` bytes (at least a long header's 12):
    /// frames up to that size (header included) are read in place, several per read.
    pub fn new(capacity: usize) -> FrameReader {
        FrameReader {
            buf: vec![0u8; capacity.max(LONG_HEADER)].into_boxed_slice(),
            start: 0,
            end: 0,
            exact: false,
            long: None,
        }
    }

    /// Exact mode: read only the bytes of the frame being read, never ahead.
    pub fn set_exact(&mut self, exact: bool) {
        self.exact = exact;
    }

    /// Bytes read ahead and not yet returned (the start of the next frames).
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Puts `bytes` back as the read-ahead (a reader handed to another owner); false, changing
    /// nothing, if the reader is not empty or they do not fit its buffer.
    pub fn restore(&mut self, bytes: &[u8]) -> bool {
        if self.start != self.end || self.long.is_some() || bytes.len() > self.buf.len() {
            return false;
        }
        self.buf[..bytes.len()].copy_from_slice(bytes);
        self.start = 0;
        self.end = bytes.len();
        true
    }

    /// Whether a frame longer than the read-ahead buffer is partly read (its bytes are in this
    /// reader only, not in [`buffered`](FrameReader::buffered)).
    pub fn in_long_frame(&self) -> bool {
        self.long.is_some()
    }

    /// Whether the next [`read_frame`](FrameReader::read_frame) returns without reading: a
    /// whole frame is buffered, or a malformed header (reported at once). Part of a frame is
    /// not enough.
    pub fn frame_ready(&self, max: u64) -> bool {
        if self.long.is_some() {
            return false;
        }
        match decode_header(self.buffered(), max) {
            Ok(Some((len, header))) => self.buffered().len() as u64 >= header as u64 + len,
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// The bytes of a body this reader returned.
    pub fn body<'a>(&'a self, body: &'a Body) -> &'a [u8] {
        match &body.0 {
            BodyAt::Buffered(s, e) => self.buf.get(*s..*e).unwrap_or_default(),
            BodyAt::Owned(v) => v,
        }
    }

    /// A body this reader returned, as a vector of its own (copied out of the read-ahead
    /// buffer, or moved).
    pub fn into_vec(&self, body: Body) -> Vec<u8> {
        match body.0 {
            BodyAt::Owned(v) => v,
            b => self.body(&Body(b)).to_vec(),
        }
    }

    /// Reads one frame from `src`: a body of at most `max` bytes. A source error leaves what
    /// arrived in the reader, and the next call continues the same frame; the end of the
    /// stream is [`FrameError::Eof`] between frames and [`FrameError::Truncated`] inside one.
    pub fn read_frame<S: FrameSource + ?Sized>(
        &mut self,
        src: &mut S,
        max: u64,
    ) -> Result<Body, S::Error> {
        if let Some((v, len)) = self.long.take() {
            return self.finish_long(src, v, len);
        }
        let mut need = SHORT_HEADER;
        let (len, header) = loop {
            if !self.fill(src, need)? {
                return Err(closed_in_header(self.end - self.start, need).into());
            }
            match decode_header(self.buffered(), max)? {
                Some(h) => break h,
                None => need = LONG_HEADER,
            }
        };
        // `decode_header` checked that the length (with its header) is addressable.
        let len = len as usize;
        if header + len <= self.buf.len() {
            if !self.fill(src, header + len)? {
                return Err(FrameError::Truncated {
                    part: FramePart::Body,
                    got: (self.end - self.start - header) as u64,
                    expected: len as u64,
                }
                .into());
            }
            let s = self.start + header;
            self.start = s + len;
            return Ok(Body(BodyAt::Buffered(s, s + len)));
        }
        self.start += header;
        let arrived = self.buffered();
        let mut v = Vec::with_capacity(len.min(FIRST_STEP.max(arrived.len())));
        v.extend_from_slice(arrived);
        self.start = 0;
        self.end = 0;
        self.finish_long(src, v, len)
    }

    fn finish_long<S: FrameSource + ?Sized>(
        &mut self,
        src: &mut S,
        mut v: Vec<u8>,
        len: usize,
    ) -> Result<Body, S::Error> {
        match read_body(src, &mut v, len) {
            Ok(()) => Ok(Body(BodyAt::Owned(v))),
            Err(e) => {
                self.long = Some((v, len));
                Err(e)
            }
        }
    }

    /// Ensures at least `need` (at most the buffer's length) bytes are buffered; false if the
    /// stream ended first (what arrived stays buffered).
    fn fill<S: FrameSource + ?Sized>(
        &mut self,
        src: &mut S,
        need: usize,
    ) -> Result<bool, S::Error> {
        while self.end - self.start < need {
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.buf.len() - self.start < need {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let limit = if self.exact {
                self.start + need
            } else {
                self.buf.len()
            };
            let n = src.read(&mut self.buf[self.end..limit])?;
            if n == 0 {
                return Ok(false);
            }
            self.end += n.min(limit - self.end);
        }
        Ok(true)
    }
}

/// The parts to write for a frame built in place by [`seal`].
#[derive(Debug)]
pub enum Sealed<'a> {
    /// Header and body in one slice (the body fits the short header).
    Whole(&'a [u8]),
    /// A long header, then the body (which follows the reserved room, now unused).
    Split(Header, &'a [u8]),
}

/// Frames a body built behind [`RESERVED`] bytes of room at the front of `buf`: writes the
/// short header into the room and returns the whole buffer, or (a body over `i32::MAX` bytes)
/// the long header and the body to write one after the other. `None` if `buf` is shorter than
/// the room.
///
/// ```
/// use processing::core::frame::{seal, Sealed, RESERVED};
/// let mut buf = vec![0u8; RESERVED];
/// buf.extend_from_slice(b"hi");
/// assert!(matches!(seal(&mut buf), Some(Sealed::Whole(&[0, 0, 0, 2, b'h', b'i']))));
/// ```
pub fn seal(buf: &mut [u8]) -> Option<Sealed<'_>> {
    let body_len = buf.len().checked_sub(RESERVED)?;
    match i32::try_from(body_len) {
        Ok(len) => {
            buf[..RESERVED].copy_from_slice(&len.to_be_bytes());
            Some(Sealed::Whole(buf))
        }
        Err(_) => Some(Sealed::Split(
            Header::for_len(body_len as u64),
            &buf[RESERVED..],
        )),
    }
}

/// Writes a frame built by the caller behind [`RESERVED`] bytes of room at the front of `buf`
/// (see [`seal`]): one write for a body that fits the short header. An `InvalidInput` error if
/// `buf` is shorter than the room.
///
/// ```
/// use processing::core::frame::{write_reserved, RESERVED};
/// let mut buf = vec![0u8; RESERVED];
/// buf.push(7);
/// let mut wire = Vec::new();
/// write_reserved(&mut wire, &mut buf).unwrap();
/// assert_eq!(wire, [0, 0, 0, 1, 7]);
/// ```
pub fn write_reserved<W: Write + ?Sized>(w: &mut W, buf: &mut [u8]) -> io::Result<()> {
    match seal(buf) {
        Some(Sealed::Whole(bytes)) => w.write_all(bytes),
        Some(Sealed::Split(header, body)) => write_all_vectored(w, header.as_bytes(), body),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a reserved frame buffer is shorter than its header room",
        )),
    }
}

/// Writes one frame: header and body in one vectored write (more only if the stream takes
/// part of it).
///
/// ```
/// let mut wire = Vec::new();
/// processing::core::frame::write_frame(&mut wire, b"abc").unwrap();
/// assert_eq!(wire, [0, 0, 0, 3, b'a', b'b', b'c']);
/// ```
pub fn write_frame<W: Write + ?Sized>(w: &mut W, body: &[u8]) -> io::Result<()> {
    write_all_vectored(w, Header::for_len(body.len() as u64).as_bytes(), body)
}

fn write_all_vectored<W: Write + ?Sized>(w: &mut W, header: &[u8], body: &[u8]) -> io::Result<()> {
    let mut parts = [IoSlice::new(header), IoSlice::new(body)];
    let mut parts = &mut parts[..];
    while !parts.is_empty() {
        match w.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted byte source: each step gives bytes (at most what the reader asks) or fails
    /// once with "timed out"; after the script, the end of the stream.
    struct Script {
        steps: Vec<Step>,
        /// Total bytes handed out.
        given: usize,
    }

    enum Step {
        Bytes(Vec<u8>),
        TimedOut,
    }

    impl Script {
        fn new(steps: Vec<Step>) -> Script {
            Script { steps, given: 0 }
        }
    }

    impl FrameSource for Script {
        type Error = io::Error;
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(!buf.is_empty(), "a reader asked for zero bytes");
            match self.steps.first_mut() {
                None => Ok(0),
                Some(Step::TimedOut) => {
                    self.steps.remove(0);
                    Err(io::ErrorKind::TimedOut.into())
                }
                Some(Step::Bytes(bytes)) => {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    bytes.drain(..n);
                    if bytes.is_empty() {
                        self.steps.remove(0);
                    }
                    self.given += n;
                    Ok(n)
                }
            }
        }
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        write_frame(&mut v, body).unwrap();
        v
    }

    fn frame_err(e: io::Error) -> FrameError {
        FrameError::of(&e).unwrap_or_else(|| panic!("not a frame error: {e}"))
    }

    #[test]
    fn miri_header_forms_and_the_long_boundary() {
        assert_eq!(Header::for_len(0).as_bytes(), &[0, 0, 0, 0]);
        let max_short = i32::MAX as u64;
        assert_eq!(
            Header::for_len(max_short).as_bytes(),
            &[0x7f, 0xff, 0xff, 0xff]
        );
        let long = Header::for_len(max_short + 1);
        assert_eq!(long.as_bytes().len(), LONG_HEADER);
        assert_eq!(&long.as_bytes()[..4], &[0xff; 4]);
        assert_eq!(&long.as_bytes()[4..], &(1u64 << 31).to_be_bytes());
        for len in [
            0,
            1,
            max_short - 1,
            max_short,
            max_short + 1,
            u32::MAX as u64,
            1 << 40,
        ] {
            let h = Header::for_len(len);
            assert_eq!(
                decode_header(h.as_bytes(), u64::MAX),
                Ok(Some((len, h.as_bytes().len()))),
                "{len}"
            );
            // One byte short of the header is "need more", never a wrong length.
            let short = &h.as_bytes()[..h.as_bytes().len() - 1];
            assert_eq!(decode_header(short, u64::MAX), Ok(None), "{len}");
        }
        // The long form may announce a short length (Python reads it the same way).
        let mut small_long = vec![0xff; 4];
        small_long.extend_from_slice(&5u64.to_be_bytes());
        assert_eq!(decode_header(&small_long, 10), Ok(Some((5, LONG_HEADER))));
    }

    #[test]
    fn miri_hostile_lengths_are_typed_errors() {
        let mut huge = vec![0xff; 4];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            decode_header(&huge, 1 << 34),
            Err(FrameError::TooLarge {
                len: u64::MAX,
                max: 1 << 34
            })
        );
        // Even with no limit, a length this machine cannot hold is refused.
        assert!(matches!(
            decode_header(&huge, u64::MAX),
            Err(FrameError::TooLarge { .. })
        ));
        for n in [-2i32, i32::MIN] {
            assert_eq!(
                decode_header(&n.to_be_bytes(), u64::MAX),
                Err(FrameError::NegativeLength(n))
            );
        }
        // Above the maximum by one.
        assert_eq!(
            decode_header(&[0, 0, 0, 11], 10),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        );
        assert_eq!(decode_header(&[0, 0, 0, 10], 10), Ok(Some((10, 4))));
        // A reader refuses it before reading (or allocating) the body.
        let mut src = Script::new(vec![Step::Bytes(huge.clone())]);
        let e = FrameReader::new(64)
            .read_frame(&mut src, 1 << 20)
            .unwrap_err();
        assert!(matches!(frame_err(e), FrameError::TooLarge { .. }));
        let mut body = Vec::new();
        let e = read_frame(&mut ReadSource(&huge[..]), 1 << 20, &mut body).unwrap_err();
        assert!(matches!(frame_err(e), FrameError::TooLarge { .. }));
        assert_eq!(body.capacity(), 0);
    }

    #[test]
    fn miri_zero_length_frames() {
        let mut wire = frame(b"");
        wire.extend(frame(b""));
        wire.extend(frame(b"x"));
        assert_eq!(
            split_frames(&wire, 0).unwrap_err(),
            FrameError::TooLarge { len: 1, max: 0 }
        );
        assert_eq!(split_frames(&wire, 1).unwrap(), [&b""[..], b"", b"x"]);
        let mut reader = FrameReader::new(16);
        let mut src = ReadSource(&wire[..]);
        for want in [&b""[..], b"", b"x"] {
            let body = reader.read_frame(&mut src, 1).unwrap();
            assert_eq!(reader.body(&body), want);
        }
        assert_eq!(
            frame_err(reader.read_frame(&mut src, 1).unwrap_err()),
            FrameError::Eof
        );
        let mut body = vec![1, 2, 3];
        read_frame(&mut ReadSource(&frame(b"")[..]), 0, &mut body).unwrap();
        assert!(body.is_empty());
    }

    #[test]
    fn miri_peer_closing_mid_header_or_mid_body_is_named() {
        let whole = frame(b"hello");
        // Every cut: nothing (a clean end), inside the header, inside the body.
        for cut in 0..whole.len() {
            let want = match cut {
                0 => FrameError::Eof,
                c if c < SHORT_HEADER => FrameError::Truncated {
                    part: FramePart::Header,
                    got: c as u64,
                    expected: SHORT_HEADER as u64,
                },
                c => FrameError::Truncated {
                    part: FramePart::Body,
                    got: (c - SHORT_HEADER) as u64,
                    expected: 5,
                },
            };
            let mut body = Vec::new();
            let e = read_frame(&mut ReadSource(&whole[..cut]), 16, &mut body).unwrap_err();
            assert_eq!(frame_err(e), want, "exact read, cut at {cut}");
            // The resumable reader, with a read-ahead buffer smaller than the frame (the long
            // path) and larger (in place).
            for capacity in [LONG_HEADER, 64] {
                let mut reader = FrameReader::new(capacity);
                let e = reader
                    .read_frame(&mut ReadSource(&whole[..cut]), 16)
                    .unwrap_err();
                assert_eq!(frame_err(e), want, "reader({capacity}), cut at {cut}");
            }
            assert_eq!(
                split_frames(&whole[..cut], 16).err(),
                (cut > 0).then_some(want),
                "split, cut at {cut}"
            );
        }
        // Inside the long header's 8-byte length.
        let mut long = vec![0xff; 4];
        long.extend_from_slice(&[0, 0, 0]);
        let e = read_frame(&mut ReadSource(&long[..]), 16, &mut Vec::new()).unwrap_err();
        assert_eq!(
            frame_err(e),
            FrameError::Truncated {
                part: FramePart::Header,
                got: 7,
                expected: LONG_HEADER as u64
            }
        );
    }

    #[test]
    fn miri_a_timed_read_resumes_where_it_stopped() {
        // Two frames: a short one that fits the read-ahead buffer and a long one that does
        // not, each interrupted by timeouts in its header and its body.
        let long_body: Vec<u8> = (0..100u8).collect();
        let mut wire = frame(b"abcdef");
        wire.extend(frame(&long_body));
        // Cut inside the first header, the first body, at the frame boundary, inside the
        // second header and twice inside the second body.
        let mut steps = Vec::new();
        let mut from = 0;
        for cut in [2, 5, 10, 12, 40, 90] {
            steps.push(Step::Bytes(wire[from..cut].to_vec()));
            steps.push(Step::TimedOut);
            from = cut;
        }
        steps.push(Step::Bytes(wire[from..].to_vec()));
        let mut src = Script::new(steps);
        let mut reader = FrameReader::new(32);
        let mut bodies = Vec::new();
        let mut timeouts = 0;
        while bodies.len() < 2 {
            match reader.read_frame(&mut src, 1 << 10) {
                Ok(b) => bodies.push(reader.into_vec(b)),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    timeouts += 1;
                    assert!(!reader.frame_ready(1 << 10));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(timeouts, 6);
        assert_eq!(bodies[0], b"abcdef");
        assert_eq!(bodies[1], long_body);
        assert!(!reader.in_long_frame());
        assert_eq!(
            frame_err(reader.read_frame(&mut src, 1 << 10).unwrap_err()),
            FrameError::Eof
        );
    }

    #[test]
    fn miri_exact_mode_reads_no_byte_of_the_next_frame() {
        let mut wire = frame(b"first");
        wire.extend(frame(b"second"));
        let mut src = Script::new(vec![Step::Bytes(wire)]);
        let mut reader = FrameReader::new(64);
        reader.set_exact(true);
        let body = reader.read_frame(&mut src, 64).unwrap();
        assert_eq!(reader.body(&body), b"first");
        assert_eq!(src.given, SHORT_HEADER + 5);
        assert!(reader.buffered().is_empty());
        // Read-ahead mode takes everything there, and the second frame is then ready.
        let mut wire = frame(b"first");
        wire.extend(frame(b"second"));
        let mut src = Script::new(vec![Step::Bytes(wire)]);
        let mut reader = FrameReader::new(64);
        let body = reader.read_frame(&mut src, 64).unwrap();
        assert_eq!(reader.body(&body), b"first");
        assert!(reader.frame_ready(64));
        let copy = reader.buffered().to_vec();
        let mut other = FrameReader::new(64);
        assert!(other.restore(&copy));
        let body = other.read_frame(&mut Script::new(vec![]), 64).unwrap();
        assert_eq!(other.body(&body), b"second");
    }

    #[test]
    fn miri_a_lying_length_allocates_with_the_bytes_that_came() {
        // 1 GiB announced, 10 bytes sent.
        let mut wire = Header::for_len(1 << 30).as_bytes().to_vec();
        wire.extend_from_slice(&[7; 10]);
        let mut body = Vec::new();
        let e = read_frame(&mut ReadSource(&wire[..]), u64::MAX, &mut body).unwrap_err();
        assert!(matches!(
            frame_err(e),
            FrameError::Truncated { got: 10, .. }
        ));
        assert!(body.capacity() <= FIRST_STEP, "{}", body.capacity());
        let mut reader = FrameReader::new(64);
        let mut src = Script::new(vec![Step::Bytes(wire), Step::TimedOut]);
        assert!(reader.read_frame(&mut src, u64::MAX).is_err());
        assert!(reader.in_long_frame());
        let held = reader.long.as_ref().map_or(0, |(v, _)| v.capacity());
        assert!(held <= FIRST_STEP, "{held}");
    }

    #[test]
    fn miri_sealed_frames() {
        let mut buf = vec![9u8; RESERVED];
        buf.extend_from_slice(b"body");
        match seal(&mut buf) {
            Some(Sealed::Whole(b)) => assert_eq!(b, frame(b"body")),
            other => panic!("{other:?}"),
        }
        assert!(seal(&mut [0u8; RESERVED - 1]).is_none());
        assert_eq!(
            write_reserved(&mut Vec::new(), &mut [0u8; 2])
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
    }

    /// A writer that takes at most 3 bytes per call, to check partial vectored writes.
    struct Dribble(Vec<u8>);

    impl Write for Dribble {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn miri_partial_writes_complete_the_frame() {
        let mut w = Dribble(Vec::new());
        write_frame(&mut w, b"hello world").unwrap();
        assert_eq!(split_frames(&w.0, 64).unwrap(), [b"hello world"]);
    }

    /// A real stream whose peer closes in the middle: a typed error at once, not a hang.
    #[cfg(unix)]
    #[test]
    fn peer_closing_a_socket_mid_frame_ends_the_read() {
        use std::os::unix::net::UnixStream;
        for (sent, part) in [
            (&[0u8, 0][..], FramePart::Header),
            (&[0, 0, 0, 8, 1, 2][..], FramePart::Body),
        ] {
            let (a, mut b) = UnixStream::pair().unwrap();
            b.write_all(sent).unwrap();
            drop(b);
            let e = read_frame(&mut ReadSource(&a), 64, &mut Vec::new()).unwrap_err();
            assert!(matches!(frame_err(e), FrameError::Truncated { part: p, .. } if p == part));
        }
    }
}
