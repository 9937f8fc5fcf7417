//! Process conformance (P01–P11, P13) for the spawn and forkserver start methods; the fork
//! method runs the same bodies in `process_fork.rs` (its own binary, serialised).

use processing::StartMethod;
use processing_suite::process_cases as cases;

macro_rules! matrix {
    ($method:expr) => {
        use super::*;

        #[test]
        fn p01_lifecycle() {
            cases::p01_lifecycle($method);
        }

        #[test]
        fn p02_current_process() {
            cases::p02_current_process($method);
        }

        #[test]
        fn p03_terminate_sets_negative_signal() {
            cases::p03_terminate_sets_negative_signal($method);
        }

        #[test]
        fn p04_exit_codes() {
            cases::p04_exit_codes($method);
        }

        #[test]
        fn p05_return_value() {
            cases::p05_return_value($method);
        }

        #[test]
        fn p06_daemon() {
            cases::p06_daemon($method);
        }

        #[test]
        fn p07_nested_tree() {
            cases::p07_nested_tree($method);
        }

        #[test]
        fn p08_misuse_errors() {
            cases::p08_misuse_errors($method);
        }

        #[test]
        fn p09_many_processes() {
            cases::p09_many_processes($method);
        }

        #[test]
        fn p10_parent_process() {
            cases::p10_parent_process($method);
        }

        #[test]
        fn p11_no_fd_leak() {
            cases::p11_no_fd_leak($method);
        }
    };
}

mod spawn {
    matrix!(StartMethod::Spawn);
}

#[cfg(target_os = "linux")]
mod forkserver {
    matrix!(StartMethod::ForkServer);
}

#[test]
fn p13_start_methods_of_the_platform() {
    let available = StartMethod::available();
    assert!(available.contains(&StartMethod::Spawn));
    if cfg!(target_os = "linux") {
        assert_eq!(available, &[StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork]);
        assert_eq!(processing::get_start_method(), StartMethod::ForkServer);
    } else if cfg!(windows) {
        assert_eq!(available, &[StartMethod::Spawn]);
        assert_eq!(processing::get_start_method(), StartMethod::Spawn);
        let err = processing::get_context(StartMethod::Fork).unwrap_err();
        assert!(err.is_unsupported());
    }
    // The default method runs a process end to end.
    let mut p = processing::spawn(|x: u64| x * 2, 21).unwrap();
    assert_eq!(p.join().unwrap(), 42);
}
