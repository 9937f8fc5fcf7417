//! `cargo xtask test`: formatting, lints (Linux and Windows), every test, the loom and Miri legs
//! (`model.rs`), and the Windows leg.
//!
//! Test binaries are built once with `cargo test --no-run` and then run one by one, so that each
//! gets the flags its source asks for (`// xtask: serial` → `--test-threads=1`), a timeout (a
//! hung binary fails instead of wedging CI) and, under Wine, its skip markers.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{
    build_test_binaries, cargo, count_tests, fmt_secs, run_capture, run_capture_timeout,
    run_status, target_installed, Captured, TestBinary,
};

pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

/// Per test binary on Linux, overridable with `XTASK_TEST_TIMEOUT` (seconds).
const LINUX_BINARY_TIMEOUT: Duration = Duration::from_secs(600);

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

    fn add(&mut self, leg: &Leg) {
        self.passed += leg.passed;
        self.failed += leg.failed;
        self.failures.extend(leg.failures.iter().cloned());
    }
}

/// The outcome of running a list of test binaries.
#[derive(Debug, Default)]
pub struct Leg {
    pub passed: usize,
    pub failed: usize,
    /// Binaries with a failing test, a crash or a timeout.
    pub failures: Vec<String>,
    /// (binary or binary::test, reason), each already printed as `<leg>: skipped ...`.
    pub skipped: Vec<(String, String)>,
}

impl Leg {
    /// Counts the tests of `run` (of `label`, in leg `name`, given `timeout`) and records it as
    /// a failure, with why, when it timed out, failed without a failing test (`crashed`), ran
    /// no test where one must run (`none_ran`, why that is a failure) or had failing tests.
    /// Returns (passed, failed).
    pub fn tally(
        &mut self,
        run: &Captured,
        name: &str,
        label: &str,
        timeout: Duration,
        crashed: &str,
        none_ran: Option<&str>,
    ) -> (usize, usize) {
        let (p, f) = count_tests(&run.output);
        self.passed += p;
        self.failed += f;
        let why = if run.timed_out {
            Some(format!("timed out after {} s", timeout.as_secs()))
        } else if !run.ok && f == 0 {
            Some(crashed.to_string())
        } else if let Some(none_ran) = none_ran.filter(|_| p + f == 0) {
            Some(none_ran.to_string())
        } else if f > 0 {
            Some(format!("{f} failed"))
        } else {
            None
        };
        if let Some(why) = why {
            if f == 0 {
                self.failed += 1;
            }
            eprintln!("{name}: FAILED {label}: {why}");
            self.failures.push(format!("{name}:{label}"));
        }
        (p, f)
    }
}

/// How to run a list of test binaries.
pub struct RunOptions<'a> {
    /// Name printed in front of skip lines (`linux`, `windows`).
    pub leg: &'a str,
    /// A program the executable is passed to (Wine), or none.
    pub runner: Option<&'a Path>,
    pub envs: Vec<(String, String)>,
    pub timeout: Duration,
    /// Once this much time has gone, the remaining binaries are skipped (with that reason).
    pub budget: Option<Duration>,
    /// Honour the `wine-skip` markers.
    pub under_wine: bool,
    /// Arguments for every binary (a test-name filter, `--nocapture` ...).
    pub test_args: &'a [String],
}

/// Runs each binary, counting `test result:` lines.
pub fn run_binaries(bins: &[TestBinary], opts: &RunOptions) -> Leg {
    let start = Instant::now();
    let mut leg = Leg::default();
    for bin in bins {
        let label = bin.label();
        let markers = bin.markers();
        let mut skip = |what: String, reason: String| {
            eprintln!("{}: skipped {what} ({reason})", opts.leg);
            leg.skipped.push((what, reason));
        };
        if opts.under_wine {
            if let Some(reason) = &markers.wine_skip_file {
                skip(label.clone(), reason.clone());
                continue;
            }
        }
        if let Some(budget) = opts.budget {
            if start.elapsed() > budget {
                skip(
                    label.clone(),
                    format!("the leg's time budget of {} s is used up", budget.as_secs()),
                );
                continue;
            }
        }
        let mut cmd = bin.command(opts.runner);
        cmd.envs(opts.envs.iter().map(|(k, v)| (k, v)));
        if markers.serial {
            cmd.arg("--test-threads=1");
        }
        if opts.under_wine {
            for (name, reason) in &markers.wine_skip {
                skip(format!("{label}::{name}"), reason.clone());
                cmd.args(["--skip", name]);
            }
        }
        cmd.args(opts.test_args);
        eprintln!(
            "{}: running {label}{}",
            opts.leg,
            if markers.serial { " (serial)" } else { "" }
        );
        let t = Instant::now();
        let run = run_capture_timeout(&mut cmd, Some(opts.timeout));
        let (p, f) = leg.tally(
            &run,
            opts.leg,
            &label,
            opts.timeout,
            "exited with an error and no failing test (crash or harness error)",
            None,
        );
        eprintln!(
            "{}: {label}: {p} passed, {f} failed in {}",
            opts.leg,
            fmt_secs(t.elapsed())
        );
    }
    leg
}

pub fn env_secs(var: &str, default: Duration) -> Duration {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(default)
}

