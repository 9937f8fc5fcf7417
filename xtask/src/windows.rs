//! `cargo xtask windows`: the Windows leg. Cross-builds every test binary for
//! `x86_64-pc-windows-gnu` with mingw-w64 and runs each under Wine in a private prefix.
//!
//! Wine 8 has no `bcryptprimitives.dll`, whose `ProcessPrng` Rust's std imports for its random
//! numbers; the leg builds a small stand-in DLL with mingw (`ProcessPrng` over advapi32's
//! `SystemFunction036`, the RtlGenRandom Wine does have) and puts it beside the executables.
//! Markers in a test file (`// xtask: wine-skip(reason)`, `// xtask: wine-skip-file(reason)`)
//! name what cannot run under Wine; every skip is printed with its reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::test::{env_secs, run_binaries, Leg, RunOptions, WINDOWS_TARGET};
use crate::util::{
    build_test_binaries, fmt_secs, root, run_status, target_dir, target_installed, which,
};

const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

/// Per test binary; `XTASK_WINDOWS_TIMEOUT` overrides (seconds).
const BINARY_TIMEOUT: Duration = Duration::from_secs(180);
/// For running the binaries (not building them); `XTASK_WINDOWS_BUDGET` overrides (seconds).
const LEG_BUDGET: Duration = Duration::from_secs(360);

/// The stand-in for the `bcryptprimitives.dll` Wine 8 lacks.
const PRNG_C: &str = r#"/* Built by `cargo xtask windows`: Wine 8 has no bcryptprimitives.dll, whose ProcessPrng
   Rust's std imports. This forwards it to advapi32's SystemFunction036 (RtlGenRandom). */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
"#;
const PRNG_DEF: &str = "LIBRARY bcryptprimitives.dll\nEXPORTS\n    ProcessPrng\n";

/// `cargo xtask windows [FILTER...] [-- TEST-ARGS...]`: FILTERs select test binaries whose
/// `package/kind/target` label contains one of them; TEST-ARGS go to every test binary.
pub fn run(args: &[String]) -> Result<(), String> {
    let (filters, test_args) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[][..]),
    };
    let start = Instant::now();
    let Some(leg) = leg(filters, test_args)? else {
        return Ok(());
    };
    eprintln!("windows: total time {}", fmt_secs(start.elapsed()));
    println!(
        "windows: {} passed, {} failed, {} skipped",
        leg.passed,
        leg.failed,
        leg.skipped.len()
    );
    if leg.failed == 0 {
        Ok(())
    } else {
        Err(format!("windows: failed: {}", leg.failures.join(", ")))
    }
}

/// Why the leg cannot run here, if it cannot.
fn missing_tools() -> Option<String> {
    if !target_installed(WINDOWS_TARGET) {
        return Some(format!(
            "rustup target {WINDOWS_TARGET} is not installed; `rustup target add {WINDOWS_TARGET}`"
        ));
    }
    if which(MINGW_GCC).is_none() {
        return Some(format!(
            "{MINGW_GCC} not found; Debian package gcc-mingw-w64-x86-64"
        ));
    }
    if wine().is_none() {
        return Some("wine64 not found; Debian package wine64".into());
    }
    None
}

/// The 64-bit Wine loader: `wine64` on PATH, Debian's `/usr/lib/wine/wine64`, or `wine`.
fn wine() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("XTASK_WINE") {
        return Some(PathBuf::from(p));
    }
    which("wine64")
        .or_else(|| Some(PathBuf::from("/usr/lib/wine/wine64")).filter(|p| p.is_file()))
        .or_else(|| which("wine"))
}

fn wineserver() -> Option<PathBuf> {
    which("wineserver")
        .or_else(|| Some(PathBuf::from("/usr/lib/wine/wineserver64")).filter(|p| p.is_file()))
        .or_else(|| Some(PathBuf::from("/usr/lib/wine/wineserver")).filter(|p| p.is_file()))
}

