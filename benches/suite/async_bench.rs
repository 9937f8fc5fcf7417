//! Async metrics (feature `async`): `async_apply_tasks_per_s` (`apply_async(..).await`, 1 000
//! in flight, Pool(2), 50 000 tasks or 5 000 with `--quick`, on a tokio current-thread
//! runtime) and `async_pipe_rtt_us` (the 8-byte ping-pong of `pipe_rtt_us` with
//! `send_async`/`recv_async`). Compare each with its blocking twin of the same run.

use std::collections::VecDeque;
use std::time::Instant;

use processing::{spawn, Connection, Pipe, Pool};

use crate::ctx::Ctx;

fn square(x: u64) -> u64 {
    x * x
}

type Ping = Option<Vec<u8>>;

fn echo_loop(conn: Connection<Ping>) {
    while let Ok(Some(m)) = conn.recv() {
        if conn.send(&Some(m)).is_err() {
            break;
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn run(ctx: &Ctx) {
    if ctx.want("async_apply_tasks_per_s") {
        let n: u64 = if ctx.quick { 5_000 } else { 50_000 };
        let in_flight = 1_000;
        let pool = Pool::new(2).expect("pool starts");
        pool.apply(square, 3).expect("warm-up apply");
        let dt = runtime().block_on(async {
            let t = Instant::now();
            let mut pending = VecDeque::with_capacity(in_flight);
            let mut next = 0u64;
            let mut total = 0u64;
            while next < n || !pending.is_empty() {
                while next < n && pending.len() < in_flight {
                    pending.push_back(pool.apply_async(square, next).expect("apply_async"));
                    next += 1;
                }
                if let Some(r) = pending.pop_front() {
                    total += r.await.expect("result");
                }
            }
            assert!(total > 0);
            t.elapsed().as_secs_f64()
        });
        drop(pool);
        ctx.emit(
            "async_apply_tasks_per_s",
            n as f64 / dt,
            "tasks/s",
            &[
                ("workers", "2".into()),
                ("count", n.to_string()),
                ("in_flight", in_flight.to_string()),
            ],
        );
    }
    if ctx.want("async_pipe_rtt_us") {
        let (a, b) = Pipe::new::<Ping>().expect("pipe");
        let mut child = spawn(echo_loop, b).expect("echo child");
        let n = if ctx.quick { 2000 } else { 20000 };
        let msg = Some(vec![b'x'; 8]);
        let rt = runtime();
        let per = rt.block_on(async {
            for _ in 0..200 {
                a.send_async(&msg).await.expect("send");
                a.recv_async().await.expect("recv");
            }
            let mut runs = Vec::new();
            for _ in 0..3 {
                let t = Instant::now();
                for _ in 0..n {
                    a.send_async(&msg).await.expect("send");
                    a.recv_async().await.expect("recv");
                }
                runs.push(t.elapsed() / n as u32);
            }
            // Best of 3, as `pipe_rtt_us`.
            runs.into_iter().min().unwrap_or_default()
        });
        a.send(&None).expect("stop");
        child.join().expect("echo child ends");
        ctx.emit(
            "async_pipe_rtt_us",
            per.as_secs_f64() * 1e6,
            "us",
            &[("count", n.to_string()), ("message_bytes", "8".into())],
        );
    }
}
