//! Synchronisation of the thread twin: [`Lock`], [`RLock`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Condition`], [`Event`], [`Barrier`], [`Value`], [`Array`], with
//! the signatures, error types ([`processing_sync::AcquireError`] and its siblings) and RAII
//! guards of the process-shared ones in `processing_sync`. Each is an `Arc` around a `std`
//! mutex and condition variable; a clone is another handle to the same object, and a clone is
//! what a twin `Process` target receives. No holder can die under a thread, so `OwnerDied`
//! never occurs here; `Value`/`Array` have no `raw()` (there is no shared segment to expose).
//! The poison-free lock helper the twin's types share lives here too.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::ops::RangeBounds;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use processing_shm::{Pod, ShmError};
use processing_sync::{twin, AcquireError, BarrierError, ConditionError, ReleaseError, SyncError};

/// Locks `m`, ignoring poison (a panicking holder leaves consistent state in every use here).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The instant `timeout` from now; `None` (for ever) when it is out of range (`Duration::MAX`).
fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Waits on `cv` until `done` holds or `deadline` passes (checked first: a past deadline is
/// one non-blocking check); returns the guard and whether `done` held.
fn wait_until<'a, T>(
    cv: &Condvar,
    mut guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
    mut done: impl FnMut(&mut T) -> bool,
) -> (MutexGuard<'a, T>, bool) {
    loop {
        if done(&mut guard) {
            return (guard, true);
        }
        match deadline {
            None => guard = cv.wait(guard).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return (guard, false);
                }
                guard = cv
                    .wait_timeout(guard, d - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
}

/// The shared layouts of the process-shared primitives count in 32-bit words; the twin keeps
/// their limits so that one program behaves alike on both.
const MAX_COUNT: usize = u32::MAX as usize;

// ------------------------------------------------------------------------------------ Lock

struct LockInner {
    locked: Mutex<bool>,
    freed: Condvar,
}

/// A lock between threads with the API of the process-shared `Lock`: any thread may release
/// it; `try_acquire` on a held lock is [`AcquireError::WouldBlock`].
///
/// ```
/// use std::time::Duration;
/// let lock = processing::dummy::Lock::new().unwrap();
/// {
///     let _guard = lock.acquire().unwrap();
///     assert!(lock.try_acquire().unwrap_err().is_would_block());
///     assert!(lock.acquire_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
/// } // released here
/// assert!(lock.release().unwrap_err().is_not_locked());
/// ```
#[derive(Clone)]
pub struct Lock {
    inner: Arc<LockInner>,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.is_locked())
            .finish()
    }
}

processing_sync::__release_guard! {
    /// Holds a twin [`Lock`]; releases it on drop.
    LockGuard: lock of Lock
}

impl Lock {
    /// Creates an unlocked lock (never fails; a `Result` as the process-shared one).
    pub fn new() -> Result<Lock, SyncError> {
        Ok(Lock {
            inner: Arc::new(LockInner {
                locked: Mutex::new(false),
                freed: Condvar::new(),
            }),
        })
    }

    /// Waits until free (for ever with `None`) and takes the lock; false on timeout.
    fn take(&self, deadline: Option<Instant>) -> bool {
        let state = lock(&self.inner.locked);
        let (mut locked, free) = wait_until(&self.inner.freed, state, deadline, |l| !*l);
        if free {
            *locked = true;
        }
        free
    }

    /// Takes the lock, waiting as long as it takes, as a guard.
    fn held(&self) -> LockGuard<'_> {
        self.take(None);
        LockGuard::new(self)
    }

    /// Acquires, waiting as long as it takes (it does not fail: no holder can die).
    pub fn acquire(&self) -> Result<LockGuard<'_>, AcquireError<LockGuard<'_>>> {
        Ok(self.held())
    }

    /// Acquires, waiting at most `timeout` ([`AcquireError::Timeout`] then; `Duration::MAX`
    /// waits for ever).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'_>, AcquireError<LockGuard<'_>>> {
        if self.take(deadline(timeout)) {
            Ok(LockGuard::new(self))
        } else {
            Err(AcquireError::Timeout)
        }
    }

    /// Acquires if the lock is free now; [`AcquireError::WouldBlock`] if it is held.
    pub fn try_acquire(&self) -> Result<LockGuard<'_>, AcquireError<LockGuard<'_>>> {
        let mut locked = lock(&self.inner.locked);
        if *locked {
            Err(AcquireError::WouldBlock)
        } else {
            *locked = true;
            Ok(LockGuard::new(self))
        }
    }

    /// Releases the lock (held through a forgotten guard); [`ReleaseError::NotLocked`] if it
    /// is not held.
    pub fn release(&self) -> Result<(), ReleaseError> {
        let mut locked = lock(&self.inner.locked);
        if !*locked {
            return Err(ReleaseError::NotLocked);
        }
        *locked = false;
        drop(locked);
        self.inner.freed.notify_one();
        Ok(())
    }

    /// Whether any thread holds the lock now.
    pub fn is_locked(&self) -> bool {
        *lock(&self.inner.locked)
    }
}

