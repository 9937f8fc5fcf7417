// xtask: not-conformance
//! The rayon-flavoured front end (`processing::prelude`): items mapped in worker processes.

use std::collections::HashSet;

use processing::prelude::*;
use processing::{Pool, PoolError};

fn square(x: i64) -> i64 {
    x * x
}

fn pid_of(_: u32) -> u32 {
    std::process::id()
}

fn fails_at_3(x: u32) -> u32 {
    assert_ne!(x, 3, "three is refused");
    x
}

#[test]
fn par_iter_map_collect_in_order_on_the_global_pool() {
    let v = (0..1000)
        .into_par_process_iter()
        .map(square)
        .collect::<Vec<_>>()
        .unwrap();
    assert_eq!(v, (0..1000).map(square).collect::<Vec<_>>());
    let set: HashSet<i64> = vec![2, 3, 2]
        .into_par_process_iter()
        .map(square)
        .collect()
        .unwrap();
    assert_eq!(set, HashSet::from([4, 9]));
    // The work ran in other processes.
    let pids: HashSet<u32> = (0..64u32)
        .into_par_process_iter()
        .chunksize(1)
        .map(pid_of)
        .collect()
        .unwrap();
    assert!(!pids.contains(&std::process::id()));
}

#[test]
fn par_iter_with_pool_and_errors() {
    let pool = Pool::new(2).unwrap();
    let v: Vec<i64> = Vec::<i64>::new()
        .into_par_process_iter()
        .with_pool(&pool)
        .map(square)
        .collect()
        .unwrap();
    assert!(v.is_empty());
    let e = (0..10u32)
        .into_par_process_iter()
        .with_pool(&pool)
        .map(fails_at_3)
        .collect::<Vec<_>>()
        .unwrap_err();
    match e {
        PoolError::Panic { message, .. } => assert!(message.contains("three is refused")),
        other => panic!("expected a panic error, got {other:?}"),
    }
    // The pool goes on.
    assert_eq!(pool.apply(square, 5).unwrap(), 25);
}
