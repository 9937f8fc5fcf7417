//! Conformance tests Q01–Q10 of the Queue family (docs/conformance.md), across real processes.

mod support;

use support::start;

use std::time::{Duration, Instant};

use processing::process::Process;
use processing::transport::queue::{
    GetError, GetTimeoutError, JoinableQueue, PutError, Queue, QueueBuilder, TryGetError,
    TryPutError,
};

const SLACK: Duration = Duration::from_secs(5);

fn assert_took(elapsed: Duration, at_least: Duration) {
    assert!(
        elapsed >= at_least,
        "returned after {elapsed:?}, before {at_least:?}"
    );
    assert!(
        elapsed < at_least + SLACK,
        "returned after {elapsed:?}, far later than {at_least:?}"
    );
}

fn drain_all(q: Queue<u32>) -> Vec<u32> {
    let mut got = Vec::new();
    while let Ok(v) = q.try_get() {
        got.push(v);
    }
    got
}

#[test]
fn q01_bounded_queue_of_six() {
    let q: Queue<u32> = Queue::bounded(6).unwrap();
    for i in 0..6 {
        q.put(i).unwrap();
    }
    assert!(q.is_full());
    assert_eq!(q.len(), 6);
    let t = Instant::now();
    assert_eq!(q.try_put(6), Err(TryPutError::Full(6)));
    assert!(t.elapsed() < Duration::from_secs(1));
    let t = Instant::now();
    let err = q.put_timeout(7, Duration::from_millis(300)).unwrap_err();
    assert_took(t.elapsed(), Duration::from_millis(300));
    assert_eq!(err.into_inner(), 7);

    let mut consumer = start(drain_all, q.clone());
    assert_eq!(consumer.join().unwrap(), (0..6).collect::<Vec<_>>());
    assert!(q.is_empty());
    assert!(!q.is_full());
    q.try_put(8).unwrap();
}

fn put_sequence(q: Queue<(u32, String)>) {
    for i in 0..1000 {
        q.put((i, format!("item {i}"))).unwrap();
    }
}

#[test]
fn q02_fifo_from_another_process() {
    let q = Queue::new().unwrap();
    let mut producer = start(put_sequence, q.clone());
    for i in 0..1000 {
        assert_eq!(q.get().unwrap(), (i, format!("item {i}")));
    }
    producer.join().unwrap();

    let t = Instant::now();
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
    assert!(t.elapsed() < Duration::from_secs(1));
    let t = Instant::now();
    assert_eq!(
        q.get_timeout(Duration::from_millis(300)),
        Err(GetTimeoutError::Timeout)
    );
    assert_took(t.elapsed(), Duration::from_millis(300));
}

fn put_one(q: Queue<u32>) {
    q.put(2).unwrap();
}

fn get_one(q: Queue<u32>) -> u32 {
    q.get().unwrap()
}

#[test]
fn q03_len_tracks_puts_and_gets() {
    let q = Queue::new().unwrap();
    assert_eq!(q.len(), 0);
    q.put(1).unwrap();
    assert_eq!(q.len(), 1);
    Process::new(put_one, q.clone()).start_and_join();
    assert_eq!(q.len(), 2);
    let mut getter = start(get_one, q.clone());
    assert_eq!(getter.join().unwrap(), 1);
    assert_eq!(q.len(), 1);
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.len(), 0);
    assert!(q.is_empty());
}

trait StartAndJoin {
    fn start_and_join(self);
}

impl StartAndJoin for Process<()> {
    fn start_and_join(mut self) {
        self.start().unwrap();
        self.join().unwrap();
    }
}

fn joinable_worker((tasks, results): (JoinableQueue<Option<u32>>, Queue<u32>)) {
    while let Some(n) = tasks.get().unwrap() {
        std::thread::sleep(Duration::from_millis(2));
        results.put(n * n).unwrap();
        tasks.task_done().unwrap();
    }
    tasks.task_done().unwrap();
}

#[test]
fn q04_joinable_queue_join_waits_for_every_task_done() {
    let tasks = JoinableQueue::new().unwrap();
    let results = Queue::new().unwrap();
    let mut workers: Vec<_> = (0..4)
        .map(|_| start(joinable_worker, (tasks.clone(), results.clone())))
        .collect();
    for i in 0..40 {
        tasks.put(Some(i)).unwrap();
    }
    for _ in 0..4 {
        tasks.put(None).unwrap();
    }
    tasks.join();
    // Every result was put before its task_done, so all are there once join returns.
    assert_eq!(results.len(), 40);
    let mut squares: Vec<u32> = (0..40).map(|_| results.get().unwrap()).collect();
    squares.sort_unstable();
    assert_eq!(squares, (0..40).map(|i| i * i).collect::<Vec<_>>());
    for w in &mut workers {
        w.join().unwrap();
    }
    assert!(
        tasks.task_done().is_err(),
        "one task_done too many must be an error"
    );
}

fn put_after_close(q: Queue<u32>) -> bool {
    matches!(q.put(5), Err(PutError::Closed(5)))
}

#[test]
fn q05_put_and_get_after_close() {
    let q = Queue::new().unwrap();
    q.put(1u32).unwrap();
    q.close();
    assert!(q.is_closed());
    assert_eq!(q.put(2), Err(PutError::Closed(2)));
    let mut child = start(put_after_close, q.clone());
    assert!(
        child.join().unwrap(),
        "a put in another process after close must fail"
    );
    assert_eq!(q.get().unwrap(), 1, "get drains a closed queue");
    assert_eq!(q.get(), Err(GetError::Closed));
    assert_eq!(q.try_get(), Err(TryGetError::Closed));
}

