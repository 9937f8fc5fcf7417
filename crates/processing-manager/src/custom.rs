//! Custom shared types: a type the server holds and whose exposed methods clients call through a
//! typed proxy.
//!
//! Implement [`SharedObject`] (the dispatch) and [`SharedType`] (the identity and the proxy),
//! usually both at once with [`shared_type!`](crate::shared_type), then register the type with
//! [`ManagerBuilder::register`](crate::ManagerBuilder::register) on both the server and the
//! clients.

use std::collections::HashMap;

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{RemoteError, RemoteErrorKind};
use crate::protocol::TypeIdentity;
use crate::proxy::Proxy;

/// An object the manager server can hold and call methods on by name.
///
/// `call` receives the method name and its postcard-encoded argument tuple and returns the
/// postcard-encoded result. Only the names it matches are callable; anything else must be
/// [`RemoteError`] of kind `UnknownMethod` (the [`shared_type!`](crate::shared_type) macro does
/// this).
///
/// ```
/// use processing_manager::{RemoteError, SharedObject};
/// struct Flag(bool);
/// impl SharedObject for Flag {
///     fn call(&mut self, method: &str, _args: &[u8]) -> Result<Vec<u8>, RemoteError> {
///         match method {
///             "flip" => { self.0 = !self.0; Ok(processing_core::codec::encode(&self.0)?) }
///             _ => Err(RemoteError::new(processing_manager::RemoteErrorKind::UnknownMethod, method)),
///         }
///     }
/// }
/// let mut f = Flag(false);
/// assert_eq!(f.call("flip", &[]).unwrap(), [1]);
/// assert!(f.call("explode", &[]).unwrap_err().is_unknown_method());
/// ```
pub trait SharedObject: Send + 'static {
    /// Applies the method `method` to `self` with the encoded arguments `args`.
    fn call(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>, RemoteError>;
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

type Constructor = fn(&[u8]) -> Result<Box<dyn SharedObject>, RemoteError>;

fn construct<T: SharedType>(bytes: &[u8]) -> Result<Box<dyn SharedObject>, RemoteError> {
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
    ) -> Result<Box<dyn SharedObject>, RemoteError> {
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
/// use processing_manager::{shared_type, Manager};
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
                fn $method:ident(& $(mut)? self $(, $arg:ident : $argty:ty)* $(,)?) $(-> $ret:ty)?;
            )*
        }
    ) => {
        impl $crate::SharedObject for $ty {
            fn call(&mut self, method: &str, args: &[u8]) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::RemoteError> {
                match method {
                    $(
                        stringify!($method) => {
                            #[allow(unused_parens)]
                            let ($($arg,)*): ($($argty,)*) = $crate::__private::decode_args(args)?;
                            let result = <$ty>::$method(self $(, $arg)*);
                            $crate::__private::encode_result(&result)
                        }
                    )*
                    _ => ::std::result::Result::Err($crate::__private::unknown_method(
                        ::std::any::type_name::<$ty>(),
                        method,
                    )),
                }
            }
        }

        impl $crate::SharedType for $ty {
            type Proxy = $proxy;
            const SIGNATURE: &'static str = stringify!($( fn $method($($arg : $argty),*) $(-> $ret)?; )*);
        }

        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis struct $proxy {
            raw: $crate::RawProxy,
        }

        impl $crate::__private::Serialize for $proxy {
            fn serialize<S: $crate::__private::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                $crate::__private::Serialize::serialize(&self.raw, s)
            }
        }

        impl<'de> $crate::__private::Deserialize<'de> for $proxy {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                <$crate::RawProxy as $crate::__private::Deserialize<'de>>::deserialize(d).map(|raw| $proxy { raw })
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
                    self.raw.call(stringify!($method), &($($arg,)*))
                }
            )*
        }
    };
    (@ret) => { () };
    (@ret $ret:ty) => { $ret };
}
