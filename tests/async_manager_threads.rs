//! 1 000 futures waiting on one manager queue from one thread (feature `async`): the process's
//! thread count stays constant, no thread per waiter. Alone in its binary so that no other
//! test's threads come and go while it counts.
// xtask: not-conformance
#![cfg(all(feature = "async", target_os = "linux"))]

mod support;

use support::{poll_once, threads};

use std::time::Duration;

use processing::manager::Manager;

/// 1 000 futures waiting on one manager queue from one thread: the process's thread count does
/// not move (each waits on its own socket through the reactor, not on a thread).
#[test]
fn a_thousand_waiters_on_a_manager_queue_keep_the_thread_count() {
    const N: usize = 1_000;
    let m = Manager::start().unwrap();
    let q = m.queue::<u32>().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Start the reactor (and this thread's connection) before counting.
        processing::aio::Sleep::new(Duration::from_millis(1)).await;
        assert!(q.try_get().unwrap_err().is_empty());
        let before = threads();
        let mut waiters: Vec<_> = (0..N).map(|_| Box::pin(q.get_async())).collect();
        for w in &mut waiters {
            assert!(poll_once(w.as_mut()));
        }
        assert_eq!(threads(), before, "a thread per waiter");
        for i in 0..N as u32 {
            q.put(i).unwrap();
        }
        let mut got = futures::future::join_all(waiters)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        got.sort_unstable();
        assert_eq!(got, (0..N as u32).collect::<Vec<_>>());
        assert_eq!(threads(), before);
    });
}
