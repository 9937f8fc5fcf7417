//! `Shared<S>`: one primitive's state in its own segment, plus this process's way to sleep
//! on it. Serializes as the segment handle and re-attaches on the other side.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use processing_shm::SharedMemory;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::algo::lock::Me;
use crate::algo::SharedState;
use crate::error::SyncError;
use crate::sys::Parker;

struct Inner {
    shm: SharedMemory,
    park: Parker,
}

pub(crate) struct Shared<S: SharedState> {
    inner: Arc<Inner>,
    _state: PhantomData<S>,
}

impl<S: SharedState> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared {
            inner: self.inner.clone(),
            _state: PhantomData,
        }
    }
}

impl<S: SharedState> fmt::Debug for Shared<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.inner.shm.name())
    }
}

impl<S: SharedState> Shared<S> {
    /// A fresh zeroed state, then `init`.
    pub(crate) fn create(init: impl FnOnce(&S)) -> Result<Shared<S>, SyncError> {
        let shm = SharedMemory::create(std::mem::size_of::<S>())?;
        let shared = Shared::attach(shm)?;
        init(shared.state());
        Ok(shared)
    }

    fn attach(shm: SharedMemory) -> Result<Shared<S>, SyncError> {
        if shm.len() < std::mem::size_of::<S>() {
            return Err(SyncError::InvalidArgument(
                "segment too small for this primitive",
            ));
        }
        let park = Parker::new(shm.name())?;
        Ok(Shared {
            inner: Arc::new(Inner { shm, park }),
            _state: PhantomData,
        })
    }

    #[inline]
    pub(crate) fn state(&self) -> &S {
        // SAFETY: the segment is at least size_of::<S>() bytes (checked in `attach`) and
        // 4096-aligned; S: SharedState is valid for the all-zero pattern a fresh segment
        // holds and for any state other processes leave, consists of atomics that are meant
        // to be shared, and lives as long as `self.inner` keeps the mapping.
        unsafe { &*self.inner.shm.as_ptr().cast::<S>() }
    }

    #[inline]
    pub(crate) fn park(&self) -> &Parker {
        &self.inner.park
    }
}

/// The calling process, as lock words record it.
#[inline]
pub(crate) fn me() -> Me {
    Me::current()
}

impl<S: SharedState> Serialize for Shared<S> {
    fn serialize<Ser: Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        self.inner.shm.serialize(s)
    }
}

impl<'de, S: SharedState> Deserialize<'de> for Shared<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let shm = SharedMemory::deserialize(d)?;
        Shared::attach(shm).map_err(serde::de::Error::custom)
    }
}

/// A primitive whose state `$state` lives in its own segment, with the doc comments and
/// attributes given before its name: the struct (a clone is another handle to the same
/// primitive; it travels by serde and re-attaches) and `Debug` (its segment and `$shown`, the
/// value of `$show()`).
macro_rules! shared_primitive {
    ($(#[$attr:meta])* $name:ident($state:ty), $shown:ident: $show:ident) => {
        $(#[$attr])*
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            shared: $crate::shared::Shared<$state>,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("segment", &self.shared)
                    .field(stringify!($shown), &self.$show())
                    .finish()
            }
        }
    };
}
pub(crate) use shared_primitive;
