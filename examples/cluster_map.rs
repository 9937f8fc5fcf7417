//! A map over a cluster of worker hosts sharing one Redis server.
//!
//! ```text
//! export PROCESSING_CLUSTER_KEY=some-long-secret     # the same on every host
//! cargo run --release --features cluster --example cluster_map -- worker redis://127.0.0.1:6379/0 --processes 2
//! cargo run --release --features cluster --example cluster_map -- map redis://127.0.0.1:6379/0 100000
//! ```
//!
//! `worker` runs a worker host until it is killed (SIGTERM); `map` maps `square_slowly` over
//! `0..N` on the cluster and prints `sum=S tasks=N`. Kill a worker host in the middle: its
//! tasks in flight run again on another host after the visibility timeout, and the sum is
//! still exact.

use std::process::ExitCode;
use std::time::Duration;

use processing::cluster::{PoolBuilderExt, ServeOptions};
use processing::Pool;

/// The task: sleeps 1 ms (so that a killed host has work in flight) and returns `i * i`.
fn square_slowly(i: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(1));
    i * i
}

fn usage() -> ExitCode {
    eprintln!("usage: cluster_map worker URL [--processes N]\n       cluster_map map URL N");
    ExitCode::from(2)
}

fn key() -> Vec<u8> {
    match std::env::var(processing::cluster::KEY_ENV) {
        Ok(k) if !k.is_empty() => k.into_bytes(),
        _ => {
            eprintln!(
                "cluster_map: PROCESSING_CLUSTER_KEY is not set; using the example's demo key \
                 (set a secret of your own on every host)"
            );
            b"cluster_map demo key".to_vec()
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["worker", url, ref rest @ ..] => {
            let mut options = ServeOptions::default().key(key());
            match rest {
                [] => {}
                ["--processes", n] => match n.parse() {
                    Ok(n) => options = options.processes(n),
                    Err(_) => return usage(),
                },
                _ => return usage(),
            }
            eprintln!("cluster_map: worker host on {url}");
            match processing::cluster::serve(url, options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cluster_map: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        ["map", url, n] => {
            let Ok(n) = n.parse::<u64>() else {
                return usage();
            };
            let pool = match Pool::builder()
                .processes(16)
                .cluster(url)
                .key(key())
                .build()
            {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("cluster_map: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match pool.map(square_slowly, 0..n) {
                Ok(v) => {
                    let sum: u128 = v.iter().map(|&x| u128::from(x)).sum();
                    println!("sum={sum} tasks={}", v.len());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cluster_map: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => usage(),
    }
}
