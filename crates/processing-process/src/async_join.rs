//! `Process::join_async` (feature `async`): the process's end awaited through the reactor of
//! `processing_core::aio` — readiness of the pidfd and of the bootstrap channel on Linux; the
//! process handle through the system thread pool on Windows (the report pipe checked on the
//! [`Backoff`] schedule until read); `join_timeout(0)` on that schedule elsewhere.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use processing_core::aio::Backoff;
use serde::{de::DeserializeOwned, Serialize};

use super::{read_report, Process};
use crate::ProcessError;

impl<R: Serialize + DeserializeOwned> Process<R> {
    /// Awaits the end of the process and returns the target's value, like
    /// [`join`](Process::join), without blocking a thread (feature `async`; any executor).
    ///
    /// Dropping the future before it completes leaves the child running and joinable, as
    /// dropping a `JoinHandle` does. Errors are those of [`join`](Process::join).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut child = processing::spawn(|x: u32| x * 2, 21)?;
    /// let v = processing::core::aio::block_on(child.join_async())?;
    /// assert_eq!(v, 42);
    /// # Ok(()) }
    /// ```
    pub fn join_async(&mut self) -> JoinAsync<'_, R> {
        JoinAsync {
            process: self,
            #[cfg(target_os = "linux")]
            waits: Vec::new(),
            #[cfg(windows)]
            wait: None,
            #[cfg(windows)]
            signalled: false,
            backoff: Backoff::new(),
        }
    }
}

/// The future of [`Process::join_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct JoinAsync<'a, R> {
    process: &'a mut Process<R>,
    #[cfg(target_os = "linux")]
    waits: Vec<processing_core::aio::FdReady>,
    #[cfg(windows)]
    wait: Option<processing_core::aio::HandleReady>,
    /// The process handle was signalled (Windows): wait no more on it.
    #[cfg(windows)]
    signalled: bool,
    backoff: Backoff,
}

impl<R> std::fmt::Debug for JoinAsync<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinAsync")
            .field("process", &self.process)
            .finish_non_exhaustive()
    }
}

impl<R: Serialize + DeserializeOwned> Future for JoinAsync<'_, R> {
    type Output = Result<R, ProcessError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this.process.join_timeout(Duration::ZERO) {
                Err(ProcessError::Timeout) => {}
                done => return Poll::Ready(done),
            }
            let Some(st) = this.process.started.as_mut() else {
                return Poll::Ready(Err(ProcessError::NotStarted));
            };
            // A child whose report does not fit the socket buffer cannot end before the
            // report is read: read it as soon as it is there.
            if st.report.is_none() && st.chan.as_ref().is_some_and(|c| c.readable_now()) {
                read_report(st);
                continue;
            }
            #[cfg(target_os = "linux")]
            {
                use processing_core::aio::{wait_fd, Interest};
                if this.waits.is_empty() {
                    let mut fds = Vec::new();
                    if let Some(pidfd) = st.shared.proc.sentinel() {
                        fds.push(pidfd);
                    }
                    if st.report.is_none() {
                        if let Some(c) = st.chan.as_ref() {
                            fds.push(c.as_os_handle());
                        }
                    }
                    for fd in fds {
                        match wait_fd(fd, Interest::Readable) {
                            Ok(w) => this.waits.push(w),
                            Err(e) => return Poll::Ready(Err(ProcessError::Io(e))),
                        }
                    }
                }
                // Without a pidfd (old kernels) the end is polled on the backoff schedule.
                let has_pidfd = st.shared.proc.sentinel().is_some();
                let mut ready = false;
                for w in &mut this.waits {
                    match Pin::new(w).poll(cx) {
                        Poll::Ready(Ok(())) => ready = true,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(ProcessError::Io(e))),
                        Poll::Pending => {}
                    }
                }
                if ready {
                    this.waits.clear();
                    continue;
                }
                if !has_pidfd {
                    this.backoff.wait(cx);
                }
                return Poll::Pending;
            }
            #[cfg(windows)]
            {
                // The process handle through the system thread pool; the report pipe is not
                // waitable that way, so while the report is unread it is checked on the
                // backoff schedule too.
                if this.wait.is_none() && !this.signalled {
                    if let Some(h) = st.shared.proc.sentinel() {
                        match processing_core::aio::wait_handle(h) {
                            Ok(w) => this.wait = Some(w),
                            Err(e) => return Poll::Ready(Err(ProcessError::Io(e))),
                        }
                    }
                }
                if let Some(w) = this.wait.as_mut() {
                    match Pin::new(w).poll(cx) {
                        Poll::Ready(Ok(())) => {
                            this.wait = None;
                            this.signalled = true;
                            continue;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(ProcessError::Io(e))),
                        Poll::Pending => {}
                    }
                }
                if this.wait.is_none() || (st.report.is_none() && st.chan.is_some()) {
                    this.backoff.wait(cx);
                }
                return Poll::Pending;
            }
            #[cfg(not(any(target_os = "linux", windows)))]
            {
                this.backoff.wait(cx);
                return Poll::Pending;
            }
        }
    }
}