// ----------------------------------------------------------------------------------- RLock

struct RLockState {
    owner: Option<ThreadId>,
    depth: usize,
}

struct RLockInner {
    state: Mutex<RLockState>,
    freed: Condvar,
}

/// A recursive lock between threads with the API of the process-shared `RLock`: the holding
/// thread may acquire it again and must release it as many times; no other thread may release
/// it ([`ReleaseError::NotOwner`]).
///
/// ```
/// let lock = processing::dummy::RLock::new().unwrap();
/// let a = lock.acquire().unwrap();
/// let b = lock.try_acquire().unwrap(); // reentrant
/// drop(b);
/// drop(a);
/// assert!(lock.release().unwrap_err().is_not_owner());
/// ```
#[derive(Clone)]
pub struct RLock {
    inner: Arc<RLockInner>,
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("owned", &self.is_owned())
            .finish()
    }
}

processing_sync::__release_guard! {
    /// Holds one level of a twin [`RLock`]; releases it on drop. Tied to its thread.
    RLockGuard: level of RLock
}

impl RLock {
    /// Creates an unlocked recursive lock (never fails; a `Result` as the process-shared one).
    pub fn new() -> Result<RLock, SyncError> {
        Ok(RLock {
            inner: Arc::new(RLockInner {
                state: Mutex::new(RLockState {
                    owner: None,
                    depth: 0,
                }),
                freed: Condvar::new(),
            }),
        })
    }

    fn guard(&self) -> RLockGuard<'_> {
        RLockGuard::new(self)
    }

    /// Waits until free (or held by this thread) and takes `levels` levels.
    fn take(&self, deadline: Option<Instant>, levels: usize) -> bool {
        let me = thread::current().id();
        let state = lock(&self.inner.state);
        let (mut s, free) = wait_until(&self.inner.freed, state, deadline, |s| {
            s.owner.is_none() || s.owner == Some(me)
        });
        if free {
            s.owner = Some(me);
            s.depth += levels;
        }
        free
    }

    /// Acquires (again, if this thread holds it), waiting as long as it takes.
    pub fn acquire(&self) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        self.take(None, 1);
        Ok(self.guard())
    }

    /// Acquires, waiting at most `timeout` ([`AcquireError::Timeout`] then).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        if self.take(deadline(timeout), 1) {
            Ok(self.guard())
        } else {
            Err(AcquireError::Timeout)
        }
    }

    /// Acquires if free now or already held by this thread; [`AcquireError::WouldBlock`] if
    /// another thread holds it.
    pub fn try_acquire(&self) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        if self.take(Some(Instant::now()), 1) {
            Ok(self.guard())
        } else {
            Err(AcquireError::WouldBlock)
        }
    }

    /// Releases one level; [`ReleaseError::NotOwner`] if this thread does not hold it.
    pub fn release(&self) -> Result<(), ReleaseError> {
        let mut s = lock(&self.inner.state);
        if s.owner != Some(thread::current().id()) {
            return Err(ReleaseError::NotOwner);
        }
        s.depth -= 1;
        if s.depth == 0 {
            s.owner = None;
            drop(s);
            self.inner.freed.notify_one();
        }
        Ok(())
    }

    /// Whether the calling thread holds the lock.
    pub fn is_owned(&self) -> bool {
        lock(&self.inner.state).owner == Some(thread::current().id())
    }

    /// Releases every level the calling thread holds (it holds at least one); returns how
    /// many, for [`RLock::take`] to restore (a condition's wait).
    fn release_all(&self) -> usize {
        let mut s = lock(&self.inner.state);
        let depth = std::mem::take(&mut s.depth);
        s.owner = None;
        drop(s);
        self.inner.freed.notify_one();
        depth
    }
}

