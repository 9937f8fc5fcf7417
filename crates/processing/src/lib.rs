//! # processing — processes with the ease of threads
//!
//! Layer: the facade on top of `core → shm → sync → transport → process → {manager, pool}`.
//! It re-exports each layer and the common names at the top level.

#[doc(inline)]
pub use processing_core as core;
#[doc(inline)]
pub use processing_manager as manager;
#[doc(inline)]
pub use processing_pool as pool;
#[doc(inline)]
pub use processing_process as process;
#[doc(inline)]
pub use processing_shm as shm;
#[doc(inline)]
pub use processing_sync as sync;
#[doc(inline)]
pub use processing_transport as transport;

pub use processing_macros::main;

pub use processing_process::{
    active_children, cpu_count, current_process, get_context, get_start_method, init,
    log_to_stderr, parent_process, set_start_method, spawn, Context, Process, ProcessError,
    SpawnError, StartMethod,
};

pub use processing_manager::Manager;