/// Runs the leg: `Ok(None)` when it was skipped (with a loud `windows: SKIPPED` line).
pub fn leg(filters: &[String], test_args: &[String]) -> Result<Option<Leg>, String> {
    if let Some(reason) = missing_tools() {
        eprintln!("windows: SKIPPED ({reason})");
        return Ok(None);
    }
    let wine = wine().ok_or("wine vanished")?;
    let t = Instant::now();
    let mut bins = build_test_binaries(Some(WINDOWS_TARGET), &["xtask"])?;
    eprintln!(
        "windows: built {} test binaries in {}",
        bins.len(),
        fmt_secs(t.elapsed())
    );
    if !filters.is_empty() {
        bins.retain(|b| filters.iter().any(|f| b.label().contains(f.as_str())));
    }

    let out_dir = target_dir().join(WINDOWS_TARGET);
    let dll = build_prng_dll(&out_dir)?;
    let mut dirs: Vec<PathBuf> = bins
        .iter()
        .filter_map(|b| b.executable.parent().map(PathBuf::from))
        .collect();
    // Examples and helper executables a test may start live beside the test binaries' parent.
    for profile in ["debug", "release"] {
        for sub in ["", "deps", "examples"] {
            let d = out_dir.join(profile).join(sub);
            if d.is_dir() {
                dirs.push(d);
            }
        }
    }
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        let dest = d.join("bcryptprimitives.dll");
        if !dest.exists() {
            std::fs::copy(&dll, &dest)
                .map_err(|e| format!("copying {} to {}: {e}", dll.display(), dest.display()))?;
        }
    }

    let prefix = target_dir().join("wine-prefix");
    let envs = vec![
        ("WINEPREFIX".to_string(), prefix.display().to_string()),
        ("WINEDEBUG".to_string(), "-all".to_string()),
        ("PROCESSING_UNDER_WINE".to_string(), "1".to_string()),
        (
            format!(
                "CARGO_TARGET_{}_RUNNER",
                WINDOWS_TARGET.to_uppercase().replace('-', "_")
            ),
            wine.display().to_string(),
        ),
    ];
    init_prefix(&wine, &prefix, &envs)?;
    // One wine server for the whole leg instead of one per binary; it leaves 30 s after the last
    // client and is told to go at the end.
    let server = wineserver();
    tell_wineserver(server.as_deref(), "-p30", &envs);

    let opts = RunOptions {
        leg: "windows",
        runner: Some(&wine),
        envs: envs.clone(),
        timeout: env_secs("XTASK_WINDOWS_TIMEOUT", BINARY_TIMEOUT),
        budget: Some(env_secs("XTASK_WINDOWS_BUDGET", LEG_BUDGET)),
        under_wine: true,
        test_args,
    };
    let t = Instant::now();
    let leg = run_binaries(&bins, &opts);
    eprintln!(
        "windows: ran {} test binaries under {} in {}: {} passed, {} failed, {} skipped",
        bins.len(),
        wine.display(),
        fmt_secs(t.elapsed()),
        leg.passed,
        leg.failed,
        leg.skipped.len()
    );
    tell_wineserver(server.as_deref(), "-k", &envs);
    Ok(Some(leg))
}

/// Builds `bcryptprimitives.dll` under `out_dir/wine-shim/` unless an up-to-date one is there.
fn build_prng_dll(out_dir: &Path) -> Result<PathBuf, String> {
    let dir = out_dir.join("wine-shim");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let c = dir.join("bcryptprimitives.c");
    let def = dir.join("bcryptprimitives.def");
    let dll = dir.join("bcryptprimitives.dll");
    let current = std::fs::read_to_string(&c)
        .map(|s| s == PRNG_C)
        .unwrap_or(false);
    if dll.exists() && current {
        return Ok(dll);
    }
    std::fs::write(&c, PRNG_C).map_err(|e| e.to_string())?;
    std::fs::write(&def, PRNG_DEF).map_err(|e| e.to_string())?;
    let ok = run_status(Command::new(MINGW_GCC).current_dir(&dir).args([
        "-shared",
        "-O2",
        "-s",
        "-o",
        "bcryptprimitives.dll",
        "bcryptprimitives.c",
        "bcryptprimitives.def",
        "-ladvapi32",
    ]));
    if !ok {
        return Err("building bcryptprimitives.dll with mingw failed".into());
    }
    // Copies beside older executables are stale now.
    for profile in ["debug", "release"] {
        for sub in ["", "deps", "examples"] {
            let _ =
                std::fs::remove_file(out_dir.join(profile).join(sub).join("bcryptprimitives.dll"));
        }
    }
    Ok(dll)
}

/// Creates the private Wine prefix once (`wineboot -i`, a few seconds).
fn init_prefix(wine: &Path, prefix: &Path, envs: &[(String, String)]) -> Result<(), String> {
    if prefix.join("system.reg").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(prefix).map_err(|e| format!("creating {}: {e}", prefix.display()))?;
    let t = Instant::now();
    eprintln!("windows: initialising the Wine prefix {}", prefix.display());
    let status = Command::new(wine)
        .args(["wineboot", "-i"])
        .envs(envs.iter().cloned())
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("running wineboot: {e}"))?;
    if let Some(s) = wineserver() {
        // wineboot returns before the registry is flushed; wait for the server to finish.
        let _ = Command::new(s)
            .arg("-w")
            .envs(envs.iter().cloned())
            .stdin(Stdio::null())
            .status();
    }
    if !status.success() || !prefix.join("system.reg").exists() {
        return Err(format!(
            "wineboot -i failed ({status}) for prefix {}",
            prefix.display()
        ));
    }
    eprintln!("windows: Wine prefix ready in {}", fmt_secs(t.elapsed()));
    Ok(())
}

/// Runs the wine server `server` (if any) with `arg` (`-p30`: stay 30 s after the last client;
/// `-k`: go now).
fn tell_wineserver(server: Option<&Path>, arg: &str, envs: &[(String, String)]) {
    if let Some(s) = server {
        let _ = Command::new(s)
            .arg(arg)
            .envs(envs.iter().cloned())
            .stdin(Stdio::null())
            .status();
    }
}
