//! What a worker runs: type-erased entry points and the panic capture around them.
//!
//! A task function is a fn item or a closure that captures nothing: a zero-sized type, so the
//! function is fully named by its type. For each `(function, argument, result)` combination the
//! pool instantiates [`Entries::chunk`], a plain `fn(&[u8], &mut Vec<u8>) -> Status` that decodes a
//! postcard sequence of arguments, calls the function on each and appends the encoded results.
//! A thread worker calls that pointer directly; a process worker receives it as an offset from
//! [`anchor`] (the worker is the same executable, so the offset names the same code).

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use processing_core::ErrorChain;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The type-erased entry of a task: input bytes to output bytes.
pub type EntryFn = fn(&[u8], &mut Vec<u8>) -> Status;

/// How a task ended, as the first byte of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// The output holds the encoded results.
    Ok = 0,
    /// The output holds an encoded `PanicReport`.
    Panic = 1,
    /// The output holds an encoded message (arguments that did not decode, results that did
    /// not encode).
    Codec = 2,
    /// The output holds an encoded [`PoolError`](crate::PoolError) (a backend that runs tasks
    /// elsewhere reports a timeout, a lost worker or exhausted deliveries this way).
    Error = 3,
}

impl Status {
    /// The status whose byte is `b`.
    pub fn from_u8(b: u8) -> Option<Status> {
        match b {
            0 => Some(Status::Ok),
            1 => Some(Status::Panic),
            2 => Some(Status::Codec),
            3 => Some(Status::Error),
            _ => None,
        }
    }
}

/// A panic inside a task, as it travels back to the parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PanicReport {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
}

/// The fixed symbol entry offsets are relative to.
#[inline(never)]
pub(crate) fn anchor(_: &[u8], _: &mut Vec<u8>) -> Status {
    Status::Ok
}

/// The offset of `entry` from `anchor`, for sending to a process worker.
pub fn entry_to_offset(entry: EntryFn) -> i64 {
    (entry as usize as i64).wrapping_sub(anchor as EntryFn as usize as i64)
}

/// The entry at `offset` from `anchor` in this image.
///
/// # Safety
/// `offset` must come from [`entry_to_offset`] in a process running the same executable image.
pub unsafe fn entry_from_offset(offset: i64) -> EntryFn {
    let address = (anchor as EntryFn as usize as i64).wrapping_add(offset) as usize;
    // SAFETY: by the caller's contract `address` is the address of an `EntryFn` of this image
    // (the same code at the same offset from the anchor); fn pointers and usize have one size.
    unsafe { std::mem::transmute::<usize, EntryFn>(address) }
}

/// Refuses at compile time (when monomorphised) a task type that is not zero-sized, i.e. not a
/// fn item or a capture-free closure.
#[inline(always)]
pub(crate) fn assert_stateless<F>() {
    const {
        assert!(
            std::mem::size_of::<F>() == 0,
            "a pool task must be a fn item or a closure that captures nothing"
        )
    };
}

/// Checks `f`'s type with [`assert_stateless`] and drops `f`: workers re-create the value from
/// the type alone ([`conjure`]).
#[inline(always)]
pub(crate) fn stateless<F>(f: F) {
    assert_stateless::<F>();
    let _ = f;
}

/// A value of a zero-sized function type.
///
/// Only called for types the public API checked to be zero-sized fn items or capture-free
/// closures, which have no state and no invariant a value could break.
pub(crate) fn conjure<F: Copy>() -> F {
    assert_stateless::<F>();
    // SAFETY: F is zero-sized (checked at compile time by `assert_stateless` above): a value of it holds no bytes,
    // so reading one from a dangling, well-aligned pointer produces a valid value; the
    // functions passed here are fn items and capture-free closures, which carry no invariant.
    unsafe { std::ptr::read(std::ptr::NonNull::<F>::dangling().as_ptr()) }
}

