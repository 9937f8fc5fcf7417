//! The benchmark suite behind `cargo xtask bench` (see BENCHMARKS.md).
//!
//! Prints one JSON object per line on stdout; progress goes to stderr. Flags: `--quick`,
//! `--only NAME[,NAME...]`. Each area lives in its own module with a `run(&Ctx)` function.

mod ctx;

use ctx::Ctx;

/// A benchmark area: its name (for progress lines) and its entry point.
type Area = (&'static str, fn(&Ctx));

fn main() {
    let ctx = Ctx::from_args();
    // Areas register here, one line each, in the order BENCHMARKS.md lists their metrics.
    let areas: &[Area] = &[
        // ("<area>", <area>::run),
    ];
    for (name, run) in areas {
        eprintln!("bench: {name}");
        run(&ctx);
    }
}