// ------------------------------------------------------------------------------- Semaphore

struct SemaphoreInner {
    value: Mutex<usize>,
    /// The most permits a release may bring the value to (`BoundedSemaphore`).
    bound: Option<usize>,
    freed: Condvar,
}

/// A counting semaphore between threads with the API of the process-shared `Semaphore`:
/// `release` may raise the count past its initial value (up to `u32::MAX`, as the shared one).
///
/// ```
/// let sem = processing::dummy::Semaphore::new(2).unwrap();
/// let a = sem.acquire().unwrap();
/// let _b = sem.try_acquire().unwrap();
/// assert!(sem.try_acquire().unwrap_err().is_would_block());
/// drop(a);
/// assert_eq!(sem.value(), 1);
/// ```
#[derive(Clone)]
pub struct Semaphore {
    inner: Arc<SemaphoreInner>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .field("bound", &self.inner.bound)
            .finish()
    }
}

processing_sync::__release_guard! {
    /// Holds one permit of a twin [`Semaphore`] or [`BoundedSemaphore`]; returns it on drop.
    SemaphoreGuard: permit of Semaphore
}

impl Semaphore {
    /// Creates a semaphore with `value` permits; more than `u32::MAX` is
    /// [`SyncError::InvalidArgument`], as for the process-shared one.
    pub fn new(value: usize) -> Result<Semaphore, SyncError> {
        Semaphore::with_bound(twin::semaphore_permits(value)? as usize, None)
    }

    fn with_bound(value: usize, bound: Option<usize>) -> Result<Semaphore, SyncError> {
        Ok(Semaphore {
            inner: Arc::new(SemaphoreInner {
                value: Mutex::new(value),
                bound,
                freed: Condvar::new(),
            }),
        })
    }

    fn take(&self, deadline: Option<Instant>) -> bool {
        let value = lock(&self.inner.value);
        let (mut v, free) = wait_until(&self.inner.freed, value, deadline, |v| *v > 0);
        if free {
            *v -= 1;
        }
        free
    }

    /// Takes a permit, waiting as long as it takes (it does not fail).
    pub fn acquire(&self) -> Result<SemaphoreGuard<'_>, AcquireError<SemaphoreGuard<'_>>> {
        self.take(None);
        Ok(SemaphoreGuard::new(self))
    }

    /// Takes a permit, waiting at most `timeout` ([`AcquireError::Timeout`] then).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<SemaphoreGuard<'_>, AcquireError<SemaphoreGuard<'_>>> {
        if self.take(deadline(timeout)) {
            Ok(SemaphoreGuard::new(self))
        } else {
            Err(AcquireError::Timeout)
        }
    }

    /// Takes a permit if one is free now; [`AcquireError::WouldBlock`] if none is.
    pub fn try_acquire(&self) -> Result<SemaphoreGuard<'_>, AcquireError<SemaphoreGuard<'_>>> {
        if self.take(Some(Instant::now())) {
            Ok(SemaphoreGuard::new(self))
        } else {
            Err(AcquireError::WouldBlock)
        }
    }

    /// Returns a permit; [`ReleaseError::Bound`] past a bounded semaphore's bound,
    /// [`ReleaseError::Overflow`] past `u32::MAX` permits.
    pub fn release(&self) -> Result<(), ReleaseError> {
        let mut v = lock(&self.inner.value);
        if self.inner.bound.is_some_and(|b| *v >= b) {
            return Err(ReleaseError::Bound);
        }
        if *v >= MAX_COUNT {
            return Err(ReleaseError::Overflow);
        }
        *v += 1;
        drop(v);
        self.inner.freed.notify_one();
        Ok(())
    }

    /// The number of free permits now.
    pub fn value(&self) -> usize {
        *lock(&self.inner.value)
    }
}

/// A semaphore whose count may not exceed its initial value, with the API of the
/// process-shared `BoundedSemaphore`: a release beyond it is [`ReleaseError::Bound`].
///
/// ```
/// let sem = processing::dummy::BoundedSemaphore::new(1).unwrap();
/// assert!(sem.release().unwrap_err().is_bound());
/// ```
#[derive(Clone, Debug)]
pub struct BoundedSemaphore {
    inner: Semaphore,
}

