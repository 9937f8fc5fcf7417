//! Small helpers for running commands and test binaries.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// Typed accessors on the members of a JSON object (`serde_json` does the parsing).
pub trait JsonExt {
    /// The string member `key`.
    fn str(&self, key: &str) -> Option<&str>;
    /// The numeric member `key`.
    fn num(&self, key: &str) -> Option<f64>;
    /// The boolean member `key`.
    fn bool(&self, key: &str) -> Option<bool>;
}

impl JsonExt for Json {
    fn str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }
    fn num(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }
    fn bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }
}

/// Parses one line of JSON.
pub fn parse_json(line: &str) -> Result<Json, serde_json::Error> {
    serde_json::from_str(line)
}

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(PathBuf::from).unwrap_or(dir)
}

/// The workspace's target directory (`CARGO_TARGET_DIR` or `target/`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                root().join(d)
            }
        }
        None => root().join("target"),
    }
}

pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd`, echoing it, letting its output through; returns whether it succeeded.
pub fn run_status(cmd: &mut Command) -> bool {
    eprintln!("xtask: $ {}", show(cmd));
    match cmd.status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("xtask: cannot run: {e}");
            false
        }
    }
}

/// How a captured run ended.
pub struct Captured {
    pub ok: bool,
    pub timed_out: bool,
    /// stdout and stderr, interleaved line by line as they arrived.
    pub output: String,
}

/// Runs `cmd`, teeing its stdout and stderr to our stderr, and returns (success, combined output).
pub fn run_capture(cmd: &mut Command) -> (bool, String) {
    let c = run_capture_timeout(cmd, None);
    (c.ok, c.output)
}

/// Runs `cmd` in its own process group, teeing its output to our stderr; after `timeout` the
/// whole group is killed and the run counts as failed.
pub fn run_capture_timeout(cmd: &mut Command, timeout: Option<Duration>) -> Captured {
    eprintln!("xtask: $ {}", show(cmd));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask: cannot run: {e}");
            return Captured {
                ok: false,
                timed_out: false,
                output: String::new(),
            };
        }
    };
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let streams: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ];
    let mut threads = Vec::new();
    for stream in streams.into_iter().flatten() {
        let tx = tx.clone();
        threads.push(std::thread::spawn(move || {
            use std::io::BufRead;
            let mut reader = std::io::BufReader::new(stream);
            let mut buf = Vec::new();
            while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                eprintln!("{line}");
                let _ = tx.send(line);
                buf.clear();
            }
        }));
    }
    drop(tx);
    let (ok, timed_out) = wait_with_timeout(&mut child, timeout);
    // A grandchild may still hold the pipes open; once the child is gone do not wait for them
    // longer than a moment.
    let mut out = String::new();
    let drain_until = Instant::now() + Duration::from_secs(if timed_out { 2 } else { 5 });
    while let Some(left) = drain_until.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(_) => break,
        }
    }
    drop(threads);
    Captured {
        ok: ok && !timed_out,
        timed_out,
        output: out,
    }
}

/// Waits for `child`; on timeout kills its process group. Returns (success, timed out).
fn wait_with_timeout(child: &mut Child, timeout: Option<Duration>) -> (bool, bool) {
    let Some(timeout) = timeout else {
        return (child.wait().map(|s| s.success()).unwrap_or(false), false);
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (status.success(), false),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => break,
            Err(_) => return (false, false),
        }
    }
    eprintln!(
        "xtask: timed out after {} s; killing process group {}",
        timeout.as_secs(),
        child.id()
    );
    #[cfg(unix)]
    if let Ok(group) = libc::pid_t::try_from(child.id()) {
        // SAFETY: killpg takes no pointers; `group` is the process group our child leads
        // (spawned with `process_group(0)`) and not yet reaped, so the id is not reused.
        unsafe { libc::killpg(group, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
    (false, true)
}

pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Whether rustup reports `target` as installed.
pub fn target_installed(target: &str) -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == target)
        })
        .unwrap_or(false)
}

/// Finds `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Sums the `test result: ... N passed; M failed` lines of cargo test output.
pub fn count_tests(output: &str) -> (usize, usize) {
    let mut passed = 0;
    let mut failed = 0;
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        for part in rest.split(';') {
            let part = part
                .trim()
                .trim_start_matches("ok.")
                .trim_start_matches("FAILED.")
                .trim();
            let mut words = part.split_whitespace();
            if let (Some(n), Some(kind)) = (words.next(), words.next()) {
                let n: usize = n.parse().unwrap_or(0);
                match kind {
                    "passed" => passed += n,
                    "failed" => failed += n,
                    _ => {}
                }
            }
        }
    }
    (passed, failed)
}

