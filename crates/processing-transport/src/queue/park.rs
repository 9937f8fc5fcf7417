//! How a queue operation waits: it spins as the waiter's `SpinPolicy` allows, then sleeps on a
//! futex word.
//!
//! The spin is processing-core's one wait strategy (`processing_core::os::SpinPolicy`, shared
//! with the pipe rings, the pool's supervisors and the manager's mailbox): about four times the
//! recent average wait of that kind (5–50 µs), yielding now and then (at once on a thread
//! pinned to one CPU), and none at all while the machine has more runnable threads than CPUs,
//! where a spinner only takes the time slice of the peer it waits for. A blocking wake-up across
//! cores costs tens of microseconds, so a short wait is cheaper spun; a long one sleeps.
//!
//! A sleeper raises a `wake_flag` word before its last check; the waking side makes a system
//! call only when it finds the flag raised, and lowers it in the same atomic swap, so a sleeper
//! that is slow to run costs one wake-up, not one per operation of the waking side.
//!
//! Under loom a wait never spins: it goes straight to [`sleep_on`], whose sleep is a yield.

use crate::loom::{AtomicU32, Ordering};
use processing_core::os::SpinPolicy;
use std::time::{Duration, Instant};

use super::sys;

/// Longest single sleep: sleepers wake up this often to re-check conditions nobody signals
/// (a lock owner that died, a deadline).
const MAX_SLEEP: Duration = Duration::from_millis(50);

pub(crate) use crate::wait::Deadline;

impl Deadline {
    /// Time left before the deadline (`None`: it has passed), capped at [`MAX_SLEEP`].
    fn sleep_slice(self) -> Option<Duration> {
        match self {
            Deadline::Now => None,
            Deadline::Never => Some(MAX_SLEEP),
            Deadline::At(t) => {
                let left = t.checked_duration_since(Instant::now())?;
                if left.is_zero() {
                    None
                } else {
                    Some(left.min(MAX_SLEEP))
                }
            }
        }
    }
}

/// Records in `policy` how long a whole wait lasted (nothing under loom, whose waits never spin).
pub(crate) fn record(policy: &SpinPolicy, began: Instant) {
    if !cfg!(loom) {
        policy.record(began.elapsed());
    }
}

/// Waits until `ready()` holds: spins as `policy` allows (not past the deadline, and not at all
/// for [`Deadline::Now`]), then sleeps on `seq` (see [`sleep_on`]) until it holds (true) or the
/// deadline passes (false).
pub(crate) fn wait_until(
    policy: &SpinPolicy,
    seq: &AtomicU32,
    wake_flag: &AtomicU32,
    deadline: Deadline,
    ready: impl Fn() -> bool,
) -> bool {
    if ready() {
        return true;
    }
    if deadline.passed() {
        // A look, not a wait (a zero timeout): no spin, no sleep, and nothing recorded (a
        // poll must not shorten the spins of the real waits).
        return false;
    }
    let began = Instant::now();
    // A spin ends at the deadline.
    let spun = policy.spin_until_before(deadline.instant(), &ready);
    let held = spun
        || loop {
            if !sleep_on(seq, wake_flag, deadline, &ready) {
                break false;
            }
            if ready() {
                break true;
            }
        };
    record(policy, began);
    held
}

/// Sleeps on `seq` unless `ready()` holds after raising `wake_flag`. Returns false if the
/// deadline has passed (nothing waited then).
///
/// The waking side changes `seq` with `SeqCst` and then swaps `wake_flag` with `SeqCst`; here
/// the flag is raised with `SeqCst` before `seq` is read, so either the waker sees the flag or
/// the sleeper sees the new `seq` (and `ready()` then sees what was published before it).
pub(crate) fn sleep_on(
    seq: &AtomicU32,
    wake_flag: &AtomicU32,
    deadline: Deadline,
    ready: impl Fn() -> bool,
) -> bool {
    let Some(slice) = deadline.sleep_slice() else {
        return false;
    };
    wake_flag.store(1, Ordering::SeqCst);
    let seen = seq.load(Ordering::SeqCst);
    if !ready() {
        sys::wait(seq, seen, slice);
    }
    true
}

/// Wakes the sleepers on `seq` (whose change was already published with `SeqCst`), if any.
pub(crate) fn wake(seq: &AtomicU32, wake_flag: &AtomicU32) {
    if wake_flag.load(Ordering::SeqCst) != 0 && wake_flag.swap(0, Ordering::SeqCst) != 0 {
        sys::wake_all(seq);
    }
}

/// Publishes a change of `seq` and wakes its sleepers, if any.
pub(crate) fn bump_and_wake(seq: &AtomicU32, wake_flag: &AtomicU32) {
    seq.fetch_add(1, Ordering::SeqCst);
    wake(seq, wake_flag);
}
