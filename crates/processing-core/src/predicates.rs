//! [`predicates!`](crate::predicates): the `is_*()` classification methods of the workspace's
//! error types, written once.

/// Defines `is_*()` classification methods of an error type, one per line: each is true when
/// the error (or, with `by FIELD`, that field of it) matches the pattern.
///
/// Every error of the workspace classifies itself this way, so that a caller asks
/// `err.is_timeout()` (an inherent method: nothing to import) instead of matching on variants
/// that may grow. A predicate that looks deeper than one pattern (the OS error behind a chain)
/// is written as an ordinary method next to these.
///
/// ```
/// #[derive(Debug)]
/// pub enum FetchError<T> {
///     Timeout,
///     Refused(T),
/// }
/// processing::core::predicates! {
///     impl<T> FetchError<T> {
///         /// Whether the wait timed out.
///         is_timeout => Self::Timeout,
///         /// Whether the peer refused.
///         is_refused => Self::Refused(_),
///     }
/// }
///
/// #[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// enum Kind { Io, Setup }
/// pub struct StartError { kind: Kind }
/// processing::core::predicates! {
///     impl StartError by kind {
///         /// Whether the operating system refused.
///         is_io => Kind::Io,
///     }
/// }
///
/// assert!(FetchError::<u8>::Refused(1).is_refused());
/// assert!(!FetchError::<u8>::Timeout.is_refused());
/// assert!(StartError { kind: Kind::Io }.is_io());
/// assert!(!StartError { kind: Kind::Setup }.is_io());
/// ```
#[macro_export]
macro_rules! predicates {
    (
        impl $(<$($g:ident),+>)? $ty:ident $(<$($a:ident),+>)? by $field:ident {
            $($(#[$doc:meta])* $name:ident => $pat:pat),* $(,)?
        }
    ) => {
        impl $(<$($g),+>)? $ty $(<$($a),+>)? {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> bool {
                    ::core::matches!(self.$field, $pat)
                }
            )*
        }
    };
    (
        impl $(<$($g:ident),+>)? $ty:ident $(<$($a:ident),+>)? {
            $($(#[$doc:meta])* $name:ident => $pat:pat),* $(,)?
        }
    ) => {
        impl $(<$($g),+>)? $ty $(<$($a),+>)? {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> bool {
                    ::core::matches!(self, $pat)
                }
            )*
        }
    };
}
