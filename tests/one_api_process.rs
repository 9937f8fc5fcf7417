//! A05: `processing::Process` and its thread twin `processing::dummy::Process` have the same
//! constructor, builder settings, lifecycle methods, return types and error type. One body
//! (the macro `a05_body!`) runs against both; where a thread cannot do what a process does
//! (settings only a new process can have, stopping it from outside), the body checks the
//! documented typed refusal on the twin and the real effect on the process.

use std::path::PathBuf;
use std::time::Duration;

use processing::process::{Resource, Stdio};
use processing::{Connection, Pipe, ProcessError, StartMethod};

fn add((a, b): (u32, u32)) -> u32 {
    a + b
}

fn unit(_: ()) {}

fn boom(_: ()) -> u8 {
    panic!("boom")
}

/// Blocks until the parent sends a number: the target is alive exactly until then.
fn wait_for(conn: Connection<u32>) -> u32 {
    conn.recv().unwrap()
}

fn env_value(key: String) -> Option<String> {
    std::env::var(key).ok()
}

fn working_dir(_: ()) -> PathBuf {
    std::env::current_dir().unwrap()
}

/// `start`'s error for a setting the worker cannot honour.
fn is_unsupported_setting(r: Result<(), ProcessError>) -> bool {
    matches!(r, Err(ref e) if e.spawn_error().is_some_and(|s| s.is_unsupported()))
}