/// One test executable built by `cargo test --no-run`.
#[derive(Clone, Debug)]
pub struct TestBinary {
    pub package: String,
    /// The target's name (`processing_core` for a lib, the file stem for `tests/<name>.rs`).
    pub target: String,
    /// `lib`, `test`, `bin`, `bench`, `example`.
    pub kind: String,
    pub src_path: PathBuf,
    pub executable: PathBuf,
    pub manifest_dir: PathBuf,
}

impl TestBinary {
    /// `package/kind/target`, the name used in progress and skip lines.
    pub fn label(&self) -> String {
        format!("{}/{}/{}", self.package, self.kind, self.target)
    }

    /// The `// xtask: ...` markers of its source file (see CONTRIBUTING.md, "Test conventions").
    pub fn markers(&self) -> Markers {
        Markers::parse(&std::fs::read_to_string(&self.src_path).unwrap_or_default())
    }

    /// A command that runs it the way `cargo test` would (working directory and `CARGO_*`
    /// variables of its package), optionally through `runner`.
    pub fn command(&self, runner: Option<&Path>) -> Command {
        let mut cmd = match runner {
            Some(r) => {
                let mut c = Command::new(r);
                c.arg(&self.executable);
                c
            }
            None => Command::new(&self.executable),
        };
        cmd.current_dir(&self.manifest_dir)
            .env("CARGO_MANIFEST_DIR", &self.manifest_dir)
            .env("CARGO_PKG_NAME", &self.package)
            .env("CARGO_CRATE_NAME", self.target.replace('-', "_"));
        cmd
    }
}

