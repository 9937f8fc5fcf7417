//! `Semaphore` and `BoundedSemaphore`.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::algo::semaphore::{ReleaseRefused, SemaphoreState};
use crate::error::{ReleaseError, SyncError};
use crate::shared::Shared;

/// A counting semaphore shared between processes, like `threading.Semaphore`: `release` may
/// raise the count past its initial value.
///
/// Waiters that are killed leave it usable; a permit taken by a process that is killed is
/// not given back (as with any semaphore, there is no owner to recover it from).
///
/// ```
/// let sem = processing_sync::Semaphore::new(2).unwrap();
/// let a = sem.acquire();
/// let _b = sem.try_acquire().unwrap();
/// assert!(sem.try_acquire().is_none());
/// drop(a);
/// assert_eq!(sem.value(), 1);
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct Semaphore {
    shared: Shared<SemaphoreState>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("segment", &self.shared)
            .field("value", &self.value())
            .finish()
    }
}

/// Holds one permit of a [`Semaphore`] or [`BoundedSemaphore`]; returns it on drop.
#[must_use = "the permit is returned when the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard")
            .field("semaphore", &self.sem.shared)
            .finish()
    }
}

impl SemaphoreGuard<'_> {
    /// Keeps the permit (it is not returned on drop).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        let _ = self.sem.release();
    }
}

impl Semaphore {
    /// Creates a semaphore with `value` permits.
    pub fn new(value: u32) -> Result<Semaphore, SyncError> {
        Ok(Semaphore {
            shared: Shared::create(|s: &SemaphoreState| s.init(value, 0))?,
        })
    }

    fn state(&self) -> &SemaphoreState {
        self.shared.state()
    }

    /// Takes a permit, waiting as long as it takes.
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.state().acquire(None, self.shared.park());
        SemaphoreGuard { sem: self }
    }

    /// Takes a permit, waiting at most `timeout`; `None` on timeout.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        let deadline = Instant::now().checked_add(timeout);
        self.state()
            .acquire(deadline, self.shared.park())
            .then(|| SemaphoreGuard { sem: self })
    }

    /// Takes a permit if one is free now.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.state()
            .try_acquire()
            .then(|| SemaphoreGuard { sem: self })
    }

    /// Returns a permit (one taken through a forgotten guard, or a new one).
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.state()
            .release(self.shared.park())
            .map_err(|r| match r {
                ReleaseRefused::Bound => ReleaseError::Bound,
                ReleaseRefused::Overflow => ReleaseError::Overflow,
            })
    }

    /// The number of free permits now.
    pub fn value(&self) -> u32 {
        self.state().value()
    }
}

/// A semaphore whose count may not exceed its initial value: a release beyond it is
/// [`ReleaseError::Bound`].
///
/// ```
/// let sem = processing_sync::BoundedSemaphore::new(1).unwrap();
/// assert!(sem.release().unwrap_err().is_bound());
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct BoundedSemaphore {
    inner: Semaphore,
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("segment", &self.inner.shared)
            .field("value", &self.value())
            .field("bound", &self.inner.state().bound())
            .finish()
    }
}

impl BoundedSemaphore {
    /// Creates a semaphore with `value` permits, which is also its bound (at least 1).
    pub fn new(value: u32) -> Result<BoundedSemaphore, SyncError> {
        if value == 0 {
            return Err(SyncError::InvalidArgument(
                "a bounded semaphore needs a bound of at least 1",
            ));
        }
        let inner = Semaphore {
            shared: Shared::create(|s: &SemaphoreState| s.init(value, value))?,
        };
        Ok(BoundedSemaphore { inner })
    }

    /// Takes a permit, waiting as long as it takes.
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.inner.acquire()
    }

    /// Takes a permit, waiting at most `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.inner.acquire_timeout(timeout)
    }

    /// Takes a permit if one is free now.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.inner.try_acquire()
    }

    /// Returns a permit; [`ReleaseError::Bound`] if that would exceed the bound.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.inner.release()
    }

    /// The number of free permits now.
    pub fn value(&self) -> u32 {
        self.inner.value()
    }
}
