//! Where results arrive: [`AsyncResult`], the groups that assemble map results, and the lazy
//! [`IMap`] iterator.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::core::{Group, Shared, Task};
use crate::task::EntryFn;
use crate::wait::{deadline, lock, wait_on};
use crate::PoolError;

#[cfg(feature = "async")]
#[path = "async_result.rs"]
mod async_result;

/// Dispatch state of a submission: how many of its tasks were handed to workers, and whether
/// it was cancelled (then no further task of it is dispatched).
#[derive(Debug, Default)]
pub(crate) struct Claims(AtomicU32);

const CANCELLED: u32 = 1 << 31;

impl Claims {
    /// A task is about to be dispatched.
    pub(crate) fn claim(&self) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                if v & CANCELLED != 0 {
                    None
                } else {
                    Some((v + 1).min(CANCELLED - 1))
                }
            })
            .is_ok()
    }
    /// Cancels if no task was dispatched yet.
    pub(crate) fn cancel(&self) -> bool {
        self.0
            .compare_exchange(0, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
    /// Dispatches nothing more (a part failed).
    pub(crate) fn stop(&self) {
        self.0.fetch_or(CANCELLED, Ordering::AcqRel);
    }
}

type OnSuccess<T> = Box<dyn FnOnce(&T) + Send>;
type OnError = Box<dyn FnOnce(&PoolError) + Send>;

/// Functions run when an asynchronous result is ready, before `get` can return it (Python's
/// `callback` and `error_callback`). They run on the pool's supervising thread that received
/// the result, so they should be quick.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use processing::{Callbacks, Pool};
/// use std::sync::mpsc;
/// fn square(x: u64) -> u64 { x * x }
/// let pool = Pool::new(2)?;
/// let (tx, rx) = mpsc::channel();
/// let r = pool.apply_async_with(square, 7, Callbacks::new().callback(move |v: &u64| tx.send(*v).unwrap()))?;
/// assert_eq!(r.get()?, 49);
/// assert_eq!(rx.recv()?, 49);
/// # Ok(()) }
/// ```
pub struct Callbacks<T> {
    on_success: Option<OnSuccess<T>>,
    on_error: Option<OnError>,
}

impl<T> Default for Callbacks<T> {
    fn default() -> Self {
        Callbacks {
            on_success: None,
            on_error: None,
        }
    }
}

impl<T> std::fmt::Debug for Callbacks<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks")
            .field("callback", &self.on_success.is_some())
            .field("error_callback", &self.on_error.is_some())
            .finish()
    }
}

impl<T> Callbacks<T> {
    /// No callbacks.
    pub fn new() -> Self {
        Self::default()
    }
    /// Runs `f` with the result when the task succeeds.
    pub fn callback(mut self, f: impl FnOnce(&T) + Send + 'static) -> Self {
        self.on_success = Some(Box::new(f));
        self
    }
    /// Runs `f` with the error when the task fails.
    pub fn error_callback(mut self, f: impl FnOnce(&PoolError) + Send + 'static) -> Self {
        self.on_error = Some(Box::new(f));
        self
    }
}

struct SlotState<T> {
    value: Option<Result<T, PoolError>>,
    /// Set by the first `set`: later ones are ignored.
    settled: bool,
    taken: bool,
    waiters: usize,
    /// Tasks awaiting the result (feature `async`), woken by `set`.
    wakers: Vec<std::task::Waker>,
    callbacks: Callbacks<T>,
}

/// A one-shot cell a result is delivered into.
pub(crate) struct Slot<T> {
    state: Mutex<SlotState<T>>,
    ready: AtomicBool,
    cond: Condvar,
}

impl<T> Slot<T> {
    pub(crate) fn new(callbacks: Callbacks<T>) -> Self {
        Slot {
            state: Mutex::new(SlotState {
                value: None,
                settled: false,
                taken: false,
                waiters: 0,
                wakers: Vec::new(),
                callbacks,
            }),
            ready: AtomicBool::new(false),
            cond: Condvar::new(),
        }
    }

