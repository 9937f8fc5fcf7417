//! Robustness of processes at the edges (docs/conformance.md R02, R09): few descriptors left,
//! huge timeouts.

mod support;

use std::time::Duration;

use processing::{Pipe, Process};
use processing_suite::process_cases::sleeper;

#[test]
fn r09_join_timeout_and_wait_accept_duration_max() {
    let mut p = Process::new(sleeper, 10);
    p.start().unwrap();
    p.join_timeout(Duration::MAX).unwrap();
    let (a, b) = Pipe::new::<u8>().unwrap();
    a.send(&1).unwrap();
    assert_eq!(processing::wait(&[&b], Some(Duration::MAX)).unwrap(), [0]);
    assert_eq!(b.recv().unwrap(), 1);
    // A finite timeout beyond what one poll(2) call takes (i32::MAX ms), with a fraction of a
    // millisecond.
    let mut p = Process::new(sleeper, 10);
    p.start().unwrap();
    p.join_timeout(Duration::from_secs(1 << 40) + Duration::from_nanos(1))
        .unwrap();
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use crate::support::{in_spawned_child, limit_fds};
    use processing::StartMethod;

    use std::time::Instant;

    const HUNG: &str = "a start hung with few descriptors left";

    /// Starts sleepers with `method` until a start fails; the failure must be a prompt, typed
    /// start error whose source chain holds the OS error (EMFILE).
    fn starts_until_exhausted(spawn: bool) -> Result<(), String> {
        let method = if spawn {
            StartMethod::Spawn
        } else {
            StartMethod::Fork
        };
        limit_fds(40)?;
        let mut sleepers = Vec::new();
        let outcome = loop {
            if sleepers.len() > 200 {
                break Err("200 starts with 40 descriptors".to_string());
            }
            let mut p = Process::new(sleeper, 60_000).start_method(method);
            let t = Instant::now();
            match p.start() {
                Ok(()) => sleepers.push(p),
                Err(e) => {
                    let took = t.elapsed();
                    let spawn_error = e.spawn_error().map(|s| s.is_io());
                    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&e);
                    let mut emfile = false;
                    while let Some(err) = next {
                        emfile |= err
                            .downcast_ref::<std::io::Error>()
                            .is_some_and(|io| io.raw_os_error() == Some(libc::EMFILE));
                        next = err.source();
                    }
                    break if took > Duration::from_secs(10) {
                        Err(format!("the failing start took {took:?}"))
                    } else if spawn_error != Some(true) {
                        Err(format!("not a typed OS start error: {e:?}"))
                    } else if !emfile {
                        Err(format!("EMFILE is not in the source chain: {e}"))
                    } else {
                        Ok(())
                    };
                }
            }
        };
        for p in &mut sleepers {
            let _ = p.kill();
            let _ = p.join();
        }
        // The children that could not start were not left behind.
        if !processing::active_children().is_empty() {
            return Err("children left behind".into());
        }
        outcome
    }

    #[test]
    fn r02_spawn_with_few_descriptors_is_a_typed_error() {
        in_spawned_child(starts_until_exhausted, true, HUNG);
    }

    #[test]
    fn r02_fork_with_few_descriptors_is_a_typed_error() {
        in_spawned_child(starts_until_exhausted, false, HUNG);
    }
}
