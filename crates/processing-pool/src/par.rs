//! A rayon-flavoured front end on the process [`Pool`]: `items.into_par_process_iter()
//! .map(f).collect()`.
//!
//! The function rule is [`Pool::map`]'s: `f` is a fn item or a closure that captures nothing
//! (checked at compile time), its argument and result are serde values. Without
//! [`with_pool`](ParProcessIter::with_pool) the work goes to a process-wide pool of
//! [`cpu_count`](crate::cpu_count) workers, started on first use and kept for the life of the
//! process (its workers are daemonic and end with it). `collect` returns a `Result`, because a
//! worker can panic or die.
//!
//! ```
//! use processing::prelude::*;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let squares = (0..1000u64)
//!     .into_par_process_iter()
//!     .map(square)
//!     .collect::<Vec<_>>()
//!     .unwrap();
//! assert_eq!(squares[999], 998_001);
//! ```
//!
//! A capturing closure is rejected at compile time, as by `Pool::map`:
//!
//! ```compile_fail
//! use processing::prelude::*;
//! let k = 3u64;
//! let v: Vec<u64> = (0..10u64).into_par_process_iter().map(move |x| x * k).collect().unwrap();
//! ```

use std::sync::OnceLock;

use crate::{Pool, PoolError, TaskArg, TaskResult};

/// Turns anything iterable into a [`ParProcessIter`] (see the [module](self) documentation).
pub trait IntoParProcessIter: IntoIterator + Sized {
    /// The items of `self`, to be mapped in worker processes.
    ///
    /// ```
    /// use processing::prelude::*;
    /// fn double(x: i32) -> i32 { 2 * x }
    /// let v: Vec<i32> = vec![1, 2, 3].into_par_process_iter().map(double).collect().unwrap();
    /// assert_eq!(v, [2, 4, 6]);
    /// ```
    fn into_par_process_iter<'p>(self) -> ParProcessIter<'p, Self::IntoIter> {
        ParProcessIter {
            iter: self.into_iter(),
            pool: None,
            chunksize: None,
        }
    }
}

impl<I: IntoIterator> IntoParProcessIter for I {}

/// Items waiting for a [`map`](ParProcessIter::map).
#[derive(Debug)]
pub struct ParProcessIter<'p, I> {
    iter: I,
    pool: Option<&'p Pool>,
    chunksize: Option<usize>,
}

impl<'p, I: Iterator> ParProcessIter<'p, I> {
    /// Runs on `pool` instead of the process-wide pool.
    ///
    /// ```
    /// use processing::{prelude::*, Pool};
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let pool = Pool::new(1).unwrap();
    /// let v: Vec<u8> = (0..3u8).into_par_process_iter().with_pool(&pool).map(inc).collect().unwrap();
    /// assert_eq!(v, [1, 2, 3]);
    /// ```
    pub fn with_pool(mut self, pool: &'p Pool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Sends the items in chunks of `chunksize` (default: as [`Pool::map`] chooses).
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.chunksize = Some(chunksize);
        self
    }

    /// Applies `f` to every item in the pool's workers (lazily: nothing runs before
    /// [`collect`](ParProcessMap::collect)).
    pub fn map<F, R>(self, f: F) -> ParProcessMap<'p, I, F>
    where
        F: Fn(I::Item) -> R + Copy + Send + Sync + 'static,
    {
        ParProcessMap { inner: self, f }
    }
}

/// Items and the function to map them with.
#[derive(Debug)]
pub struct ParProcessMap<'p, I, F> {
    inner: ParProcessIter<'p, I>,
    f: F,
}

impl<I, F, R> ParProcessMap<'_, I, F>
where
    I: Iterator,
    F: Fn(I::Item) -> R + Copy + Send + Sync + 'static,
    I::Item: TaskArg,
    R: TaskResult,
{
    /// Runs the map and collects the results in input order: the first task error (a panic,
    /// a lost worker) if any.
    pub fn collect<C: FromIterator<R>>(self) -> Result<C, PoolError> {
        let ParProcessMap { inner, f } = self;
        let pool = match inner.pool {
            Some(p) => p,
            None => global_pool()?,
        };
        let results = match inner.chunksize {
            Some(c) => pool.chunksize(c).map(f, inner.iter)?,
            None => pool.map(f, inner.iter)?,
        };
        Ok(results.into_iter().collect())
    }
}

/// The process-wide pool, started on first use.
fn global_pool() -> Result<&'static Pool, PoolError> {
    static GLOBAL: OnceLock<Pool> = OnceLock::new();
    if let Some(pool) = GLOBAL.get() {
        return Ok(pool);
    }
    let pool = Pool::new(crate::cpu_count()).map_err(|e| {
        PoolError::Spawn(crate::WorkerStartError::with_source(
            "cannot start the process-wide pool",
            e,
        ))
    })?;
    // Another thread may have won the race; its pool is the one kept (ours terminates).
    let _ = GLOBAL.set(pool);
    GLOBAL
        .get()
        .ok_or_else(|| PoolError::Spawn("the process-wide pool is unavailable".into()))
}
