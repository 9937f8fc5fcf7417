//! Custom shared types: a type the server holds and whose exposed methods clients call through a
//! typed proxy.
//!
//! Implement [`SharedObject`] (the dispatch) and [`SharedType`] (the identity and the proxy),
//! usually both at once with [`shared_type!`](crate::shared_type), then register the type with
//! [`ManagerBuilder::register`](crate::ManagerBuilder::register) on both the server and the
//! clients.

use std::collections::HashMap;

use serde::{de::DeserializeOwned, Serialize};

use crate::calls::{decode_request, Request};
use crate::error::{RemoteError, RemoteErrorKind};
use crate::protocol::TypeIdentity;
use crate::proxy::Proxy;

/// An object the manager server can hold, with its typed calls: a request enum (one variant per
/// exposed method, its fields the arguments), a reply enum, and the dispatch from one to the
/// other.
///
/// [`shared_type!`](crate::shared_type) writes all of this from a list of method signatures;
/// implementing it by hand gives the same shape. A request the type does not have (a variant
/// index beyond its methods, from another build) never reaches `dispatch`: the server answers
/// it with a [`RemoteError`] of kind `UnknownMethod`.
///
/// ```
/// use processing::manager::{Request, SharedObject};
/// use serde::{Deserialize, Serialize};
///
/// struct Flag(bool);
///
/// #[derive(Serialize, Deserialize)]
/// enum FlagRequest { Flip, Read }
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// enum FlagReply { Flipped(bool), Value(bool) }
///
/// impl Request for FlagRequest {
///     fn methods() -> &'static [&'static str] { &["flip", "read"] }
///     fn mutates(&self) -> bool { matches!(self, FlagRequest::Flip) }
/// }
///
/// impl SharedObject for Flag {
///     type Request = FlagRequest;
///     type Reply = FlagReply;
///     fn dispatch(&mut self, request: FlagRequest) -> FlagReply {
///         match request {
///             FlagRequest::Flip => { self.0 = !self.0; FlagReply::Flipped(self.0) }
///             FlagRequest::Read => FlagReply::Value(self.0),
///         }
///     }
/// }
/// let mut f = Flag(false);
/// assert_eq!(f.dispatch(FlagRequest::Flip), FlagReply::Flipped(true));
/// assert!(FlagRequest::Flip.mutates());
/// ```
pub trait SharedObject: Send + 'static {
    /// The request enum: one variant per exposed method.
    type Request: Request;
    /// The reply enum: one variant per exposed method, holding what it returned.
    type Reply: Serialize + DeserializeOwned;
    /// Applies one request to `self`.
    fn dispatch(&mut self, request: Self::Request) -> Self::Reply;
}

/// A [`SharedObject`] behind its wire: decodes a request, encodes the reply.
pub(crate) trait ErasedObject: Send {
    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, RemoteError>;
}

impl<T: SharedObject> ErasedObject for T {
    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let request = decode_request::<T::Request>(std::any::type_name::<T>(), request)?;
        let reply = self.dispatch(request);
        processing_core::codec::encode(&reply).map_err(RemoteError::bad_args)
    }
}

/// A custom type that can be created on a manager server and used through its typed proxy.
///
/// The initial value travels to the server with serde, so the type is `Serialize +
/// DeserializeOwned`. [`shared_type!`](crate::shared_type) implements this trait.
pub trait SharedType: SharedObject + Serialize + DeserializeOwned + Sized {
    /// The typed proxy clients use.
    type Proxy: Proxy;
    /// The exposed method signatures, as written; part of the type's identity.
    const SIGNATURE: &'static str;

    /// The identity client and server compare at connect time.
    fn identity() -> TypeIdentity {
        TypeIdentity::new(
            std::any::type_name::<Self>(),
            std::mem::size_of::<Self>(),
            Self::SIGNATURE,
        )
    }
}

type Constructor = fn(&[u8]) -> Result<Box<dyn ErasedObject>, RemoteError>;

fn construct<T: SharedType>(bytes: &[u8]) -> Result<Box<dyn ErasedObject>, RemoteError> {
    let value: T = processing_core::codec::decode(bytes)?;
    Ok(Box::new(value))
}

/// The custom types a server (or a client) knows, by type name.
#[derive(Default)]
pub(crate) struct TypeTable {
    by_name: HashMap<String, (TypeIdentity, Constructor)>,
}

