//! `cargo xtask tidy`: every crate opens with a `//!` header, the dependency graph (as `cargo
//! metadata` reports it: normal, dev, build and target-specific edges) only points down the
//! layers (but for a path-only dev-dependency on the facade, for doc examples) and names no
//! unused crate, and the tests of the root conformance suite are named by their id in
//! docs/conformance.md.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::util::{cargo, root, JsonExt};

/// The layers, bottom first; a crate may depend (in any section of its manifest) only on
/// workspace crates of lower rank. Every workspace crate must be listed here.
pub const LAYERS: &[(&str, u32)] = &[
    ("processing-core", 0),
    ("processing-macros", 0),
    ("processing-shm", 1),
    ("processing-sync", 2),
    ("processing-transport", 3),
    ("processing-process", 4),
    ("processing-manager", 5),
    ("processing-pool", 5),
    ("processing-cluster", 6),
    ("processing", 7),
    ("processing-suite", 8),
];

/// Workspace members that are tools, outside the layering.
const TOOLS: &[&str] = &["xtask"];

/// The facade. Any crate may have it as a dev-dependency (an upward edge, a cycle cargo
/// allows), so that its doc examples use the `processing::` paths a user writes; path only,
/// without a version requirement, so that `cargo package` drops the edge from the published
/// manifest.
const FACADE: &str = "processing";

pub fn run() -> Result<(), String> {
    let mut problems = Vec::new();
    let packages = workspace_packages()?;
    for pkg in &packages {
        if TOOLS.contains(&pkg.name.as_str()) {
            continue;
        }
        if pkg.name != "processing-suite" {
            let lib = std::fs::read_to_string(pkg.dir.join("src/lib.rs")).unwrap_or_default();
            if !lib.trim_start().starts_with("//!") {
                problems.push(format!(
                    "{}: src/lib.rs does not open with a //! crate doc",
                    pkg.name
                ));
            }
        }
        problems.extend(layering(pkg, &packages));
        problems.extend(unused(pkg));
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

/// One workspace member and its declared dependencies.
#[derive(Debug)]
pub struct Package {
    pub name: String,
    pub dir: PathBuf,
    deps: Vec<Dep>,
    /// `[package.metadata.xtask.implicit-deps]`: dependencies no source names as a path but
    /// that are needed (derive macros expanding to `::dep::` paths), each with its reason.
    implicit: Vec<String>,
}

/// One dependency edge as `cargo metadata` reports it.
#[derive(Debug)]
struct Dep {
    /// The package name (`processing-shm`).
    name: String,
    /// The name the dependent's code uses (`processing_shm`, or the `rename`).
    ident: String,
    /// `normal`, `dev` or `build`.
    kind: String,
    /// The `cfg(...)` or target triple it is limited to, if any.
    target: Option<String>,
    /// The version requirement (`*` for a path dependency without a version).
    req: String,
}

impl Dep {
    fn section(&self) -> String {
        let kind = match self.kind.as_str() {
            "normal" => "dependencies",
            "dev" => "dev-dependencies",
            _ => "build-dependencies",
        };
        match &self.target {
            Some(t) => format!("[target.'{t}'.{kind}]"),
            None => format!("[{kind}]"),
        }
    }
}

/// The workspace members and their dependencies, from `cargo metadata --no-deps`.
pub fn workspace_packages() -> Result<Vec<Package>, String> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err("cargo metadata failed".into());
    }
    let meta: Json = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cannot read cargo metadata's output: {e}"))?;
    parse_packages(&meta)
}

