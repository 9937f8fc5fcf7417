//! The condition tests' wait for their waiters: shared by the crate's thread tests and the root
//! suite's process tests (both include this file by path, next to their own imports of the
//! sync types).

use std::thread;
use std::time::{Duration, Instant};

use super::{Condition, RLockGuard, Value};

/// Returns holding the condition's lock once `entered` reached `n`: then all those waiters are
/// inside `wait` (they count themselves under the lock, and `wait` releases it). Fails after
/// 10 s.
pub(crate) fn until_entered<'a>(
    cond: &'a Condition,
    entered: &Value<u32>,
    n: u32,
) -> RLockGuard<'a> {
    let start = Instant::now();
    loop {
        let g = cond.acquire().unwrap();
        if entered.get() >= n {
            return g;
        }
        drop(g);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "waiters did not arrive"
        );
        thread::sleep(Duration::from_millis(2));
    }
}
