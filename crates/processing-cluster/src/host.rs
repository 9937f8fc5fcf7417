//! A worker host: N local worker processes (the local pool's process backend) fed from the
//! task streams of every pool of this build.
//!
//! Threads: the fetcher (this thread) discovers pools, reclaims entries idle past their
//! pool's visibility timeout (first), then reads new ones, as many as runners are free; one
//! runner per local worker process runs an entry's tasks in order; the publisher sends
//! results (signed, through a script that writes only while the pool exists) and then
//! acknowledges and deletes finished entries; the heartbeat marks the host alive, renews the
//! claims of running entries, and cancels the entries of pools that are gone.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use processing_pool::backend::{
    self as pb, entry_from_offset, LinkError, Reply, Status, TaskRef, WorkerControl, WorkerInit,
    WorkerLink,
};
use processing_pool::PoolError;

use crate::wire::{self, ClusterKey, TaskBatch, WireResult, GROUP, KEY_TTL_S};

/// A [`wire::ResultBatch`] encoded from borrowed results (the same postcard layout).
#[derive(serde::Serialize)]
struct ResultBatchRef<'a> {
    pool: &'a str,
    results: &'a [&'a WireResult],
}
use crate::{ClusterError, ServeOptions};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a pool asks of its hosts.
#[derive(Debug, Clone, Copy)]
struct PoolInfo {
    visibility: Duration,
    max_deliveries: u32,
}

/// One entry to run.
struct Job {
    pool: String,
    entry: String,
    batch: TaskBatch,
    deliveries: u32,
    max_deliveries: u32,
    cancelled: Arc<AtomicBool>,
}

enum Out {
    Result {
        pool: String,
        result: WireResult,
    },
    /// The entry is finished; its last result travels with the acknowledgement, so that the
    /// entry leaves the stream in the same step as its last result appears.
    Ack {
        pool: String,
        entry: String,
        last: Option<WireResult>,
    },
}

struct Running {
    pool: String,
    entry: String,
    cancelled: Arc<AtomicBool>,
    control: Arc<dyn WorkerControl>,
}

struct Host {
    client: redis::Client,
    key: ClusterKey,
    build: u64,
    consumer: String,
    processes: usize,
    queue: Mutex<VecDeque<Job>>,
    work: Condvar,
    busy: Mutex<usize>,
    freed: Condvar,
    running: Mutex<HashMap<usize, Running>>,
    refused: AtomicU64,
}

/// Runs a worker host until the process is killed; returns only when it cannot start.
pub(crate) fn serve(url: &str, options: ServeOptions) -> Result<(), ClusterError> {
    let client = wire::client(url)?;
    let mut con =
        wire::connect(&client, Duration::from_secs(10)).map_err(|source| ClusterError::Redis {
            url: wire::redact(url),
            source,
        })?;
    pb::install_panic_hook();
    let processes = options
        .processes
        .unwrap_or_else(processing_pool::cpu_count)
        .max(1);
    let host = Arc::new(Host {
        client,
        key: ClusterKey::resolve(options.key.as_deref()),
        build: processing_process::build_identity(),
        consumer: format!("{}-{}", processing_core::os::pid(), wire::random_id()),
        processes,
        queue: Mutex::new(VecDeque::new()),
        work: Condvar::new(),
        busy: Mutex::new(0),
        freed: Condvar::new(),
        running: Mutex::new(HashMap::new()),
        refused: AtomicU64::new(0),
    });
    let (out_tx, out_rx) = mpsc::channel::<Out>();
    // Local workers first: a host is ready when it can run a task.
    let mut links = Vec::with_capacity(processes);
    for _ in 0..processes {
        links.push(start_local(&options)?);
    }
    for (slot, link) in links.into_iter().enumerate() {
        let h = host.clone();
        let tx = out_tx.clone();
        let opts = options.clone();
        std::thread::Builder::new()
            .name(format!("processing-cluster-runner-{slot}"))
            .spawn(move || runner(h, slot, link, tx, opts))
            .map_err(ClusterError::Thread)?;
    }
    drop(out_tx);
    let h = host.clone();
    std::thread::Builder::new()
        .name("processing-cluster-publisher".into())
        .spawn(move || publisher(h, out_rx))
        .map_err(ClusterError::Thread)?;
    let h = host.clone();
    let beat = options.heartbeat;
    std::thread::Builder::new()
        .name("processing-cluster-heartbeat".into())
        .spawn(move || heartbeat(h, beat))
        .map_err(ClusterError::Thread)?;
    mark_alive(&host, &mut con, beat);
    fetcher(&host, con);
    Ok(())
}

