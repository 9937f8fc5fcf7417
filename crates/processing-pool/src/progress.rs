//! The optional progress bar of map-style calls (indicatif, drawn on stderr).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar shared by the supervisors that deliver a call's chunks.
#[derive(Debug, Clone)]
pub(crate) struct Progress(ProgressBar);

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
        Progress(bar)
    }

    pub(crate) fn inc(&self, n: usize) {
        self.0.inc(n as u64);
    }

    pub(crate) fn finish(&self) {
        self.0.finish();
        // The finished bar stays drawn with the cursor at the end of its line; move to a fresh
        // line so that the program's next output does not run into it.
        if !self.0.is_hidden() {
            eprintln!();
        }
    }

    pub(crate) fn abandon(&self) {
        self.0.abandon();
    }
}
