//! `JoinableQueue` and `SimpleQueue` over a `Queue<T>`: what they add does not depend on where
//! the queue lives, so the process queues (here) and the thread twin (`processing::dummy`, in
//! processing-pool) expand the same definition next to their own `Queue`. A joinable queue's
//! `task_done`/`join`/`join_timeout` and its `Debug` read the unfinished count, which each side
//! keeps in its own way, and stay with each side. Not a public API.

/// Defines `JoinableQueue<T>` and `SimpleQueue<T>` as handles around the `Queue<T>` in scope,
/// documented once (the examples import them from the module `$path`).
#[doc(hidden)]
#[macro_export]
macro_rules! __queue_wrappers {
    (JoinableQueue, SimpleQueue in $path:literal) => {
        /// A [`Queue`] that also counts unfinished tasks: every put adds one,
        /// [`task_done`](JoinableQueue::task_done) removes one, and [`join`](JoinableQueue::join)
        /// waits for zero.
        ///
        #[doc = concat!("```\nuse ", $path, "::JoinableQueue;")]
        /// let q = JoinableQueue::new().unwrap();
        /// q.put(1u32).unwrap();
        /// let _item = q.get().unwrap();
        /// q.task_done().unwrap();
        /// q.join(); // every task is done
        /// assert!(q.task_done().unwrap_err().is_too_many());
        /// ```
        pub struct JoinableQueue<T> {
            queue: Queue<T>,
        }

        /// The simplest queue, as Python's `SimpleQueue`: `put`, blocking `get`, `is_empty`,
        /// `close` (and `is_closed`), with the error types of [`Queue`].
        ///
        #[doc = concat!("```\nuse ", $path, "::SimpleQueue;")]
        /// let q = SimpleQueue::new().unwrap();
        /// q.put("x".to_string()).unwrap();
        /// assert!(!q.is_empty());
        /// assert_eq!(q.get().unwrap(), "x");
        /// q.close();
        /// assert!(q.is_closed());
        /// assert!(q.get().unwrap_err().is_closed());
        /// assert_eq!(q.put("y".to_string()).unwrap_err().into_inner(), "y");
        /// ```
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
            /// Puts `item`; a failed put hands it back.
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

/// Defines `Queue<T>`, a handle around an `Arc` of `$state` in field `$field`, with what the
/// process queue and the thread twin share beyond their state, documented once (the examples
/// name the type by `$path`): the struct (with the doc comments given before its name; a clone
/// is another handle to the same queue), a private `from_state`, `new` and `bounded` (through
/// the `QueueBuilder` in scope), and the put and get families over the queue's own
/// `put_until(&T, Deadline) -> Result<(), PutFailure>` and
/// `get_until(Deadline) -> Result<T, GetFailure>` (`Deadline`: [`crate::Deadline`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __queue_handle {
    ($(#[$queue:meta])* pub struct Queue<T>($field:ident: $state:ty) as $path:literal;) => {
        $(#[$queue])*
        pub struct Queue<T> {
            $field: ::std::sync::Arc<$state>,
            _items: ::std::marker::PhantomData<fn(T) -> T>,
        }

        impl<T> Clone for Queue<T> {
            fn clone(&self) -> Self {
                Queue::from_state(self.$field.clone())
            }
        }

        impl<T> Queue<T> {
            fn from_state($field: ::std::sync::Arc<$state>) -> Queue<T> {
                Queue {
                    $field,
                    _items: ::std::marker::PhantomData,
                }
            }

            /// A queue without an item bound.
            ///
            #[doc = concat!("```\nlet q = ", $path, "::<u8>::new().unwrap();\nassert!(q.is_empty());\n```")]
            pub fn new() -> ::std::result::Result<Queue<T>, $crate::queue::QueueError> {
                QueueBuilder::new().build()
            }

            /// A queue of at most `n` items (`n ≥ 1`; 0 is `QueueError::InvalidArgument`).
            ///
            #[doc = concat!("```\nlet q = ", $path, "::bounded(1).unwrap();\nq.put(1u8).unwrap();\nassert!(q.is_full());\n```")]
            pub fn bounded(n: usize) -> ::std::result::Result<Queue<T>, $crate::queue::QueueError> {
                QueueBuilder::new().max_items(n).build()
            }
        }

        impl<T: ::serde::Serialize> Queue<T> {
            /// Puts `item`, waiting for room as long as needed; a failed put hands the item
            /// back inside the `PutError` (`Closed`, `Encode`, `Spill`).
            pub fn put(&self, item: T) -> ::std::result::Result<(), $crate::queue::PutError<T>> {
                self.put_until(&item, $crate::Deadline::Never)
                    .map_err(|f| f.put(item))
            }

            /// Puts `item`, waiting at most `timeout` for room (`Duration::MAX`: as long as
            /// needed, zero: one attempt); `PutTimeoutError::Timeout` hands the item back when
            /// no room came.
            pub fn put_timeout(
                &self,
                item: T,
                timeout: ::std::time::Duration,
            ) -> ::std::result::Result<(), $crate::queue::PutTimeoutError<T>> {
                self.put_until(&item, $crate::Deadline::after(timeout))
                    .map_err(|f| f.put_timeout(item))
            }

            /// Puts `item` if there is room now; `TryPutError::Full` hands the item back
            /// otherwise.
            pub fn try_put(&self, item: T) -> ::std::result::Result<(), $crate::queue::TryPutError<T>> {
                self.put_until(&item, $crate::Deadline::Now)
                    .map_err(|f| f.try_put(item))
            }
        }

        impl<T: ::serde::de::DeserializeOwned> Queue<T> {
            /// Takes the oldest item, waiting as long as needed (`GetError::Closed` once the
            /// queue is closed and drained).
            pub fn get(&self) -> ::std::result::Result<T, $crate::queue::GetError> {
                self.get_until($crate::Deadline::Never)
                    .map_err($crate::queue::GetFailure::get)
            }

            /// Takes the oldest item, waiting at most `timeout` (`Duration::MAX`: as long as
            /// needed, zero: one attempt); `GetTimeoutError::Timeout` when none came.
            pub fn get_timeout(
                &self,
                timeout: ::std::time::Duration,
            ) -> ::std::result::Result<T, $crate::queue::GetTimeoutError> {
                self.get_until($crate::Deadline::after(timeout))
                    .map_err($crate::queue::GetFailure::get_timeout)
            }

            /// Takes the oldest item if there is one now (`TryGetError::Empty` otherwise).
            pub fn try_get(&self) -> ::std::result::Result<T, $crate::queue::TryGetError> {
                self.get_until($crate::Deadline::Now)
                    .map_err($crate::queue::GetFailure::try_get)
            }
        }
    };
}
