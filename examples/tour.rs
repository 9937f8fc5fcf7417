//! A short tour of `processing`: processes (spawn with a return value, a panic coming back as
//! an error, a forked capturing closure, the start methods of the platform); shared memory and
//! the synchronisation primitives across processes; pipes, queues and an authenticated
//! listener; a pool with its progress bar, surviving a killed worker; and a manager's shared
//! list and dict.
//!
//! Run with `cargo run --release --example tour` (the README's demo). Everything is printed on
//! stdout except the pool's progress bar, which is drawn on stderr when it is a terminal.

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

/// One part of the tour after the processes.
type Section = fn() -> Result<(), Box<dyn std::error::Error>>;

#[processing::main]
fn main() -> Result<(), ProcessError> {
    processing::log_to_stderr(processing::process::Level::WARN);

    println!("== processes");
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

    let sections: [(&str, Section); 4] = [
        ("shared state", shared_state_tour),
        ("channels", channels_tour),
        ("pool", pool_tour),
        ("manager", manager_tour),
    ];
    for (name, section) in sections {
        println!("\n== {name}");
        if let Err(e) = section() {
            eprintln!("the {name} part of the tour failed: {e}");
            std::process::exit(1);
        }
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
    let theirs = ps
        .iter_mut()
        .map(|p| p.join())
        .collect::<Result<Vec<_>, _>>()?;
    // At each pass every party draws its own arrival index: together 0, 1 and 2.
    let every_pass_distinct = (0..3).all(|pass| {
        let mut drawn: Vec<usize> = theirs.iter().map(|t| t[pass]).collect();
        drawn.push(mine[pass]);
        drawn.sort_unstable();
        drawn == [0, 1, 2]
    });
    println!(
        "this process and two children crossed a barrier together 3 times{}",
        if every_pass_distinct {
            "; each time they drew the arrival numbers 0, 1 and 2 between them"
        } else {
            ", but their arrival numbers collided"
        }
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

// ------------------------------------------------------------------ pipes, queues, listeners

use processing::{Address, Client, Connection, Listener, Pipe, Queue};

fn shout(conn: Connection<String>) {
    // Answer every message until the other end is closed.
    while let Ok(text) = conn.recv() {
        conn.send(&text.to_uppercase()).expect("send");
    }
}

fn produce((queue, id): (Queue<(u32, u64)>, u32)) {
    for i in 0..1000u64 {
        queue.put((id, i)).expect("put");
    }
}

fn phone_home(address: Address) -> String {
    // The process authkey is inherited by children, so `None` (use it) authenticates.
    let conn = Client::connect::<String>(address, None).expect("connect");
    conn.send(&format!("hello from pid {}", std::process::id()))
        .expect("send");
    conn.recv().expect("recv")
}

fn channels_tour() -> Result<(), Box<dyn std::error::Error>> {
    // A duplex pipe: one end stays here, the other is the child's argument.
    let (here, there) = Pipe::new::<String>()?;
    let mut child = processing::spawn(shout, there)?;
    for word in ["pipes", "carry", "typed values"] {
        here.send(&word.to_string())?;
        print!("{} ", here.recv()?);
    }
    println!("(echoed by pid {:?})", child.pid());
    drop(here); // end of stream: the child's loop ends
    child.join()?;

    // A queue with three producers, joined before a single item is consumed: every put that
    // returned is already in shared memory (no feeder thread, no join-before-drain deadlock).
    let queue = Queue::new()?;
    let mut producers: Vec<_> = (0..3)
        .map(|id| processing::spawn(produce, (queue.clone(), id)))
        .collect::<Result<_, _>>()?;
    for p in &mut producers {
        p.join()?;
    }
    let n = queue.len();
    let total: u64 = (0..n)
        .map(|_| queue.get().map(|(_, i)| i))
        .sum::<Result<_, _>>()?;
    println!("3 producers exited; the queue still held {n} items summing to {total}");

    // A listener on a private local socket; a child connects and authenticates.
    let listener = Listener::bind(Address::unique_local(), None)?;
    let mut child = processing::spawn(phone_home, listener.address().clone())?;
    let conn = listener.accept::<String>()?;
    let greeting = conn.recv()?;
    conn.send(&"welcome".to_string())?;
    println!(
        "listener got {greeting:?}; the child heard {:?}",
        child.join()?
    );

    // A client with the wrong key is refused before any payload is read.
    let address = listener.address().clone();
    let intruder = std::thread::spawn(move || {
        Client::connect::<String>(address, Some(b"wrong key")).map(|_| ())
    });
    let at_listener = match listener.accept::<String>() {
        Ok(_) => "accepted it (wrong!)".to_string(),
        Err(e) => format!("refused it ({e})"),
    };
    let at_client = match intruder.join().map_err(|_| "thread panicked")? {
        Ok(()) => "got in (wrong!)".to_string(),
        Err(e) => format!("was turned away ({e})"),
    };
    println!("a client with the wrong authkey: the listener {at_listener}; the client {at_client}");
    Ok(())
}

// ------------------------------------------------------------------ pool

use processing::{Pool, PoolError};

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(2));
    x * x
}

/// A task that kills its own worker, as the OOM killer or an operator would.
fn die(_: ()) -> u64 {
    #[cfg(unix)]
    kill_me();
    std::process::abort()
}

#[cfg(unix)]
fn kill_me() {
    // SAFETY: kill(2) on this process's own pid with a valid signal number touches no memory
    // of ours; the process ends here.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

fn pool_tour() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::builder().processes(2).progress(true).build()?;
    let squares = pool.chunksize(4).map(slow_square, 0..200u64)?;
    println!(
        "the pool's 2 workers squared 200 numbers (progress bar on stderr); sum {}",
        squares.iter().sum::<u64>()
    );
    let before = pool.worker_pids();
    match pool.apply(die, ()) {
        Err(PoolError::WorkerLost {
            pid,
            exitcode,
            signal,
        }) => println!(
            "a task killed its worker {pid}: WorkerLost (exit code {exitcode:?}, signal {signal:?})"
        ),
        other => println!("unexpected: {other:?}"),
    }
    let after = pool.worker_pids();
    println!(
        "the pool replaced it ({before:?} -> {after:?}) and goes on: 9 squared is {}",
        pool.apply(slow_square, 9)?
    );
    pool.close();
    pool.join()?;
    Ok(())
}

// ------------------------------------------------------------------ manager

use processing::manager::{DictProxy, ListProxy};
use processing::Manager;

fn record((list, dict, id): (ListProxy<String>, DictProxy<String, u32>, u32)) {
    list.push(format!("entry from child {id}")).expect("push");
    dict.insert(format!("child {id}"), std::process::id())
        .expect("insert");
}

fn manager_tour() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::start()?;
    let list = manager.list::<String>()?;
    let dict = manager.dict::<String, u32>()?;
    let mut children: Vec<_> = (0..2)
        .map(|id| processing::spawn(record, (list.clone(), dict.clone(), id)))
        .collect::<Result<_, _>>()?;
    for c in &mut children {
        c.join()?;
    }
    list.sort()?;
    println!(
        "the manager (pid {:?}) holds the list {:?}",
        manager.server_pid(),
        list.to_vec()?
    );
    let mut items = dict.items()?;
    items.sort();
    println!("and the dict {items:?}");
    manager.shutdown()?;
    Ok(())
}
