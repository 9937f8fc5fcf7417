//! The parent's thread count while 10 000 futures wait on queues, locks, pool results and
//! pipes (feature `async`): constant, no thread per waiter. Alone in its binary so that no
//! other test's threads come and go while it counts.
// xtask: not-conformance
#![cfg(all(feature = "async", target_os = "linux"))]

mod support;

use support::threads;

use std::time::Duration;

use processing::{Event, Lock, Pipe, Queue};

#[allow(non_snake_case)]
fn Sleep(d: Duration) -> processing::aio::Sleep {
    processing::aio::Sleep::new(d)
}

fn gated((started, go): (Event, Event)) -> u32 {
    started.set();
    go.wait();
    1
}

fn one(x: u32) -> u32 {
    x
}

/// 10 000 futures waiting on queues, locks, pool results and pipes: the parent's thread count
/// does not move (no thread per waiter).
#[test]
fn ten_thousand_waiters_keep_the_thread_count() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = processing::Pool::new(1).unwrap();
    let (started, go) = (Event::new().unwrap(), Event::new().unwrap());
    let busy = pool
        .apply_async(gated, (started.clone(), go.clone()))
        .unwrap();
    started.wait();
    let q = Queue::<u32>::new().unwrap();
    let lock = Lock::new().unwrap();
    let held = lock.try_acquire().unwrap();
    let (tx, rx) = Pipe::new::<u32>().unwrap();
    rt.block_on(async {
        // Start the reactor before counting.
        Sleep(Duration::from_millis(1)).await;
        let before = threads();
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let mut tasks = Vec::new();
                let mut queue_waiters = 0;
                for i in 0..10_000u32 {
                    let (q, lock, rx) = (q.clone(), lock.clone(), rx.clone());
                    // Each pending descriptor wait holds a duplicate of the descriptor: keep
                    // the pipe waiters well under the usual limit of 1 024 open files.
                    let kind = if i % 4 == 3 && i >= 1_000 { 0 } else { i % 4 };
                    match kind {
                        0 => {
                            queue_waiters += 1;
                            tasks.push(tokio::task::spawn_local(async move {
                                q.get_async().await.unwrap()
                            }))
                        }
                        1 => tasks.push(tokio::task::spawn_local(async move {
                            drop(lock.acquire_async().await.unwrap());
                            1
                        })),
                        2 => {
                            let r = pool.apply_async(one, 1).unwrap();
                            tasks.push(tokio::task::spawn_local(async move { r.await.unwrap() }))
                        }
                        _ => tasks.push(tokio::task::spawn_local(async move {
                            rx.readable_async().await.unwrap();
                            1
                        })),
                    }
                }
                // Let every task reach its wait.
                for _ in 0..5 {
                    tokio::task::yield_now().await;
                }
                Sleep(Duration::from_millis(50)).await;
                let during = threads();
                assert_eq!(
                    during, before,
                    "threads went from {before} to {during} with 10 000 waiters"
                );
                for _ in 0..queue_waiters {
                    q.put(1).unwrap();
                }
                drop(held);
                go.set();
                tx.send(&1).unwrap();
                let mut total = 0;
                for t in tasks {
                    total += t.await.unwrap();
                }
                assert_eq!(total, 10_000);
            })
            .await;
    });
    assert_eq!(busy.get().unwrap(), 1);
}
