//! `lock_uncontended_ns` and `value_locked_incr_per_s`, measured as `baseline.py`
//! measures them: acquire + release of a Lock in one process (n = 100 000 quick / 1 000 000,
//! best of 3), and two processes each doing n locked `+= 1` on one `Value<i64>` (n = 20 000
//! quick / 200 000; the time covers starting and joining both, as Python's does); and
//! `array_share_gbps`: a child sums a `RawArray<f64>` of n = 1 000 000 quick / 10 000 000
//! elements created by the parent and writes the sum into a `Value<f64>` (the time covers
//! starting and joining the child, as Python's does).

use std::hint::black_box;
use std::time::{Duration, Instant};

use processing::sync::{Lock, Value};
use processing::Process;
use processing::RawArray;

use crate::ctx::{best_of, Ctx};

fn locked_increments((v, n): (Value<i64>, u32)) {
    for _ in 0..n {
        *v.lock().expect("lock") += 1;
    }
}

fn noop(_: ()) {}

fn sum_array((arr, out): (RawArray<f64>, Value<f64>)) {
    out.set(arr.iter().sum());
}

pub fn run(ctx: &Ctx) {
    if ctx.want("lock_uncontended_ns") {
        let lock = Lock::new().expect("lock");
        let n: u32 = if ctx.quick { 100_000 } else { 1_000_000 };
        let once = || -> Duration {
            let t = Instant::now();
            for _ in 0..n {
                drop(black_box(lock.acquire().expect("acquire")));
            }
            t.elapsed()
        };
        // Whole runs are compared and divided as floats (a per-iteration Duration would round
        // to whole nanoseconds).
        let best = best_of(3, once);
        ctx.emit(
            "lock_uncontended_ns",
            best.as_secs_f64() * 1e9 / f64::from(n),
            "ns",
            &[("count", n.to_string()), ("headline", "true".into())],
        );
    }

    if ctx.want("value_locked_incr_per_s") {
        let n: u32 = if ctx.quick { 20_000 } else { 200_000 };
        // One warm-up start so that the start method's one-time set-up (the fork server) is
        // not timed, as Python's fork or already-running forkserver has none.
        let mut warm = Process::new(noop, ());
        if warm.start().and_then(|()| warm.join()).is_err() {
            eprintln!("bench: value_locked_incr_per_s: cannot start processes");
            return;
        }
        let v = Value::new(0i64).expect("value");
        let t = Instant::now();
        let mut ps: Vec<Process<()>> = (0..2)
            .map(|_| Process::new(locked_increments, (v.clone(), n)))
            .collect();
        for p in &mut ps {
            p.start().expect("start");
        }
        for p in &mut ps {
            p.join().expect("join");
        }
        let dt = t.elapsed();
        assert_eq!(v.get(), 2 * i64::from(n));
        ctx.emit(
            "value_locked_incr_per_s",
            2.0 * f64::from(n) / dt.as_secs_f64(),
            "ops/s",
            &[
                ("processes", "2".into()),
                ("count", n.to_string()),
                ("headline", "true".into()),
            ],
        );
    }

    if ctx.want("array_share_gbps") {
        let n: usize = if ctx.quick { 1_000_000 } else { 10_000_000 };
        let arr = RawArray::<f64>::new(n).expect("array");
        // Ones rather than Python's zeros, so that the child's sum proves it read every element.
        arr.write(0, &vec![1.0; n]).expect("fill");
        let out = Value::new(0.0f64).expect("value");
        let t = Instant::now();
        let mut p = Process::new(sum_array, (arr.clone(), out.clone()));
        p.start().expect("start");
        p.join().expect("join");
        let dt = t.elapsed();
        assert_eq!(out.get(), n as f64);
        ctx.emit(
            "array_share_gbps",
            (n * 8) as f64 / dt.as_secs_f64() / 1e9,
            "GB/s",
            &[("elements", n.to_string()), ("headline", "true".into())],
        );
    }
}
