//! Connects to `remote_manager_server`, puts jobs on a named queue, takes them back, and asks
//! the server to stop.

use std::time::Duration;

use processing::manager::ManagerBuilder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:50000".into());
    let key = args.next().unwrap_or_else(|| "secret".into());
    let manager = ManagerBuilder::new()
        .authkey(key.into_bytes())
        .connect_timeout(address.as_str(), Duration::from_secs(10))?;
    let jobs = manager.named("jobs").queue::<String>()?;
    for i in 0..3 {
        jobs.put(format!("job {i}"))?;
    }
    loop {
        match jobs.try_get() {
            Ok(job) => println!("{job}"),
            Err(e) if e.is_empty() => break,
            Err(e) => return Err(e.into()),
        }
    }
    manager.shutdown()?;
    Ok(())
}
