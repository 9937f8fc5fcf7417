//! `wait`: block until one of several connections or process sentinels is ready.

use std::io;
use std::time::{Duration, Instant};

pub use crate::sys::RawWaitable;

/// When a blocking operation gives up: the deadline of the queue's waits, of a connection's
/// receives and of the thread twin's (processing-pool's `dummy`).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// Never wait: one attempt.
    Now,
    /// Wait until this instant.
    At(Instant),
    /// Wait as long as it takes.
    Never,
}

impl Deadline {
    /// `timeout` from now; `Duration::MAX` (or any timeout past the clock's range) waits for
    /// ever.
    pub fn after(timeout: Duration) -> Deadline {
        match Instant::now().checked_add(timeout) {
            Some(t) => Deadline::At(t),
            None => Deadline::Never,
        }
    }

    /// Whether it has passed (`Now` always has): the call looks once and does not wait.
    pub fn passed(self) -> bool {
        match self {
            Deadline::Now => true,
            Deadline::At(t) => Instant::now() >= t,
            Deadline::Never => false,
        }
    }

    /// The instant it passes (`Now`: the present), `None` for ever.
    pub fn instant(self) -> Option<Instant> {
        match self {
            Deadline::Now => Some(Instant::now()),
            Deadline::At(t) => Some(t),
            Deadline::Never => None,
        }
    }
}

/// Something [`wait`] can watch: a receiving [`Connection`](crate::Connection), or (from the
/// process layer) a process sentinel.
///
/// On Unix the raw object is a descriptor that polls readable when the object is ready (a
/// socket with data or at its end, a pidfd or an exit pipe of a process). On Windows it is a
/// handle that is signalled when ready (a process handle); objects without one (pipes) report
/// readiness through [`is_ready`](Waitable::is_ready), which `wait` checks periodically.
///
/// ```
/// # #[cfg(unix)] {
/// use processing::transport::{wait, Waitable, RawWaitable};
/// struct Always;
/// impl Waitable for Always {
///     fn raw_waitable(&self) -> Option<RawWaitable> { None }
///     fn is_ready(&self) -> bool { true }
/// }
/// assert_eq!(wait(&[&Always], None).unwrap(), [0]);
/// # }
/// ```
pub trait Waitable {
    /// The OS object to wait on, if there is one.
    fn raw_waitable(&self) -> Option<RawWaitable>;

    /// Whether the object is ready without waiting (for example, data already read ahead into
    /// user space). Checked before and after each OS wait.
    fn is_ready(&self) -> bool {
        false
    }
}

impl<W: Waitable + ?Sized> Waitable for &W {
    fn raw_waitable(&self) -> Option<RawWaitable> {
        (**self).raw_waitable()
    }

    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
}

/// Waits until at least one of `objects` is ready or `timeout` elapses (`None`: no limit), and
/// returns the indexes of the ready ones (empty after a timeout).
///
/// ```
/// use std::time::Duration;
/// use processing::transport::{wait, Pipe};
/// let (a, b) = Pipe::new::<u8>().unwrap();
/// let (c, d) = Pipe::new::<u8>().unwrap();
/// assert!(wait(&[&b, &d], Some(Duration::from_millis(10))).unwrap().is_empty());
/// c.send(&1).unwrap();
/// assert_eq!(wait(&[&b, &d], None).unwrap(), [1]);
/// # drop(a);
/// ```
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    // A timeout too large for the clock means "for ever" (`Duration::MAX`).
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut slice = Duration::from_millis(1);
    loop {
        let ready: Vec<usize> = (0..objects.len())
            .filter(|&i| objects[i].is_ready())
            .collect();
        let mut raws = Vec::with_capacity(objects.len());
        let mut owners = Vec::with_capacity(objects.len());
        let mut polled = false;
        for (i, o) in objects.iter().enumerate() {
            match o.raw_waitable() {
                Some(r) => {
                    raws.push(r);
                    owners.push(i);
                }
                None => polled = true,
            }
        }
        if !ready.is_empty() {
            // Report every object that is ready now, not only those known in user space
            // (a sentinel beside a connection with data must not be hidden).
            let flags = crate::sys::wait_any(&raws, Some(Duration::ZERO))?;
            let mut ready = ready;
            for (&i, _) in owners.iter().zip(&flags).filter(|(_, &f)| f) {
                if !ready.contains(&i) {
                    ready.push(i);
                }
            }
            ready.sort_unstable();
            return Ok(ready);
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        // Objects without an OS object are checked again after a short, growing slice.
        let this_wait = match (left, polled) {
            (Some(l), true) => Some(l.min(slice)),
            (None, true) => Some(slice),
            (l, false) => l,
        };
        slice = (slice * 2).min(Duration::from_millis(20));
        let flags = crate::sys::wait_any(&raws, this_wait)?;
        let mut ready: Vec<usize> = owners
            .iter()
            .zip(&flags)
            .filter(|(_, &f)| f)
            .map(|(&i, _)| i)
            .collect();
        for (i, o) in objects.iter().enumerate() {
            if !ready.contains(&i) && o.is_ready() {
                ready.push(i);
            }
        }
        ready.sort_unstable();
        if !ready.is_empty() || left.is_some_and(|l| l <= this_wait.unwrap_or(l)) {
            return Ok(ready);
        }
    }
}
