//! The benchmark suite behind `cargo xtask bench` (see docs/benchmarks.md).
//!
//! Prints one JSON object per line on stdout; progress goes to stderr. Flags: `--quick`,
//! `--only NAME[,NAME...]`, `--cluster` (the cluster rows; needs the feature `cluster`). Each area lives in its own module with a `run(&Ctx)` function.

#[cfg(feature = "async")]
mod async_bench;
#[cfg(feature = "cluster")]
mod cluster;
mod ctx;
mod manager;
mod pipe;
mod pool;
mod queue;
mod spawn;
mod sync;

use ctx::Ctx;

/// A benchmark area: its name and its `run` function.
type Area = (&'static str, fn(&Ctx));

fn main() {
    let ctx = Ctx::from_args();
    // Areas register here, in the order `benches/python/baseline.py` runs them.
    let areas: &[Area] = &[
        ("spawn", spawn::run),
        ("pipe", pipe::run),
        ("queue", queue::run),
        ("sync", sync::run),
        ("pool", pool::run),
        ("manager", manager::run),
        #[cfg(feature = "async")]
        ("async", async_bench::run),
    ];
    for (name, run) in areas {
        eprintln!("bench: {name}");
        run(&ctx);
    }
    // `--cluster` (built with the feature `cluster`): the Pool on a private redis-server.
    if std::env::args().any(|a| a == "--cluster") {
        #[cfg(feature = "cluster")]
        {
            eprintln!("bench: cluster");
            cluster::run(&ctx);
        }
        #[cfg(not(feature = "cluster"))]
        eprintln!("bench: cluster SKIPPED (built without the feature `cluster`)");
    }
}