macro_rules! a05_body {
    ($P:ident, $spawn:path, thread = $thread:expr) => {{
        let thread: bool = $thread;

        // Signatures: each method coerces to the same fn-pointer type on both faces.
        let _: fn(&mut $P<u32>) -> Result<(), ProcessError> = $P::<u32>::start;
        let _: fn(&mut $P<u32>) -> Result<u32, ProcessError> = $P::<u32>::join;
        let _: fn(&mut $P<u32>, Duration) -> Result<u32, ProcessError> = $P::<u32>::join_timeout;
        let _: fn(&$P<u32>) -> Result<(), ProcessError> = $P::<u32>::terminate;
        let _: fn(&$P<u32>) -> Result<(), ProcessError> = $P::<u32>::kill;
        let _: fn(&$P<u32>) -> bool = $P::<u32>::is_alive;
        let _: fn(&$P<u32>) -> Option<i32> = $P::<u32>::exitcode;
        let _: fn(&$P<u32>) -> Option<u32> = $P::<u32>::pid;
        let _: for<'a> fn(&'a $P<u32>) -> &'a str = $P::<u32>::get_name;
        let _: fn(&$P<u32>) -> bool = $P::<u32>::is_daemon;
        let _: fn(&mut $P<u32>, bool) -> Result<(), ProcessError> = $P::<u32>::set_daemon;
        let _: fn($P<u32>, bool) -> $P<u32> = $P::<u32>::daemon;
        let _: fn($P<u32>, Stdio) -> $P<u32> = $P::<u32>::stdin;
        let _: fn($P<u32>, Stdio) -> $P<u32> = $P::<u32>::stdout;
        let _: fn($P<u32>, Stdio) -> $P<u32> = $P::<u32>::stderr;
        let _: fn($P<u32>, Resource, u64, u64) -> $P<u32> = $P::<u32>::rlimit;
        let _: fn($P<u32>, StartMethod) -> $P<u32> = $P::<u32>::start_method;
        // `R` defaults to `()`.
        let _: $P = $P::new(unit, ());

        // Default names: `Process-N`.
        let anonymous: $P = $P::new(unit, ());
        let n = anonymous
            .get_name()
            .strip_prefix("Process-")
            .expect("Process-N");
        assert!(
            n.parse::<u32>().is_ok_and(|n| n > 0),
            "{}",
            anonymous.get_name()
        );

        // The lifecycle, with the settings a thread shares with a process.
        let mut p = $P::new(add, (40, 2))
            .name("a05-adder")
            .daemon(false)
            .start_method(StartMethod::Spawn)
            .stdin(Stdio::Inherit)
            .stdout(Stdio::Inherit)
            .stderr(Stdio::Inherit);
        assert_eq!(p.get_name(), "a05-adder");
        assert!(!p.is_daemon());
        assert!(!p.is_alive());
        assert_eq!(p.pid(), None);
        assert_eq!(p.exitcode(), None);
        assert!(matches!(p.join(), Err(ProcessError::NotStarted)));
        assert!(matches!(
            p.join_timeout(Duration::ZERO),
            Err(ProcessError::NotStarted)
        ));
        assert!(matches!(p.terminate(), Err(ProcessError::NotStarted)));
        assert!(matches!(p.kill(), Err(ProcessError::NotStarted)));
        p.set_daemon(true).unwrap();
        assert!(p.is_daemon());
        p.set_daemon(false).unwrap();
        p.start().unwrap();
        assert!(p.pid().is_some());
        assert!(matches!(p.start(), Err(ProcessError::AlreadyStarted)));
        assert!(matches!(
            p.set_daemon(true),
            Err(ProcessError::AlreadyStarted)
        ));
        assert!(!p.is_daemon());
        assert_eq!(p.join().unwrap(), 42);
        assert_eq!(p.exitcode(), Some(0));
        assert!(!p.is_alive());
        assert!(p.pid().is_some());
        assert!(matches!(p.join(), Err(ProcessError::AlreadyJoined)));
        assert!(matches!(
            p.join_timeout(Duration::ZERO),
            Err(ProcessError::AlreadyJoined)
        ));
        // Ended: stopping it does nothing, on both.
        p.terminate().unwrap();
        p.kill().unwrap();

        // `spawn` = `new` + `start`.
        let spawned: Result<$P<u32>, ProcessError> = $spawn(add, (1, 2));
        assert_eq!(spawned.unwrap().join().unwrap(), 3);

        // `join_timeout`: zero only checks, a short one times out, `Duration::MAX` waits.
        let (tx, rx) = Pipe::new::<u32>().unwrap();
        let mut p = $P::new(wait_for, rx);
        p.start().unwrap();
        assert!(matches!(
            p.join_timeout(Duration::ZERO),
            Err(ProcessError::Timeout)
        ));
        assert!(p
            .join_timeout(Duration::from_millis(20))
            .unwrap_err()
            .is_timeout());
        assert!(p.is_alive());
        assert_eq!(p.exitcode(), None);
        tx.send(&7).unwrap();
        assert_eq!(p.join_timeout(Duration::MAX).unwrap(), 7);
        assert_eq!(p.exitcode(), Some(0));

        // `join_async` (feature `async`): the same output, whether the end comes before or
        // after the first poll.
        #[cfg(feature = "async")]
        {
            let (tx, rx) = Pipe::new::<u32>().unwrap();
            let mut p = $P::new(wait_for, rx);
            p.start().unwrap();
            let sender = std::thread::spawn(move || tx.send(&5).unwrap());
            let joined: Result<u32, ProcessError> = processing::aio::block_on(p.join_async());
            assert_eq!(joined.unwrap(), 5);
            sender.join().unwrap();
            let again: Result<u32, ProcessError> = processing::aio::block_on(p.join_async());
            assert!(matches!(again, Err(ProcessError::AlreadyJoined)));
        }

        // `terminate`/`kill` of a running worker: a process ends; a thread cannot be stopped
        // from outside, says so, and goes on.
        for stop in [$P::<u32>::terminate, $P::<u32>::kill] {
            let (tx, rx) = Pipe::new::<u32>().unwrap();
            let mut p = $P::new(wait_for, rx);
            p.start().unwrap();
            let stopped: Result<(), ProcessError> = stop(&p);
            if thread {
                let e = stopped.unwrap_err();
                assert!(e.is_unsupported(), "{e:?}");
                assert!(matches!(e, ProcessError::Unsupported(_)));
                assert!(p.is_alive());
                tx.send(&1).unwrap();
                assert_eq!(p.join().unwrap(), 1);
            } else {
                stopped.unwrap();
                let e = p.join().unwrap_err();
                assert!(
                    matches!(e, ProcessError::Signaled(_) | ProcessError::Exited(_)),
                    "{e:?}"
                );
                assert_ne!(p.exitcode(), Some(0));
            }
        }

        // A panicking target: the same variant and exit code.
        let mut p: $P<u8> = $P::new(boom, ());
        p.start().unwrap();
        match p.join() {
            Err(ProcessError::Panicked { message, location }) => {
                assert_eq!(message, "boom");
                let location = location.expect("the panic's location");
                assert!(location.contains("one_api_process.rs"), "{location}");
            }
            other => panic!("expected Panicked, got {other:?}"),
        }
        assert_eq!(p.exitcode(), Some(1));

        // Settings only a new process can have: applied by a process, refused by `start` on a
        // thread (which is then used up, as after any failed start).
        let mut p = $P::new(env_value, "A05_ONLY_IN_THE_CHILD".to_string())
            .env("A05_ONLY_IN_THE_CHILD", "a05");
        if thread {
            assert!(is_unsupported_setting(p.start()));
            assert!(matches!(p.start(), Err(ProcessError::AlreadyStarted)));
        } else {
            p.start().unwrap();
            assert_eq!(p.join().unwrap().as_deref(), Some("a05"));
        }

        let dir = std::env::temp_dir();
        let mut p = $P::new(working_dir, ()).current_dir(&dir);
        if thread {
            assert!(is_unsupported_setting(p.start()));
        } else {
            p.start().unwrap();
            assert_eq!(
                std::fs::canonicalize(p.join().unwrap()).unwrap(),
                std::fs::canonicalize(&dir).unwrap()
            );
        }

        for redirect in [$P::<()>::stdin, $P::<()>::stdout, $P::<()>::stderr] {
            let mut p = redirect($P::new(unit, ()), Stdio::Null);
            if thread {
                assert!(is_unsupported_setting(p.start()));
            } else {
                p.start().unwrap();
                p.join().unwrap();
            }
        }

        let mut p = $P::new(add, (2, 3)).rlimit(Resource::OpenFiles, 256, 256);
        if thread || cfg!(not(unix)) {
            assert!(is_unsupported_setting(p.start()));
        } else {
            p.start().unwrap();
            assert_eq!(p.join().unwrap(), 5);
        }

        let mut p = $P::new(add, (3, 4)).executable(std::env::current_exe().unwrap());
        if thread {
            assert!(is_unsupported_setting(p.start()));
        } else {
            p.start().unwrap();
            assert_eq!(p.join().unwrap(), 7);
        }
    }};
}

#[test]
fn a05_process_api_on_processes() {
    use processing::{spawn, Process};
    a05_body!(Process, spawn, thread = false);
}

#[test]
fn a05_process_api_on_threads() {
    use processing::dummy::{spawn, Process};
    a05_body!(Process, spawn, thread = true);
}
