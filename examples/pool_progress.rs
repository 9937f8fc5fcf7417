//! A worker pool with a progress bar: counts the primes below each of 200 bounds with
//! `Pool::map`, one small chunk at a time, while the pool draws its bar on stderr.
//!
//! Run with `cargo run --release --example pool_progress` in a terminal (the bar is drawn only
//! when stderr is a terminal); prints the total on stdout:
//!
//! ```text
//! 2 workers counted 1896209 primes in 200 ranges
//! ```
//!
//! (on a machine with 2 CPUs: the pool has one worker per CPU).

use processing::Pool;

/// The number of primes below `n`, by trial division (slow on purpose: a visible bar).
fn primes_below(n: u64) -> u64 {
    (2..n)
        .filter(|&k| (2..).take_while(|d| d * d <= k).all(|d| k % d != 0))
        .count() as u64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::builder().progress(true).build()?;
    let bounds: Vec<u64> = (1..=200).map(|i| i * 1_000).collect();
    // One bound per task, so that the bar moves task by task.
    let counts = pool.chunksize(1).map(primes_below, bounds)?;
    println!(
        "{} workers counted {} primes in {} ranges",
        pool.processes(),
        counts.iter().sum::<u64>(),
        counts.len()
    );
    pool.close();
    pool.join()?;
    Ok(())
}