impl BoundedSemaphore {
    /// Creates a semaphore with `value` permits, which is also its bound (at least 1, at most
    /// `u32::MAX`; else [`SyncError::InvalidArgument`]).
    pub fn new(value: usize) -> Result<BoundedSemaphore, SyncError> {
        let value = twin::bounded_permits(value)? as usize;
        Ok(BoundedSemaphore {
            inner: Semaphore::with_bound(value, Some(value))?,
        })
    }

    processing_sync::__bounded_semaphore_methods!(SemaphoreGuard);
}

// ------------------------------------------------------------------------------- Condition

struct ConditionState {
    next: u64,
    /// Current waiters, oldest first: (ticket, notified).
    waiters: VecDeque<(u64, bool)>,
}

struct ConditionInner {
    state: Mutex<ConditionState>,
    changed: Condvar,
}

/// A condition variable between threads with the API of the process-shared `Condition`, over
/// a twin [`RLock`] (its own, or one given with [`Condition::with_lock`]).
///
/// `wait` and `notify` must be called while holding the lock (else
/// [`ConditionError::NotOwner`]). `notify_n(n)` wakes the `n` oldest current waiters,
/// `notify_all` all of them (never one that already gave up on timeout).
///
/// ```
/// use std::time::Duration;
/// let cond = processing::dummy::Condition::new().unwrap();
/// let guard = cond.acquire().unwrap();
/// assert!(!cond.wait_timeout(Duration::from_millis(5)).unwrap());
/// cond.notify_n(2).unwrap();
/// drop(guard);
/// assert!(cond.notify().unwrap_err().is_not_owner());
/// ```
#[derive(Clone)]
pub struct Condition {
    lock: RLock,
    inner: Arc<ConditionInner>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("lock", &self.lock)
            .finish_non_exhaustive()
    }
}

impl Condition {
    /// Creates a condition with its own recursive lock.
    pub fn new() -> Result<Condition, SyncError> {
        Condition::with_lock(RLock::new()?)
    }

    /// Creates a condition over `lock`.
    pub fn with_lock(lock: RLock) -> Result<Condition, SyncError> {
        Ok(Condition {
            lock,
            inner: Arc::new(ConditionInner {
                state: Mutex::new(ConditionState {
                    next: 0,
                    waiters: VecDeque::new(),
                }),
                changed: Condvar::new(),
            }),
        })
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, ConditionError> {
        self.check_owner()?;
        // Registered before the lock is let go: a notify (made under the lock) cannot be missed.
        let ticket = {
            let mut s = lock(&self.inner.state);
            let ticket = s.next;
            s.next += 1;
            s.waiters.push_back((ticket, false));
            ticket
        };
        let depth = self.lock.release_all();
        let state = lock(&self.inner.state);
        let (mut s, _) = wait_until(&self.inner.changed, state, deadline, |s| {
            s.waiters
                .iter()
                .any(|&(t, notified)| t == ticket && notified)
        });
        // A notification that came with the deadline counts: it was given to this waiter.
        let notified = match s.waiters.iter().position(|&(t, _)| t == ticket) {
            Some(i) => s.waiters.remove(i).is_some_and(|(_, n)| n),
            None => false,
        };
        drop(s);
        self.lock.take(None, depth);
        Ok(notified)
    }

    /// Wakes up to `n` waiters, the oldest first.
    pub fn notify_n(&self, n: usize) -> Result<(), ConditionError> {
        self.check_owner()?;
        let mut s = lock(&self.inner.state);
        let mut woken = 0;
        for (_, notified) in s
            .waiters
            .iter_mut()
            .filter(|(_, notified)| !*notified)
            .take(n)
        {
            *notified = true;
            woken += 1;
        }
        drop(s);
        if woken > 0 {
            self.inner.changed.notify_all();
        }
        Ok(())
    }

    processing_sync::__condition_methods!(RLock, RLockGuard);
}

// ----------------------------------------------------------------------------------- Event

struct EventInner {
    set: Mutex<bool>,
    changed: Condvar,
}

/// A flag threads can wait for, with the API of the process-shared `Event`.
///
/// ```
/// use std::time::Duration;
/// let ev = processing::dummy::Event::new().unwrap();
/// assert!(!ev.wait_timeout(Duration::from_millis(1)));
/// ev.set();
/// assert!(ev.is_set() && ev.wait_timeout(Duration::ZERO));
/// ```
#[derive(Clone)]
pub struct Event {
    inner: Arc<EventInner>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

impl Event {
    /// Creates a clear event (never fails; a `Result` as the process-shared one).
    pub fn new() -> Result<Event, SyncError> {
        Ok(Event {
            inner: Arc::new(EventInner {
                set: Mutex::new(false),
                changed: Condvar::new(),
            }),
        })
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        *lock(&self.inner.set)
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        *lock(&self.inner.set) = true;
        self.inner.changed.notify_all();
    }

