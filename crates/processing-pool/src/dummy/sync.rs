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

use crate::wait::{deadline, lock, wait_on};
use processing_shm::{Pod, ShmError};
use processing_sync::{twin, AcquireError, BarrierError, ConditionError, ReleaseError, SyncError};

/// The state of a twin primitive behind a mutex, with the condition variable its changes are
/// signalled on: every twin primitive is an `Arc` of one.
struct Monitor<S> {
    state: Mutex<S>,
    changed: Condvar,
}

impl<S> Monitor<S> {
    fn new(state: S) -> Arc<Monitor<S>> {
        Arc::new(Monitor {
            state: Mutex::new(state),
            changed: Condvar::new(),
        })
    }

    /// The state, locked (ignoring poison).
    fn lock(&self) -> MutexGuard<'_, S> {
        lock(&self.state)
    }

    /// Waits until `done` holds or `deadline` passes (checked first: a past deadline is one
    /// non-blocking check); returns the locked state and whether `done` held. `done` may
    /// change the state when it returns true (a `take` claims what it waited for).
    fn wait_until(
        &self,
        deadline: Option<Instant>,
        done: impl FnMut(&mut S) -> bool,
    ) -> (MutexGuard<'_, S>, bool) {
        wait_until(&self.changed, self.lock(), deadline, done)
    }
}

/// Waits on `cv` until `done` holds or `deadline` passes (`None`: for ever; checked first);
/// returns the guard and whether `done` held.
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
        guard = match wait_on(cv, guard, deadline) {
            Ok(guard) => guard,
            Err(guard) => return (guard, false),
        };
    }
}

/// The shared layouts of the process-shared primitives count in 32-bit words; the twin keeps
/// their limits so that one program behaves alike on both.
const MAX_COUNT: usize = u32::MAX as usize;

/// A twin primitive `$name`, an `Arc` of `$inner` (with the doc comments given before its
/// name; a clone is another handle to the same object), and its `Debug`, which shows each
/// `$field` as the value of its `$getter()`. With `fn new = $state` after the docs of `new`:
/// its `new`, over a fresh `Monitor` of `$state`.
macro_rules! twin_primitive {
    (
        $(#[$attr:meta])* $name:ident($inner:ty), $($field:ident: $getter:ident),+;
        $(#[$new:meta])* fn new = $state:expr;
    ) => {
        twin_primitive! { $(#[$attr])* $name($inner), $($field: $getter),+; }

        impl $name {
            $(#[$new])*
            pub fn new() -> Result<$name, SyncError> {
                Ok($name {
                    inner: Monitor::new($state),
                })
            }
        }
    };
    ($(#[$attr:meta])* $name:ident($inner:ty), $($field:ident: $getter:ident),+;) => {
        $(#[$attr])*
        #[derive(Clone)]
        pub struct $name {
            inner: Arc<$inner>,
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    $(.field(stringify!($field), &self.$getter()))+
                    .finish()
            }
        }
    };
}

/// `acquire`, `acquire_timeout` and `try_acquire` of a twin primitive over its
/// `take(Option<Instant>) -> bool` (false: the deadline passed first), whose guard is
/// `$guard`; `$what` is what a call takes. They do not fail otherwise: no holder can die.
macro_rules! acquire_by_take {
    ($guard:ident, $what:literal) => {
        #[doc = concat!("Takes ", $what, ", waiting as long as it takes (it does not fail).")]
        pub fn acquire(&self) -> Result<$guard<'_>, AcquireError<$guard<'_>>> {
            self.take(None);
            Ok($guard::new(self))
        }

        #[doc = concat!(
            "Takes ", $what, ", waiting at most `timeout` ([`AcquireError::Timeout`] then; ",
            "`Duration::MAX` waits for ever)."
        )]
        pub fn acquire_timeout(
            &self,
            timeout: Duration,
        ) -> Result<$guard<'_>, AcquireError<$guard<'_>>> {
            self.take_or(deadline(timeout), AcquireError::Timeout)
        }

        #[doc = concat!(
            "Takes ", $what, " if it needs no wait; [`AcquireError::WouldBlock`] otherwise."
        )]
        pub fn try_acquire(&self) -> Result<$guard<'_>, AcquireError<$guard<'_>>> {
            self.take_or(Some(Instant::now()), AcquireError::WouldBlock)
        }

        /// A guard once taken by `deadline`, else `failed`.
        fn take_or<'a>(
            &'a self,
            deadline: Option<Instant>,
            failed: AcquireError<$guard<'a>>,
        ) -> Result<$guard<'a>, AcquireError<$guard<'a>>> {
            if self.take(deadline) {
                Ok($guard::new(self))
            } else {
                Err(failed)
            }
        }
    };
}

// ------------------------------------------------------------------------------------ Lock

twin_primitive! {
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
    Lock(Monitor<bool>), locked: is_locked;
    /// Creates an unlocked lock (never fails; a `Result` as the process-shared one).
    fn new = false;
}

processing_sync::__release_guard! {
    /// Holds a twin [`Lock`]; releases it on drop.
    LockGuard: lock of Lock
}

impl Lock {
    /// Waits until free (for ever with `None`) and takes the lock; false on timeout.
    fn take(&self, deadline: Option<Instant>) -> bool {
        self.inner
            .wait_until(deadline, |locked| !std::mem::replace(locked, true))
            .1
    }

    /// Takes the lock, waiting as long as it takes, as a guard.
    fn held(&self) -> LockGuard<'_> {
        self.take(None);
        LockGuard::new(self)
    }

    acquire_by_take!(LockGuard, "the lock");

    /// Releases the lock (held through a forgotten guard); [`ReleaseError::NotLocked`] if it
    /// is not held.
    pub fn release(&self) -> Result<(), ReleaseError> {
        if !std::mem::replace(&mut *self.inner.lock(), false) {
            return Err(ReleaseError::NotLocked);
        }
        self.inner.changed.notify_one();
        Ok(())
    }

    /// Whether any thread holds the lock now.
    pub fn is_locked(&self) -> bool {
        *self.inner.lock()
    }
}

