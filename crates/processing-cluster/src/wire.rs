//! What travels through Redis: key names, signed task and result batches, connections.
//!
//! Every stream entry has two fields: `d`, a postcard-encoded batch, and `m`, its
//! HMAC-SHA256 under the cluster key. A batch whose MAC does not verify is never decoded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ClusterError;

/// The consumer group of every task stream.
pub(crate) const GROUP: &str = "workers";
/// Time to live of a pool's keys; its driver renews them while it lives.
pub(crate) const KEY_TTL_S: u64 = 60;

/// The key every batch is signed with.
#[derive(Clone)]
pub(crate) struct ClusterKey(Arc<[u8]>);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    /// The key given, else `PROCESSING_CLUSTER_KEY`, else this program's authkey.
    pub(crate) fn resolve(given: Option<&[u8]>) -> ClusterKey {
        if let Some(k) = given {
            return ClusterKey(k.into());
        }
        if let Some(k) = std::env::var_os(crate::KEY_ENV).filter(|k| !k.is_empty()) {
            return ClusterKey(k.to_string_lossy().as_bytes().into());
        }
        ClusterKey(processing_core::authkey::get())
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    pub(crate) fn sign(&self, data: &[u8]) -> Vec<u8> {
        let mut m = self.mac();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    /// Constant-time check of `mac` over `data`.
    pub(crate) fn verify(&self, data: &[u8], mac: &[u8]) -> bool {
        let mut m = self.mac();
        m.update(data);
        m.verify_slice(mac).is_ok()
    }
}

/// One task as it travels: the pool's task id, the entry's offset from the pool's anchor, and
/// the encoded chunk of arguments.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireTask {
    pub(crate) id: u64,
    pub(crate) entry: i64,
    pub(crate) input: Vec<u8>,
}

/// The tasks of one stream entry.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskBatch {
    pub(crate) pool: String,
    pub(crate) build: u64,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) tasks: Vec<WireTask>,
}

/// One finished task.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireResult {
    pub(crate) id: u64,
    pub(crate) status: u8,
    pub(crate) payload: Vec<u8>,
}

/// The results of one results-stream entry.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ResultBatch {
    pub(crate) pool: String,
    pub(crate) results: Vec<WireResult>,
}

pub(crate) fn pools_key(build: u64) -> String {
    format!("processing:{build:016x}:pools")
}
pub(crate) fn alive_key(build: u64) -> String {
    format!("processing:{build:016x}:alive")
}
pub(crate) fn refused_key(build: u64) -> String {
    format!("processing:{build:016x}:refused")
}
pub(crate) fn tasks_key(pool: &str) -> String {
    format!("processing:pool:{pool}:tasks")
}
pub(crate) fn results_key(pool: &str) -> String {
    format!("processing:pool:{pool}:results")
}
pub(crate) fn done_key(pool: &str) -> String {
    format!("processing:pool:{pool}:done")
}
pub(crate) fn meta_key(pool: &str) -> String {
    format!("processing:pool:{pool}:meta")
}

/// Publishes a signed result batch only while the pool exists (so that a late worker never
/// re-creates the keys of a pool that was deleted), marks its task ids done, and acknowledges
/// and deletes the finished entries, all at once: an entry leaves the task stream exactly when
/// its last results appear. KEYS: meta, results, done, tasks. ARGV: data (empty: no batch),
/// mac, ttl, the number of result ids, the number of entries, then the ids, then the entries.
pub(crate) const PUBLISH_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local nres = tonumber(ARGV[4])
local nack = tonumber(ARGV[5])
if ARGV[1] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'd', ARGV[1], 'm', ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
local i = 6
for j = 1, nres do
  redis.call('SADD', KEYS[3], ARGV[i])
  i = i + 1
end
if nres > 0 then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
for j = 1, nack do
  redis.call('XACK', KEYS[4], 'workers', ARGV[i])
  redis.call('XDEL', KEYS[4], ARGV[i])
  i = i + 1
end
return 1
";

/// A fresh random id (hex).
pub(crate) fn random_id() -> String {
    processing_core::authkey::random_bytes(12)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Installs the TLS crypto provider once (for `rediss://` URLs).
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client for `url` (`redis://[user:pass@]host:port/db` or `rediss://…` for TLS).
pub(crate) fn client(url: &str) -> Result<redis::Client, ClusterError> {
    install_tls_provider();
    redis::Client::open(url).map_err(|source| ClusterError::Url {
        url: redact(url),
        source,
    })
}

/// `url` without its password.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Connects, retrying with backoff (50 ms doubling to 1 s) until `budget` runs out.
pub(crate) fn connect(
    client: &redis::Client,
    budget: Duration,
) -> Result<redis::Connection, redis::RedisError> {
    let until = Instant::now().checked_add(budget);
    let mut backoff = Duration::from_millis(50);
    loop {
        match client.get_connection_with_timeout(Duration::from_secs(2)) {
            Ok(c) => return Ok(c),
            Err(e) => {
                let now = Instant::now();
                if until.is_some_and(|u| now + backoff > u) {
                    return Err(e);
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// The bytes of a bulk string value.
pub(crate) fn bytes(v: &redis::Value) -> Option<&[u8]> {
    match v {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

pub(crate) fn text(v: &redis::Value) -> Option<String> {
    bytes(v).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// A stream entry: its id and its `d` and `m` fields.
pub(crate) type Entry<'a> = (String, Option<&'a [u8]>, Option<&'a [u8]>);

/// A stream entry `[id, [field, value, …]]` as `(id, d, m)`.
pub(crate) fn stream_entry(v: &redis::Value) -> Option<Entry<'_>> {
    let redis::Value::Array(parts) = v else {
        return None;
    };
    let id = text(parts.first()?)?;
    let mut d = None;
    let mut m = None;
    if let Some(redis::Value::Array(fields)) = parts.get(1) {
        for pair in fields.chunks(2) {
            if let [k, v] = pair {
                match bytes(k) {
                    Some(b"d") => d = bytes(v),
                    Some(b"m") => m = bytes(v),
                    _ => {}
                }
            }
        }
    }
    Some((id, d, m))
}

/// The entries of an `XREAD`/`XREADGROUP` reply, per stream key.
pub(crate) fn read_reply(v: &redis::Value) -> Vec<(String, Vec<&redis::Value>)> {
    let mut out = Vec::new();
    let pairs: Vec<(&redis::Value, &redis::Value)> = match v {
        redis::Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                redis::Value::Array(kv) if kv.len() == 2 => Some((&kv[0], &kv[1])),
                _ => None,
            })
            .collect(),
        redis::Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        _ => Vec::new(),
    };
    for (k, entries) in pairs {
        let Some(key) = text(k) else { continue };
        let list = match entries {
            redis::Value::Array(e) => e.iter().collect(),
            _ => Vec::new(),
        };
        out.push((key, list));
    }
    out
}