impl std::fmt::Debug for TypeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl TypeTable {
    pub(crate) fn add<T: SharedType>(&mut self) {
        let id = T::identity();
        self.by_name.insert(id.name.clone(), (id, construct::<T>));
    }

    pub(crate) fn identity(&self, name: &str) -> Option<&TypeIdentity> {
        self.by_name.get(name).map(|(id, _)| id)
    }

    pub(crate) fn identities(&self) -> Vec<TypeIdentity> {
        self.by_name.values().map(|(id, _)| id.clone()).collect()
    }

    pub(crate) fn construct(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<Box<dyn ErasedObject>, RemoteError> {
        match self.by_name.get(name) {
            Some((_, make)) => make(bytes),
            None => Err(RemoteError::new(
                RemoteErrorKind::NotRegistered,
                format!("`{name}` is not registered on the manager server"),
            )),
        }
    }
}

/// A compile-time list of custom types, built by [`ManagerBuilder::register`](crate::ManagerBuilder::register):
/// `()` is empty, `(T, Rest)` adds `T`. A spawned server is started with a function
/// monomorphised over the list, so it registers the same types without any code travelling.
pub trait TypeList: Send + 'static {
    /// Adds every type of the list to `table`.
    #[doc(hidden)]
    fn add_to(table: &mut TypeTableRef<'_>);
}

/// Opaque access to a type table for [`TypeList`] implementations.
#[derive(Debug)]
pub struct TypeTableRef<'a>(pub(crate) &'a mut TypeTable);

impl TypeList for () {
    fn add_to(_: &mut TypeTableRef<'_>) {}
}

impl<T: SharedType, Rest: TypeList> TypeList for (T, Rest) {
    fn add_to(table: &mut TypeTableRef<'_>) {
        table.0.add::<T>();
        Rest::add_to(table);
    }
}

pub(crate) fn table_of<L: TypeList>() -> TypeTable {
    let mut table = TypeTable::default();
    L::add_to(&mut TypeTableRef(&mut table));
    table
}

/// Declares which methods of a type a manager exposes and generates its typed proxy.
///
/// The type must be `Serialize + Deserialize` (its initial value travels to the server) and
/// `Send + 'static`. Each listed method becomes callable through the proxy; nothing else is.
/// A proxy method returns `Result<R, ManagerError>` where `R` is the method's own return type,
/// so a method returning `Result<T, E>` gives back the method's error `E` as it was.
///
/// ```
/// use processing::manager::{shared_type, Manager};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// pub struct Counter { n: i64 }
/// impl Counter {
///     fn incr(&mut self, by: i64) -> i64 { self.n += by; self.n }
///     fn get(&self) -> i64 { self.n }
///     fn checked(&self, limit: i64) -> Result<i64, String> {
///         if self.n <= limit { Ok(self.n) } else { Err(format!("{} > {limit}", self.n)) }
///     }
/// }
/// shared_type! {
///     /// A counter held by the manager.
///     pub proxy CounterProxy for Counter {
///         fn incr(&mut self, by: i64) -> i64;
///         fn get(&self) -> i64;
///         fn checked(&self, limit: i64) -> Result<i64, String>;
///     }
/// }
///
/// let manager = Manager::builder().register::<Counter>().start_in_thread().unwrap();
/// let c: CounterProxy = manager.create(Counter { n: 1 }).unwrap();
/// assert_eq!(c.incr(41).unwrap(), 42);
/// assert_eq!(c.checked(10).unwrap(), Err("42 > 10".to_string()));
/// ```
#[macro_export]
macro_rules! shared_type {
    (
        $(#[$meta:meta])*
        $vis:vis proxy $proxy:ident for $ty:ty {
            $(
                $(#[$mmeta:meta])*
                fn $method:ident(& $recv:ident $($self_:ident)? $(, $arg:ident : $argty:ty)* $(,)?) $(-> $ret:ty)?;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis struct $proxy {
            raw: $crate::RawProxy,
        }

        const _: () = {
            use $crate::__private::serde;

            /// The wire index of each method: its position in the list.
            #[allow(non_camel_case_types, dead_code)]
            #[derive(Clone, Copy)]
            enum __Index { $($method),* }

            /// One variant per exposed method, its fields the arguments.
            #[allow(non_camel_case_types)]
            pub enum __Request { $($method { $($arg: $argty),* }),* }

            /// One variant per exposed method, holding what it returned.
            #[allow(non_camel_case_types)]
            pub enum __Reply { $($method($crate::shared_type!(@ret $($ret)?))),* }

            impl serde::Serialize for __Request {
                fn serialize<S: serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    match self {
                        $(__Request::$method { $($arg),* } => serde::Serialize::serialize(
                            &(__Index::$method as u32, ($($arg,)*)),
                            s,
                        ),)*
                    }
                }
            }

            impl<'de> $crate::__private::ByIndex<'de> for __Request {
                const EXPECTING: &'static str = "a request";
                fn read<A: serde::de::SeqAccess<'de>>(index: u32, seq: &mut A) -> ::std::result::Result<Self, A::Error> {
                    $(
                        if index == __Index::$method as u32 {
                            let ($($arg,)*): ($($argty,)*) = $crate::__private::next(seq)?;
                            return ::std::result::Result::Ok(__Request::$method { $($arg),* });
                        }
                    )*
                    ::std::result::Result::Err($crate::__private::unknown_index(index))
                }
            }
            $crate::shared_type!(@deserialize __Request);

            impl serde::Serialize for __Reply {
                fn serialize<S: serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    match self {
                        $(__Reply::$method(r) => serde::Serialize::serialize(&(__Index::$method as u32, r), s),)*
                    }
                }
            }

            impl<'de> $crate::__private::ByIndex<'de> for __Reply {
                const EXPECTING: &'static str = "a reply";
                fn read<A: serde::de::SeqAccess<'de>>(index: u32, seq: &mut A) -> ::std::result::Result<Self, A::Error> {
                    $(
                        if index == __Index::$method as u32 {
                            return ::std::result::Result::Ok(__Reply::$method($crate::__private::next(seq)?));
                        }
                    )*
                    ::std::result::Result::Err($crate::__private::unknown_index(index))
                }
            }
            $crate::shared_type!(@deserialize __Reply);

            impl $crate::Request for __Request {
                fn methods() -> &'static [&'static str] {
                    &[$(stringify!($method)),*]
                }
                fn mutates(&self) -> bool {
                    match self {
                        $(__Request::$method { .. } => $crate::shared_type!(@mutates $recv),)*
                    }
                }
            }

            impl $crate::SharedObject for $ty {
                type Request = __Request;
                type Reply = __Reply;
                fn dispatch(&mut self, request: __Request) -> __Reply {
                    match request {
                        $(__Request::$method { $($arg),* } => __Reply::$method(<$ty>::$method(self $(, $arg)*)),)*
                    }
                }
            }

            impl $crate::SharedType for $ty {
                type Proxy = $proxy;
                const SIGNATURE: &'static str = stringify!($( fn $method(& $recv $($self_)? $(, $arg : $argty)*) $(-> $ret)?; )*);
            }

            impl serde::Serialize for $proxy {
                fn serialize<S: serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    serde::Serialize::serialize(&self.raw, s)
                }
            }

            impl<'de> serde::Deserialize<'de> for $proxy {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    <$crate::RawProxy as serde::Deserialize<'de>>::deserialize(d).map(|raw| $proxy { raw })
                }
            }