    /// Delivers the result (the first delivery wins), after running the callbacks.
    pub(crate) fn set(&self, value: Result<T, PoolError>) {
        let callbacks = {
            let mut s = lock(&self.state);
            if s.settled {
                return;
            }
            s.settled = true;
            std::mem::take(&mut s.callbacks)
        };
        match (&value, callbacks) {
            (
                Ok(v),
                Callbacks {
                    on_success: Some(f),
                    ..
                },
            ) => f(v),
            (
                Err(e),
                Callbacks {
                    on_error: Some(f), ..
                },
            ) => f(e),
            _ => {}
        }
        let mut s = lock(&self.state);
        s.value = Some(value);
        self.ready.store(true, Ordering::Release);
        if s.waiters > 0 {
            self.cond.notify_all();
        }
        let wakers = std::mem::take(&mut s.wakers);
        drop(s);
        wakers.into_iter().for_each(std::task::Waker::wake);
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Waits until the result is there; `false` on timeout.
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.is_ready() {
            return true;
        }
        let mut s = lock(&self.state);
        while !self.is_ready() {
            s.waiters += 1;
            match wait_on(&self.cond, s, deadline) {
                Ok(g) => {
                    s = g;
                    s.waiters -= 1;
                }
                Err(mut g) => {
                    g.waiters -= 1;
                    return false;
                }
            }
        }
        true
    }

    fn take(&self, deadline: Option<Instant>) -> Result<T, PoolError> {
        if !self.wait_until(deadline) {
            return Err(PoolError::Timeout);
        }
        let mut s = lock(&self.state);
        if s.taken {
            return Err(PoolError::AlreadyTaken);
        }
        s.taken = true;
        s.value.take().unwrap_or(Err(PoolError::AlreadyTaken))
    }

    fn successful(&self) -> Option<bool> {
        if !self.is_ready() {
            return None;
        }
        let s = lock(&self.state);
        match &s.value {
            Some(v) => Some(v.is_ok()),
            None => s.taken.then_some(true),
        }
    }
}

/// The result of an asynchronous call (`apply_async`, `map_async`, `starmap_async`).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use processing::Pool;
/// fn square(x: u64) -> u64 { x * x }
/// let pool = Pool::new(2)?;
/// let r = pool.apply_async(square, 9)?;
/// r.wait();
/// assert!(r.ready());
/// assert_eq!(r.successful(), Some(true));
/// assert_eq!(r.get()?, 81);
/// # Ok(()) }
/// ```
pub struct AsyncResult<T> {
    slot: Arc<Slot<T>>,
    cancel: Arc<dyn Fn() -> bool + Send + Sync>,
    /// Polled as a future and not completed: dropping it cancels a task not yet started.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    awaited: bool,
}

impl<T> std::fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.slot.is_ready())
            .finish()
    }
}

impl<T> AsyncResult<T> {
    pub(crate) fn new(slot: Arc<Slot<T>>, cancel: Arc<dyn Fn() -> bool + Send + Sync>) -> Self {
        AsyncResult {
            slot,
            cancel,
            awaited: false,
        }
    }

    /// The handle of `group`'s result `slot`: cancelling it claims the group (through
    /// `claims`) before any worker does, and then fails the result with
    /// [`PoolError::Cancelled`].
    pub(crate) fn cancellable<G: Send + Sync + 'static>(
        slot: Arc<Slot<T>>,
        group: Arc<G>,
        claims: fn(&G) -> &Claims,
    ) -> Self
    where
        T: Send + 'static,
    {
        let result = slot.clone();
        let cancel = move || {
            if claims(&group).cancel() {
                result.set(Err(PoolError::Cancelled));
                true
            } else {
                false
            }
        };
        AsyncResult::new(slot, Arc::new(cancel))
    }

    /// Waits for the result and returns it (or the task's error).
    pub fn get(self) -> Result<T, PoolError> {
        self.slot.take(None)
    }

    /// Waits at most `timeout`. On [`PoolError::Timeout`] the task goes on and the result can
    /// still be fetched; a result returned once is gone ([`PoolError::AlreadyTaken`] after).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, PoolError> {
        self.slot.take(deadline(timeout))
    }

    /// Waits until the result is there.
    pub fn wait(&self) {
        self.slot.wait_until(None);
    }

    /// Waits at most `timeout`; whether the result is there.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.slot.wait_until(deadline(timeout))
    }

    /// Whether the result is there.
    pub fn ready(&self) -> bool {
        self.slot.is_ready()
    }

    /// `None` while not ready; then whether the call succeeded.
    pub fn successful(&self) -> Option<bool> {
        self.slot.successful()
    }

    /// Cancels the call if none of its tasks was handed to a worker yet; `true` if so (the
    /// result is then [`PoolError::Cancelled`]). A started task runs to its end.
    pub fn cancel(&self) -> bool {
        (self.cancel)()
    }
}

