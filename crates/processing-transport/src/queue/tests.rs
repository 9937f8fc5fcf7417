//! In-process tests of the queue protocol (threads over one mapping); the cross-process
//! conformance tests live in the workspace's `tests/queue_*.rs`.

use std::time::{Duration, Instant};

use super::*;
use processing_shm::owner::Owner;
use std::sync::atomic::Ordering;

#[test]
fn fifo_len_and_bounds() {
    let q = Queue::bounded(3).unwrap();
    assert!(q.is_empty());
    for i in 0..3u32 {
        q.try_put(i).unwrap();
        assert_eq!(q.len(), i as usize + 1);
    }
    assert!(q.is_full());
    assert!(q.try_put(9).unwrap_err().is_full());
    let t = Instant::now();
    let e = q.put_timeout(9, Duration::from_millis(100)).unwrap_err();
    assert!(e.is_timeout());
    assert_eq!(e.into_inner(), 9);
    assert!(t.elapsed() >= Duration::from_millis(100));
    for i in 0..3u32 {
        assert_eq!(q.try_get().unwrap(), i);
    }
    assert!(q.try_get().unwrap_err().is_empty());
    let t = Instant::now();
    assert!(q
        .get_timeout(Duration::from_millis(100))
        .unwrap_err()
        .is_timeout());
    assert!(t.elapsed() >= Duration::from_millis(100));
}

#[test]
fn wraps_around_many_times_with_varied_sizes() {
    let q: Queue<Vec<u8>> = QueueBuilder::new().capacity_bytes(1024).build().unwrap();
    let producer = {
        let q = q.clone();
        std::thread::spawn(move || {
            for i in 0..20_000usize {
                q.put(vec![(i % 251) as u8; i % 300]).unwrap();
            }
        })
    };
    for i in 0..20_000usize {
        let v = q.get().unwrap();
        assert_eq!(v.len(), i % 300, "item {i}");
        assert!(v.iter().all(|&b| b == (i % 251) as u8));
    }
    producer.join().unwrap();
    assert!(q.is_empty());
}

#[test]
fn many_producers_many_consumers_exactly_once() {
    let q: Queue<u64> = QueueBuilder::new().capacity_bytes(4096).build().unwrap();
    let n_per = 20_000u64;
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let q = q.clone();
            std::thread::spawn(move || (0..n_per).for_each(|i| q.put(p * n_per + i).unwrap()))
        })
        .collect();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(v) = q.get() {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.close();
    let mut all: Vec<u64> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..4 * n_per).collect::<Vec<_>>());
}

#[test]
fn large_items_spill_and_come_back_intact() {
    let q: Queue<Vec<u8>> = QueueBuilder::new().capacity_bytes(4096).build().unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    q.put(big.clone()).unwrap();
    q.put(vec![1, 2, 3]).unwrap();
    assert_eq!(q.get().unwrap(), big);
    assert_eq!(q.get().unwrap(), vec![1, 2, 3]);
}

#[test]
fn close_fails_puts_and_drains_gets() {
    let q = Queue::new().unwrap();
    q.put(1u8).unwrap();
    q.close();
    assert!(q.is_closed());
    let e = q.put(2).unwrap_err();
    assert!(e.is_closed());
    assert_eq!(e.into_inner(), 2);
    assert_eq!(q.get().unwrap(), 1);
    assert!(q.get().unwrap_err().is_closed());
    assert!(q.try_get().unwrap_err().is_closed());
}

#[test]
fn close_wakes_a_blocked_get() {
    let q: Queue<u8> = Queue::new().unwrap();
    let waiter = {
        let q = q.clone();
        std::thread::spawn(move || q.get())
    };
    std::thread::sleep(Duration::from_millis(50));
    q.close();
    assert!(waiter.join().unwrap().unwrap_err().is_closed());
}

#[test]
fn wrong_type_is_a_decode_error_and_the_item_is_removed() {
    let q: Queue<String> = Queue::new().unwrap();
    q.put("not a number".to_string()).unwrap();
    q.put("x".to_string()).unwrap();
    let as_u64: Queue<u64> = Queue::attach(q.shared.segment.clone()).unwrap();
    // A String of 12 bytes is a 1-byte varint then 12 bytes: trailing bytes for a u64.
    assert!(as_u64.try_get().unwrap_err().is_decode());
    assert_eq!(q.try_get().unwrap(), "x");
}

#[test]
fn joinable_counts_tasks() {
    let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    for i in 0..10 {
        q.put(i).unwrap();
    }
    assert!(q.join_timeout(Duration::from_millis(50)).is_err());
    let worker = {
        let q = q.clone();
        std::thread::spawn(move || {
            for _ in 0..10 {
                q.get().unwrap();
                q.task_done().unwrap();
            }
        })
    };
    q.join();
    worker.join().unwrap();
    assert!(q.task_done().unwrap_err().is_too_many());
}

