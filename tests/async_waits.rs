//! Awaitable pipes, listeners, queues and locks (feature `async`): each body under tokio and
//! under `futures::executor::block_on`, and the cancellation of every wait.
// xtask: not-conformance
#![cfg(feature = "async")]

mod support;

use support::{poll_once, tokio_and_block_on, tokio_rt};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use processing::{Client, Listener};
use std::sync::atomic::{AtomicBool, Ordering};

use processing::{
    Condition, Connection, Event, JoinableQueue, Lock, Pipe, Process, Queue, Semaphore, SimpleQueue,
};

/// Echoes every message back until the peer closes.
fn echo(conn: Connection<Vec<u8>>) {
    while let Ok(m) = conn.recv() {
        if conn.send(&m).is_err() {
            break;
        }
    }
}

/// Puts `n` items, then sets `done`.
fn producer((q, n, done): (Queue<u64>, u64, Event)) {
    for i in 0..n {
        q.put(i).unwrap();
    }
    done.set();
}

async fn pipe_ping_pong() {
    let (ours, theirs) = Pipe::new::<Vec<u8>>().unwrap();
    let mut child = Process::new(echo, theirs);
    child.start().unwrap();
    for i in 0..200u32 {
        let m = i.to_le_bytes().repeat(1 + (i as usize % 5) * 1000);
        ours.send_async(&m).await.unwrap();
        assert_eq!(ours.recv_async().await.unwrap(), m);
    }
    drop(ours);
    child.join_async().await.unwrap();
}

async fn queue_from_a_child() {
    let q = Queue::bounded(4).unwrap();
    let done = Event::new().unwrap();
    let mut child = Process::new(producer, (q.clone(), 100, done.clone()));
    child.start().unwrap();
    let mut got = Vec::new();
    for _ in 0..100 {
        got.push(q.get_async().await.unwrap());
    }
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    done.wait_async().await;
    child.join_async().await.unwrap();
    // put_async waits for room in a bounded queue.
    let b = Queue::bounded(1).unwrap();
    b.put_async(1u8).await.unwrap();
    let (put, get) = futures::join!(b.put_async(2), async {
        Sleep(Duration::from_millis(20)).await;
        b.get_async().await.unwrap()
    });
    put.unwrap();
    assert_eq!(get, 1);
    assert_eq!(b.get_async().await.unwrap(), 2);
    let j = JoinableQueue::new().unwrap();
    j.put_async(5u8).await.unwrap();
    assert_eq!(j.get_async().await.unwrap(), 5);
    j.task_done().unwrap();
    j.join_async().await;
    let s = SimpleQueue::new().unwrap();
    s.put_async(6u8).await.unwrap();
    assert_eq!(s.get_async().await.unwrap(), 6);
}

/// A sleep on the library's reactor (executor-agnostic).
#[allow(non_snake_case)]
fn Sleep(d: Duration) -> processing::aio::Sleep {
    processing::aio::Sleep::new(d)
}

async fn locks_and_events() {
    let lock = Lock::new().unwrap();
    let g = lock.acquire_async().await.unwrap();
    let sem = Semaphore::new(0).unwrap();
    futures::join!(
        async {
            drop(lock.acquire_async().await.unwrap());
        },
        async {
            Sleep(Duration::from_millis(10)).await;
            drop(g);
        }
    );
    assert!(!lock.is_locked());
    let (_, ()) = futures::join!(sem.acquire_async(), async {
        Sleep(Duration::from_millis(10)).await;
        sem.release().unwrap();
    });
    let e = Event::new().unwrap();
    assert!(!e.wait_timeout_async(Duration::from_millis(5)).await);
    futures::join!(e.wait_async(), async { e.set() });
    // A condition awaited by its predicate, set under the lock by another future.
    let cond = Condition::new().unwrap();
    let flag = AtomicBool::new(false);
    futures::join!(cond.wait_for_async(|| flag.load(Ordering::SeqCst)), async {
        Sleep(Duration::from_millis(10)).await;
        let g = cond.acquire().unwrap();
        flag.store(true, Ordering::SeqCst);
        cond.notify_all().unwrap();
        drop(g);
    });
}

tokio_and_block_on! {
    pipe_ping_pong: pipe_tokio, pipe_block_on;
    queue_from_a_child: queue_tokio, queue_block_on;
    locks_and_events: locks_tokio, locks_block_on;
}

async fn accept(l: &Listener) {
    let addr = l.address().clone();
    let t = std::thread::spawn(move || {
        let c = Client::connect::<u32>(addr, Some(b"secret")).unwrap();
        c.send(&11).unwrap();
        c.recv().unwrap()
    });
    let c = l.accept_async::<u32>().await.unwrap();
    assert_eq!(c.recv_async().await.unwrap(), 11);
    c.send_async(&12).await.unwrap();
    assert_eq!(t.join().unwrap(), 12);
}

#[test]
fn listener_tokio_and_block_on() {
    let l = Listener::bind("tcp://127.0.0.1:0", Some(b"secret")).unwrap();
    tokio_rt().block_on(accept(&l));
    futures::executor::block_on(accept(&l));
}

