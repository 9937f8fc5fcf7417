//! Length-prefixed frames over a stream, with a bounded spin before a blocking read.
//!
//! A frame is a little-endian `u32` length followed by that many bytes. Calls are strictly
//! request/response on a connection, so the reader only ever holds one frame (plus whatever
//! arrived with it).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::sys::{self, Stream};

/// The largest frame either side accepts (a larger length prefix is a protocol error).
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// A stream speaking frames.
#[derive(Debug)]
pub(crate) struct Framed {
    pub(crate) stream: Stream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
}

impl Framed {
    pub(crate) fn new(stream: Stream) -> Self {
        Framed {
            stream,
            buf: vec![0; 4096],
            start: 0,
            end: 0,
            out: Vec::with_capacity(256),
        }
    }

    /// Sends one frame made of `parts`, with a single write for small frames.
    pub(crate) fn send(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame too large",
            ));
        }
        self.out.clear();
        self.out.extend_from_slice(&(len as u32).to_le_bytes());
        for p in parts {
            self.out.extend_from_slice(p);
        }
        self.stream.write_all(&self.out)?;
        if self.out.capacity() > 1 << 20 {
            self.out = Vec::with_capacity(256);
        }
        Ok(())
    }

    /// Receives one frame, polling without blocking for up to `spin` before blocking.
    pub(crate) fn recv(&mut self, spin: Duration) -> io::Result<&[u8]> {
        let began = if spin.is_zero() {
            None
        } else {
            Some(Instant::now())
        };
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(&self.buf[frame]);
            }
            self.fill(began, spin)?;
        }
    }

    /// Receives one frame if it has arrived, without blocking (`None`: not yet whole).
    #[cfg(feature = "async")]
    pub(crate) fn try_recv(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(Some(&self.buf[frame]));
            }
            match sys::try_read(&self.stream, &mut self.buf[self.end..])? {
                Some(0) => return Err(eof()),
                Some(n) => self.end += n,
                None => return Ok(None),
            }
        }
    }

    /// The buffered frame, if whole (its range in `buf`); otherwise makes room for the rest.
    fn take_frame(&mut self) -> io::Result<Option<std::ops::Range<usize>>> {
        let have = self.end - self.start;
        if have >= 4 {
            let mut header = [0u8; 4];
            header.copy_from_slice(&self.buf[self.start..self.start + 4]);
            let len = u32::from_le_bytes(header) as usize;
            if len > MAX_FRAME {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "frame length exceeds limit",
                ));
            }
            if have >= 4 + len {
                let frame = self.start + 4..self.start + 4 + len;
                self.start += 4 + len;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                return Ok(Some(frame));
            }
            self.make_room(4 + len);
        } else {
            self.make_room(4);
        }
        Ok(None)
    }

    fn make_room(&mut self, frame_len: usize) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < frame_len {
            // Grow with the bytes that arrived, never to a length the peer merely announced:
            // at most double what is buffered (a lying prefix costs at most twice its bytes).
            let step = frame_len.min(self.end.max(4096).saturating_mul(2));
            if self.buf.len() < step {
                self.buf.resize(step, 0);
            }
        } else if self.buf.len() > 1 << 20 && frame_len < 4096 && self.end < 4096 {
            self.buf.truncate(4096);
            self.buf.shrink_to_fit();
        }
        if self.end == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
    }

    fn fill(&mut self, began: Option<Instant>, spin: Duration) -> io::Result<()> {
        if let Some(began) = began {
            while began.elapsed() < spin {
                match sys::try_read(&self.stream, &mut self.buf[self.end..])? {
                    Some(0) => return Err(eof()),
                    Some(n) => {
                        self.end += n;
                        return Ok(());
                    }
                    None => std::hint::spin_loop(),
                }
            }
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(eof()),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by peer")
}
