//! The typed calls of the manager: one request enum and one reply enum per shared type, used by
//! both the proxies (which build requests and match replies) and the server (which decodes
//! requests and answers with replies).
//!
//! A method exists once, as a request variant; its arguments are the variant's fields, checked
//! by the compiler on both sides; whether it changes the object is [`Request::mutates`]. On the
//! wire a request is its postcard encoding, whose first field is the variant index: a request
//! whose index the object does not know is answered with a [`RemoteError`] of kind
//! `UnknownMethod`, one whose fields do not decode with `BadArguments`.
//!
//! Expected outcomes (an empty queue, a lock already taken, a timeout, a release of an unlocked
//! lock) are reply variants, never remote errors: a remote error means the call itself failed.

use std::cell::Cell;
use std::time::Duration;

use serde::de::{DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{ManagerError, RemoteError};
use crate::protocol::Elem;
use crate::server::objects::{Init, Kind};

/// A request enum: one variant per method of a shared type, its fields the method's arguments.
///
/// Implemented by the built-in objects' requests and by the requests [`shared_type!`] declares
/// for a custom type.
///
/// [`shared_type!`]: crate::shared_type
pub trait Request: Serialize + DeserializeOwned {
    /// The method names in variant order (a method's wire index is its position).
    fn methods() -> &'static [&'static str];
    /// Whether this call changes the object.
    fn mutates(&self) -> bool;
}

/// Decodes a request for an object of `type_name`: an index past the type's methods is an
/// `UnknownMethod` error, fields that do not decode are `BadArguments`.
pub(crate) fn decode_request<R: Request>(
    type_name: &str,
    payload: &[u8],
) -> Result<R, RemoteError> {
    match processing_core::codec::decode::<R>(payload) {
        Ok(r) => Ok(r),
        Err(e) => {
            let methods = R::methods();
            match leading_varint(payload) {
                Some(i) if i >= methods.len() as u64 => Err(RemoteError::unknown_method(
                    type_name,
                    &format!("#{i}` (it has {}: {}) `", methods.len(), methods.join(", ")),
                )),
                _ => Err(RemoteError::bad_args(e)),
            }
        }
    }
}

/// The first LEB128 varint of `bytes` (postcard's enum variant index).
fn leading_varint(bytes: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().take(10).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The variant names of a derived serde enum, read from what its `Deserialize` passes to
/// `deserialize_enum` (no name is written twice).
pub(crate) fn variant_names<R: DeserializeOwned>() -> &'static [&'static str] {
    let seen = Cell::new(None);
    let _ = R::deserialize(Probe(&seen));
    seen.get().unwrap_or(&[])
}

