//! The platform seam of processing-process: `unix.rs` (with `forkserver.rs` on Linux) or
//! `windows.rs`, one fixed list of names.
//!
//! Both sides provide: `Channel` (the bootstrap channel: framed messages with OS handles),
//! `channel_pair`, `ProcHandle` (a started child: wait, signal, sentinel), `spawn_exec` (re-exec
//! of the program), `fork_process` and `forkserver_request` (errors where unsupported),
//! `wait_event`, the child-side `apply_setup`, `close_fds_except`, `child_defaults`, `exit_now`,
//! `write_stderr`, `image_fingerprint`, `parse_marker`, `default_start_method`,
//! `TERMINATE` and `KILL`.

use std::path::PathBuf;

use crate::Stdio;

/// What a re-exec needs (both platforms start the program with std's `Command`).
#[derive(Debug)]
pub(crate) struct ExecRequest {
    pub(crate) program: Option<PathBuf>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) stdio: [Stdio; 3],
    pub(crate) child_end: Channel,
    pub(crate) die_with_parent: bool,
}

/// What `wait_event` saw.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    pub(crate) channel: bool,
}

fn to_std(s: Stdio) -> std::process::Stdio {
    match s {
        Stdio::Inherit => std::process::Stdio::inherit(),
        Stdio::Null => std::process::Stdio::null(),
        Stdio::File(f) => std::process::Stdio::from(f),
    }
}

/// What a re-exec sets alike on both platforms: the child marker (`marker`, the platform's
/// spelling of the bootstrap channel), the environment, the working directory and the
/// standard streams.
fn configure_exec(
    cmd: &mut std::process::Command,
    marker: String,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    stdio: [Stdio; 3],
) {
    cmd.env(crate::wire::CHILD_MARKER, marker);
    cmd.envs(env);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let [stdin, stdout, stderr] = stdio;
    cmd.stdin(to_std(stdin))
        .stdout(to_std(stdout))
        .stderr(to_std(stderr));
}

/// The child-side part of a setup both platforms apply alike: the environment, then the
/// working directory.
fn apply_env_and_cwd(
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
) -> Result<(), processing_core::ErrorChain> {
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    if let Some(dir) = cwd {
        std::env::set_current_dir(&dir).map_err(|e| {
            processing_core::ErrorChain::with_source(
                format!("cannot change directory to {}", dir.display()),
                &e,
            )
        })?;
    }
    Ok(())
}

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(target_os = "linux")]
mod forkserver;
#[cfg(target_os = "linux")]
pub(crate) use forkserver::{forkserver_request, serve_forkserver};

/// Where there is no fork server, no request exists.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub(crate) enum ForkRequest {}

#[cfg(not(target_os = "linux"))]
impl ForkRequest {
    pub(crate) fn finish(
        self,
        _ready: Result<u32, crate::SpawnError>,
    ) -> Result<ProcHandle, crate::SpawnError> {
        match self {}
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) fn forkserver_request(_child_end: Channel) -> Result<ForkRequest, crate::SpawnError> {
    Err(crate::error::unsupported(
        "the forkserver start method needs Linux",
    ))
}

#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) fn serve_forkserver(_marker: &str) -> ! {
    exit_now(crate::wire::EXIT_BOOTSTRAP_FAILED)
}

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