#[test]
fn queue_serializes_by_name() {
    let q: Queue<u32> = Queue::new().unwrap();
    let bytes = processing_core::codec::encode(&q).unwrap();
    let back: Queue<u32> = processing_core::codec::decode(&bytes).unwrap();
    back.put(5).unwrap();
    assert_eq!(q.get().unwrap(), 5);
}

#[test]
fn capacity_and_bound_are_checked() {
    assert!(Queue::<u8>::bounded(0).unwrap_err().is_invalid_argument());
    assert!(QueueBuilder::new()
        .capacity_bytes(10)
        .build::<u8>()
        .unwrap_err()
        .is_invalid_argument());
    assert!(QueueBuilder::new()
        .capacity_bytes(1 << 30)
        .build::<u8>()
        .unwrap_err()
        .is_invalid_argument());
}

#[cfg(unix)]
#[test]
fn handles_cannot_go_through_a_queue() {
    let q = Queue::new().unwrap();
    let file = std::fs::File::open("/dev/null").unwrap();
    let h = processing_core::TransferableHandle::new(file.into());
    assert!(q.put(h).unwrap_err().is_encode());
}

#[cfg(unix)]
#[test]
fn locks_held_by_a_dead_process_are_recovered() {
    let q: Queue<u32> = Queue::new().unwrap();
    q.put(1).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    q.shared.ring.hold_locks_as(Owner {
        pid: dead,
        stamp: 0,
    });
    let t = Instant::now();
    q.put_timeout(2, Duration::from_secs(10)).unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 1);
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 2);
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_lock_held_by_a_live_process_makes_timed_operations_time_out() {
    let q: Queue<u32> = Queue::new().unwrap();
    q.shared.ring.hold_locks_as(Owner::current()); // this process: alive
    let t = Instant::now();
    assert!(q
        .put_timeout(1, Duration::from_millis(200))
        .unwrap_err()
        .is_timeout());
    assert!(q
        .get_timeout(Duration::from_millis(200))
        .unwrap_err()
        .is_timeout());
    assert!(t.elapsed() >= Duration::from_millis(400));
    q.shared.ring.hold_locks_as(Owner { pid: 0, stamp: 0 });
    q.put(1).unwrap();
    assert_eq!(q.get().unwrap(), 1);
}

/// A zero timeout is a look, not a wait: polls of an empty queue, a full one or one whose
/// locks are held leave the spin statistics of the real waits as they were.
#[test]
fn zero_timeout_polls_leave_the_wait_statistics_alone() {
    let q: Queue<u32> = Queue::bounded(1).unwrap();
    let before = q.shared.ring.wait_statistics();
    for _ in 0..64 {
        assert!(q.try_get().unwrap_err().is_empty());
        assert!(q.get_timeout(Duration::ZERO).unwrap_err().is_timeout());
    }
    q.put(1).unwrap();
    for _ in 0..64 {
        assert!(q.try_put(2).is_err());
        assert!(q.put_timeout(2, Duration::ZERO).is_err());
    }
    // (A `try_` operation waits for a side lock, held only for one copy; a zero timeout does
    // not.)
    q.shared.ring.hold_locks_as(Owner::current()); // this process: alive
    for _ in 0..64 {
        assert!(q.get_timeout(Duration::ZERO).unwrap_err().is_timeout());
        assert!(q.put_timeout(3, Duration::ZERO).is_err());
    }
    assert_eq!(q.shared.ring.wait_statistics(), before);
    q.shared.ring.hold_locks_as(Owner { pid: 0, stamp: 0 });
    assert_eq!(q.get().unwrap(), 1);
}

#[test]
fn locks_held_by_a_reused_pid_are_recovered() {
    // A live process (this one) under another start stamp: the holder died and its pid was
    // reused. The lock is taken over after the second observation.
    let q: Queue<u32> = Queue::new().unwrap();
    q.put(1).unwrap();
    let me = Owner::current();
    q.shared.ring.hold_locks_as(Owner {
        pid: me.pid,
        stamp: me.stamp.wrapping_add(1).max(1),
    });
    let t = Instant::now();
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 1);
    q.put_timeout(2, Duration::from_secs(10)).unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 2);
    assert!(t.elapsed() < Duration::from_secs(5));
}

/// A producer killed between linking a new chain segment and naming it the tail leaves the
/// tail one segment behind; later puts must follow the link, so nothing lands behind items
/// the consumer has passed (the order stays the put order, nothing is lost).
#[test]
fn chain_puts_follow_a_link_a_killed_producer_did_not_name() {
    let q: Queue<u64> = QueueBuilder::new().capacity_bytes(1024).build().unwrap();
    let ov = q.shared.ring.overflow();
    let mut put = 0u64;
    let mut in_ring = None;
    // Fill the ring, then the chain's first segment, until a second segment is linked.
    while put < 100_000 {
        q.put(put).unwrap();
        put += 1;
        if in_ring.is_none() && ov.active.load(Ordering::Acquire) == 1 {
            in_ring = Some(put - 1);
        }
        if in_ring.is_some() && ov.head.get().0 != ov.tail.get().0 {
            break;
        }
    }
    let in_ring = in_ring.expect("the chain started");
    assert_ne!(
        ov.head.get().0,
        ov.tail.get().0,
        "a second segment is linked"
    );
    // What the killed producer left: the first segment links the second, the tail names the
    // first.
    let (first, _) = ov.head.get();
    ov.tail.set(&first, &[]);
    // The consumer empties the ring and makes room in the first segment.
    let mut got = Vec::new();
    for _ in 0..in_ring + 2 {
        got.push(q.try_get().unwrap());
    }
    for _ in 0..5 {
        q.put(put).unwrap();
        put += 1;
    }
    while let Ok(v) = q.try_get() {
        got.push(v);
    }
    assert_eq!(got, (0..put).collect::<Vec<_>>());
}

