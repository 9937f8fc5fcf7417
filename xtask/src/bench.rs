//! `cargo xtask bench`: the benchmark suite (see docs/benchmarks.md).
//!
//! Builds `benches/suite` in the bench profile and runs it, relaying its JSON lines to stdout.
//! With `--compare` it also runs the Python baseline (`benches/python/baseline.py`, or the script
//! `--baseline PATH` names) with `python3` and with the newest Python 3.12+ it finds, relays
//! their lines (with a `"python"` version field added) and prints a table of ratios against the
//! better Python on stderr (`--markdown` prints it as Markdown, `--markdown-out PATH` also writes
//! it to a file; `--json-out PATH` keeps every line). `--load N` keeps N busy-loop processes
//! running during our suite and the Python baseline alike (see [`Load`]).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::{cargo, fmt_secs, root, show, which};
use crate::util::{parse_json, JsonExt};
use serde_json::Value as Json;

/// The Python baseline `--compare` runs unless `--baseline PATH` names another, relative to the
/// workspace root.
const BASELINE: &str = "benches/python/baseline.py";

const USAGE: &str =
    "usage: cargo xtask bench [--quick] [--cluster] [--compare] [--only NAME[,NAME...]] \
                     [--baseline PATH] [--json-out PATH] [--markdown] [--markdown-out PATH] [--load N]";

#[derive(Default)]
struct Opts {
    quick: bool,
    /// Also the cluster rows (a private redis-server; the suite built with `cluster`).
    cluster: bool,
    compare: bool,
    only: Option<String>,
    baseline: Option<PathBuf>,
    json_out: Option<PathBuf>,
    markdown: bool,
    markdown_out: Option<PathBuf>,
    /// Busy-loop processes kept running while the suite and the baseline run (0: none).
    load: usize,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("`{a}` needs a value; {USAGE}"))
        };
        match a.as_str() {
            "--quick" => o.quick = true,
            "--cluster" => o.cluster = true,
            "--compare" => o.compare = true,
            "--markdown" => o.markdown = true,
            "--only" => o.only = Some(value()?),
            "--baseline" => o.baseline = Some(PathBuf::from(value()?)),
            "--json-out" => o.json_out = Some(PathBuf::from(value()?)),
            "--markdown-out" => o.markdown_out = Some(PathBuf::from(value()?)),
            "--load" => {
                let v = value()?;
                o.load = v
                    .parse()
                    .map_err(|_| format!("`--load` needs a number of busy loops, not `{v}`"))?;
            }
            other => return Err(format!("unknown option `{other}`; {USAGE}")),
        }
    }
    if (o.markdown || o.markdown_out.is_some()) && !o.compare {
        o.compare = true;
    }
    Ok(o)
}

/// The goals (the "goal" column of docs/benchmarks.md): (metric, start method or "", goal text,
/// absolute goal, ratio goal).
/// For `spawn_join_ms` the row of our default start method is compared with Python's spawn.
const GOALS: &[(&str, &str, &str, f64, f64)] = &[
    (
        "spawn_join_ms",
        "default",
        "≤ 0.6 ms; ≥ 60× Python spawn",
        0.6,
        60.0,
    ),
    ("spawn_join_ms", "fork", "≤ 0.25 ms", 0.25, 0.0),
    ("pipe_rtt_us", "", "≤ 5 us; ≥ 4×", 5.0, 4.0),
    ("pipe_bytes_gbps", "", "≥ 9 GB/s; ≥ 2×", 9.0, 2.0),
    ("queue_items_per_s", "", "≥ 2 400 000/s; ≥ 12×", 2.4e6, 12.0),
    ("lock_uncontended_ns", "", "≤ 15 ns; ≥ 3.5×", 15.0, 3.5),
    (
        "value_locked_incr_per_s",
        "",
        "≥ 13 000 000/s; ≥ 10×",
        13e6,
        10.0,
    ),
    (
        "pool_map_tasks_per_s",
        "",
        "≥ 12 000 000/s; ≥ 2.5×",
        12e6,
        2.5,
    ),
    (
        "pool_apply_async_tasks_per_s",
        "",
        "≥ 290 000/s; ≥ 10×",
        2.9e5,
        10.0,
    ),
    (
        "manager_list_ops_per_s",
        "",
        "≥ 160 000/s; ≥ 4×",
        1.6e5,
        4.0,
    ),
];

