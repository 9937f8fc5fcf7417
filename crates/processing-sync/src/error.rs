//! Error types of processing-sync.

use processing_shm::ShmError;

/// Acquiring failed: the wait timed out, or the lock was acquired from a holder that died.
///
/// `OwnerDied` carries the guard: the caller holds the lock, and should check the data it
/// protects (the dead holder may have left it half-updated).
///
/// ```
/// use processing::sync::{AcquireError, Lock};
/// let lock = Lock::new().unwrap();
/// let guard = lock.acquire().unwrap();
/// let err = lock.acquire_timeout(std::time::Duration::from_millis(10)).unwrap_err();
/// assert!(err.is_timeout());
/// drop(guard);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcquireError<G> {
    /// `try_acquire` found the lock (or every permit) taken.
    #[error("the lock is held by someone else")]
    WouldBlock,
    /// The timeout passed before the lock was free.
    #[error("timed out waiting for the lock")]
    Timeout,
    /// The previous holder's process died while holding it; the lock is now held by the
    /// caller through the carried guard.
    #[error("the previous holder of the lock died while holding it")]
    OwnerDied(G),
    /// A proxy could not have the manager carry out the acquire; the source is the manager's
    /// error (a `processing::manager::ManagerError`).
    #[error("cannot acquire through the manager")]
    Manager(#[source] processing_core::BoxError),
}

impl<G> AcquireError<G> {
    /// The guard, when the lock was recovered from a dead holder.
    pub fn into_guard(self) -> Option<G> {
        match self {
            AcquireError::OwnerDied(g) => Some(g),
            _ => None,
        }
    }
    /// The same error with its guard (if any) turned into another by `f`: how a wrapper
    /// (a `Value`'s lock, a proxy, a twin) hands out its own guard type.
    pub fn map_guard<H>(self, f: impl FnOnce(G) -> H) -> AcquireError<H> {
        match self {
            AcquireError::WouldBlock => AcquireError::WouldBlock,
            AcquireError::Timeout => AcquireError::Timeout,
            AcquireError::OwnerDied(g) => AcquireError::OwnerDied(f(g)),
            AcquireError::Manager(e) => AcquireError::Manager(e),
        }
    }
}

processing_core::predicates! {
    impl<G> AcquireError<G> {
        /// Whether `try_acquire` found it taken.
        is_would_block => Self::WouldBlock,
        /// Whether the wait timed out.
        is_timeout => Self::Timeout,
        /// Whether a proxy's manager failed.
        is_manager => Self::Manager(_),
        /// Whether the lock was recovered from a dead holder.
        is_owner_died => Self::OwnerDied(_),
    }
}

/// A release was refused.
///
/// ```
/// let lock = processing::sync::Lock::new().unwrap();
/// assert!(lock.release().unwrap_err().is_not_locked());
/// ```
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The lock was not held.
    #[error("release of an unlocked lock")]
    NotLocked,
    /// The calling thread does not hold the recursive lock.
    #[error("release of a recursive lock by a thread that does not hold it")]
    NotOwner,
    /// A bounded semaphore would exceed its initial value.
    #[error("bounded semaphore released too many times")]
    Bound,
    /// The semaphore's count would overflow.
    #[error("semaphore count overflow")]
    Overflow,
    /// A proxy could not have the manager carry out the release; the source is the manager's
    /// error (a `processing::manager::ManagerError`). Never serialized (it stays on the
    /// proxy's side).
    #[error("cannot release through the manager")]
    #[serde(skip)]
    Manager(#[source] processing_core::BoxError),
}

processing_core::predicates! {
    impl ReleaseError {
        /// Whether the lock was not held.
        is_not_locked => Self::NotLocked,
        /// Whether the caller was not the owner.
        is_not_owner => Self::NotOwner,
        /// Whether a bounded semaphore was released past its bound.
        is_bound => Self::Bound,
    }
}

/// A condition was used without holding its lock.
///
/// ```
/// let cond = processing::sync::Condition::new().unwrap();
/// assert!(cond.notify().unwrap_err().is_not_owner());
/// ```
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ConditionError {
    /// `wait` or `notify` was called by a thread that does not hold the condition's lock.
    #[error("condition used without holding its lock")]
    NotOwner,
    /// A proxy could not have the manager carry out the call; the source is the manager's
    /// error (a `processing::manager::ManagerError`). Never serialized (it stays on the
    /// proxy's side).
    #[error("cannot call through the manager")]
    #[serde(skip)]
    Manager(#[source] processing_core::BoxError),
}

processing_core::predicates! {
    impl ConditionError {
        /// Whether the caller did not hold the lock.
        is_not_owner => Self::NotOwner,
    }
}

/// A barrier wait failed.
///
/// ```
/// let b = processing::sync::Barrier::new(2).unwrap();
/// b.abort();
/// assert!(b.wait().unwrap_err().is_broken());
/// ```
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum BarrierError {
    /// The barrier was aborted, reset, timed out by another party, or a party died.
    #[error("barrier is broken")]
    Broken,
    /// This wait timed out (and broke the barrier for the other parties).
    #[error("timed out waiting at the barrier, which is now broken")]
    Timeout,
    /// The barrier's action panicked in this party (the barrier is now broken).
    #[error("the barrier action panicked")]
    ActionPanicked,
    /// A proxy could not have the manager carry out the wait; the source is the manager's
    /// error (a `processing::manager::ManagerError`). Never serialized (it stays on the
    /// proxy's side).
    #[error("cannot wait through the manager")]
    #[serde(skip)]
    Manager(#[source] processing_core::BoxError),
}

processing_core::predicates! {
    impl BarrierError {
        /// Whether the barrier was broken by someone else (or is broken).
        is_broken => Self::Broken,
        /// Whether this wait timed out.
        is_timeout => Self::Timeout,
    }
}

/// Creating or attaching a primitive failed.
///
/// ```
/// assert!(processing::sync::Barrier::new(0).unwrap_err().is_invalid_argument());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The shared segment could not be created or opened.
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// An argument is out of range (a barrier of 0 parties, a segment of the wrong size).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The operating system refused a kernel object the primitive needs.
    #[error("synchronisation object: {0}")]
    Os(#[from] std::io::Error),
}

processing_core::predicates! {
    impl SyncError {
        /// Whether an argument was out of range.
        is_invalid_argument => Self::InvalidArgument(_),
    }
}

/// Equality of the unit variants, and of `Manager` causes by their messages (a cause has no
/// equality of its own): enough for `assert_eq!` on outcomes.
macro_rules! eq_by_variant {
    ($($name:ident),*) => {$(
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                match (self, other) {
                    ($name::Manager(a), $name::Manager(b)) => a.to_string() == b.to_string(),
                    (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
                }
            }
        }
        impl Eq for $name {}
    )*};
}
eq_by_variant!(ReleaseError, ConditionError, BarrierError);
