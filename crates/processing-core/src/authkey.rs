//! The per-process authentication key.
//!
//! The main process draws a random 32-byte key the first time it is asked for; children
//! receive their parent's key over the bootstrap channel (never on a command line or in the
//! environment) and install it with [`set`]. Listener/Client and managers use it by default.

use std::sync::{Arc, RwLock};

/// Length of a freshly generated key, in bytes.
pub const GENERATED_LEN: usize = 32;

static KEY: RwLock<Option<Arc<[u8]>>> = RwLock::new(None);

/// The current process's authkey (generated on first use in the main process).
///
/// ```
/// let a = processing::core::authkey::get();
/// assert_eq!(a, processing::core::authkey::get());
/// assert!(!a.is_empty());
/// ```
pub fn get() -> Arc<[u8]> {
    if let Some(key) = KEY.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return key.clone();
    }
    let mut slot = KEY.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| random_bytes(GENERATED_LEN).into())
        .clone()
}

/// Replaces the current process's authkey (the bootstrap installs the parent's key with it).
///
/// ```
/// processing::core::authkey::set(b"secret".to_vec());
/// assert_eq!(&*processing::core::authkey::get(), b"secret");
/// ```
pub fn set(key: Vec<u8>) {
    *KEY.write().unwrap_or_else(|e| e.into_inner()) = Some(key.into());
}

/// `len` bytes from the operating system's random source.
///
/// ```
/// assert_eq!(processing::core::authkey::random_bytes(16).len(), 16);
/// ```
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    // The OS random source failing is not a runtime condition a caller can handle; fall back
    // to a time-and-pid mix rather than panic, so that a key is still unpredictable enough for
    // local use.
    if getrandom::getrandom(&mut buf).is_err() {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ (u128::from(std::process::id()) << 64);
        let mut x = seed as u64 | 1;
        for b in &mut buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    buf
}
