//! Conformance tests A01, A03 and A06 (docs/conformance.md, "One API"): the queue family and
//! the pipe answer alike as direct objects across a real child process and as their thread
//! twins in `processing::dummy`.
//!
//! `same_source!` expands one block of source twice: in `mod direct` under
//! `use processing::{…}` and in `mod twin` under `use processing::dummy::{…}`. Every test below
//! is therefore the same code compiled against both faces, with the error types named once
//! (`processing::transport::queue::…`, `processing::ConnectionError`): if a twin signature or
//! error type drifted from the direct one, this file would stop compiling.

use std::time::Duration;

/// Long enough to observe a timeout; the waits below are checked to last at least this.
const SHORT: Duration = Duration::from_millis(30);

/// A value that never encodes (a put must hand it back with `Encode`).
#[derive(Debug, PartialEq, serde::Deserialize)]
pub struct NoWire(u32);

impl serde::Serialize for NoWire {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("NoWire never encodes"))
    }
}

macro_rules! same_source {
    ($($body:tt)*) => {
        /// The direct objects, their workers real child processes.
        mod direct {
            #[allow(unused_imports)]
            use processing::{
                Connection, JoinableQueue, Pipe, Process, Queue, QueueBuilder, SimpleQueue,
            };
            $($body)*
        }
        /// The thread twins, their workers threads.
        mod twin {
            #[allow(unused_imports)]
            use processing::dummy::{
                Connection, JoinableQueue, Pipe, Process, Queue, QueueBuilder, SimpleQueue,
            };
            $($body)*
        }
    };
}