fn start_local(options: &ServeOptions) -> Result<Box<dyn WorkerLink>, ClusterError> {
    let backend = pb::processes(options.start_method);
    let mut link = backend
        .start(&WorkerInit::default())
        .map_err(ClusterError::Worker)?;
    match link.recv(None) {
        Ok(Reply::Ready) => Ok(link),
        _ => Err(ClusterError::Worker(PoolError::Spawn(
            "a local worker died before its first task".into(),
        ))),
    }
}

fn mark_alive(host: &Host, con: &mut redis::Connection, beat: Duration) {
    let ttl = (beat * 12).max(Duration::from_secs(3));
    let _: redis::RedisResult<()> = redis::cmd("SET")
        .arg(wire::alive_key(host.build))
        .arg(&host.consumer)
        .arg("PX")
        .arg(ttl.as_millis() as u64)
        .query(con);
}

/// Discovers pools, reclaims and reads entries while runners are free.
fn fetcher(host: &Host, mut con: redis::Connection) {
    let mut pools: HashMap<String, PoolInfo> = HashMap::new();
    let mut last_discovery: Option<Instant> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        // Wait for a free runner (nothing queued that a free runner will take).
        let free = {
            let mut busy = lock(&host.busy);
            while *busy >= host.processes {
                busy = host.freed.wait(busy).unwrap_or_else(|e| e.into_inner());
            }
            host.processes - *busy
        };
        let step = (|| -> redis::RedisResult<usize> {
            if last_discovery.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                last_discovery = Some(Instant::now());
                discover(host, &mut con, &mut pools)?;
            }
            if pools.is_empty() {
                // Nothing to read: wait for a pool on the server's clock, not ours.
                let _: redis::Value = redis::cmd("XREAD")
                    .arg("BLOCK")
                    .arg(100)
                    .arg("STREAMS")
                    .arg(wire::alive_key(host.build) + ":none")
                    .arg("$")
                    .query(&mut con)?;
                return Ok(0);
            }
            let mut fetch = Fetch {
                host,
                con: &mut con,
                pools: &pools,
            };
            let mut taken = fetch.reclaim(free)?;
            if taken < free {
                taken += fetch.read_new(free - taken)?;
            }
            Ok(taken)
        })();
        match step {
            Ok(_) => backoff = Duration::from_millis(50),
            Err(e) => {
                if e.code() == Some("NOGROUP") {
                    // A pool was deleted between discovery and the read.
                    last_discovery = None;
                    pools.clear();
                    continue;
                }
                tracing::warn!("cluster worker host: Redis error ({e}); reconnecting");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                if let Ok(c) = wire::connect(&host.client, Duration::from_secs(1)) {
                    con = c;
                    pools.clear();
                    last_discovery = None;
                }
            }
        }
    }
}

/// Refreshes the pools of this build (and drops members whose pool is gone).
fn discover(
    host: &Host,
    con: &mut redis::Connection,
    pools: &mut HashMap<String, PoolInfo>,
) -> redis::RedisResult<()> {
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(wire::pools_key(host.build))
        .query(con)?;
    let members: HashSet<String> = members.into_iter().collect();
    pools.retain(|p, _| members.contains(p));
    for p in members {
        if pools.contains_key(&p) {
            continue;
        }
        let (vis, max): (Option<u64>, Option<u32>) = redis::cmd("HMGET")
            .arg(wire::meta_key(&p))
            .arg("visibility_ms")
            .arg("max_deliveries")
            .query(con)?;
        match (vis, max) {
            (Some(v), Some(m)) => {
                pools.insert(
                    p,
                    PoolInfo {
                        visibility: Duration::from_millis(v),
                        max_deliveries: m,
                    },
                );
            }
            _ => {
                let _: () = redis::cmd("SREM")
                    .arg(wire::pools_key(host.build))
                    .arg(&p)
                    .query(con)?;
            }
        }
    }
    Ok(())
}

