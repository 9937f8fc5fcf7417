//! How a target function travels: an offset from a fixed symbol, plus a build identity.
//!
//! A target is a `fn` item or a closure that captures nothing, so its type is zero-sized and
//! every value of it is the same. [`entry_offset`] monomorphises [`trampoline`] for the target,
//! its argument and its return type, and returns the trampoline's address relative to
//! [`anchor`], a function of this crate. The child, the same image loaded at another base
//! (ASLR), adds the offset to its own `anchor` address. [`BuildId`] makes sure the child is the
//! same image: otherwise the offset would point anywhere.

use processing_core::{codec, handles, OwnedOsHandle};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// What a target produced: its encoded return value and the OS handles inside it, or why the
/// arguments or the value could not travel.
pub(crate) type Outcome = Result<(Vec<u8>, Vec<OwnedOsHandle>), processing_core::ErrorChain>;

/// The monomorphised entry that decodes the arguments, calls the target and encodes its value.
pub(crate) type Trampoline = fn(&[u8], Vec<OwnedOsHandle>) -> Outcome;

/// The fixed symbol offsets are measured from.
#[inline(never)]
fn anchor() -> u32 {
    std::hint::black_box(0x7072_6f63)
}

/// A second fixed symbol: its distance from [`anchor`] is a property of the linked image.
#[inline(never)]
fn layout_probe() -> u32 {
    std::hint::black_box(0x6573_7369)
}

fn address_of_anchor() -> i64 {
    let f: fn() -> u32 = anchor;
    f as usize as i64
}

/// Decodes `A`, runs the target `F` and encodes its `R`.
fn trampoline<F, A, R>(args: &[u8], fds: Vec<OwnedOsHandle>) -> Outcome
where
    F: Fn(A) -> R + 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    let args: A = handles::provide(fds, || codec::decode(args)).map_err(|e| {
        processing_core::ErrorChain::with_source("cannot decode the target's arguments", &e)
    })?;
    // SAFETY: `entry_offset::<F, A, R>` (the only way to reach this function) asserted at
    // compile time that F is zero-sized; a zero-sized fn item or capture-less closure has no
    // bytes and no invariant, so reading one from a dangling, well-aligned pointer produces a
    // valid value.
    let target: F = unsafe { std::ptr::read(std::ptr::NonNull::<F>::dangling().as_ptr()) };
    let value = target(args);
    handles::collect(|| codec::encode(&value))
        .map_err(|e| processing_core::ErrorChain::with_source("cannot encode the return value", &e))
}

/// The offset of the trampoline for target `F` from the anchor.
///
/// Fails to compile (post-monomorphisation) if `F` captures anything.
pub(crate) fn entry_offset<F, A, R>() -> i64
where
    F: Fn(A) -> R + 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    const {
        assert!(
            std::mem::size_of::<F>() == 0,
            "a process target must be a fn item or a closure that captures nothing (use Process::fork for capturing closures)"
        )
    };
    let f: Trampoline = trampoline::<F, A, R>;
    (f as usize as i64).wrapping_sub(address_of_anchor())
}

/// The trampoline at `offset` from this image's anchor.
///
/// # Safety
/// `offset` must come from [`entry_offset`] in a process running the same image (checked by
/// comparing [`BuildId`]s).
pub(crate) unsafe fn resolve(offset: i64) -> Trampoline {
    let address = address_of_anchor().wrapping_add(offset) as usize;
    // SAFETY: per the contract, `address` is the address of a `Trampoline` function in this
    // very image, so it is a valid function pointer of that type.
    unsafe { std::mem::transmute::<usize, Trampoline>(address) }
}

/// The identity of the running image: a fingerprint of the executable file and a distance
/// between two symbols that the linker fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BuildId {
    image: u64,
    layout: i64,
}

impl BuildId {
    /// This process's identity (computed once).
    pub(crate) fn current() -> BuildId {
        static ID: std::sync::OnceLock<BuildId> = std::sync::OnceLock::new();
        *ID.get_or_init(|| {
            let probe: fn() -> u32 = layout_probe;
            BuildId {
                image: crate::sys::image_fingerprint(),
                layout: (probe as usize as i64).wrapping_sub(address_of_anchor()),
            }
        })
    }

    /// The identity as one number (what [`crate::build_identity`] returns).
    pub(crate) fn as_u64(self) -> u64 {
        fingerprint(&[self.image, self.layout as u64])
    }
}

/// FNV-1a over `parts` (a stable, dependency-free fingerprint; not a security measure).
pub(crate) fn fingerprint(parts: &[u64]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for byte in part.to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}
