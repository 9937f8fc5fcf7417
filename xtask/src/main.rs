//! `cargo xtask` — the project's task runner (one module per subcommand).
//!
//! - `cargo xtask test [--fast] [--no-windows]`: every check CI runs; ends with
//!   `xtask: N passed, M failed` and a non-zero exit status on any failure.
//! - `cargo xtask bench [--quick] [--compare] [--only NAMES] [--baseline PATH] [--json-out PATH]
//!   [--markdown] [--markdown-out PATH] [--load N]`: benchmarks, optionally compared with Python.
//! - `cargo xtask windows [FILTER...] [-- TEST-ARGS]`: the Windows leg (cross-build with
//!   mingw-w64, run under Wine).
//! - `cargo xtask models`: the loom and Miri legs of `test` alone.
//! - `cargo xtask tidy`: crate headers, layering and unused dependencies (from `cargo metadata`).

mod bench;
mod model;
mod test;
mod tidy;
mod util;
mod windows;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("usage: cargo xtask <test|bench|windows|tidy|models> [options]");
        return ExitCode::from(2);
    };
    let result = match cmd.as_str() {
        "test" => test::run(rest),
        "bench" => bench::run(rest),
        "windows" => windows::run(rest),
        "tidy" => tidy::run().map(|_| ()),
        "models" => model::run(rest),
        // Hidden: one busy loop of `bench --load N`.
        "busy" => bench::busy(rest),
        other => Err(format!("unknown subcommand `{other}`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