/// One round of the fetcher: the host, its connection and the pools it knows, for taking up
/// to as many entries of each pool as runners are free (more than the free runners in all
/// when several pools have work: the extra ones wait in the host's queue, their claims
/// renewed by the heartbeat as the running ones are).
struct Fetch<'a> {
    host: &'a Host,
    con: &'a mut redis::Connection,
    pools: &'a HashMap<String, PoolInfo>,
}

impl Fetch<'_> {
    /// Takes over entries whose holder went silent, ahead of new ones.
    fn reclaim(&mut self, free: usize) -> redis::RedisResult<usize> {
        let (host, pools) = (self.host, self.pools);
        let mut p = redis::pipe();
        let names: Vec<&String> = pools.keys().collect();
        for name in &names {
            p.cmd("XAUTOCLAIM")
                .arg(wire::tasks_key(name))
                .arg(GROUP)
                .arg(&host.consumer)
                .arg(pools[*name].visibility.as_millis() as u64)
                .arg("0-0")
                .arg("COUNT")
                .arg(free);
        }
        let replies: Vec<redis::RedisResult<redis::Value>> =
            match p.query::<Vec<redis::Value>>(self.con) {
                Ok(v) => v.into_iter().map(Ok).collect(),
                Err(e) => return Err(e),
            };
        let mut taken = 0;
        for (name, reply) in names.iter().zip(replies) {
            let Ok(redis::Value::Array(parts)) = reply else {
                continue;
            };
            let Some(redis::Value::Array(entries)) = parts.get(1) else {
                continue;
            };
            for e in entries {
                let Some((id, d, m)) = wire::stream_entry(e) else {
                    continue;
                };
                // The delivery count after this claim.
                let pending: redis::Value = redis::cmd("XPENDING")
                    .arg(wire::tasks_key(name))
                    .arg(GROUP)
                    .arg(&id)
                    .arg(&id)
                    .arg(1)
                    .query(self.con)?;
                let deliveries = match &pending {
                    redis::Value::Array(rows) => match rows.first() {
                        Some(redis::Value::Array(row)) => match row.get(3) {
                            Some(redis::Value::Int(n)) => *n as u32,
                            _ => 2,
                        },
                        _ => 2,
                    },
                    _ => 2,
                };
                if self.accept(name, id, d, m, deliveries)? {
                    taken += 1;
                }
            }
        }
        Ok(taken)
    }

    /// Reads new entries of every pool.
    fn read_new(&mut self, free: usize) -> redis::RedisResult<usize> {
        let (host, pools) = (self.host, self.pools);
        let names: Vec<&String> = pools.keys().collect();
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&host.consumer)
            .arg("COUNT")
            .arg(free)
            .arg("BLOCK")
            .arg(100)
            .arg("STREAMS");
        for n in &names {
            cmd.arg(wire::tasks_key(n));
        }
        for _ in &names {
            cmd.arg(">");
        }
        let reply: redis::Value = cmd.query(self.con)?;
        let mut taken = 0;
        for (key, entries) in wire::read_reply(&reply) {
            let Some(name) = names
                .iter()
                .find(|n| wire::tasks_key(n) == key)
                .map(|n| (*n).clone())
            else {
                continue;
            };
            for e in entries {
                let Some((id, d, m)) = wire::stream_entry(e) else {
                    continue;
                };
                if self.accept(&name, id, d, m, 1)? {
                    taken += 1;
                }
            }
        }
        Ok(taken)
    }

    /// Verifies an entry of `pool` and queues it for a runner; refuses (acknowledges, deletes and
    /// counts) one that is not signed with the cluster key or not of this build.
    fn accept(
        &mut self,
        pool: &str,
        entry: String,
        d: Option<&[u8]>,
        m: Option<&[u8]>,
        deliveries: u32,
    ) -> redis::RedisResult<bool> {
        let (host, info) = (self.host, self.pools[pool]);
        let batch = match (d, m) {
            (Some(d), Some(m)) if host.key.verify(d, m) => {
                processing_core::codec::decode::<TaskBatch>(d).ok()
            }
            _ => None,
        };
        let batch = batch.filter(|b| b.build == host.build && b.pool == pool);
        let Some(batch) = batch else {
            let n = host.refused.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                pool,
                entry,
                refused = n,
                "refused a task entry that is not signed with the cluster key"
            );
            let key = wire::tasks_key(pool);
            let mut p = redis::pipe();
            p.cmd("XACK").arg(&key).arg(GROUP).arg(&entry).ignore();
            p.cmd("XDEL").arg(&key).arg(&entry).ignore();
            p.cmd("INCR").arg(wire::refused_key(host.build)).ignore();
            p.cmd("EXPIRE")
                .arg(wire::refused_key(host.build))
                .arg(KEY_TTL_S)
                .ignore();
            p.query::<()>(self.con)?;
            return Ok(false);
        };
        *lock(&host.busy) += 1;
        lock(&host.queue).push_back(Job {
            pool: pool.to_string(),
            entry,
            batch,
            deliveries,
            max_deliveries: info.max_deliveries,
            cancelled: Arc::new(AtomicBool::new(false)),
        });
        host.work.notify_one();
        Ok(true)
    }
}