pub fn run(args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    let start = Instant::now();
    let mut problems = Vec::new();

    let exe = build_suite(opts.cluster)?;
    // Started after the build and dropped (killed) after the baseline, or on any early return.
    let load = Load::start(opts.load)?;
    let mut cmd = Command::new(&exe);
    cmd.current_dir(root());
    if opts.quick {
        cmd.arg("--quick");
    }
    if opts.cluster {
        cmd.arg("--cluster");
    }
    if let Some(only) = &opts.only {
        cmd.args(["--only", only]);
    }
    let ours = relay(&mut cmd, None, &mut problems);
    eprintln!("bench: suite done in {}", fmt_secs(start.elapsed()));
    for p in validate(&ours) {
        eprintln!("bench: WARNING: {p}");
        problems.push(p);
    }
    for note in async_ratios(&ours) {
        eprintln!("bench: {note}");
    }
    let mut all: Vec<Json> = ours.clone();

    if opts.compare {
        let baseline = match &opts.baseline {
            Some(p) => p.clone(),
            None => root().join(BASELINE),
        };
        if !baseline.is_file() {
            return Err(format!(
                "the Python baseline {} does not exist (--baseline PATH)",
                baseline.display()
            ));
        }
        let mut pythons = Vec::new();
        for py in find_pythons() {
            let t = Instant::now();
            eprintln!(
                "bench: running {} with Python {} ({})",
                baseline.display(),
                py.version,
                py.exe.display()
            );
            let mut cmd = Command::new(&py.exe);
            cmd.arg(&baseline).current_dir(root());
            if opts.quick {
                cmd.arg("--quick");
            }
            if let Some(only) = &opts.only {
                cmd.args(["--only", only]);
            }
            let lines = relay(&mut cmd, Some(&py.version), &mut problems);
            eprintln!(
                "bench: Python {} done in {}",
                py.version,
                fmt_secs(t.elapsed())
            );
            all.extend(lines.iter().cloned());
            pythons.push((py.version.clone(), lines));
        }
        if pythons.is_empty() {
            problems.push("no python3 found for --compare".to_string());
        }
        drop(load);
        let table = Table::build(&ours, &pythons);
        let mut mode = if opts.quick { "--quick" } else { "full" }.to_string();
        if let Some(only) = &opts.only {
            mode.push_str(&format!(" --only {only}"));
        }
        let under_load = (opts.load > 0).then(|| {
            mode.push_str(&format!(" --load {}", opts.load));
            format!(
                "under load: {} busy loop{} (on {} CPUs), during our suite and Python alike",
                opts.load,
                if opts.load == 1 { "" } else { "s" },
                std::thread::available_parallelism().map_or(1, usize::from)
            )
        });
        let markdown = || match &under_load {
            Some(l) => format!(
                "{}{}.\n\n{}",
                l[..1].to_uppercase(),
                &l[1..],
                table.markdown(&mode)
            ),
            None => table.markdown(&mode),
        };
        eprintln!();
        if opts.markdown {
            eprintln!("{}", markdown());
        } else {
            if let Some(l) = &under_load {
                eprintln!("{l}");
            }
            eprintln!("{}", table.plain());
        }
        if let Some(path) = &opts.markdown_out {
            std::fs::write(path, markdown())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            eprintln!("bench: wrote {}", path.display());
        }
    }

    if let Some(path) = &opts.json_out {
        let text: String = all.iter().map(|l| l.to_string() + "\n").collect();
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("bench: wrote {}", path.display());
    }
    eprintln!("bench: total time {}", fmt_secs(start.elapsed()));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// `--load N`: N busy-loop processes (`xtask busy`, see [`busy`]) in one process group of
/// their own. Dropping it kills the group with `killpg` and reaps every loop; if xtask dies
/// without dropping it (Ctrl-C, a kill), each loop sees its parent change and exits.
struct Load {
    children: Vec<std::process::Child>,
}

impl Load {
    fn start(n: usize) -> Result<Load, String> {
        let mut load = Load {
            children: Vec::new(),
        };
        if n == 0 {
            return Ok(load);
        }
        if cfg!(not(unix)) {
            return Err("`--load` needs a Unix host".into());
        }
        let exe = std::env::current_exe().map_err(|e| format!("--load: own executable: {e}"))?;
        for _ in 0..n {
            let mut cmd = Command::new(&exe);
            cmd.args(["busy", &std::process::id().to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            #[cfg(unix)]
            {
                use std::os::unix::process::CommandExt;
                // The first loop leads the group; the others join it.
                let group = load.children.first().map_or(0, |c| c.id());
                cmd.process_group(i32::try_from(group).map_err(|e| e.to_string())?);
            }
            // On error `load` is dropped here, killing the loops already started.
            let child = cmd
                .spawn()
                .map_err(|e| format!("--load: cannot start a busy loop: {e}"))?;
            load.children.push(child);
        }
        eprintln!(
            "bench: {n} busy loop(s) running (process group {})",
            load.children[0].id()
        );
        Ok(load)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let Some(leader) = self.children.first() else {
            return;
        };
        #[cfg(unix)]
        if let Ok(group) = libc::pid_t::try_from(leader.id()) {
            // SAFETY: killpg takes no pointers; `group` is the process group the first loop
            // leads (spawned with `process_group(0)`), not yet reaped, so the id is not reused.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        }
        #[cfg(not(unix))]
        let _ = leader;
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        eprintln!("bench: stopped {} busy loop(s)", self.children.len());
    }
}

/// `xtask busy PARENT`: the hidden subcommand behind `--load`, one CPU-bound loop. It exits when
/// its parent is no longer `PARENT` (xtask died without killing it), checked every few ms.
pub fn busy(args: &[String]) -> Result<(), String> {
    let parent: u32 = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or("usage: xtask busy PARENT-PID")?;
    let mut x = 0u64;
    loop {
        for _ in 0..1 << 20 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        #[cfg(unix)]
        if std::os::unix::process::parent_id() != parent {
            return Ok(());
        }
        #[cfg(not(unix))]
        let _ = parent;
    }
}

/// The async metrics against their blocking twins of the same run (issue goals: apply ≥ 80 %,
/// pipe round trip ≤ 3×), for the closing note.
fn async_ratios(ours: &[Json]) -> Vec<String> {
    let value = |metric: &str| {
        ours.iter()
            .filter(|l| l.str("metric") == Some(metric) && l.bool("pinned") != Some(true))
            .find_map(|l| l.num("value"))
    };
    let mut notes = Vec::new();
    if let (Some(a), Some(b)) = (
        value("async_apply_tasks_per_s"),
        value("pool_apply_async_tasks_per_s"),
    ) {
        notes.push(format!(
            "async_apply_tasks_per_s is {:.0} % of pool_apply_async_tasks_per_s (goal ≥ 80 %)",
            100.0 * a / b
        ));
    }
    if let (Some(a), Some(b)) = (value("async_pipe_rtt_us"), value("pipe_rtt_us")) {
        notes.push(format!(
            "async_pipe_rtt_us is {:.2}× pipe_rtt_us (goal ≤ 3×)",
            a / b
        ));
    }
    notes
}

/// Builds the suite in the bench profile and returns its executable.
fn build_suite(cluster: bool) -> Result<PathBuf, String> {
    let mut cmd = cargo();
    cmd.args([
        "bench",
        "-p",
        "processing-suite",
        "--bench",
        "suite",
        // The async metrics need feature `async`.
        "--all-features",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    if cluster {
        cmd.args(["--features", "cluster"]);
    }
    eprintln!("bench: $ {}", show(&cmd));
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err("building the benchmark suite failed".into());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| parse_json(l).ok())
        .filter(|m| m.str("reason") == Some("compiler-artifact"))
        .filter(|m| m.get("target").and_then(|t| t.str("name")) == Some("suite"))
        .find_map(|m| m.str("executable").map(PathBuf::from))
        .ok_or_else(|| "cargo did not report the suite's executable".into())
}

/// Runs `cmd`, relaying its JSON lines to stdout (with `"python": version` added when given)
/// and its stderr to ours. Anything on stdout that is not a JSON object is a problem.
fn relay(cmd: &mut Command, python: Option<&str>, problems: &mut Vec<String>) -> Vec<Json> {
    let who = python
        .map(|v| format!("Python {v}"))
        .unwrap_or_else(|| "the suite".into());
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            problems.push(format!("cannot run {who}: {e}"));
            return Vec::new();
        }
    };
    let mut lines = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim().is_empty() {
                continue;
            }
            match parse_json(&line) {
                Ok(Json::Object(mut v)) if v.get("metric").is_some_and(Json::is_string) => {
                    if let Some(ver) = python {
                        v.insert("python".into(), Json::from(ver));
                    }
                    let v = Json::Object(v);
                    println!("{v}");
                    lines.push(v);
                }
                _ => {
                    eprintln!("bench: WARNING: {who} printed a line that is not a metric on stdout: {line}");
                    problems.push(format!("{who} printed non-JSON on stdout"));
                }
            }
        }
    }
    match child.wait() {
        Ok(s) if s.success() => {}
        Ok(s) => problems.push(format!("{who} exited with {s}")),
        Err(e) => problems.push(format!("{who}: {e}")),
    }
    lines
}

struct Python {
    exe: PathBuf,
    version: String,
    key: (u32, u32, u32),
}

/// `python3`, plus the newest Python 3.12+ found (PATH `python3.N`, pyenv's versions) if that is
/// another interpreter.
fn find_pythons() -> Vec<Python> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    for minor in 12..=20 {
        if let Some(p) = which(&format!("python3.{minor}")) {
            candidates.push(p);
        }
    }
    let pyenv_root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(rootdir) = pyenv_root {
        if let Ok(entries) = std::fs::read_dir(rootdir.join("versions")) {
            for e in entries.flatten() {
                let p = e.path().join("bin/python3");
                if p.is_file() {
                    candidates.push(p);
                }
            }
        }
    }
    let mut found = Vec::new();
    let first = probe(&PathBuf::from("python3"));
    let newest = candidates
        .iter()
        .filter_map(probe)
        .filter(|p| p.key >= (3, 12, 0))
        .filter(|p| first.as_ref().is_none_or(|f| f.exe != p.exe))
        .max_by_key(|p| p.key);
    if let Some(f) = first {
        found.push(f);
    }
    if let Some(n) = newest {
        if found.first().is_none_or(|f| f.key < n.key) {
            found.push(n);
        }
    }
    found
}