fn parse_packages(meta: &Json) -> Result<Vec<Package>, String> {
    let members: Vec<&str> = meta
        .get("workspace_members")
        .and_then(Json::as_array)
        .ok_or("cargo metadata: no workspace_members")?
        .iter()
        .filter_map(Json::as_str)
        .collect();
    let mut packages = Vec::new();
    for p in meta
        .get("packages")
        .and_then(Json::as_array)
        .ok_or("cargo metadata: no packages")?
    {
        if !p.str("id").is_some_and(|id| members.contains(&id)) {
            continue;
        }
        let manifest = PathBuf::from(p.str("manifest_path").unwrap_or(""));
        let deps = p
            .get("dependencies")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|d| {
                let name = d.str("name").unwrap_or("").to_string();
                let ident = d.str("rename").unwrap_or(&name).replace('-', "_");
                Dep {
                    ident,
                    name,
                    kind: d.str("kind").unwrap_or("normal").to_string(),
                    target: d.str("target").map(String::from),
                    req: d.str("req").unwrap_or("*").to_string(),
                }
            })
            .collect();
        let implicit = p
            .pointer("/metadata/xtask/implicit-deps")
            .and_then(Json::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        packages.push(Package {
            name: p.str("name").unwrap_or("").to_string(),
            dir: manifest.parent().map(PathBuf::from).unwrap_or_default(),
            deps,
            implicit,
        });
    }
    Ok(packages)
}

fn rank(name: &str) -> Option<u32> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// Every edge between workspace crates points to a lower layer.
fn layering(pkg: &Package, all: &[Package]) -> Vec<String> {
    let Some(own) = rank(&pkg.name) else {
        return vec![format!(
            "{}: workspace crate without a layer (add it to LAYERS in xtask/src/tidy.rs and to \
             the Layers section of docs/architecture.md)",
            pkg.name
        )];
    };
    let mut problems = Vec::new();
    for dep in &pkg.deps {
        if !all.iter().any(|p| p.name == dep.name) {
            continue;
        }
        if dep.name == FACADE && dep.kind == "dev" && pkg.name != FACADE {
            if dep.req != "*" {
                problems.push(format!(
                    "{}: the dev-dependency on the facade in {} has a version requirement ({}); \
                     make it path only, so that `cargo package` drops it",
                    pkg.name,
                    dep.section(),
                    dep.req
                ));
            }
            continue;
        }
        match rank(&dep.name) {
            Some(r) if r < own => {}
            r => problems.push(format!(
                "{} (layer {own}) depends on {} (layer {}) in {}: an upward or sideways edge",
                pkg.name,
                dep.name,
                r.map_or("none".to_string(), |r| r.to_string()),
                dep.section()
            )),
        }
    }
    problems
}

/// Every dependency is named as a path (`name::`, `use name`, `extern crate name`) in the code
/// that can use it: a normal dependency in the library/binary sources (`src/`, `build.rs` not
/// included, comments excluded), a dev-dependency anywhere in the package's Rust files (doc
/// tests included), a build dependency in `build.rs` — unless the manifest lists it under
/// `[package.metadata.xtask.implicit-deps]` with a reason.
fn unused(pkg: &Package) -> Vec<String> {
    let files = rust_files(&pkg.dir);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let build_rs = pkg.dir.join("build.rs");
    let src = pkg.dir.join("src");
    let code: String = files
        .iter()
        .filter(|f| f.starts_with(&src))
        .map(|f| strip_comments(&read(f)))
        .collect();
    let everything: String = files.iter().map(|f| read(f)).collect();
    let build = read(&build_rs);
    let mut problems = Vec::new();
    for dep in &pkg.deps {
        let (text, where_) = match dep.kind.as_str() {
            "normal" => (&code, "src/ (outside comments)"),
            "dev" => (&everything, "any source, test, bench, example or doc test"),
            _ => (&build, "build.rs"),
        };
        if !names_crate(text, &dep.ident) && !pkg.implicit.contains(&dep.name) {
            problems.push(format!(
                "{}: unused dependency {} in {}: `{}` never appears as a path (`{}::`, `use {}`) in {where_}; \
                 remove it from crates' Cargo.toml (or move it to the section that uses it)",
                pkg.name,
                dep.name,
                dep.section(),
                dep.ident,
                dep.ident,
                dep.ident
            ));
        }
    }
    problems
}