same_source! {
    use std::time::{Duration, Instant};

    use processing::transport::queue::{
        GetError, GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError, QueueError,
        TaskDoneError, TryGetError, TryPutError,
    };
    use processing::transport::{ReadOnly, WriteOnly};
    use processing::ConnectionError;

    use super::{NoWire, SHORT};

    /// Runs `f(args)` in a worker (a child process or a thread) and returns its result.
    macro_rules! in_worker {
        ($f:expr, $args:expr) => {{
            let mut p = Process::new($f, $args);
            p.start().unwrap();
            p.join().unwrap()
        }};
    }

    /// What `wait` (a wait of `SHORT` that times out) returned, once checked to have taken
    /// at least `SHORT`.
    fn after_short<E>(wait: impl FnOnce() -> E) -> E {
        let t = Instant::now();
        let e = wait();
        assert!(t.elapsed() >= SHORT, "returned after {:?}, before {SHORT:?}", t.elapsed());
        e
    }

    fn put_one((q, v): (Queue<u32>, u32)) -> bool {
        q.put(v).is_ok()
    }

    fn close_it(q: Queue<u32>) {
        q.close();
    }

    fn get_for_ever(q: Queue<u32>) -> u32 {
        q.get_timeout(Duration::MAX).unwrap()
    }

    fn put_for_ever((q, v): (Queue<u32>, u32)) -> bool {
        q.put_timeout(v, Duration::MAX).is_ok()
    }

    #[test]
    fn a01_queue_operations_answer_alike() {
        let e: QueueError = Queue::<u32>::bounded(0).unwrap_err();
        assert!(e.is_invalid_argument());
        let e: QueueError = QueueBuilder::new().max_items(0).build::<u32>().unwrap_err();
        assert!(e.is_invalid_argument());
        let q: Queue<u32> = QueueBuilder::new().max_items(1).build().unwrap();
        assert_eq!(q.max_items(), Some(1));
        assert!(in_worker!(put_one, (q.clone(), 41)));
        assert!(q.is_full());
        assert_eq!(q.len(), 1);

        // A full queue hands the item back.
        let e: TryPutError<u32> = q.try_put(2).unwrap_err();
        assert!(e.is_full());
        assert_eq!(e.into_inner(), 2);
        let e: PutTimeoutError<u32> = after_short(|| q.put_timeout(3, SHORT).unwrap_err());
        assert!(e.is_timeout());
        assert_eq!(e.into_inner(), 3);
        // A zero timeout is one attempt.
        assert_eq!(q.put_timeout(4, Duration::ZERO), Err(PutTimeoutError::Timeout(4)));
        assert_eq!(q.get_timeout(Duration::ZERO), Ok(41));

        // An empty queue.
        let e: TryGetError = q.try_get().unwrap_err();
        assert!(e.is_empty());
        let e: GetTimeoutError = after_short(|| q.get_timeout(SHORT).unwrap_err());
        assert!(e.is_timeout());
        assert_eq!(q.get_timeout(Duration::ZERO), Err(GetTimeoutError::Timeout));
        q.put_timeout(5, Duration::ZERO).unwrap();
        assert_eq!(q.try_get(), Ok(5));

        // `Duration::MAX` waits for ever: the worker gets the item put after it started, and
        // puts into the room freed after it started.
        let mut p = Process::new(get_for_ever, q.clone());
        p.start().unwrap();
        q.put(6).unwrap();
        assert_eq!(p.join().unwrap(), 6);
        q.put(7).unwrap();
        let mut p = Process::new(put_for_ever, (q.clone(), 8));
        p.start().unwrap();
        assert_eq!(q.get(), Ok(7));
        assert!(p.join().unwrap());
        assert_eq!(q.get(), Ok(8));

        // An item that does not encode comes back.
        let nq: Queue<NoWire> = Queue::new().unwrap();
        let e: PutError<NoWire> = nq.put(NoWire(1)).unwrap_err();
        assert!(e.is_encode());
        assert_eq!(e.into_inner(), NoWire(1));
        assert!(nq.try_put(NoWire(2)).unwrap_err().is_encode());
        assert!(nq.is_empty());

        // Closed by the worker: puts hand the item back, gets drain, then report it.
        q.put(9).unwrap();
        in_worker!(close_it, q.clone());
        assert!(q.is_closed());
        assert_eq!(q.put(10), Err(PutError::Closed(10)));
        assert_eq!(q.try_put(11), Err(TryPutError::Closed(11)));
        assert_eq!(q.put_timeout(12, SHORT), Err(PutTimeoutError::Closed(12)));
        assert_eq!(q.get(), Ok(9));
        let e: GetError = q.get().unwrap_err();
        assert!(e.is_closed());
        assert_eq!(q.try_get(), Err(TryGetError::Closed));
        assert_eq!(q.get_timeout(SHORT), Err(GetTimeoutError::Closed));
    }

    fn simple_put(q: SimpleQueue<String>) -> bool {
        q.put("from the worker".to_string()).is_ok()
    }

    #[test]
    fn a01_simple_queue_answers_alike() {
        let q: SimpleQueue<String> = SimpleQueue::new().unwrap();
        assert!(q.is_empty());
        assert!(in_worker!(simple_put, q.clone()));
        assert!(!q.is_empty());
        assert_eq!(q.get(), Ok("from the worker".to_string()));
        q.close();
        assert!(q.is_closed());
        let e: PutError<String> = q.put("late".to_string()).unwrap_err();
        assert!(e.is_closed());
        assert_eq!(e.into_inner(), "late");
        let e: GetError = q.get().unwrap_err();
        assert!(e.is_closed());
    }

    fn consume((q, n): (JoinableQueue<u32>, usize)) -> u32 {
        let mut sum = 0;
        for _ in 0..n {
            sum += q.get().unwrap();
            q.task_done().unwrap();
        }
        sum
    }

    #[test]
    fn a03_joinable_queue_answers_alike() {
        let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
        let e: TaskDoneError = q.task_done().unwrap_err();
        assert!(e.is_too_many());
        for i in 1..=3 {
            q.put(i).unwrap();
        }
        let e: JoinTimeoutError = q.join_timeout(Duration::ZERO).unwrap_err();
        assert!(e.is_timeout());
        assert!(after_short(|| q.join_timeout(SHORT)).unwrap_err().is_timeout());

        let mut p = Process::new(consume, (q.clone(), 3));
        p.start().unwrap();
        q.join();
        assert_eq!(p.join().unwrap(), 6);
        assert!(q.is_empty());
        q.join_timeout(Duration::ZERO).unwrap();
        // One task_done too many, the same error on both faces.
        let e: TaskDoneError = q.task_done().unwrap_err();
        assert!(e.is_too_many());
        assert_eq!(e.to_string(), "task_done called more times than items were put");

        // `join_timeout(Duration::MAX)` waits for ever.
        q.put(4).unwrap();
        let mut p = Process::new(consume, (q.clone(), 1));
        p.start().unwrap();
        q.join_timeout(Duration::MAX).unwrap();
        assert_eq!(p.join().unwrap(), 4);
        let bounded: JoinableQueue<u32> = JoinableQueue::bounded(1).unwrap();
        bounded.put(1).unwrap();
        assert!(bounded.try_put(2).unwrap_err().is_full());
        assert!(JoinableQueue::<u32>::bounded(0).unwrap_err().is_invalid_argument());
    }

    fn echo(conn: Connection<(u32, String)>) -> u32 {
        let mut n = 0;
        loop {
            let v = conn.recv().unwrap();
            if v.0 == u32::MAX {
                break;
            }
            conn.send(&v).unwrap();
            n += 1;
        }
        conn.send_bytes(b"bye").unwrap();
        n
    }

    #[test]
    fn a06_pipe_answers_alike() {
        type End = Connection<(u32, String)>;
        let pair: Result<(End, End), ConnectionError> = Pipe::new();
        let (a, b) = pair.unwrap();
        let e: ConnectionError = a.try_recv().unwrap_err();
        assert!(e.is_would_block());
        let e: ConnectionError = after_short(|| a.recv_timeout(SHORT).unwrap_err());
        assert!(e.is_timeout());
        assert!(a.recv_timeout(Duration::ZERO).unwrap_err().is_timeout());
        assert!(a.recv_bytes_timeout(Duration::ZERO).unwrap_err().is_timeout());
        assert!(a.try_recv_bytes().unwrap_err().is_would_block());
        assert!(!a.poll(Duration::ZERO).unwrap());

        let mut p = Process::new(echo, b);
        p.start().unwrap();
        a.send(&(1, "one".to_string())).unwrap();
        assert_eq!(a.recv_timeout(Duration::MAX).unwrap(), (1, "one".to_string()));
        a.send(&(2, "two".to_string())).unwrap();
        assert!(a.poll(Duration::MAX).unwrap());
        assert_eq!(a.try_recv().unwrap(), (2, "two".to_string()));
        a.send(&(3, "three".to_string())).unwrap();
        assert_eq!(a.recv().unwrap(), (3, "three".to_string()));
        a.send(&(u32::MAX, String::new())).unwrap();
        assert_eq!(a.recv_bytes().unwrap(), b"bye");
        assert_eq!(p.join().unwrap(), 3);
        drop(p);
        // The worker's end is gone: the end of the stream, then a failed send.
        assert!(a.recv().unwrap_err().is_eof());
        assert!(a.try_recv().unwrap_err().is_eof());
        assert!(a.recv_timeout(SHORT).unwrap_err().is_eof());
        assert!(a.poll(Duration::ZERO).unwrap());
        assert!(a.send(&(0, String::new())).unwrap_err().is_eof());
    }

    fn count_down(tx: Connection<u32, WriteOnly>) {
        for i in (0..3).rev() {
            tx.send(&i).unwrap();
        }
    }

    #[test]
    fn a06_simplex_pipe_answers_alike() {
        let (rx, tx): (Connection<u32, ReadOnly>, Connection<u32, WriteOnly>) =
            Pipe::simplex().unwrap();
        in_worker!(count_down, tx);
        assert_eq!(rx.recv().unwrap(), 2);
        assert_eq!(rx.recv_timeout(Duration::MAX).unwrap(), 1);
        assert_eq!(rx.recv().unwrap(), 0);
        assert!(rx.recv().unwrap_err().is_eof());
    }

    #[test]
    fn a06_bytes_and_typed_messages_mix_alike() {
        let (a, b) = Pipe::new::<u32>().unwrap();
        a.send_bytes(b"").unwrap();
        let e: ConnectionError = b.recv().unwrap_err();
        assert!(e.is_malformed(), "{e:?}");
        a.send(&7).unwrap();
        let mut buf = [0u8; 1];
        assert!(b.recv_bytes_into(&mut buf, 0).unwrap_err().is_buffer_too_short());
        a.send(&8).unwrap();
        let bytes = b.recv_bytes().unwrap();
        assert_eq!((bytes.len(), bytes[0], bytes[5]), (6, 0, 8), "{bytes:?}");
        let big: Connection<NoWire> = a.with_type();
        assert!(matches!(big.send(&NoWire(1)), Err(ConnectionError::Codec(_))));
    }
}

