//! `JoinableQueue` and `SimpleQueue` over a `Queue<T>`: what they add does not depend on where
//! the queue lives, so the process queues (here) and the thread twin (`processing::dummy`, in
//! processing-pool) expand the same definition next to their own `Queue`. A joinable queue's
//! `task_done`/`join`/`join_timeout` and its `Debug` read the unfinished count, which each side
//! keeps in its own way, and stay with each side. Not a public API.

/// Defines `JoinableQueue<T>` and `SimpleQueue<T>` as handles around the `Queue<T>` in scope,
/// with the doc comments given before each name and before `fn put` (the simple queue's put).
#[doc(hidden)]
#[macro_export]
macro_rules! __queue_wrappers {
    (
        $(#[$joinable:meta])* JoinableQueue;
        $(#[$simple:meta])* SimpleQueue;
        $(#[$put:meta])* fn put;
    ) => {
        $(#[$joinable])*
        pub struct JoinableQueue<T> {
            queue: Queue<T>,
        }

        $(#[$simple])*
        pub struct SimpleQueue<T> {
            queue: Queue<T>,
        }

        $crate::__queue_wrappers!(@handle JoinableQueue);
        $crate::__queue_wrappers!(@handle SimpleQueue);

        impl<T> ::std::ops::Deref for JoinableQueue<T> {
            type Target = Queue<T>;
            fn deref(&self) -> &Queue<T> {
                &self.queue
            }
        }

        impl<T> JoinableQueue<T> {
            /// A joinable queue of at most `n` items.
            pub fn bounded(n: usize) -> ::std::result::Result<JoinableQueue<T>, $crate::queue::QueueError> {
                Ok(JoinableQueue {
                    queue: Queue::bounded(n)?,
                })
            }

            /// The underlying queue handle.
            pub fn as_queue(&self) -> &Queue<T> {
                &self.queue
            }
        }

        impl<T> ::std::fmt::Debug for SimpleQueue<T> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct("SimpleQueue")
                    .field("queue", &self.queue)
                    .finish()
            }
        }

        impl<T> SimpleQueue<T> {
            /// Whether the queue holds no item.
            pub fn is_empty(&self) -> bool {
                self.queue.is_empty()
            }

            /// Closes the queue (see [`Queue::close`]).
            pub fn close(&self) {
                self.queue.close();
            }

            /// Whether the queue was closed.
            pub fn is_closed(&self) -> bool {
                self.queue.is_closed()
            }
        }

        impl<T: ::serde::Serialize> SimpleQueue<T> {
            $(#[$put])*
            pub fn put(&self, item: T) -> ::std::result::Result<(), $crate::queue::PutError<T>> {
                self.queue.put(item)
            }
        }

        impl<T: ::serde::de::DeserializeOwned> SimpleQueue<T> {
            /// Takes the oldest item, waiting as long as needed.
            pub fn get(&self) -> ::std::result::Result<T, $crate::queue::GetError> {
                self.queue.get()
            }
        }
    };
    // What both handles share: a clone is another handle, `new` makes a queue without an
    // item bound, and a handle travels as its queue.
    (@handle $name:ident) => {
        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                $name {
                    queue: self.queue.clone(),
                }
            }
        }

        impl<T> $name<T> {
            /// A new queue without an item bound.
            pub fn new() -> ::std::result::Result<$name<T>, $crate::queue::QueueError> {
                Ok($name {
                    queue: Queue::new()?,
                })
            }
        }

        impl<T> ::serde::Serialize for $name<T> {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                ::serde::Serialize::serialize(&self.queue, s)
            }
        }

        impl<'de, T> ::serde::Deserialize<'de> for $name<T> {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                Ok($name {
                    queue: <Queue<T> as ::serde::Deserialize<'de>>::deserialize(d)?,
                })
            }
        }
    };
}
