//! The original package's pool example: `map_async` of squares over 0..10, fetched with a
//! one-second timeout.
//!
//! Run with `cargo run --example pool_map_async`; prints `[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]`.

use std::time::Duration;

use processing::Pool;

fn square(x: u64) -> u64 {
    x * x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(4)?;
    let result = pool.map_async(square, 0..10u64)?;
    println!("{:?}", result.get_timeout(Duration::from_secs(1))?);
    pool.close();
    pool.join()?;
    Ok(())
}