/// Builds every test binary of the workspace (for `target`, or the host) and lists them.
/// Cargo's diagnostics go to our stderr.
pub fn build_test_binaries(
    target: Option<&str>,
    exclude: &[&str],
) -> Result<Vec<TestBinary>, String> {
    let mut cmd = cargo();
    cmd.args([
        "test",
        "--workspace",
        "--all-features",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    for e in exclude {
        cmd.args(["--exclude", e]);
    }
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    eprintln!("xtask: $ {}", show(&cmd));
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let mut bins = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = parse_json(line) else { continue };
        if msg.str("reason") != Some("compiler-artifact") {
            continue;
        }
        let Some(exe) = msg.str("executable") else {
            continue;
        };
        let is_test = msg
            .get("profile")
            .and_then(|p| p.bool("test"))
            .unwrap_or(false);
        if !is_test {
            continue;
        }
        let Some(t) = msg.get("target") else { continue };
        let kind = t
            .get("kind")
            .and_then(|k| k.get(0))
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let manifest = PathBuf::from(msg.str("manifest_path").unwrap_or(""));
        let package_id = msg.str("package_id").unwrap_or("");
        bins.push(TestBinary {
            package: package_name(package_id, &manifest),
            target: t.str("name").unwrap_or("").to_string(),
            kind: if kind == "rlib" || kind == "proc-macro" {
                "lib".into()
            } else {
                kind
            },
            src_path: PathBuf::from(t.str("src_path").unwrap_or("")),
            executable: PathBuf::from(exe),
            manifest_dir: manifest.parent().map(PathBuf::from).unwrap_or_else(root),
        });
    }
    if !out.status.success() {
        return Err(format!(
            "building the test binaries failed ({} built)",
            bins.len()
        ));
    }
    // Bottom layers first, the root suite last: a failure low down explains those above it.
    bins.sort_by_key(|b| (layer_rank(&b.package), b.kind != "lib", b.target.clone()));
    Ok(bins)
}

/// The package name: `path+file:///.../name#0.1.0` or `name 0.1.0 (path+...)` (older cargo).
fn package_name(id: &str, manifest: &Path) -> String {
    let from_manifest = std::fs::read_to_string(manifest).ok().and_then(|text| {
        let pkg = text.split("[package]").nth(1)?;
        let line = pkg.lines().find(|l| l.trim_start().starts_with("name"))?;
        Some(line.split('"').nth(1)?.to_string())
    });
    from_manifest.unwrap_or_else(|| id.split([' ', '#']).next().unwrap_or(id).to_string())
}

fn layer_rank(package: &str) -> u32 {
    crate::tidy::LAYERS
        .iter()
        .find(|(n, _)| *n == package)
        .map(|(_, r)| *r)
        .unwrap_or(100)
}

/// `// xtask: ...` comment markers of a test source file.
#[derive(Debug, Default, PartialEq)]
pub struct Markers {
    /// `// xtask: serial`: run this binary with `--test-threads=1` (fork tests).
    pub serial: bool,
    /// `// xtask: wine-skip-file(reason)`: the whole binary cannot run under Wine.
    pub wine_skip_file: Option<String>,
    /// `// xtask: wine-skip(reason)` above a test: (test function name, reason).
    pub wine_skip: Vec<(String, String)>,
}

impl Markers {
    pub fn parse(source: &str) -> Markers {
        let mut m = Markers::default();
        let mut pending: Option<String> = None;
        for line in source.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("// xtask:") {
                let rest = rest.trim();
                if rest == "serial" {
                    m.serial = true;
                } else if let Some(r) = paren_arg(rest, "wine-skip-file") {
                    m.wine_skip_file = Some(r);
                } else if let Some(r) = paren_arg(rest, "wine-skip") {
                    pending = Some(r);
                }
                continue;
            }
            if pending.is_some() {
                if let Some(name) = fn_name(t) {
                    m.wine_skip.push((name, pending.take().unwrap_or_default()));
                }
            }
        }
        m
    }
}

fn paren_arg(s: &str, key: &str) -> Option<String> {
    let rest = s.strip_prefix(key)?.trim_start();
    let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.trim().to_string())
}

/// The name in `fn name(` / `pub fn name(` / `async fn name(`, if the line declares a function.
fn fn_name(line: &str) -> Option<String> {
    let idx = line.find("fn ")?;
    if idx > 0 && !line[..idx].ends_with(' ') {
        return None;
    }
    let rest = &line[idx + 3..];
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Formats seconds as `12.3 s` or `2 min 05 s`.
pub fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 120.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {:02} s", (s / 60.0) as u64, (s as u64) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::{count_tests, Markers};

    #[test]
    fn counts_test_result_lines() {
        let out = "test result: ok. 3 passed; 0 failed; 1 ignored\nnoise\n\
                   test result: FAILED. 2 passed; 1 failed; 0 ignored\n";
        assert_eq!(count_tests(out), (5, 1));
    }

    #[test]
    fn reads_markers() {
        let src = "// xtask: serial\n// xtask: wine-skip-file(no fork on Windows)\n\
                   #[test]\n// xtask: wine-skip(Wine lacks X)\n#[test]\nfn p03_terminate() {}\nfn other() {}\n";
        let m = Markers::parse(src);
        assert!(m.serial);
        assert_eq!(m.wine_skip_file.as_deref(), Some("no fork on Windows"));
        assert_eq!(
            m.wine_skip,
            vec![("p03_terminate".to_string(), "Wine lacks X".to_string())]
        );
    }
}