/// Asks an interpreter for its real executable and version; `None` if it does not run.
fn probe(exe: &PathBuf) -> Option<Python> {
    let out = Command::new(exe)
        .args(["-c", "import os, sys, platform; print(os.path.realpath(sys.executable)); print(platform.python_version())"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let real = PathBuf::from(lines.next()?.trim());
    let version = lines.next()?.trim().to_string();
    let mut nums = version.split('.').map(|n| {
        n.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    });
    let key = (
        nums.next()?,
        nums.next().unwrap_or(0),
        nums.next().unwrap_or(0),
    );
    Some(Python {
        exe: real,
        version,
        key,
    })
}

/// The unit of each metric, as the suite and `benches/python/baseline.py` print it.
const UNITS: &[(&str, &str)] = &[
    ("spawn_join_ms", "ms"),
    ("pipe_rtt_us", "us"),
    ("pipe_bytes_gbps", "GB/s"),
    ("queue_items_per_s", "items/s"),
    ("lock_uncontended_ns", "ns"),
    ("value_locked_incr_per_s", "ops/s"),
    ("array_share_gbps", "GB/s"),
    ("pool_map_tasks_per_s", "tasks/s"),
    ("pool_apply_async_tasks_per_s", "tasks/s"),
    ("manager_list_ops_per_s", "ops/s"),
    ("async_apply_tasks_per_s", "tasks/s"),
    ("async_pipe_rtt_us", "us"),
];

/// Checks the suite's lines against the rules of the comparison: known metrics in their unit, a
/// headline row where a metric has several, exactly one default `spawn_join_ms` row.
fn validate(ours: &[Json]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut metrics: Vec<&str> = Vec::new();
    for l in ours {
        let (Some(m), unit) = (l.str("metric"), l.str("unit").unwrap_or("")) else {
            continue;
        };
        if !metrics.contains(&m) {
            metrics.push(m);
        }
        if let Some((_, want)) = UNITS.iter().find(|(n, _)| *n == m) {
            if unit != *want {
                problems.push(format!("{m} is printed in `{unit}`; its unit is `{want}`"));
            }
        }
        if l.num("value").is_none() {
            problems.push(format!("{m} has no numeric value"));
        }
    }
    for m in metrics {
        let rows: Vec<&Json> = ours.iter().filter(|l| l.str("metric") == Some(m)).collect();
        if m == "spawn_join_ms" {
            let defaults = rows
                .iter()
                .filter(|r| r.bool("default") == Some(true))
                .count();
            if defaults != 1 {
                problems.push(format!("spawn_join_ms has {defaults} rows with \"default\": true; it needs exactly one"));
            }
            continue;
        }
        let headlines = rows
            .iter()
            .filter(|r| r.bool("headline") == Some(true))
            .count();
        if rows.len() > 1 && headlines != 1 {
            problems.push(format!(
                "{m} has {} rows and {headlines} with \"headline\": true; it needs exactly one",
                rows.len()
            ));
        }
    }
    problems
}

/// Whether smaller values are better, by unit; `None` when the unit says nothing.
fn lower_is_better(unit: &str) -> Option<bool> {
    match unit {
        "ms" | "us" | "ns" | "s" => Some(true),
        u if u.ends_with("/s") => Some(false),
        _ => None,
    }
}

struct Row {
    label: String,
    unit: String,
    ours: Option<f64>,
    pythons: Vec<Option<f64>>,
    ratio: Option<f64>,
    goal: String,
    met: Option<bool>,
}

struct Table {
    versions: Vec<String>,
    rows: Vec<Row>,
}

fn pick<'a>(rows: &[&'a Json]) -> Option<&'a Json> {
    rows.iter()
        .find(|r| r.bool("headline") == Some(true))
        .or(rows.first())
        .copied()
}

