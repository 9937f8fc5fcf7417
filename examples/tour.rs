//! A short tour of processes in `processing`: spawn with a return value, a panic coming back
//! as an error, a forked capturing closure, and the start methods of the platform.
//!
//! Run with `cargo run --example tour`.

use processing::{current_process, Process, ProcessError, StartMethod};

fn square(x: u64) -> u64 {
    x * x
}

fn who_am_i(_: ()) -> (String, u32, Option<u32>) {
    let me = current_process();
    (
        me.name().to_string(),
        me.pid(),
        processing::parent_process().map(|p| p.pid()),
    )
}

fn fails(reason: String) -> u32 {
    panic!("{reason}")
}

fn main() -> Result<(), ProcessError> {
    processing::log_to_stderr(processing::process::Level::WARN);

    // A child with a return value, like std::thread::spawn + join.
    let mut child = processing::spawn(square, 12)?;
    println!(
        "square(12) computed in process {:?}: {}",
        child.pid(),
        child.join()?
    );

    // Names and parents.
    let mut p = Process::new(who_am_i, ()).name("explorer");
    p.start()?;
    let (name, pid, parent) = p.join()?;
    println!(
        "child '{name}' (pid {pid}) says its parent is {parent:?}; I am {}",
        std::process::id()
    );

    // A panic in the child comes back as an error (its message is also on the child's stderr).
    let mut p = Process::new(fails, "the tour asked for it".to_string())
        .stderr(processing::process::Stdio::Null);
    p.start()?;
    match p.join() {
        Err(ProcessError::Panicked { message, location }) => {
            println!(
                "the child panicked: {message} (at {}), exit code {:?}",
                location.unwrap_or_default(),
                p.exitcode()
            )
        }
        other => println!("unexpected: {other:?}"),
    }

    // Fork a capturing closure (Unix).
    if StartMethod::available().contains(&StartMethod::Fork) {
        let greeting = format!("hello from a fork of {}", std::process::id());
        let mut p = Process::fork(move || format!("{greeting}, running as {}", std::process::id()));
        p.start()?;
        println!("{}", p.join()?);
    }

    // Every start method of this platform runs the same target.
    for &method in StartMethod::available() {
        let ctx = processing::get_context(method)?;
        let t = std::time::Instant::now();
        let mut p = ctx.spawn(square, 7)?;
        let value = p.join()?;
        println!("{method:>10}: square(7) = {value} in {:?}", t.elapsed());
    }
    println!("default start method: {}", processing::get_start_method());
    Ok(())
}