struct Probe<'a>(&'a Cell<Option<&'static [&'static str]>>);

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("probe"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(Some(variants));
        Err(serde::de::Error::custom("probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

/// The error of a reply that is not one the request can have (a peer of another build).
pub(crate) fn unexpected_reply(type_name: &str) -> ManagerError {
    ManagerError::Incompatible(
        format!("the manager answered a {type_name} call with a reply that call cannot have")
            .into(),
    )
}

/// How long a blocking call may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Wait {
    /// One attempt, no waiting (`try_*`): the reply is `Full`/`Empty`/`WouldBlock`.
    No,
    /// At most this long (`*_timeout`): the reply is `Timeout` when it passes.
    For(Duration),
    /// As long as needed.
    Forever,
}

impl Wait {
    /// A `*_timeout` wait: `Duration::MAX` is for ever.
    pub(crate) fn timeout(d: Duration) -> Wait {
        if d == Duration::MAX {
            Wait::Forever
        } else {
            Wait::For(d)
        }
    }
}

/// Implements [`Request`] for a derived enum, listing the variants that change the object.
macro_rules! request {
    ($name:ident, mutating: [$($m:ident),*]) => {
        impl Request for $name {
            fn methods() -> &'static [&'static str] {
                variant_names::<Self>()
            }
            #[allow(unused_variables)]
            fn mutates(&self) -> bool {
                matches!(self, $($name::$m { .. })|*)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// the server itself (object 0)

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ControlRequest {
    Create {
        kind: Kind,
        tag: String,
        init: Init,
        name: Option<String>,
    },
    Lookup {
        name: String,
        tag: String,
    },
    Incref {
        id: u64,
    },
    Decref {
        id: u64,
    },
    Objects,
    Shutdown,
    Mailbox {
        path: String,
    },
}
request!(ControlRequest, mutating: [Create, Incref, Decref, Shutdown, Mailbox]);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ControlReply {
    Done,
    Created(u64),
    Found(Option<u64>),
    Objects(u64),
}

// ---------------------------------------------------------------------------------------------
// containers

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ListRequest {
    Push {
        item: Elem,
    },
    Extend {
        items: Vec<Elem>,
    },
    Insert {
        index: i64,
        item: Elem,
    },
    Get {
        index: i64,
    },
    Set {
        index: i64,
        item: Elem,
    },
    Slice {
        start: Option<i64>,
        end: Option<i64>,
    },
    Pop {
        index: Option<i64>,
    },
    Remove {
        value: Vec<u8>,
    },
    Index {
        value: Vec<u8>,
    },
    Count {
        value: Vec<u8>,
    },
    Contains {
        value: Vec<u8>,
    },
    Reverse,
    Len,
    Clear,
    ToVec,
    Snapshot,
    Permute {
        version: u64,
        order: Vec<u32>,
    },
}
request!(ListRequest, mutating: [Push, Extend, Insert, Set, Pop, Remove, Reverse, Clear, Permute]);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ListReply {
    Done,
    Item(Elem),
    Items(Vec<Elem>),
    /// `pop` of an empty list.
    Empty,
    Found(bool),
    Position(Option<u64>),
    Count(u64),
    Snapshot {
        version: u64,
        items: Vec<Elem>,
    },
    /// The list changed since the snapshot a permutation was computed from.
    Conflict,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum DictRequest {
    Get { key: Vec<u8> },
    Insert { key: Elem, value: Elem },
    Update { items: Vec<(Elem, Elem)> },
    Remove { key: Vec<u8> },
    ContainsKey { key: Vec<u8> },
    Keys,
    Values,
    Items,
    Len,
    Clear,
}
request!(DictRequest, mutating: [Insert, Update, Remove, Clear]);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum DictReply {
    Done,
    Value(Option<Elem>),
    Found(bool),
    Elems(Vec<Elem>),
    Items(Vec<(Elem, Elem)>),
    Len(u64),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum NamespaceRequest {
    Get { name: String },
    Set { name: String, value: Elem },
    Remove { name: String },
    Contains { name: String },
    Names,
}
request!(NamespaceRequest, mutating: [Set, Remove]);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum NamespaceReply {
    Done,
    Value(Option<Elem>),
    Found(bool),
    Names(Vec<String>),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ValueRequest {
    Get,
    Set { value: Elem },
    Swap { value: Elem },
}
request!(ValueRequest, mutating: [Set, Swap]);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ValueReply {
    Done,
    Value(Elem),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ArrayRequest {
    Get { index: i64 },
    Set { index: i64, item: Elem },
    Len,
    ToVec,
}
request!(ArrayRequest, mutating: [Set]);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ArrayReply {
    Done,
    Item(Elem),
    Items(Vec<Elem>),
    Len(u64),
}

// ---------------------------------------------------------------------------------------------
// queues

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum QueueRequest {
    Put {
        item: Elem,
        wait: Wait,
    },
    Get {
        wait: Wait,
    },
    Len,
    IsEmpty,
    IsFull,
    Close,
    IsClosed,
    /// Joinable queues only.
    TaskDone,
    /// Joinable queues only.
    Join {
        wait: Wait,
    },
    /// Waits until a put (`put`) or a get would not wait, taking nothing; replies
    /// `Flag(ready)` (a closed queue is ready: the next call says `Closed`). The wait of the
    /// async twins, whose taking call then runs without waiting.
    AwaitReady {
        put: bool,
        wait: Wait,
    },
}
request!(QueueRequest, mutating: [Put, Get, Close, TaskDone]);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum QueueReply {
    Done,
    Item(Elem),
    /// `try_put` found no room.
    Full,
    /// `try_get` found no item.
    Empty,
    /// The wait of a `*_timeout` call passed.
    Timeout,
    /// The queue is closed (and, for a get, drained).
    Closed,
    /// `task_done` called more times than items were put.
    TooMany,
    Len(u64),
    Flag(bool),
}

// ---------------------------------------------------------------------------------------------
// locks, semaphores, condition, event, barrier

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum LockRequest {
    Acquire {
        wait: Wait,
    },
    Release,
    Locked,
    /// Waits until the lock is free, taking nothing; replies `Locked(still_locked)`.
    AwaitFree {
        wait: Wait,
    },
}
request!(LockRequest, mutating: [Acquire, Release]);

/// The outcome of an acquire, shared by every lock-like object.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Acquired {
    Yes,
    WouldBlock,
    Timeout,
}

/// Why a release was refused, shared by every lock-like object.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Refused {
    NotLocked,
    NotOwner,
    Bound,
    Overflow,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum LockReply {
    Acquire(Acquired),
    Released,
    Refused(Refused),
    Locked(bool),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum SemaphoreRequest {
    Acquire {
        wait: Wait,
    },
    Release {
        n: u64,
    },
    Value,
    /// Waits until a unit is available, taking nothing; replies `Value(count)`.
    AwaitAvailable {
        wait: Wait,
    },
}
request!(SemaphoreRequest, mutating: [Acquire, Release]);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum SemaphoreReply {
    Acquire(Acquired),
    Released,
    Refused(Refused),
    Value(u64),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ConditionRequest {
    Acquire {
        wait: Wait,
    },
    Release,
    Wait {
        wait: Wait,
    },
    Notify {
        n: u64,
    },
    NotifyAll,
    /// The first step of an awaited wait, on the caller's connection, which holds the lock:
    /// releases it and registers a waiter (a ticket, tied to this connection until a waiting
    /// connection claims it). Does not wait.
    Enqueue,
    /// Claims `ticket` for this (waiting) connection and waits until it is notified or
    /// withdrawn. Takes nothing: a connection that closes withdraws the tickets it claimed,
    /// passing a notification it had on to the next waiter.
    AwaitNotified {
        ticket: u64,
        wait: Wait,
    },
    /// The last step of an awaited wait, on the caller's connection: takes the lock back with
    /// `count` levels (the ticket ends). `cancel`: the wait was given up (its future dropped):
    /// the ticket is withdrawn first, passing a notification it had on to the next waiter.
    Reacquire {
        ticket: u64,
        count: u32,
        cancel: bool,
        wait: Wait,
    },
    /// Waits until the lock is free; takes nothing.
    AwaitFree {
        wait: Wait,
    },
}
request!(ConditionRequest, mutating: [Acquire, Release, Wait, Notify, NotifyAll, Enqueue, Reacquire]);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ConditionReply {
    Acquire(Acquired),
    Released,
    Refused(Refused),
    /// A wait ended: notified (`true`) or timed out.
    Waited(bool),
    Notified,
    /// `wait`/`notify` by a caller that does not hold the lock.
    NotOwner,
    /// A registered waiter and the lock levels its caller held.
    Enqueued {
        ticket: u64,
        count: u32,
    },
    /// Whether the lock is held.
    Locked(bool),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum EventRequest {
    Set,
    Clear,
    IsSet,
    Wait { wait: Wait },
}
request!(EventRequest, mutating: [Set, Clear]);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum EventReply {
    Done,
    Flag(bool),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum BarrierRequest {
    Wait { wait: Wait },
    Abort,
    Reset,
    Parties,
    NWaiting,
    Broken,
}
request!(BarrierRequest, mutating: [Wait, Abort, Reset]);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum BarrierReply {
    Done,
    /// This caller's arrival index.
    Passed(u64),
    /// The barrier is (or became) broken by someone else.
    Broken,
    /// This caller's wait timed out (and broke the barrier).
    Timeout,
    Count(u64),
    Flag(bool),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RemoteErrorKind;

    #[test]
    fn method_names_come_from_the_enums() {
        assert_eq!(
            LockRequest::methods(),
            ["Acquire", "Release", "Locked", "AwaitFree"]
        );
        assert_eq!(QueueRequest::methods().len(), 10);
        assert!(!QueueRequest::AwaitReady {
            put: false,
            wait: Wait::Forever
        }
        .mutates());
        assert!(QueueRequest::Close.mutates());
        assert!(!QueueRequest::Len.mutates());
    }

    #[test]
    fn an_unknown_variant_index_is_an_unknown_method() {
        let e = decode_request::<LockRequest>("lock", &[4]).unwrap_err();
        assert!(e.is_unknown_method(), "{e}");
        let e = decode_request::<LockRequest>("lock", &[200, 1]).unwrap_err();
        assert!(e.is_unknown_method(), "{e}");
        // A known method with arguments that do not decode.
        let e = decode_request::<LockRequest>("lock", &[0, 9]).unwrap_err();
        assert_eq!(e.kind, RemoteErrorKind::BadArguments, "{e}");
        assert!(matches!(
            decode_request::<LockRequest>("lock", &[1]).unwrap(),
            LockRequest::Release
        ));
    }

    #[test]
    fn a_permutation_against_an_overflowing_version_is_a_conflict_not_a_panic() {
        let m = crate::Manager::start_in_thread().unwrap();
        let list = m.list_from([1u32, 2, 3]).unwrap();
        let request = ListRequest::Permute {
            version: u64::MAX,
            order: Vec::new(),
        };
        let reply: ListReply = crate::Proxy::as_raw(&list).request(&request).unwrap();
        assert!(matches!(reply, ListReply::Conflict), "{reply:?}");
        assert_eq!(list.to_vec().unwrap(), [1, 2, 3]);
    }
}
