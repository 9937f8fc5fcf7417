//! A07: `processing::Error` converts from the error of every area, keeps it as the cause, and
//! answers `is_timeout()` for the timeout of every area. Each error here is produced for real
//! (a real queue that stays empty, a real child that does not end in time, a real refused
//! connection, a real listener that never answers the handshake).

mod support;

use support::closed_port;

use std::error::Error as _;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use processing::Error;

/// The `std::io::Error` at the end of `e`'s chain of `source()`s (from the area error down).
fn io_in_chain<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        next = e.source();
    }
    None
}

/// A child that blocks until its pipe end sees the parent's end close (or a long sleep).
fn hold(conn: processing::Connection<u8>) {
    let _ = conn.poll(Duration::from_secs(60));
}

#[test]
fn a07_queue_get_and_put_timeouts_are_timeouts() {
    let q = processing::Queue::<u32>::bounded(1).unwrap();
    let e: Error = q.get_timeout(Duration::from_millis(20)).unwrap_err().into();
    assert!(e.is_timeout(), "{e:?}");
    q.put(1).unwrap();
    let e: Error = q
        .put_timeout(2, Duration::from_millis(20))
        .unwrap_err()
        .into();
    assert!(e.is_timeout(), "{e:?}");
    assert!(!e.is_closed());
    q.close();
    let e: Error = q.put(3).unwrap_err().into();
    assert!(e.is_closed() && !e.is_timeout(), "{e:?}");
}

#[test]
fn a07_process_join_timeout_is_a_timeout_and_a_killed_child_is_not() {
    let (parent, child_end) = processing::Pipe::new::<u8>().unwrap();
    let mut child = processing::spawn(hold, child_end).unwrap();
    let e: Error = child
        .join_timeout(Duration::from_millis(50))
        .unwrap_err()
        .into();
    assert!(e.is_timeout(), "{e:?}");
    child.kill().unwrap();
    let e: Error = child.join().unwrap_err().into();
    assert!(!e.is_timeout(), "{e:?}");
    assert!(matches!(e, Error::Process(_)), "{e:?}");
    drop(parent);
}

#[test]
fn a07_pool_result_timeout_is_a_timeout() {
    // The task is work that outlasts the test; terminate ends it.
    fn long_task(ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let pool = processing::Pool::new(1).unwrap();
    let result = pool.apply_async(long_task, 60_000).unwrap();
    let e: Error = result.get_timeout(Duration::ZERO).unwrap_err().into();
    assert!(e.is_timeout(), "{e:?}");
    pool.terminate();
}

#[test]
fn a07_lock_and_barrier_timeouts_are_timeouts() {
    let lock = processing::Lock::new().unwrap();
    let guard = lock.acquire().unwrap();
    let e: Error = lock
        .acquire_timeout(Duration::from_millis(10))
        .unwrap_err()
        .into();
    assert!(e.is_timeout() && !e.is_owner_died(), "{e:?}");
    drop(guard);
    let barrier = processing::Barrier::new(2).unwrap();
    let e: Error = barrier
        .wait_timeout(Duration::from_millis(10))
        .unwrap_err()
        .into();
    assert!(e.is_timeout(), "{e:?}");
}

#[test]
fn a07_handshake_timeout_is_a_timeout() {
    // A TCP listener that accepts and never says a word: the client's handshake read times out.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let started = Instant::now();
    let e = processing::Client::builder()
        .authkey(b"key")
        .handshake_timeout(Some(Duration::from_millis(100)))
        .connect::<u8>(addr.to_string())
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30));
    let e: Error = e.into();
    assert!(e.is_timeout(), "{e:?}");
    drop(silent);
}

#[test]
fn a07_refused_connect_keeps_the_os_error_and_names_the_address() {
    let addr = closed_port();
    let e = processing::Client::connect::<u8>(addr.to_string(), Some(b"key")).unwrap_err();
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
    let io = io_in_chain(&e).expect("the chain reaches the OS error");
    assert_eq!(io.kind(), ErrorKind::ConnectionRefused);
    let e: Error = e.into();
    assert!(!e.is_timeout());
    assert_eq!(
        e.os_error().map(std::io::Error::kind),
        Some(ErrorKind::ConnectionRefused)
    );
    // `Error` is transparent: its source is the area error's source, here the OS error.
    assert!(e.source().is_some());
}

#[test]
fn a07_refused_manager_connect_keeps_the_os_error() {
    let addr = closed_port();
    let e = processing::Manager::connect(addr.to_string(), b"key".to_vec()).unwrap_err();
    assert!(e.is_disconnected(), "{e:?}");
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
    let io = io_in_chain(&e).expect("the chain reaches the OS error");
    assert_eq!(io.kind(), ErrorKind::ConnectionRefused);
    let e: Error = e.into();
    assert!(e.is_disconnected());
    assert_eq!(
        e.os_error().map(std::io::Error::kind),
        Some(ErrorKind::ConnectionRefused)
    );
}