/// Whether `text` names the crate `ident` as a path: `ident::`, `use ident` or
/// `extern crate ident`, with `ident` not part of a longer identifier.
fn names_crate(text: &str, ident: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(i) = text[from..].find(ident) {
        let at = from + i;
        from = at + ident.len();
        if text[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let after = &text[at + ident.len()..];
        if after.chars().next().is_some_and(is_ident) {
            continue;
        }
        let before = text[..at].trim_end();
        if after.trim_start().starts_with("::")
            || before.ends_with("use")
            || before.ends_with("extern crate")
        {
            return true;
        }
    }
    false
}

/// `text` without `//` and `/* */` comments (string literals are left alone, so a `//` inside a
/// string ends the line early: that errs towards "unused", never towards "used").
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let line = rest.find("//");
        let block = rest.find("/*");
        match (line, block) {
            (Some(l), b) if b.is_none_or(|b| l < b) => {
                out.push_str(&rest[..l]);
                rest = &rest[l..];
                match rest.find('\n') {
                    Some(n) => rest = &rest[n..],
                    None => break,
                }
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                rest = &rest[b + 2..];
                match rest.find("*/") {
                    Some(e) => rest = &rest[e + 2..],
                    None => break,
                }
            }
            _ => {
                out.push_str(rest);
                break;
            }
        }
    }
    out.push('\n');
    out
}

/// The `.rs` files of a package, skipping `target/` and nested packages (other members).
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                let name = e.file_name();
                let nested = path != dir && path.join("Cargo.toml").is_file();
                if name != "target" && !name.to_string_lossy().starts_with('.') && !nested {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The areas of the conformance catalogue: Process, Queue, Connection, Listener, Sync, Value,
/// Manager, Pool (pool items are `W..`), Robustness at the edges (`R..`), One API (`A..`),
/// Beyond one machine (`K..`).
const CONFORMANCE_AREAS: &[char] = &['p', 'q', 'c', 'l', 's', 'v', 'm', 'w', 'r', 'a', 'k'];

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
                if name.starts_with('$') {
                    // A test a macro defines: its name comes from the macro's call.
                    after_test_attr = false;
                    continue;
                }
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
    use super::{names_crate, strip_comments};

    #[test]
    fn finds_crate_paths() {
        assert!(names_crate(
            "use processing_shm::Segment;",
            "processing_shm"
        ));
        assert!(names_crate("let x = tracing::info!(\"x\");", "tracing"));
        assert!(names_crate("use libc;", "libc"));
        assert!(names_crate(
            "use {\n  std::io,\n};\nextern crate loom;",
            "loom"
        ));
        assert!(!names_crate(
            "use processing_shm_extra::X;",
            "processing_shm"
        ));
        assert!(!names_crate("use my_tracing::X;", "tracing"));
        assert!(!names_crate("the tracing crate", "tracing"));
        let code = strip_comments(
            "// tracing::info!\n/// uses sync::Lock\nlet a = 1; /* tracing:: */ b::c",
        );
        assert!(!names_crate(&code, "tracing"));
        assert!(names_crate(&code, "b"));
    }

    #[test]
    fn reads_metadata_edges() {
        let meta: serde_json::Value = serde_json::from_str(
            r#"{"workspace_members": ["a#1"], "packages": [{"id": "a#1", "name": "processing-shm",
               "manifest_path": "/w/crates/processing-shm/Cargo.toml", "dependencies": [
               {"name": "processing-sync", "kind": "dev", "rename": null, "target": null},
               {"name": "libc", "kind": null, "rename": null, "target": "cfg(unix)"},
               {"name": "processing", "kind": "dev", "rename": null, "target": null, "req": "*"},
               {"name": "processing", "kind": "dev", "rename": null, "target": null, "req": "^0.1.0"}]}]}"#,
        )
        .unwrap();
        let pkgs = super::parse_packages(&meta).unwrap();
        assert_eq!(pkgs.len(), 1);
        assert_eq!(
            pkgs[0].deps[1].section(),
            "[target.'cfg(unix)'.dependencies]"
        );
        let member = |name: &str| super::Package {
            name: name.into(),
            dir: "/".into(),
            deps: vec![],
            implicit: vec![],
        };
        let problems =
            super::layering(&pkgs[0], &[member("processing-sync"), member("processing")]);
        // The upward dev edge to sync is refused; the path-only dev edge to the facade is
        // allowed, the versioned one is not.
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("processing-sync (layer 2)"));
        assert!(problems[0].contains("[dev-dependencies]"));
        assert!(problems[1].contains("version requirement (^0.1.0)"));
    }

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
