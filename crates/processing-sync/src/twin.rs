//! What the process-shared primitives and their thread twin (`processing::dummy`, in
//! processing-pool) share beyond their signatures: the limits of the shared layouts and the
//! methods whose logic does not depend on where the state lives (a guard's release on drop, a
//! condition's predicate loops and lock delegation, a bounded semaphore's delegation). The
//! macros expand in the module that names the types, so each side keeps its own types and the
//! logic is written once. Not a public API.

use crate::error::SyncError;

/// `value` as the 32-bit permit count of a semaphore's shared layout; more is refused, never
/// truncated.
pub fn semaphore_permits(value: usize) -> Result<u32, SyncError> {
    u32::try_from(value)
        .map_err(|_| SyncError::InvalidArgument("a semaphore holds at most u32::MAX permits"))
}

/// The permits of a bounded semaphore, which are also its bound: at least 1.
pub fn bounded_permits(value: usize) -> Result<u32, SyncError> {
    match semaphore_permits(value)? {
        0 => Err(SyncError::InvalidArgument(
            "a bounded semaphore needs a bound of at least 1",
        )),
        n => Ok(n),
    }
}

/// `parties` as the 32-bit count of a barrier's shared layout: at least 1.
pub fn barrier_parties(parties: usize) -> Result<u32, SyncError> {
    if parties == 0 {
        return Err(SyncError::InvalidArgument(
            "a barrier needs at least one party",
        ));
    }
    u32::try_from(parties)
        .map_err(|_| SyncError::InvalidArgument("a barrier holds at most u32::MAX parties"))
}

