//! The same [`Pool`] beyond one machine: its tasks spread over worker hosts through Redis
//! Streams consumer groups; every worker host runs the same binary.
//!
//! Layer: `… → {manager, pool} → **cluster** → processing` (the facade re-exports it as
//! `processing::cluster` behind the cargo feature `cluster`). The pool's core is unchanged:
//! this crate implements the pool's backend seam, so `apply`, `map`, `imap`, callbacks,
//! chunking, `task_timeout`, progress bars, `close`/`terminate`/`join` and the error types
//! are the local pool's.
//!
//! - **Driver**: `Pool::builder().cluster(url)…build()` (with [`PoolBuilderExt`]) returns a
//!   plain [`Pool`]; its `processes` is the number of task batches it keeps in flight.
//! - **Worker host**: any program built with the library becomes one when started with
//!   `PROCESSING_CLUSTER_WORKER=redis://…` (a pre-main hook takes the process over; `main`
//!   never runs; `PROCESSING_CLUSTER_PROCESSES` sets its process count), or by calling
//!   [`serve`]. It runs N local worker processes (default: CPU count), so a crashing task
//!   kills one worker process, not the host. It takes only tasks of its own build.
//!
//! Semantics: at-least-once execution, each result delivered to the caller exactly once
//! (duplicates dropped by task id); results are stored in Redis as they finish; a task whose
//! host died is re-delivered after the visibility timeout (running tasks' claims are renewed
//! by a heartbeat), ahead of tasks not yet started, at most `max_deliveries` times, then fails
//! with [`PoolError::DeliveriesExhausted`]. Every task and result carries an HMAC-SHA256
//! under the cluster key; workers refuse and count entries that fail it.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use processing::cluster::PoolBuilderExt;
//! fn square(x: u64) -> u64 { x * x }
//! let pool = processing::Pool::builder()
//!     .processes(8)
//!     .cluster("redis://127.0.0.1:6379/0")
//!     .key(b"shared secret".to_vec())
//!     .build()?;
//! assert_eq!(pool.map(square, 0..4u64)?, [0, 1, 4, 9]);
//! # Ok(()) }
//! ```

#![doc(html_root_url = "https://docs.rs/processing-cluster/0.1.0")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod driver;
mod host;
mod queue;
mod wire;

use std::time::Duration;

pub use processing_pool::{Pool, PoolBuilder, PoolError};
pub use queue::{Queue, QueueError};

/// The environment variable that makes a program a worker host (its value: the Redis URL).
pub const WORKER_ENV: &str = "PROCESSING_CLUSTER_WORKER";
/// The environment variable holding the cluster key (when the builder sets none).
pub const KEY_ENV: &str = "PROCESSING_CLUSTER_KEY";
/// The environment variable with a worker host's process count.
pub const PROCESSES_ENV: &str = "PROCESSING_CLUSTER_PROCESSES";

