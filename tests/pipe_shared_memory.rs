// xtask: not-conformance
//! The shared-memory fast path of `Pipe` pairs (Linux) across real processes: a peer that is
//! SIGKILLed still gives EOF to a reader and an error to a blocked writer, and several
//! processes can write one end at once (messages stay whole: a guarantee of the shared-memory
//! path only). On other platforms the first two tests run on the socket path.

use std::time::Duration;

use processing::{spawn, Connection, Pipe};

fn send_then_hang(conn: Connection<u32>) {
    conn.send(&1).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn sigkilled_writer_gives_eof_to_a_sleeping_reader() {
    let (parent, child) = Pipe::new::<u32>().unwrap();
    let p = spawn(send_then_hang, child).unwrap();
    assert_eq!(parent.recv().unwrap(), 1);
    // A second receive blocks (spins, then sleeps) until the child dies.
    let reader = std::thread::spawn(move || parent.recv());
    // Not synchronisation: the result is the same whether the kill lands before or after the
    // reader went to sleep; the pause makes the sleeping path the one usually exercised.
    std::thread::sleep(Duration::from_millis(100));
    p.kill().unwrap();
    let e = reader.join().unwrap().unwrap_err();
    assert!(e.is_eof(), "{e}");
}

fn ready_then_hang(conn: Connection<()>) {
    conn.send_bytes(b"ready").unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn sigkilled_reader_unblocks_a_writer_on_a_full_pipe() {
    let (parent, child) = Pipe::new::<()>().unwrap();
    let p = spawn(ready_then_hang, child).unwrap();
    assert_eq!(parent.recv_bytes().unwrap(), b"ready");
    let writer = std::thread::spawn(move || parent.send_bytes(&vec![1u8; 16 << 20]));
    // As above: the pause only makes "blocked on a full pipe" the usual case.
    std::thread::sleep(Duration::from_millis(100));
    p.kill().unwrap();
    let e = writer.join().unwrap().unwrap_err();
    assert!(e.is_eof(), "{e}");
}

fn write_many((tx, w): (Connection<()>, u8)) {
    for i in 0..1000u32 {
        let len = (i as usize * 97) % 40_000;
        let mut m = vec![w ^ (i as u8); len];
        m.extend_from_slice(&[w]);
        m.extend_from_slice(&i.to_be_bytes());
        tx.send_bytes(&m).unwrap();
    }
}

#[test]
fn two_processes_write_one_end() {
    let (rx, tx) = Pipe::new::<()>().unwrap();
    if !format!("{tx:?}").contains("shared_memory: true") {
        // The socket path (other platforms, or PROCESSING_PIPE_RING=0) gives no such
        // guarantee, as Python's pipes do not: writers sharing an end need a lock there.
        eprintln!("socket path: writers sharing one end are not serialised; skipped");
        return;
    }
    let mut a = spawn(write_many, (tx.clone(), 1)).unwrap();
    let mut b = spawn(write_many, (tx, 2)).unwrap();
    let mut next = [0u32; 3];
    for _ in 0..2000 {
        let m = rx.recv_bytes().unwrap();
        let (body, tag) = m.split_at(m.len() - 5);
        let w = tag[0];
        let i = u32::from_be_bytes([tag[1], tag[2], tag[3], tag[4]]);
        assert_eq!(i, next[w as usize], "messages of writer {w} in order");
        assert_eq!(body.len(), (i as usize * 97) % 40_000);
        assert!(
            body.iter().all(|&x| x == w ^ (i as u8)),
            "message {i} of {w} is whole"
        );
        next[w as usize] += 1;
    }
    a.join().unwrap();
    b.join().unwrap();
    assert!(rx.recv_bytes().unwrap_err().is_eof());
}

fn echo_until_eof(conn: Connection<()>) -> usize {
    let mut n = 0;
    while let Ok(m) = conn.recv_bytes() {
        conn.send_bytes(&m).unwrap();
        n += 1;
    }
    n
}

#[test]
fn every_start_method_carries_the_pipe() {
    // The ends travel by serialization (spawn, forkserver) or are inherited by fork; the
    // shared mapping must work either way.
    for &method in processing::StartMethod::available() {
        let ctx = processing::get_context(method).unwrap();
        let (parent, child) = Pipe::new::<()>().unwrap();
        let mut p = ctx.process(echo_until_eof, child);
        p.start().unwrap();
        let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
        for m in [&b"x"[..], &[][..], &big[..]] {
            parent.send_bytes(m).unwrap();
            assert!(parent.recv_bytes().unwrap() == m, "{method:?}");
        }
        drop(parent);
        assert_eq!(p.join().unwrap(), 3, "{method:?}");
    }
}
