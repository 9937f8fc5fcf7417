//! A short tour of processes in `processing`: spawn with a return value, a panic coming back
//! as an error, a forked capturing closure, and the start methods of the platform; then
//! shared memory and the synchronisation primitives across processes.
//!
//! Run with `cargo run --example tour`.

use processing::{current_process, Process, ProcessError, StartMethod};

fn square(x: u64) -> u64 {
    x * x
}

fn who_am_i(_: ()) -> (String, u32, Option<u32>) {
    let me = current_process();
    (
        me.name().to_string(),
        me.pid(),
        processing::parent_process().map(|p| p.pid()),
    )
}

fn fails(reason: String) -> u32 {
    panic!("{reason}")
}

#[processing::main]
fn main() -> Result<(), ProcessError> {
    processing::log_to_stderr(processing::process::Level::WARN);

    // A child with a return value, like std::thread::spawn + join.
    let mut child = processing::spawn(square, 12)?;
    println!(
        "square(12) computed in process {:?}: {}",
        child.pid(),
        child.join()?
    );

    // Names and parents.
    let mut p = Process::new(who_am_i, ()).name("explorer");
    p.start()?;
    let (name, pid, parent) = p.join()?;
    println!(
        "child '{name}' (pid {pid}) says its parent is {parent:?}; I am {}",
        std::process::id()
    );

    // A panic in the child comes back as an error (its message is also on the child's stderr).
    let mut p = Process::new(fails, "the tour asked for it".to_string())
        .stderr(processing::process::Stdio::Null);
    p.start()?;
    match p.join() {
        Err(ProcessError::Panicked { message, location }) => {
            println!(
                "the child panicked: {message} (at {}), exit code {:?}",
                location.unwrap_or_default(),
                p.exitcode()
            )
        }
        other => println!("unexpected: {other:?}"),
    }

    // Fork a capturing closure (Unix).
    if StartMethod::available().contains(&StartMethod::Fork) {
        let greeting = format!("hello from a fork of {}", std::process::id());
        let mut p = Process::fork(move || format!("{greeting}, running as {}", std::process::id()));
        p.start()?;
        println!("{}", p.join()?);
    }

    // Every start method of this platform runs the same target.
    for &method in StartMethod::available() {
        let ctx = processing::get_context(method)?;
        let t = std::time::Instant::now();
        let mut p = ctx.spawn(square, 7)?;
        let value = p.join()?;
        println!("{method:>10}: square(7) = {value} in {:?}", t.elapsed());
    }
    println!("default start method: {}", processing::get_start_method());

    if let Err(e) = shared_state_tour() {
        eprintln!("shared-state tour failed: {e}");
        std::process::exit(1);
    }
    Ok(())
}

// ------------------------------------------------------------------ shared memory and sync

use processing::shm::{RawArray, SharedMemory};
use processing::sync::{AcquireError, Barrier, Event, Lock, Value};

fn add_many((counter, n): (Value<i64>, u32)) {
    for _ in 0..n {
        *counter.lock().expect("lock") += 1;
    }
}

fn prefix_sum(a: RawArray<f64>) {
    // Copy out, compute, copy back (this child is the only writer meanwhile).
    let mut items = a.to_vec();
    for i in 1..items.len() {
        items[i] += items[i - 1];
    }
    a.write(0, &items).expect("write");
}

fn lockstep((barrier, passes): (Barrier, u32)) -> Vec<usize> {
    (0..passes)
        .map(|_| barrier.wait().expect("barrier"))
        .collect()
}

fn greet_by_name(name: String) -> String {
    let shm = SharedMemory::open(&name).expect("open");
    let mut buf = vec![0u8; 5];
    shm.read(0, &mut buf).expect("read");
    String::from_utf8_lossy(&buf).into_owned()
}

fn hold_and_crash((lock, held): (Lock, Event)) {
    lock.acquire().expect("acquire").forget();
    held.set();
    std::process::abort();
}

fn shared_state_tour() -> Result<(), Box<dyn std::error::Error>> {
    // A locked counter shared by two processes.
    let counter = Value::new(0i64)?;
    let mut ps: Vec<_> = (0..2)
        .map(|_| processing::spawn(add_many, (counter.clone(), 10_000)))
        .collect::<Result<_, _>>()?;
    for p in &mut ps {
        p.join()?;
    }
    println!("two processes counted to {}", counter.get());

    // A raw array edited in place by a child.
    let a = RawArray::from_slice(&[1.0f64; 5])?;
    processing::spawn(prefix_sum, a.clone())?.join()?;
    println!("prefix sums from the child: {:?}", a.to_vec());

    // A segment attached by name.
    let shm = SharedMemory::create(64)?;
    shm.write(0, b"hello")?;
    let got = processing::spawn(greet_by_name, shm.name().to_string())?.join()?;
    println!("the child read {got:?} from segment {}", shm.name());

    // Three parties in lockstep, two of them child processes.
    let barrier = Barrier::new(3)?;
    let mut ps: Vec<_> = (0..2)
        .map(|_| processing::spawn(lockstep, (barrier.clone(), 3)))
        .collect::<Result<_, _>>()?;
    let mine = lockstep((barrier.clone(), 3));
    println!(
        "barrier indexes: me {mine:?}, children {:?}",
        ps.iter_mut()
            .map(|p| p.join())
            .collect::<Result<Vec<_>, _>>()?
    );

    // A lock whose holder crashed is recovered, and the next acquirer is told.
    let lock = Lock::new()?;
    let held = Event::new()?;
    let mut p = Process::new(hold_and_crash, (lock.clone(), held.clone()))
        .stderr(processing::process::Stdio::Null);
    p.start()?;
    held.wait();
    let _ = p.join();
    match lock.acquire() {
        Err(AcquireError::OwnerDied(_guard)) => println!("recovered a lock whose holder crashed"),
        Ok(_guard) => println!("the lock was free"),
        Err(e) => println!("unexpected: {e}"),
    }
    Ok(())
}
