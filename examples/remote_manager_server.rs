//! Serves a manager on TCP for other processes and hosts (pair: `remote_manager_client`).
//!
//! ```text
//! cargo run --example remote_manager_server -- 0.0.0.0:50000 secret
//! cargo run --example remote_manager_client -- 127.0.0.1:50000 secret
//! ```
//!
//! The server stops when a client calls `shutdown` on its connected manager.

use processing::manager::Manager;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:50000".into());
    let key = args.next().unwrap_or_else(|| "secret".into());
    Manager::builder()
        .authkey(key.into_bytes())
        .serve_with(address.as_str(), |bound| {
            eprintln!("manager serving on {bound}");
        })?;
    eprintln!("manager stopped");
    Ok(())
}
