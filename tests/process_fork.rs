//! Process conformance (P01–P11, P13) for the fork start method, plus `Process::fork` with
//! capturing closures. Forking a multi-threaded test binary is only safe when no other test
//! thread holds a lock at that moment: every test here takes one global mutex.
// xtask: serial
#![cfg(unix)]

use std::sync::Mutex;

use processing::{Process, ProcessError, StartMethod};
use processing_suite::process_cases as cases;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

mod fork {
    use super::*;

    #[test]
    fn p01_lifecycle() {
        let _g = serial();
        cases::p01_lifecycle(StartMethod::Fork);
    }

    #[test]
    fn p02_current_process() {
        let _g = serial();
        cases::p02_current_process(StartMethod::Fork);
    }

    #[test]
    fn p03_terminate_sets_negative_signal() {
        let _g = serial();
        cases::p03_terminate_sets_negative_signal(StartMethod::Fork);
    }

    #[test]
    fn p04_exit_codes() {
        let _g = serial();
        cases::p04_exit_codes(StartMethod::Fork);
    }

    #[test]
    fn p05_return_value() {
        let _g = serial();
        cases::p05_return_value(StartMethod::Fork);
    }

    #[test]
    fn p06_daemon() {
        let _g = serial();
        cases::p06_daemon(StartMethod::Fork);
    }

    #[test]
    fn p07_nested_tree() {
        let _g = serial();
        cases::p07_nested_tree(StartMethod::Fork);
    }

    #[test]
    fn p08_misuse_errors() {
        let _g = serial();
        cases::p08_misuse_errors(StartMethod::Fork);
    }

    #[test]
    fn p09_many_processes() {
        let _g = serial();
        cases::p09_many_processes(StartMethod::Fork);
    }

    #[test]
    fn p10_parent_process() {
        let _g = serial();
        cases::p10_parent_process(StartMethod::Fork);
    }

    #[test]
    fn p11_no_fd_leak() {
        let _g = serial();
        cases::p11_no_fd_leak(StartMethod::Fork);
    }
}

#[test]
fn p05_fork_closure_returns_captured_state() {
    let _g = serial();
    let words = vec!["a".to_string(), "b".to_string()];
    let base = 40u32;
    let mut p = Process::fork(move || (words.join("+"), base + 2));
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), ("a+b".to_string(), 42));
}

#[test]
fn p04_fork_closure_panic_and_exit() {
    let _g = serial();
    let mut p: Process<u8> = Process::fork(|| panic!("closure boom"));
    p.start().unwrap();
    assert!(matches!(p.join(), Err(ProcessError::Panicked { ref message, .. }) if message == "closure boom"));
    let mut p: Process<u8> = Process::fork(|| std::process::exit(3));
    p.start().unwrap();
    assert!(matches!(p.join(), Err(ProcessError::Exited(3))));
}

#[test]
fn p13_fork_closure_needs_fork_method() {
    let _g = serial();
    let mut p: Process<u8> = Process::fork(|| 1).start_method(StartMethod::Spawn);
    let err = p.start().unwrap_err();
    assert!(err.spawn_error().is_some_and(|e| e.is_unsupported()), "{err}");
}