impl Table {
    fn build(ours: &[Json], pythons: &[(String, Vec<Json>)]) -> Table {
        let mut metrics: Vec<String> = GOALS.iter().map(|g| g.0.to_string()).collect();
        for l in ours
            .iter()
            .chain(pythons.iter().flat_map(|(_, ls)| ls.iter()))
        {
            if let Some(m) = l.str("metric") {
                if !metrics.iter().any(|x| x == m) {
                    metrics.push(m.to_string());
                }
            }
        }
        metrics.dedup();
        let mut rows = Vec::new();
        for metric in &metrics {
            let of = |lines: &'_ [Json]| -> Vec<Json> {
                lines
                    .iter()
                    .filter(|l| l.str("metric") == Some(metric))
                    .cloned()
                    .collect()
            };
            let our_rows = of(ours);
            let py_rows: Vec<Vec<Json>> = pythons.iter().map(|(_, ls)| of(ls)).collect();
            if our_rows.is_empty() && py_rows.iter().all(Vec::is_empty) {
                continue;
            }
            if metric == "spawn_join_ms" {
                // One row per start method: ours (default method) vs Python's spawn; others alike.
                let mut methods: Vec<String> = Vec::new();
                for r in our_rows.iter().chain(py_rows.iter().flatten()) {
                    if let Some(m) = r.str("start_method") {
                        if !methods.iter().any(|x| x == m) {
                            methods.push(m.to_string());
                        }
                    }
                }
                let default_method = our_rows
                    .iter()
                    .find(|r| r.bool("default") == Some(true))
                    .and_then(|r| r.str("start_method"))
                    .map(str::to_string);
                let mut ordered: Vec<String> = default_method.iter().cloned().collect();
                ordered.extend(
                    methods
                        .into_iter()
                        .filter(|m| Some(m) != default_method.as_ref()),
                );
                for method in ordered {
                    let is_default = Some(&method) == default_method.as_ref();
                    let ours_m: Vec<&Json> = our_rows
                        .iter()
                        .filter(|r| r.str("start_method") == Some(&method))
                        .collect();
                    let py_method = if is_default { "spawn" } else { method.as_str() };
                    let pys: Vec<Option<&Json>> = py_rows
                        .iter()
                        .map(|rs| {
                            pick(
                                &rs.iter()
                                    .filter(|r| r.str("start_method") == Some(py_method))
                                    .collect::<Vec<_>>(),
                            )
                        })
                        .collect();
                    let label = if is_default {
                        format!("spawn_join_ms {method} (default) vs Python spawn")
                    } else {
                        format!("spawn_join_ms {method}")
                    };
                    let goal_key = if is_default {
                        "default"
                    } else {
                        method.as_str()
                    };
                    if ours_m.is_empty() && pys.iter().all(Option::is_none) {
                        continue;
                    }
                    rows.push(Row::new(label, metric, goal_key, pick(&ours_m), &pys));
                    if is_default && method != "spawn" {
                        // For information: the default method against the same method in Python.
                        let same: Vec<Option<&Json>> = py_rows
                            .iter()
                            .map(|rs| {
                                pick(
                                    &rs.iter()
                                        .filter(|r| r.str("start_method") == Some(&method))
                                        .collect::<Vec<_>>(),
                                )
                            })
                            .collect();
                        if same.iter().any(Option::is_some) {
                            let label =
                                format!("spawn_join_ms {method} (default) vs Python {method}");
                            rows.push(Row::new(label, metric, "-", pick(&ours_m), &same));
                        }
                    }
                }
                continue;
            }
            let ours_refs: Vec<&Json> = our_rows.iter().collect();
            let pys: Vec<Option<&Json>> = py_rows
                .iter()
                .map(|rs| pick(&rs.iter().collect::<Vec<_>>()))
                .collect();
            rows.push(Row::new(metric.clone(), metric, "", pick(&ours_refs), &pys));
        }
        Table {
            versions: pythons.iter().map(|(v, _)| v.clone()).collect(),
            rows,
        }
    }

    fn header(&self) -> Vec<String> {
        let mut h = vec!["metric".to_string(), "unit".into(), "ours".into()];
        h.extend(self.versions.iter().map(|v| format!("Python {v}")));
        h.extend([
            "ratio to best Python".to_string(),
            "goal".into(),
            "met".into(),
        ]);
        h
    }

    fn cells(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                let mut c = vec![r.label.clone(), r.unit.clone(), fmt_value(r.ours)];
                c.extend(r.pythons.iter().map(|v| fmt_value(*v)));
                c.push(
                    r.ratio
                        .map(|x| {
                            if x >= 10.0 {
                                format!("{x:.1}×")
                            } else {
                                format!("{x:.2}×")
                            }
                        })
                        .unwrap_or_else(|| "-".into()),
                );
                c.push(r.goal.clone());
                c.push(match r.met {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "-".into(),
                });
                c
            })
            .collect()
    }

    fn plain(&self) -> String {
        let header = self.header();
        let cells = self.cells();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |row: &[String]| -> String {
            let parts: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    let pad = w - c.chars().count();
                    // Numbers right-aligned, words left-aligned.
                    if i >= 2 && i < row.len() - 2 {
                        format!("{}{c}", " ".repeat(pad))
                    } else {
                        format!("{c}{}", " ".repeat(pad))
                    }
                })
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        let mut out = line(&header);
        out.push('\n');
        out.push_str(
            &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        );
        for row in &cells {
            out.push('\n');
            out.push_str(&line(row));
        }
        out
    }

    fn markdown(&self, mode: &str) -> String {
        let mut out = format!(
            "Measured by `cargo xtask bench --compare` ({mode}), Python {} in the same run; the \
             ratio is against the better Python (above 1 means faster).\n\n",
            self.versions.join(" and ")
        );
        let header = self.header();
        out.push_str(&format!("| {} |\n", header.join(" | ")));
        out.push_str(&format!(
            "|{}\n",
            header
                .iter()
                .enumerate()
                .map(|(i, _)| if (2..header.len() - 2).contains(&i) {
                    "---:|"
                } else {
                    "---|"
                })
                .collect::<String>()
        ));
        for row in self.cells() {
            let row: Vec<String> = row
                .into_iter()
                .enumerate()
                .map(|(i, c)| if i == 0 { format!("`{c}`") } else { c })
                .collect();
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out
    }
}