/// A function a pool task runs on a worker: `f(a)`, a fn item or a closure that captures
/// nothing (anything else is refused when the program is built). Implemented for every such
/// `Fn(A) -> R`; it names the bound every `map`-style method shares.
///
/// ```
/// fn square(x: u64) -> u64 { x * x }
/// fn takes<F: processing::pool::TaskFn<u64, u64>>(_: F) {}
/// takes(square);
/// takes(|x: u64| x + 1);
/// ```
pub trait TaskFn<A, R>: Fn(A) -> R + Copy + Send + Sync + 'static {}

impl<F, A, R> TaskFn<A, R> for F where F: Fn(A) -> R + Copy + Send + Sync + 'static {}

/// What a task's argument must be to reach a worker process: encoded by the caller, decoded
/// by the worker (serde, both ways). Implemented for every such type.
///
/// ```
/// fn takes<A: processing::pool::TaskArg>() {}
/// takes::<(u32, String)>();
/// ```
pub trait TaskArg: Serialize + DeserializeOwned {}

impl<T: Serialize + DeserializeOwned> TaskArg for T {}

/// What a task's result must be to come back from a worker and be handed to the waiting
/// thread. Implemented for every such type.
///
/// ```
/// fn takes<R: processing::pool::TaskResult>() {}
/// takes::<Vec<u8>>();
/// ```
pub trait TaskResult: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> TaskResult for T {}

/// A function of one (possibly tuple) argument that a worker can call.
pub(crate) trait Invoke<A, R>: Copy + Send + Sync + 'static {
    fn invoke(self, args: A) -> R;
}

/// `f(a)`.
#[derive(Clone, Copy)]
pub(crate) struct Direct<F>(pub(crate) F);

impl<F, A, R> Invoke<A, R> for Direct<F>
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
{
    #[inline(always)]
    fn invoke(self, args: A) -> R {
        (self.0)(args)
    }
}

/// `f(a, b, ...)` from a tuple `(a, b, ...)`.
#[derive(Clone, Copy)]
pub(crate) struct Spread<F>(pub(crate) F);

/// A function that takes its arguments spread out of a tuple, for [`Pool::starmap`](crate::Pool::starmap).
///
/// Implemented for every `Fn(A) -> R` (arguments `(A,)`) up to `Fn(A, B, C, D, E, F, G, H) -> R`.
///
/// ```
/// fn add(a: u32, b: u32) -> u32 { a + b }
/// fn takes<F: processing::pool::StarFn<(u32, u32), u32>>(_: F) {}
/// takes(add);
/// ```
pub trait StarFn<Args, R>: Copy + Send + Sync + 'static {
    /// Calls the function with the tuple's elements as arguments.
    fn call_spread(&self, args: Args) -> R;
}

macro_rules! star_fn {
    ($($name:ident),+) => {
        impl<Func, R, $($name),+> StarFn<($($name,)+), R> for Func
        where
            Func: Fn($($name),+) -> R + Copy + Send + Sync + 'static,
        {
            #[allow(non_snake_case)]
            #[inline(always)]
            fn call_spread(&self, args: ($($name,)+)) -> R {
                let ($($name,)+) = args;
                self($($name),+)
            }
        }
    };
}
star_fn!(A);
star_fn!(A, B);
star_fn!(A, B, C);
star_fn!(A, B, C, D);
star_fn!(A, B, C, D, E);
star_fn!(A, B, C, D, E, G);
star_fn!(A, B, C, D, E, G, H);
star_fn!(A, B, C, D, E, G, H, I);

impl<F, Args, R> Invoke<Args, R> for Spread<F>
where
    F: StarFn<Args, R>,
{
    #[inline(always)]
    fn invoke(self, args: Args) -> R {
        self.0.call_spread(args)
    }
}