/// A receive that times out while its writer is stopped in the middle of a message keeps what
/// arrived: once the writer resumes, the whole message and the next one arrive in step. The
/// writer is a child process stopped with SIGSTOP while it waits for room in the middle of a
/// 4 MiB message (larger than the pipe's ring or socket buffer, so it is surely mid-frame).
#[cfg(target_os = "linux")]
mod stalled_writer {
    use std::time::{Duration, Instant};

    use processing::{Connection, Pipe, Process};

    const LEN: usize = 4 << 20;

    fn pattern() -> Vec<u8> {
        (0..LEN).map(|i| (i % 251) as u8).collect()
    }

    fn big_writer(conn: Connection<()>) {
        conn.send_bytes(&pattern()).unwrap();
        conn.send_bytes(b"after").unwrap();
    }

    fn signal(pid: u32, sig: i32) {
        // SAFETY: kill has no memory effects; the pid is our own running child.
        assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
    }

    /// Waits until the child is in the stopped state (`T` in /proc/PID/stat).
    fn wait_stopped(pid: u32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let state = stat.rsplit(')').next().unwrap().trim_start().chars().next();
            if state == Some('T') {
                return;
            }
            assert!(Instant::now() < deadline, "child {pid} never stopped");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn stall_mid_frame(reader: Connection<()>, writer: Connection<()>) {
        let mut p = Process::new(big_writer, writer);
        p.start().unwrap();
        let pid = p.pid().unwrap();
        assert!(reader.poll(Duration::MAX).unwrap());
        signal(pid, libc::SIGSTOP);
        wait_stopped(pid);
        assert!(reader.try_recv_bytes().unwrap_err().is_would_block());
        let t = Instant::now();
        let e = reader
            .recv_bytes_timeout(Duration::from_millis(50))
            .unwrap_err();
        assert!(e.is_timeout(), "{e:?}");
        assert!(t.elapsed() >= Duration::from_millis(50));
        signal(pid, libc::SIGCONT);
        let m = reader.recv_bytes_timeout(Duration::MAX).unwrap();
        assert_eq!(m.len(), LEN);
        assert!(m == pattern(), "the message arrived altered");
        assert_eq!(reader.recv_bytes().unwrap(), b"after");
        p.join().unwrap();
    }

    #[test]
    fn a06_recv_timeout_keeps_a_partial_frame_shared_memory_pipe() {
        let (a, b) = Pipe::new::<()>().unwrap();
        stall_mid_frame(a, b);
    }

    #[test]
    fn a06_recv_timeout_keeps_a_partial_frame_socket() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = Connection::<()>::from_os_handle(a.into()).unwrap();
        let b = Connection::<()>::from_os_handle(b.into()).unwrap();
        stall_mid_frame(a, b);
    }
}