impl Row {
    fn new(
        label: String,
        metric: &str,
        goal_key: &str,
        ours: Option<&Json>,
        pys: &[Option<&Json>],
    ) -> Row {
        let unit = ours
            .or(pys.iter().flatten().next().copied())
            .and_then(|r| r.str("unit"))
            .unwrap_or("")
            .to_string();
        let our_value = ours.and_then(|r| r.num("value"));
        let py_values: Vec<Option<f64>> =
            pys.iter().map(|r| r.and_then(|r| r.num("value"))).collect();
        let lower = lower_is_better(&unit);
        let best = py_values
            .iter()
            .flatten()
            .copied()
            .fold(None, |acc: Option<f64>, v| match (acc, lower) {
                (None, _) => Some(v),
                (Some(a), Some(true)) => Some(a.min(v)),
                (Some(a), _) => Some(a.max(v)),
            });
        let ratio = match (our_value, best, lower) {
            (Some(o), Some(b), Some(true)) if o > 0.0 => Some(b / o),
            (Some(o), Some(b), Some(false)) if b > 0.0 => Some(o / b),
            _ => None,
        };
        let goal = GOALS.iter().find(|g| g.0 == metric && g.1 == goal_key);
        let met = match (goal, our_value, lower) {
            (Some(g), Some(o), Some(lower)) => {
                let abs_ok = if lower { o <= g.3 } else { o >= g.3 };
                let ratio_ok = g.4 == 0.0 || ratio.is_some_and(|r| r >= g.4);
                Some(abs_ok && ratio_ok)
            }
            _ => None,
        };
        Row {
            label,
            unit,
            ours: our_value,
            pythons: py_values,
            ratio,
            goal: goal.map(|g| g.2.to_string()).unwrap_or_else(|| "-".into()),
            met,
        }
    }
}

