//! The manager's sockets in the frames of processing-core's framer
//! ([`processing_core::frame`]), read with a bounded spin before a blocking read.
//!
//! Calls are strictly request/response on a connection, so the reader holds at most one frame
//! (plus whatever arrived with it).

use std::io::{self, Read};
use std::time::{Duration, Instant};

use processing_core::frame::{self, Body, FrameReader, FrameSource, RESERVED};

use crate::sys::{self, Stream};

/// The largest frame either side accepts (a larger length prefix is a protocol error).
const MAX_FRAME: u64 = 1 << 30;
/// The read-ahead of a connection; a longer frame is read into a buffer of its own.
const READ_AHEAD: usize = 16 * 1024;

/// A stream speaking frames.
#[derive(Debug)]
pub(crate) struct Framed {
    pub(crate) stream: Stream,
    frames: FrameReader,
    /// The frame the last receive returned (borrowed by its result until the next one).
    last: Option<Body>,
    out: Vec<u8>,
}

impl Framed {
    pub(crate) fn new(stream: Stream) -> Self {
        Framed {
            stream,
            frames: FrameReader::new(READ_AHEAD),
            last: None,
            out: Vec::with_capacity(256),
        }
    }

    /// Sends one frame made of `parts`, with a single write.
    pub(crate) fn send(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len as u64 > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame too large",
            ));
        }
        self.out.clear();
        self.out.extend_from_slice(&[0; RESERVED]);
        for p in parts {
            self.out.extend_from_slice(p);
        }
        frame::write_reserved(&mut self.stream, &mut self.out)?;
        if self.out.capacity() > 1 << 20 {
            self.out = Vec::with_capacity(256);
        }
        Ok(())
    }

    /// Receives one frame, polling without blocking for up to `spin` before blocking.
    pub(crate) fn recv(&mut self, spin: Duration) -> io::Result<&[u8]> {
        self.last = None;
        let body = self
            .frames
            .read_frame(&mut Spin::new(&mut self.stream, spin), MAX_FRAME)?;
        Ok(self.frames.body(self.last.insert(body)))
    }

    /// Receives one frame if it has arrived, without blocking (`None`: not yet whole; what
    /// arrived of it stays for the next call).
    #[cfg(feature = "async")]
    pub(crate) fn try_recv(&mut self) -> io::Result<Option<&[u8]>> {
        self.last = None;
        match self
            .frames
            .read_frame(&mut Spin::now(&mut self.stream), MAX_FRAME)
        {
            Ok(body) => Ok(Some(self.frames.body(self.last.insert(body)))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A connection's bytes for the framer: non-blocking reads until `spin` has passed since
/// `began` (none: no spin), then blocking ones, or (`block` false) "nothing now" as
/// `WouldBlock`.
struct Spin<'a> {
    stream: &'a mut Stream,
    began: Option<Instant>,
    spin: Duration,
    block: bool,
}

impl<'a> Spin<'a> {
    /// Spins for `spin`, then blocks.
    fn new(stream: &'a mut Stream, spin: Duration) -> Spin<'a> {
        Spin {
            stream,
            began: (!spin.is_zero()).then(Instant::now),
            spin,
            block: true,
        }
    }

    /// Reads that never block.
    #[cfg(feature = "async")]
    fn now(stream: &'a mut Stream) -> Spin<'a> {
        Spin {
            stream,
            began: None,
            spin: Duration::ZERO,
            block: false,
        }
    }
}

impl FrameSource for Spin<'_> {
    type Error = io::Error;

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.block {
            return sys::try_read(self.stream, buf)?
                .ok_or_else(|| io::ErrorKind::WouldBlock.into());
        }
        if let Some(began) = self.began {
            while began.elapsed() < self.spin {
                match sys::try_read(self.stream, buf)? {
                    Some(n) => return Ok(n),
                    None => std::hint::spin_loop(),
                }
            }
        }
        loop {
            match self.stream.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}
