//! `queue_items_per_s`: 200 000 (quick: 20 000) items `(1, "abc", 2.5)` through a Queue from
//! one producer process to one consumer process, timed from starting both until the consumer
//! reports done, as `baseline.py` measures it. The headline row runs unpinned; a second
//! row pins both children to CPU 0.

use std::time::Instant;

use processing::process::Process;
use processing::transport::queue::Queue;

use crate::ctx::Ctx;

type Item = (i64, String, f64);

fn pin_to_cpu0(pin: bool) {
    #[cfg(target_os = "linux")]
    if pin {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it, and
        // sched_setaffinity only reads it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pin;
}

fn consumer((q, n, done, pin): (Queue<Item>, u64, Queue<bool>, bool)) {
    pin_to_cpu0(pin);
    for _ in 0..n {
        q.get().expect("queue get");
    }
    done.put(true).expect("done put");
}

fn producer((q, n, pin): (Queue<Item>, u64, bool)) {
    pin_to_cpu0(pin);
    let item: Item = (1, "abc".to_string(), 2.5);
    for _ in 0..n {
        q.put(item.clone()).expect("queue put");
    }
}

fn once(n: u64, pin: bool) -> f64 {
    let q: Queue<Item> = Queue::new().expect("queue");
    let done: Queue<bool> = Queue::new().expect("queue");
    let mut c = Process::new(consumer, (q.clone(), n, done.clone(), pin));
    let mut p = Process::new(producer, (q.clone(), n, pin));
    let t = Instant::now();
    c.start().expect("start consumer");
    p.start().expect("start producer");
    done.get().expect("done");
    let dt = t.elapsed();
    p.join().expect("join producer");
    c.join().expect("join consumer");
    n as f64 / dt.as_secs_f64()
}

pub fn run(ctx: &Ctx) {
    if !ctx.want("queue_items_per_s") {
        return;
    }
    let n: u64 = if ctx.quick { 20_000 } else { 200_000 };
    // The unpinned figure is the headline; the pinned one (one CPU each) is reported beside it.
    for pinned in [false, true] {
        let rate = once(n, pinned);
        let mut extra: Vec<(&str, String)> = vec![
            ("producers", "1".into()),
            ("consumers", "1".into()),
            ("count", n.to_string()),
        ];
        extra.push(if pinned {
            ("pinned", "true".into())
        } else {
            ("headline", "true".into())
        });
        ctx.emit("queue_items_per_s", rate, "items/s", &extra);
    }
}