/// Twin handles serialize as direct ones do (spawn arguments, pool task arguments, items of
/// another queue, messages of a pipe): within the process they re-attach to the same queue or
/// pipe end, even after the sender dropped its handle.
mod twin_handles_travel {
    use processing::dummy::{Pipe, Pool, Queue};

    fn put_through(q: Queue<u32>) -> u32 {
        q.put(5).unwrap();
        5
    }

    #[test]
    fn a01_twin_handles_travel_like_direct_ones() {
        let pool = Pool::new(1).unwrap();
        let q: Queue<u32> = Queue::new().unwrap();
        assert_eq!(pool.apply(put_through, q.clone()).unwrap(), 5);
        assert_eq!(q.get(), Ok(5));

        let outer: Queue<Queue<u32>> = Queue::new().unwrap();
        let inner: Queue<u32> = Queue::new().unwrap();
        outer.put(inner.clone()).unwrap();
        let back = outer.get().unwrap();
        back.put(6).unwrap();
        assert_eq!(inner.get(), Ok(6));

        // Moved in (the sender keeps no handle), it still arrives.
        let moved: Queue<u32> = Queue::new().unwrap();
        moved.put(7).unwrap();
        outer.put(moved).unwrap();
        assert_eq!(outer.get().unwrap().get(), Ok(7));

        let (a, b) = Pipe::new::<u32>().unwrap();
        let (carrier_a, carrier_b) = Pipe::new::<processing::dummy::Connection<u32>>().unwrap();
        carrier_a.send(&b).unwrap();
        drop(b);
        let b = carrier_b.recv().unwrap();
        a.send(&8).unwrap();
        assert_eq!(b.recv().unwrap(), 8);
        // The received end is the only one left: dropping it ends the stream.
        drop(b);
        assert!(a.recv().unwrap_err().is_eof());
    }
}
