//! A `fn()` that travels between processes of the same executable.
//!
//! It is sent as its offset from an anchor function of this crate (the executable image
//! moves as a whole under address-space randomisation) together with an identity of the
//! executable file; a receiver running another executable refuses it.

use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug)]
pub(crate) struct Action(pub(crate) fn());

#[inline(never)]
fn anchor() {}

/// Size and modification time of the running executable, hashed; 0 if unknown.
fn image_id() -> u64 {
    static ID: OnceLock<u64> = OnceLock::new();
    *ID.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        let Ok(meta) = std::env::current_exe().and_then(std::fs::metadata) else {
            return 0;
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        meta.len().hash(&mut h);
        meta.modified().ok().hash(&mut h);
        (anchor as fn() as usize)
            .wrapping_sub(image_id as fn() -> u64 as usize)
            .hash(&mut h);
        h.finish().max(1)
    })
}

#[derive(Serialize, Deserialize)]
struct Wire {
    offset: i64,
    image: u64,
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let offset = (self.0 as usize as i64).wrapping_sub(anchor as fn() as usize as i64);
        Wire {
            offset,
            image: image_id(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(d)?;
        let here = image_id();
        if here == 0 || wire.image != here {
            return Err(serde::de::Error::custom(
                "a barrier action can only travel to a process of the same executable",
            ));
        }
        let addr = (anchor as fn() as usize as i64).wrapping_add(wire.offset) as usize;
        // SAFETY: the sender computed the offset from the same anchor in the same executable
        // file (checked by its identity), whose image is mapped as one piece, so anchor +
        // offset is the address of the same `fn()` item in this process.
        let f = unsafe { std::mem::transmute::<usize, fn()>(addr) };
        Ok(Action(f))
    }
}
