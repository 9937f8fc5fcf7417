//! How process-pool workers hand back their replies (a shared reply ring where the platform
//! has one, the stream otherwise): order across small, large (over the ring's entry limit) and
//! wrapping replies, and W12 exactness when a worker dies right after replies of every size.

use std::io::Write as _;
use std::time::{Duration, Instant};

use processing::{Pool, PoolError};

/// A reply whose size and content depend on `i`: mostly small, every seventh one 200 000 bytes
/// (larger than a ring entry may be), so the ring wraps many times.
fn sized(i: u64) -> Vec<u8> {
    let len = if i.is_multiple_of(7) {
        200_000
    } else {
        (i * 37 % 5000) as usize
    };
    (0..len).map(|k| (i as usize + k) as u8).collect()
}

#[test]
fn w12_replies_of_every_size_arrive_in_order() {
    let p = Pool::new(2).expect("pool starts");
    let expected: Vec<Vec<u8>> = (0..300u64).map(sized).collect();
    assert_eq!(p.chunksize(1).map(sized, 0..300u64).unwrap(), expected);
    let rs: Vec<_> = (0..300u64)
        .map(|i| p.apply_async(sized, i).unwrap())
        .collect();
    for (i, r) in rs.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), expected[i], "task {i}");
    }
}

const DIE_AT: u64 = 150;

/// Appends `i` to the log file, dies at [`DIE_AT`], and returns a reply whose size varies
/// (every 25th one larger than a ring entry).
fn logged((i, log): (u64, String)) -> Vec<u8> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("log opens");
    writeln!(f, "{i}").expect("log write");
    drop(f);
    if i == DIE_AT {
        std::process::exit(3);
    }
    let len = if i % 25 == 24 {
        100_000
    } else {
        (i % 13) as usize
    };
    vec![i as u8; len]
}

#[test]
fn w12_death_after_replies_of_every_size_fails_exactly_that_task() {
    let log = std::env::temp_dir().join(format!("processing-pool-replies-{}", std::process::id()));
    std::fs::write(&log, "").unwrap();
    let log_s = log.to_string_lossy().into_owned();
    let p = Pool::new(1).expect("pool starts");
    let t = Instant::now();
    let rs: Vec<_> = (0..300u64)
        .map(|i| p.apply_async(logged, (i, log_s.clone())).unwrap())
        .collect();
    for (i, r) in rs.into_iter().enumerate() {
        let i = i as u64;
        match r.get() {
            Ok(v) => {
                assert_ne!(i, DIE_AT);
                let len = if i % 25 == 24 {
                    100_000
                } else {
                    (i % 13) as usize
                };
                assert_eq!(v, vec![i as u8; len], "task {i}");
            }
            Err(PoolError::WorkerLost { exitcode, .. }) => {
                assert_eq!(i, DIE_AT, "only the task that exited fails");
                assert_eq!(exitcode, Some(3));
            }
            Err(e) => panic!("task {i}: unexpected error {e:?}"),
        }
    }
    assert!(t.elapsed() < Duration::from_secs(60));
    // Every task ran exactly once: none was lost, none was run again after the death.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut seen: Vec<u64> = text.lines().map(|l| l.parse().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..300u64).collect::<Vec<_>>());
    assert_eq!(
        p.apply(logged, (0, log_s.clone())).unwrap(),
        Vec::<u8>::new()
    );
    let _ = std::fs::remove_file(&log);
}
