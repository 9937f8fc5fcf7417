//! A queue spanning hosts, on one Redis stream with one consumer group.
//!
//! Delivery is **at-least-once with acknowledgement**: a consumer fetches up to `prefetch`
//! items at a time; they stay pending in Redis until the consumer asks for the item after
//! its last fetched one (or drops the handle), which acknowledges and deletes them. Items a
//! consumer fetched and had not acknowledged when it died are taken over by another consumer
//! once they sat idle for the visibility timeout, ahead of new items. So no item is lost, and
//! an item is delivered twice only when its consumer died holding it: at most `prefetch`
//! duplicates per consumer death. Every item is signed with the cluster key; items that fail
//! the check are dropped and counted ([`Queue::refused`]).

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::wire::{self, ClusterKey};
use crate::ClusterError;

const GROUP: &str = "consumers";

/// Why a queue call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// Nothing arrived in time (`get_timeout`, `try_get`).
    #[error("the queue is empty")]
    Empty,
    /// Redis failed.
    #[error("Redis failed")]
    Redis(#[source] redis::RedisError),
    /// An item could not be encoded or decoded.
    #[error("codec error")]
    Codec(#[source] processing_core::CodecError),
}

/// A queue of `T` shared by every host that opens the same name on the same Redis server.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let q = processing::cluster::Queue::<u64>::open("redis://127.0.0.1:6379/0", "jobs")?;
/// q.put(&7)?;
/// assert_eq!(q.get()?, 7);
/// # Ok(()) }
/// ```
pub struct Queue<T> {
    con: std::sync::Mutex<State>,
    key: ClusterKey,
    stream: String,
    consumer: String,
    visibility: Duration,
    prefetch: usize,
    _t: PhantomData<fn(T) -> T>,
}

struct State {
    con: redis::Connection,
    buffered: VecDeque<(String, Vec<u8>)>,
    /// Delivered items not acknowledged yet.
    unacked: Vec<String>,
    refused: u64,
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// Adds to `p` the acknowledgement and removal of the delivered entries `ids` of `stream`.
fn ack_and_delete(p: &mut redis::Pipeline, stream: &str, ids: &[String]) {
    p.cmd("XACK").arg(stream).arg(GROUP).arg(ids).ignore();
    p.cmd("XDEL").arg(stream).arg(ids).ignore();
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Opens (creating if needed) the queue `name` on the Redis server at `url`, with the
    /// cluster key from `PROCESSING_CLUSTER_KEY` (else this program's authkey).
    pub fn open(url: &str, name: &str) -> Result<Queue<T>, ClusterError> {
        Queue::open_with(url, name, None, Duration::from_secs(5), 16)
    }

    /// [`open`](Queue::open) with a key, a visibility timeout and a prefetch count.
    pub fn open_with(
        url: &str,
        name: &str,
        key: Option<Vec<u8>>,
        visibility: Duration,
        prefetch: usize,
    ) -> Result<Queue<T>, ClusterError> {
        let client = wire::client(url)?;
        let redis_err = |source| ClusterError::Redis {
            url: wire::redact(url),
            source,
        };
        let mut con = wire::connect(&client, Duration::from_secs(10)).map_err(redis_err)?;
        let stream = format!("processing:queue:{name}");
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut con);
        if let Err(e) = created {
            if e.code() != Some("BUSYGROUP") {
                return Err(redis_err(e));
            }
        }
        Ok(Queue {
            con: std::sync::Mutex::new(State {
                con,
                buffered: VecDeque::new(),
                unacked: Vec::new(),
                refused: 0,
            }),
            key: ClusterKey::resolve(key.as_deref()),
            stream,
            consumer: format!("{}-{}", processing_core::os::pid(), wire::random_id()),
            visibility,
            prefetch: prefetch.max(1),
            _t: PhantomData,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.con.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an item.
    pub fn put(&self, item: &T) -> Result<(), QueueError> {
        let data = processing_core::codec::encode(item).map_err(QueueError::Codec)?;
        let mac = self.key.sign(&data);
        let mut s = self.state();
        redis::cmd("XADD")
            .arg(&self.stream)
            .arg("*")
            .arg("d")
            .arg(data)
            .arg("m")
            .arg(mac)
            .query::<()>(&mut s.con)
            .map_err(QueueError::Redis)
    }

    /// The next item, waiting for ever.
    pub fn get(&self) -> Result<T, QueueError> {
        self.get_timeout(Duration::MAX)
    }

    /// The next item if one is there now.
    pub fn try_get(&self) -> Result<T, QueueError> {
        self.get_timeout(Duration::ZERO)
    }

    /// The next item, waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, QueueError> {
        let until = Instant::now().checked_add(timeout);
        let mut s = self.state();
        loop {
            if let Some((id, data)) = s.buffered.pop_front() {
                s.unacked.push(id);
                return processing_core::codec::decode(&data).map_err(QueueError::Codec);
            }
            self.ack(&mut s)?;
            self.fetch(&mut s, until)?;
            if s.buffered.is_empty() && until.is_some_and(|u| Instant::now() >= u) {
                return Err(QueueError::Empty);
            }
        }
    }

    /// Items dropped by this handle because their signature did not verify.
    pub fn refused(&self) -> u64 {
        self.state().refused
    }

    fn ack(&self, s: &mut State) -> Result<(), QueueError> {
        if s.unacked.is_empty() {
            return Ok(());
        }
        let mut p = redis::pipe();
        ack_and_delete(&mut p, &self.stream, &s.unacked);
        p.query::<()>(&mut s.con).map_err(QueueError::Redis)?;
        s.unacked.clear();
        Ok(())
    }

    fn take(&self, s: &mut State, entries: &[&redis::Value]) {
        for e in entries {
            let Some((id, d, m)) = wire::stream_entry(e) else {
                continue;
            };
            match (d, m) {
                (Some(d), Some(m)) if self.key.verify(d, m) => {
                    s.buffered.push_back((id, d.to_vec()));
                }
                _ => {
                    s.refused += 1;
                    s.unacked.push(id);
                }
            }
        }
    }

    fn fetch(&self, s: &mut State, until: Option<Instant>) -> Result<(), QueueError> {
        // Items of dead consumers first.
        let claimed: redis::Value = redis::cmd("XAUTOCLAIM")
            .arg(&self.stream)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(self.visibility.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(self.prefetch)
            .query(&mut s.con)
            .map_err(QueueError::Redis)?;
        if let redis::Value::Array(parts) = &claimed {
            if let Some(redis::Value::Array(entries)) = parts.get(1) {
                let list: Vec<&redis::Value> = entries.iter().collect();
                self.take(s, &list);
            }
        }
        if !s.buffered.is_empty() {
            return Ok(());
        }
        // Block in slices so that items of a consumer that died are reclaimed meanwhile.
        let slice = self.visibility.min(Duration::from_millis(500));
        let block = match until {
            None => slice,
            Some(u) => u.saturating_duration_since(Instant::now()).min(slice),
        };
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(self.prefetch);
        if !block.is_zero() {
            cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(">");
        let reply: redis::Value = cmd.query(&mut s.con).map_err(QueueError::Redis)?;
        for (_, entries) in wire::read_reply(&reply) {
            self.take(s, &entries);
        }
        Ok(())
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        let s = self.con.get_mut().unwrap_or_else(|e| e.into_inner());
        // Acknowledge what was delivered; what was fetched and not delivered stays pending
        // and goes to another consumer after the visibility timeout.
        let mut p = redis::pipe();
        if !s.unacked.is_empty() {
            ack_and_delete(&mut p, &self.stream, &s.unacked);
        }
        let _: redis::RedisResult<()> = p.query(&mut s.con);
    }
}
