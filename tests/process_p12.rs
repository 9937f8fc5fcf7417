//! P12: a started child that does not run the bootstrap is a clear error in the parent, and
//! such a child refuses to start processes itself (no recursive spawn).

use std::io::Write as _;

use processing::process::Stdio;
use processing::{Process, StartMethod};
use processing_suite::process_cases::temp_path;

fn noop(_: ()) {}

/// Set in the child of case (b): the file it writes its finding to.
const ROLE: &str = "PROCESSING_P12_REPORT";

#[test]
fn p12_no_bootstrap_is_an_error_not_a_recursive_spawn() {
    if let Some(report) = std::env::var_os(ROLE) {
        // The re-executed child whose pre-main hook was disabled: `main` (this test harness)
        // runs, and starting a process must refuse instead of spawning again.
        let err = Process::new(noop, ())
            .start_method(StartMethod::Spawn)
            .start()
            .unwrap_err();
        let recursive = err.spawn_error().is_some_and(|e| e.is_recursive());
        let _ = std::fs::write(report, format!("recursive={recursive}\n{err}\n"));
        return;
    }

    // (a) A program that does not link processing.
    #[cfg(unix)]
    {
        let mut p = Process::new(noop, ())
            .start_method(StartMethod::Spawn)
            .executable("/bin/true");
        let err = p.start().unwrap_err();
        let spawn = err.spawn_error().expect("a spawn error");
        assert!(spawn.is_no_bootstrap(), "{err}");
        assert!(
            err.to_string()
                .contains("child did not run the processing bootstrap"),
            "{err}"
        );
    }

    // (b) This program with its pre-main hook disabled: the child runs `main` and refuses.
    let report = temp_path("p12-report");
    let mut p = Process::new(noop, ())
        .start_method(StartMethod::Spawn)
        .env("PROCESSING_NO_AUTO_BOOTSTRAP", "1")
        .env(ROLE, report.to_string_lossy())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);
    let err = p.start().unwrap_err();
    assert!(
        err.spawn_error().is_some_and(|e| e.is_no_bootstrap()),
        "{err}"
    );
    let found = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    assert!(
        found.starts_with("recursive=true"),
        "child reported {found:?}"
    );
    assert!(
        found.contains("did not run the processing bootstrap"),
        "child reported {found:?}"
    );

    // (c) Another build of the program: the target cannot be located in it.
    let copy = temp_path("p12-other-build");
    let exe = std::env::current_exe().unwrap();
    std::fs::copy(&exe, &copy).unwrap();
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&copy)
            .unwrap();
        f.write_all(b"another build").unwrap();
    }
    let mut p = Process::new(noop, ())
        .start_method(StartMethod::Spawn)
        .executable(&copy);
    let err = p.start().unwrap_err();
    let _ = std::fs::remove_file(&copy);
    assert!(
        err.spawn_error().is_some_and(|e| e.is_different_binary()),
        "{err}"
    );
}