#[test]
fn a07_codec_error_keeps_the_codec_cause() {
    let e = processing::core::codec::decode::<String>(&[5, b'a']).unwrap_err();
    assert!(e.is_decode());
    assert!(e.source().is_some(), "the codec's own error is the source");
    let e: Error = e.into();
    assert!(matches!(e, Error::Codec(_)), "{e:?}");
}

#[test]
fn a07_error_chain_crosses_a_process_boundary_with_its_os_error() {
    // A child fails to open a file and returns the failure as an `ErrorChain`.
    fn open_missing(path: String) -> Result<(), processing::ErrorChain> {
        std::fs::File::open(&path)
            .map(drop)
            .map_err(|e| processing::ErrorChain::with_source(format!("cannot open {path}"), &e))
    }
    let missing = std::env::temp_dir().join("processing-a07-no-such-file");
    let missing = missing.to_string_lossy().into_owned();
    let mut child = processing::spawn(open_missing, missing.clone()).unwrap();
    let chain = child.join().unwrap().unwrap_err();
    assert_eq!(chain.message(), format!("cannot open {missing}"));
    assert_eq!(chain.messages().len(), 2);
    let e: Error = chain.into();
    assert_eq!(
        e.os_error().map(std::io::Error::kind),
        Some(ErrorKind::NotFound)
    );
}

/// Every area's error converts with `?`; the names are all at the top level.
#[test]
fn a07_every_area_error_converts() {
    fn convert<E: Into<Error>>(e: E) -> Error {
        e.into()
    }
    let errors: Vec<Error> = vec![
        convert(processing::ShmError::InvalidSize(0)),
        convert(processing::SyncError::InvalidArgument("x")),
        convert(processing::AcquireError::<()>::Timeout),
        convert(processing::ReleaseError::NotLocked),
        convert(processing::ConditionError::NotOwner),
        convert(processing::BarrierError::Timeout),
        convert(processing::TryPutError::Full(7u8)),
        convert(processing::TryGetError::Empty),
        convert(processing::TaskDoneError::TooMany),
        convert(processing::JoinTimeoutError::Timeout),
        convert(processing::ConnectionError::Eof),
        convert(processing::FrameError::NegativeLength(-2)),
        convert(processing::AuthError::Rejected),
        convert(processing::ListenerError::UnauthenticatedTcp),
        convert(processing::ManagerError::Disconnected("gone".into())),
        convert(processing::RemoteError::new(
            processing::RemoteErrorKind::NotFound,
            "x",
        )),
        convert(processing::PoolError::Timeout),
        convert(processing::Pool::new(0).unwrap_err()),
        convert(processing::ProcessError::Timeout),
        convert(processing::ErrorChain::new("x")),
        convert(std::io::Error::from(ErrorKind::TimedOut)),
        convert(processing::PutTimeoutError::Timeout(7u8)),
        convert(processing::GetTimeoutError::Timeout),
        convert(processing::PutError::Closed(7u8)),
        convert(processing::GetError::Closed),
    ];
    let timeouts = errors.iter().filter(|e| e.is_timeout()).count();
    // AcquireError, BarrierError, JoinTimeoutError, PoolError, ProcessError, io TimedOut,
    // PutTimeoutError, GetTimeoutError.
    assert_eq!(timeouts, 8, "{errors:#?}");
    assert!(errors[6].is_would_block() && errors[7].is_would_block());
    assert!(errors[errors.len() - 2].is_closed() && errors[errors.len() - 1].is_closed());
    assert!(errors[10].is_disconnected());
    assert!(errors[14].is_disconnected());
    assert!(errors[12].is_auth());
}

fn answer(x: u32) -> u32 {
    x
}

#[test]
fn a07_child_setup_failure_keeps_the_childs_os_error() {
    // The child cannot change to a directory that does not exist: it reports the failure with
    // its OS error, which the parent's `SpawnError` keeps as its source.
    let missing = std::env::temp_dir().join("processing-a07-no-such-dir");
    let mut p = processing::Process::new(answer, 1).current_dir(&missing);
    let e = p.start().unwrap_err();
    let spawn = e.spawn_error().expect("a spawn error");
    // Unix: the child reports its failed `chdir` (NotFound). Windows: `CreateProcess` refuses
    // the directory itself (ERROR_DIRECTORY, NotADirectory), before any child exists.
    let expected = if cfg!(windows) {
        ErrorKind::NotADirectory
    } else {
        assert!(spawn.is_setup(), "{e:?}");
        ErrorKind::NotFound
    };
    assert_eq!(
        spawn.os_error().map(std::io::Error::kind),
        Some(expected),
        "{e:?}"
    );
    let e: Error = e.into();
    assert_eq!(e.os_error().map(std::io::Error::kind), Some(expected));
}