/// An `apply_async`: one task of one argument.
pub(crate) struct ApplyGroup<R> {
    claims: Claims,
    slot: Arc<Slot<R>>,
}

impl<R: DeserializeOwned + Send + 'static> ApplyGroup<R> {
    pub(crate) fn submit(
        shared: &Shared,
        entry: EntryFn,
        input: Vec<u8>,
        callbacks: Callbacks<R>,
    ) -> Result<AsyncResult<R>, PoolError> {
        let slot = Arc::new(Slot::new(callbacks));
        let group = Arc::new(ApplyGroup {
            claims: Claims::default(),
            slot: slot.clone(),
        });
        shared.submit([Task::new(entry, input, group.clone(), 0)])?;
        Ok(AsyncResult::cancellable(slot, group, |g| &g.claims))
    }
}

impl<R: DeserializeOwned + Send> Group for ApplyGroup<R> {
    fn claim(&self) -> bool {
        self.claims.claim()
    }
    fn complete(&self, _index: usize, outcome: Result<&[u8], PoolError>) {
        let value = outcome.and_then(|bytes| {
            let mut v: Vec<R> = processing_core::codec::decode(bytes)?;
            v.pop()
                .ok_or_else(|| PoolError::Codec("a task returned no result".into()))
        });
        self.slot.set(value);
    }
}

struct MapParts<R> {
    chunks: Vec<Option<Vec<R>>>,
    remaining: usize,
    failed: bool,
}

/// A `map_async`: a known number of chunks assembled in order.
pub(crate) struct MapGroup<R> {
    claims: Claims,
    slot: Arc<Slot<Vec<R>>>,
    parts: Mutex<MapParts<R>>,
    progress: Option<crate::progress::Progress>,
}

impl<R: DeserializeOwned + Send + 'static> MapGroup<R> {
    /// Submits `n` chunks (encoded inputs and their lengths) as one map, each as soon as it
    /// is encoded so that the workers start while the rest is being encoded.
    pub(crate) fn submit(
        shared: &Shared,
        entry: EntryFn,
        n: usize,
        chunks: impl Iterator<Item = Result<(Vec<u8>, usize), PoolError>>,
        callbacks: Callbacks<Vec<R>>,
        progress: Option<crate::progress::Progress>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError> {
        let slot = Arc::new(Slot::new(callbacks));
        let group = Arc::new(MapGroup {
            claims: Claims::default(),
            slot: slot.clone(),
            parts: Mutex::new(MapParts {
                chunks: (0..n).map(|_| None).collect(),
                remaining: n,
                failed: false,
            }),
            progress,
        });
        if n == 0 {
            group.slot.set(Ok(Vec::new()));
        }
        let dyn_group: Arc<dyn Group> = group.clone();
        for (i, chunk) in chunks.enumerate() {
            let submitted = chunk.and_then(|(input, _len)| {
                shared.submit([Task::new(entry, input, dyn_group.clone(), i)])
            });
            if let Err(e) = submitted {
                if i == 0 {
                    return Err(e);
                }
                // Part of the map is queued: it fails as a whole, as if that chunk had failed.
                dyn_group.complete(i, Err(e));
                break;
            }
        }
        Ok(AsyncResult::cancellable(slot, group, |g| &g.claims))
    }
}

impl<R: DeserializeOwned + Send> Group for MapGroup<R> {
    fn claim(&self) -> bool {
        self.claims.claim()
    }
    fn complete(&self, index: usize, outcome: Result<&[u8], PoolError>) {
        if lock(&self.parts).failed {
            return;
        }
        let decoded = outcome.and_then(|bytes| {
            processing_core::codec::decode::<Vec<R>>(bytes).map_err(PoolError::from)
        });
        match decoded {
            Err(e) => {
                // The first failure (in time) is the map's error; nothing more is dispatched.
                lock(&self.parts).failed = true;
                self.claims.stop();
                if let Some(p) = &self.progress {
                    p.abandon();
                }
                self.slot.set(Err(e));
            }
            Ok(values) => {
                if let Some(p) = &self.progress {
                    p.inc(values.len());
                }
                let assembled = {
                    let mut parts = lock(&self.parts);
                    if parts.failed {
                        return;
                    }
                    if let Some(place) = parts.chunks.get_mut(index) {
                        *place = Some(values);
                    }
                    parts.remaining -= 1;
                    if parts.remaining > 0 {
                        return;
                    }
                    std::mem::take(&mut parts.chunks)
                };
                let total = assembled
                    .iter()
                    .map(|c| c.as_ref().map_or(0, Vec::len))
                    .sum();
                let mut out = Vec::with_capacity(total);
                for chunk in assembled.into_iter().flatten() {
                    out.extend(chunk);
                }
                if let Some(p) = &self.progress {
                    p.finish();
                }
                self.slot.set(Ok(out));
            }
        }
    }
}

