//! The optional progress bar of map-style calls (indicatif, drawn on stderr).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[cfg(test)]
thread_local! {
    /// The last bar made on this thread (the calling thread of a map), for the tests.
    pub(crate) static LAST: std::cell::RefCell<Option<Progress>> = const { std::cell::RefCell::new(None) };
}

/// A progress bar shared by the supervisors that deliver a call's chunks. It counts inputs
/// (each once, failed ones included) and ends once: finished when every input is counted,
/// abandoned where it stood when the call fails or is dropped; either way the cursor moves to
/// a fresh line so that the program's next output does not run into the bar.
#[derive(Debug, Clone)]
pub(crate) struct Progress(ProgressBar, Arc<AtomicBool>);

impl Progress {
    /// A bar for `total` inputs, or a counter when the total is unknown.
    pub(crate) fn new(total: Option<usize>) -> Progress {
        let bar = match total {
            Some(n) => {
                let bar =
                    ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr());
                if let Ok(style) = ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} tasks [{elapsed_precise}<{eta_precise}]",
                ) {
                    bar.set_style(style);
                }
                bar
            }
            None => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                if let Ok(style) = ProgressStyle::with_template(
                    "{spinner} {pos} tasks [{elapsed_precise}, {per_sec}]",
                ) {
                    bar.set_style(style);
                }
                bar
            }
        };
        let progress = Progress(bar, Arc::new(AtomicBool::new(false)));
        #[cfg(test)]
        LAST.with(|l| *l.borrow_mut() = Some(progress.clone()));
        progress
    }

    pub(crate) fn inc(&self, n: usize) {
        self.0.inc(n as u64);
    }

    /// Every input is counted.
    pub(crate) fn finish(&self) {
        if self.1.swap(true, Ordering::AcqRel) {
            return;
        }
        self.0.finish();
        self.new_line();
    }

    /// The call failed or was dropped: the bar stays where it stood.
    pub(crate) fn abandon(&self) {
        if self.1.swap(true, Ordering::AcqRel) {
            return;
        }
        self.0.abandon();
        self.new_line();
    }

    fn new_line(&self) {
        // The ended bar stays drawn with the cursor at the end of its line.
        if !self.0.is_hidden() {
            eprintln!();
        }
    }

    #[cfg(test)]
    pub(crate) fn position(&self) -> u64 {
        self.0.position()
    }

    #[cfg(test)]
    pub(crate) fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}
