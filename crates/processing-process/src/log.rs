//! `log_to_stderr`: the tracing subscriber that shows what processing does.

/// Installs a `tracing` subscriber that prints events at `level` and above on stderr, and
/// returns whether it was installed (false if the program already has a global subscriber).
///
/// The library logs under the target `"processing"`: process starts (method, pid), exits and
/// exit codes, and errors.
///
/// ```
/// processing::log_to_stderr(processing::process::Level::INFO);
/// ```
pub fn log_to_stderr(level: tracing::Level) -> bool {
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init()
        .is_ok()
}