/// A guard `$guard<'a>` holding a `$target` (a `Lock`, one level of an `RLock` or a permit of
/// a `Semaphore`, each with a `release(&self) -> Result<(), ReleaseError>`), with the doc
/// comments given before its name: the struct (an `RLock`'s guard is tied to its thread), a
/// private `new`, `Debug` (the held object), `forget`, `release` and the release on drop.
#[doc(hidden)]
#[macro_export]
macro_rules! __release_guard {
    ($(#[$attr:meta])* $guard:ident: lock of $target:ident) => {
        $crate::__release_guard! {
            @lock $(#[$attr])* $guard, $target, (), "the lock",
            "Releases now, reporting the outcome (dropping the guard releases silently)."
        }
    };
    ($(#[$attr:meta])* $guard:ident: level of $target:ident) => {
        $crate::__release_guard! {
            @lock $(#[$attr])* $guard, $target, *const (), "this level",
            "Releases this level now, reporting the outcome."
        }
    };
    ($(#[$attr:meta])* $guard:ident: permit of $target:ident) => {
        $crate::__release_guard! {
            @guard $(#[$attr])*
            #[must_use = "the permit is returned when the guard is dropped"]
            $guard.sem: $target, marker ();
            "Keeps the permit (it is not returned on drop).",
            "Returns the permit now, reporting the outcome."
        }
    };
    (
        @lock $(#[$attr:meta])* $guard:ident, $target:ident, $marker:ty, $what:literal,
        $release:expr
    ) => {
        $crate::__release_guard! {
            @guard $(#[$attr])*
            #[must_use = "the lock is released when the guard is dropped"]
            $guard.lock: $target, marker $marker;
            concat!(
                "Keeps ",
                $what,
                " held past the guard (release it later with [`",
                stringify!($target),
                "::release`])."
            ),
            $release
        }
    };
    (
        @guard $(#[$attr:meta])*
        $guard:ident.$field:ident: $target:ident, marker $marker:ty;
        $forget:expr, $release:expr
    ) => {
        $(#[$attr])*
        pub struct $guard<'a> {
            $field: &'a $target,
            _marker: ::std::marker::PhantomData<$marker>,
        }

        impl<'a> $guard<'a> {
            fn new($field: &'a $target) -> Self {
                $guard {
                    $field,
                    _marker: ::std::marker::PhantomData,
                }
            }
        }

        impl ::std::fmt::Debug for $guard<'_> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($guard))
                    .field(stringify!($field), &self.$field)
                    .finish()
            }
        }

        impl $guard<'_> {
            #[doc = $forget]
            pub fn forget(self) {
                ::std::mem::forget(self);
            }

            #[doc = $release]
            pub fn release(self) -> ::std::result::Result<(), $crate::ReleaseError> {
                let held = self.$field;
                ::std::mem::forget(self);
                held.release()
            }
        }

        impl ::std::ops::Drop for $guard<'_> {
            fn drop(&mut self) {
                let _ = self.$field.release();
            }
        }
    };
}

/// `acquire`, `acquire_timeout` and `try_acquire` delegated to the field `$field`, whose guard
/// is `$guard`, with the doc comments given before each name.
#[doc(hidden)]
#[macro_export]
macro_rules! __delegate_acquire {
    (
        $field:ident, $guard:ident,
        $(#[$acquire:meta])* fn acquire;
        $(#[$timeout:meta])* fn acquire_timeout;
        $(#[$try:meta])* fn try_acquire;
    ) => {
        $(#[$acquire])*
        pub fn acquire(
            &self,
        ) -> ::std::result::Result<$guard<'_>, $crate::AcquireError<$guard<'_>>> {
            self.$field.acquire()
        }

        $(#[$timeout])*
        pub fn acquire_timeout(
            &self,
            timeout: ::std::time::Duration,
        ) -> ::std::result::Result<$guard<'_>, $crate::AcquireError<$guard<'_>>> {
            self.$field.acquire_timeout(timeout)
        }

        $(#[$try])*
        pub fn try_acquire(
            &self,
        ) -> ::std::result::Result<$guard<'_>, $crate::AcquireError<$guard<'_>>> {
            self.$field.try_acquire()
        }
    };
}

/// The methods of a `Condition` that only delegate to its recursive lock (field `lock` of type
/// `$rlock`, guard `$guard`) or loop over its `with_lock`, `wait_until(Option<Instant>)` and
/// `notify_n`.
#[doc(hidden)]
#[macro_export]
macro_rules! __condition_methods {
    ($rlock:ident, $guard:ident) => {
        /// Creates a condition with its own recursive lock.
        pub fn new() -> ::std::result::Result<Self, $crate::SyncError> {
            Self::with_lock($rlock::new()?)
        }

        /// The condition's lock.
        pub fn lock(&self) -> &$rlock {
            &self.lock
        }

        $crate::__delegate_acquire! {
            lock, $guard,
            /// Acquires the condition's lock (see [`RLock::acquire`]).
            fn acquire;
            /// Acquires the condition's lock, waiting at most `timeout`.
            fn acquire_timeout;
            /// Acquires the condition's lock if free now (or held by this thread);
            /// `AcquireError::WouldBlock` if another thread holds it.
            fn try_acquire;
        }

        fn check_owner(&self) -> ::std::result::Result<(), $crate::ConditionError> {
            if self.lock.is_owned() {
                Ok(())
            } else {
                Err($crate::ConditionError::NotOwner)
            }
        }

        /// Releases the lock, waits for a notification and re-acquires the lock.
        pub fn wait(&self) -> ::std::result::Result<(), $crate::ConditionError> {
            self.wait_until(None).map(|_| ())
        }

        /// As [`wait`](Self::wait), for at most `timeout`; returns false on timeout.
        pub fn wait_timeout(
            &self,
            timeout: ::std::time::Duration,
        ) -> ::std::result::Result<bool, $crate::ConditionError> {
            self.wait_until(::std::time::Instant::now().checked_add(timeout))
        }

        /// Waits until `predicate` returns true (checked under the lock, first before waiting).
        pub fn wait_for(
            &self,
            mut predicate: impl FnMut() -> bool,
        ) -> ::std::result::Result<(), $crate::ConditionError> {
            self.check_owner()?;
            while !predicate() {
                self.wait_until(None)?;
            }
            Ok(())
        }

        /// As [`wait_for`](Self::wait_for), for at most `timeout`; returns the predicate's last
        /// value.
        pub fn wait_for_timeout(
            &self,
            mut predicate: impl FnMut() -> bool,
            timeout: ::std::time::Duration,
        ) -> ::std::result::Result<bool, $crate::ConditionError> {
            self.check_owner()?;
            let deadline = ::std::time::Instant::now().checked_add(timeout);
            loop {
                if predicate() {
                    return Ok(true);
                }
                if deadline.is_some_and(|d| ::std::time::Instant::now() >= d) {
                    return Ok(false);
                }
                self.wait_until(deadline)?;
            }
        }

        /// Wakes one waiter.
        pub fn notify(&self) -> ::std::result::Result<(), $crate::ConditionError> {
            self.notify_n(1)
        }

        /// Wakes every current waiter.
        pub fn notify_all(&self) -> ::std::result::Result<(), $crate::ConditionError> {
            self.notify_n(usize::MAX)
        }
    };
}

/// The methods of a `BoundedSemaphore` that delegate to its semaphore (field `inner`, guard
/// `$guard`).
#[doc(hidden)]
#[macro_export]
macro_rules! __bounded_semaphore_methods {
    ($guard:ident) => {
        $crate::__delegate_acquire! {
            inner, $guard,
            /// Takes a permit, waiting as long as it takes (see [`Semaphore::acquire`]).
            fn acquire;
            /// Takes a permit, waiting at most `timeout` ([`AcquireError::Timeout`] then).
            fn acquire_timeout;
            /// Takes a permit if one is free now; [`AcquireError::WouldBlock`] if none is.
            fn try_acquire;
        }

        /// Returns a permit; [`ReleaseError::Bound`] if that would exceed the bound.
        pub fn release(&self) -> ::std::result::Result<(), $crate::ReleaseError> {
            self.inner.release()
        }

        /// The number of free permits now.
        pub fn value(&self) -> usize {
            self.inner.value()
        }
    };
}
