//! The model-checking legs of `cargo xtask test`: loom and Miri.
//!
//! - loom: every `tests/loom_*.rs` of every workspace crate (found by file name, so a new model
//!   runs without touching this file), built with `RUSTFLAGS="--cfg loom"` in release mode in
//!   its own target directory (`target/loom`, so the ordinary build is not invalidated), with
//!   `LOOM_MAX_PREEMPTIONS` set to [`LOOM_PREEMPTIONS`] unless the environment sets it.
//! - Miri: the unit tests whose name starts with `miri_` (single-process logic over unsafe code:
//!   rings over an anonymous mapping, codecs, frame parsing), under `cargo miri test` when a
//!   toolchain with the `miri` component is installed; otherwise a loud `miri: SKIPPED (...)`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::test::{env_secs, Leg};
use crate::util::{cargo, count_tests, fmt_secs, run_capture_timeout, target_dir};

/// The preemption bound of the loom leg: 2 explores every interleaving with up to two forced
/// context switches, which finds the classic lost-wake-up and double-acquire bugs and keeps the
/// leg to a few minutes on a 2-core machine. (A model that sets its own bound keeps it.)
pub const LOOM_PREEMPTIONS: u32 = 2;

/// Per package: building in release mode with loom, then running its models.
const LOOM_TIMEOUT: Duration = Duration::from_secs(900);

/// Per `cargo miri test` run (Miri interprets; it is slow).
const MIRI_TIMEOUT: Duration = Duration::from_secs(1800);

/// The test-name prefix of the unit tests the Miri leg runs.
pub const MIRI_PREFIX: &str = "miri_";

/// `MIRIFLAGS` of the Miri leg unless the environment sets it. Strict provenance: an
/// integer-to-pointer cast is an error (the pointer's allocation must be known for Miri to
/// check the access). Isolation stays on (no host clock, files or environment); an operation
/// it forbids fails with an error the code handles (a warning says which) instead of ending
/// the run: the owner-checked locks read this process's start time from `/proc`, and fall back
/// to the pid alone without it.
pub const MIRI_FLAGS: &str = "-Zmiri-strict-provenance -Zmiri-isolation-error=warn-nobacktrace";

/// `(package, [test target names])` of every `tests/loom_*.rs` in the workspace, sorted.
pub fn loom_models() -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out = Vec::new();
    for pkg in crate::tidy::workspace_packages()? {
        let Ok(entries) = std::fs::read_dir(pkg.dir.join("tests")) else {
            continue;
        };
        let mut stems: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| Some(n.strip_suffix(".rs")?.to_string()))
            .filter(|stem| stem.starts_with("loom_"))
            .collect();
        if !stems.is_empty() {
            stems.sort();
            out.push((pkg.name, stems));
        }
    }
    out.sort();
    Ok(out)
}

/// Runs every loom model; a missing model set is a failure (seven exist in processing-sync).
pub fn loom_leg() -> Leg {
    let start = Instant::now();
    let mut leg = Leg::default();
    let models = match loom_models() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("loom: FAILED: {e}");
            leg.failed += 1;
            leg.failures.push("loom: listing the models".into());
            return leg;
        }
    };
    if models.is_empty() {
        eprintln!("loom: FAILED: no tests/loom_*.rs found in any workspace crate");
        leg.failed += 1;
        leg.failures.push("loom: no model".into());
        return leg;
    }
    let preemptions = std::env::var("LOOM_MAX_PREEMPTIONS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(LOOM_PREEMPTIONS);
    let dir: PathBuf = target_dir().join("loom");
    let timeout = env_secs("XTASK_LOOM_TIMEOUT", LOOM_TIMEOUT);
    for (package, stems) in &models {
        let mut cmd = cargo();
        cmd.args(["test", "--release", "--all-features", "-p", package]);
        for s in stems {
            cmd.args(["--test", s]);
        }
        cmd.env("RUSTFLAGS", "--cfg loom")
            .env("CARGO_TARGET_DIR", &dir)
            .env("LOOM_MAX_PREEMPTIONS", preemptions.to_string());
        eprintln!(
            "loom: {package}: {} (LOOM_MAX_PREEMPTIONS={preemptions})",
            stems.join(", ")
        );
        let t = Instant::now();
        let run = run_capture_timeout(&mut cmd, Some(timeout));
        let (p, f) = leg.tally(
            &run,
            "loom",
            package,
            timeout,
            "did not build or crashed",
            Some("no model ran (is the file `#![cfg(loom)]` with #[test]s?)"),
        );
        eprintln!(
            "loom: {package}: {p} passed, {f} failed in {}",
            fmt_secs(t.elapsed())
        );
    }
    eprintln!("loom: done in {}", fmt_secs(start.elapsed()));
    leg
}

