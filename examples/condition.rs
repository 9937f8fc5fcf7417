//! The original package's condition example, as a producer/consumer pair: a child process
//! produces three items into a one-slot buffer in shared memory, the main process consumes
//! them, and a `Condition` shared by both tells each side when the slot changed.
//!
//! Run with `cargo run --example condition`; prints
//!
//! ```text
//! main is waiting
//!         child put 1 and is notifying
//! main has woken up and took 1
//! main is waiting
//!         child put 2 and is notifying
//! main has woken up and took 2
//! main is waiting
//!         child put 3 and is notifying
//! main has woken up and took 3
//! child is done
//! ```
//!
//! The order is fixed by the condition alone: each line is printed while holding its lock,
//! and each side waits for the other's change before going on.

use processing::{Condition, Process, RawValue};

/// The slot holds 0 when empty, otherwise the item.
const EMPTY: u32 = 0;

fn producer((cond, slot, n): (Condition, RawValue<u32>, u32)) {
    for item in 1..=n {
        let _guard = cond.acquire().expect("acquire");
        cond.wait_for(|| slot.get() == EMPTY).expect("wait");
        slot.set(item);
        println!("\tchild put {item} and is notifying");
        cond.notify().expect("notify");
    }
    let _guard = cond.acquire().expect("acquire");
    cond.wait_for(|| slot.get() == EMPTY).expect("wait");
    println!("child is done");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cond = Condition::new()?;
    let slot = RawValue::new(EMPTY)?;
    let n = 3;

    // Hold the lock before the child starts: the child cannot put anything before the first
    // `wait_for` below releases it.
    let guard = cond.acquire().map_err(|e| e.to_string())?;
    let mut child = Process::new(producer, (cond.clone(), slot.clone(), n));
    child.start()?;
    for _ in 0..n {
        println!("main is waiting");
        cond.wait_for(|| slot.get() != EMPTY)?;
        let item = slot.get();
        slot.set(EMPTY);
        println!("main has woken up and took {item}");
        cond.notify()?;
    }
    drop(guard);
    child.join()?;
    Ok(())
}
