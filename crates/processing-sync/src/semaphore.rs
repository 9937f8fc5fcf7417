//! `Semaphore` and `BoundedSemaphore`.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::algo::semaphore::{ReleaseRefused, SemaphoreState};
use crate::error::{AcquireError, ReleaseError, SyncError};
use crate::shared::Shared;
use crate::twin::{bounded_permits, semaphore_permits};

crate::shared::shared_primitive! {
    /// A counting semaphore shared between processes, like `threading.Semaphore`: `release` may
    /// raise the count past its initial value.
    ///
    /// Waiters that are killed leave it usable; a permit taken by a process that is killed is
    /// not given back (as with any semaphore, there is no owner to recover it from).
    ///
    /// ```
    /// let sem = processing::sync::Semaphore::new(2).unwrap();
    /// let a = sem.acquire().unwrap();
    /// let _b = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().unwrap_err().is_would_block());
    /// drop(a);
    /// assert_eq!(sem.value(), 1);
    /// ```
    Semaphore(SemaphoreState), value: value
}

crate::__release_guard! {
    /// Holds one permit of a [`Semaphore`] or [`BoundedSemaphore`]; returns it on drop.
    SemaphoreGuard: permit of Semaphore
}

impl Semaphore {
    /// Creates a semaphore with `value` permits; more than `u32::MAX` (what the shared layout
    /// holds) is [`SyncError::InvalidArgument`].
    pub fn new(value: usize) -> Result<Semaphore, SyncError> {
        let value = semaphore_permits(value)?;
        Ok(Semaphore {
            shared: Shared::create(|s: &SemaphoreState| s.init(value, 0))?,
        })
    }

    fn state(&self) -> &SemaphoreState {
        self.shared.state()
    }

    /// Takes a permit, waiting as long as it takes. It does not fail (a semaphore has no
    /// owner that could die); the `Result` is the shape every acquire shares.
    pub fn acquire(&self) -> Result<SemaphoreGuard<'_>, AcquireError<SemaphoreGuard<'_>>> {
        self.state().acquire(None, self.shared.park());
        Ok(SemaphoreGuard::new(self))
    }

    /// Takes a permit, waiting at most `timeout` ([`AcquireError::Timeout`] then;
    /// `Duration::MAX` waits for ever).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<SemaphoreGuard<'_>, AcquireError<SemaphoreGuard<'_>>> {
        let deadline = Instant::now().checked_add(timeout);
        if self.state().acquire(deadline, self.shared.park()) {
            Ok(SemaphoreGuard::new(self))
        } else {
            Err(AcquireError::Timeout)
        }
    }

    /// Takes a permit if one is free now; [`AcquireError::WouldBlock`] if none is.
    pub fn try_acquire(&self) -> Result<SemaphoreGuard<'_>, AcquireError<SemaphoreGuard<'_>>> {
        if self.state().try_acquire() {
            Ok(SemaphoreGuard::new(self))
        } else {
            Err(AcquireError::WouldBlock)
        }
    }

    /// Returns a permit (one taken through a forgotten guard, or a new one);
    /// [`ReleaseError::Overflow`] past `u32::MAX` permits.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.state()
            .release(self.shared.park())
            .map_err(|r| match r {
                ReleaseRefused::Bound => ReleaseError::Bound,
                ReleaseRefused::Overflow => ReleaseError::Overflow,
            })
    }

    /// The number of free permits now.
    pub fn value(&self) -> usize {
        self.state().value() as usize
    }
}

/// A semaphore whose count may not exceed its initial value: a release beyond it is
/// [`ReleaseError::Bound`].
///
/// ```
/// let sem = processing::sync::BoundedSemaphore::new(1).unwrap();
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
    /// Creates a semaphore with `value` permits, which is also its bound (at least 1, at most
    /// `u32::MAX`; else [`SyncError::InvalidArgument`]).
    pub fn new(value: usize) -> Result<BoundedSemaphore, SyncError> {
        let value = bounded_permits(value)?;
        let inner = Semaphore {
            shared: Shared::create(|s: &SemaphoreState| s.init(value, value))?,
        };
        Ok(BoundedSemaphore { inner })
    }

    crate::__bounded_semaphore_methods!(SemaphoreGuard);
}