/// A zero-filled, page-aligned heap buffer standing in for a queue's mapping (Miri cannot map
/// a segment).
struct HeapRegion {
    ptr: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
}

impl HeapRegion {
    fn new(len: usize) -> HeapRegion {
        let layout = std::alloc::Layout::from_size_align(len, 4096).unwrap();
        // SAFETY: the layout has a non-zero size.
        let ptr = std::ptr::NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).unwrap();
        HeapRegion { ptr, layout }
    }
}

impl Drop for HeapRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the rings over it are gone.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// A fresh ring of `capacity` bytes over a heap region, and a second view of it as another
/// process attaches it.
fn heap_ring(capacity: u64, max_items: u64) -> (ring::Ring, ring::Ring, HeapRegion) {
    let len = ring::Ring::region_len(capacity);
    let region = HeapRegion::new(len);
    // SAFETY: the region is zero-filled, page-aligned, `len` bytes and unused; the rings are
    // dropped before it (callers bind them first).
    let a = unsafe { ring::Ring::init(region.ptr, len, capacity, max_items) };
    // SAFETY: as above; initialised just now.
    let b = unsafe { ring::Ring::attach(region.ptr, len) }.unwrap();
    (a, b, region)
}

fn item(tag: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (tag as usize * 31 + i) as u8).collect()
}

fn ring_get(r: &ring::Ring, deadline: park::Deadline) -> Result<Vec<u8>, ring::GetFail> {
    r.get(deadline, |_, bytes| bytes.to_vec(), &|read| Err(read))
}

/// Under Miri (`cargo xtask models`): the queue ring over a heap region, one thread: items of
/// every size up to the inline limit wrap around the ring many times (skip frames), a full
/// ring refuses, a malformed frame empties the ring instead of reading out of bounds.
#[test]
fn miri_queue_ring_wraps_and_refuses_when_full() {
    use ring::{FrameKind, GetFail, PutFail};
    let (a, b, _region) = heap_ring(ring::MIN_CAPACITY, 0);
    let max = a.max_inline();
    let mut tag = 0;
    for len in (0..=max).step_by(37).chain([max]) {
        for _ in 0..3 {
            tag += 1;
            a.put(
                FrameKind::Inline,
                &item(tag, len),
                park::Deadline::Now,
                None,
            )
            .unwrap();
            assert_eq!(ring_get(&b, park::Deadline::Now).unwrap(), item(tag, len));
        }
    }
    assert_eq!(
        ring_get(&b, park::Deadline::Now),
        Err(GetFail::Empty),
        "drained"
    );
    let mut n = 0;
    while a
        .put(FrameKind::Inline, &item(n, 60), park::Deadline::Now, None)
        .is_ok()
    {
        n += 1;
    }
    assert!(n > 0);
    assert_eq!(
        a.put(FrameKind::Inline, &[1], park::Deadline::Now, None),
        Err(PutFail::Full)
    );
    assert_eq!(b.len(), n as usize);
    for i in 0..n {
        assert_eq!(ring_get(&b, park::Deadline::Now).unwrap(), item(i, 60));
    }
    b.close();
    assert_eq!(
        a.put(FrameKind::Inline, &[1], park::Deadline::Now, None),
        Err(PutFail::Closed)
    );
    assert_eq!(ring_get(&a, park::Deadline::Now), Err(GetFail::Closed));
}

/// Under Miri: a producer thread and a consumer thread on two views of one heap ring with an
/// item bound, both blocking (the consumer on an empty ring, the producer on a full one):
/// order and bytes kept, and Miri's race detector sees the payload copies ordered by the
/// commits.
#[test]
fn miri_queue_ring_threads_exchange_in_order() {
    use ring::FrameKind;
    let (a, b, _region) = heap_ring(ring::MIN_CAPACITY, 2);
    let n: u32 = if cfg!(miri) { 12 } else { 2000 };
    std::thread::scope(|s| {
        let a = &a;
        s.spawn(move || {
            for i in 0..n {
                a.put(
                    FrameKind::Inline,
                    &item(i, (i as usize * 13) % 200),
                    park::Deadline::Never,
                    None,
                )
                .unwrap();
            }
        });
        for i in 0..n {
            assert_eq!(
                ring_get(&b, park::Deadline::Never).unwrap(),
                item(i, (i as usize * 13) % 200)
            );
        }
    });
    assert_eq!(b.len(), 0);
}