/// Three significant figures below 1000, whole numbers with thin grouping above.
fn fmt_value(v: Option<f64>) -> String {
    let Some(v) = v else { return "-".into() };
    if v.abs() >= 1000.0 {
        let s = format!("{:.0}", v);
        let (sign, digits) = s.split_at(if s.starts_with('-') { 1 } else { 0 });
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(' ');
            }
            out.push(ch);
        }
        format!("{sign}{out}")
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::{fmt_value, Table};
    use crate::util::parse_json;
    use serde_json::Value as Json;

    fn lines(text: &str) -> Vec<Json> {
        text.lines().map(|l| parse_json(l).unwrap()).collect()
    }

    #[test]
    fn async_ratios_against_the_blocking_twins() {
        let ours = lines(
            r#"{"metric": "pipe_rtt_us", "value": 2.0, "unit": "us", "pinned": true}
{"metric": "pipe_rtt_us", "value": 4.0, "unit": "us", "headline": true}
{"metric": "async_pipe_rtt_us", "value": 6.0, "unit": "us"}
{"metric": "pool_apply_async_tasks_per_s", "value": 1000, "unit": "tasks/s"}
{"metric": "async_apply_tasks_per_s", "value": 900, "unit": "tasks/s"}"#,
        );
        let notes = super::async_ratios(&ours);
        assert_eq!(notes.len(), 2);
        assert!(notes[0].contains("90 %"), "{notes:?}");
        assert!(notes[1].contains("1.50×"), "{notes:?}");
        assert!(super::async_ratios(&ours[..2]).is_empty());
    }

    #[test]
    fn compares_headline_rows_and_start_methods() {
        let ours = lines(
            r#"{"metric": "spawn_join_ms", "value": 0.5, "unit": "ms", "start_method": "forkserver", "default": true}
{"metric": "spawn_join_ms", "value": 0.2, "unit": "ms", "start_method": "fork"}
{"metric": "pipe_rtt_us", "value": 2.0, "unit": "us", "pinned": true}
{"metric": "pipe_rtt_us", "value": 4.0, "unit": "us", "headline": true}
{"metric": "queue_items_per_s", "value": 3000000, "unit": "items/s"}"#,
        );
        let py = |spawn: f64, fork: f64, rtt: f64, q: f64| {
            lines(&format!(
                "{{\"metric\": \"spawn_join_ms\", \"value\": {spawn}, \"unit\": \"ms\", \"start_method\": \"spawn\"}}\n\
                 {{\"metric\": \"spawn_join_ms\", \"value\": {fork}, \"unit\": \"ms\", \"start_method\": \"fork\"}}\n\
                 {{\"metric\": \"pipe_rtt_us\", \"value\": {rtt}, \"unit\": \"us\"}}\n\
                 {{\"metric\": \"queue_items_per_s\", \"value\": {q}, \"unit\": \"items/s\"}}"
            ))
        };
        let pythons = vec![
            ("3.11".to_string(), py(54.0, 4.4, 20.0, 121000.0)),
            ("3.13".to_string(), py(41.0, 1.4, 33.0, 206000.0)),
        ];
        let t = Table::build(&ours, &pythons);
        let row = |prefix: &str| t.rows.iter().find(|r| r.label.starts_with(prefix)).unwrap();
        let spawn = row("spawn_join_ms forkserver (default)");
        assert_eq!(spawn.ratio, Some(41.0 / 0.5));
        assert_eq!(spawn.met, Some(true));
        let fork = t
            .rows
            .iter()
            .find(|r| r.label == "spawn_join_ms fork")
            .unwrap();
        assert_eq!(fork.ratio, Some(1.4 / 0.2));
        let rtt = row("pipe_rtt_us");
        assert_eq!(rtt.ours, Some(4.0));
        assert_eq!(rtt.ratio, Some(5.0));
        assert_eq!(rtt.met, Some(true));
        let q = row("queue_items_per_s");
        assert_eq!(q.ratio, Some(3000000.0 / 206000.0));
        assert_eq!(q.met, Some(true));
        assert!(t
            .markdown("--quick")
            .contains("| `pipe_rtt_us` | us | 4.00 | 20.0 | 33.0 | 5.00× |"));
    }

    #[test]
    fn validates_rows() {
        let ok = lines(
            r#"{"metric": "spawn_join_ms", "value": 0.5, "unit": "ms", "start_method": "forkserver", "default": true}
{"metric": "pipe_rtt_us", "value": 2.0, "unit": "us", "pinned": true}
{"metric": "pipe_rtt_us", "value": 4.0, "unit": "us", "headline": true}"#,
        );
        assert!(super::validate(&ok).is_empty());
        let bad = lines(
            r#"{"metric": "spawn_join_ms", "value": 0.5, "unit": "ms", "start_method": "forkserver"}
{"metric": "pipe_rtt_us", "value": 2.0, "unit": "ms"}
{"metric": "pipe_rtt_us", "value": 4.0, "unit": "us"}"#,
        );
        assert_eq!(super::validate(&bad).len(), 3);
    }

    #[test]
    fn formats_values() {
        assert_eq!(fmt_value(Some(2460000.4)), "2 460 000");
        assert_eq!(fmt_value(Some(0.12345)), "0.123");
        assert_eq!(fmt_value(None), "-");
    }
}
