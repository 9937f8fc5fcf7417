//! `cargo xtask test`: formatting, lints (Linux and Windows), every test, and the Windows leg.

use crate::util::{cargo, count_tests, run_capture, run_status, target_installed};

pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    failures: Vec<String>,
}

impl Tally {
    fn step(&mut self, name: &str, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            self.failures.push(name.to_string());
        }
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let fast = args.iter().any(|a| a == "--fast");
    let mut tally = Tally::default();

    if !fast {
        tally.step("tidy", crate::tidy::run().is_ok());
        tally.step(
            "fmt",
            run_status(cargo().args(["fmt", "--all", "--", "--check"])),
        );
        tally.step(
            "clippy",
            run_status(cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])),
        );
    }

    // Every test of every crate: unit, integration (including the root conformance suite),
    // doc tests; examples are built by `--all-targets`-free `cargo test` as well.
    let (ok, out) = run_capture(cargo().args(["test", "--workspace", "--no-fail-fast"]));
    let (p, f) = count_tests(&out);
    tally.passed += p;
    tally.failed += f;
    if !ok && f == 0 {
        tally.step("cargo test", false);
    }
    tally.step(
        "examples build",
        run_status(cargo().args(["build", "--workspace", "--examples"])),
    );

    // Windows: lint always where the target exists; run under Wine through the Windows leg.
    if target_installed(WINDOWS_TARGET) {
        if !fast {
            tally.step(
                "clippy windows",
                run_status(cargo().args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--target",
                    WINDOWS_TARGET,
                    "--",
                    "-D",
                    "warnings",
                ])),
            );
        }
        match crate::windows::run(&[]) {
            Ok(Some((p, f))) => {
                tally.passed += p;
                tally.failed += f;
                if f > 0 {
                    tally.failures.push("windows leg".into());
                }
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("xtask: windows leg failed: {e}");
                tally.step("windows leg", false);
            }
        }
    } else {
        eprintln!("windows: SKIPPED (rustup target {WINDOWS_TARGET} is not installed; `rustup target add {WINDOWS_TARGET}` installs it)");
    }

    if !tally.failures.is_empty() {
        eprintln!("xtask: failed steps: {}", tally.failures.join(", "));
    }
    println!("xtask: {} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 {
        Ok(())
    } else {
        Err(format!("{} failed", tally.failed))
    }
}