/// The `cargo` invocation prefix that has Miri: the current toolchain's, else nightly's.
fn miri_cargo() -> Result<Vec<String>, String> {
    let works = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .args(["miri", "--version"])
            .env_remove("CARGO")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    for prefix in [&[][..], &["+nightly"][..]] {
        if works(prefix) {
            return Ok(prefix.iter().map(|s| s.to_string()).collect());
        }
    }
    Err(
        "`cargo miri` is not installed for the default or the nightly toolchain; \
         `rustup component add miri` needs a nightly toolchain that has the component"
            .into(),
    )
}

/// Runs the `miri_*` unit tests under Miri, or prints why it cannot.
pub fn miri_leg() -> Leg {
    let mut leg = Leg::default();
    let prefix = match miri_cargo() {
        Ok(p) => p,
        Err(reason) => {
            eprintln!("miri: SKIPPED ({reason})");
            eprintln!("miri: SKIPPED: the {MIRI_PREFIX}* unit tests did not run under Miri");
            leg.skipped.push(("miri".into(), reason));
            return leg;
        }
    };
    let mut cmd = Command::new("cargo");
    cmd.current_dir(crate::util::root())
        .env_remove("CARGO")
        .args(&prefix)
        .args([
            "miri",
            "test",
            "--workspace",
            "--all-features",
            "--exclude",
            "xtask",
            "--lib",
            "--",
            MIRI_PREFIX,
        ]);
    // No CARGO_TARGET_DIR of its own: cargo-miri builds in the `miri` directory of the target
    // directory already.
    if std::env::var_os("MIRIFLAGS").is_none() {
        cmd.env("MIRIFLAGS", MIRI_FLAGS);
    }
    eprintln!(
        "miri: {MIRI_PREFIX}* unit tests (MIRIFLAGS={})",
        std::env::var("MIRIFLAGS").unwrap_or_else(|_| MIRI_FLAGS.to_string())
    );
    let t = Instant::now();
    let run = run_capture_timeout(&mut cmd, Some(MIRI_TIMEOUT));
    let (p, f) = count_tests(&run.output);
    leg.passed += p;
    leg.failed += f;
    if run.timed_out || (!run.ok && f == 0) {
        leg.failed += 1;
        leg.failures.push("miri".into());
        eprintln!("miri: FAILED (timed out or did not build)");
    } else if f > 0 {
        leg.failures.push("miri".into());
    }
    if p + f == 0 && run.ok {
        eprintln!("miri: no unit test is named {MIRI_PREFIX}*; nothing ran under Miri");
    }
    eprintln!("miri: {p} passed, {f} failed in {}", fmt_secs(t.elapsed()));
    leg
}

/// `cargo xtask models`: the loom and Miri legs alone.
pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!("unknown option `{a}` (usage: cargo xtask models)"));
    }
    let mut passed = 0;
    let mut failed = 0;
    for leg in [loom_leg(), miri_leg()] {
        passed += leg.passed;
        failed += leg.failed;
    }
    println!("xtask: {passed} passed, {failed} failed");
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} failed"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_loom_models_by_file_name() {
        let models = super::loom_models().unwrap();
        let sync = models
            .iter()
            .find(|(p, _)| p == "processing-sync")
            .expect("processing-sync has loom models");
        assert!(sync.1.contains(&"loom_lock".to_string()), "{models:?}");
        assert!(models
            .iter()
            .all(|(_, stems)| stems.iter().all(|s| s.starts_with("loom_"))));
    }
}
