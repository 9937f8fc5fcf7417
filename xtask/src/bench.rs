//! `cargo xtask bench`: the benchmark suite (see BENCHMARKS.md).

pub fn run(_args: &[String]) -> Result<(), String> {
    Err("no benchmarks yet".into())
}
