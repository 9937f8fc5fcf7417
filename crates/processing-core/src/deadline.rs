//! The deadline of a blocking call, as an `Option<Instant>` (`None`: for ever).

use std::time::{Duration, Instant};

/// A deadline that has passed (see [`time_left`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired;

/// The time left before `deadline`, for the next wait of a call that must give up then:
/// `Ok(None)` without a deadline (wait for ever), `Err(Expired)` once it has passed.
///
/// ```
/// use std::time::{Duration, Instant};
/// use processing::core::{time_left, Expired};
/// assert_eq!(time_left(None), Ok(None));
/// assert_eq!(time_left(Some(Instant::now())), Err(Expired));
/// let left = time_left(Instant::now().checked_add(Duration::from_secs(60))).unwrap();
/// assert!(left.is_some_and(|d| d > Duration::from_secs(50)));
/// ```
pub fn time_left(deadline: Option<Instant>) -> Result<Option<Duration>, Expired> {
    match deadline {
        None => Ok(None),
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                Err(Expired)
            } else {
                Ok(Some(d - now))
            }
        }
    }
}
