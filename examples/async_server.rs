//! A tokio TCP server on loopback that answers each request by running a function in a pool
//! of 2 worker processes, and a client that sends it 1 000 concurrent requests; the parent's
//! thread count (from /proc/self/status on Linux) is printed while they are all in flight.
//!
//! ```text
//! cargo run --example async_server --features async
//! ```
//! Protocol: a request is a u64 (8 bytes, little endian); the answer is `work(n)` as a u64.

use std::sync::Arc;
use std::time::Instant;

use processing::Pool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REQUESTS: u64 = 1_000;

/// The CPU-side work, run in a worker process.
fn work(n: u64) -> u64 {
    (0..=n % 1000).map(|i| i * i).sum::<u64>() ^ n
}

/// The parent's thread count (Linux), or `None`.
fn threads() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

async fn serve(pool: Arc<Pool>, mut sock: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 8];
    while sock.read_exact(&mut buf).await.is_ok() {
        let n = u64::from_le_bytes(buf);
        let answer = pool
            .apply_async(work, n)
            .map_err(std::io::Error::other)?
            .await
            .map_err(std::io::Error::other)?;
        sock.write_all(&answer.to_le_bytes()).await?;
    }
    Ok(())
}

async fn request(addr: std::net::SocketAddr, n: u64) -> std::io::Result<u64> {
    let mut sock = TcpStream::connect(addr).await?;
    sock.write_all(&n.to_le_bytes()).await?;
    let mut buf = [0u8; 8];
    sock.read_exact(&mut buf).await?;
    Ok(u64::from_le_bytes(buf))
}

/// 1 000 concurrent requests hold 2 000 sockets (both ends live here): raise the soft limit
/// of open files towards the hard one where the default (often 1 024) is lower.
/// Returns how many requests may be in flight at once (each holds two sockets here).
#[cfg(unix)]
fn raise_open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill; RLIMIT_NOFILE is a valid resource.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return REQUESTS;
    }
    if lim.rlim_cur < 4096 {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max.min(4096),
            rlim_max: lim.rlim_max,
        };
        // SAFETY: a valid rlimit; raising the soft limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            lim = want;
        }
    }
    REQUESTS.min(lim.rlim_cur.saturating_sub(100) / 2)
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> u64 {
    REQUESTS
}

#[processing::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests = raise_open_file_limit();
    if requests < REQUESTS {
        println!("open-file limit too low for {REQUESTS} concurrent requests: sending {requests}");
    }
    let pool = Arc::new(Pool::new(2)?);
    // One executor thread: every wait is a future, none blocks a thread.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server_pool = pool.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(server_pool.clone(), sock));
            }
        });
        let start = Instant::now();
        let clients: Vec<_> = (0..requests)
            .map(|n| tokio::spawn(request(addr, n)))
            .collect();
        let mut during = None;
        let mut ok = 0;
        for (n, c) in clients.into_iter().enumerate() {
            let got = c.await??;
            assert_eq!(got, work(n as u64), "wrong answer for {n}");
            if n == 0 {
                // The first answer is back: the other requests are in flight. Count now.
                during = threads();
            }
            ok += 1;
        }
        println!(
            "served {ok} concurrent requests with a pool of {} in {:.1} ms",
            pool.processes(),
            start.elapsed().as_secs_f64() * 1e3
        );
        match (during, threads()) {
            (Some(d), Some(a)) => {
                println!("parent threads: {d} while requests were in flight, {a} after")
            }
            _ => println!("parent threads: not measured on this platform"),
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
