//! `manager_list_ops_per_s`: `push` calls on a local manager list proxy, each returning after
//! the server applied it (Python: `lst.append(i)` on `Manager().list()`).

use std::time::Instant;

use processing::manager::Manager;

use crate::ctx::Ctx;

pub fn run(ctx: &Ctx) {
    if !ctx.want("manager_list_ops_per_s") {
        return;
    }
    let n: u32 = if ctx.quick { 2_000 } else { 20_000 };
    let manager = Manager::start().expect("start manager");
    let list = manager.list::<u32>().expect("manager list");
    let start = Instant::now();
    for i in 0..n {
        list.push(i).expect("push");
    }
    let elapsed = start.elapsed();
    assert_eq!(list.len().expect("len"), n as usize);
    ctx.emit(
        "manager_list_ops_per_s",
        f64::from(n) / elapsed.as_secs_f64(),
        "ops/s",
        &[("count", n.to_string()), ("headline", "true".into())],
    );
    drop(list);
    manager.shutdown().expect("shutdown");
}
