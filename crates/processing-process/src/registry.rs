//! Process-wide state: who this process is, and the children it started.
//!
//! Children are reaped without SIGCHLD: a `Process` reaps its own child when asked about it
//! (`is_alive`, `exitcode`, `join`); a child whose `Process` was dropped stays in the registry
//! until a `waitpid(WNOHANG)` sweep, run on every `start` and `active_children`, reaps it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::sys::ProcHandle;
use crate::StartMethod;

/// Who this process is (set by the bootstrap in children).
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) parent: Option<(u32, String)>,
    pub(crate) method: Option<StartMethod>,
}

static IDENTITY: RwLock<Option<Identity>> = RwLock::new(None);

pub(crate) fn identity() -> Identity {
    IDENTITY
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| Identity {
            name: "MainProcess".into(),
            daemon: false,
            parent: None,
            method: None,
        })
}

pub(crate) fn set_identity(identity: Identity) {
    *IDENTITY.write().unwrap_or_else(|e| e.into_inner()) = Some(identity);
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh default name: `Process-1`, `Process-2`, ... (per creating process).
pub(crate) fn next_name() -> String {
    format!("Process-{}", COUNTER.fetch_add(1, Ordering::Relaxed) + 1)
}

/// What the registry and a `Process` share about a started child.
#[derive(Debug)]
pub(crate) struct ChildShared {
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) proc: ProcHandle,
    status: Mutex<Option<i32>>,
    pub(crate) dropped: AtomicBool,
}

impl ChildShared {
    pub(crate) fn new(name: String, daemon: bool, proc: ProcHandle) -> ChildShared {
        ChildShared {
            name,
            daemon,
            proc,
            status: Mutex::new(None),
            dropped: AtomicBool::new(false),
        }
    }

    /// The exit code if the child ended (reaping it on first sight).
    pub(crate) fn poll(&self) -> Option<i32> {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if status.is_none() {
            match self.proc.try_wait() {
                Ok(found) => *status = found,
                Err(e) => {
                    tracing::warn!(target: "processing", pid = self.proc.pid(), error = %e, "exit status lost (reaped elsewhere)");
                    *status = Some(255);
                }
            }
            if let Some(code) = *status {
                tracing::debug!(target: "processing", pid = self.proc.pid(), name = %self.name, exitcode = code, "process exited");
            }
        }
        *status
    }

    /// Signals the child unless it was already reaped (so the pid cannot have been reused).
    pub(crate) fn signal(&self, signal: i32) -> std::io::Result<()> {
        let status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if status.is_some() {
            return Ok(());
        }
        self.proc.signal(signal)
    }
}

static CHILDREN: Mutex<Vec<Arc<ChildShared>>> = Mutex::new(Vec::new());
static REAP_LATER: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub(crate) fn register(child: Arc<ChildShared>) {
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(child);
}

/// Remembers a helper pid (a dead fork server) to reap in the next sweep.
/// Drops the registry's reference to a child that was reaped (its `Process` holds the last
/// one, so the child's descriptors close with it rather than at the next sweep).
pub(crate) fn forget(child: &Arc<ChildShared>) {
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|c| !Arc::ptr_eq(c, child));
}

#[allow(dead_code)]
pub(crate) fn reap_later(pid: u32) {
    REAP_LATER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(pid);
}

/// Reaps ended children and forgets them; returns the live ones.
pub(crate) fn sweep() -> Vec<Arc<ChildShared>> {
    let mut children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    children.retain(|c| c.poll().is_none());
    let live = children.clone();
    drop(children);
    let mut later = REAP_LATER.lock().unwrap_or_else(|e| e.into_inner());
    later.retain(|&pid| !crate::sys::reap_pid(pid));
    live
}

/// Holds this crate's locks across a `fork` so that the child does not inherit one held by
/// another thread.
#[derive(Debug)]
pub(crate) struct ForkGuard {
    // The standard streams' locks, which another thread (a test harness printing results)
    // may hold at any moment; a child that inherited one held would hang on its final flush.
    _stdout: std::io::StdoutLock<'static>,
    _stderr: std::io::StderrLock<'static>,
    _children: std::sync::MutexGuard<'static, Vec<Arc<ChildShared>>>,
    _later: std::sync::MutexGuard<'static, Vec<u32>>,
    _identity: std::sync::RwLockWriteGuard<'static, Option<Identity>>,
}

pub(crate) fn fork_guard() -> ForkGuard {
    // Our own locks first, then the streams: code that logs while holding one of ours takes
    // the stream locks in that order too.
    let children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    let later = REAP_LATER.lock().unwrap_or_else(|e| e.into_inner());
    // Exclusive, so that no other thread's read lock is copied into the child.
    let identity = IDENTITY.write().unwrap_or_else(|e| e.into_inner());
    ForkGuard {
        _stdout: std::io::stdout().lock(),
        _stderr: std::io::stderr().lock(),
        _children: children,
        _later: later,
        _identity: identity,
    }
}

/// In a forked child: releases the guard and forgets the parent's children without closing
/// their descriptors (they may be closed or reused here).
pub(crate) fn after_fork_in_child(guard: ForkGuard) {
    let ForkGuard {
        _stdout,
        _stderr,
        mut _children,
        mut _later,
        _identity,
    } = guard;
    std::mem::forget(std::mem::take(&mut *_children));
    _later.clear();
    drop(_children);
    drop(_later);
    drop(_identity);
    // The forking thread took these locks, and this thread is its copy (same thread id),
    // so releasing them here is a normal unlock.
    drop(_stderr);
    drop(_stdout);
    crate::sys::forget_inherited_state();
}