// ----------------------------------------------------------------------------------- RLock

struct RLockState {
    owner: Option<ThreadId>,
    depth: usize,
}

twin_primitive! {
    /// A recursive lock between threads with the API of the process-shared `RLock`: the
    /// holding thread may acquire it again and must release it as many times; no other thread
    /// may release it ([`ReleaseError::NotOwner`]).
    ///
    /// ```
    /// let lock = processing::dummy::RLock::new().unwrap();
    /// let a = lock.acquire().unwrap();
    /// let b = lock.try_acquire().unwrap(); // reentrant
    /// drop(b);
    /// drop(a);
    /// assert!(lock.release().unwrap_err().is_not_owner());
    /// ```
    RLock(Monitor<RLockState>), owned: is_owned;
    /// Creates an unlocked recursive lock (never fails; a `Result` as the process-shared one).
    fn new = RLockState {
        owner: None,
        depth: 0,
    };
}

processing_sync::__release_guard! {
    /// Holds one level of a twin [`RLock`]; releases it on drop. Tied to its thread.
    RLockGuard: level of RLock
}

impl RLock {
    /// Waits until free (or held by this thread) and takes `levels` levels.
    fn take_levels(&self, deadline: Option<Instant>, levels: usize) -> bool {
        let me = thread::current().id();
        self.inner
            .wait_until(deadline, |s| {
                let free = s.owner.is_none_or(|owner| owner == me);
                if free {
                    s.owner = Some(me);
                    s.depth += levels;
                }
                free
            })
            .1
    }

    /// Takes one level.
    fn take(&self, deadline: Option<Instant>) -> bool {
        self.take_levels(deadline, 1)
    }

    acquire_by_take!(
        RLockGuard,
        "one level of the lock (this thread may hold it already)"
    );

    /// Releases one level; [`ReleaseError::NotOwner`] if this thread does not hold it.
    pub fn release(&self) -> Result<(), ReleaseError> {
        let mut s = self.inner.lock();
        if s.owner != Some(thread::current().id()) {
            return Err(ReleaseError::NotOwner);
        }
        s.depth -= 1;
        if s.depth == 0 {
            s.owner = None;
            drop(s);
            self.inner.changed.notify_one();
        }
        Ok(())
    }