/// One item per input of a chunk: its value or its error.
type ChunkItems<R> = Vec<Result<R, PoolError>>;

struct ImapState<R> {
    /// Finished chunks by index (ordered), or in arrival order (unordered).
    done: BTreeMap<usize, ChunkItems<R>>,
    arrivals: VecDeque<usize>,
    waiting: bool,
    /// The number of inputs of each chunk not finished yet (a chunk that fails as a whole
    /// yields its error once per input).
    lens: BTreeMap<usize, usize>,
    /// Chunks finished, and all chunks once the input ended (then the bar finishes).
    completed: usize,
    total: Option<usize>,
    /// The task awaiting the next chunk (feature `async`), woken by `complete`.
    waker: Option<std::task::Waker>,
}

/// An `imap`/`imap_unordered`: chunks submitted lazily by the iterator.
pub(crate) struct ImapGroup<R> {
    claims: Claims,
    state: Mutex<ImapState<R>>,
    cond: Condvar,
    progress: Option<crate::progress::Progress>,
}

impl<R: DeserializeOwned + Send> Group for ImapGroup<R> {
    fn claim(&self) -> bool {
        self.claims.claim()
    }
    fn complete(&self, index: usize, outcome: Result<&[u8], PoolError>) {
        let decoded = outcome.and_then(|bytes| {
            processing_core::codec::decode::<Vec<Result<R, crate::task::ItemError>>>(bytes)
                .map_err(PoolError::from)
        });
        let mut s = lock(&self.state);
        let len = s.lens.remove(&index).unwrap_or(1);
        let items: ChunkItems<R> = match decoded {
            Ok(items) if items.len() == len => items
                .into_iter()
                .map(|r| r.map_err(PoolError::from))
                .collect(),
            Ok(items) => {
                let e = PoolError::Codec(
                    format!("a chunk of {len} inputs returned {} results", items.len()).into(),
                );
                (0..len).map(|_| Err(e.clone())).collect()
            }
            Err(e) => (0..len).map(|_| Err(e.clone())).collect(),
        };
        if let Some(p) = &self.progress {
            p.inc(items.len());
        }
        s.completed += 1;
        if s.total == Some(s.completed) {
            if let Some(p) = &self.progress {
                p.finish();
            }
        }
        s.done.insert(index, items);
        s.arrivals.push_back(index);
        if s.waiting {
            self.cond.notify_all();
        }
        let waker = s.waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Pulls the next chunk from the input: its encoded arguments (or why they cannot travel) and
/// its number of inputs.
pub(crate) type ChunkSource<'a> =
    Box<dyn FnMut() -> Option<(Result<Vec<u8>, PoolError>, usize)> + 'a>;

/// The lazy iterator of [`Pool::imap`](crate::Pool::imap) and
/// [`Pool::imap_unordered`](crate::Pool::imap_unordered).
///
/// It pulls from its input on the caller's thread, a bounded number of chunks ahead of what
/// was consumed, so an endless input works. It yields exactly one item per input (`imap`: in
/// input order): its value, or its own error (a panic fails only that input; a lost worker or
/// a timeout fails each input of the chunk it was running, and so do a chunk's arguments that
/// do not encode or reach 2 GiB). Dropping it drops the chunks not yet started.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use processing::Pool;
/// fn square(x: u64) -> u64 { x * x }
/// let pool = Pool::new(2)?;
/// let first: Vec<u64> = pool.imap(square, 0u64..)?.take(5).collect::<Result<_, _>>()?;
/// assert_eq!(first, [0, 1, 4, 9, 16]);
/// # Ok(()) }
/// ```
pub struct IMap<'a, R> {
    shared: Arc<Shared>,
    group: Arc<ImapGroup<R>>,
    entry: EntryFn,
    source: Option<ChunkSource<'a>>,
    ordered: bool,
    lookahead: usize,
    submitted: usize,
    yielded_chunks: usize,
    current: std::vec::IntoIter<Result<R, PoolError>>,
    _not_send: PhantomData<*const ()>,
}

impl<R> std::fmt::Debug for IMap<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IMap")
            .field("ordered", &self.ordered)
            .field("lookahead", &self.lookahead)
            .field("submitted", &self.submitted)
            .field("yielded_chunks", &self.yielded_chunks)
            .finish_non_exhaustive()
    }
}

