//! The error type of processing-shm.

/// A shared-memory operation failed.
///
/// ```
/// use processing::{shm::ShmError, SharedMemory};
/// let err = SharedMemory::create(0).unwrap_err();
/// assert!(err.is_invalid_size());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// The requested size is zero or too large for this platform.
    #[error("invalid shared-memory size {0}")]
    InvalidSize(usize),
    /// The name is empty, too long, or has characters other than `A-Z a-z 0-9 . _ -`.
    #[error("invalid shared-memory name {0:?}")]
    InvalidName(String),
    /// No segment has this name.
    #[error("no shared-memory segment named {0:?}")]
    NotFound(String),
    /// A segment with this name exists already.
    #[error("a shared-memory segment named {0:?} exists already")]
    AlreadyExists(String),
    /// The system has no room for a segment of this many bytes (a full `/dev/shm`).
    #[error("no space left for a shared-memory segment of {0} bytes")]
    NoSpace(usize),
    /// The named object exists but is not a segment made by this library (or is damaged).
    #[error("{0:?} is not a processing shared-memory segment")]
    Invalid(String),
    /// An index or range lies outside the segment, value or array.
    #[error("index {index} out of range for length {len}")]
    OutOfRange {
        /// The first offending index.
        index: usize,
        /// The length it was checked against.
        len: usize,
    },
    /// The element type's alignment exceeds what a segment guarantees (4096 bytes).
    #[error("alignment {0} exceeds the 4096 bytes a segment guarantees")]
    Alignment(usize),
    /// Any other operating-system error.
    #[error("shared memory: {0}")]
    Io(#[from] std::io::Error),
}

processing_core::predicates! {
    impl ShmError {
        /// Whether this is [`ShmError::InvalidSize`].
        is_invalid_size => Self::InvalidSize(_),
        /// Whether this is [`ShmError::NotFound`].
        is_not_found => Self::NotFound(_),
        /// Whether this is [`ShmError::AlreadyExists`].
        is_already_exists => Self::AlreadyExists(_),
        /// Whether this is [`ShmError::OutOfRange`].
        is_out_of_range => Self::OutOfRange { .. },
        /// Whether this is [`ShmError::NoSpace`].
        is_no_space => Self::NoSpace(_),
    }
}