/// Why a cluster pool, a worker host or a cluster queue could not start or go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL {url}")]
    Url {
        /// The URL (password hidden).
        url: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// Redis refused or could not be reached.
    #[error("Redis at {url} failed")]
    Redis {
        /// The URL (password hidden).
        url: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// A local worker process could not be started.
    #[error("cannot start a local worker")]
    Worker(#[source] PoolError),
    /// The pool could not be built.
    #[error("cannot build the pool")]
    Build(#[source] processing_pool::PoolBuildError),
    /// A thread could not be started.
    #[error("cannot start a thread")]
    Thread(#[source] std::io::Error),
}

/// Makes `Pool::builder().cluster(url)` available.
pub trait PoolBuilderExt {
    /// The pool's tasks go to the worker hosts of the Redis server at `url`.
    fn cluster(self, url: &str) -> ClusterPoolBuilder;
}

impl PoolBuilderExt for PoolBuilder {
    fn cluster(self, url: &str) -> ClusterPoolBuilder {
        ClusterPoolBuilder {
            pool: self,
            url: url.to_string(),
            key: None,
            visibility_timeout: Duration::from_secs(5),
            max_deliveries: 3,
            worker_wait: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Settings of a cluster pool; [`build`](ClusterPoolBuilder::build) returns a [`Pool`].
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use processing::cluster::PoolBuilderExt;
/// let pool = processing::Pool::builder()
///     .cluster("redis://127.0.0.1:6379/0")
///     .visibility_timeout(Duration::from_secs(2))
///     .max_deliveries(3)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClusterPoolBuilder {
    pool: PoolBuilder,
    url: String,
    key: Option<Vec<u8>>,
    visibility_timeout: Duration,
    max_deliveries: u32,
    worker_wait: Duration,
    connect_timeout: Duration,
}

impl ClusterPoolBuilder {
    /// The cluster key tasks and results are signed with (default: `PROCESSING_CLUSTER_KEY`,
    /// else this program's authkey, which only hosts started by this program share).
    pub fn key(mut self, key: Vec<u8>) -> Self {
        self.key = Some(key);
        self
    }

    /// How long a task's holder may stay silent before another host takes it (default 5 s).
    pub fn visibility_timeout(mut self, d: Duration) -> Self {
        self.visibility_timeout = d;
        self
    }

    /// How many times a task is started at most (default 3; at least 1).
    pub fn max_deliveries(mut self, n: u32) -> Self {
        self.max_deliveries = n.max(1);
        self
    }

    /// How long tasks wait while no worker host of this build is alive before they fail with
    /// [`PoolError::NoCompatibleWorker`] (default 10 s).
    pub fn worker_wait(mut self, d: Duration) -> Self {
        self.worker_wait = d;
        self
    }

    /// How long Redis may stay unreachable before the pool's tasks fail with
    /// [`PoolError::Cluster`] (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Creates the pool's stream and returns the pool.
    pub fn build(self) -> Result<Pool, ClusterError> {
        let backend = driver::ClusterBackend::create(
            &self.url,
            wire::ClusterKey::resolve(self.key.as_deref()),
            driver::DriverConfig {
                visibility: self.visibility_timeout,
                max_deliveries: self.max_deliveries,
                worker_wait: self.worker_wait,
                connect_timeout: self.connect_timeout,
            },
        )?;
        self.pool
            .build_with_backend(Box::new(backend))
            .map_err(ClusterError::Build)
    }
}

/// Settings of a worker host ([`serve`]).
///
/// ```
/// let options = processing::cluster::ServeOptions::default().processes(2);
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ServeOptions {
    processes: Option<usize>,
    key: Option<Vec<u8>>,
    heartbeat: Duration,
    start_method: Option<processing_process::StartMethod>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            processes: None,
            key: None,
            heartbeat: Duration::from_millis(250),
            start_method: None,
        }
    }
}

impl ServeOptions {
    /// Number of local worker processes (default: CPU count).
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }
    /// The cluster key (default: `PROCESSING_CLUSTER_KEY`, else this program's authkey).
    pub fn key(mut self, key: Vec<u8>) -> Self {
        self.key = Some(key);
        self
    }
    /// How often running tasks' claims are renewed (default 250 ms; keep it well under the
    /// pools' visibility timeouts).
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat = d.max(Duration::from_millis(10));
        self
    }
    /// How local workers are started.
    pub fn start_method(mut self, m: processing_process::StartMethod) -> Self {
        self.start_method = Some(m);
        self
    }
}

/// Runs this process as a worker host of the Redis server at `url` until it is killed;
/// returns only if it cannot start.
///
/// ```no_run
/// processing::cluster::serve("redis://127.0.0.1:6379/0", Default::default()).unwrap();
/// ```
pub fn serve(url: &str, options: ServeOptions) -> Result<(), ClusterError> {
    host::serve(url, options)
}

/// The pre-main hook: `PROCESSING_CLUSTER_WORKER=url` turns the program into a worker host.
fn hook() {
    let Some(url) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    // Local worker processes must not become hosts themselves.
    std::env::remove_var(WORKER_ENV);
    let mut options = ServeOptions::default();
    if let Some(n) = std::env::var(PROCESSES_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options = options.processes(n);
    }
    let code = match serve(&url.to_string_lossy(), options) {
        Ok(()) => 0,
        Err(e) => {
            let mut msg = format!("processing: cluster worker host: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("{msg}");
            2
        }
    };
    std::process::exit(code);
}

processing_core::on_load!(hook);
