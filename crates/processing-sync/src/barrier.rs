//! `Barrier`.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::algo::barrier::{BarrierState, WaitFailed};
use crate::error::{BarrierError, SyncError};
use crate::shared::{me, Shared};

/// A cyclic barrier for `parties` threads or processes, like `threading.Barrier`.
///
/// `wait` blocks until `parties` callers have arrived, then releases them all and returns
/// each a distinct index in `0..parties`; the barrier is then ready for the next pass. An
/// optional action (a `fn()`, which travels with the handle to child processes of the same
/// executable) runs once per pass, in the last arriver, before the others are released.
/// `abort`, a timeout, a panicking action or the death of a waiting party break it: waiters
/// get [`BarrierError::Broken`] until `reset`.
///
/// ```
/// let b = processing::sync::Barrier::new(1).unwrap();
/// assert_eq!(b.wait().unwrap(), 0); // one party never blocks
/// assert_eq!((b.parties(), b.n_waiting(), b.broken()), (1, 0, false));
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct Barrier {
    shared: Shared<BarrierState>,
    action: Option<crate::action::Action>,
}

fn failed(e: WaitFailed) -> BarrierError {
    match e {
        WaitFailed::Broken => BarrierError::Broken,
        WaitFailed::Timeout => BarrierError::Timeout,
        WaitFailed::ActionPanicked => BarrierError::ActionPanicked,
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("segment", &self.shared)
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish()
    }
}

impl Barrier {
    /// Creates a barrier for `parties` (at least 1, at most `u32::MAX`, what the shared
    /// layout counts; else [`SyncError::InvalidArgument`]).
    pub fn new(parties: usize) -> Result<Barrier, SyncError> {
        let parties = crate::twin::barrier_parties(parties)?;
        let shared = Shared::create(|s: &BarrierState| s.init(parties))?;
        Ok(Barrier {
            shared,
            action: None,
        })
    }

    /// Creates a barrier whose last arriver runs `action` once per pass.
    pub fn with_action(parties: usize, action: fn()) -> Result<Barrier, SyncError> {
        let mut b = Barrier::new(parties)?;
        b.action = Some(crate::action::Action(action));
        Ok(b)
    }

    /// The pass's action as the algorithm runs it: true when it returned, false when it
    /// panicked.
    fn action(&self) -> Option<impl Fn() -> bool> {
        self.action
            .map(|a| move || catch_unwind(AssertUnwindSafe(a.0)).is_ok())
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BarrierError> {
        let run = self.action();
        self.shared
            .state()
            .wait(
                self.shared.park(),
                me(),
                deadline,
                run.as_ref().map(|f| f as _),
            )
            .map(|i| i as usize)
            .map_err(failed)
    }

    /// The first half of a wait that does not block (`wait_async`): arrives, running the
    /// action if this arrival completes the pass.
    #[cfg(feature = "async")]
    pub(crate) fn arrive(&self) -> Result<crate::algo::barrier::Arrived, BarrierError> {
        let run = self.action();
        self.shared
            .state()
            .arrive(self.shared.park(), me(), run.as_ref().map(|f| f as _))
            .map_err(failed)
    }

    /// Without waiting: how the pass of `arrival` ended, if it did (see `wait_async`).
    #[cfg(feature = "async")]
    pub(crate) fn check(
        &self,
        arrival: &crate::algo::barrier::Arrival,
        check_parties: bool,
    ) -> Option<Result<usize, BarrierError>> {
        self.shared
            .state()
            .check(arrival, self.shared.park(), me(), check_parties)
            .map(|r| r.map(|i| i as usize).map_err(failed))
    }

    /// Takes back `arrival` if its pass goes on (a dropped `wait_async`).
    #[cfg(feature = "async")]
    pub(crate) fn withdraw(&self, arrival: &crate::algo::barrier::Arrival) {
        self.shared
            .state()
            .withdraw(arrival, self.shared.park(), me());
    }

    /// Waits for all parties; returns this arrival's index.
    pub fn wait(&self) -> Result<usize, BarrierError> {
        self.wait_until(None)
    }

    /// Waits at most `timeout`; on timeout the barrier breaks for every party.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BarrierError> {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    /// Breaks the barrier: current and future waits fail until [`reset`](Self::reset).
    pub fn abort(&self) {
        self.shared.state().abort(self.shared.park(), me());
    }

    /// Fails the current waiters (if any) and makes the barrier usable again.
    pub fn reset(&self) {
        self.shared.state().reset(self.shared.park(), me());
    }

    /// The number of parties a pass needs.
    pub fn parties(&self) -> usize {
        self.shared.state().parties() as usize
    }

    /// The number of parties waiting in the current pass.
    pub fn n_waiting(&self) -> usize {
        self.shared.state().n_waiting() as usize
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.shared.state().is_broken()
    }
}
