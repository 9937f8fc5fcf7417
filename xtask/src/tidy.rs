//! `cargo xtask tidy`: every crate opens with a `//!` header, layering holds, and the tests of
//! the root conformance suite are named by their CONFORMANCE.md id.

use crate::util::root;

/// The layers, bottom first; a crate may depend only on crates of lower rank.
pub const LAYERS: &[(&str, u32)] = &[
    ("processing-core", 0),
    ("processing-shm", 1),
    ("processing-sync", 2),
    ("processing-transport", 3),
    ("processing-process", 4),
    ("processing-manager", 5),
    ("processing-pool", 5),
    ("processing-macros", 5),
    ("processing-cluster", 6),
    ("processing", 7),
];

pub fn run() -> Result<(), String> {
    let mut problems = Vec::new();
    for (name, rank) in LAYERS {
        let dir = root().join("crates").join(name);
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap_or_default();
        if !lib.trim_start().starts_with("//!") {
            problems.push(format!(
                "{name}: src/lib.rs does not open with a //! crate doc"
            ));
        }
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        let deps = manifest.split("[dependencies]").nth(1).unwrap_or("");
        let deps = deps.split("\n[").next().unwrap_or("");
        for line in deps.lines() {
            let dep = line.split(['=', ' ', '.']).next().unwrap_or("").trim();
            if let Some((_, dep_rank)) = LAYERS.iter().find(|(n, _)| *n == dep) {
                if dep_rank >= rank && dep != "processing-macros" {
                    problems.push(format!(
                        "{name} (layer {rank}) depends on {dep} (layer {dep_rank})"
                    ));
                }
            }
        }
    }
    problems.extend(conformance_names());
    if problems.is_empty() {
        eprintln!("xtask: tidy ok");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("xtask: tidy: {p}");
        }
        Err(format!("{} tidy problems", problems.len()))
    }
}

/// The areas of the conformance catalogue: Process, Queue, Connection, Listener, Sync, Value,
/// Manager, Pool (pool items are `W..`), Beyond one machine (`K..`).
const CONFORMANCE_AREAS: &[char] = &['p', 'q', 'c', 'l', 's', 'v', 'm', 'w', 'k'];

/// Every `#[test]` in a root `tests/*.rs` file is named `<id>_what`, e.g. `q01_bounded_full`,
/// unless the file says `// xtask: not-conformance` (helpers, regression tests).
fn conformance_names() -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(root().join("tests")) else {
        return problems;
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.trim() == "// xtask: not-conformance")
        {
            continue;
        }
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut after_test_attr = false;
        for line in text.lines() {
            let t = line.trim();
            if t == "#[test]" || t.starts_with("#[test]") {
                after_test_attr = true;
                continue;
            }
            if !after_test_attr {
                continue;
            }
            if let Some(name) = t.split("fn ").nth(1).filter(|_| t.contains("fn ")) {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !is_conformance_name(&name) {
                    problems.push(format!(
                        "tests/{file}: test `{name}` is not named by a conformance id (`p01_...`, `q03_...`); \
                         or mark the file `// xtask: not-conformance`"
                    ));
                }
                after_test_attr = false;
            }
        }
    }
    problems
}

fn is_conformance_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() > 4
        && CONFORMANCE_AREAS.contains(&(b[0] as char))
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && b[3] == b'_'
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance_names() {
        assert!(super::is_conformance_name(
            "p03_terminate_sets_negative_signal"
        ));
        assert!(super::is_conformance_name("w12_worker_lost"));
        assert!(!super::is_conformance_name("x01_other"));
        assert!(!super::is_conformance_name("p3_short"));
        assert!(!super::is_conformance_name("lock_basics"));
    }
}
