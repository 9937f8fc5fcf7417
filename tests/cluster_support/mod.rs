//! Shared by the cluster tests: a private `redis-server` per test, worker hosts as separate
//! process trees (this very test binary, turned into a worker host by its pre-main hook), and
//! a minimal RESP client for looking at the server's keys.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The cluster key every test host and driver shares.
pub const KEY: &str = "cluster-test-key";

/// A `redis-server` of this test alone: 127.0.0.1, a free port, no persistence, a temp dir.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

impl Redis {
    /// Starts one, or returns `None` (after saying so loudly) when `redis-server` is missing.
    pub fn start() -> Option<Redis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = std::env::temp_dir().join(format!(
            "processing-cluster-test-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut r = Redis {
            child: None,
            port,
            dir,
        };
        if !r.spawn() {
            eprintln!("cluster: SKIPPED (redis-server not found)");
            return None;
        }
        Some(r)
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &self.dir.to_string_lossy(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut c) = Resp::connect(self.port) {
                if c.cmd(&["PING"]).is_ok() {
                    return true;
                }
            }
            assert!(Instant::now() < until, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// SIGKILLs the server.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "redis-server restart");
    }

    pub fn client(&self) -> Resp {
        Resp::connect(self.port).expect("connect to the test redis-server")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Int(i64),
    Str(String),
    Array(Vec<Value>),
    Error(String),
}

impl Value {
    pub fn int(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            Value::Str(s) => s.parse().unwrap_or(0),
            _ => 0,
        }
    }
    pub fn strings(&self) -> Vec<String> {
        match self {
            Value::Array(a) => a
                .iter()
                .filter_map(|v| match v {
                    Value::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A minimal RESP2 client.
pub struct Resp {
    r: BufReader<TcpStream>,
}

impl Resp {
    pub fn connect(port: u16) -> std::io::Result<Resp> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Resp {
            r: BufReader::new(s),
        })
    }

    pub fn cmd(&mut self, args: &[&str]) -> std::io::Result<Value> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.r.get_mut().write_all(&out)?;
        self.read()
    }

    fn read(&mut self) -> std::io::Result<Value> {
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        let line = line.trim_end();
        let (kind, rest) = line.split_at(1.min(line.len()));
        Ok(match kind {
            "+" => Value::Str(rest.to_string()),
            "-" => Value::Error(rest.to_string()),
            ":" => Value::Int(rest.parse().unwrap_or(0)),
            "$" => {
                let n: i64 = rest.parse().unwrap_or(-1);
                if n < 0 {
                    Value::Nil
                } else {
                    let mut buf = vec![0u8; n as usize + 2];
                    std::io::Read::read_exact(&mut self.r, &mut buf)?;
                    buf.truncate(n as usize);
                    Value::Str(String::from_utf8_lossy(&buf).into_owned())
                }
            }
            "*" => {
                let n: i64 = rest.parse().unwrap_or(-1);
                if n < 0 {
                    Value::Nil
                } else {
                    let mut v = Vec::new();
                    for _ in 0..n {
                        v.push(self.read()?);
                    }
                    Value::Array(v)
                }
            }
            _ => return Err(std::io::Error::other(format!("bad reply {line:?}"))),
        })
    }

    /// Every key matching `pattern`.
    pub fn keys(&mut self, pattern: &str) -> Vec<String> {
        self.cmd(&["KEYS", pattern])
            .map(|v| v.strings())
            .unwrap_or_default()
    }
}

/// A worker host: this test binary started with `PROCESSING_CLUSTER_WORKER`, in its own
/// process group.
pub struct Host {
    child: Option<Child>,
}

impl Host {
    pub fn start(url: &str, processes: usize) -> Host {
        Host::start_exe(
            &std::env::current_exe().expect("current exe"),
            url,
            processes,
        )
    }

    pub fn start_exe(exe: &std::path::Path, url: &str, processes: usize) -> Host {
        let mut cmd = Command::new(exe);
        cmd.env("PROCESSING_CLUSTER_WORKER", url)
            .env("PROCESSING_CLUSTER_PROCESSES", processes.to_string())
            .env("PROCESSING_CLUSTER_KEY", KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        Host {
            child: Some(cmd.spawn().expect("start a worker host")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILLs the host process only (its local workers notice and exit).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three worker hosts of `processes` workers each.
pub fn hosts(url: &str, processes: usize) -> Vec<Host> {
    (0..3).map(|_| Host::start(url, processes)).collect()
}

/// Waits until `cond` holds, failing after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