#[test]
fn cancelled_accept_leaves_the_connection_queued() {
    let l = Listener::bind("tcp://127.0.0.1:0", Some(b"secret")).unwrap();
    // Registered, then dropped while waiting.
    {
        let f = std::pin::pin!(l.accept_async::<u32>());
        assert!(poll_once(f));
    }
    let addr = l.address().clone();
    let t = std::thread::spawn(move || {
        let c = Client::connect::<u32>(addr, Some(b"secret")).unwrap();
        c.send(&7).unwrap();
        c.recv().unwrap()
    });
    // The connection is there for the next accept, blocking or not.
    let c = l.accept::<u32>().unwrap();
    assert_eq!(c.recv().unwrap(), 7);
    c.send(&8).unwrap();
    assert_eq!(t.join().unwrap(), 8);
}

#[test]
fn concurrent_accepts_each_get_a_connection() {
    let l = Listener::bind("tcp://127.0.0.1:0", Some(b"secret")).unwrap();
    let addr = l.address().clone();
    let clients = std::thread::spawn(move || {
        let cs: Vec<_> = (0..4u32)
            .map(|i| {
                let c = Client::connect::<u32>(addr.clone(), Some(b"secret")).unwrap();
                c.send(&i).unwrap();
                c
            })
            .collect();
        cs.iter().map(|c| c.recv().unwrap()).sum::<u32>()
    });
    async fn serve(l: &Listener) -> u32 {
        let c = l.accept_async::<u32>().await.unwrap();
        let v = c.recv_async().await.unwrap();
        c.send_async(&(v + 100)).await.unwrap();
        v
    }
    tokio_rt().block_on(async {
        let (a, b, c, d) = futures::join!(serve(&l), serve(&l), serve(&l), serve(&l));
        assert_eq!(a + b + c + d, 6);
    });
    assert_eq!(clients.join().unwrap(), 406);
}

#[test]
fn cancelled_waits_take_nothing() {
    // Queue get: the dropped future took no item.
    let q = Queue::<u32>::new().unwrap();
    {
        let f = std::pin::pin!(q.get_async());
        assert!(poll_once(f));
    }
    q.put(1).unwrap();
    assert_eq!(q.try_get().unwrap(), 1);
    // Queue put on a full queue: the dropped future put nothing.
    let b = Queue::bounded(1).unwrap();
    b.put(1u32).unwrap();
    {
        let f = std::pin::pin!(b.put_async(2));
        assert!(poll_once(f));
    }
    assert_eq!(b.try_get().unwrap(), 1);
    assert!(b.try_get().is_err());
    // Lock: a dropped acquire holds nothing.
    let lock = Lock::new().unwrap();
    let g = lock.try_acquire().unwrap();
    {
        let f = std::pin::pin!(lock.acquire_async());
        assert!(poll_once(f));
    }
    drop(g);
    assert!(lock.try_acquire().is_ok());
    // Semaphore: a dropped acquire took no permit.
    let sem = Semaphore::new(0).unwrap();
    {
        let f = std::pin::pin!(sem.acquire_async());
        assert!(poll_once(f));
    }
    sem.release().unwrap();
    assert_eq!(sem.value(), 1);
    // Condition: a dropped predicate wait holds no lock (another thread takes it at once).
    let cond = Condition::new().unwrap();
    {
        let f = std::pin::pin!(cond.wait_for_async(|| false));
        assert!(poll_once(f));
    }
    std::thread::scope(|s| {
        s.spawn(|| assert!(cond.try_acquire().is_ok()));
    });
    // Pipe: a dropped recv consumed no message.
    let (a, b) = Pipe::new::<u8>().unwrap();
    {
        let f = std::pin::pin!(b.recv_async());
        assert!(poll_once(f));
    }
    a.send(&3).unwrap();
    assert_eq!(b.recv().unwrap(), 3);
}

/// Takes the lock, says so, and waits to be killed.
fn hold_until_killed((lock, held, never): (Lock, Event, Event)) {
    lock.acquire().unwrap().forget();
    held.set();
    never.wait();
}

/// A future to run to completion on some executor.
type Job<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// A lock whose holder process is killed: `acquire_async` takes it over and reports it, as the
/// blocking `acquire` does.
#[test]
fn acquire_async_takes_over_a_dead_holders_lock() {
    fn run(block_on: &dyn Fn(Job<'_>)) {
        let lock = Lock::new().unwrap();
        let (held, never) = (Event::new().unwrap(), Event::new().unwrap());
        let mut child = Process::new(hold_until_killed, (lock.clone(), held.clone(), never));
        child.start().unwrap();
        held.wait();
        let mut f = Box::pin(lock.acquire_async());
        assert!(poll_once(f.as_mut()));
        child.kill().unwrap();
        let _ = child.join();
        block_on(Box::pin(async move {
            let e = f.await.unwrap_err();
            assert!(e.is_owner_died(), "{e:?}");
            drop(e.into_guard());
        }));
        assert!(!lock.is_locked());
        assert!(lock.try_acquire().is_ok());
    }
    run(&|f| tokio_rt().block_on(f));
    run(&|f| futures::executor::block_on(f));
}