    /// Clears the flag.
    pub fn clear(&self) {
        *lock(&self.inner.set) = false;
    }

    /// Waits until the flag is set.
    pub fn wait(&self) {
        let set = lock(&self.inner.set);
        drop(wait_until(&self.inner.changed, set, None, |s| *s));
    }

    /// Waits at most `timeout`; returns whether the flag is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let set = lock(&self.inner.set);
        wait_until(&self.inner.changed, set, deadline(timeout), |s| *s).1
    }
}

// --------------------------------------------------------------------------------- Barrier

struct BarrierState {
    /// Arrivals in the current pass.
    count: usize,
    /// Moves on at every pass and every break.
    generation: u64,
    broken: bool,
    /// Broken passes that still have sleepers to tell, with how many.
    broken_passes: HashMap<u64, usize>,
}

struct BarrierInner {
    parties: usize,
    action: Option<fn()>,
    state: Mutex<BarrierState>,
    changed: Condvar,
}

/// A cyclic barrier for `parties` threads with the API of the process-shared `Barrier`.
///
/// `wait` blocks until `parties` callers have arrived, then releases them all and returns each
/// a distinct index in `0..parties` (its arrival order); the barrier is then ready for the next
/// pass. An optional action runs once per pass, in the last arriver, before the others are
/// released. `abort`, a timeout or a panicking action break it: waiters get
/// [`BarrierError::Broken`] until `reset`.
///
/// ```
/// let b = processing::dummy::Barrier::new(1).unwrap();
/// assert_eq!(b.wait().unwrap(), 0);
/// b.abort();
/// assert!(b.wait().unwrap_err().is_broken());
/// assert_eq!((b.parties(), b.n_waiting(), b.broken()), (1, 0, true));
/// ```
#[derive(Clone)]
pub struct Barrier {
    inner: Arc<BarrierInner>,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish()
    }
}

impl Barrier {
    /// Creates a barrier for `parties` (at least 1, at most `u32::MAX` as the process-shared
    /// one; else [`SyncError::InvalidArgument`]).
    pub fn new(parties: usize) -> Result<Barrier, SyncError> {
        Barrier::build(parties, None)
    }

    /// Creates a barrier whose last arriver runs `action` once per pass.
    pub fn with_action(parties: usize, action: fn()) -> Result<Barrier, SyncError> {
        Barrier::build(parties, Some(action))
    }

    fn build(parties: usize, action: Option<fn()>) -> Result<Barrier, SyncError> {
        twin::barrier_parties(parties)?;
        Ok(Barrier {
            inner: Arc::new(BarrierInner {
                parties,
                action,
                state: Mutex::new(BarrierState {
                    count: 0,
                    generation: 0,
                    broken: false,
                    broken_passes: HashMap::new(),
                }),
                changed: Condvar::new(),
            }),
        })
    }

