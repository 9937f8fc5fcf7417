//! Echoes Python objects back to a Python `multiprocessing.connection.Client` (feature `pickle`).
//!
//! ```text
//! cargo run --features pickle --example python_echo -- 127.0.0.1:6000 secret
//! ```
//!
//! ```python
//! from multiprocessing.connection import Client
//! with Client(("127.0.0.1", 6000), authkey=b"secret") as conn:
//!     conn.send({"a": [1, 2.5, "x", None, b"y", (True,)]})
//!     print(conn.recv())  # {'a': [1, 2.5, 'x', None, b'y', (True,)]}
//!     conn.send("bye")
//! ```
//!
//! It prints `listening on ADDRESS` once bound (port 0 picks a free port), answers every
//! object with the same object (a tuple stays a tuple, bytes stay bytes, sets stay sets), and
//! exits after it received the string `"bye"` (which it echoes too). A pickle that would import
//! or call anything is refused without running it; the client then gets
//! `{"refused": "<why>"}`. When a client disconnects before `"bye"`, the next one is accepted.

use std::io::Write;

use processing::pickle::PickleValue;
use processing::{Address, ConnectionError, Listener};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:6000".into());
    let key = args.next().unwrap_or_else(|| "secret".into());
    serve(&address, key.as_bytes(), |bound| {
        println!("listening on {bound}");
        std::io::stdout().flush()
    })
}

/// Binds, reports the bound address, and echoes until a client sends `"bye"`.
pub(crate) fn serve(
    address: &str,
    key: &[u8],
    bound: impl FnOnce(&Address) -> std::io::Result<()>,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = Listener::bind(address, Some(key))?;
    bound(listener.address())?;
    loop {
        let conn = match listener.accept::<()>() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("python_echo: a client failed to connect: {e}");
                continue;
            }
        };
        loop {
            match conn.recv_pickle::<PickleValue>() {
                Ok(value) => {
                    conn.send_pickle(&value)?;
                    if value == PickleValue::Str("bye".into()) {
                        return Ok(());
                    }
                }
                Err(ConnectionError::Pickle(e)) => {
                    eprintln!("python_echo: {e}");
                    let why = PickleValue::Str(e.to_string());
                    let answer = PickleValue::Dict(vec![(PickleValue::Str("refused".into()), why)]);
                    conn.send_pickle(&answer)?;
                }
                Err(e) if e.is_eof() => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
}
