//! The `--cluster` rows: the Pool on Redis Streams, against a private `redis-server` and one
//! worker host of 2 processes (this suite binary, made a worker host by its pre-main hook).

use std::time::{Duration, Instant};

use processing::cluster::PoolBuilderExt;
use processing::Pool;

use crate::ctx::Ctx;

#[path = "../../tests/cluster_support/mod.rs"]
mod cluster_support;

use cluster_support::{Host, Redis, KEY};

fn square(x: u64) -> u64 {
    x * x
}

fn pool(url: &str, slots: usize) -> Pool {
    Pool::builder()
        .processes(slots)
        .cluster(url)
        .key(KEY.as_bytes().to_vec())
        .build()
        .expect("cluster pool")
}

pub fn run(ctx: &Ctx) {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let extra = |workers: &str| {
        vec![
            ("workers", workers.to_string()),
            ("headline", "true".into()),
        ]
    };
    if ctx.want("cluster_host_ready_ms") {
        // From starting a worker host to its first task's result.
        let p = pool(&url, 1);
        let t = Instant::now();
        let host = Host::start(&url, 2);
        p.apply(square, 3).expect("first task");
        let dt = t.elapsed();
        drop(host);
        drop(p);
        ctx.emit(
            "cluster_host_ready_ms",
            dt.as_secs_f64() * 1e3,
            "ms",
            &extra("2"),
        );
    }
    let _host = Host::start(&url, 2);
    if ctx.want("cluster_map_tasks_per_s") {
        let n: u64 = if ctx.quick { 200_000 } else { 1_000_000 };
        let p = pool(&url, 8);
        p.map(square, 0..1000u64).expect("warm-up");
        let mut best = 0f64;
        for chunk in [n / 64, n / 16] {
            let t = Instant::now();
            let r = p.chunksize(chunk as usize).map(square, 0..n).expect("map");
            let rate = n as f64 / t.elapsed().as_secs_f64();
            assert_eq!(r[r.len() - 1], (n - 1) * (n - 1));
            best = best.max(rate);
        }
        let mut e = extra("2");
        e.push(("count", n.to_string()));
        ctx.emit("cluster_map_tasks_per_s", best, "tasks/s", &e);
    }
    if ctx.want("cluster_apply_async_tasks_per_s") {
        let n: u64 = if ctx.quick { 5_000 } else { 20_000 };
        let p = pool(&url, 16);
        let dt = crate::pool::apply_async_squares(&p, n);
        ctx.emit(
            "cluster_apply_async_tasks_per_s",
            n as f64 / dt,
            "tasks/s",
            &extra("2"),
        );
    }
    if ctx.want("cluster_apply_rtt_ms") {
        let p = pool(&url, 1);
        p.apply(square, 3).expect("warm-up");
        let mut rtts: Vec<Duration> = (0..if ctx.quick { 200 } else { 1000 })
            .map(|i| {
                let t = Instant::now();
                p.apply(square, i).expect("apply");
                t.elapsed()
            })
            .collect();
        rtts.sort_unstable();
        ctx.emit(
            "cluster_apply_rtt_ms",
            rtts[rtts.len() / 2].as_secs_f64() * 1e3,
            "ms",
            &extra("2"),
        );
    }
}