    /// Whether the calling thread holds the lock.
    pub fn is_owned(&self) -> bool {
        self.inner.lock().owner == Some(thread::current().id())
    }

    /// Releases every level the calling thread holds (it holds at least one); returns how
    /// many, for [`RLock::take_levels`] to restore (a condition's wait).
    fn release_all(&self) -> usize {
        let mut s = self.inner.lock();
        let depth = std::mem::take(&mut s.depth);
        s.owner = None;
        drop(s);
        self.inner.changed.notify_one();
        depth
    }
}

// ------------------------------------------------------------------------------- Semaphore

struct Permits {
    /// Free permits.
    value: usize,
    /// The most permits a release may bring the value to (`BoundedSemaphore`).
    bound: Option<usize>,
}

twin_primitive! {
    /// A counting semaphore between threads with the API of the process-shared `Semaphore`:
    /// `release` may raise the count past its initial value (up to `u32::MAX`, as the shared
    /// one).
    ///
    /// ```
    /// let sem = processing::dummy::Semaphore::new(2).unwrap();
    /// let a = sem.acquire().unwrap();
    /// let _b = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().unwrap_err().is_would_block());
    /// drop(a);
    /// assert_eq!(sem.value(), 1);
    /// ```
    Semaphore(Monitor<Permits>), value: value, bound: bound;
}

processing_sync::__release_guard! {
    /// Holds one permit of a twin [`Semaphore`] or [`BoundedSemaphore`]; returns it on drop.
    SemaphoreGuard: permit of Semaphore
}

impl Semaphore {
    /// Creates a semaphore with `value` permits; more than `u32::MAX` is
    /// [`SyncError::InvalidArgument`], as for the process-shared one.
    pub fn new(value: usize) -> Result<Semaphore, SyncError> {
        Ok(Semaphore::with_bound(
            twin::semaphore_permits(value)? as usize,
            None,
        ))
    }

    fn with_bound(value: usize, bound: Option<usize>) -> Semaphore {
        Semaphore {
            inner: Monitor::new(Permits { value, bound }),
        }
    }

    fn take(&self, deadline: Option<Instant>) -> bool {
        self.inner
            .wait_until(deadline, |p| {
                let free = p.value > 0;
                if free {
                    p.value -= 1;
                }
                free
            })
            .1
    }

    acquire_by_take!(SemaphoreGuard, "a permit");

    /// Returns a permit; [`ReleaseError::Bound`] past a bounded semaphore's bound,
    /// [`ReleaseError::Overflow`] past `u32::MAX` permits.
    pub fn release(&self) -> Result<(), ReleaseError> {
        let mut p = self.inner.lock();
        if p.bound.is_some_and(|b| p.value >= b) {
            return Err(ReleaseError::Bound);
        }
        if p.value >= MAX_COUNT {
            return Err(ReleaseError::Overflow);
        }
        p.value += 1;
        drop(p);
        self.inner.changed.notify_one();
        Ok(())
    }

    /// The number of free permits now.
    pub fn value(&self) -> usize {
        self.inner.lock().value
    }

    fn bound(&self) -> Option<usize> {
        self.inner.lock().bound
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
            inner: Semaphore::with_bound(value, Some(value)),
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
    inner: Arc<Monitor<ConditionState>>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("lock", &self.lock)
            .finish_non_exhaustive()
    }
}

impl Condition {
    /// Creates a condition over `lock`.
    pub fn with_lock(lock: RLock) -> Result<Condition, SyncError> {
        Ok(Condition {
            lock,
            inner: Monitor::new(ConditionState {
                next: 0,
                waiters: VecDeque::new(),
            }),
        })
    }

