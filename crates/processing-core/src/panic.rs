//! The text of a panic, as the process and pool layers report it.

use std::any::Any;

/// The message of a panic payload: the `&str` or `String` a `panic!` carries, else a
/// placeholder (a payload given to `std::panic::panic_any` of another type).
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
/// assert_eq!(processing::core::panic_message(&*payload), "boom 7");
/// let payload = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
/// assert_eq!(processing::core::panic_message(&*payload), "non-string panic payload");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