    /// Breaks the current pass, whose `sleepers` waiters will be told so.
    fn break_pass(&self, s: &mut BarrierState, sleepers: usize) {
        s.broken = true;
        if sleepers > 0 {
            s.broken_passes.insert(s.generation, sleepers);
        }
        s.generation += 1;
        s.count = 0;
        self.inner.changed.notify_all();
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BarrierError> {
        let mut s = lock(&self.inner.state);
        if s.broken {
            return Err(BarrierError::Broken);
        }
        let generation = s.generation;
        let index = s.count;
        s.count += 1;
        if s.count == self.inner.parties {
            // The last arriver: the action runs before anyone is released (under the state
            // lock, so no other party of this pass can observe the barrier meanwhile).
            let ran = self
                .inner
                .action
                .is_none_or(|a| catch_unwind(AssertUnwindSafe(a)).is_ok());
            if !ran {
                self.break_pass(&mut s, self.inner.parties - 1);
                return Err(BarrierError::ActionPanicked);
            }
            s.generation += 1;
            s.count = 0;
            self.inner.changed.notify_all();
            return Ok(index);
        }
        let (mut s, moved) = wait_until(&self.inner.changed, s, deadline, |s| {
            s.generation != generation
        });
        if !moved {
            // This wait timed out: it breaks the pass for the others.
            let sleepers = s.count - 1;
            self.break_pass(&mut s, sleepers);
            return Err(BarrierError::Timeout);
        }
        if let Some(left) = s.broken_passes.get_mut(&generation) {
            *left -= 1;
            if *left == 0 {
                s.broken_passes.remove(&generation);
            }
            return Err(BarrierError::Broken);
        }
        Ok(index)
    }

    /// Waits for all parties; returns this arrival's index.
    pub fn wait(&self) -> Result<usize, BarrierError> {
        self.wait_until(None)
    }

    /// Waits at most `timeout`; on timeout the barrier breaks for every party.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BarrierError> {
        self.wait_until(deadline(timeout))
    }

    /// Breaks the barrier: current and future waits fail until [`reset`](Self::reset).
    pub fn abort(&self) {
        let mut s = lock(&self.inner.state);
        let sleepers = s.count;
        self.break_pass(&mut s, sleepers);
    }

    /// Fails the current waiters (if any) and makes the barrier usable again.
    pub fn reset(&self) {
        let mut s = lock(&self.inner.state);
        let sleepers = s.count;
        if sleepers > 0 {
            self.break_pass(&mut s, sleepers);
        }
        s.broken = false;
    }

    /// The number of parties a pass needs.
    pub fn parties(&self) -> usize {
        self.inner.parties
    }

    /// The number of parties waiting in the current pass (0 while broken).
    pub fn n_waiting(&self) -> usize {
        let s = lock(&self.inner.state);
        if s.broken {
            0
        } else {
            s.count
        }
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        lock(&self.inner.state).broken
    }
}

// ---------------------------------------------------------------------------- Value, Array

/// A value shared between threads with a twin [`Lock`] (its own, or one given with
/// [`Value::with_lock`]), with the API of the process-shared `Value<T>` (`raw()` aside: there
/// is no shared segment to expose).
///
/// ```
/// let v = processing::dummy::Value::new(0i64).unwrap();
/// *v.lock().unwrap() += 5;
/// v.set(v.get() * 2);
/// assert_eq!(v.get(), 10);
/// ```
pub struct Value<T: Pod> {
    data: Arc<Mutex<T>>,
    lock: Lock,
}

impl<T: Pod> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            data: self.data.clone(),
            lock: self.lock.clone(),
        }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("lock", &self.lock)
            .finish_non_exhaustive()
    }
}

/// Holds a twin [`Value`]'s lock; dereferences to the value.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ValueGuard<'a, T: Pod> {
    // Dropped first: the data before the lock that guards it.
    data: MutexGuard<'a, T>,
    _lock: LockGuard<'a>,
}

impl<T: Pod + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueGuard").field(&*self.data).finish()
    }
}

impl<T: Pod> std::ops::Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: Pod> std::ops::DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

impl<T: Pod> Value<T> {
    /// Creates a value with its own lock.
    pub fn new(value: T) -> Result<Value<T>, SyncError> {
        Value::with_lock(value, Lock::new()?)
    }

    /// Creates a value guarded by `lock` (which may guard other data too).
    pub fn with_lock(value: T, lock: Lock) -> Result<Value<T>, SyncError> {
        Ok(Value {
            data: Arc::new(Mutex::new(value)),
            lock,
        })
    }

    /// Takes the lock and returns a guard that dereferences to the value (it does not fail:
    /// no holder can die).
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, AcquireError<ValueGuard<'_, T>>> {
        Ok(self.lock_data())
    }

    /// A copy of the value, read under the lock.
    pub fn get(&self) -> T {
        *self.lock_data()
    }

    /// Overwrites the value under the lock.
    pub fn set(&self, value: T) {
        *self.lock_data() = value;
    }

    fn lock_data(&self) -> ValueGuard<'_, T> {
        let _lock = self.lock.held();
        ValueGuard {
            data: lock(&self.data),
            _lock,
        }
    }

    /// The lock guarding the value.
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }
}

