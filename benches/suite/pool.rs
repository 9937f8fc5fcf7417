//! Pool metrics: `pool_map_tasks_per_s` and `pool_apply_async_tasks_per_s`, measured as
//! `benches/python/baseline.py` measures them (Pool(2), a warm-up call first, default chunk size).

use std::time::Instant;

use processing::Pool;

use crate::ctx::Ctx;

fn square(x: u64) -> u64 {
    x * x
}

/// After a warm-up call: the seconds `pool` takes over `n` `apply_async` calls of `square`,
/// all queued before the first result is fetched.
pub fn apply_async_squares(pool: &Pool, n: u64) -> f64 {
    pool.apply(square, 3).expect("warm-up apply");
    let t = Instant::now();
    let rs: Vec<_> = (0..n)
        .map(|i| pool.apply_async(square, i).expect("apply_async"))
        .collect();
    let total: u64 = rs.into_iter().map(|r| r.get().expect("get")).sum();
    let dt = t.elapsed().as_secs_f64();
    assert!(total > 0);
    dt
}

/// Emits `n` tasks done in `seconds` by a pool of 2 as a headline rate.
fn emit(ctx: &Ctx, metric: &str, n: u64, seconds: f64) {
    ctx.emit(
        metric,
        n as f64 / seconds,
        "tasks/s",
        &[
            ("workers", "2".into()),
            ("count", n.to_string()),
            ("headline", "true".into()),
        ],
    );
}

pub fn run(ctx: &Ctx) {
    if ctx.want("pool_map_tasks_per_s") {
        let n: u64 = if ctx.quick { 100_000 } else { 1_000_000 };
        let pool = Pool::new(2).expect("pool starts");
        pool.map(square, 0..1000u64).expect("warm-up map");
        let t = Instant::now();
        let r = pool.map(square, 0..n).expect("map");
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(r[r.len() - 1], (n - 1) * (n - 1));
        drop(pool);
        emit(ctx, "pool_map_tasks_per_s", n, dt);
    }
    if ctx.want("pool_apply_async_tasks_per_s") {
        let n: u64 = if ctx.quick { 5_000 } else { 50_000 };
        let pool = Pool::new(2).expect("pool starts");
        let dt = apply_async_squares(&pool, n);
        drop(pool);
        emit(ctx, "pool_apply_async_tasks_per_s", n, dt);
    }
}
