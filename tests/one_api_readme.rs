//! A08: the README's example, and the guide's examples marked ```` ```rust twin ````, run
//! against `processing` and, with only their `use processing::…` line changed, against
//! `processing::dummy` (threads). `build.rs` extracts each block twice into `$OUT_DIR`; this
//! file includes both faces and runs each block's `main`.

use std::process::ExitCode;

include!(concat!(env!("OUT_DIR"), "/readme_processes.rs"));
include!(concat!(env!("OUT_DIR"), "/readme_threads.rs"));
include!(concat!(env!("OUT_DIR"), "/guide_twins.rs"));

#[test]
fn a08_readme_example_runs_on_processes_and_threads() {
    assert_eq!(readme_processes::run(), ExitCode::SUCCESS, "on processes");
    assert_eq!(readme_threads::run(), ExitCode::SUCCESS, "on threads");
}

#[test]
fn a08_guide_examples_run_on_processes_and_threads() {
    // The marked blocks are found (a lost marker would make this test vacuous).
    assert!(
        guide_processes::BLOCKS.len() >= 2,
        "{:?}",
        guide_processes::BLOCKS.len()
    );
    assert_eq!(guide_processes::BLOCKS.len(), guide_threads::BLOCKS.len());
    for (face, blocks) in [
        ("processes", guide_processes::BLOCKS),
        ("threads", guide_threads::BLOCKS),
    ] {
        for (origin, run) in blocks {
            assert_eq!(run(), ExitCode::SUCCESS, "{origin}, on {face}");
        }
    }
}