/// A fixed-length array shared between threads with a twin [`Lock`], with the API of the
/// process-shared `Array<T>` (`raw()` aside); zero-filled on creation. Index and range errors
/// are the same `ShmError::OutOfRange` as the shared array's.
///
/// ```
/// let a = processing::dummy::Array::<u32>::from_slice(&[1, 2, 3]).unwrap();
/// {
///     let mut items = a.lock().unwrap();
///     for i in 1..items.len() {
///         items[i] += items[i - 1];
///     }
/// }
/// assert_eq!(a.to_vec(), vec![1, 3, 6]);
/// assert!(a.set(3, 0).unwrap_err().is_out_of_range());
/// ```
pub struct Array<T: Pod> {
    data: Arc<Mutex<Vec<T>>>,
    len: usize,
    lock: Lock,
}

impl<T: Pod> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            data: self.data.clone(),
            len: self.len,
            lock: self.lock.clone(),
        }
    }
}

impl<T: Pod> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("len", &self.len)
            .field("lock", &self.lock)
            .finish()
    }
}

/// Holds a twin [`Array`]'s lock; dereferences to the elements as a slice.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ArrayGuard<'a, T: Pod> {
    // Dropped first: the data before the lock that guards it.
    data: MutexGuard<'a, Vec<T>>,
    _lock: LockGuard<'a>,
}

impl<T: Pod + fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}

impl<T: Pod> std::ops::Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.data
    }
}

impl<T: Pod> std::ops::DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.data
    }
}

impl<T: Pod> Array<T> {
    /// Creates a zero-filled array of `len` elements with its own lock.
    pub fn new(len: usize) -> Result<Array<T>, SyncError> {
        Array::with_lock(len, Lock::new()?)
    }

    /// Creates a zero-filled array guarded by `lock`; an allocation that cannot be made is
    /// `ShmError::InvalidSize` (as a segment too large for the platform).
    pub fn with_lock(len: usize, lock: Lock) -> Result<Array<T>, SyncError> {
        let mut items = Vec::new();
        items
            .try_reserve_exact(len)
            .map_err(|_| ShmError::InvalidSize(len.saturating_mul(std::mem::size_of::<T>())))?;
        items.resize(len, T::zeroed());
        Ok(Array {
            data: Arc::new(Mutex::new(items)),
            len,
            lock,
        })
    }

    /// Creates an array holding a copy of `items`, with its own lock.
    pub fn from_slice(items: &[T]) -> Result<Array<T>, SyncError> {
        let a = Array::new(items.len())?;
        lock(&a.data).copy_from_slice(items);
        Ok(a)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn lock_data(&self) -> ArrayGuard<'_, T> {
        let _lock = self.lock.held();
        ArrayGuard {
            data: lock(&self.data),
            _lock,
        }
    }

    /// Takes the lock and returns a guard that dereferences to `[T]` (it does not fail).
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, AcquireError<ArrayGuard<'_, T>>> {
        Ok(self.lock_data())
    }

    /// A copy of element `index` (under the lock), `None` when out of range.
    pub fn get(&self, index: usize) -> Option<T> {
        self.lock_data().get(index).copied()
    }

    /// Overwrites element `index` under the lock.
    pub fn set(&self, index: usize, value: T) -> Result<(), ShmError> {
        let mut items = self.lock_data();
        let len = items.len();
        let slot = items
            .get_mut(index)
            .ok_or(ShmError::OutOfRange { index, len })?;
        *slot = value;
        Ok(())
    }

    /// A copy of the elements in `range`, under the lock.
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Result<Vec<T>, ShmError> {
        let (start, end) = processing_shm::resolve_range(range, self.len)?;
        Ok(self.lock_data()[start..end].to_vec())
    }

    /// Copies `items` in at `start` under the lock (slice assignment).
    pub fn write(&self, start: usize, items: &[T]) -> Result<(), ShmError> {
        let len = self.len;
        let end = start
            .checked_add(items.len())
            .ok_or(ShmError::OutOfRange { index: start, len })?;
        if end > len {
            return Err(ShmError::OutOfRange { index: end, len });
        }
        self.lock_data()[start..end].copy_from_slice(items);
        Ok(())
    }

    /// A copy of all elements, under the lock.
    pub fn to_vec(&self) -> Vec<T> {
        self.lock_data().to_vec()
    }

    /// The lock guarding the array.
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }
}