fn encode_error(e: &PoolError) -> Vec<u8> {
    processing_core::codec::encode(e).unwrap_or_default()
}

/// One local worker process and the entries it runs.
fn runner(
    host: Arc<Host>,
    slot: usize,
    mut link: Box<dyn WorkerLink>,
    out: Sender<Out>,
    options: ServeOptions,
) {
    let mut con: Option<redis::Connection> = None;
    loop {
        let job = {
            let mut q = lock(&host.queue);
            loop {
                if let Some(j) = q.pop_front() {
                    break j;
                }
                q = host.work.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        lock(&host.running).insert(
            slot,
            Running {
                pool: job.pool.clone(),
                entry: job.entry.clone(),
                cancelled: job.cancelled.clone(),
                control: link.control(),
            },
        );
        let mut tasks: VecDeque<&wire::WireTask> = job.batch.tasks.iter().collect();
        if job.deliveries > 1 {
            // Re-delivered: skip what finished before (its result lives in Redis).
            let done = already_done(&host, &mut con, &job);
            tasks.retain(|t| !done.contains(&t.id));
        }
        let timeout = job.batch.timeout_ms.map(Duration::from_millis);
        // The first unfinished task of a re-delivered entry is the one its holder was running.
        let mut attempts = job.deliveries.saturating_sub(1);
        let mut last = PoolError::Cluster("its worker host went silent".into());
        // The last task's result, sent with the acknowledgement.
        let mut held: Option<WireResult> = None;
        while !tasks.is_empty() {
            if job.cancelled.load(Ordering::SeqCst) {
                break;
            }
            if attempts >= job.max_deliveries {
                let e = PoolError::DeliveriesExhausted {
                    attempts,
                    last: Box::new(last.clone()),
                };
                fail_front(&out, &job.pool, &mut held, &mut tasks, &e);
                attempts = 0;
                continue;
            }
            let refs: Vec<TaskRef<'_>> = tasks
                .iter()
                .map(|t| TaskRef {
                    id: t.id,
                    // SAFETY: the batch verified under the cluster key and names this very
                    // build: the offset was made by `entry_to_offset` in the same image.
                    entry: unsafe { entry_from_offset(t.entry) },
                    input: &t.input,
                })
                .collect();
            let failure = if link.send(&refs).is_err() {
                Some(LinkError::Lost)
            } else {
                let mut failure = None;
                for _ in 0..refs.len() {
                    let deadline = timeout.map(|t| Instant::now() + t);
                    match link.recv(deadline) {
                        Ok(Reply::Done {
                            id,
                            status,
                            payload,
                        }) if Some(id) == tasks.front().map(|t| t.id) => {
                            hold(
                                &out,
                                &job.pool,
                                &mut held,
                                tasks.len() == 1,
                                WireResult {
                                    id,
                                    status: status as u8,
                                    payload: payload.to_vec(),
                                },
                            );
                            tasks.pop_front();
                            attempts = 0;
                        }
                        Ok(_) => {
                            failure = Some(LinkError::Lost);
                            break;
                        }
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                failure
            };
            drop(refs);
            let Some(failure) = failure else { continue };
            // The local worker is gone or stuck: replace it.
            if failure == LinkError::Timeout {
                link.control().kill();
            }
            let exit = link.reap();
            link = loop {
                match start_local(&options) {
                    Ok(l) => break l,
                    Err(e) => {
                        tracing::warn!("cluster worker host: cannot start a worker: {e}");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            };
            if let Some(r) = lock(&host.running).get_mut(&slot) {
                r.control = link.control();
            }
            if job.cancelled.load(Ordering::SeqCst) {
                break;
            }
            if tasks.is_empty() {
                break;
            }
            if failure == LinkError::Timeout {
                let e = PoolError::TaskTimeout(timeout.unwrap_or_default());
                fail_front(&out, &job.pool, &mut held, &mut tasks, &e);
                attempts = 0;
            } else {
                attempts += 1;
                last = exit.lost_error();
            }
        }
        lock(&host.running).remove(&slot);
        if !job.cancelled.load(Ordering::SeqCst) {
            let _ = out.send(Out::Ack {
                pool: job.pool,
                entry: job.entry,
                last: held.take(),
            });
        }
        *lock(&host.busy) -= 1;
        host.freed.notify_one();
    }
}

/// Sends `result` to the publisher now, or, for the entry's last task, holds it for the
/// acknowledgement.
/// Fails the batch's front task with `e` (held back if it is the batch's last) and removes it.
fn fail_front(
    out: &Sender<Out>,
    pool: &str,
    held: &mut Option<WireResult>,
    tasks: &mut VecDeque<&wire::WireTask>,
    e: &PoolError,
) {
    if let Some(front) = tasks.pop_front() {
        let result = WireResult {
            id: front.id,
            status: Status::Error as u8,
            payload: encode_error(e),
        };
        hold(out, pool, held, tasks.is_empty(), result);
    }
}

fn hold(
    out: &Sender<Out>,
    pool: &str,
    held: &mut Option<WireResult>,
    last: bool,
    result: WireResult,
) {
    if last {
        *held = Some(result);
    } else {
        let _ = out.send(Out::Result {
            pool: pool.to_string(),
            result,
        });
    }
}

/// The task ids of `job` whose results are already stored.
fn already_done(host: &Host, con: &mut Option<redis::Connection>, job: &Job) -> HashSet<u64> {
    let ids: Vec<u64> = job.batch.tasks.iter().map(|t| t.id).collect();
    if con.is_none() {
        *con = wire::connect(&host.client, Duration::from_secs(5)).ok();
    }
    let Some(c) = con.as_mut() else {
        return HashSet::new();
    };
    let r: redis::RedisResult<Vec<i64>> = redis::cmd("SMISMEMBER")
        .arg(wire::done_key(&job.pool))
        .arg(&ids)
        .query(c);
    match r {
        Ok(flags) => ids
            .iter()
            .zip(flags)
            .filter(|(_, f)| *f == 1)
            .map(|(id, _)| *id)
            .collect(),
        Err(_) => {
            *con = None;
            HashSet::new()
        }
    }
}

/// Publishes results and acknowledgements in order, batching what is ready.
fn publisher(host: Arc<Host>, rx: Receiver<Out>) {
    let script = redis::Script::new(wire::PUBLISH_SCRIPT);
    let mut con: Option<redis::Connection> = None;
    while let Ok(first) = rx.recv() {
        let mut items = vec![first];
        while items.len() < 4096 {
            match rx.try_recv() {
                Ok(o) => items.push(o),
                Err(_) => break,
            }
        }
        // Group consecutive results per pool; acknowledgements follow the results before them.
        let mut p = redis::pipe();
        let mut results: Vec<(String, Vec<WireResult>)> = Vec::new();
        let mut acks: Vec<(String, String)> = Vec::new();
        for o in items {
            match o {
                Out::Result { pool, result } => {
                    match results.iter_mut().find(|(p, _)| *p == pool) {
                        Some((_, v)) => v.push(result),
                        None => results.push((pool, vec![result])),
                    }
                }
                Out::Ack { pool, entry, last } => {
                    if let Some(result) = last {
                        match results.iter_mut().find(|(p, _)| *p == pool) {
                            Some((_, v)) => v.push(result),
                            None => results.push((pool.clone(), vec![result])),
                        }
                    }
                    acks.push((pool, entry));
                }
            }
        }
        let mut pools: Vec<&String> = results.iter().map(|(p, _)| p).collect();
        for (pool, _) in &acks {
            if !pools.contains(&pool) {
                pools.push(pool);
            }
        }
        for pool in pools {
            let list: Vec<&WireResult> = results
                .iter()
                .filter(|(p, _)| p == pool)
                .flat_map(|(_, v)| v.iter())
                .collect();
            let entries: Vec<&String> = acks
                .iter()
                .filter(|(p, _)| p == pool)
                .map(|(_, e)| e)
                .collect();
            let (data, mac) = if list.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                let batch = ResultBatchRef {
                    pool,
                    results: &list,
                };
                let Ok(data) = processing_core::codec::encode(&batch) else {
                    continue;
                };
                let mac = host.key.sign(&data);
                (data, mac)
            };
            let mut inv = script.key(wire::meta_key(pool));
            inv.key(wire::results_key(pool))
                .key(wire::done_key(pool))
                .key(wire::tasks_key(pool))
                .arg(data)
                .arg(mac)
                .arg(KEY_TTL_S)
                .arg(list.len())
                .arg(entries.len());
            for r in &list {
                inv.arg(r.id);
            }
            for e in &entries {
                inv.arg(e.as_str());
            }
            p.invoke_script(&inv).ignore();
        }
        let mut backoff = Duration::from_millis(50);
        loop {
            if con.is_none() {
                con = wire::connect(&host.client, Duration::MAX)
                    .ok()
                    .and_then(|mut c| {
                        // Pipelines call the script by its hash: load it on every connection.
                        let loaded: redis::RedisResult<String> = redis::cmd("SCRIPT")
                            .arg("LOAD")
                            .arg(wire::PUBLISH_SCRIPT)
                            .query(&mut c);
                        loaded.ok().map(|_| c)
                    });
            }
            let Some(c) = con.as_mut() else {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            };
            match p.query::<()>(c) {
                Ok(()) => break,
                Err(e) if e.is_io_error() || e.is_connection_dropped() => {
                    tracing::warn!("cluster worker host: cannot publish ({e}); retrying");
                    con = None;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    // The server refused (its state was lost): these results have no pool.
                    tracing::warn!("cluster worker host: results dropped: {e}");
                    break;
                }
            }
        }
    }
}

/// Marks the host alive, renews the claims of running and queued entries, cancels those of deleted
/// pools (their local worker is stopped at once).
fn heartbeat(host: Arc<Host>, beat: Duration) {
    let mut con: Option<redis::Connection> = None;
    loop {
        std::thread::sleep(beat);
        if con.is_none() {
            con = wire::connect(&host.client, Duration::from_secs(1)).ok();
        }
        let Some(c) = con.as_mut() else { continue };
        mark_alive(&host, c, beat);
        // Every entry this host holds: running, and queued for a runner (a host takes up to
        // its free runners' count from each pool, so an entry may wait here for a runner
        // longer than the visibility timeout; unrenewed, another host would claim it and run
        // it a second time).
        let mut held: Vec<(String, String)> = lock(&host.running)
            .values()
            .map(|r| (r.pool.clone(), r.entry.clone()))
            .collect();
        held.extend(
            lock(&host.queue)
                .iter()
                .map(|j| (j.pool.clone(), j.entry.clone())),
        );
        if held.is_empty() {
            continue;
        }
        // XCLAIM on a deleted stream fails; run the claims and the checks separately.
        let mut checks = redis::pipe();
        for (pool, _) in &held {
            checks.cmd("EXISTS").arg(wire::meta_key(pool));
        }
        let exists: redis::RedisResult<Vec<i64>> = checks.query(c);
        let Ok(exists) = exists else {
            con = None;
            continue;
        };
        let mut claims = redis::pipe();
        for ((pool, entry), e) in held.iter().zip(&exists) {
            if *e == 1 {
                claims
                    .cmd("XCLAIM")
                    .arg(wire::tasks_key(pool))
                    .arg(GROUP)
                    .arg(&host.consumer)
                    .arg(0)
                    .arg(entry)
                    .arg("JUSTID")
                    .ignore();
            } else {
                cancel(&host, pool, entry);
            }
        }
        let _: redis::RedisResult<()> = claims.query(c);
    }
}

/// Drops a running entry of a deleted pool: its local worker is stopped (and replaced).
fn cancel(host: &Host, pool: &str, entry: &str) {
    let running = lock(&host.running);
    for r in running.values() {
        if r.pool == pool && r.entry == entry {
            r.cancelled.store(true, Ordering::SeqCst);
            r.control.kill();
        }
    }
    drop(running);
    // Queued entries of that pool are dropped too.
    let mut q = lock(&host.queue);
    let before = q.len();
    q.retain(|j| j.pool != pool);
    let dropped = before - q.len();
    drop(q);
    if dropped > 0 {
        *lock(&host.busy) -= dropped;
        host.freed.notify_all();
    }
}