            impl $crate::Proxy for $proxy {
                fn from_raw(raw: $crate::RawProxy) -> Self {
                    $proxy { raw }
                }
                fn as_raw(&self) -> &$crate::RawProxy {
                    &self.raw
                }
                fn tag() -> ::std::string::String {
                    ::std::string::String::from(::std::any::type_name::<$ty>())
                }
            }

            impl $proxy {
                $(
                    $(#[$mmeta])*
                    #[doc = concat!("Calls `", stringify!($method), "` on the shared object; returns after the server applied it.")]
                    #[allow(clippy::unused_unit)]
                    pub fn $method(&self $(, $arg: $argty)*) -> ::std::result::Result<$crate::shared_type!(@ret $($ret)?), $crate::ManagerError> {
                        match self.raw.request::<__Request, __Reply>(&__Request::$method { $($arg),* })? {
                            __Reply::$method(r) => ::std::result::Result::Ok(r),
                            #[allow(unreachable_patterns)]
                            _ => ::std::result::Result::Err($crate::__private::unexpected_reply(::std::any::type_name::<$ty>())),
                        }
                    }
                )*
            }
        };
    };
    (@deserialize $t:ident) => {
        impl<'de> $crate::__private::serde::Deserialize<'de> for $t {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                $crate::__private::deserialize_by_index(d)
            }
        }
    };
    (@ret) => { () };
    (@ret $ret:ty) => { $ret };
    (@mutates mut) => { true };
    (@mutates self) => { false };
}
