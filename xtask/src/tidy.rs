//! `cargo xtask tidy`: every crate opens with a `//!` header, and layering holds.

use crate::util::root;

/// The layers, bottom first; a crate may depend only on crates of lower rank.
const LAYERS: &[(&str, u32)] = &[
    ("processing-core", 0),
    ("processing-shm", 1),
    ("processing-sync", 2),
    ("processing-transport", 3),
    ("processing-process", 4),
    ("processing-manager", 5),
    ("processing-pool", 5),
    ("processing-macros", 5),
    ("processing", 6),
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