impl<'a, R: DeserializeOwned + Send + 'static> IMap<'a, R> {
    pub(crate) fn start(
        shared: Arc<Shared>,
        entry: EntryFn,
        source: ChunkSource<'a>,
        ordered: bool,
        lookahead: usize,
        progress: Option<crate::progress::Progress>,
    ) -> Result<Self, PoolError> {
        if !shared.is_running() {
            return Err(PoolError::Closed);
        }
        let group = Arc::new(ImapGroup {
            claims: Claims::default(),
            state: Mutex::new(ImapState {
                done: BTreeMap::new(),
                arrivals: VecDeque::new(),
                waiting: false,
                lens: BTreeMap::new(),
                completed: 0,
                total: None,
                waker: None,
            }),
            cond: Condvar::new(),
            progress,
        });
        let mut it = IMap {
            shared,
            group,
            entry,
            source: Some(source),
            ordered,
            lookahead: lookahead.max(1),
            submitted: 0,
            yielded_chunks: 0,
            current: Vec::new().into_iter(),
            _not_send: PhantomData,
        };
        it.refill()?;
        Ok(it)
    }

    /// The most chunks this iterator keeps pulled ahead of the consumer.
    pub fn lookahead(&self) -> usize {
        self.lookahead
    }

    /// Pulls and submits chunks until `lookahead` are outstanding or the input ends.
    fn refill(&mut self) -> Result<(), PoolError> {
        while self.submitted - self.yielded_chunks < self.lookahead {
            let Some(source) = self.source.as_mut() else {
                return Ok(());
            };
            match source() {
                None => {
                    self.source = None;
                    let mut s = lock(&self.group.state);
                    s.total = Some(self.submitted);
                    if s.completed == self.submitted {
                        if let Some(p) = &self.group.progress {
                            p.finish();
                        }
                    }
                }
                Some((input, len)) => {
                    lock(&self.group.state).lens.insert(self.submitted, len);
                    match input {
                        Ok(input) => {
                            let group: Arc<dyn Group> = self.group.clone();
                            self.shared.submit([Task::new(
                                self.entry,
                                input,
                                group,
                                self.submitted,
                            )])?;
                        }
                        // A chunk that cannot travel (its arguments do not encode) fails
                        // alone, in its place: one error per input, as a failed task.
                        Err(e) => self.group.complete(self.submitted, Err(e)),
                    }
                    self.submitted += 1;
                }
            }
        }
        Ok(())
    }

    /// The next result, waiting at most `timeout` for it. `Ok(None)` at the end of the input;
    /// [`PoolError::Timeout`] if it did not come in time (call again to keep waiting).
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<R>, PoolError> {
        self.next_until(deadline(timeout))
    }

    fn next_until(&mut self, deadline: Option<Instant>) -> Result<Option<R>, PoolError> {
        loop {
            if let Some(item) = self.current.next() {
                return item.map(Some);
            }
            self.refill()?;
            if self.yielded_chunks == self.submitted {
                return Ok(None);
            }
            let chunk = {
                let mut s = lock(&self.group.state);
                loop {
                    let found = if self.ordered {
                        s.done.remove(&self.yielded_chunks)
                    } else {
                        let mut found = None;
                        while let Some(i) = s.arrivals.pop_front() {
                            if let Some(c) = s.done.remove(&i) {
                                found = Some(c);
                                break;
                            }
                        }
                        found
                    };
                    if let Some(c) = found {
                        break c;
                    }
                    s.waiting = true;
                    s = match wait_on(&self.group.cond, s, deadline) {
                        Ok(s) => s,
                        Err(mut s) => {
                            s.waiting = false;
                            return Err(PoolError::Timeout);
                        }
                    };
                    s.waiting = false;
                }
            };
            self.yielded_chunks += 1;
            self.current = chunk.into_iter();
        }
    }
}

impl<R: DeserializeOwned + Send + 'static> Iterator for IMap<'_, R> {
    type Item = Result<R, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_until(None).transpose()
    }
}

impl<R> Drop for IMap<'_, R> {
    fn drop(&mut self) {
        // Chunks still queued are not wanted any more.
        self.group.claims.stop();
        if let Some(p) = &self.group.progress {
            // Finished already if every input was counted; else it stops where it stood.
            p.abandon();
        }
    }
}
