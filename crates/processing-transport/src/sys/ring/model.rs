//! The pipe ring over loom's atomics, for `tests/loom_u04_pipe_ring.rs` (see
//! [`crate::model`]): a pair over the real memfd with control blocks built in place.

use std::sync::Arc;

use processing_shm::model::Shadow;

use super::*;

impl Control {
    /// A zero control block (loom's atomics are objects of the model, not zero bytes).
    fn fresh() -> Control {
        Control {
            tail: Line(AtomicU64::new(0)),
            head: Line(AtomicU64::new(0)),
            reader_waiting: Line(AtomicU32::new(0)),
            writer_waiting: Line(AtomicU32::new(0)),
            space_seq: Line(AtomicU32::new(0)),
            write_lock: Line(OwnerWord::new()),
            read_lock: Line(OwnerWord::new()),
            write_mark: Line(AtomicU64::new(0)),
            read_mark: Line(AtomicU64::new(0)),
            torn: Line(AtomicU32::new(0)),
        }
    }
}

/// One end of a pipe pair: its ring end, its socket, and the loom cells of both rings'
/// data (the memfd is mapped once per end, at two addresses).
pub struct PipeEnd {
    end: RingEnd,
    stream: Stream,
    _shadow: Arc<Shadow>,
}

impl std::fmt::Debug for PipeEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.end.fmt(f)
    }
}

/// A pipe pair whose rings hold `capacity` bytes each (a power of two, at least 8).
pub fn pipe_pair(capacity: usize) -> io::Result<(PipeEnd, PipeEnd)> {
    assert!(capacity.is_power_of_two() && capacity >= 8);
    let (region, other) = RingEnd::fresh_file(c"processing-pipe-model", capacity)?;
    let a = RingEnd::new(region, 0, capacity);
    let mut b = RingEnd::new(other, 1, capacity);
    b.bells = a.bells.clone();
    for ring in 0..2 {
        let c = std::ptr::from_ref(a.control(ring)).cast_mut();
        // SAFETY: the control block lies in the fresh mapping (page aligned, a page
        // long), which nobody uses yet; both ends see what is written through `a`.
        unsafe { c.write(Control::fresh()) };
        // loom counts an initial value as a non-SeqCst store: store the zeros again.
        let c = a.control(ring);
        c.tail.0.store(0, Ordering::SeqCst);
        c.head.0.store(0, Ordering::SeqCst);
        c.reader_waiting.0.store(0, Ordering::SeqCst);
        c.writer_waiting.0.store(0, Ordering::SeqCst);
        c.space_seq.0.store(0, Ordering::SeqCst);
    }
    let shadow = Arc::new(Shadow::new(
        &[a.data(0).cast_const(), b.data(0).cast_const()],
        2 * capacity,
    ));
    let (sa, sb) = Stream::pair()?;
    Ok((
        PipeEnd {
            end: a,
            stream: sa,
            _shadow: shadow.clone(),
        },
        PipeEnd {
            end: b,
            stream: sb,
            _shadow: shadow,
        },
    ))
}

impl PipeEnd {
    /// Writes `bytes` under the write lock, waiting for room as needed.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let _g = self.end.lock_write();
        self.end.write_all(bytes, &self.stream)
    }

    /// Reads exactly `n` bytes under the read lock (`UnexpectedEof` if the stream ends
    /// first).
    pub fn recv(&self, n: usize) -> io::Result<Vec<u8>> {
        let _g = self.end.lock_read();
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            let k = self
                .end
                .read_bytes(&mut buf[got..], &self.stream, &mut Vec::new())?;
            if k == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            got += k;
        }
        Ok(buf)
    }
}