pub fn run(args: &[String]) -> Result<(), String> {
    let start = Instant::now();
    let fast = args.iter().any(|a| a == "--fast");
    let no_windows = args.iter().any(|a| a == "--no-windows");
    if let Some(unknown) = args
        .iter()
        .find(|a| !matches!(a.as_str(), "--fast" | "--no-windows"))
    {
        return Err(format!(
            "unknown option `{unknown}` (usage: cargo xtask test [--fast] [--no-windows])"
        ));
    }
    let windows_target = target_installed(WINDOWS_TARGET);
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
                "--all-features",
                "--",
                "-D",
                "warnings",
            ])),
        );
        if windows_target {
            tally.step(
                "clippy windows",
                run_status(cargo().args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--all-features",
                    "--target",
                    WINDOWS_TARGET,
                    "--",
                    "-D",
                    "warnings",
                ])),
            );
        } else {
            eprintln!("xtask: clippy for {WINDOWS_TARGET} SKIPPED (target not installed)");
        }
        // Every published crate packages (metadata, versioned path dependencies, no file from
        // outside its directory) and its packaged sources build on their own; the two
        // `publish = false` members are left out. `--allow-dirty`: a local run checks the
        // working tree as it is, uncommitted edits included. The verification builds each
        // crate against its siblings' packages as crates of a local registry, which cargo
        // unpacks into `$CARGO_HOME/registry/src/-<hash>/` and compiles once per name and
        // version: an earlier run's `processing-core 0.1.0` would stand in for today's
        // sources. So the unpacked copies go, and the step builds in a target directory of its
        // own that starts empty.
        let package_target = crate::util::target_dir().join("package-check");
        let _ = std::fs::remove_dir_all(&package_target);
        forget_unpacked_workspace_crates();
        tally.step(
            "package",
            run_status(cargo().env("CARGO_TARGET_DIR", &package_target).args([
                "package",
                "--workspace",
                "--exclude",
                "processing-suite",
                "--exclude",
                "xtask",
                "--allow-dirty",
            ])),
        );
    }

    // Shared-memory entries present before the tests: the suite must leave no new one behind.
    let shm_before = shm_entries();

    // The cluster tests (K01–K10) start private redis-servers; without one they pass empty.
    if crate::util::which("redis-server").is_none() {
        eprintln!("cluster: SKIPPED (redis-server not found)");
    }

    // Unit and integration tests of every crate, including the root conformance suite and the
    // task runner's own tests (building them also builds the examples).
    match build_test_binaries(None, &[]) {
        Ok(bins) => {
            let opts = RunOptions {
                leg: "linux",
                runner: None,
                envs: Vec::new(),
                timeout: env_secs("XTASK_TEST_TIMEOUT", LINUX_BINARY_TIMEOUT),
                budget: None,
                under_wine: false,
                test_args: &[],
            };
            tally.add(&run_binaries(&bins, &opts));
        }
        Err(e) => {
            eprintln!("xtask: {e}");
            tally.step("build tests", false);
        }
    }

    tally.step(
        "/dev/shm clean after the suite",
        shm_clean_since(&shm_before),
    );

    // Model checking: every tests/loom_*.rs under `--cfg loom`, and the miri_* unit tests.
    tally.add(&crate::model::loom_leg());
    tally.add(&crate::model::miri_leg());

    // Doc tests: `cargo test --no-run` does not build them; they must run and there must be some.
    let (ok, out) = run_capture(cargo().args([
        "test",
        "--workspace",
        "--all-features",
        "--exclude",
        "xtask",
        "--doc",
        "--no-fail-fast",
    ]));
    let (p, f) = count_tests(&out);
    tally.passed += p;
    tally.failed += f;
    if !ok && f == 0 {
        tally.step("doc tests", false);
    } else if p + f == 0 {
        eprintln!("xtask: no doc test ran (the crates' examples are doc tests; something is off)");
        tally.step("doc tests ran", false);
    }
    tally.step(
        "examples build",
        run_status(cargo().args(["build", "--workspace", "--all-features", "--examples"])),
    );

    if no_windows {
        eprintln!("windows: SKIPPED (--no-windows)");
    } else {
        match crate::windows::leg(&[], &[]) {
            Ok(Some(leg)) => tally.add(&leg),
            Ok(None) => {}
            Err(e) => {
                eprintln!("windows: FAILED: {e}");
                tally.step("windows leg", false);
            }
        }
    }

    if !tally.failures.is_empty() {
        eprintln!("xtask: failed: {}", tally.failures.join(", "));
    }
    eprintln!("xtask: total time {}", fmt_secs(start.elapsed()));
    println!("xtask: {} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 {
        Ok(())
    } else {
        Err(format!("{} failed", tally.failed))
    }
}

/// The project's entries in `/dev/shm` (empty where there is no such directory).
fn shm_entries() -> std::collections::BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("processing-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether every project entry that appeared in `/dev/shm` since `before` is gone, allowing
/// the resource trackers a few seconds to sweep after the last test process exited.
fn shm_clean_since(before: &std::collections::BTreeSet<String>) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = shm_entries().difference(before).cloned().collect();
        if left.is_empty() {
            eprintln!("xtask: /dev/shm holds no entry left by the suite");
            return true;
        }
        if std::time::Instant::now() > deadline {
            eprintln!("xtask: the suite left entries in /dev/shm: {left:?}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Removes this workspace's crates from the local registries `cargo package` unpacked into
/// `$CARGO_HOME/registry/src` (directories named `-<hash>`, unlike crates.io's
/// `index.crates.io-<hash>`), so that the package step builds today's sources.
fn forget_unpacked_workspace_crates() {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return;
    };
    let crates = std::fs::read_dir(crate::util::root().join("crates"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        let Ok(unpacked) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for dir in unpacked.flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            let is_ours = crates.iter().any(|c| {
                name.strip_prefix(c.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|version| version.starts_with(|ch: char| ch.is_ascii_digit()))
            });
            if is_ours {
                let _ = std::fs::remove_dir_all(dir.path());
            }
        }
    }
}
