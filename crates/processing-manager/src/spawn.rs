//! Starting the server in a daemonic child process.
//!
//! The child is started with `Process::new(server_main::<L>, args)`: the function is
//! monomorphised over the builder's list of custom types, so the server registers the same
//! types without any code travelling. The parent chooses the address (a socket path in a fresh
//! private directory, or a loopback port on Windows) and connects, retrying while the child
//! binds; the authkey travels in the spawn arguments over the bootstrap channel.

use processing_process::{Process, Stdio};

use crate::custom::{table_of, TypeList};
use crate::manager::ServerArgs;
use crate::server::{Server, ServerConfig};
use crate::sys;

/// A running server process.
pub(crate) type ServerProcess = Process<()>;

/// The body of the server process: bind, serve until the owner leaves or asks to stop.
pub(crate) fn server_main<L: TypeList>(args: ServerArgs) {
    let config = ServerConfig {
        authkey: args.authkey,
        owner_token: Some(args.owner_token),
        types: table_of::<L>(),
    };
    match Server::bind(&args.address, config) {
        Ok((server, listener)) => {
            sys::remove_address_on_termination(server.address());
            server.run(listener);
            sys::remove_local_address(server.address());
        }
        Err(e) => tracing::error!("manager server cannot start: {e}"),
    }
}

/// Starts the server process.
pub(crate) fn start<L: TypeList>(
    args: ServerArgs,
) -> Result<ServerProcess, processing_process::ProcessError> {
    let mut p = Process::new(server_main::<L>, args)
        .name("ManagerServer")
        .daemon(true)
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);
    p.start()?;
    Ok(p)
}