const Q06_ITEMS: u64 = 100_000;
const Q06_SIDES: u64 = 4;

fn q06_producer((q, idx): (Queue<u64>, u64)) {
    let per = Q06_ITEMS / Q06_SIDES;
    for id in idx * per..(idx + 1) * per {
        q.put(id).unwrap();
    }
}

fn q06_consumer(q: Queue<u64>) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        match q.get() {
            Ok(id) => got.push(id),
            Err(GetError::Closed) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn q06_many_producers_many_consumers_exactly_once() {
    let q: Queue<u64> = QueueBuilder::new()
        .capacity_bytes(64 << 10)
        .build()
        .unwrap();
    let mut consumers: Vec<Process<Vec<u64>>> = (0..Q06_SIDES)
        .map(|_| start(q06_consumer, q.clone()))
        .collect();
    let mut producers: Vec<Process<()>> = (0..Q06_SIDES)
        .map(|i| start(q06_producer, (q.clone(), i)))
        .collect();
    for p in &mut producers {
        p.join().unwrap();
    }
    q.close();
    let mut seen = vec![false; Q06_ITEMS as usize];
    let mut total = 0;
    for c in &mut consumers {
        let got = c.join().unwrap();
        total += got.len();
        for id in got {
            assert!(
                !std::mem::replace(&mut seen[id as usize], true),
                "item {id} delivered twice"
            );
        }
    }
    assert_eq!(total, Q06_ITEMS as usize);
    assert!(seen.iter().all(|&s| s), "an item was lost");
}

/// A `len`-byte text that differs with `seed` and with the position (strings encode as one
/// block of bytes, so even debug builds move them quickly).
fn pattern(len: usize, seed: u8) -> String {
    let unit: String = (0..251u8)
        .map(|i| char::from(b'!' + (i.wrapping_add(seed)) % 90))
        .collect();
    let mut s = unit.repeat(len / unit.len() + 1);
    s.truncate(len);
    s
}

fn put_big_items(q: Queue<String>) {
    q.put(pattern(16 << 20, 1)).unwrap();
    q.put(pattern((16 << 20) + 12_345, 2)).unwrap();
    q.put("small".to_string()).unwrap();
}

#[test]
fn q07_items_of_16_mib_and_larger_pass_intact() {
    let q = Queue::new().unwrap();
    let mut producer = start(put_big_items, q.clone());
    assert!(q.get().unwrap() == pattern(16 << 20, 1));
    assert!(q.get().unwrap() == pattern((16 << 20) + 12_345, 2));
    assert_eq!(q.get().unwrap(), "small");
    producer.join().unwrap();
}

fn put_and_exit(q: Queue<u32>) {
    for i in 0..5000 {
        q.put(i).unwrap();
    }
}

fn put_then_hang((q, ready): (Queue<u32>, Queue<bool>)) {
    for i in 0..5000 {
        q.put(i).unwrap();
    }
    ready.put(true).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn q08_producer_that_exits_or_is_killed_right_after_put_loses_nothing() {
    let q = Queue::new().unwrap();
    let mut p = start(put_and_exit, q.clone());
    p.join().unwrap();
    assert_eq!(q.len(), 5000);
    for i in 0..5000 {
        assert_eq!(q.try_get().unwrap(), i);
    }

    let ready = Queue::new().unwrap();
    let mut p = start(put_then_hang, (q.clone(), ready.clone()));
    assert!(ready.get().unwrap());
    p.kill().unwrap();
    assert!(p.join().is_err());
    for i in 0..5000 {
        assert_eq!(q.try_get().unwrap(), i);
    }
    assert!(q.try_get().unwrap_err().is_empty());
}

fn put_large_items(q: Queue<String>) {
    for i in 0..8 {
        q.put(pattern(1 << 20, i)).unwrap();
    }
    for _ in 0..2000 {
        q.put("small".to_string()).unwrap();
    }
}

#[test]
fn q09_joining_a_producer_before_consuming_does_not_deadlock() {
    let q = Queue::new().unwrap();
    let mut p = start(put_large_items, q.clone());
    // A bounded wait, so that a deadlock fails the test instead of hanging it.
    p.join_timeout(Duration::from_secs(60)).unwrap();
    assert!(!p.is_alive());
    for i in 0..8 {
        assert!(q.get().unwrap() == pattern(1 << 20, i));
    }
    for _ in 0..2000 {
        assert_eq!(q.get().unwrap(), "small");
    }
}

fn reply_through_inner(outer: Queue<Queue<String>>) {
    let inner = outer.get().unwrap();
    inner.put("hello through a queue".to_string()).unwrap();
}

fn send_queue_and_exit((outer, inner): (Queue<Queue<String>>, Queue<String>)) {
    outer.put(inner).unwrap();
}

#[test]
fn q10_queue_passed_to_child_and_through_a_queue() {
    let outer: Queue<Queue<String>> = Queue::new().unwrap();
    let inner: Queue<String> = Queue::new().unwrap();
    let mut child = start(reply_through_inner, outer.clone());
    outer.put(inner.clone()).unwrap();
    assert_eq!(inner.get().unwrap(), "hello through a queue");
    child.join().unwrap();

    // A queue sent through a queue by a process that exits before it is received.
    let other: Queue<String> = Queue::new().unwrap();
    let mut sender = start(send_queue_and_exit, (outer.clone(), other.clone()));
    sender.join().unwrap();
    drop(other);
    let received = outer.get().unwrap();
    received.put("still works".to_string()).unwrap();
    assert_eq!(received.get().unwrap(), "still works");
}