    processing_sync::__condition_methods!(RLock, RLockGuard);

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, ConditionError> {
        self.check_owner()?;
        // Registered before the lock is let go: a notify (made under the lock) cannot be missed.
        let ticket = {
            let mut s = self.inner.lock();
            let ticket = s.next;
            s.next += 1;
            s.waiters.push_back((ticket, false));
            ticket
        };
        let depth = self.lock.release_all();
        let (mut s, _) = self.inner.wait_until(deadline, |s| {
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
        self.lock.take_levels(None, depth);
        Ok(notified)
    }

    /// Wakes up to `n` waiters, the oldest first.
    pub fn notify_n(&self, n: usize) -> Result<(), ConditionError> {
        self.check_owner()?;
        let mut s = self.inner.lock();
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
}

// ----------------------------------------------------------------------------------- Event

twin_primitive! {
    /// A flag threads can wait for, with the API of the process-shared `Event`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ev = processing::dummy::Event::new().unwrap();
    /// assert!(!ev.wait_timeout(Duration::from_millis(1)));
    /// ev.set();
    /// assert!(ev.is_set() && ev.wait_timeout(Duration::ZERO));
    /// ```
    Event(Monitor<bool>), set: is_set;
    /// Creates a clear event (never fails; a `Result` as the process-shared one).
    fn new = false;
}

impl Event {
    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        *self.inner.lock()
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        *self.inner.lock() = true;
        self.inner.changed.notify_all();
    }

    /// Clears the flag.
    pub fn clear(&self) {
        *self.inner.lock() = false;
    }

    /// Waits until the flag is set.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout`; returns whether the flag is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(deadline(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        self.inner.wait_until(deadline, |set| *set).1
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
    monitor: Monitor<BarrierState>,
}

twin_primitive! {
    /// A cyclic barrier for `parties` threads with the API of the process-shared `Barrier`.
    ///
    /// `wait` blocks until `parties` callers have arrived, then releases them all and returns
    /// each a distinct index in `0..parties` (its arrival order); the barrier is then ready for
    /// the next pass. An optional action runs once per pass, in the last arriver, before the
    /// others are released. `abort`, a timeout or a panicking action break it: waiters get
    /// [`BarrierError::Broken`] until `reset`.
    ///
    /// ```
    /// let b = processing::dummy::Barrier::new(1).unwrap();
    /// assert_eq!(b.wait().unwrap(), 0);
    /// b.abort();
    /// assert!(b.wait().unwrap_err().is_broken());
    /// assert_eq!((b.parties(), b.n_waiting(), b.broken()), (1, 0, true));
    /// ```
    Barrier(BarrierInner), parties: parties, n_waiting: n_waiting, broken: broken;
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
                monitor: Monitor {
                    state: Mutex::new(BarrierState {
                        count: 0,
                        generation: 0,
                        broken: false,
                        broken_passes: HashMap::new(),
                    }),
                    changed: Condvar::new(),
                },
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, BarrierState> {
        self.inner.monitor.lock()
    }

    /// Breaks the current pass, whose `sleepers` waiters will be told so.
    fn break_pass(&self, s: &mut BarrierState, sleepers: usize) {
        s.broken = true;
        if sleepers > 0 {
            s.broken_passes.insert(s.generation, sleepers);
        }
        s.generation += 1;
        s.count = 0;
        self.inner.monitor.changed.notify_all();
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BarrierError> {
        let mut s = self.state();
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
            self.inner.monitor.changed.notify_all();
            return Ok(index);
        }
        let (mut s, moved) = wait_until(&self.inner.monitor.changed, s, deadline, |s| {
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
        let mut s = self.state();
        let sleepers = s.count;
        self.break_pass(&mut s, sleepers);
    }

    /// Fails the current waiters (if any) and makes the barrier usable again.
    pub fn reset(&self) {
        let mut s = self.state();
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
        let s = self.state();
        if s.broken {
            0
        } else {
            s.count
        }
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.state().broken
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
#[derive(Clone)]
pub struct Value<T: Pod> {
    data: Arc<Mutex<T>>,
    lock: Lock,
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
#[derive(Clone)]
pub struct Array<T: Pod> {
    data: Arc<Mutex<Vec<T>>>,
    len: usize,
    lock: Lock,
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
