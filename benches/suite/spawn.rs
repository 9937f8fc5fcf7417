//! `spawn_join_ms`: start + join of a process whose target does nothing, one line per start
//! method, measured as `benches/python/baseline.py` measures it (n = 10 quick / 40, best of 3).

use std::time::{Duration, Instant};

use processing::{Process, StartMethod};

use crate::ctx::{best_of, json_str, Ctx};

fn noop(_: ()) {}

pub fn run(ctx: &Ctx) {
    if !ctx.want("spawn_join_ms") {
        return;
    }
    let n = if ctx.quick { 10 } else { 40 };
    let default = processing::get_start_method();
    for &method in StartMethod::available() {
        // One warm-up start so that a method's one-time set-up (the fork server) is not timed,
        // as Python's own forkserver is already running after its first use.
        let mut warm = Process::new(noop, ()).start_method(method);
        if warm.start().and_then(|()| warm.join()).is_err() {
            eprintln!("bench: spawn_join_ms: {method} unavailable");
            continue;
        }
        let once = || -> Duration {
            let t = Instant::now();
            for _ in 0..n {
                let mut p = Process::new(noop, ()).start_method(method);
                p.start().expect("start");
                p.join().expect("join");
            }
            t.elapsed() / n
        };
        let best = best_of(3, once);
        let mut extra = vec![
            ("start_method", json_str(method.name())),
            ("count", n.to_string()),
        ];
        if method == default {
            extra.push(("default", "true".to_string()));
        }
        ctx.emit("spawn_join_ms", best.as_secs_f64() * 1e3, "ms", &extra);
    }
}