thread_local! {
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that records the location of a panic inside a
/// task and keeps it off stderr (the panic travels back as the task's error); panics outside
/// tasks go to the hook that was there before.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_TASK.with(Cell::get) {
                let location = info.location().map(|l| l.to_string());
                LAST_PANIC.with(|p| *p.borrow_mut() = location);
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f` as task code: a panic becomes a [`PanicReport`].
pub(crate) fn catch_task<T>(f: impl FnOnce() -> T) -> Result<T, PanicReport> {
    IN_TASK.with(|t| t.set(true));
    LAST_PANIC.with(|p| *p.borrow_mut() = None);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    IN_TASK.with(|t| t.set(false));
    result.map_err(|payload| PanicReport {
        message: processing_core::panic_message(&*payload),
        location: LAST_PANIC.with(|p| p.borrow_mut().take()),
    })
}

/// Replaces what the entry appended after `start` with an encoded error.
fn write_error<E: Serialize>(out: &mut Vec<u8>, start: usize, status: Status, error: &E) -> Status {
    out.truncate(start);
    match processing_core::codec::encode_into(error, out) {
        Ok(()) => status,
        Err(_) => Status::Codec,
    }
}

/// [`write_error`] of the codec error `what`, caused by `e`.
fn codec_error(
    out: &mut Vec<u8>,
    start: usize,
    what: &str,
    e: &(dyn std::error::Error + 'static),
) -> Status {
    write_error(out, start, Status::Codec, &ErrorChain::with_source(what, e))
}

/// Decodes the next input of a chunk from `rest` and advances `rest` past it.
fn take_args<A: DeserializeOwned>(rest: &mut &[u8]) -> Result<A, ErrorChain> {
    let (args, tail) = postcard::take_from_bytes::<A>(rest)
        .map_err(|e| ErrorChain::with_source("cannot decode arguments", &e))?;
    *rest = tail;
    Ok(args)
}

/// The prologue of a chunk: reads the count of inputs and writes it to `out` as the count of
/// results; the inputs follow. A failure is already written as the chunk's codec error.
fn chunk_header<'a>(
    input: &'a [u8],
    out: &mut Vec<u8>,
    start: usize,
) -> Result<(u64, &'a [u8]), Status> {
    let (count, rest) = postcard::take_from_bytes::<u64>(input)
        .map_err(|e| codec_error(out, start, "cannot decode arguments", &e))?;
    if let Err(e) = postcard::to_io(&count, &mut *out) {
        return Err(codec_error(out, start, "cannot encode results", &e));
    }
    Ok((count, rest))
}

/// The codec error of a chunk whose inputs are followed by bytes that are none (every
/// `Status::Codec` payload is an [`ErrorChain`]).
fn trailing(rest: &[u8]) -> ErrorChain {
    ErrorChain::new(format!("{} trailing bytes after the arguments", rest.len()))
}

/// Why one input of an `imap` chunk has no result.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ItemError {
    /// The call panicked.
    Panic(PanicReport),
    /// Its result could not be encoded.
    Codec(ErrorChain),
}

impl From<ItemError> for crate::PoolError {
    fn from(e: ItemError) -> Self {
        match e {
            ItemError::Panic(PanicReport { message, location }) => {
                crate::PoolError::Panic { message, location }
            }
            ItemError::Codec(m) => crate::PoolError::Codec(m),
        }
    }
}

/// The entry points of the call `C` from `A` to `R`, each a plain
/// `fn(&[u8], &mut Vec<u8>) -> Status` ([`EntryFn`]). Both decode a chunk (the count of inputs,
/// then the postcard sequence of arguments) and append to `out` the count and then the results;
/// arguments that do not decode, or bytes after them, fail the chunk as a codec error.
pub(crate) struct Entries<C, A, R>(PhantomData<fn(C, A) -> R>);

impl<C, A, R> Entries<C, A, R>
where
    C: Invoke<A, R>,
    A: DeserializeOwned,
    R: Serialize,
{
    /// The results are the encoded sequence of `R`; a panic fails the chunk as a whole (`map`,
    /// `apply`).
    pub(crate) fn chunk(input: &[u8], out: &mut Vec<u8>) -> Status {
        Self::run(input, out, Self::whole)
    }

    /// Each input is called on its own: the results are the sequence of
    /// `Result<R, ItemError>`, so a panicking input fails alone and the others keep their
    /// values (`imap`, which yields one item per input).
    pub(crate) fn items(input: &[u8], out: &mut Vec<u8>) -> Status {
        Self::run(input, out, Self::each)
    }

    /// Reads the chunk's count (see [`chunk_header`]), then `body` calls `C` on its `count`
    /// inputs in `rest`, writing after `start`.
    fn run(
        input: &[u8],
        out: &mut Vec<u8>,
        body: fn(C, u64, &[u8], &mut Vec<u8>, usize) -> Status,
    ) -> Status {
        let start = out.len();
        match chunk_header(input, out, start) {
            Ok((count, rest)) => body(conjure(), count, rest, out, start),
            Err(status) => status,
        }
    }

    fn whole(call: C, count: u64, mut rest: &[u8], out: &mut Vec<u8>, start: usize) -> Status {
        let mut codec_error: Option<ErrorChain> = None;
        let outcome = catch_task(|| {
            for _ in 0..count {
                let args = match take_args::<A>(&mut rest) {
                    Ok(args) => args,
                    Err(chain) => {
                        codec_error = Some(chain);
                        return;
                    }
                };
                let result = call.invoke(args);
                if let Err(e) = postcard::to_io(&result, &mut *out) {
                    codec_error = Some(ErrorChain::with_source("cannot encode result", &e));
                    return;
                }
            }
            if !rest.is_empty() {
                codec_error = Some(trailing(rest));
            }
        });
        match (outcome, codec_error) {
            (Err(report), _) => write_error(out, start, Status::Panic, &report),
            (Ok(()), Some(msg)) => write_error(out, start, Status::Codec, &msg),
            (Ok(()), None) => Status::Ok,
        }
    }

    fn each(call: C, count: u64, mut rest: &[u8], out: &mut Vec<u8>, start: usize) -> Status {
        for _ in 0..count {
            let args = match take_args::<A>(&mut rest) {
                Ok(args) => args,
                Err(chain) => return write_error(out, start, Status::Codec, &chain),
            };
            let item_start = out.len();
            let failure = match catch_task(|| call.invoke(args)) {
                Ok(result) => match postcard::to_io(&Ok::<&R, ItemError>(&result), &mut *out) {
                    Ok(_) => None,
                    Err(e) => Some(ItemError::Codec(ErrorChain::with_source(
                        "cannot encode result",
                        &e,
                    ))),
                },
                Err(report) => Some(ItemError::Panic(report)),
            };
            if let Some(failure) = failure {
                out.truncate(item_start);
                if let Err(e) = postcard::to_io(&Err::<(), ItemError>(failure), &mut *out) {
                    return codec_error(out, start, "cannot encode an error", &e);
                }
            }
        }
        if !rest.is_empty() {
            return write_error(out, start, Status::Codec, &trailing(rest));
        }
        Status::Ok
    }
}

/// Decodes one `A` and calls the initializer `F` with it.
pub(crate) fn init_entry<F, A>(input: &[u8], out: &mut Vec<u8>) -> Status
where
    F: Fn(A) + Copy + Send + Sync + 'static,
    A: DeserializeOwned,
{
    let f: F = conjure();
    let start = out.len();
    let args = match processing_core::codec::decode::<A>(input) {
        Ok(a) => a,
        Err(e) => return codec_error(out, start, "cannot decode initializer arguments", &e),
    };
    match catch_task(|| f(args)) {
        Ok(()) => Status::Ok,
        Err(report) => write_error(out, start, Status::Panic, &report),
    }
}

/// Encodes `items` as the postcard sequence [`Entries`] decode.
pub(crate) fn encode_chunk<A: Serialize>(items: &[A]) -> Result<Vec<u8>, crate::PoolError> {
    let input = processing_core::codec::encode(items)?;
    check_size(input.len(), MAX_TASK_BYTES, "arguments").map_err(crate::PoolError::Codec)?;
    Ok(input)
}

/// The most bytes one task message (a chunk's encoded arguments) or one reply (its encoded
/// results) may have: a worker's frames carry at most 2 GiB, and a frame's own fields take
/// the rest. (The same limit holds for every backend, so that the twins agree.)
pub(crate) const MAX_TASK_BYTES: usize = (1 << 31) - 64;

/// The codec error when `len` bytes of a task's `what` ("arguments", "results") exceed `max`.
pub(crate) fn check_size(len: usize, max: usize, what: &str) -> Result<(), ErrorChain> {
    if len <= max {
        return Ok(());
    }
    Err(ErrorChain::new(format!(
        "a task's {what} encode to {len} bytes, more than the {max} one task can carry \
         (a map's chunk carries all its items: a smaller chunksize helps)"
    )))
}

/// Replaces an entry's output after `start` with the codec error that says so when it is
/// larger than [`MAX_TASK_BYTES`] (no reply frame could carry it); else returns `status`.
pub(crate) fn limit_output(out: &mut Vec<u8>, start: usize, status: Status) -> Status {
    limit_output_to(out, start, status, MAX_TASK_BYTES)
}

fn limit_output_to(out: &mut Vec<u8>, start: usize, status: Status, max: usize) -> Status {
    match check_size(out.len().saturating_sub(start), max, "results") {
        Ok(()) => status,
        Err(chain) => write_error(out, start, Status::Codec, &chain),
    }
}

#[cfg(test)]
mod entry_tests {
    use super::*;

    #[test]
    fn an_output_over_the_limit_becomes_a_codec_error_naming_its_size() {
        let mut out = vec![7u8; 3];
        out.extend([1u8; 10]);
        assert!(limit_output_to(&mut out, 3, Status::Ok, 10) == Status::Ok);
        assert_eq!(out.len(), 13, "an output at the limit stays");
        out.push(1);
        let status = limit_output_to(&mut out, 3, Status::Ok, 10);
        assert!(status == Status::Codec, "status {}", status as u8);
        assert_eq!(&out[..3], &[7, 7, 7], "the room before `start` is kept");
        let chain: ErrorChain = processing_core::codec::decode(&out[3..]).unwrap();
        assert!(
            chain
                .to_string()
                .contains("results encode to 11 bytes, more than the 10"),
            "{chain}"
        );
    }

    fn double(x: u32) -> u32 {
        x * 2
    }

    /// Two inputs followed by three bytes that are none.
    fn input_with_trailing_bytes() -> Vec<u8> {
        let mut input = processing_core::codec::encode(&2u64).unwrap();
        input.extend(processing_core::codec::encode(&1u32).unwrap());
        input.extend(processing_core::codec::encode(&2u32).unwrap());
        input.extend([0xff, 0xff, 0xff]);
        input
    }

    #[test]
    fn both_entries_report_trailing_bytes_as_an_error_chain() {
        type Entry = fn(&[u8], &mut Vec<u8>) -> Status;
        fn run(entry: impl Fn(&[u8], &mut Vec<u8>) -> Status) {
            let mut out = vec![7u8]; // bytes before the chunk's output stay
            let status = entry(&input_with_trailing_bytes(), &mut out);
            assert!(status == Status::Codec, "status {}", status as u8);
            assert_eq!(out[0], 7);
            let chain: ErrorChain = processing_core::codec::decode(&out[1..]).unwrap();
            assert!(chain.message().contains("3 trailing bytes"), "{chain:?}");
        }
        fn direct<F: Fn(u32) -> u32 + Copy + Send + Sync + 'static>(_: F) -> [Entry; 2] {
            [
                Entries::<Direct<F>, u32, u32>::chunk,
                Entries::<Direct<F>, u32, u32>::items,
            ]
        }
        for entry in direct(double) {
            run(entry);
        }
    }
}
