//! The Python interpreters the Python interoperability tests run against: every Python 3.12 or
//! newer found in `PROCESSING_TEST_PYTHONS` (colon-separated paths), on `PATH` as `python3.13`,
//! `python3.12` or `python3`, or in pyenv's versions directory; one interpreter per version.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The interpreters found; prints a loud line naming `suite` when there is none (the tests
/// then have nothing to run against).
pub fn pythons(suite: &str) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var("PROCESSING_TEST_PYTHONS")
        .map(|v| {
            v.split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            for name in ["python3.13", "python3.12", "python3"] {
                candidates.push(dir.join(name));
            }
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        let versions = Path::new(&home).join(".pyenv/versions");
        if let Ok(dir) = std::fs::read_dir(versions) {
            for entry in dir.flatten() {
                candidates.push(entry.path().join("bin/python3"));
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    for candidate in candidates.into_iter().filter(|p| p.is_file()) {
        // One interpreter per version: shims and links of one Python count once.
        let Some(real) = identity(&candidate) else {
            continue;
        };
        if seen.insert(real) {
            found.push(candidate);
        }
    }
    if found.is_empty() {
        eprintln!("!!!!! {suite}: NO PYTHON 3.12+ FOUND; SKIPPING THE PYTHON TESTS !!!!!");
    }
    found
}

/// The version of a Python 3.12+ at `python`, or `None` for anything else.
fn identity(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sys; print(sys.version_info >= (3, 12), sys.version_info[:2])",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let rest = text.trim().strip_prefix("True ")?;
    Some(rest.to_string())
}
